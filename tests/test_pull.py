"""Deploy hosts: bundler pull into the standard HF cache, verification, resume, safety, runtime."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from bundler.ops.build import build
from bundler.hub.cache import snapshot_dir
from bundler.ops.pull import pull
from bundler.stores.local import Store

from .conftest import FIXTURES, run_cli, sizes_of

SERVICE = '''
import bundler
from bundler import HuggingFaceModel, StoreModel


@bundler.service(resources={"gpu": 1})
class Plain:
    embedder = HuggingFaceModel("acme/embed-small", revision="v1.0", include=["*.json", "*.safetensors"])
    head = StoreModel("plain-head:latest")

    def __init__(self):
        self.embed_path = self.embedder.resolve()
        self.head_path = self.head.resolve()
'''


def make_project(dir: Path, service: str = SERVICE) -> Path:
    dir.mkdir(parents=True, exist_ok=True)
    (dir / "service.py").write_text(service)
    return dir / "service.py"


@pytest.fixture
def bundle(hub, tmp_path) -> Path:
    """A built bundle of a bundler-spelled service: one Hub model, one embedded store model."""
    head = tmp_path / "head"
    head.mkdir()
    (head / "weights.bin").write_bytes(b"head weights" * 100)
    Store().import_dir("plain-head", head)
    svc = make_project(tmp_path / "proj")
    return build(svc, output=tmp_path / "plain.bundle.tar").path


def cache() -> Path:
    return Path(os.environ["HF_HUB_CACHE"])


def embed_commit() -> str:
    import tomllib

    lock = tomllib.loads((FIXTURES / "lock" / "golden.lock").read_text())
    return next(m["commit"] for m in lock["model"] if m["id"] == "acme/embed-small")


def test_pull_fetches_exactly_the_pinned_files_into_the_standard_cache(bundle, hub, tmp_path):
    deploy_home = tmp_path / "deploy-home"  # the deploy host's own store: empty
    res = run_cli("pull", str(bundle), "--json", env={"BUNDLER_HOME": str(deploy_home)})
    assert res.code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["unpacked"] and out["downloaded"]["files"] == 3
    assert out["dir"] == str(tmp_path / "plain")
    snap = snapshot_dir(cache(), "acme/embed-small", embed_commit())
    assert sorted(p.name for p in snap.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert (snap / "model.safetensors").is_symlink()  # huggingface_hub's own layout: snapshot -> blob
    assert (snap / "model.safetensors").read_bytes() == (FIXTURES / "hub/acme/embed-small/1/model.safetensors").read_bytes()
    unpacked = tmp_path / "plain"
    assert (unpacked / "bundle.yaml").is_file() and (unpacked / "src" / "service.py").is_file()
    version = Store().get("plain-head").version
    assert out["store_imported"] == [f"plain-head:{version}"]
    assert (deploy_home / "models" / "plain-head" / version / "files" / "weights.bin").read_bytes() == b"head weights" * 100


def test_second_pull_downloads_nothing(bundle, hub):
    pull(bundle)
    hub.requests.clear()
    result = pull(bundle)
    assert hub.requests == []
    assert result.downloaded == [] and len(result.cached) == 3 and result.unpacked is False


def test_models_load_offline_by_id_and_commit_after_a_pull(bundle, hub):
    pull(bundle)
    code = (
        "import sys\n"
        "from huggingface_hub import hf_hub_download, snapshot_download\n"
        "p = snapshot_download('acme/embed-small', revision=sys.argv[1], allow_patterns=['*.json', '*.safetensors'], local_files_only=True)\n"
        "f = hf_hub_download('acme/embed-small', 'config.json', revision=sys.argv[1])\n"
        "print(p); print(f)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    out = subprocess.run([sys.executable, "-c", code, embed_commit()], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    snap = snapshot_dir(cache(), "acme/embed-small", embed_commit())
    assert out.stdout.split() == [str(snap), str(snap / "config.json")]


def test_tampered_cache_file_is_detected_removed_and_refetched(bundle, hub):
    pull(bundle)
    snap = snapshot_dir(cache(), "acme/embed-small", embed_commit())
    blob = (snap / "model.safetensors").resolve()
    blob.write_bytes(b"\x00" * blob.stat().st_size)  # same size, other bytes
    res = run_cli("pull", str(bundle), "--verify-only")
    assert res.code == 1
    assert "acme/embed-small@" in res.stderr and "model.safetensors: modified (removed)" in res.stderr
    assert "expected sha256:27cc4866" in res.stderr and "found sha256:" in res.stderr
    assert not blob.exists()
    res = run_cli("pull", str(bundle), "--json")
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["downloaded"]["files"] == 1
    assert run_cli("pull", str(bundle), "--verify-only").code == 0


def test_a_hub_serving_other_bytes_fails_naming_both_hashes(bundle, hub):
    from .fakehub import Blob

    repo = hub.repos["acme/embed-small"]
    commit = embed_commit()
    good = repo.commits[commit]["tokenizer.json"].data
    repo.commits[commit]["tokenizer.json"] = Blob.of(b"X" * len(good))  # same size, other bytes
    res = run_cli("pull", str(bundle))
    assert res.code == 1
    assert "tokenizer.json: downloaded file does not match its pin (removed)" in res.stderr
    assert "expected git-sha1:0a4c04bf" in res.stderr and "found git-sha1:" in res.stderr
    assert not (snapshot_dir(cache(), "acme/embed-small", commit) / "tokenizer.json").exists()
    repo.commits[commit]["tokenizer.json"] = Blob.of(b'{"evil": true}\n')  # another size
    res = run_cli("pull", str(bundle))
    assert res.code == 1
    assert "tokenizer.json: downloaded file does not match its pin (removed) (expected git-sha1:0a4c04bf" in res.stderr
    assert "found size 15)" in res.stderr
    repo.commits[commit]["tokenizer.json"] = Blob.of(good)  # the Hub is fixed: a retry heals
    assert run_cli("pull", str(bundle)).code == 0


def test_files_pinned_by_a_git_blob_id_carry_a_sha256_that_pull_checks(hub, tmp_path):
    import hashlib

    from bundler.bundle.archive import read_manifest

    svc = make_project(tmp_path / "proj-sha", 'import bundler\n\n@bundler.service\nclass S:\n    m = bundler.HuggingFaceModel("acme/embed-small")\n')
    bundle = build(svc, output=tmp_path / "sha.bundle.tar").path
    manifest = read_manifest(bundle)
    assert manifest.schema == 6
    (pin,) = manifest.pins
    commit = pin.commit
    served = hub.repos["acme/embed-small"].commits[commit]
    for f in pin.files:  # every pinned byte is covered by a sha256: the LFS id, or the one lock added
        assert (f.hash if f.sha256 is None else f"sha256:{f.sha256}") == "sha256:" + hashlib.sha256(served[f.path].data).hexdigest()
    assert {f.path for f in pin.files if f.sha256 is not None} >= {"config.json", "tokenizer.json"}
    assert [f.path for f in pin.files if f.sha256 is None] == [f.path for f in pin.files if f.hash.startswith("sha256:")]

    # a manifest whose sha256 beside the blob id is another file's: the download is refused
    lock = svc.parent / "bundler.lock"
    wrong = "0" * 64
    lock.write_text(lock.read_text().replace(hashlib.sha256(served["tokenizer.json"].data).hexdigest(), wrong))
    forged = build(svc, output=tmp_path / "forged.bundle.tar", offline=True).path
    res = run_cli("pull", str(forged))
    assert res.code == 1
    assert "tokenizer.json: downloaded file does not match its pin (removed)" in res.stderr, res.stderr
    assert f"expected sha256:{wrong[:8]}" in res.stderr and "found sha256:" in res.stderr, res.stderr
    assert not (snapshot_dir(cache(), "acme/embed-small", commit) / "tokenizer.json").exists()
    assert run_cli("pull", str(bundle)).code == 0
    # the file is in the cache now, verified for the honest pin; the forged one still fails on it
    res = run_cli("pull", str(forged), "--verify-only")
    assert res.code == 1 and "tokenizer.json" in res.stderr, res.stderr


def test_lock_refuses_a_plain_file_that_is_not_the_blob_the_listing_names(hub, tmp_path):
    from .fakehub import Blob

    repo = hub.repos["acme/embed-small"]
    commit = repo.refs["main"]
    good = repo.commits[commit]["config.json"]
    repo.commits[commit]["config.json"] = Blob(b'{"evil": 1}', good.sha256, good.oid)  # listed as the good one
    svc = make_project(tmp_path / "proj-bad", 'import bundler\n\n@bundler.service\nclass S:\n    m = bundler.HuggingFaceModel("acme/embed-small")\n')
    res = run_cli("lock", str(svc))
    assert res.code != 0 and "config.json" in res.stderr and "is not the file the listing names" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (svc.parent / "bundler.lock").exists()


def test_interrupted_pull_resumes_and_ends_verified(hub, tmp_path):
    weights = os.urandom(24 << 20)  # huggingface_hub writes in 10 MiB chunks: a partial needs more
    hub.create_repo("acme/big")
    hub.commit("acme/big", {"config.json": b"{}", "model.safetensors": weights})
    svc = make_project(tmp_path / "proj-big", 'import bundler\n\n@bundler.service\nclass Big:\n    m = bundler.HuggingFaceModel("acme/big")\n')
    bundle = build(svc, output=tmp_path / "big.bundle.tar").path
    hub.slow["model.safetensors"] = 0.01
    proc = subprocess.Popen([sys.executable, "-m", "bundler", "pull", str(bundle), "--jobs", "1"], stdout=subprocess.DEVNULL, stderr=open(tmp_path / "pull.log", "w"))
    deadline = time.monotonic() + 30
    partial = False
    while time.monotonic() < deadline and not partial:
        partial = any(size > (1 << 20) for size in sizes_of(cache() / "models--acme--big" / "blobs", "*.bundler-partial"))
        time.sleep(0.05)
    assert partial, (tmp_path / "pull.log").read_text()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    hub.slow.clear()
    hub.ranges.clear()
    result = pull(bundle)
    assert result.failures == []
    assert [(path, r) for path, r in hub.ranges if path == "model.safetensors" and not r.startswith("bytes=0-")]
    snap = snapshot_dir(cache(), "acme/big", hub.repos["acme/big"].refs["main"])
    assert (snap / "model.safetensors").read_bytes() == weights


def test_concurrent_pulls_sharing_a_model_both_end_verified(hub, tmp_path):
    bundles = []
    for name in ("one", "two"):
        extra = '    other = bundler.HuggingFaceModel("acme/rerank-tiny", exclude="*.bin")\n' if name == "two" else ""
        svc = make_project(tmp_path / f"proj-{name}", f'import bundler\n\n@bundler.service\nclass S:\n    m = bundler.HuggingFaceModel("acme/embed-small")\n{extra}')
        bundles.append(build(svc, output=tmp_path / f"{name}.bundle.tar").path)
    hub.slow["model.safetensors"] = 0.05
    procs = [subprocess.Popen([sys.executable, "-m", "bundler", "pull", str(b), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for b in bundles]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert json.loads(out)["ok"] is True
    for b in bundles:
        assert pull(b, verify_only=True).failures == []


# --- untrusted archives -------------------------------------------------------------------------
def _evil(bundle: Path, out: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(bundle) as tin, tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tout:
        for m in tin.getmembers():
            tout.addfile(m, tin.extractfile(m))
            if m.name == "bundle.yaml":
                tout.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return out


def _info(name: str, type: bytes = tarfile.REGTYPE, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    i = tarfile.TarInfo(name)
    i.type, i.size, i.linkname = type, size, linkname
    return i


@pytest.mark.parametrize(
    "member, data, message",
    [
        (_info("src/../../evil.py", size=4), b"evil", "unsafe path"),
        (_info("/tmp/evil-abs.py", size=4), b"evil", "unsafe path"),
        (_info("src/link", tarfile.SYMTYPE, linkname="../../../evil.py"), b"", "is a link"),
        (_info("src/hard", tarfile.LNKTYPE, linkname="bundle.yaml"), b"", "is a link"),
        (_info("src/dev", tarfile.CHRTYPE), b"", "is a special file"),
        (_info("src/unlisted.py", size=4), b"evil", "is not in the manifest"),
    ],
)
def test_malicious_members_are_refused_and_nothing_is_written(bundle, tmp_path, member, data, message):
    evil = _evil(bundle, tmp_path / "evil" / "x.bundle.tar", member, data) if (tmp_path / "evil").mkdir() is None else None
    before = sorted(p.name for p in tmp_path.iterdir())
    res = run_cli("pull", str(evil), "--to", str(tmp_path / "evil" / "out"))
    assert res.code == 2, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "evil" / "out").exists()
    assert sorted(p.name for p in (tmp_path / "evil").iterdir()) == ["x.bundle.tar"]  # no temp dirs left
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not Path("/tmp/evil-abs.py").exists()


def test_member_larger_than_the_manifest_says_is_refused(bundle, tmp_path):
    out = tmp_path / "big.bundle.tar"
    with tarfile.open(bundle) as tin, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read()
            if m.name == "src/service.py":
                data += b"\n" * 4096
                m.size = len(data)
            tout.addfile(m, io.BytesIO(data))
    res = run_cli("pull", str(out), "--to", str(tmp_path / "dest"))
    assert res.code == 2
    assert "member 'src/service.py' is" in res.stderr and "but the manifest says" in res.stderr
    assert not (tmp_path / "dest").exists()


def test_existing_foreign_directory_is_not_overwritten(bundle, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "mine"))
    assert res.code == 2 and "was not unpacked by bundler" in res.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


# --- serving from the bundle --------------------------------------------------------------------
def test_run_check_resolves_every_model_offline(bundle, hub, tmp_path):
    pull(bundle)
    env = {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    hub.requests.clear()
    res = run_cli("run", str(tmp_path / "plain"), "--check", env=env)
    assert res.code == 0, res.stderr
    snap = snapshot_dir(cache(), "acme/embed-small", embed_commit())
    head = Store().get("plain-head")
    assert f"embedder: {snap}" in res.stdout
    assert f"head: {tmp_path / 'plain' / 'store' / 'plain-head' / head.version}" in res.stdout
    assert "ok: Plain loaded" in res.stdout
    assert hub.requests == []


def test_service_module_finds_its_bundle_without_any_setting(bundle, tmp_path):
    pull(bundle)
    code = "import service\ns = service.Plain()\nprint(s.embed_path)\n"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(tmp_path / "plain" / "src")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(snapshot_dir(cache(), "acme/embed-small", embed_commit()))


def test_missing_pinned_file_fails_clearly_at_resolve(bundle, tmp_path):
    pull(bundle)
    snap = snapshot_dir(cache(), "acme/embed-small", embed_commit())
    (snap / "config.json").unlink()
    res = run_cli("run", str(tmp_path / "plain"), "--check")
    assert res.code == 1  # found before the service is imported
    assert f"model acme/embed-small@v1.0 ({embed_commit()}): config.json is missing in {snap}" in res.stderr
    assert "bundler pull" in res.stderr and "Traceback" not in res.stderr


def test_tampered_file_fails_at_resolve(bundle, tmp_path):
    pull(bundle)
    blob = (snapshot_dir(cache(), "acme/embed-small", embed_commit()) / "tokenizer.json").resolve()
    data = blob.read_bytes()
    blob.write_bytes(data[:-2] + b"X\n")
    res = run_cli("run", str(tmp_path / "plain"), "--check")
    assert res.code == 1
    assert "tokenizer.json was modified (expected git-sha1:0a4c04bf" in res.stderr


def test_embed_hub_bundles_pull_with_no_network(hub, tmp_path, monkeypatch):
    svc = make_project(tmp_path / "proj-air", 'import bundler\n\n@bundler.service\nclass Air:\n    m = bundler.HuggingFaceModel("acme/embed-small", revision="v1.0", include="*.safetensors")\n')
    res = run_cli("build", str(svc), "--embed-hub", "-o", str(tmp_path / "air.bundle.tar"), "--json")
    assert res.code == 0, res.stderr
    bundle = tmp_path / "air.bundle.tar"
    commit = embed_commit()
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        assert names[-1] == f"hub/acme/embed-small/{commit}/model.safetensors"
        weights = tar.extractfile(names[-1]).read()
    assert weights == (FIXTURES / "hub/acme/embed-small/1/model.safetensors").read_bytes()
    assert run_cli("inspect", str(bundle), "--verify").code == 0
    # The deploy host: another cache, no Hub at all.
    deploy = {"HF_HUB_CACHE": str(tmp_path / "air-cache"), "HF_ENDPOINT": "http://127.0.0.1:9", "BUNDLER_HOME": str(tmp_path / "air-home")}
    hub.requests.clear()
    res = run_cli("pull", str(bundle), "--json", env={**deploy, "HF_HUB_OFFLINE": "1"})
    assert res.code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["downloaded"]["files"] == 0 and out["embedded"] == {"files": 1, "bytes": len(weights)}
    placed = snapshot_dir(tmp_path / "air-cache", "acme/embed-small", commit) / "model.safetensors"
    assert placed.is_symlink() and placed.read_bytes() == weights
    assert hub.requests == []
    res = run_cli("run", str(tmp_path / "air"), "--check", env={**deploy, "HF_HUB_OFFLINE": "1"})
    assert res.code == 0, res.stderr
    assert str(placed.parent) in res.stdout


def test_embed_hub_offline_needs_the_files_cached(hub, tmp_path):
    svc = make_project(tmp_path / "proj-off", 'import bundler\n\n@bundler.service\nclass Off:\n    m = bundler.HuggingFaceModel("acme/rerank-tiny", exclude="*.bin")\n')
    from bundler.ops.lock import lock

    lock(svc)
    res = run_cli("build", str(svc), "--embed-hub", "--offline", "-o", str(tmp_path / "off.bundle.tar"))
    assert res.code == 2
    assert "--embed-hub: acme/rerank-tiny@" in res.stderr and "is missing in the Hugging Face cache" in res.stderr
    assert not (tmp_path / "off.bundle.tar").exists()


@pytest.mark.parametrize(
    "old, new",
    [
        ('"path": "config.json"', '"path": "../../../escaped.json"'),
        ('"id": "acme/embed-small"', '"id": "../../acme"'),
        ('"hash": "git-sha1:5d13531d5c5344f9076d2af02acd300008355e70"', '"hash": "git-sha1:../../../../escaped"'),
    ],
)
def test_manifest_values_that_would_become_unsafe_paths_are_refused(bundle, tmp_path, old, new):
    with tarfile.open(bundle) as tin:
        members = [(m, tin.extractfile(m).read()) for m in tin.getmembers()]
    evil = tmp_path / "evil.bundle.tar"
    with tarfile.open(evil, "w", format=tarfile.PAX_FORMAT) as tout:
        for m, data in members:
            if m.name == "bundle.yaml":
                assert old.encode() in data
                data = data.replace(old.encode(), new.encode())
                m.size = len(data)
            tout.addfile(m, io.BytesIO(data))
    res = run_cli("pull", str(evil), "--to", str(tmp_path / "out"))
    assert res.code == 2, res.stderr
    assert "the manifest is malformed or unsafe" in res.stderr
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.rglob("escaped*"))


def test_a_gated_model_pulled_without_a_token_says_set_hf_token(hub, tmp_path, monkeypatch):
    from .fakehub import GOOD_TOKEN

    monkeypatch.setenv("HF_TOKEN", GOOD_TOKEN)
    svc = make_project(tmp_path / "gated", 'import bundler\n\n@bundler.service\nclass G:\n    m = bundler.HuggingFaceModel("acme/gated-model")\n')
    bundle = build(svc, output=tmp_path / "g.bundle.tar").path
    monkeypatch.delenv("HF_TOKEN")
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "deploy"))
    assert res.code == 1 and "Traceback" not in res.stderr
    assert "is gated and no token is set (set HF_TOKEN" in res.stderr
    assert res.stderr.count("is gated") == 1 and "and 1 more file(s)" in res.stderr  # one line for the repository


def test_a_partial_file_that_already_holds_every_byte_is_verified_not_refetched(bundle, hub, tmp_path):
    from bundler.bundle.archive import read_manifest

    pin = next(p for p in read_manifest(bundle).pins if p.source == "huggingface")
    entry = next(f for f in pin.files if f.path == "model.safetensors")
    blobs = cache() / ("models--" + pin.id.replace("/", "--")) / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{entry.hash.partition(':')[2]}.bundler-partial").write_bytes((FIXTURES / "hub/acme/embed-small/1/model.safetensors").read_bytes())
    hub.requests.clear()
    res = run_cli("pull", str(bundle), "--json")
    assert res.code == 0, res.stderr
    assert not any("model.safetensors" in path for _, path in hub.requests)  # no 416 loop: nothing asked


def test_without_symlinks_the_snapshot_holds_real_files(bundle, hub, tmp_path):
    res = run_cli("pull", str(bundle), env={"HF_HUB_DISABLE_SYMLINKS": "1"})
    assert res.code == 0, res.stderr
    snap = snapshot_dir(cache(), "acme/embed-small", embed_commit())
    f = snap / "model.safetensors"
    assert f.is_file() and not f.is_symlink()
    assert f.read_bytes() == (FIXTURES / "hub/acme/embed-small/1/model.safetensors").read_bytes()


def test_a_pinned_file_gone_from_the_hub_says_so_and_to_relock(bundle, hub, tmp_path):
    hub.repos["acme/embed-small"].commits.clear()  # the history was rewritten: the commit is gone
    res = run_cli("pull", str(bundle))
    assert res.code == 1 and "Traceback" not in res.stderr
    assert "try again later" not in res.stderr
    assert "bundler lock --upgrade-model acme/embed-small" in res.stderr


def test_the_cache_stays_healthy_for_huggingface_hub_tools(bundle, hub, tmp_path):
    from huggingface_hub import scan_cache_dir

    res = run_cli("pull", str(bundle))
    assert res.code == 0, res.stderr
    info = scan_cache_dir(cache())
    assert list(info.warnings) == []
    (repo,) = [r for r in info.repos if r.repo_id == "acme/embed-small"]
    (rev,) = list(repo.revisions)
    assert rev.commit_hash == embed_commit()
    assert set(rev.refs) == {f"bundler/{embed_commit()}"}  # referenced: `hf cache prune` keeps it
    assert not (cache() / "models--acme--embed-small" / "refs" / "main").exists()  # main stays the Hub's


def test_large_members_hashed_beside_the_copy_are_exact_both_ways(tmp_path):
    """Members past the pipelining threshold are hashed on a second thread while they are
    copied (build and pull): the hashes must be those of the bytes, and one flipped byte in the
    middle of a member must still be caught."""
    import hashlib

    from blake3 import blake3

    weights = tmp_path / "weights"
    weights.mkdir()
    data = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(20 << 15))  # 20 MiB, deterministic
    (weights / "big.bin").write_bytes(data)
    Store().import_dir("large", weights)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    w = bundler.StoreModel('large:latest')\n")
    result = build(proj / "service.py", output=tmp_path / "large.bundle.tar")
    (entry,) = result.manifest.pins[0].files
    assert entry.hash == "blake3:" + blake3(data).hexdigest()
    res = run_cli("pull", str(result.path), "--to", str(tmp_path / "out"), env={"BUNDLER_HOME": str(tmp_path / "deploy")})
    assert res.code == 0, res.stderr
    assert (tmp_path / "out" / result.manifest.model_dir(result.manifest.pins[0]) / "big.bin").read_bytes() == data
    with tarfile.open(result.path) as tar:
        offset = next(m for m in tar.getmembers() if m.name.endswith("big.bin")).offset_data
    raw = bytearray(result.path.read_bytes())
    raw[offset + (10 << 20)] ^= 1
    bad = tmp_path / "bad.bundle.tar"
    bad.write_bytes(bytes(raw))
    res = run_cli("pull", str(bad), "--to", str(tmp_path / "bad"), env={"BUNDLER_HOME": str(tmp_path / "deploy2")})
    assert res.code == 1
    assert "big.bin' does not match the manifest's hash" in res.stderr
    assert not (tmp_path / "bad").exists()


def test_every_download_sends_range_and_no_token_reaches_the_cdn(bundle, hub, tmp_path, monkeypatch):
    """The Hub's bridge refuses a GET without Range for files over 50 GB (400): bundler asks for a
    range from the first request. LFS bytes come through the CDN redirect, which must never see
    the token."""
    hub.require_range = True
    monkeypatch.setenv("HF_TOKEN", "hf_some_token")
    res = run_cli("pull", str(bundle), "--json", env={"BUNDLER_HOME": str(tmp_path / "deploy-home")})
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["downloaded"]["files"] == 3
    cdn = [(m, p, auth) for m, p, auth in hub.cdn_requests if m == "GET"]
    assert cdn and all(auth is None for _, _, auth in cdn)
    assert {p for p, r in hub.ranges} >= {"model.safetensors", "config.json"}
    assert all(r.startswith("bytes=") for _, r in hub.ranges)


def test_a_rate_limited_download_is_retried_after_the_wait_the_hub_asks(bundle, hub, tmp_path):
    hub.rate_limited = {"/acme/embed-small/resolve/": 2}
    res = run_cli("pull", str(bundle), "--json", env={"BUNDLER_HOME": str(tmp_path / "deploy-home")})
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["downloaded"]["files"] == 3
    assert hub.rate_limited["/acme/embed-small/resolve/"] == 0


def test_parallel_downloads_agree_that_symlinks_work(tmp_path):
    """Eight downloads into one snapshot directory probe symlink support at the same moment; a
    probe they shared made some of them see the other's file, fail, and copy instead of link."""
    import threading

    from bundler.ops import pull as pull_module

    for i in range(40):
        directory = tmp_path / f"snap{i}"
        directory.mkdir()
        barrier = threading.Barrier(8)
        results: list[bool] = []

        def probe() -> None:
            barrier.wait()
            results.append(pull_module._use_symlinks(directory))

        threads = [threading.Thread(target=probe) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [True] * 8, f"round {i}: {results}"
        assert [p.name for p in directory.iterdir()] == []  # no probe left behind


TWO_SPELLINGS = '''
import bundler
from bundler import HuggingFaceModel


@bundler.service
class Twins:
    a = HuggingFaceModel("acme/embed-small", revision="v1.0", include=["*.json", "*.safetensors"])
    b = HuggingFaceModel("ACME/Embed-Small", revision="v1.0", include=["*.json", "*.safetensors"])
'''


def test_two_spellings_of_one_repo_are_downloaded_once_and_linked(hub, tmp_path):
    svc = make_project(tmp_path / "twins", TWO_SPELLINGS)
    built = build(svc, output=tmp_path / "twins.bundle.tar")
    pins = {p.id: p for p in built.manifest.pins}
    assert pins["ACME/Embed-Small"].hub_id == "acme/embed-small" and pins["acme/embed-small"].hub_id is None
    hub.ranges.clear()
    res = run_cli("pull", str(built.path), "--json", "--to", str(tmp_path / "deploy"))
    assert res.code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["downloaded"]["files"] == 3
    assert sorted(out["linked"]) == ["ACME/Embed-Small/config.json", "ACME/Embed-Small/model.safetensors", "ACME/Embed-Small/tokenizer.json"]
    assert sorted(p for p, _ in hub.ranges) == ["config.json", "model.safetensors", "tokenizer.json"]  # each fetched once
    commit = embed_commit()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        ours, twin = (snapshot_dir(cache(), rid, commit) / name for rid in ("acme/embed-small", "ACME/Embed-Small"))
        assert twin.read_bytes() == ours.read_bytes()
        assert os.stat(twin).st_ino == os.stat(ours).st_ino  # one blob, two names
    # Removing the blob under one name (as a tampered file is removed) leaves the other name's:
    # the next pull links it back from there instead of downloading it.
    blob = snapshot_dir(cache(), "ACME/Embed-Small", commit) / "model.safetensors"
    os.unlink(blob.resolve())
    hub.ranges.clear()
    again = run_cli("pull", str(built.path), "--json", "--to", str(tmp_path / "deploy"))
    assert again.code == 0, again.stderr
    assert json.loads(again.stdout)["linked"] == ["ACME/Embed-Small/model.safetensors"] and hub.ranges == []
    assert blob.read_bytes() == (FIXTURES / "hub/acme/embed-small/1/model.safetensors").read_bytes()


def test_a_spelling_whose_twin_is_already_cached_is_linked_not_downloaded(bundle, hub, tmp_path):
    assert run_cli("pull", str(bundle)).code == 0  # acme/embed-small is in the cache now
    svc = make_project(tmp_path / "other", SERVICE.replace('"acme/embed-small"', '"Acme/Embed-Small"'))
    other = build(svc, output=tmp_path / "other.bundle.tar")
    hub.ranges.clear()
    res = run_cli("pull", str(other.path), "--to", str(tmp_path / "deploy"))
    assert res.code == 0, res.stderr
    assert "nothing downloaded, 0 already cached, 3 linked from another spelling of their repository" in res.stderr
    assert hub.ranges == []
    snap = snapshot_dir(cache(), "Acme/Embed-Small", embed_commit())
    assert (snap / "model.safetensors").read_bytes() == (FIXTURES / "hub/acme/embed-small/1/model.safetensors").read_bytes()


def test_an_offline_pull_of_files_nobody_has_is_one_error_with_the_ways_out(bundle, tmp_path):
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "off"), "--json", env={"HF_HUB_OFFLINE": "1"})
    assert res.code == 1 and "Traceback" not in res.stderr
    out = json.loads(res.stdout)
    assert "3 pinned Hub file(s) of acme/embed-small are not in the cache" in out["error"]
    assert "HF_HUB_OFFLINE" in out["error"] and "--embed-hub" in out["hint"] and out["exit"] == 1
    assert res.stderr.count("error:") == 1  # one error, not one per file


def test_a_readme_only_change_downloads_nothing_and_says_so(bundle, tmp_path):
    pull(bundle)
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "again"))
    assert res.code == 0, res.stderr
    assert "unpacked; nothing downloaded, 3 already cached" in res.stderr


def test_pull_of_a_pulled_directory_verifies_and_completes_it_in_place(bundle, tmp_path):
    pull(bundle)
    dest = tmp_path / "plain"
    res = run_cli("pull", str(dest), "--verify-only", "--json")
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["ok"]
    snap = snapshot_dir(cache(), "acme/embed-small", embed_commit())
    (snap / "config.json").unlink()
    res = run_cli("pull", str(dest), "--verify-only")
    assert res.code == 1 and "config.json: missing" in res.stderr
    res = run_cli("pull", str(dest), "--json")  # fetches what the cache lacks, in place
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["downloaded"]["files"] == 1
    assert run_cli("pull", str(dest), "--verify-only").code == 0
    res = run_cli("pull", str(tmp_path), "--verify-only")
    assert res.code == 2 and "not a directory `bundler pull` made" in res.stderr


def test_a_leftover_partial_larger_than_the_pinned_file_is_started_over(bundle, hub):
    from bundler.bundle.archive import read_manifest

    pin = next(p for p in read_manifest(bundle).pins if p.id == "acme/embed-small")
    entry = max(pin.files, key=lambda f: f.size)
    blobs = cache() / "models--acme--embed-small" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{entry.hash.partition(':')[2]}.bundler-partial").write_bytes(b"z" * (entry.size + 1000))
    res = run_cli("pull", str(bundle), "--json")
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["ok"]
    snap = snapshot_dir(cache(), "acme/embed-small", pin.commit)
    assert (snap / entry.path).read_bytes() == (FIXTURES / "hub/acme/embed-small/1" / entry.path).read_bytes()


def test_a_library_pull_leaves_huggingface_hubs_settings_as_it_found_them(bundle):
    from huggingface_hub.utils import are_progress_bars_disabled
    from huggingface_hub.utils import logging as hf_logging

    bars = are_progress_bars_disabled()  # the tests' environment decides it at import
    hf_logging.set_verbosity_info()
    try:
        assert pull(bundle).downloaded  # files were fetched, with huggingface_hub quiet meanwhile
        assert hf_logging.get_verbosity() == hf_logging.INFO and are_progress_bars_disabled() == bars
    finally:
        hf_logging.set_verbosity_warning()


def test_no_pickle_refuses_a_pickle_renamed_safetensors_before_it_enters_the_cache(hub, tmp_path):
    import pickle

    hub.create_repo("acme/sneaky")
    hub.commit("acme/sneaky", {"config.json": b"{}", "model.safetensors": pickle.dumps({"w": [1.0] * 50}, protocol=4)})
    svc = make_project(tmp_path / "sneaky", 'import bundler\n\n@bundler.service\nclass S:\n    m = bundler.HuggingFaceModel("acme/sneaky")\n')
    bundle = build(svc, output=tmp_path / "s.bundle.tar").path
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "deploy"), "--no-pickle")
    assert res.code == 1 and "Traceback" not in res.stderr
    assert "model.safetensors: model.safetensors is a pickle stream by its content" in res.stderr
    blobs = cache() / "models--acme--sneaky" / "blobs"
    assert sorted(p.stat().st_size for p in blobs.iterdir() if not p.name.endswith(".lock")) == [2]  # config.json only
    assert run_cli("pull", str(bundle), "--to", str(tmp_path / "deploy")).code == 0  # allowed without the flag
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "deploy"), "--no-pickle")
    assert res.code == 1 and "is a pickle stream by its content" in res.stderr  # cached earlier: still refused
