"""zstd bundles: `build --zstd` (or `-o x.bundle.tar.zst`) is the plain bundle's bytes in one zstd
stream, the same whatever the number of threads; every reader takes it and refuses damage."""

from __future__ import annotations

import io
import os
from pathlib import Path

import zstandard

from bundler.io.compression import zstd_writer

from .conftest import run_cli

SERVICE = "import bundler\n\n\n@bundler.service\nclass Svc:\n    pass\n"


def project(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "service.py").write_text(SERVICE)
    for i in range(40):
        (root / "data" / f"f{i:02d}.txt").write_text(f"line {i}\n" * (50 * i + 1))
    (root / "data" / "big.bin").write_bytes(os.urandom(3 << 20))
    return root / "service.py"


def built(tmp_path: Path) -> tuple[Path, Path]:
    svc = project(tmp_path / "proj")
    plain, packed = tmp_path / "b.bundle.tar", tmp_path / "b.bundle.tar.zst"
    for out, extra in ((plain, ()), (packed, ("--zstd",))):
        res = run_cli("build", str(svc), "--offline", "-o", str(out), *extra)
        assert res.code == 0, res.stderr
    return plain, packed


def test_a_zstd_bundle_is_the_plain_bundle_compressed_and_reads_everywhere(tmp_path):
    plain, packed = built(tmp_path)
    assert packed.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(packed.read_bytes()), read_across_frames=True).read() == plain.read_bytes()
    by_name = tmp_path / "c.bundle.tar.zst"  # the name alone asks for zstd
    assert run_cli("build", str(tmp_path / "proj" / "service.py"), "--offline", "-o", str(by_name)).code == 0
    assert by_name.read_bytes() == packed.read_bytes()
    res = run_cli("inspect", str(packed), "--verify")
    assert res.code == 0 and "verified: 43 members match the manifest" in res.stdout, res.stdout + res.stderr
    assert run_cli("diff", str(plain), str(packed)).stdout.startswith("identical")
    for bundle, dest in ((plain, "from-tar"), (packed, "from-zst")):
        assert run_cli("pull", str(bundle), "--to", str(tmp_path / dest)).code == 0
    tree = lambda d: {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}  # noqa: E731
    assert tree(tmp_path / "from-zst") == tree(tmp_path / "from-tar")


def test_the_bytes_do_not_depend_on_the_number_of_threads(tmp_path):
    plain, packed = built(tmp_path)
    outs = []
    for threads in (1, 2, 7):
        buf = io.BytesIO()
        with zstd_writer(buf, threads=threads) as w:
            w.write(plain.read_bytes())
        outs.append(buf.getvalue())
    assert outs[0] == outs[1] == outs[2] == packed.read_bytes()


def test_a_damaged_or_cut_zstd_bundle_is_refused_with_nothing_written(tmp_path):
    _, packed = built(tmp_path)
    data = bytearray(packed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped, cut = tmp_path / "flipped.bundle.tar.zst", tmp_path / "cut.bundle.tar.zst"
    flipped.write_bytes(bytes(data))
    cut.write_bytes(packed.read_bytes()[: len(data) // 3])
    # a flipped byte may still decompress (zstd's checksum is at the frame's end): then the member's
    # hash is what fails (exit 1); a cut stream is a damaged archive (exit 2). Nothing lands either way.
    for bad, codes in ((flipped, (1, 2)), (cut, (2,))):
        for args in (("inspect", str(bad), "--verify"), ("pull", str(bad), "--to", str(tmp_path / f"{bad.name}.out"))):
            res = run_cli(*args)
            assert res.code in codes and "Traceback" not in res.stderr, (args, res.stderr)
            assert str(bad) in res.stderr + res.stdout or "src/data/big.bin" in res.stderr + res.stdout, (args, res.stderr)
        assert not (tmp_path / f"{bad.name}.out").exists()
