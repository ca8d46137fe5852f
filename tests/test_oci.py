"""OCI distribution: push to and pull from a real registry on loopback; oras reads what we write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from bundler.ops.build import build
from bundler.errors import UsageError
from bundler.oci.registry import Registry, docker_auth, parse_reference, push
from bundler.stores.local import Store

from .conftest import run_cli, sizes_of
from .hostile.helpers import negative_size


SERVICE = '''import bundler


@bundler.service
class Svc:
    embedder = bundler.HuggingFaceModel("acme/embed-small", revision="v1.0", include=["*.json"])
    weights = bundler.StoreModel("weights:latest")

    def __init__(self):
        self.paths = (self.embedder.resolve(), self.weights.resolve())
'''


def make_bundle(tmp_path: Path, name: str, weights: bytes, note: str = "") -> Path:
    model = tmp_path / f"{name}-model"
    model.mkdir()
    (model / "weights.bin").write_bytes(weights)
    Store().import_dir("weights", model)
    proj = tmp_path / f"proj-{name}"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE + note)
    from bundler.ops.lock import lock

    lock(proj / "service.py", upgrade=True)
    return build(proj / "service.py", output=tmp_path / f"{name}.bundle.tar").path


def tag_exists(host: str, repo: str, tag: str) -> bool:
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", method="HEAD", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status == 200
    except urllib.error.HTTPError as e:
        assert e.code == 404
        return False


def test_push_then_pull_round_trips_the_bundle(hub, registry, tmp_path):
    bundle = make_bundle(tmp_path, "a", os.urandom(300_000))
    ref = f"oci://{registry['host']}/acme/roundtrip:v1"
    res = run_cli("push", str(bundle), ref)
    assert res.code == 0, res.stderr
    digest = res.stdout.strip()
    assert digest.startswith("sha256:") and len(digest) == 71
    deploy = {"BUNDLER_HOME": str(tmp_path / "deploy-home")}
    res = run_cli("pull", ref, "--to", str(tmp_path / "deployed"), "--json", env=deploy)
    assert res.code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["downloaded"]["files"] == 2 and out["bundle"] == ref
    # The same bundle: same manifest digest, same sources, same weights.
    from bundler.bundle.archive import read_manifest

    assert out["digest"] == read_manifest(bundle).digest
    with tarfile.open(bundle) as tar:
        for m in tar.getmembers():
            assert (tmp_path / "deployed" / m.name).read_bytes() == tar.extractfile(m).read()
    res = run_cli("run", str(tmp_path / "deployed"), "--check", env={**deploy, "HF_HUB_OFFLINE": "1"})
    assert res.code == 0, res.stderr
    # By digest too.
    res = run_cli("pull", f"oci://{registry['host']}/acme/roundtrip@{digest}", "--to", str(tmp_path / "by-digest"), "--json", env=deploy)
    assert res.code == 0, res.stderr


def test_inspect_reads_only_manifest_and_config(registry, tmp_path, hub):
    bundle = make_bundle(tmp_path, "i", b"w" * 1000)
    ref = f"oci://{registry['host']}/acme/inspect:v1"
    push(bundle, ref)
    local = json.loads(run_cli("inspect", str(bundle), "--json").stdout)
    res = run_cli("inspect", ref, "--json")
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout) == local


def test_second_push_uploads_only_what_changed(hub, registry, tmp_path):
    weights = os.urandom(2 << 20)
    v1 = make_bundle(tmp_path, "v1", weights)
    v2 = make_bundle(tmp_path, "v2", weights, note="\n# a source change\n")
    repo = f"oci://{registry['host']}/acme/dedup"
    first = json.loads(run_cli("push", str(v1), f"{repo}:v1", "--json").stdout)
    assert first["uploaded_bytes"] > len(weights) and first["skipped_bytes"] == 0
    res = run_cli("push", str(v2), f"{repo}:v2", "--json")
    assert res.code == 0, res.stderr
    second = json.loads(res.stdout)
    assert second["skipped_bytes"] >= len(weights)  # the weights blob was already there
    assert second["uploaded_bytes"] < 64_000  # manifest config and source layer only
    assert second["blobs_uploaded"] == 2 and second["digest"] != first["digest"]
    # one meaning per key: the registry's sha256 and the bundle's blake3, each by its own name
    from bundler.bundle.archive import read_manifest

    assert second["manifest_digest"] == second["digest"] and second["manifest_digest"].startswith("sha256:")
    assert second["bundle_digest"] == read_manifest(v2).digest and second["bundle_digest"].startswith("blake3:")
    res = run_cli("push", str(v2), f"{repo}:v2")
    assert res.code == 0 and "uploaded 0 B in 0 blobs" in res.stderr


def test_oras_reads_what_bundler_pushed(hub, registry, tmp_path):
    import oras.client

    weights = os.urandom(100_000)
    bundle = make_bundle(tmp_path, "o", weights)
    push(bundle, f"oci://{registry['host']}/acme/interop:v1")
    client = oras.client.OrasClient(hostname=registry["host"], insecure=True)
    manifest = client.get_manifest(f"{registry['host']}/acme/interop:v1")
    assert manifest["artifactType"] == "application/vnd.bundler.bundle.v1"
    assert manifest["config"]["mediaType"] == "application/vnd.bundler.manifest.v1+yaml"
    files = client.pull(target=f"{registry['host']}/acme/interop:v1", outdir=str(tmp_path / "oras"))
    got = {str(Path(f).relative_to(tmp_path / "oras")) for f in files}
    version = Store().get("weights").version
    assert got == {"src.tar", f"store/weights/{version}/weights.bin"}
    assert (tmp_path / "oras" / "store" / "weights" / version / "weights.bin").read_bytes() == weights
    with tarfile.open(tmp_path / "oras" / "src.tar") as tar:
        assert sorted(tar.getnames()) == ["bundler.lock", "service.py"]


def test_interrupted_push_leaves_no_visible_tag(hub, registry, tmp_path):
    bundle = make_bundle(tmp_path, "big", os.urandom(256 << 20))
    ref = f"oci://{registry['host']}/acme/interrupted:v1"
    proc = subprocess.Popen([sys.executable, "-m", "bundler", "push", str(bundle), ref], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uploads = registry["data"] / "docker" / "registry" / "v2" / "repositories" / "acme" / "interrupted" / "_uploads"
    deadline = time.monotonic() + 60
    started = False
    while time.monotonic() < deadline and not started:
        started = any(size > (8 << 20) for size in sizes_of(uploads, "data"))  # the registry removes finished uploads
        time.sleep(0.01)
    assert started, "the upload never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not tag_exists(registry["host"], "acme/interrupted", "v1")
    res = run_cli("inspect", ref)
    assert res.code == 2 and "no such manifest" in res.stderr
    assert run_cli("push", str(bundle), ref).code == 0
    assert tag_exists(registry["host"], "acme/interrupted", "v1")


@pytest.mark.parametrize(
    "ref",
    ["docker://host/repo", "oci://host", "oci://host/Upper/Case:v1", "oci://host/repo:bad tag", "oci://host/repo@sha256:xyz"],
)
def test_bad_references_are_usage_errors(ref):
    with pytest.raises(UsageError, match="is not an OCI reference"):
        parse_reference(ref)


def test_unreachable_registry_is_a_clear_error(tmp_path, hub):
    bundle = make_bundle(tmp_path, "u", b"w")
    res = run_cli("push", str(bundle), "oci://127.0.0.1:9/acme/x:v1")
    assert res.code == 1
    assert "can't reach 127.0.0.1:9" in res.stderr and "Traceback" not in res.stderr


def test_plain_http_only_for_loopback_or_insecure():
    assert Registry("127.0.0.1:5000").scheme == "http"
    assert Registry("localhost:5000").scheme == "http"
    assert Registry("[::1]:5000").scheme == "http"
    assert Registry("registry.example.com").scheme == "https"
    assert Registry("10.0.0.5:5000").scheme == "https"
    assert Registry("10.0.0.5:5000", insecure=True).scheme == "http"


def test_docker_config_credentials_are_read(tmp_path, monkeypatch):
    import base64

    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {"reg.example.com": {"auth": base64.b64encode(b"alice:s3cret").decode()}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert docker_auth("reg.example.com") == ("alice", "s3cret")
    assert docker_auth("other.example.com") is None


def test_docker_login_credentials_authenticate_and_are_never_printed(auth_registry, tmp_path, hub):
    import base64

    bundle = make_bundle(tmp_path, "auth", b"w" * 5000)
    ref = f"oci://{auth_registry['host']}/acme/private:v1"
    res = run_cli("push", str(bundle), ref, env={"DOCKER_CONFIG": str(tmp_path / "no-config")})
    assert res.code == 1
    assert "requires authentication" in res.stderr and "docker login" in res.stderr
    creds = base64.b64encode(f"{auth_registry['user']}:{auth_registry['password']}".encode()).decode()
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(json.dumps({"auths": {auth_registry["host"]: {"auth": creds}}}))
    env = {"DOCKER_CONFIG": str(tmp_path / "docker")}
    res = run_cli("push", str(bundle), ref, "--json", env=env)
    assert res.code == 0, res.stderr
    res2 = run_cli("inspect", ref, env=env)
    assert res2.code == 0, res2.stderr
    for out in (res.stdout, res.stderr, res2.stdout, res2.stderr):
        assert auth_registry["password"] not in out and creds not in out


def test_embedded_hub_files_travel_through_the_registry(hub, registry, tmp_path):
    proj = tmp_path / "proj-emb"
    proj.mkdir()
    (proj / "service.py").write_text('import bundler\n\n@bundler.service\nclass E:\n    m = bundler.HuggingFaceModel("acme/rerank-tiny", exclude="*.bin")\n')
    bundle = build(proj / "service.py", output=tmp_path / "emb.bundle.tar.gz", embed_hub=True).path
    ref = f"oci://{registry['host']}/acme/embedded:v1"
    res = run_cli("push", str(bundle), ref, "--json")
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["blobs_uploaded"] == 4  # config, sources, two model files
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": str(tmp_path / "c2"), "BUNDLER_HOME": str(tmp_path / "h2")}
    res = run_cli("pull", ref, "--to", str(tmp_path / "emb"), "--json", env=env)
    assert res.code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["downloaded"]["files"] == 0 and out["embedded"]["files"] == 2  # from the registry's layers, not the Hub


def test_remembered_digests_never_let_tampered_bytes_through(hub, registry, tmp_path):
    weights = os.urandom(50_000)
    bundle = make_bundle(tmp_path, "t", weights)
    assert push(bundle, f"oci://{registry['host']}/acme/first:v1").uploaded > len(weights)
    raw = bundle.read_bytes()
    assert raw.count(weights) == 1
    bundle.write_bytes(raw.replace(weights, bytes(len(weights))))  # same size, other bytes
    res = run_cli("push", str(bundle), f"oci://{registry['host']}/acme/second:v1")
    assert res.code == 1
    assert "DIGEST_INVALID" in res.stderr or "digest" in res.stderr.lower()
    assert not tag_exists(registry["host"], "acme/second", "v1")


# --- a hostile registry ---------------------------------------------------------------------------
def _hostile_registry(answers: dict[str, tuple[int, dict[str, str], bytes]]):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's spelling
            status, headers, body = answers.get(self.path.split("?")[0], (404, {}, b"{}"))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


GOOD_CONFIG = {"mediaType": "application/vnd.bundler.manifest.v1+yaml", "digest": "sha256:" + "0" * 64, "size": 10}


@pytest.mark.parametrize(
    "manifest,message",
    [
        ([1, 2], "not a JSON object"),
        ({"config": "oops", "layers": []}, "config is not an object"),
        ({"config": {**GOOD_CONFIG, "size": "ten"}, "layers": []}, "no valid size"),
        ({"config": GOOD_CONFIG, "layers": None}, "layers are not a list"),
        ({"config": GOOD_CONFIG, "layers": [{"mediaType": "x", "digest": "sha256:../../etc", "size": 1}]}, "no sha256 digest"),
        ({"config": {**GOOD_CONFIG, "size": 10**12}, "layers": []}, "config blob claims"),
    ],
)
def test_a_hostile_registry_answer_is_one_clear_error(tmp_path, manifest, message):
    server = _hostile_registry({"/v2/x/manifests/t": (200, {"Content-Type": "application/json"}, json.dumps(manifest).encode())})
    try:
        for args in (["inspect", f"oci://127.0.0.1:{server.server_port}/x:t"], ["pull", f"oci://127.0.0.1:{server.server_port}/x:t", "--to", str(tmp_path / "d")]):
            res = run_cli(*args, cwd=tmp_path)
            assert res.code in (1, 2) and res.stderr.startswith("error: ") and "Traceback" not in res.stderr, res.stderr
            assert message in res.stderr
        assert list(tmp_path.iterdir()) == []
    finally:
        server.shutdown()


def test_a_token_service_answering_non_json_is_one_clear_error(tmp_path):
    answers: dict = {"/token": (200, {}, b"<html>not json</html>")}
    server = _hostile_registry(answers)  # the handler reads `answers` on each request
    realm = f'Bearer realm="http://127.0.0.1:{server.server_port}/token",service="r"'
    answers["/v2/x/manifests/t"] = (401, {"WWW-Authenticate": realm}, b"")
    try:
        res = run_cli("inspect", f"oci://127.0.0.1:{server.server_port}/x:t")
        assert res.code == 1 and "token service" in res.stderr and "not JSON" in res.stderr and "Traceback" not in res.stderr
    finally:
        server.shutdown()


def test_blobs_a_live_manifest_references_are_not_asked_about_again(hub, registry, tmp_path, monkeypatch):
    """A second push asks the registry for the manifest bundler last pushed there (and the
    target tag's); the blobs it references exist, so only the others get a HEAD each. A record
    naming a manifest the registry does not have changes nothing but the number of questions."""
    from bundler.oci import registry as oci

    asked: list[str] = []
    original = Registry.blob_exists

    def counting(self, repo, digest):  # a spy: the real check runs
        asked.append(digest)
        return original(self, repo, digest)

    monkeypatch.setattr(Registry, "blob_exists", counting)
    weights = os.urandom(1 << 20)
    v1 = make_bundle(tmp_path, "v1", weights)
    v2 = make_bundle(tmp_path, "v2", weights, note="\n# a source change\n")
    repo = f"oci://{registry['host']}/acme/known"
    first = push(v1, f"{repo}:v1")
    assert len(asked) == first.blobs_uploaded + first.blobs_skipped  # nothing known yet: every blob asked
    assert oci._pushed_record(parse_reference(f"{repo}:v1")).read_text().strip() == first.digest
    asked.clear()
    second = push(v2, f"{repo}:v2")
    assert second.blobs_uploaded == 2 and len(asked) == 2  # the new config and source layer only
    asked.clear()
    oci._pushed_record(parse_reference(f"{repo}:v3")).write_text("sha256:" + "0" * 64 + "\n")
    third = push(v2, f"{repo}:v3")
    assert third.blobs_uploaded == 0 and len(asked) == third.blobs_skipped  # asked again, blob by blob
    assert tag_exists(registry["host"], "acme/known", "v3")


def test_an_endless_manifest_is_refused_at_a_fixed_cap(tmp_path):
    """A registry that streams a manifest forever: refused after a few MiB, memory stays small."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    sent = []

    class Endless(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/v2/":
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"[" * 65536
            try:
                for _ in range(4096):  # 256 MiB at most, never all read
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent.append(len(chunk))
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        res = run_cli("inspect", f"oci://127.0.0.1:{server.server_address[1]}/acme/endless:v1")
    finally:
        server.shutdown()
    assert res.code == 1 and "Traceback" not in res.stderr
    assert "manifest is over 4 MiB; refused" in res.stderr
    assert sum(sent) < 64 << 20  # the client stopped reading long before the server was done


def test_one_push_many_tags_the_same_manifest(hub, registry, tmp_path):
    bundle = make_bundle(tmp_path, "t", os.urandom(20_000))
    repo = f"oci://{registry['host']}/acme/tagged"
    res = run_cli("push", str(bundle), f"{repo}:v1", "--tag", "stable", "--tag", "2026-12", "--json")
    assert res.code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["tags"] == ["v1", "stable", "2026-12"]
    digests = set()
    for tag in out["tags"]:
        req = urllib.request.Request(f"http://{registry['host']}/v2/acme/tagged/manifests/{tag}",
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        with urllib.request.urlopen(req) as r:
            digests.add(r.headers["Docker-Content-Digest"])
    assert digests == {out["manifest_digest"]}  # one manifest under every name
    res = run_cli("push", str(bundle), f"{repo}:v2", "--tag", "-bad")
    assert res.code == 2 and "is not an OCI tag" in res.stderr and not tag_exists(registry["host"], "acme/tagged", "v2")


def _put_forged_source_layer(host: str, repo: str, tag: str, forge) -> None:
    """Re-tag a pushed bundle with its source layer replaced by ``forge(layer bytes)`` (a valid
    blob digest, so only the tar inside is hostile)."""
    import hashlib

    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    with urllib.request.urlopen(urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", headers=accept)) as r:
        manifest = json.loads(r.read())
    layer = next(layer for layer in manifest["layers"] if layer["mediaType"].endswith("source.v1.tar"))
    with urllib.request.urlopen(f"http://{host}/v2/{repo}/blobs/{layer['digest']}") as r:
        forged = forge(r.read())
    digest = "sha256:" + hashlib.sha256(forged).hexdigest()
    with urllib.request.urlopen(urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", method="POST")) as r:
        location = r.headers["Location"]
    location = location if location.startswith("http") else f"http://{host}{location}"
    put = urllib.request.Request(f"{location}{'&' if '?' in location else '?'}digest={digest}", data=forged, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(put).close()
    layer.update(digest=digest, size=len(forged))
    urllib.request.urlopen(urllib.request.Request(f"http://{host}/v2/{repo}/manifests/forged", data=json.dumps(manifest).encode(), method="PUT",
                                                  headers={"Content-Type": manifest["mediaType"]})).close()


def test_a_source_layer_whose_tar_steps_back_is_refused_not_looped_on(hub, registry, tmp_path):
    """A size field of -512 (with a right checksum) sends tarfile back to the same header
    forever; the pull checks each member before reading the next, and refuses it."""
    bundle = make_bundle(tmp_path, "n", b"w" * 1000)
    push(bundle, f"oci://{registry['host']}/acme/neg:v1")

    def forge(layer: bytes) -> bytes:  # the second member's header: the walk steps back onto it
        import io

        with tarfile.open(fileobj=io.BytesIO(layer)) as t:
            return negative_size(layer, t.getmembers()[1].offset)

    _put_forged_source_layer(registry["host"], "acme/neg", "v1", forge)
    res = run_cli("pull", f"oci://{registry['host']}/acme/neg:forged", "--to", str(tmp_path / "dest"))
    assert res.code != 0 and "negative size" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "dest").exists()
