"""Damaged and hostile archives: a fuzz of real bundles, bombs, truncation, other compressions; nothing written outside."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundler.ops.build import build

from ..conftest import run_cli

from .helpers import _damage, FUZZ, negative_size, one_clear_error, tree_digest


@FUZZ
@given(
    compressed=st.booleans(),
    how=st.sampled_from(["truncate", "flip"]),
    where=st.floats(0, 1, allow_nan=False),
    bit=st.integers(0, 7),
)
def test_damaged_bundles_end_in_a_bundler_error_and_write_nothing_outside(bundle, tmp_path, compressed, how, where, bit):
    from bundler.bundle.archive import read_manifest, require_ok, verify
    from bundler.ops.diff import diff
    from bundler.errors import BundlerError
    from bundler.oci.registry import push
    from bundler.ops.pull import pull

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
    from bundler.oci.registry import _plain_tar

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
    from bundler.bundle.archive import verify
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


def _headers(path: Path) -> list[tuple[int, tarfile.TarInfo]]:
    with tarfile.open(path) as t:
        return [(m.offset, m) for m in t.getmembers()]


@FUZZ
@given(member=st.integers(0, 50), at=st.integers(0, 511), value=st.integers(0, 255))
def test_the_fast_header_walk_accepts_only_the_headers_bundler_writes(bundle, tmp_path, member, at, value):
    """verify, pull and sign read headers by a fast inline comparison; whenever it accepts an
    archive (one header byte changed anywhere), every header must be byte for byte the one
    ``ustar_header`` makes for that name, size and mode, at the offsets tarfile finds, and each
    name safe; otherwise it must give the archive to tarfile (None)."""
    from bundler.bundle.archive import _simple_members, ustar_header
    from bundler.model.pins import safe_path

    headers = _headers(bundle)
    offset = headers[member % len(headers)][0]
    data = bytearray(bundle.read_bytes())
    data[offset + at] = value
    damaged = tmp_path / "damaged.bundle.tar"
    damaged.write_bytes(bytes(data))
    found = _simple_members(damaged)
    if found is None:
        return
    try:
        read = _headers(damaged)
    except tarfile.TarError as e:
        raise AssertionError(f"accepted what tarfile can't read: {e}") from None
    mtime = read[0][1].mtime
    assert read[0][1].name == "bundle.yaml"
    assert found == [(m.name, m.size, m.mode, m.offset_data) for _, m in read[1:]]
    for start, m in read:
        raw = m.name.encode("ascii")
        assert bytes(data[start:start + 512]) == ustar_header(raw, m.size, m.mode == 0o755, mtime)
        assert safe_path(m.name) and m.mode in (0o644, 0o755)


def test_the_fast_header_walk_refuses_a_negative_size_with_a_right_checksum(bundle, tmp_path):
    """``%o`` of -512 is a well-formed-looking size field that steps the walk back onto the same
    header; with its checksum made right it must still be refused, not loop."""
    import subprocess
    import sys

    from bundler.bundle.archive import _simple_members

    damaged = tmp_path / "negative.bundle.tar"
    damaged.write_bytes(negative_size(bundle.read_bytes(), _headers(bundle)[1][0]))
    assert _simple_members(bundle) is not None
    walk = "import sys; from pathlib import Path; from bundler.bundle.archive import _simple_members as w; print(w(Path(sys.argv[1])))"
    assert subprocess.run([sys.executable, "-c", walk, str(damaged)], capture_output=True, text=True, timeout=30).stdout == "None\n"
    res = run_cli("inspect", str(damaged), "--verify")
    assert res.code != 0 and "Traceback" not in res.stderr, res.stderr


def test_reading_one_member_past_a_negative_size_names_the_forged_header(bundle, tmp_path):
    """``read_member`` (sbom's read of the environment lock) walks the headers to a name; a forged
    negative size before it is named as what it is (the stream reader would only have said that
    it can't seek backwards)."""
    import subprocess
    import sys

    headers = _headers(bundle)
    damaged, wanted = tmp_path / "negative.bundle.tar", headers[-1][1].name
    damaged.write_bytes(negative_size(bundle.read_bytes(), headers[1][0]))
    read = ("import sys; from bundler.bundle.archive import read_member as r; from bundler.errors import UsageError\n"
            "try:\n    r(sys.argv[1], sys.argv[2], 1 << 20)\nexcept UsageError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", read, str(damaged), wanted], capture_output=True, text=True, timeout=30).stdout
    assert "negative size (-512): a forged header" in out
