"""Build arguments end to end: lock pins what they select, the manifest records them."""

from __future__ import annotations

import json
import tarfile
import tomllib
from pathlib import Path

import yaml

from bundler.build import build
from bundler.lock import lock

from .conftest import run_cli

SERVICE = '''
import bentoml
import pydantic


class Args(pydantic.BaseModel):
    embed: str = "acme/embed-small"
    embed_revision: str = "v1.0"


args = bentoml.use_arguments(Args)


@bentoml.service
class Search:
    embedder = bentoml.models.HuggingFaceModel(args.embed, revision=args.embed_revision)
    reranker = bentoml.models.HuggingFaceModel("acme/rerank-tiny", revision="main", exclude=["*.bin"])
'''


def project(tmp_path: Path) -> Path:
    d = tmp_path / "proj"
    d.mkdir()
    (d / "service.py").write_text(SERVICE)
    (d / "pyproject.toml").write_text('[project]\nname = "search"\n')
    return d / "service.py"


def commits(lock_file: Path) -> dict[str, str]:
    data = tomllib.loads(lock_file.read_text())
    return {f"{m['id']}@{m['revision']}": m["commit"] for m in data["model"]}


def test_an_argument_repins_only_the_model_it_selects(hub, tmp_path):
    svc = project(tmp_path)
    lock(svc)
    before = commits(svc.parent / "bundler.lock")
    assert sorted(before) == ["acme/embed-small@v1.0", "acme/rerank-tiny@main"]
    hub.requests.clear()
    result = lock(svc, arguments={"embed_revision": "main"})
    after = commits(svc.parent / "bundler.lock")
    assert sorted(after) == ["acme/embed-small@main", "acme/rerank-tiny@main"]
    assert after["acme/rerank-tiny@main"] == before["acme/rerank-tiny@main"]
    assert after["acme/embed-small@main"] != before["acme/embed-small@v1.0"]
    assert [p.label for p in result.kept] == ["acme/rerank-tiny@main"]
    paths = [path for _, path in hub.requests]
    assert any("embed-small" in p for p in paths) and not any("rerank-tiny" in p for p in paths)  # the kept pin asked nothing


def test_arguments_are_recorded_in_the_manifest_and_change_the_digest(hub, tmp_path):
    svc = project(tmp_path)
    plain = build(svc, output=tmp_path / "a.bundle.tar")
    res = run_cli("build", str(svc), "-o", str(tmp_path / "b.bundle.tar"), "--arg", "embed_revision=main", "--json")
    assert res.code == 0, res.stderr
    other = json.loads(res.stdout)
    assert other["digest"] != plain.digest
    with tarfile.open(tmp_path / "b.bundle.tar") as t:
        manifest = yaml.safe_load(t.extractfile("bundle.yaml"))
    assert manifest["arguments"] == {"embed_revision": "main"}
    assert "arguments" not in plain.manifest.data  # nothing given, nothing recorded
    res = run_cli("inspect", str(tmp_path / "b.bundle.tar"))
    assert "argument    embed_revision='main'" in res.stdout
    res = run_cli("diff", str(tmp_path / "a.bundle.tar"), str(tmp_path / "b.bundle.tar"))
    assert res.code == 1 and "+ argument embed_revision='main'" in res.stdout


def test_two_service_files_share_one_lock_without_dropping_each_other(hub, tmp_path):
    svc = project(tmp_path)
    other = svc.parent / "other.py"
    other.write_text(
        "import bentoml\n\n@bentoml.service\nclass Other:\n"
        "    reranker = bentoml.models.HuggingFaceModel('acme/rerank-tiny', revision='main', exclude=['*.bin'])\n"
        "    embed = bentoml.models.HuggingFaceModel('acme/embed-small', revision='main')\n"
    )
    lock(svc)
    lock(other)
    data = tomllib.loads((svc.parent / "bundler.lock").read_text())
    used = {f"{m['id']}@{m['revision']}": m["used_by"] for m in data["model"]}
    assert used == {
        "acme/embed-small@v1.0": ["service.py"],
        "acme/embed-small@main": ["other.py"],
        "acme/rerank-tiny@main": ["other.py", "service.py"],  # shared: pinned once
    }
    assert lock(svc, check=True).stale == [] and lock(other, check=True).stale == []
    other.unlink()
    lock(svc)
    data = tomllib.loads((svc.parent / "bundler.lock").read_text())
    assert sorted(f"{m['id']}@{m['revision']}" for m in data["model"]) == ["acme/embed-small@v1.0", "acme/rerank-tiny@main"]
