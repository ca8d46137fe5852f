"""`bundler outdated`: which pins moved since the lock, and what changed; exit 0 / 1."""

from __future__ import annotations

import json
from pathlib import Path

from bundler.ops.lock import lock

from .conftest import run_cli

SERVICE = '''import bundler


@bundler.service
class S:
    rerank = bundler.HuggingFaceModel("acme/rerank-tiny", exclude="*.bin")
    embed = bundler.HuggingFaceModel("acme/embed-small", revision="{commit}")
'''


def project(tmp_path: Path, hub) -> Path:
    d = tmp_path / "p"
    d.mkdir()
    commit = hub.repos["acme/embed-small"].refs["main"]
    (d / "service.py").write_text(SERVICE.format(commit=commit))
    lock(d / "service.py")
    return d / "service.py"


def test_nothing_moved_is_exit_0_and_writes_nothing(hub, tmp_path):
    svc = project(tmp_path, hub)
    before = (svc.parent / "bundler.lock").read_bytes()
    res = run_cli("outdated", str(svc), "--json")
    assert res.code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["moved"] == 0 and {m["id"]: m["moved"] for m in out["models"]} == {"acme/embed-small": False, "acme/rerank-tiny": False}
    assert (svc.parent / "bundler.lock").read_bytes() == before


def test_a_moved_branch_is_exit_1_naming_the_commits_and_files(hub, tmp_path):
    svc = project(tmp_path, hub)
    pinned = hub.repos["acme/rerank-tiny"].refs["main"]
    new = hub.commit("acme/rerank-tiny", {"config.json": b'{"v": 2}', "extra.json": b"{}"})
    hub.commit("acme/embed-small", {"config.json": b'{"moved": true}'})  # pinned by commit: cannot move
    res = run_cli("outdated", str(svc), "--json")
    assert res.code == 1, res.stderr
    out = json.loads(res.stdout)
    rerank = next(m for m in out["models"] if m["id"] == "acme/rerank-tiny")
    assert rerank["moved"] and rerank["pinned"] == pinned and rerank["current"] == new
    assert rerank["files"] == {"added": ["extra.json"], "removed": [], "changed": ["config.json"]}
    assert out["moved"] == 1
    res = run_cli("outdated", str(svc))
    assert res.code == 1 and f"moved    acme/rerank-tiny: {pinned[:12]} -> {new[:12]}" in res.stdout
    assert "    + extra.json" in res.stdout and "    ~ config.json" in res.stdout


def test_no_lock_is_exit_2_saying_so(tmp_path):
    (tmp_path / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    pass\n")
    res = run_cli("outdated", str(tmp_path / "service.py"), "--json")
    assert res.code == 2 and "no lock file" in json.loads(res.stdout)["error"]
