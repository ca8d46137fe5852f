"""Keyless (Sigstore) signatures, offline: verification against recorded production material,
the refusals, and signing as far as it goes without the network (to a loopback Fulcio)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bundler.errors import ProblemFound
from bundler.ops.keyless import IdentityTrust
from bundler.ops.signing import verify

from .conftest import FIXTURES, run_cli
from .test_signing import SERVICE, keypair, tree

# Recorded with Sigstore's production instance (fixtures/sigstore-recorded/README.md).
RECORDED = FIXTURES / "sigstore-recorded"
IDENTITY, ISSUER = "stefanb@us.ibm.com", "https://sigstore.verify.ibm.com/oauth2"
OFFLINE = ("--identity", IDENTITY, "--issuer", ISSUER, "--sigstore-offline")


@pytest.fixture(autouse=True)
def own_sigstore_cache(monkeypatch, tmp_path):
    """Sigstore's TUF cache in the test's own folder: the trust root is the one sigstore ships."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def recorded(tmp_path) -> Path:
    d = tmp_path / "model"
    shutil.copytree(RECORDED, d, ignore=shutil.ignore_patterns("README.md"))
    return d


def test_a_recorded_keyless_signature_verifies_offline_against_sigstores_trust_root(recorded):
    res = run_cli("verify", str(recorded), "--signature", str(recorded / "model.sig"), *OFFLINE)
    assert res.code == 0, res.stderr
    assert f"verified: 2 files signed by {IDENTITY} (issuer {ISSUER})" in res.stderr
    assert "TUF" not in res.stderr  # sigstore's note on offline mode is not repeated to the user
    trust = IdentityTrust(IDENTITY, ISSUER, offline=True)
    assert verify(recorded, trust, recorded / "model.sig") == 2


def test_another_identity_or_issuer_is_refused_naming_who_signed(recorded):
    for identity, issuer in [("someone@example.com", ISSUER), (IDENTITY, "https://accounts.google.com")]:
        res = run_cli("verify", str(recorded), "--signature", str(recorded / "model.sig"),
                      "--identity", identity, "--issuer", issuer, "--sigstore-offline")
        assert res.code == 1 and "Traceback" not in res.stderr
        assert f"signed by {IDENTITY} (issuer {ISSUER}), not by {identity} (issuer {issuer})" in res.stderr


def test_a_changed_file_or_a_changed_statement_is_refused(recorded):
    (recorded / "signme-2").write_bytes(b"signme-3")
    res = run_cli("verify", str(recorded), "--signature", str(recorded / "model.sig"), *OFFLINE)
    assert res.code == 1 and "signme-2 differs from what was signed" in res.stderr
    shutil.copy(RECORDED / "signme-2", recorded / "signme-2")
    # the statement says another digest for signme-1: its DSSE signature no longer holds
    doc = json.loads((RECORDED / "model.sig").read_bytes())
    payload = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    payload["predicate"]["resources"][0]["digest"] = "0" * 64
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    (recorded / "model.sig").write_text(json.dumps(doc))
    res = run_cli("verify", str(recorded), "--signature", str(recorded / "model.sig"), *OFFLINE)
    assert res.code == 1 and "Sigstore refuses the signature" in res.stderr and "Traceback" not in res.stderr
    with pytest.raises(ProblemFound):
        verify(recorded, IdentityTrust(IDENTITY, ISSUER, offline=True), recorded / "model.sig")


def test_sigstore_options_without_an_identity_are_refused_not_ignored(recorded):
    res = run_cli("verify", str(recorded), "--signature", str(recorded / "model.sig"), "--key", "k.pem", "--sigstore-offline")
    assert res.code == 2 and "for a keyless signature" in res.stderr


def test_a_key_signature_and_a_keyless_one_each_name_the_other_way_to_check_them(recorded, tmp_path, hub):
    _, public = keypair(tmp_path)
    res = run_cli("verify", str(recorded), "--signature", str(recorded / "model.sig"), "--key", str(public))
    assert res.code == 1
    assert f"signed keylessly by {IDENTITY} (issuer {ISSUER}), not with a key" in res.stderr
    assert f"--identity {IDENTITY} --issuer {ISSUER}" in res.stderr
    bundle, _ = _key_signed_bundle(tmp_path)
    res = run_cli("verify", str(bundle), *OFFLINE)
    assert res.code == 1 and "signed with a key, not by a Sigstore identity" in res.stderr and "--key PUB.pem" in res.stderr


def _key_signed_bundle(tmp_path: Path) -> tuple[Path, Path]:
    from bundler.ops.build import build

    d = tmp_path / "p"
    d.mkdir()
    (d / "service.py").write_text(SERVICE)
    bundle = build(d / "service.py", output=tmp_path / "s.bundle.tar").path
    private, public = keypair(tmp_path, "signer")
    assert run_cli("sign", str(bundle), "--key", str(private)).code == 0
    return bundle, public


def test_a_host_requiring_an_identity_refuses_a_key_signed_bundle_before_writing_anything(tmp_path, hub):
    bundle, _ = _key_signed_bundle(tmp_path)
    cache, home = Path(os.environ["HF_HUB_CACHE"]), Path(os.environ["BUNDLER_HOME"])
    before = (tree(cache), tree(home))
    env = {"BUNDLER_REQUIRE_IDENTITY": IDENTITY, "BUNDLER_REQUIRE_ISSUER": ISSUER, "BUNDLER_SIGSTORE_OFFLINE": "1"}
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "deploy"), env=env)
    assert res.code == 1 and "signed with a key, not by a Sigstore identity" in res.stderr
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "deploy"), "--require-signature", *OFFLINE)
    assert res.code == 1 and "signed with a key, not by a Sigstore identity" in res.stderr
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "deploy"), env={"BUNDLER_REQUIRE_IDENTITY": IDENTITY})
    assert res.code == 2 and "BUNDLER_REQUIRE_ISSUER" in res.stderr
    res = run_cli("pull", str(bundle), "--to", str(tmp_path / "deploy"), "--identity", IDENTITY, "--issuer", ISSUER)
    assert res.code == 2 and "--require-signature" in res.stderr  # a trust named but not required is not ignored
    assert not (tmp_path / "deploy").exists() and (tree(cache), tree(home)) == before


def _unsigned_jwt(email: str) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": "https://oauth2.sigstore.dev/auth", "aud": "sigstore", "sub": email, "email": email,
              "email_verified": True, "iat": now, "exp": now + 600}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class _Fulcio(BaseHTTPRequestHandler):
    """A loopback stand-in for Fulcio that records each request and refuses it, as Fulcio does an
    identity token it cannot verify."""

    seen: list[tuple[str, str, dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((self.path, self.headers.get("Authorization", ""), json.loads(body or b"{}")))
        msg = b'{"code":401,"message":"There was an error processing the identity token"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(msg)))
        self.end_headers()
        self.wfile.write(msg)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback_sigstore(tmp_path):
    """A client trust config: Sigstore's production trusted root (as sigstore ships it) with every
    service URL pointing at a loopback Fulcio stand-in."""
    import sigstore

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fulcio)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    store = Path(sigstore.__file__).parent / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
    signing = json.loads((store / "signing_config.v0.2.json").read_text())
    for service in ("caUrls", "oidcUrls", "rekorTlogUrls", "tsaUrls"):
        for entry in signing[service]:
            entry["url"] = url
    config = tmp_path / "trust-config.json"
    config.write_text(json.dumps({"mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
                                  "trustedRoot": json.loads((store / "trusted_root.json").read_text()), "signingConfig": signing}))
    _Fulcio.seen = []
    yield config
    server.shutdown()


def test_keyless_signing_asks_fulcio_with_the_identity_token_and_writes_nothing_when_refused(tmp_path, hub, loopback_sigstore):
    bundle, _ = _key_signed_bundle(tmp_path)
    Path(f"{bundle}.sig").unlink()
    token = _unsigned_jwt("ci@example.com")
    res = run_cli("sign", str(bundle), "--keyless", "--sigstore-config", str(loopback_sigstore), env={"SIGSTORE_ID_TOKEN": token})
    assert res.code == 1 and "keyless signing failed" in res.stderr and "Traceback" not in res.stderr
    assert not Path(f"{bundle}.sig").exists() and not list(tmp_path.glob("*.sig*"))
    # Fulcio is asked only after sigstore accepted the statement (an in-toto Statement) and the token
    [(path, auth, request)] = _Fulcio.seen
    assert path == "/api/v2/signingCert" and auth == f"Bearer {token}"
    csr = request["certificateSigningRequest"]  # a fresh key's CSR for the token's subject
    assert base64.b64decode(csr).startswith(b"-----BEGIN CERTIFICATE REQUEST-----")


def test_a_recorded_signature_verifies_under_a_private_instances_trust_config(recorded, loopback_sigstore):
    res = run_cli("verify", str(recorded), "--signature", str(recorded / "model.sig"), "--identity", IDENTITY, "--issuer", ISSUER,
                  "--sigstore-config", str(loopback_sigstore))
    assert res.code == 0, res.stderr
    assert _Fulcio.seen == []  # verifying asks no service


@pytest.mark.parametrize("args, code, said", [
    (["--keyless", "--key", "k.pem"], 2, "--key PRIVATE.pem or --keyless"),
    ([], 2, "--key PRIVATE.pem or --keyless"),
    (["--keyless", "--identity-token", "not-a-jwt"], 2, "not one Sigstore accepts"),
    (["--keyless"], 2, "found no OIDC identity"),
    (["--keyless", "--sigstore-config", "absent.json", "--identity-token", "x.y.z"], 2, "not one Sigstore accepts"),
    (["--key", "k.pem", "--staging"], 2, "are for --keyless"),
])
def test_keyless_usage_errors_are_said_before_the_bundle_is_read(tmp_path, args, code, said):
    bundle = tmp_path / "never-read.bundle.tar"
    res = run_cli("sign", str(bundle), *args, cwd=tmp_path)
    assert res.code == code and said in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not list(tmp_path.rglob("*.sig*"))
