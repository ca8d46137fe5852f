"""Signatures in the OpenSSF model-signing format: round trip, upstream interop, signed pulls."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bundler.ops.build import build

from .conftest import run_cli

SERVICE = "import bundler\n\n@bundler.service\nclass S:\n    m = bundler.HuggingFaceModel('acme/rerank-tiny', exclude='*.bin')\n"


def keypair(where: Path, name: str = "key") -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = where / f"{name}.pem", where / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@pytest.fixture
def signed(hub, tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    (d / "service.py").write_text(SERVICE)
    (d / "notes.txt").write_text("a source file\n")
    bundle = build(d / "service.py", output=tmp_path / "s.bundle.tar").path
    private, public = keypair(tmp_path)
    res = run_cli("sign", str(bundle), "--key", str(private))
    assert res.code == 0, res.stderr
    assert res.stdout.strip() == str(bundle) + ".sig"
    return bundle, public


def flip_a_byte_of(bundle: Path, member: str) -> None:
    with tarfile.open(bundle) as t:
        m = t.getmember(member)
    data = bytearray(bundle.read_bytes())
    data[m.offset_data] ^= 1
    bundle.write_bytes(bytes(data))


def test_sign_then_verify_and_what_breaks_it(signed, tmp_path):
    bundle, public = signed
    res = run_cli("verify", str(bundle), "--key", str(public))
    assert res.code == 0, res.stderr
    _, other = keypair(tmp_path, "other")
    res = run_cli("verify", str(bundle), "--key", str(other))
    assert res.code == 1 and "signed with another key" in res.stderr
    flip_a_byte_of(bundle, "src/notes.txt")
    res = run_cli("verify", str(bundle), "--key", str(public))
    assert res.code == 1 and "src/notes.txt" in res.stderr and "Traceback" not in res.stderr


def test_upstream_model_signing_accepts_the_extracted_bundle_and_rejects_a_flipped_byte(signed, tmp_path):
    bundle, public = signed
    out = tmp_path / "extracted"
    out.mkdir()
    with tarfile.open(bundle) as t:
        t.extractall(out, filter="data")
    cmd = [sys.executable, "-m", "model_signing", "verify", "key", str(out), "--signature", f"{bundle}.sig", "--public_key", str(public)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    (out / "src" / "notes.txt").write_text("a source file, changed\n")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("case", ["unsigned", "wrong-key", "tampered"])
def test_a_required_signature_refuses_before_writing_anything(signed, tmp_path, case):
    bundle, public = signed
    key = public
    if case == "unsigned":
        Path(f"{bundle}.sig").unlink()
    elif case == "wrong-key":
        _, key = keypair(tmp_path, "other")
    else:
        flip_a_byte_of(bundle, "src/service.py")
    cache, home = Path(os.environ["HF_HUB_CACHE"]), Path(os.environ["BUNDLER_HOME"])
    before = (tree(cache), tree(home))
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "deploy"), "--require-signature", "--key", str(key))
    assert res.code == 1 and "Traceback" not in res.stderr
    assert not (tmp_path / "deploy").exists() and (tree(cache), tree(home)) == before
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "deploy"), env={"BUNDLER_REQUIRE_SIGNATURE": str(key)})
    assert res.code == 1 and not (tmp_path / "deploy").exists()


def test_a_signed_bundle_pulls_when_its_signature_is_required(signed, tmp_path):
    bundle, public = signed
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "deploy"), "--require-signature", "--key", str(public))
    assert res.code == 0, res.stderr
    assert (tmp_path / "deploy" / "bundle.yaml").is_file()


def test_verify_a_pulled_directory_against_the_bundles_signature(signed, tmp_path):
    from bundler.ops.pull import pull

    bundle, public = signed
    pull(bundle, to=tmp_path / "deploy")
    res = run_cli("verify", str(tmp_path / "deploy"), "--key", str(public), "--signature", f"{bundle}.sig")
    assert res.code == 0, res.stderr
    (tmp_path / "deploy" / "src" / "notes.txt").write_text("changed on the host\n")
    res = run_cli("verify", str(tmp_path / "deploy"), "--key", str(public), "--signature", f"{bundle}.sig")
    assert res.code == 1 and "src/notes.txt differs from what was signed" in res.stderr
    res = run_cli("verify", str(tmp_path / "deploy"), "--key", str(public))
    assert res.code == 2 and "--signature BUNDLE.sig" in res.stderr


def test_large_members_hashed_in_parallel_sign_their_own_sha256_and_a_damaged_one_is_refused(tmp_path):
    import hashlib
    import json

    src = tmp_path / "weights"
    src.mkdir()
    shards = {f"shard-{i}.bin": os.urandom((8 << 20) + 4096 * i + 1) for i in range(3)}  # over the 8 MiB line, odd sizes
    for name, data in shards.items():
        (src / name).write_bytes(data)
    assert run_cli("models", "import", "big:v1", str(src)).code == 0
    d = tmp_path / "p"
    d.mkdir()
    (d / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    m = bundler.StoreModel('big:v1')\n")
    bundle = build(d / "service.py", output=tmp_path / "big.bundle.tar").path
    private, public = keypair(tmp_path)
    assert run_cli("sign", str(bundle), "--key", str(private)).code == 0
    doc = json.loads(Path(f"{bundle}.sig").read_text())
    signed = {r["name"].rsplit("/", 1)[-1]: r["digest"] for r in json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))["predicate"]["resources"]}
    assert {n: signed[n] for n in shards} == {n: hashlib.sha256(data).hexdigest() for n, data in shards.items()}
    assert run_cli("verify", str(bundle), "--key", str(public)).code == 0
    member = next(m for m in tarfile.open(bundle).getnames() if m.endswith("shard-1.bin"))
    flip_a_byte_of(bundle, member)
    res = run_cli("sign", str(bundle), "--key", str(private), "-o", str(tmp_path / "again.sig"))
    assert res.code == 1 and f"member {member} does not match the manifest" in res.stderr
    assert not (tmp_path / "again.sig").exists()
