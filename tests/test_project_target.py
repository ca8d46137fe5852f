"""`bundler scan|lock|build` with no PATH (or `.`): the service the project names."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import run_cli


def bentoml_project(tmp_path: Path) -> Path:
    """BentoML's layout: bentofile.yaml at the root names `src.service:Svc`; the service imports
    a constant through the `src` package, which has no __init__.py."""
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "bentofile.yaml").write_text("service: src.service:Svc\nname: svc\n")
    (root / "src" / "constants.py").write_text('MODEL = "acme/rerank-tiny"\n')
    (root / "src" / "service.py").write_text(
        "import bentoml\nfrom src.constants import MODEL\n\n\n@bentoml.service\nclass Svc:\n"
        "    model = bentoml.models.HuggingFaceModel(MODEL)\n"
    )
    return root


def test_scan_with_no_path_uses_the_service_the_bentofile_names(tmp_path):
    root = bentoml_project(tmp_path)
    for args in ((), (".",)):
        res = run_cli("scan", *args, "--json", cwd=root)
        assert res.code == 0, res.stderr
        services = json.loads(res.stdout)["services"]
        assert [(s["class"], [m["id"] for m in s["models"]]) for s in services] == [("Svc", ["acme/rerank-tiny"])]


def test_build_with_no_path_builds_the_named_service_and_it_runs(hub, tmp_path):
    root = bentoml_project(tmp_path)
    res = run_cli("build", "-o", str(tmp_path / "b.bundle.tar"), "--json", cwd=root)
    assert res.code == 0, res.stderr
    res = run_cli("inspect", str(tmp_path / "b.bundle.tar"), "--json")
    m = json.loads(res.stdout)
    assert m["entrypoint"] == "src/service.py:Svc"
    assert [(s["class"], s["module"]) for s in m["services"]] == [("Svc", "src.service")]  # importable from the bundle's src/


def test_pyproject_tool_bundler_service_is_used_and_none_named_is_exit_2(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    (root / "app.py").write_text("import bundler\n\n@bundler.service\nclass App:\n    m = bundler.HuggingFaceModel('acme/x')\n")
    res = run_cli("scan", "--json", cwd=root)
    assert res.code == 2 and "names no service" in res.stderr and "[tool.bundler] service" in res.stderr
    res = run_cli("lock", cwd=root)
    assert res.code == 2 and "names no service" in res.stderr and not (root / "bundler.lock").exists()
    (root / "pyproject.toml").write_text('[project]\nname = "p"\n\n[tool.bundler]\nservice = "app.py:App"\n')
    res = run_cli("scan", "--json", cwd=root)
    assert res.code == 0 and json.loads(res.stdout)["services"][0]["class"] == "App"
    (root / "pyproject.toml").write_text('[project]\nname = "p"\n\n[tool.bundler]\nservice = "../outside.py:App"\n')
    res = run_cli("scan", cwd=root)
    assert res.code == 2 and "outside the project" in res.stderr
