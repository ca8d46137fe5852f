"""`bundler gc`: what no pulled bundle uses any more is freed; what a person put there, never."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .conftest import run_cli
from .test_pull import bundle  # noqa: F401 - the fixture: one Hub model, one store model

DEPLOY = "deploy-home"


def gc(tmp_path: Path, *flags: str) -> dict:
    res = run_cli("gc", "--json", *flags, env={"BUNDLER_HOME": str(tmp_path / DEPLOY)})
    assert res.code == 0, res.stderr
    return json.loads(res.stdout)


def test_gc_frees_the_hub_revisions_and_store_models_of_removed_bundles_only(bundle, hub, tmp_path):  # noqa: F811
    env = {"BUNDLER_HOME": str(tmp_path / DEPLOY)}
    first, second = tmp_path / "v1", tmp_path / "v2"
    assert run_cli("pull", str(bundle), "--to", str(first), env=env).code == 0
    assert run_cli("pull", str(bundle), "--to", str(second), env=env).code == 0
    own = tmp_path / "own"
    own.mkdir()
    (own / "w.bin").write_bytes(b"mine")
    assert run_cli("models", "import", "mine:v1", str(own), env=env).code == 0  # put there by a person

    got = gc(tmp_path)
    assert got["freed"] == [] and sorted(got["live"]) == [str(first), str(second)]
    shutil.rmtree(first)
    got = gc(tmp_path)
    assert [f["what"] for f in got["freed"]] == ["record"]  # v2 still pins everything v1 did
    assert run_cli("run", str(second), "--check", env=env).code == 0

    shutil.rmtree(second)
    snapshots = Path(os.environ["HF_HUB_CACHE"]) / "models--acme--embed-small" / "snapshots"
    assert any(snapshots.iterdir())
    planned = gc(tmp_path, "--dry-run")
    kinds = sorted(f["what"] for f in planned["freed"])
    assert kinds == ["hub", "record", "store model"] and planned["dry_run"] is True and planned["bytes"] > 0, planned
    (hub_entry,) = [f for f in planned["freed"] if f["what"] == "hub"]
    assert hub_entry["name"].startswith("acme/embed-small@") and Path(hub_entry["path"]).exists()  # nothing removed yet
    (store_entry,) = [f for f in planned["freed"] if f["what"] == "store model"]
    assert store_entry["name"].startswith("plain-head:")

    res = run_cli("gc", env=env)
    assert res.code == 0 and "removed hub acme/embed-small@" in res.stdout and "freed" in res.stderr, res.stderr
    assert not Path(hub_entry["path"]).exists() and not snapshots.exists()  # its last revision: huggingface_hub removes the repo
    listed = run_cli("models", "list", env=env).stdout
    assert "mine:v1" in listed and "plain-head" not in listed
    assert gc(tmp_path)["freed"] == []
