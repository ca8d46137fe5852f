"""OCI model artifacts as a model source (`bundler.OCIModel`), against a real registry on loopback:
each layer a file named by its annotation (oras and KitOps write the title, ModelPack its filepath)."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

from bundler.oci.client import MANIFEST_TYPE, Reference, Registry

from .conftest import run_cli

SERVICE = '''import bundler


@bundler.service
class Reader:
    model = bundler.OCIModel("oci://{host}/acme/{repo}:v1")

    def __init__(self):
        self.where = self.model.resolve()
'''


def push_artifact(host: str, repo: str, files: dict[str, bytes], *, annotation: str = "org.opencontainers.image.title",
                  media_type: str = "application/vnd.cncf.model.weight.v1.raw", tag: str = "v1") -> str:
    """An artifact as oras or a ModelPack tool pushes one: an empty config, a layer per file."""
    registry = Registry(host)
    config = b"{}"
    registry.upload_blob(repo, "sha256:" + hashlib.sha256(config).hexdigest(), len(config), config)
    layers = []
    for path, data in files.items():
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        registry.upload_blob(repo, digest, len(data), data)
        layers.append({"mediaType": media_type, "digest": digest, "size": len(data), "annotations": {annotation: path} if annotation else {}})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": "application/vnd.cncf.model.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": 2},
                           "layers": layers}).encode()
    return registry.put_manifest(Reference(host, repo, tag, None), manifest)


def project(tmp_path: Path, host: str, repo: str) -> Path:
    d = tmp_path / "proj"
    d.mkdir(parents=True, exist_ok=True)
    (d / "service.py").write_text(SERVICE.format(host=host, repo=repo))
    return d / "service.py"


def test_an_oci_model_is_pinned_by_digest_carried_in_the_bundle_and_resolved_offline(registry, tmp_path):
    host = registry["host"]
    files = {"config.json": b'{"hidden_size": 8}', "weights/model.safetensors": b"\x08" * 4096}
    digest = push_artifact(host, "acme/reader", files, annotation="org.cncf.model.filepath")
    svc = project(tmp_path, host, "reader")
    res = run_cli("lock", str(svc), "--json")
    assert res.code == 0, res.stderr
    (entry,) = tomllib.loads((svc.parent / "bundler.lock").read_text())["model"]
    assert entry["source"] == "oci" and entry["version"] == digest.replace(":", "-")
    assert {f["path"]: f["hash"] for f in entry["files"]} == {p: "sha256:" + hashlib.sha256(d).hexdigest() for p, d in files.items()}

    # the tag moves: the lock keeps the pinned digest, and the bundle carries those bytes
    push_artifact(host, "acme/reader", {"config.json": b"{}", "weights/model.safetensors": b"other"}, annotation="org.cncf.model.filepath")
    out = tmp_path / "reader.bundle.tar"
    res = run_cli("build", str(svc), "-o", str(out), "--no-env", "--offline")  # layers not fetched yet
    assert res.code == 2 and "is not in bundler's cache" in res.stderr and not out.exists(), res.stderr
    res = run_cli("build", str(svc), "-o", str(out), "--no-env")
    assert res.code == 0, res.stderr
    assert run_cli("build", str(svc), "-o", str(out), "--no-env", "--offline").code == 0  # cached by digest now
    assert run_cli("lock", str(svc), "--check").code == 0
    shown = run_cli("inspect", str(out), "--verify")
    assert shown.code == 0 and "oci" in shown.stdout and digest.replace(":", "-")[:12] in shown.stdout, shown.stdout

    deploy = {"BUNDLER_HOME": str(tmp_path / "deploy-home")}  # nothing cached on the deploy host
    res = run_cli("pull", str(out), "--to", str(tmp_path / "deployed"), env=deploy)
    assert res.code == 0, res.stderr
    where = tmp_path / "deployed" / "oci" / digest.replace(":", "-")
    assert (where / "weights" / "model.safetensors").read_bytes() == files["weights/model.safetensors"]
    res = run_cli("run", str(tmp_path / "deployed"), "--check", env=deploy)
    assert res.code == 0, res.stderr
    assert str(where) in res.stdout

    # a changed byte on the host is found before the service is imported
    (where / "config.json").write_bytes(b'{"hidden_size": 9}')
    res = run_cli("run", str(tmp_path / "deployed"), "--check", env=deploy)
    assert res.code == 1 and "config.json was modified" in res.stderr, res.stderr


def test_layers_that_name_no_file_or_pack_a_folder_are_refused_at_lock(registry, tmp_path):
    host = registry["host"]
    push_artifact(host, "acme/nameless", {"x": b"1"}, annotation="")
    res = run_cli("lock", str(project(tmp_path, host, "nameless")))
    assert res.code == 2 and "layer 0" in res.stderr and "names no file path" in res.stderr, res.stderr
    assert "service.py:6" in res.stderr

    push_artifact(host, "acme/folder", {"weights": b"tar bytes"}, media_type="application/vnd.cncf.model.weight.v1.tar")
    res = run_cli("lock", str(project(tmp_path / "b", host, "folder")))
    assert res.code == 2 and "weights is a packed folder" in res.stderr, res.stderr

    push_artifact(host, "acme/escape", {"../etc/passwd": b"x"})
    res = run_cli("lock", str(project(tmp_path / "c", host, "escape")))
    assert res.code == 2 and "unsafe path" in res.stderr, res.stderr


def test_an_oci_model_reference_is_checked_by_the_scan(tmp_path):
    (tmp_path / "service.py").write_text('import bundler\n\n@bundler.service\nclass S:\n    m = bundler.OCIModel("https://example.com/x")\n')
    res = run_cli("scan", str(tmp_path / "service.py"))
    assert res.code == 2 and "service.py:5" in res.stderr, res.stderr
