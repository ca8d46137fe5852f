"""OCI model artifacts as a model source (`bundler.OCIModel`), against a real registry on loopback:
each layer a file named by its annotation (oras and KitOps write the title, ModelPack its filepath)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
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

    sbom = run_cli("sbom", str(out))
    (model,) = [c for c in json.loads(sbom.stdout)["components"] if c["type"] == "machine-learning-model"]
    assert model["purl"] == f"pkg:oci/reader@{digest}?repository_url={host}/acme/reader", model["purl"]

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


def test_layers_that_name_no_file_or_an_unsafe_one_are_refused_at_lock(registry, tmp_path):
    host = registry["host"]
    push_artifact(host, "acme/nameless", {"x": b"1"}, annotation="")
    res = run_cli("lock", str(project(tmp_path, host, "nameless")))
    assert res.code == 2 and "layer 0" in res.stderr and "names no file path" in res.stderr, res.stderr
    assert "service.py:6" in res.stderr

    push_artifact(host, "acme/escape", {"../etc/passwd": b"x"})
    res = run_cli("lock", str(project(tmp_path / "c", host, "escape")))
    assert res.code == 2 and "unsafe path" in res.stderr, res.stderr


def test_an_oci_model_reference_is_checked_by_the_scan(tmp_path):
    (tmp_path / "service.py").write_text('import bundler\n\n@bundler.service\nclass S:\n    m = bundler.OCIModel("https://example.com/x")\n')
    res = run_cli("scan", str(tmp_path / "service.py"))
    assert res.code == 2 and "service.py:5" in res.stderr, res.stderr


def tar_layer(members: dict[str, bytes | str], *, gz: bool = False) -> bytes:
    """A layer as KitOps and ModelPack tools pack a folder: a tar of its files (a str value: a
    symlink to it)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


def push_layers(host: str, repo: str, layers: list[tuple[str, bytes, dict[str, str]]], *,
                config_type: str = "application/vnd.kitops.modelkit.config.v1+json") -> str:
    registry = Registry(host)
    config = b'{"manifestVersion": "1.0.0", "model": {"path": "model"}}'
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    registry.upload_blob(repo, config_digest, len(config), config)
    descriptors = []
    for media_type, data, notes in layers:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        registry.upload_blob(repo, digest, len(data), data)
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(data), "annotations": notes})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                           "config": {"mediaType": config_type, "digest": config_digest, "size": len(config)},
                           "layers": descriptors}).encode()
    return registry.put_manifest(Reference(host, repo, "v1", None), manifest)


def test_a_kitops_modelkit_of_tar_layers_is_unpacked_pinned_per_file_and_carried(registry, tmp_path):
    host = registry["host"]
    weights, config, code = b"\x05" * 70_000, b'{"hidden_size": 8}', b"print('hi')\n"
    digest = push_layers(host, "acme/kit", [
        ("application/vnd.kitops.modelkit.model.v1.tar+gzip",
         tar_layer({"model/weights.safetensors": weights, "./model/config.json": config}, gz=True),
         {"org.cncf.model.filepath": "model"}),
        ("application/vnd.kitops.modelkit.code.v1.tar", tar_layer({"src/train.py": code}), {}),
        ("application/vnd.cncf.model.doc.v1.raw", b"# card", {"org.cncf.model.filepath": "README.md"}),
    ])
    svc = project(tmp_path, host, "kit")
    res = run_cli("lock", str(svc))
    assert res.code == 0, res.stderr
    (entry,) = tomllib.loads((svc.parent / "bundler.lock").read_text())["model"]
    want = {"model/weights.safetensors": weights, "model/config.json": config, "src/train.py": code, "README.md": b"# card"}
    assert entry["version"] == digest.replace(":", "-")
    assert {f["path"]: (f["size"], f["hash"]) for f in entry["files"]} == {p: (len(d), "sha256:" + hashlib.sha256(d).hexdigest()) for p, d in want.items()}

    # the archives were unpacked at lock (their files had to be hashed); the raw layer comes at build
    out = tmp_path / "kit.bundle.tar"
    res = run_cli("build", str(svc), "-o", str(out), "--no-env", "--offline")
    assert res.code == 2 and "README.md is not in bundler's cache" in res.stderr, res.stderr
    assert run_cli("build", str(svc), "-o", str(out), "--no-env").code == 0
    first = out.read_bytes()
    # an empty cache: the pinned manifest's layers are fetched again, by digest, and unpacked
    shutil.rmtree(tmp_path / "bundler-home" / "oci-models")
    res = run_cli("build", str(svc), "-o", str(out), "--no-env")
    assert res.code == 0, res.stderr
    assert out.read_bytes() == first

    deploy = {"BUNDLER_HOME": str(tmp_path / "deploy-home")}
    assert run_cli("pull", str(out), "--to", str(tmp_path / "deployed"), env=deploy).code == 0
    where = tmp_path / "deployed" / "oci" / digest.replace(":", "-")
    assert {p: (where / p).read_bytes() for p in want} == want
    res = run_cli("run", str(tmp_path / "deployed"), "--check", env=deploy)
    assert res.code == 0 and str(where) in res.stdout, res.stderr


def test_a_zstd_tar_layer_is_unpacked_and_pinned_like_the_others(registry, tmp_path):
    import zstandard

    host = registry["host"]
    weights = b"\x07" * 50_000
    layer = zstandard.ZstdCompressor(threads=1).compress(tar_layer({"model/weights.safetensors": weights}))
    push_layers(host, "acme/zkit", [("application/vnd.kitops.modelkit.model.v1.tar+zstd", layer, {})])
    svc = project(tmp_path, host, "zkit")
    res = run_cli("lock", str(svc))
    assert res.code == 0, res.stderr
    (entry,) = tomllib.loads((svc.parent / "bundler.lock").read_text())["model"]
    assert [(f["path"], f["size"], f["hash"]) for f in entry["files"]] == [
        ("model/weights.safetensors", len(weights), "sha256:" + hashlib.sha256(weights).hexdigest())]


def test_tar_layers_with_links_escapes_or_damage_are_refused_at_lock(registry, tmp_path):
    host = registry["host"]
    cases = {
        "link": (tar_layer({"model/w.bin": "/etc/passwd"}), "'model/w.bin' is a link"),
        "escape": (tar_layer({"../outside.bin": b"x"}), "unsafe path '../outside.bin'"),
        "notar": (b"not a tar at all" * 100, "is not a readable tar"),
    }
    for name, (layer, message) in cases.items():
        push_layers(host, f"acme/{name}", [("application/vnd.cncf.model.weight.v1.tar", layer, {})])
        res = run_cli("lock", str(project(tmp_path / name, host, name)))
        assert res.code == 2 and message in res.stderr and "service.py:6" in res.stderr and "Traceback" not in res.stderr, (name, res.stderr)
        assert not (tmp_path / name / "proj" / "bundler.lock").exists()
    assert not list((tmp_path / "bundler-home").rglob("outside.bin")) and not (tmp_path / "outside.bin").exists()
    push_layers(host, "acme/zstd", [("application/vnd.cncf.model.weight.v1.tar+zstd", b"(\xb5/\xfd" + b"\x00" * 40, {})])
    res = run_cli("lock", str(project(tmp_path / "zstd", host, "zstd")))
    assert res.code == 2 and "is not a readable tar" in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_a_bundle_bundler_pushed_is_an_oci_model_of_its_files(hub, registry, tmp_path):
    from .test_oci import make_bundle

    host = registry["host"]
    bundle = make_bundle(tmp_path, "inner", b"\x09" * 700)
    assert run_cli("push", str(bundle), f"oci://{host}/acme/inner:v1").code == 0
    svc = project(tmp_path / "outer", host, "inner")
    res = run_cli("lock", str(svc))
    assert res.code == 0, res.stderr
    (entry,) = tomllib.loads((svc.parent / "bundler.lock").read_text())["model"]
    paths = {f["path"]: f for f in entry["files"]}
    weights = [p for p in paths if p.endswith("/weights.bin")]
    assert "service.py" in paths and len(weights) == 1, sorted(paths)  # the sources layer unpacked, the model file layer as is
    assert paths[weights[0]]["hash"] == "sha256:" + hashlib.sha256(b"\x09" * 700).hexdigest()
