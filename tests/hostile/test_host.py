"""The host under stress: pulls into odd directories, leftovers of killed runs, full disks, permissions, Ctrl-C, odd trees."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from bundler.ops.build import build
from bundler.stores.local import Store

from ..conftest import run_cli

from .helpers import _as_nobody, _leftover, one_clear_error, tree_digest


def test_pull_never_replaces_a_directory_bundler_did_not_unpack(bundle, tmp_path):
    mine = tmp_path / "deploy"
    (mine / "code").mkdir(parents=True)
    (mine / "bundle.yaml").write_text("kind: Deployment\n")
    (mine / "code" / "main.py").write_text("print('mine')\n")
    before = tree_digest(mine)
    res = run_cli("pull", str(bundle), "--to", str(mine))
    one_clear_error(res)
    assert "was not unpacked by bundler" in res.stderr
    assert tree_digest(mine) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_pull_into_the_working_directory_and_an_empty_one(bundle, tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    res = run_cli("pull", str(bundle), "--to", ".", cwd=here)
    assert res.code == 0, res.stderr
    assert (here / "src" / "service.py").is_file() and (here / ".bundler-unpacked").is_file()
    # a different bundle replaces it in place: the working directory itself stays valid
    (tmp_path / "proj" / "extra.py").write_text("X = 1\n")
    other = build(tmp_path / "proj" / "service.py", output=tmp_path / "other.bundle.tar").path
    res = run_cli("pull", str(other), "--to", ".", cwd=here)
    assert res.code == 0, res.stderr
    assert (here / "src" / "extra.py").read_text() == "X = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run_cli("pull", str(bundle), "--to", str(empty))
    assert res.code == 0, res.stderr
    assert (empty / "src" / "service.py").is_file()


def test_version_setting_that_would_escape_dist_is_refused(tmp_path):
    proj = tmp_path / "deep" / "proj"
    proj.mkdir(parents=True)
    (proj / "service.py").write_text("import bundler\n\n@bundler.service\nclass A:\n    pass\n")
    (proj / "pyproject.toml").write_text('[project]\nname = "a"\n[tool.bundler]\nversion = "../../../../x"\n')
    before = tree_digest(tmp_path)
    res = run_cli("build", str(proj / "service.py"))
    one_clear_error(res)
    assert "unsafe version" in res.stderr and "pyproject.toml" in res.stderr
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize("path", ["../../../../../../etc/hostname", "\ud800.bin"])
def test_store_record_paths_outside_the_store_are_refused(bundle, tmp_path, path):
    store = Store()
    model = store.get("tiny-head:latest")
    record = model.path.parent / "manifest.json"
    data = json.loads(record.read_text())
    data["files"][0]["path"] = path  # json.dumps writes the surrogate as an escape
    record.write_text(json.dumps(data))
    res = run_cli("build", str(tmp_path / "proj" / "service.py"), "-o", str(tmp_path / "x.bundle.tar"))
    one_clear_error(res, code=1)
    assert "damaged store manifest" in res.stderr and "unsafe path" in res.stderr
    assert not (tmp_path / "x.bundle.tar").exists()
    # the way out the error names works
    res = run_cli("models", "delete", model.tag)
    assert res.code == 0, res.stderr


def test_store_latest_pointing_outside_is_ignored(bundle, tmp_path):
    store = Store()
    model = store.get("tiny-head:latest")
    (store.models_dir / "tiny-head" / "latest").write_text("../../../../etc\n")
    assert store.get("tiny-head:latest").version == model.version


def test_killed_runs_leftovers_are_removed_by_the_next_run(bundle, tmp_path):
    proj = tmp_path / "proj"
    out = proj / "out.bundle.tar"
    left_build = _leftover(proj / ".out.bundle.tar.k1ll3d_x.tmp")
    res = run_cli("build", str(proj / "service.py"), "-o", str(out), "--json")
    assert res.code == 0, res.stderr
    assert not left_build.exists()
    names = [m.name for m in tarfile.open(out)]
    assert not any(".tmp" in n for n in names)

    (Store().root / "tmp" / "import-k1ll3d_x").mkdir(parents=True)
    (Store().root / "tmp" / "import-k1ll3d_x" / "big.bin").write_bytes(b"x" * 1000)
    left_import = _leftover(Store().root / "tmp" / "import-k1ll3d_x", dir=True)
    head2 = tmp_path / "head2"
    head2.mkdir()
    (head2 / "w.bin").write_bytes(b"2")
    Store().import_dir("other", head2)
    assert not left_import.exists()

    left_unpack = _leftover(tmp_path / ".tiny.k1ll3d_x.unpack", dir=True)
    res = run_cli("pull", str(bundle))
    assert res.code == 0, res.stderr
    assert not left_unpack.exists()


def test_a_leftover_just_left_by_a_killed_run_is_removed_whatever_its_age(bundle, tmp_path):
    proj = tmp_path / "proj"
    fresh_build = proj / ".out.bundle.tar.k1ll3d_y.tmp"
    fresh_build.write_bytes(b"partial" * 1000)  # seconds old: the kill was just now
    res = run_cli("build", str(proj / "service.py"), "-o", str(proj / "out.bundle.tar"))
    assert res.code == 0, res.stderr
    assert not fresh_build.exists()
    assert run_cli("pull", str(bundle)).code == 0
    fresh_unpack = tmp_path / ".tiny.k1ll3d_y.unpack"
    fresh_unpack.mkdir()
    (fresh_unpack / "weights.bin").write_bytes(b"x" * 1000)
    res = run_cli("pull", str(bundle))  # already unpacked: nothing to do but the cleaning
    assert res.code == 0, res.stderr
    assert not fresh_unpack.exists()


def test_a_leftover_still_in_use_is_kept(tmp_path):
    import fcntl

    from bundler.io.scratch import sweep

    busy = _leftover(tmp_path / ".x.busy_123.unpack", dir=True)
    fd = os.open(busy, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        sweep(tmp_path, ".x.", ".unpack")
        assert busy.exists()
    finally:
        os.close(fd)
    assert sweep(tmp_path, ".x.", ".unpack") == [busy] and not busy.exists()


def test_a_full_disk_during_build_is_one_line_blaming_the_disk_and_leaves_nothing(bundle, tmp_path, tiny_disk):
    big = tmp_path / "proj" / "data.bin"
    big.write_bytes(os.urandom(400_000))
    res = run_cli("build", str(tmp_path / "proj" / "service.py"), "-o", str(tiny_disk / "out.bundle.tar"))
    one_clear_error(res, code=1)
    assert "can't write the bundle: No space left on device" in res.stderr and "changed while" not in res.stderr
    assert list(tiny_disk.iterdir()) == []


def test_a_full_disk_during_pull_and_import_is_one_line(bundle, tmp_path, tiny_disk):
    (tmp_path / "proj" / "data.bin").write_bytes(os.urandom(400_000))
    big_bundle = build(tmp_path / "proj" / "service.py", output=tmp_path / "big.bundle.tar").path
    res = run_cli("pull", str(big_bundle), "--to", str(tiny_disk / "deploy"), env={"BUNDLER_HOME": str(tmp_path / "other-home")})
    assert res.code in (1, 2) and res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    assert "No space left on device" in res.stderr
    assert [p.name for p in tiny_disk.iterdir()] == []
    big = tmp_path / "big"
    big.mkdir()
    (big / "w.bin").write_bytes(os.urandom(400_000))
    res = run_cli("models", "import", "big", str(big), env={"BUNDLER_HOME": str(tiny_disk / "home")})
    assert res.code == 1 and "No space left on device" in res.stderr and "Traceback" not in res.stderr
    assert not list((tiny_disk / "home" / "tmp").iterdir())


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: os.symlink(p / "loop", p / "loop"), "looping symbolic link"),
        (lambda p: open(os.path.join(os.fsencode(p), b"bad-\xff.py"), "wb").close(), "not valid UTF-8"),
        (lambda p: (p / "requirements.txt").write_bytes(b"torch\xff\n"), "requirements.txt: not UTF-8"),
        (lambda p: (p / "pyproject.toml").write_text("x = " + "[" * 3000 + "]" * 3000 + "\n"), "pyproject.toml"),
    ],
)
def test_odd_project_trees_are_one_clear_error(tmp_path, make, message):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text("import bundler\n\n@bundler.service\nclass A:\n    pass\n")
    make(proj)
    res = run_cli("build", str(proj / "service.py"), "-o", str(tmp_path / "out.bundle.tar"))
    one_clear_error(res)
    assert message in res.stderr
    assert not (tmp_path / "out.bundle.tar").exists()


@pytest.mark.parametrize("what", ["unreadable file", "unreadable directory", "unwritable output"])
def test_permissions_as_a_non_root_user_are_one_clear_line(what):
    import tempfile as tf

    base = Path(tf.mkdtemp(dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        proj = base / "p"
        proj.mkdir()
        os.chmod(proj, 0o777)
        (proj / "service.py").write_text("import bundler\n\n@bundler.service\nclass A:\n    pass\n")
        out = base / "p.bundle.tar"
        os.chmod(base, 0o777)
        if what == "unreadable file":
            (proj / "secret.py").write_text("x = 1\n")
            os.chmod(proj / "secret.py", 0)
        elif what == "unreadable directory":
            (proj / "hidden").mkdir()
            os.chmod(proj / "hidden", 0)
        else:
            (base / "ro").mkdir()
            os.chmod(base / "ro", 0o555)
            out = base / "ro" / "p.bundle.tar"
        res = _as_nobody("build", str(proj / "service.py"), "-o", str(out), cwd=base)
        assert res.returncode in (1, 2), res.stderr
        assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr
        assert "ermission denied" in res.stderr
        assert not out.exists() and not list(out.parent.glob(".*.tmp"))
    finally:
        for p in base.rglob("*"):
            if p.is_dir():
                os.chmod(p, 0o755)
        import shutil as sh

        sh.rmtree(base, ignore_errors=True)


def test_two_pulls_into_one_directory_at_once_both_end_well(bundle, tmp_path):
    import sys

    cmd = [sys.executable, "-m", "bundler", "pull", str(bundle), "--to", str(tmp_path / "deploy")]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [(p.wait(60), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _ in results), results
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert run_cli("pull", str(bundle), "--to", str(tmp_path / "deploy"), "--verify-only").code == 0


def test_run_check_when_the_entry_class_is_missing_is_one_line(bundle, tmp_path):
    dest = tmp_path / "deploy"
    assert run_cli("pull", str(bundle), "--to", str(dest)).code == 0
    (dest / "src" / "service.py").write_text("import bundler\n")  # the class is gone
    res = run_cli("run", str(dest), "--check")
    one_clear_error(res)
    assert "has no class `Tiny`" in res.stderr


def test_sigint_during_a_build_exits_130_with_a_line_and_leaves_nothing(tmp_path):
    import signal
    import sys

    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text("import bundler\n\n@bundler.service\nclass A:\n    pass\n")
    with open(proj / "big.bin", "wb") as f:
        f.write(os.urandom(64 << 20))
    out = tmp_path / "out.bundle.tar"
    proc = subprocess.Popen([sys.executable, "-m", "bundler", "build", str(proj / "service.py"), "-o", str(out)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".out.bundle.tar.*.tmp")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    code, err = proc.wait(30), proc.stderr.read()
    if code == 0:
        pytest.skip("the build finished before the signal arrived")
    assert code == 130 and err.startswith("error: interrupted") and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".out.bundle.tar.*"))


def test_ctrl_c_is_not_an_exception_anything_may_catch():
    """Ctrl-C lands wherever the main thread is, inside code that turns an Exception into a
    fallback or a report: ``Thread.start()`` caught it there and broke its books (1 run in 25 of
    the test above printed a KeyError from a hash thread above the message)."""
    from bundler.cli.app import Interrupted
    from bundler.io.hashing import Stopped

    assert not issubclass(Interrupted, Exception) and not issubclass(Interrupted, KeyboardInterrupt)
    assert not issubclass(Stopped, Exception)


def test_sizes_of_skips_what_vanishes_midway(tmp_path, monkeypatch):
    """The polling helper the kill tests use: a directory removed while it is walked (as a registry
    removes a finished upload) is skipped, nested matches are found, a missing root is empty."""
    from ..conftest import sizes_of

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "data").write_bytes(b"xyz")
    (tmp_path / "a" / "other").write_bytes(b"1")
    (tmp_path / "gone").mkdir()
    real_scandir = os.scandir

    def scandir_racing(path):
        if Path(path).name == "gone":
            os.rmdir(path)  # removed between the parent's listing and this one
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir_racing)
    assert sizes_of(tmp_path, "data") == [3]
    assert not (tmp_path / "gone").exists()
    assert sizes_of(tmp_path / "missing", "data") == []
