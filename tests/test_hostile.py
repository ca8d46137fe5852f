"""Hostile and damaged input: nothing written or deleted outside the target, one clear error."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bundler.build import build
from bundler.pins import safe_path, safe_paths
from bundler.store import Store

from .conftest import run_cli

SERVICE = '''
import bundler


@bundler.service
class Tiny:
    head = bundler.StoreModel("tiny-head:latest")
'''


@pytest.fixture
def bundle(tmp_path) -> Path:
    """A bundle needing no Hub: one embedded store model."""
    head = tmp_path / "head"
    head.mkdir()
    (head / "weights.bin").write_bytes(b"w" * 1000)
    Store().import_dir("tiny-head", head)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE)
    return build(proj / "service.py", output=tmp_path / "tiny.bundle.tar").path


def rewrite_manifest(bundle: Path, out: Path, edit) -> Path:
    """A copy of ``bundle`` whose bundle.yaml went through ``edit(dict)``."""
    with tarfile.open(bundle) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name == "bundle.yaml":
                d = yaml.safe_load(data)
                edit(d)
                data = yaml.safe_dump(d, sort_keys=False).encode()
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    return out


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def one_clear_error(res, code: int = 2) -> None:
    assert res.code == code, (res.code, res.stderr)
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr


@pytest.mark.parametrize("field,value", [("name", "/X/victim"), ("name", "../../x"), ("version", "../up"), ("name", 123), ("version", "a/b"),
                                         ("version", "v1\n")])  # `$` would let a final newline through
def test_manifest_names_that_would_become_paths_are_refused_everywhere(bundle, tmp_path, field, value):
    hostile = rewrite_manifest(bundle, tmp_path / "hostile.bundle.tar", lambda d: d.__setitem__(field, value))
    before = tree_digest(tmp_path)
    for args in (["inspect", str(hostile)], ["inspect", str(hostile), "--verify"], ["pull", str(hostile)], ["push", str(hostile), "oci://127.0.0.1:9/x:y"]):
        res = run_cli(*args, cwd=tmp_path)
        one_clear_error(res)
        assert "unsafe" in res.stderr or "must be a string" in res.stderr
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: d.__setitem__("schema", 0), "not a schema version"),
        (lambda d: d.__setitem__("schema", True), "not a schema version"),
        (lambda d: d.__setitem__("entrypoint", "service.py:Tinx"), "names no service"),
        (lambda d: d["sources"][0].__setitem__("size", 6.7), "not a byte count"),
        (lambda d: d.__setitem__("surprise", 1), "unknown field `surprise`"),
        (lambda d: d.__setitem__("services", "oops"), "services must be a list"),
        (lambda d: d["sources"][0].__setitem__("path", "\ud800.py"), "invalid Unicode"),
    ],
)
def test_manifest_schema_is_strict(bundle, tmp_path, edit, message):
    bad = rewrite_manifest(bundle, tmp_path / "bad.bundle.tar", edit)
    res = run_cli("inspect", str(bad), "--verify")
    one_clear_error(res)
    assert message in res.stderr


def test_yaml_alias_bomb_is_refused_at_once(bundle, tmp_path):
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 12)
    )
    raw = (b"schema: 1\nname: x\nversion: y\nmodels: []\nsources: []\n" + bomb.encode())
    out = tmp_path / "bomb.bundle.tar"
    with tarfile.open(out, "w") as t:
        info = tarfile.TarInfo("bundle.yaml")
        info.size = len(raw)
        t.addfile(info, io.BytesIO(raw))
    start = time.monotonic()
    res = run_cli("inspect", str(out))
    assert time.monotonic() - start < 10
    one_clear_error(res)
    assert "aliases" in res.stderr


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


def _leftover(path: Path, *, dir: bool = False) -> Path:
    path.mkdir(exist_ok=True) if dir else path.write_bytes(b"partial" * 1000)
    old = time.time() - 3600
    os.utime(path, (old, old))
    return path


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

    from bundler.scratch import sweep

    busy = _leftover(tmp_path / ".x.busy_123.unpack", dir=True)
    fd = os.open(busy, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        sweep(tmp_path, ".x.", ".unpack")
        assert busy.exists()
    finally:
        os.close(fd)
    assert sweep(tmp_path, ".x.", ".unpack") == [busy] and not busy.exists()


@pytest.mark.parametrize(
    "text,message",
    [
        ("version = true\n", "no valid format version"),
        ("version = 0\n", "no valid format version"),
        ("version = -3\n", "no valid format version"),
        ('version = 1\n[[model]]\nsource = "store"\nid = "a:latest"\nversion = "v1"\nfiles = [{path = "w", size = inf, hash = "blake3:' + "0" * 64 + '"}]\n', "not a byte count"),
        ("version = 1\nmodel = 5\n", "must be an array"),
        ("version = 1\nx = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ],
)
def test_damaged_lock_files_are_clear_errors(tmp_path, text, message):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE)
    (proj / "bundler.lock").write_text(text)
    res = run_cli("lock", str(proj / "service.py"), "--check")
    one_clear_error(res)
    assert message in res.stderr


def test_a_model_locked_twice_is_refused(tmp_path):
    entry = '[[model]]\nsource = "store"\nid = "a:latest"\nversion = "v1"\nfiles = [{path = "w", size = 1, hash = "blake3:' + "0" * 64 + '"}]\n'
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE)
    (proj / "bundler.lock").write_text("version = 1\n" + entry + entry)
    res = run_cli("lock", str(proj / "service.py"), "--check")
    one_clear_error(res)
    assert "locked twice" in res.stderr


def test_a_fifo_lock_file_does_not_hang(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE)
    os.mkfifo(proj / "bundler.lock")
    res = run_cli("lock", str(proj / "service.py"), "--check")
    one_clear_error(res)
    assert "not a regular file" in res.stderr


# --- damaged archives: a fuzz of real bundles ------------------------------------------------

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _damage(data: bytes, how: str, where: float, bit: int) -> bytes:
    at = min(int(where * len(data)), len(data) - 1)
    if how == "truncate":
        return data[:at]
    out = bytearray(data)
    out[at] ^= 1 << bit
    return bytes(out)


@FUZZ
@given(
    compressed=st.booleans(),
    how=st.sampled_from(["truncate", "flip"]),
    where=st.floats(0, 1, allow_nan=False),
    bit=st.integers(0, 7),
)
def test_damaged_bundles_end_in_a_bundler_error_and_write_nothing_outside(bundle, tmp_path, compressed, how, where, bit):
    from bundler.archive import read_manifest, require_ok, verify
    from bundler.diff import diff
    from bundler.errors import BundlerError
    from bundler.oci import push
    from bundler.pull import pull

    source = bundle
    if compressed:
        source = tmp_path / "tiny.bundle.tar.gz"
        if not source.exists():
            build(tmp_path / "proj" / "service.py", output=source)
    damaged = tmp_path / ("damaged" + "".join(source.suffixes))
    damaged.write_bytes(_damage(source.read_bytes(), how, where, bit))
    import tempfile as tf

    work = Path(tf.mkdtemp(dir=tmp_path))  # hypothesis reuses tmp_path across examples
    before = tree_digest(tmp_path / "proj")
    verdicts = []
    for action in (
        lambda: require_ok(damaged, verify(damaged)[1]),
        lambda: read_manifest(damaged),
        lambda: pull(damaged, to=work / "dest"),
        lambda: diff(read_manifest(damaged), read_manifest(source)),
        lambda: push(damaged, "oci://127.0.0.1:9/fuzz:x"),  # checked before any connection
    ):
        try:
            action()
            verdicts.append(True)
        except BundlerError as e:
            assert str(e)
            verdicts.append(False)
        except Exception as e:  # noqa: BLE001 - the property: nothing else escapes
            raise AssertionError(f"{type(e).__name__}: {e}") from None
    intact = verdicts[0]
    if not intact:
        assert verdicts[2] is False  # what verify refuses, pull refuses too
    assert tree_digest(tmp_path / "proj") == before
    assert sorted(p.name for p in work.iterdir()) in ([], ["dest"])
    if how == "truncate" and not compressed:
        with tarfile.open(source) as t:
            t.getmembers()
            needed = t.offset + 1024  # the last member and the end-of-archive marker
        assert intact == (min(int(where * source.stat().st_size), source.stat().st_size - 1) >= needed)


def test_push_refuses_a_damaged_bundle_before_it_connects(bundle, tmp_path):
    data = bytearray(bundle.read_bytes())
    with tarfile.open(bundle) as t:
        (weights,) = [m for m in t.getmembers() if m.name.endswith("weights.bin")]
    data[weights.offset_data + 10] ^= 0xFF  # inside the embedded model file
    damaged = tmp_path / "damaged.bundle.tar"
    damaged.write_bytes(bytes(data))
    res = run_cli("push", str(damaged), "oci://127.0.0.1:9/x:y")
    one_clear_error(res, code=1)
    assert "verification failed" in res.stderr and "modified:" in res.stderr


def test_a_gzip_bomb_is_refused_without_filling_the_disk(bundle, tmp_path):
    import gzip as gz

    from bundler.errors import UsageError
    from bundler.oci import _plain_tar

    bomb = tmp_path / "bomb.bundle.tar.gz"
    with gz.open(bomb, "wb") as f:
        f.write(bundle.read_bytes())
        f.write(bytes(64 << 20))  # zeros compress to almost nothing
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(UsageError, match="decompresses to more than its manifest allows"):
        _plain_tar(bomb, tmp_path, limit=bundle.stat().st_size + (1 << 20))
    assert not (tmp_path / "bundle.tar").exists() or (tmp_path / "bundle.tar").stat().st_size <= bundle.stat().st_size + (2 << 20)


def test_verify_only_rehashes_and_a_second_pull_restores_a_same_size_edit(bundle, tmp_path):
    dest = tmp_path / "deploy"
    assert run_cli("pull", str(bundle), "--to", str(dest)).code == 0
    (weights,) = list((dest / "store" / "tiny-head").rglob("weights.bin"))
    data = bytearray(weights.read_bytes())
    data[10] ^= 1
    weights.write_bytes(bytes(data))  # same size, other bytes
    res = run_cli("pull", str(bundle), "--to", str(dest), "--verify-only")
    assert res.code == 1 and "weights.bin" in res.stderr
    res = run_cli("pull", str(bundle), "--to", str(dest))
    assert res.code == 0, res.stderr
    assert weights.read_bytes() == b"w" * 1000


def test_a_member_larger_than_the_file_is_refused_at_once(bundle, tmp_path):
    from bundler.archive import verify
    from bundler.errors import UsageError

    raw = bytearray(bundle.read_bytes())
    with tarfile.open(bundle) as t:
        member = t.getmembers()[1]
    # rewrite the second member's size field (octal, 12 bytes at offset 124 of its header)
    header = member.offset
    raw[header + 124: header + 136] = b"%011o\0" % (10**11)
    raw[header + 148: header + 156] = b"        "
    raw[header + 148: header + 155] = b"%06o\0" % sum(raw[header: header + 512])
    forged = tmp_path / "forged.bundle.tar"
    forged.write_bytes(bytes(raw))
    start = time.monotonic()
    with pytest.raises(UsageError):
        verify(forged)
    assert time.monotonic() - start < 5


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB file system: writes past it fail with ENOSPC, as on a full disk."""
    import subprocess as sp

    mnt = tmp_path / "small"
    mnt.mkdir()
    if sp.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    yield mnt
    sp.run(["umount", str(mnt)], check=False)


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


def test_bz2_and_xz_bundles_are_named_not_called_truncated(bundle, tmp_path):
    import bz2
    import lzma

    for ext, data in (("bz2", bz2.compress(bundle.read_bytes())), ("xz", lzma.compress(bundle.read_bytes()))):
        f = tmp_path / f"b.bundle.tar.{ext}"
        f.write_bytes(data)
        for args in (["inspect", str(f)], ["inspect", str(f), "--verify"], ["pull", str(f), "--to", str(tmp_path / "d")]):
            res = run_cli(*args)
            one_clear_error(res)
            assert "a bz2 or xz archive" in res.stderr


def test_a_bundle_from_a_pipe_is_named_as_such(bundle):
    import subprocess as sp
    import sys

    res = sp.run(
        ["bash", "-c", f'"{sys.executable}" -m bundler inspect <(cat "{bundle}")'], capture_output=True, text=True
    )
    assert res.returncode == 2 and "not a regular file (a pipe or a device?)" in res.stderr


def test_an_expression_too_deep_for_the_parser_names_why(tmp_path):
    f = tmp_path / "service.py"
    f.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    res = run_cli("scan", str(f))
    one_clear_error(res)
    assert res.stderr.split("\n")[0].rstrip().endswith(("nested too deeply for Python's parser", "too many nested parentheses"))


# --- mutated manifests and lock files ----------------------------------------------------------
_VALUES = ["-7", "true", "null", '"../x"', '"/etc/passwd"', "6.7", "[]", "{}", '"2024-01-01"', '"a\\\\b"', "1e400",
           '"' + "x" * 300 + '"', '{"a": 1}', '[1, [2, [3]]]', "0", '"hf_"', '""']


@FUZZ
@given(picks=st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(_VALUES)), min_size=1, max_size=4))
def test_mutated_manifests_are_refused_or_stay_safe(bundle, picks):
    import re as _re

    from bundler.archive import read_manifest
    from bundler.errors import UsageError
    from bundler.manifest import loads
    from bundler.pins import safe_path

    text = read_manifest(bundle).to_yaml().decode()
    values = list(_re.finditer(r'(?<=": )("[^"\\n]*"|-?\d+|true|false|null)', text))
    for pos, new in picks:
        m = values[pos % len(values)]
        text = text[: m.start()] + new + text[m.end():]
        values = list(_re.finditer(r'(?<=": )("[^"\\n]*"|-?\d+|true|false|null)', text))
    try:
        m = loads(text.encode(), "mutated")
    except UsageError as e:
        assert str(e).startswith("mutated: ")
        return
    for name in m.members():
        safe_path(name)
    for p in m.pins:
        assert ".." not in (p.version or "") and "/" not in (p.version or "")
    assert "/" not in m.name and "/" not in m.version


@FUZZ
@given(picks=st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(_VALUES)), min_size=1, max_size=4))
def test_mutated_lock_files_are_refused_or_stay_safe(picks):
    import re as _re

    from bundler.errors import UsageError
    from bundler.lock import loads
    from bundler.pins import check_pin

    text = (Path(__file__).parent.parent / "fixtures" / "lock" / "golden.lock").read_text()
    pattern = r'(?<== )("[^"\n]*"|-?\d+|true|false)'
    for pos, new in picks:
        found = list(_re.finditer(pattern, text))
        m = found[pos % len(found)]
        text = text[: m.start()] + new.replace("null", '"null"') + text[m.end():]
    try:
        pins = loads(text, "mutated.lock")
    except UsageError as e:
        assert str(e).startswith("mutated.lock: ")
        return
    for p in pins:
        check_pin(p)


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


def _as_nobody(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI as an unprivileged user (root reads everything), with the system Python."""
    import shutil as sh
    import subprocess as sp
    import sysconfig

    site = sysconfig.get_paths()["purelib"]
    py = "/usr/bin/python3"
    if os.geteuid() != 0 or not sh.which("setpriv") or not Path(py).exists():
        pytest.skip("needs root, setpriv and /usr/bin/python3 to run a command as nobody")
    env = {"HOME": str(cwd), "BUNDLER_HOME": str(cwd / "home"), "PYTHONPATH": f"{Path(__file__).resolve().parent.parent}:{site}", "PATH": "/usr/bin:/bin"}
    probe = sp.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", py, "-c", "import bundler, blake3, yaml, typer"], env=env, capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"the package is not readable by nobody here: {probe.stderr.decode()[-200:]}")
    return sp.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", py, "-m", "bundler", *args], cwd=cwd, env=env, capture_output=True, text=True)


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
    from bundler.cli import Interrupted
    from bundler.hashing import Stopped

    assert not issubclass(Interrupted, Exception) and not issubclass(Interrupted, KeyboardInterrupt)
    assert not issubclass(Stopped, Exception)


def _raw_manifest(bundle: Path, out: Path, edit) -> Path:
    """A copy of ``bundle`` whose bundle.yaml bytes went through ``edit(bytes)``."""
    with tarfile.open(bundle) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name == "bundle.yaml":
                data = edit(data)
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    return out


@pytest.mark.parametrize(
    "edit,message",
    [
        # JSON keeps the last of two equal keys: a second size or hash must not slip past the check.
        (lambda raw: raw.replace(b'"size": ', b'"size": 1, "size": ', 1), "the key 'size' appears twice"),
        (lambda raw: raw.replace(b'"name": ', b'"name": "a", "name": ', 1), "the key 'name' appears twice"),
        (lambda raw: raw.replace(b'"path": "service.py"', b'"path": "\\ud800service.py"'), "not valid unicode"),
    ],
)
def test_json_manifest_tricks_are_refused(bundle, tmp_path, edit, message):
    bad = _raw_manifest(bundle, tmp_path / "bad.bundle.tar", edit)
    res = run_cli("inspect", str(bad), "--verify")
    one_clear_error(res)
    assert message in res.stderr


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.text(alphabet="a./\\\x00\ud800", max_size=6), max_size=4))
def test_the_batched_path_check_refuses_exactly_what_the_single_one_does(paths):
    def refused(check, arg) -> bool:
        try:
            check(arg)
        except ValueError:
            return True
        return False

    assert refused(safe_paths, paths) == any(refused(safe_path, p) for p in paths)


def test_inspect_shows_control_characters_of_a_hostile_manifest_escaped(bundle, tmp_path):
    """A manifest's strings reach the terminal: an escape sequence in one must not clear the screen,
    retitle the window or reorder the text (bidi override); each shows as its escape."""

    def edit(d):
        d["requirements"] = ["torch\x1b[2J"]
        d["services"][0]["resources"] = {"gpu": "1\x07\u202e"}

    evil = rewrite_manifest(bundle, tmp_path / "evil.bundle.tar", edit)
    res = run_cli("inspect", str(evil))
    assert res.code == 0, res.stderr
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout and "\u202e" not in res.stdout
    assert "requires    torch\\x1b[2J" in res.stdout
    assert "gpu=1\\x07\\u202e" in res.stdout


def test_diff_and_errors_show_control_characters_of_a_hostile_manifest_escaped(bundle, tmp_path):
    def add_source(d):
        d["sources"].append({"path": "evil\x1b]0;owned\x07.py", "size": 1, "hash": "blake3:" + "0" * 64})

    evil = rewrite_manifest(bundle, tmp_path / "evil.bundle.tar", add_source)
    res = run_cli("diff", str(bundle), str(evil))
    assert res.code == 1, res.stderr
    assert "+ source evil\\x1b]0;owned\\x07.py" in res.stdout and "\x1b" not in res.stdout

    def unknown_field(d):
        d["\x1b[2Jnote"] = 1

    res = run_cli("inspect", str(rewrite_manifest(bundle, tmp_path / "field.bundle.tar", unknown_field)))
    assert res.code == 2
    assert "unknown field `\\x1b[2Jnote`" in res.stderr and "\x1b" not in res.stderr


_HASH = "blake3:" + "0123456789abcdef" * 4
_entry_values = st.one_of(
    st.just(_HASH), st.text(max_size=80), st.integers(-2, 2**40), st.booleans(), st.none(),
    st.sampled_from(["blake3:" + "A" * 64, "blake3:" + "0" * 63, "blake3:blake3:" + "0" * 57, "sha256:" + "0" * 64,
                     "0" * 64 + "blake3:", "blake3:" + "0" * 63 + "\n"]),
)
_entries = st.lists(
    st.dictionaries(st.sampled_from(["path", "size", "hash", "xet", "mode"]), _entry_values, min_size=2, max_size=4)
    | st.fixed_dictionaries({"path": st.sampled_from(["a.py", "b.py", "c/d.py"]) | st.integers(), "size": _entry_values,
                             "hash": st.just(_HASH) | _entry_values}),
    max_size=4,
)


@given(_entries)
@example([{"path": "a.py", "size": 0, "hash": "0" * 64 + "blake3:"}])  # the prefix at the end
@example([{"path": "a.py", "size": 0, "hash": "blake3:" + "0" * 64}, {"path": "b.py", "size": 0, "hash": "blake3:blake3:" + "0" * 57}])
@example([{"path": "a.py", "size": True, "hash": _HASH}])
@example([{"path": "a.py", "size": 0, "hash": _HASH}, {"path": "a.py", "size": 1, "hash": _HASH}])
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_the_column_check_of_sources_accepts_only_what_the_entry_check_accepts(entries):
    """The fast check of a source list (columns in C) must never let through an entry that the
    entry-by-entry rules refuse: exactly path/size/hash, a str path, an int size >= 0 (not a
    bool), a lowercase blake3 hash, no path twice."""
    import re

    from bundler.manifest import _plain_sources

    def one_ok(f):
        return (f.keys() == {"path", "size", "hash"} and type(f["path"]) is str and type(f["size"]) is int and f["size"] >= 0
                and type(f["hash"]) is str and re.fullmatch(r"blake3:[0-9a-f]{64}", f["hash"]) is not None)

    ok = all(one_ok(f) for f in entries) and len({f["path"] for f in entries}) == len(entries)
    assert (_plain_sources(entries) is not None) == ok


def test_inspect_aligns_a_wide_service_name(bundle, tmp_path):
    def rename(d):
        d["services"][0]["name"] = "模型"

    res = run_cli("inspect", str(rewrite_manifest(bundle, tmp_path / "wide.bundle.tar", rename)))
    assert res.code == 0, res.stderr
    lines = res.stdout.splitlines()
    header, row = lines[lines.index("services") + 1], lines[lines.index("services") + 2]
    # Each of the two characters takes two columns: on screen the class starts 2 columns after
    # its index in the string, which is where the header's "class" is.
    assert row.index("service:Tiny") + 2 == header.index("class") == 11


def test_sizes_of_skips_what_vanishes_midway(tmp_path, monkeypatch):
    """The polling helper the kill tests use: a directory removed while it is walked (as a registry
    removes a finished upload) is skipped, nested matches are found, a missing root is empty."""
    from .conftest import sizes_of

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
