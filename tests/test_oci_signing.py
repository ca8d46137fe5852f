"""Signatures of pushed bundles as OCI 1.1 referrers, on a registry without the referrers API
(Debian's docker-registry 2.8: the tag schema's fallback tag): sign in place, push --sign,
verify, and pulls that require a signature."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import urllib.request

from .conftest import run_cli
from .test_oci import make_bundle
from .test_signing import keypair, tree

INDEX = "application/vnd.oci.image.index.v1+json"
SIGSTORE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def get(host: str, path: str, accept: str = "*/*") -> bytes:
    with urllib.request.urlopen(urllib.request.Request(f"http://{host}{path}", headers={"Accept": accept})) as r:
        return r.read()


def digest_of(host: str, repo: str, tag: str) -> str:
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": f"application/vnd.oci.image.manifest.v1+json, {INDEX}"})
    with urllib.request.urlopen(req) as r:
        return r.headers["Docker-Content-Digest"]


def test_sign_a_pushed_bundle_in_place_then_verify_and_pull_requiring_it(hub, registry, tmp_path):
    host = registry["host"]
    bundle = make_bundle(tmp_path, "signed", os.urandom(3000))
    ref = f"oci://{host}/acme/signed:v1"
    assert run_cli("push", str(bundle), ref).code == 0
    private, public = keypair(tmp_path)
    res = run_cli("sign", ref, "--key", str(private))
    assert res.code == 0, res.stderr
    referrer = res.stdout.strip()

    # no referrers API here: the fallback tag `sha256-<hex>` holds the index of referrers
    subject = digest_of(host, "acme/signed", "v1")
    index = json.loads(get(host, f"/v2/acme/signed/manifests/{subject.replace(':', '-')}", INDEX))
    assert [(m["digest"], m["artifactType"]) for m in index["manifests"]] == [(referrer, SIGSTORE)]
    attached = json.loads(get(host, f"/v2/acme/signed/manifests/{referrer}", "application/vnd.oci.image.manifest.v1+json"))
    assert attached["subject"]["digest"] == subject and attached["artifactType"] == SIGSTORE
    doc = get(host, f"/v2/acme/signed/blobs/{attached['layers'][0]['digest']}")

    # the very signature `bundler sign BUNDLE` writes: upstream model_signing accepts it on the files
    (tmp_path / "pushed.sig").write_bytes(doc)
    out = tmp_path / "extracted"
    out.mkdir()
    with tarfile.open(bundle) as t:
        t.extractall(out, filter="data")
    cmd = [sys.executable, "-m", "model_signing", "verify", "key", str(out), "--signature", str(tmp_path / "pushed.sig"), "--public_key", str(public)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr

    res = run_cli("verify", ref, "--key", str(public))
    assert res.code == 0 and "verified:" in res.stderr, res.stderr
    # a host that trusts a Sigstore identity finds only this key signature among the referrers
    keyless = ("--identity", "ci@example.com", "--issuer", "https://accounts.google.com", "--sigstore-offline")
    res = run_cli("verify", ref, *keyless)
    assert res.code == 1 and "signed with a key, not by a Sigstore identity" in res.stderr, res.stderr
    res = run_cli("pull", ref, "--to", str(tmp_path / "refused"), "--require-signature", *keyless)
    assert res.code == 1 and not (tmp_path / "refused").exists()
    shown = run_cli("inspect", ref, "--json")
    assert json.loads(shown.stdout)["referrers"] == [{"digest": referrer, "artifactType": SIGSTORE}], shown.stdout
    assert f"referrer  {referrer}  {SIGSTORE}" in run_cli("inspect", ref).stdout
    _, other = keypair(tmp_path, "other")
    res = run_cli("verify", ref, "--key", str(other))
    assert res.code == 1 and "signed with another key" in res.stderr, res.stderr

    dest = tmp_path / "deployed"
    res = run_cli("pull", ref, "--to", str(dest), env={"BUNDLER_REQUIRE_SIGNATURE": str(public)})
    assert res.code == 0, res.stderr
    assert run_cli("run", str(dest), "--check").code == 0


def test_a_required_signature_refuses_unsigned_and_foreign_pushes_before_writing_anything(hub, registry, tmp_path):
    from bundler.oci.client import Registry, parse_reference
    from bundler.ops.oci_signing import attach

    host = registry["host"]
    private, public = keypair(tmp_path)
    signed = make_bundle(tmp_path, "one", b"\x01" * 2000)
    assert run_cli("push", str(signed), f"oci://{host}/acme/req:signed", "--sign", "--key", str(private)).code == 0
    other = make_bundle(tmp_path, "two", b"\x02" * 2000, note="\n# another bundle\n")
    assert run_cli("push", str(other), f"oci://{host}/acme/req:unsigned").code == 0
    before = tree(tmp_path)
    res = run_cli("pull", f"oci://{host}/acme/req:unsigned", "--to", str(tmp_path / "d"), "--require-signature", "--key", str(public))
    assert res.code == 1 and "no signature refers to it" in res.stderr, res.stderr
    assert tree(tmp_path) == before

    # one bundle's signature attached to another: its bundle.yaml is not what was signed
    sig = subprocess.run([sys.executable, "-m", "bundler", "sign", str(signed), "--key", str(private), "-o", str(tmp_path / "one.sig")],
                         capture_output=True, text=True)
    assert sig.returncode == 0, sig.stderr
    ref = parse_reference(f"oci://{host}/acme/req:unsigned")
    attach(Registry(host), ref, (tmp_path / "one.sig").read_bytes())
    before = tree(tmp_path)
    res = run_cli("pull", f"oci://{host}/acme/req:unsigned", "--to", str(tmp_path / "d"), "--require-signature", "--key", str(public))
    assert res.code == 1 and "differs from what was signed" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert tree(tmp_path) == before
    res = run_cli("pull", f"oci://{host}/acme/req:signed", "--to", str(tmp_path / "d"), "--require-signature", "--key", str(public))
    assert res.code == 0, res.stderr


def test_push_image_sign_is_verified_on_pull(hub, registry, tmp_path):
    host = registry["host"]
    private, public = keypair(tmp_path)
    bundle = make_bundle(tmp_path, "img", b"\x03" * 2000)
    res = run_cli("push", str(bundle), f"oci://{host}/acme/img:v1", "--image", "--sign", "--key", str(private), "--json")
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["signature"].startswith("sha256:")
    res = run_cli("verify", f"oci://{host}/acme/img:v1", "--key", str(public))
    assert res.code == 0, res.stderr
    res = run_cli("pull", f"oci://{host}/acme/img:v1", "--to", str(tmp_path / "d"), "--require-signature", "--key", str(public))
    assert res.code == 0, res.stderr
    # a key that cannot sign, or --sign without it, pushes nothing
    res = run_cli("push", str(bundle), f"oci://{host}/acme/img:v2", "--sign")
    assert res.code == 2 and "--sign and --key (or --keyless) go together" in res.stderr
