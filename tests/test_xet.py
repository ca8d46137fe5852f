"""Xet-backed Hub files: pinned with their Xet hash, pulled through the real hf_xet (from a local
CAS that hf_xet itself writes and reads, behind the fake Hub's token route), verified in the
same pass, resumed from the bytes on disk, and fetched over plain HTTP when hf_xet fails."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tomllib
from pathlib import Path

import pytest

from bundler.ops.build import build
from bundler.hub.cache import snapshot_dir

from .conftest import run_cli, sizes_of

pytest.importorskip("hf_xet")  # installed with huggingface_hub on x86_64 and arm64

SERVICE = 'from bundler import HuggingFaceModel, service\n\n\n@service\nclass S:\n    m = HuggingFaceModel("acme/embed-small", revision="v1.0")\n'
LFS = {"model.safetensors", "onnx/model.onnx"}


@pytest.fixture
def xet_hub(hub, tmp_path):
    hub.enable_xet(tmp_path / "cas")
    return hub


@pytest.fixture
def bundle(xet_hub, tmp_path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE)
    return build(proj / "service.py", output=tmp_path / "xet.bundle.tar").path


def cache(tmp_path: Path) -> Path:
    return tmp_path / "hf-home" / "hub"


def test_lfs_files_are_pinned_with_their_xet_hash(bundle, xet_hub, tmp_path):
    (model,) = tomllib.loads((tmp_path / "proj" / "bundler.lock").read_text())["model"]
    xet = {f["path"]: f.get("xet") for f in model["files"]}
    for path, value in xet.items():
        if path in LFS:
            sha = next(f["hash"] for f in model["files"] if f["path"] == path).partition(":")[2]
            assert value == xet_hub.xet_hashes[sha]
        else:
            assert value is None  # a small git file has no Xet hash
    shown = json.loads(run_cli("inspect", str(bundle), "--json").stdout)
    assert {f["path"]: f.get("xet") for f in shown["models"][0]["files"]} == xet


def test_pull_fetches_xet_files_with_hf_xet_and_verifies_them(bundle, xet_hub, tmp_path):
    xet_hub.cdn_requests.clear()
    res = run_cli("pull", str(bundle), "--json", env={"BUNDLER_HOME": str(tmp_path / "deploy")})
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["downloaded"]["files"] == 5
    assert "continuing over HTTP" not in res.stderr
    assert not [p for m, p, _ in xet_hub.cdn_requests if m == "GET"]  # no LFS byte came over HTTP
    assert xet_hub.xet_token_requests
    from huggingface_hub import scan_cache_dir

    commit = tomllib.loads((tmp_path / "proj" / "bundler.lock").read_text())["model"][0]["commit"]
    snap = snapshot_dir(cache(tmp_path), "acme/embed-small", commit)
    for path in LFS:
        assert hashlib.sha256((snap / path).read_bytes()).hexdigest() in xet_hub.xet_hashes
    assert (snap / "model.safetensors").is_symlink()
    report = scan_cache_dir(cache(tmp_path))
    assert not report.warnings


def test_a_partial_file_is_resumed_through_xet_from_the_bytes_on_disk(bundle, xet_hub, tmp_path):
    (model,) = tomllib.loads((tmp_path / "proj" / "bundler.lock").read_text())["model"]
    entry = next(f for f in model["files"] if f["path"] == "model.safetensors")
    sha = entry["hash"].partition(":")[2]
    data = xet_hub.blob_by_sha256(sha)[1].data
    blobs = cache(tmp_path) / "models--acme--embed-small" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{sha}.bundler-partial").write_bytes(data[:200])
    res = run_cli("pull", str(bundle), env={"BUNDLER_HOME": str(tmp_path / "deploy")})
    assert res.code == 0, res.stderr
    assert (blobs / sha).read_bytes() == data
    # A partial whose first bytes are wrong is caught by the same-pass hash, never trusted.
    (blobs / sha).unlink()
    (blobs / f"{sha}.bundler-partial").write_bytes(b"\0" * 200)
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "again"), env={"BUNDLER_HOME": str(tmp_path / "deploy2")})
    assert res.code == 1
    assert "model.safetensors" in res.stderr and not (blobs / sha).exists()


@pytest.fixture
def big(xet_hub, tmp_path) -> tuple[Path, dict[str, bytes], Path]:
    """Four 24 MiB Xet files (big enough to catch a pull midway): the bundle, the bytes by sha256,
    and the cache folder's blobs directory."""
    import random

    rng = random.Random(14)
    files = {f"model-{i}.safetensors": rng.randbytes(24 << 20) for i in range(4)}
    xet_hub.create_repo("acme/big")
    xet_hub.commit("acme/big", {**files, "config.json": b"{}"})
    proj = tmp_path / "big"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE.replace('"acme/embed-small", revision="v1.0"', '"acme/big"'))
    bundle = build(proj / "service.py", output=tmp_path / "big.bundle.tar").path
    return bundle, {hashlib.sha256(b).hexdigest(): b for b in files.values()}, cache(tmp_path) / "models--acme--big" / "blobs"


def _signal_midway(big, tmp_path: Path, signum: int, *args: str) -> tuple[int, str]:
    """Start a pull of ``big`` and send it ``signum`` once a model file is neither absent nor
    complete; the exit code and stderr. Tried again in the rare run where the pull ends first."""
    import subprocess
    import sys

    bundle, data, blobs = big
    env = {**os.environ, "BUNDLER_HOME": str(tmp_path / "deploy")}
    for _ in range(3):
        shutil.rmtree(blobs.parent, ignore_errors=True)
        proc = subprocess.Popen([sys.executable, "-m", "bundler", "pull", str(bundle), "--to", str(tmp_path / "d"), *args],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sent = False
        while proc.poll() is None and not sent:
            if any(0 < size < 24 << 20 for size in sizes_of(blobs, "*.bundler-partial")):
                proc.send_signal(signum)
                sent = True
        code, err = proc.wait(60), proc.stderr.read()
        if sent:
            return code, err
    raise AssertionError("the pull was never caught midway")


def _assert_prefixes(big) -> None:
    """Each partial file a stopped pull left is a prefix of its true bytes."""
    _, data, blobs = big
    for p in blobs.glob("*.bundler-partial"):
        whole = data.get(p.name.partition(".")[0], b"{}")  # or config.json, the one small file
        left = p.read_bytes()
        assert left == whole[: len(left)], p.name


def test_a_killed_xet_download_leaves_a_prefix_the_next_pull_resumes(big, xet_hub, tmp_path):
    """hf_xet's ordered stream writes a fresh file front to back through the hashing writer: a
    pull killed midway leaves prefixes of the true bytes, the cache stays healthy for
    huggingface_hub's tools, and the next pull finishes it over Xet, not a byte over HTTP."""
    import signal

    from huggingface_hub import scan_cache_dir

    bundle, data, blobs = big
    code, _ = _signal_midway(big, tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    _assert_prefixes(big)  # (the one seen midway may have been completed just before the kill landed)
    assert not scan_cache_dir(cache(tmp_path)).warnings
    xet_hub.cdn_requests.clear()
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "d2"), env={"BUNDLER_HOME": str(tmp_path / "deploy")})
    assert res.code == 0, res.stderr
    assert "continuing over HTTP" not in res.stderr and not [p for m, p, _ in xet_hub.cdn_requests if m == "GET"]
    assert {p.name: p.read_bytes() for p in blobs.iterdir() if p.name in data} == data
    assert not scan_cache_dir(cache(tmp_path)).warnings


def test_ctrl_c_stops_a_pull_now(big, xet_hub, tmp_path):
    """Ctrl-C ends the pull with exit 130 and its one line: the download in flight stops at its
    next chunk, keeping a prefix to resume from, and the files still queued are not fetched (the
    worker pool's exit used to download every one of them first)."""
    import signal

    _, data, blobs = big
    code, err = _signal_midway(big, tmp_path, signal.SIGINT, "--jobs", "1")
    assert code == 130 and err.splitlines()[-1].startswith("error: interrupted"), err
    assert "Traceback" not in err and "Exception ignored" not in err
    _assert_prefixes(big)
    assert len([p for p in blobs.iterdir() if p.name in data]) < len(data) - 1  # the queued ones never started


def test_a_leftover_of_the_parallel_writer_is_discarded(bundle, xet_hub, tmp_path):
    """An earlier bundler had hf_xet's parallel writer fill a fresh file under its own name, with
    holes where a killed one stopped: that is never resumed from."""
    (model,) = tomllib.loads((tmp_path / "proj" / "bundler.lock").read_text())["model"]
    sha = next(f for f in model["files"] if f["path"] == "model.safetensors")["hash"].partition(":")[2]
    data = xet_hub.blob_by_sha256(sha)[1].data
    blobs = cache(tmp_path) / "models--acme--embed-small" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{sha}.bundler-xet").write_bytes(data[:200] + b"\0" * (len(data) - 200))  # a hole at the end
    res = run_cli("pull", str(bundle), env={"BUNDLER_HOME": str(tmp_path / "deploy")})
    assert res.code == 0, res.stderr
    assert "continuing over HTTP" not in res.stderr
    assert (blobs / sha).read_bytes() == data
    assert sorted(p.name for p in blobs.iterdir() if sha in p.name) == [sha]


def test_when_hf_xet_fails_the_pull_goes_on_over_http(bundle, xet_hub, tmp_path):
    shutil.rmtree(xet_hub.xet_cas.removeprefix("local://"))  # the CAS has nothing any more
    xet_hub.cdn_requests.clear()
    res = run_cli("pull", str(bundle), "--json", env={"BUNDLER_HOME": str(tmp_path / "deploy")})
    assert res.code == 0, res.stderr
    assert "Xet download failed" in res.stderr and "continuing over HTTP" in res.stderr
    assert {p.rpartition("/")[2] for m, p, _ in xet_hub.cdn_requests if m == "GET"} == {
        f["hash"].partition(":")[2]
        for f in tomllib.loads((tmp_path / "proj" / "bundler.lock").read_text())["model"][0]["files"]
        if f["path"] in LFS
    }


def test_huggingface_hubs_own_download_reads_the_same_fake_xet_hub(bundle, xet_hub, tmp_path):
    """The fake's Xet headers and token route are the ones huggingface_hub itself follows."""
    from huggingface_hub import snapshot_download

    commit = tomllib.loads((tmp_path / "proj" / "bundler.lock").read_text())["model"][0]["commit"]
    xet_hub.cdn_requests.clear()
    path = Path(snapshot_download("acme/embed-small", revision=commit, cache_dir=tmp_path / "theirs", endpoint=xet_hub.url))
    assert hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest() in xet_hub.xet_hashes
    assert not [p for m, p, _ in xet_hub.cdn_requests if m == "GET"]


def test_bytes_hf_xet_hands_over_unchecked_are_caught_by_the_pin(xet_hub, tmp_path):
    """hf_xet does not check what it reassembles: a damaged xorb in the CAS comes out as wrong
    bytes without an error (huggingface_hub's own download keeps them). bundler hashes every
    byte against the pin in the same pass, so the damaged file never enters the cache."""
    import os

    xet_hub.create_repo("acme/damaged")
    xorbs = Path(xet_hub.xet_cas.removeprefix("local://")) / "xet" / "xorbs" / "xorbs"
    before = set(os.listdir(xorbs))
    data = bytes(range(256)) * 64  # 16 KiB
    xet_hub.commit("acme/damaged", {"weights.safetensors": data})
    (new,) = [n for n in set(os.listdir(xorbs)) - before if not n.endswith(".tagset")]
    raw = bytearray((xorbs / new).read_bytes())
    raw[100] ^= 0xFF  # inside the first chunk's data
    (xorbs / new).write_bytes(bytes(raw))
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE.replace("acme/embed-small", "acme/damaged").replace('"v1.0"', '"main"'))
    out = build(proj / "service.py", output=tmp_path / "damaged.bundle.tar").path
    commit = tomllib.loads((proj / "bundler.lock").read_text())["model"][0]["commit"]

    from huggingface_hub import hf_hub_download

    theirs = Path(hf_hub_download("acme/damaged", "weights.safetensors", revision=commit, cache_dir=tmp_path / "theirs", endpoint=xet_hub.url))
    assert theirs.read_bytes() != data  # kept without a word

    res = run_cli("pull", str(out), env={"BUNDLER_HOME": str(tmp_path / "deploy")})
    assert res.code == 1
    assert "weights.safetensors: downloaded file does not match its pin (removed)" in res.stderr
    blob = cache(tmp_path) / "models--acme--damaged" / "blobs" / hashlib.sha256(data).hexdigest()
    assert not blob.exists()
