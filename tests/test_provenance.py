"""Provenance: an SLSA v1 statement beside the bundle (signed with --key), and a rebuild that checks it."""

from __future__ import annotations

import base64
import hashlib
import json
import tomllib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bundler.bundle.archive import read_manifest
from bundler.ops.signing import pae
from bundler.stores.local import Store

from .conftest import run_cli
from .test_build import EXAMPLE, copy_example
from .test_signing import keypair


@pytest.fixture
def example(tmp_path) -> Path:
    Store().import_dir("intent-clf", EXAMPLE / "models" / "intent-clf")
    return copy_example(tmp_path / "search")


def envelope_of(path: Path) -> tuple[dict, dict]:
    (line,) = path.read_text().splitlines()
    envelope = json.loads(line)
    return envelope, json.loads(base64.b64decode(envelope["payload"]))


def test_build_provenance_names_every_input_and_is_signed(example, tmp_path):
    private, public = keypair(tmp_path)
    out = tmp_path / "search.bundle.tar"
    res = run_cli("build", str(example / "service.py"), "--offline", "-o", str(out), "--provenance", "--key", str(private), "--json")
    assert res.code == 0, res.stderr
    written = Path(json.loads(res.stdout)["provenance"])
    assert written == tmp_path / "search.bundle.tar.intoto.jsonl"
    envelope, statement = envelope_of(written)

    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert statement["_type"] == "https://in-toto.io/Statement/v1" and statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"] == [{"name": out.name, "digest": {"sha256": hashlib.sha256(out.read_bytes()).hexdigest()}}]
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["service"] == "service.py:Search"
    lock = {m["id"]: m for m in tomllib.loads((example / "bundler.lock").read_text())["model"]}
    deps = {d["name"]: d for d in definition["resolvedDependencies"]}
    assert deps["acme/embed-small"]["digest"] == {"gitCommit": lock["acme/embed-small"]["commit"]}
    for f in lock["acme/embed-small"]["files"]:
        algo, _, value = f["hash"].partition(":")
        assert deps[f"acme/embed-small/{f['path']}"]["digest"] == {"gitBlob" if algo == "git-sha1" else algo: value}
    manifest = read_manifest(out)
    source = next(f for f in manifest.sources if f.path == "service.py")
    assert deps["src/service.py"]["digest"] == {"blake3": source.hash.partition(":")[2]}
    assert definition["internalParameters"]["bundle_digest"] == manifest.digest

    # signed with the key: the signature checks against the public key over DSSE's encoding
    key = serialization.load_pem_public_key(public.read_bytes())
    payload = base64.b64decode(envelope["payload"])
    key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae(payload), ec.ECDSA(hashes.SHA256()))

    # the same build again: the same statement, byte for byte (only an ECDSA signature varies)
    assert run_cli("build", str(example / "service.py"), "--offline", "-o", str(out), "--provenance").code == 0
    unsigned, _ = envelope_of(written)
    assert unsigned["signatures"] == [] and unsigned["payload"] == envelope["payload"]


def test_verify_rebuild_passes_on_the_checkout_and_names_an_edited_file(example, tmp_path):
    out = tmp_path / "search.bundle.tar"
    assert run_cli("build", str(example / "service.py"), "--offline", "-o", str(out)).code == 0
    res = run_cli("verify", str(out), "--rebuild", str(example))
    assert res.code == 0, res.stderr
    assert "builds to blake3:" in res.stderr

    service = example / "service.py"
    service.write_text(service.read_text() + "\n# edited after the build\n")
    res = run_cli("verify", str(out), "--rebuild", str(example))
    assert res.code == 1 and "source service.py changed" in res.stderr, res.stderr


def test_provenance_flags_that_make_no_sense_are_exit_2(example, tmp_path):
    private, _ = keypair(tmp_path)
    res = run_cli("build", str(example / "service.py"), "--offline", "--key", str(private))
    assert res.code == 2 and "--key signs the provenance: give --provenance too" in res.stderr
    res = run_cli("verify", str(tmp_path / "x.bundle.tar"))
    assert res.code == 2 and "give --key" in res.stderr
