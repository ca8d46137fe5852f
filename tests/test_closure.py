"""The repositories pinned models load by themselves: an adapter's base model, remote code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bundler.ops.build import build
from bundler.ops.lock import lock
from bundler.ops.pull import pull

from .conftest import run_cli


@pytest.fixture
def chain(hub):
    """acme/lora-adapter -> (base_model_name_or_path) acme/base-model -> (auto_map) acme/remote-code."""
    for repo in ("acme/remote-code", "acme/base-model", "acme/lora-adapter"):
        hub.create_repo(repo)
    hub.commit("acme/remote-code", {"modeling.py": b"class Model: pass\n", "config.json": b"{}"})
    hub.commit("acme/base-model", {
        "config.json": json.dumps({"auto_map": {"AutoModel": "acme/remote-code--modeling.Model"}}).encode(),
        "model.safetensors": b"base weights" * 100,
    })
    hub.commit("acme/lora-adapter", {
        "adapter_config.json": json.dumps({"base_model_name_or_path": "acme/base-model", "peft_type": "LORA"}).encode(),
        "adapter_model.safetensors": b"lora" * 100,
    })
    return hub


def service(tmp_path: Path, extra: str = "") -> Path:
    d = tmp_path / "p"
    d.mkdir(exist_ok=True)
    (d / "service.py").write_text(
        "import bundler\n\n@bundler.service\nclass S:\n    adapter = bundler.HuggingFaceModel('acme/lora-adapter')\n" + extra)
    return d / "service.py"


def locked(svc: Path) -> dict[str, dict]:
    return {m["id"]: m for m in tomllib.loads((svc.parent / "bundler.lock").read_text())["model"]}


def test_lock_pins_the_chain_each_with_the_parent_that_needs_it(chain, tmp_path):
    svc = service(tmp_path)
    res = run_cli("lock", str(svc), "--json")
    assert res.code == 0, res.stderr
    models = {m["id"]: m for m in json.loads(res.stdout)["models"]}
    assert models["acme/base-model"]["required_by"] == "acme/lora-adapter"
    assert models["acme/remote-code"]["required_by"] == "acme/base-model"
    assert "required_by" not in models["acme/lora-adapter"]
    entries = locked(svc)
    assert entries["acme/base-model"]["commit"] == chain.repos["acme/base-model"].refs["main"]
    assert sorted(f["path"] for f in entries["acme/remote-code"]["files"]) == ["config.json", "modeling.py"]
    assert run_cli("lock", str(svc), "--check").code == 0  # the dependencies stay fresh with their parent
    chain.requests.clear()
    assert run_cli("lock", str(svc)).code == 0
    assert chain.requests == []  # nothing re-pinned, nothing asked


def test_no_deps_leaves_them_out_with_a_warning(chain, tmp_path):
    svc = service(tmp_path)
    lock(svc)
    res = run_cli("lock", str(svc), "--no-deps")
    assert res.code == 0, res.stderr
    assert "--no-deps" in res.stderr and sorted(locked(svc)) == ["acme/lora-adapter"]


def test_a_dependency_that_cannot_be_pinned_names_the_chain(chain, tmp_path):
    chain.commit("acme/base-model", {"config.json": json.dumps({"auto_map": {"AutoModel": "acme/gone--modeling.Model"}}).encode()})
    svc = service(tmp_path)
    res = run_cli("lock", str(svc))
    assert res.code == 2 and "Traceback" not in res.stderr
    assert "acme/lora-adapter -> acme/base-model -> acme/gone (config.json: auto_map AutoModel)" in res.stderr
    assert "--no-deps" in res.stderr and not (svc.parent / "bundler.lock").exists()


def test_after_a_pull_the_chain_loads_offline_by_name(chain, tmp_path):
    svc = service(tmp_path)
    bundle = build(svc, output=tmp_path / "a.bundle.tar")
    assert {p.id: p.required_by for p in bundle.manifest.pins} == {
        "acme/lora-adapter": None, "acme/base-model": "acme/lora-adapter", "acme/remote-code": "acme/base-model"}
    pull(bundle.path, to=tmp_path / "deploy")
    chain.stop()
    # what peft does with the adapter's base model: load it by name, at main, offline
    script = "from huggingface_hub import hf_hub_download as d; print(d('acme/base-model', 'config.json'))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert f"snapshots/{chain.repos['acme/base-model'].refs['main']}/config.json" in out.stdout


def test_two_bundles_pinning_different_commits_of_a_dependency_keep_the_first_and_say_so(chain, tmp_path):
    first = build(service(tmp_path), output=tmp_path / "a.bundle.tar")
    pull(first.path, to=tmp_path / "one")
    old = chain.repos["acme/base-model"].refs["main"]
    new = chain.commit("acme/base-model", {"README.md": b"v2"})
    other = tmp_path / "q"
    other.mkdir()
    (other / "service.py").write_text((tmp_path / "p" / "service.py").read_text())
    second = build(other / "service.py", output=tmp_path / "b.bundle.tar")
    assert {p.id: p.commit for p in second.manifest.pins}["acme/base-model"] == new
    res = run_cli("pull", str(second.path), "--to", str(tmp_path / "two"))
    assert res.code == 0, res.stderr
    assert "refs/main in" in res.stderr and f"names {old[:12]}, not this bundle's pin {new[:12]}" in res.stderr
    main = Path(os.environ["HF_HUB_CACHE"]) / "models--acme--base-model" / "refs" / "main"
    assert main.read_text() == old  # the first pull's choice stands
    assert (main.parent.parent / "snapshots" / new / "README.md").is_file()  # the second's files are all there


def test_a_lock_made_without_the_closure_gains_it_on_the_next_lock(chain, tmp_path):
    svc = service(tmp_path)
    assert run_cli("lock", str(svc), "--no-deps").code == 0  # as an older bundler wrote it
    assert sorted(locked(svc)) == ["acme/lora-adapter"]
    res = run_cli("lock", str(svc))
    assert res.code == 0, res.stderr
    assert sorted(locked(svc)) == ["acme/base-model", "acme/lora-adapter", "acme/remote-code"]
    assert "pinned   acme/base-model" in res.stdout


def test_a_dependency_takes_the_patterns_the_project_gives_it_and_a_change_repins_it(chain, tmp_path):
    svc = service(tmp_path)
    (svc.parent / "pyproject.toml").write_text('[tool.bundler.repos."acme/base-model"]\ninclude = ["*.json"]\n')
    assert run_cli("lock", str(svc)).code == 0
    entries = locked(svc)
    assert entries["acme/base-model"]["include"] == ["*.json"]
    assert [f["path"] for f in entries["acme/base-model"]["files"]] == ["config.json"]
    # its own dependency inherits the patterns it was pinned with
    assert entries["acme/remote-code"]["include"] == ["*.json"]
    assert [f["path"] for f in entries["acme/remote-code"]["files"]] == ["config.json"]

    # the entry changes: --check says the lock is stale, naming it; a lock pins both again
    (svc.parent / "pyproject.toml").write_text('[tool.bundler.repos."acme/base-model"]\nexclude = "*.md"\n')
    res = run_cli("lock", str(svc), "--check")
    assert res.code == 1 and "acme/base-model (needed by acme/lora-adapter) is locked with other include/exclude patterns" in res.stderr
    assert "acme/remote-code (needed by acme/base-model)" in res.stderr
    assert run_cli("lock", str(svc)).code == 0
    entries = locked(svc)
    assert "include" not in entries["acme/base-model"] and entries["acme/base-model"]["exclude"] == ["*.md"]
    assert sorted(f["path"] for f in entries["acme/base-model"]["files"]) == ["config.json", "model.safetensors"]
    assert sorted(f["path"] for f in entries["acme/remote-code"]["files"]) == ["config.json", "modeling.py"]
    assert run_cli("lock", str(svc), "--check").code == 0


@pytest.mark.parametrize(("table", "message"), [
    ('[tool.bundler.repos]\n"acme" = {include = ["*"]}\n', "'acme' is not a repository id"),
    ('[tool.bundler.repos."acme/base-model"]\nrevision = "main"\n', "takes include and exclude only"),
    ('[tool.bundler.repos."acme/base-model"]\ninclude = 3\n', "include must be a string or a list of strings"),
])
def test_a_bad_repos_entry_is_exit_2_naming_pyproject(chain, tmp_path, table, message):
    svc = service(tmp_path)
    (svc.parent / "pyproject.toml").write_text(table)
    res = run_cli("lock", str(svc))
    assert res.code == 2 and "pyproject.toml: [tool.bundler.repos" in res.stderr and message in res.stderr, res.stderr
    assert not (svc.parent / "bundler.lock").exists()


def test_a_tokenizer_and_a_processor_in_other_repositories_are_pinned(hub, tmp_path):
    """transformers' AutoTokenizer / AutoProcessor follow `auto_map` entries (a list for tokenizers)
    of tokenizer_config.json and processor_config.json into other repositories."""
    for repo in ("acme/tok-code", "acme/proc-code", "acme/vision"):
        hub.create_repo(repo)
    hub.commit("acme/tok-code", {"tokenization_x.py": b"class XTokenizer: pass\n"})
    hub.commit("acme/proc-code", {"processing_x.py": b"class XProcessor: pass\n"})
    hub.commit("acme/vision", {
        "tokenizer_config.json": json.dumps({"auto_map": {"AutoTokenizer": ["acme/tok-code--tokenization_x.XTokenizer", None]}}).encode(),
        "processor_config.json": json.dumps({"auto_map": {"AutoProcessor": "acme/proc-code--processing_x.XProcessor"}}).encode(),
        "model.safetensors": b"v" * 64,
    })
    d = tmp_path / "p"
    d.mkdir()
    (d / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    m = bundler.HuggingFaceModel('acme/vision')\n")
    res = run_cli("lock", str(d / "service.py"), "--json")
    assert res.code == 0, res.stderr
    models = {m["id"]: m for m in json.loads(res.stdout)["models"]}
    assert models["acme/tok-code"]["required_by"] == "acme/vision"
    assert models["acme/proc-code"]["required_by"] == "acme/vision"
    assert sorted(f["path"] for f in locked(d / "service.py")["acme/tok-code"]["files"]) == ["tokenization_x.py"]
