"""Build arguments end to end: lock pins what they select, the manifest records them."""

from __future__ import annotations

import json
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundler.ops.build import build
from bundler.ops.lock import lock

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
    assert manifest["schema"] == 6  # 4 for the arguments; 6: a sha256 beside the Hub files' blob ids
    assert manifest["arguments"] == {"embed": "acme/embed-small", "embed_revision": "main"}
    assert manifest["argument_origins"] == {"embed": "default", "embed_revision": "--arg"}
    # nothing given: the defaults are still what the service sees, and recorded as such
    assert plain.manifest.data["arguments"] == {"embed": "acme/embed-small", "embed_revision": "v1.0"}
    assert plain.manifest.given_arguments == {}
    res = run_cli("inspect", str(tmp_path / "b.bundle.tar"))
    assert "argument    embed_revision='main' (from --arg)" in res.stdout
    assert "argument    embed='acme/embed-small' (from default)" in res.stdout
    res = run_cli("diff", str(tmp_path / "a.bundle.tar"), str(tmp_path / "b.bundle.tar"))
    assert res.code == 1 and "~ argument embed_revision: 'v1.0' -> 'main'" in res.stdout


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


# The vLLM pattern: a pydantic arguments class whose fields the service reads only in code (never
# in a descriptor), set by pyproject's [tool.bentoml.build.args] and by --arg.
LLM_SERVICE = '''
import bentoml
import pydantic


class LLMArgs(pydantic.BaseModel):
    model_id: str = "acme/rerank-tiny"
    max_model_len: int = 2048
    temperature: float = 0.7
    tool_parser: str | None = None
    cli_args: list[str] = []


args = bentoml.use_arguments(LLMArgs)


@bentoml.service
class LLM:
    model = bentoml.models.HuggingFaceModel(args.model_id)

    def __init__(self) -> None:
        self.engine = {"max_model_len": args.max_model_len, "tool_parser": args.tool_parser}
'''

LLM_PYPROJECT = '''[project]
name = "llm"

[tool.bentoml.build.args]
max_model_len = 8192
tool_parser = "hermes"
cli_args = ["--enforce-eager"]
'''


def llm_project(tmp_path: Path) -> Path:
    d = tmp_path / "llm"
    d.mkdir()
    (d / "service.py").write_text(LLM_SERVICE)
    (d / "pyproject.toml").write_text(LLM_PYPROJECT)
    return d / "service.py"


def test_every_argument_is_recorded_with_where_it_came_from(hub, tmp_path):
    svc = llm_project(tmp_path)
    m = build(svc, output=tmp_path / "a.bundle.tar").manifest
    assert m.arguments == {"cli_args": ["--enforce-eager"], "max_model_len": 8192, "model_id": "acme/rerank-tiny",
                           "temperature": 0.7, "tool_parser": "hermes"}
    pyproject = "pyproject.toml [tool.bentoml.build.args]"
    assert m.argument_origins == {"cli_args": pyproject, "max_model_len": pyproject, "model_id": "default",
                                  "temperature": "default", "tool_parser": pyproject}
    assert m.given_arguments == {"cli_args": ["--enforce-eager"], "max_model_len": 8192, "tool_parser": "hermes"}


def test_an_arg_the_scan_never_reads_changes_the_bundle_and_diff_names_it(hub, tmp_path):
    svc = llm_project(tmp_path)
    a = build(svc, output=tmp_path / "a.bundle.tar")
    res = run_cli("build", str(svc), "-o", str(tmp_path / "b.bundle.tar"), "--arg", "max_model_len=4096", "--json")
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["digest"] != a.digest
    res = run_cli("diff", str(tmp_path / "a.bundle.tar"), str(tmp_path / "b.bundle.tar"), "--json")
    assert res.code == 1
    assert json.loads(res.stdout)["arguments"] == {"added": {}, "removed": {}, "changed": {"max_model_len": [8192, 4096]}}
    res = run_cli("inspect", str(tmp_path / "b.bundle.tar"))
    assert "argument    max_model_len=4096 (from --arg)" in res.stdout
    assert "argument    tool_parser='hermes' (from pyproject.toml [tool.bentoml.build.args])" in res.stdout


def test_an_arg_no_field_has_names_the_class_and_its_fields(hub, tmp_path):
    svc = llm_project(tmp_path)
    res = run_cli("build", str(svc), "-o", str(tmp_path / "b.bundle.tar"), "--arg", "max_len=1")
    assert res.code == 2 and "Traceback" not in res.stderr
    assert "unknown build argument `max_len` (fields of LLMArgs: cli_args, max_model_len, model_id, temperature, tool_parser)" in res.stderr
    assert not (tmp_path / "b.bundle.tar").exists()


@pytest.mark.parametrize(("arg", "message"), [
    ("max_model_len=lots", "build argument `max_model_len`: 'lots' is not a valid int"),
    ("temperature=nan", "build argument `temperature` (from --arg) is nan, which JSON cannot hold"),
    ("temperature=-inf", "build argument `temperature` (from --arg) is -inf, which JSON cannot hold"),
    ("cli_args=" + "[" * 500 + "]" * 500, "build argument `cli_args` (from --arg)[0]"),
    ("cli_args=" + "[" * 50_000 + "]" * 50_000, "build argument `cli_args`: "),
])
def test_values_a_bundle_cannot_hold_are_refused_at_the_door(hub, tmp_path, arg, message):
    svc = llm_project(tmp_path)
    res = run_cli("build", str(svc), "-o", str(tmp_path / "b.bundle.tar"), "--arg", arg)
    assert res.code == 2 and "Traceback" not in res.stderr, res.stderr
    assert message in res.stderr
    assert not (tmp_path / "b.bundle.tar").exists()


@pytest.mark.parametrize("value", ["2024-01-02", "!!binary aGVsbG8=", "!!set {a, b}", ".nan", "{1: x}"])
def test_bentofile_args_a_bundle_cannot_hold_are_refused_naming_the_argument(hub, tmp_path, value):
    svc = llm_project(tmp_path)
    (svc.parent / "bentofile.yaml").write_text(f"service: service:LLM\nargs:\n  tool_parser: {value}\n")
    res = run_cli("build", str(svc), "-o", str(tmp_path / "b.bundle.tar"))
    assert res.code == 2 and "Traceback" not in res.stderr, res.stderr
    assert "build argument `tool_parser` (from bentofile.yaml)" in res.stderr
    assert not (tmp_path / "b.bundle.tar").exists()


_plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_plain_values)
def test_a_build_never_writes_arguments_its_own_reader_refuses(tmp_path_factory, value):
    """Whatever a bentofile holds, either it is refused at the door or the manifest reads back."""
    from bundler.errors import BundlerError
    from bundler.introspect.values import checked_argument
    from bundler.bundle.manifest import loads

    try:
        recorded = checked_argument("x", value, "bentofile.yaml")
    except BundlerError:
        return
    data = {"schema": 4, "name": "n", "version": "v", "models": [], "sources": [],
            "arguments": {"x": recorded}, "argument_origins": {"x": "bentofile.yaml"}}
    m = loads(json.dumps(data).encode(), "bundle.yaml")
    assert m.arguments == {"x": recorded}
