"""A Hub mirror or private endpoint the service names (`endpoint=`, BentoML's argument)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from bundler.ops.build import build
from bundler.ops.pull import pull

from .conftest import run_cli
from .fakehub import FakeHub


@pytest.fixture
def mirror():
    fake = FakeHub().start()
    fake.create_repo("acme/mirrored")
    fake.commit("acme/mirrored", {"config.json": b'{"from": "the mirror"}', "model.safetensors": b"m" * 300})
    yield fake
    fake.stop()


def service(tmp_path: Path, endpoint: str) -> Path:
    d = tmp_path / "p"
    d.mkdir()
    (d / "service.py").write_text(
        "import bentoml\n\n@bentoml.service\nclass S:\n"
        f"    m = bentoml.models.HuggingFaceModel('acme/mirrored', endpoint={endpoint!r})\n")
    return d / "service.py"


def test_the_named_endpoint_is_pinned_recorded_and_pulled_from(hub, mirror, tmp_path, monkeypatch):
    svc = service(tmp_path, mirror.url + "/")
    res = run_cli("lock", str(svc))
    assert res.code == 0, res.stderr  # acme/mirrored exists only on the mirror
    (entry,) = tomllib.loads((svc.parent / "bundler.lock").read_text())["model"]
    assert entry["endpoint"] == mirror.url and entry["commit"] == mirror.repos["acme/mirrored"].refs["main"]
    bundle = build(svc, output=tmp_path / "m.bundle.tar")
    assert bundle.manifest.data["models"][0]["endpoint"] == mirror.url and bundle.manifest.schema == 6  # 4: endpoint; 6: sha256 beside blob ids
    monkeypatch.delenv("HF_ENDPOINT")  # the deploy host names no Hub: the recorded one is used
    mirror.requests.clear()
    result = pull(bundle.path, to=tmp_path / "deploy")
    assert len(result.downloaded) == 2 and any("acme/mirrored" in p for _, p in mirror.requests)


def test_the_hosts_own_mirror_wins_at_pull(hub, mirror, tmp_path, monkeypatch):
    svc = service(tmp_path, mirror.url)
    bundle = build(svc, output=tmp_path / "m.bundle.tar")
    other = FakeHub().start()  # the host's mirror, holding the same commit
    try:
        other.repos["acme/mirrored"] = mirror.repos["acme/mirrored"]
        monkeypatch.setenv("HF_ENDPOINT", other.url)
        mirror.requests.clear()
        res = run_cli("pull", str(bundle.path), "--to", str(tmp_path / "deploy"), "--json")
        assert res.code == 0, res.stderr
        assert json.loads(res.stdout)["downloaded"]["files"] == 2
        assert mirror.requests == [] and other.requests
    finally:
        other.stop()


@pytest.mark.parametrize("endpoint", ["https://user:secret@mirror.example", "ftp://mirror.example", "mirror.example"])
def test_an_endpoint_with_credentials_or_not_http_is_refused(tmp_path, endpoint):
    svc = service(tmp_path, endpoint)
    res = run_cli("scan", str(svc))
    assert res.code == 2 and "endpoint must be an http(s) URL without credentials" in res.stderr
    assert "secret" not in res.stderr


def test_a_hub_endpoint_option_points_one_pull_at_a_mirror(hub, mirror, tmp_path, monkeypatch):
    svc = service(tmp_path, mirror.url)
    bundle = build(svc, output=tmp_path / "m.bundle.tar")
    other = FakeHub().start()
    try:
        other.repos["acme/mirrored"] = mirror.repos["acme/mirrored"]
        monkeypatch.delenv("HF_ENDPOINT")
        mirror.stop()  # the recorded endpoint is gone: the option's mirror serves the pinned commit
        res = run_cli("pull", str(bundle.path), "--to", str(tmp_path / "deploy"), "--json", "--hub-endpoint", other.url + "/")
        assert res.code == 0, res.stderr
        assert json.loads(res.stdout)["downloaded"]["files"] == 2 and other.requests
    finally:
        other.stop()
    res = run_cli("pull", str(bundle.path), "--to", str(tmp_path / "d2"), "--hub-endpoint", "https://user:secret@mirror.example")
    assert res.code == 2 and "without credentials" in res.stderr and "secret" not in res.stderr
    assert not (tmp_path / "d2").exists()
