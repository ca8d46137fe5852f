"""`push --image`: a bundle as an OCI image a Kubernetes node mounts, read back by real tools
(skopeo copies it out of the registry, umoci unpacks it checking every diff_id)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import urllib.request

import pytest

from bundler.ops.image import IMAGE_CONFIG_TYPE, IMAGE_INDEX_TYPE, IMAGE_MANIFEST_TYPE, LAYER_TYPE

from .conftest import run_cli
from .hostile.helpers import negative_size
from .test_oci import make_bundle


def get(host: str, path: str, accept: str) -> bytes:
    req = urllib.request.Request(f"http://{host}{path}", headers={"Accept": accept})
    with urllib.request.urlopen(req) as r:
        return r.read()


def tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: `apt-get install skopeo umoci` (the README's test command does it)")
    return found


def test_push_image_is_an_index_of_images_with_one_layer_per_model_file(hub, registry, tmp_path):
    weights = os.urandom(200_000)
    bundle = make_bundle(tmp_path, "img", weights)
    host, ref = registry["host"], f"oci://{registry['host']}/acme/image:v1"
    res = run_cli("push", str(bundle), ref, "--image", "--tag", "v1-again", "--json")
    assert res.code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["tags"] == ["v1", "v1-again"] and out["bundle_digest"].startswith("blake3:")

    raw = get(host, "/v2/acme/image/manifests/v1", IMAGE_INDEX_TYPE)
    index = json.loads(raw)
    assert index["mediaType"] == IMAGE_INDEX_TYPE and out["manifest_digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]] == [("linux", "amd64"), ("linux", "arm64")]
    layer_lists = []
    for entry in index["manifests"]:
        image = json.loads(get(host, f"/v2/acme/image/manifests/{entry['digest']}", IMAGE_MANIFEST_TYPE))
        assert image["mediaType"] == IMAGE_MANIFEST_TYPE and image["config"]["mediaType"] == IMAGE_CONFIG_TYPE
        config = json.loads(get(host, f"/v2/acme/image/blobs/{image['config']['digest']}", "*/*"))
        assert (config["os"], config["architecture"]) == ("linux", entry["platform"]["architecture"])
        # uncompressed tar layers: each layer's digest is its diff_id
        assert config["rootfs"] == {"type": "layers", "diff_ids": [layer["digest"] for layer in image["layers"]]}
        assert {layer["mediaType"] for layer in image["layers"]} == {LAYER_TYPE}
        layer_lists.append(image["layers"])
    assert layer_lists[0] == layer_lists[1]  # one set of layers for every platform
    titles = [layer["annotations"]["org.opencontainers.image.title"] for layer in layer_lists[0]]
    assert titles[:2] == ["bundle", "hub"]
    store_files = [t for t in titles if t.startswith("bundle/store/weights/")]
    hub_blobs = [t for t in titles if t.startswith("hub/models--acme--embed-small/blobs/")]
    assert len(store_files) == 1 and store_files[0].endswith("/weights.bin") and len(hub_blobs) >= 1
    assert len(titles) == 2 + len(store_files) + len(hub_blobs)

    # The same bundle again: the same index, and every blob is already there.
    again = json.loads(run_cli("push", str(bundle), ref, "--image", "--json").stdout)
    assert again["manifest_digest"] == out["manifest_digest"] and again["uploaded_bytes"] == 0

    # A model file is the same layer in another bundle that carries it.
    other = make_bundle(tmp_path, "other", weights, note="\n# another service file\n")
    res = run_cli("push", str(other), f"oci://{host}/acme/image:other", "--image", "--json")
    assert res.code == 0, res.stderr
    other_index = json.loads(get(host, "/v2/acme/image/manifests/other", IMAGE_INDEX_TYPE))
    other_image = json.loads(get(host, f"/v2/acme/image/manifests/{other_index['manifests'][0]['digest']}", IMAGE_MANIFEST_TYPE))
    shared = {layer["digest"] for layer in other_image["layers"]} & {layer["digest"] for layer in layer_lists[0]}
    # every model file, and the cache's links (the same pins); not the bundle's own files
    assert shared == {layer["digest"] for layer in layer_lists[0][1:]}


def test_an_image_unpacked_by_umoci_serves_with_no_pull_and_no_writes(hub, registry, tmp_path):
    skopeo, umoci = tool("skopeo"), tool("umoci")
    bundle = make_bundle(tmp_path, "mount", os.urandom(100_000))
    host = registry["host"]
    assert run_cli("push", str(bundle), f"oci://{host}/acme/mount:v1", "--image").code == 0
    subprocess.run([skopeo, "copy", "--src-tls-verify=false", f"docker://{host}/acme/mount:v1", f"oci:{tmp_path / 'layout'}:v1"],
                   check=True, capture_output=True)
    subprocess.run([umoci, "unpack", "--rootless", "--image", f"{tmp_path / 'layout'}:v1", str(tmp_path / "unpacked")],
                   check=True, capture_output=True)
    rootfs = tmp_path / "unpacked" / "rootfs"
    snapshot = next((rootfs / "hub" / "models--acme--embed-small" / "snapshots").iterdir())
    for link in snapshot.rglob("*"):
        if link.is_symlink():
            assert link.resolve().parent.name == "blobs" and link.resolve().is_file()
    assert (rootfs / "hub" / "models--acme--embed-small" / "refs" / "main").read_text() == snapshot.name

    before = sorted((p.relative_to(rootfs).as_posix(), p.lstat().st_mtime_ns) for p in rootfs.rglob("*"))
    env = {"HF_HUB_CACHE": str(rootfs / "hub"), "HF_HUB_OFFLINE": "1", "BUNDLER_HOME": str(tmp_path / "node-home")}
    res = run_cli("run", str(rootfs / "bundle"), "--check", "--no-import", "--verify", env=env)
    assert res.code == 0, res.stderr
    assert "acme/embed-small" in res.stdout + res.stderr
    after = sorted((p.relative_to(rootfs).as_posix(), p.lstat().st_mtime_ns) for p in rootfs.rglob("*"))
    assert after == before  # nothing written into the mounted image

    # a changed byte in the image's cache is found, naming the file
    blob = next((rootfs / "hub" / "models--acme--embed-small" / "blobs").iterdir())
    data = bytearray(blob.read_bytes())
    data[0] ^= 1
    blob.write_bytes(bytes(data))
    res = run_cli("run", str(rootfs / "bundle"), "--check", "--no-import", "--verify", env=env)
    assert res.code == 1 and "was modified" in res.stderr, res.stderr


def test_an_image_pulls_back_to_the_bundle_with_its_hub_files_and_no_hub(hub, registry, tmp_path):
    from bundler.bundle.archive import read_manifest

    bundle = make_bundle(tmp_path, "back", os.urandom(1000))
    manifest = read_manifest(bundle)
    ref = f"oci://{registry['host']}/acme/back:v1"
    assert run_cli("push", str(bundle), ref, "--image").code == 0
    shown = run_cli("inspect", ref, "--json")
    assert shown.code == 0 and json.loads(shown.stdout)["digest"] == manifest.digest, shown.stderr

    hub.stop()  # the image carries the Hub files: a node needs no Hub
    deploy = {"BUNDLER_HOME": str(tmp_path / "deploy-home"), "HF_HUB_CACHE": str(tmp_path / "deploy-cache")}
    res = run_cli("pull", ref, "--to", str(tmp_path / "from-image"), "--json", env=deploy)
    assert res.code == 0, res.stderr
    got = json.loads(res.stdout)
    hub_files = sum(len(p.files) for p in manifest.pins if p.commit is not None)
    assert got["downloaded"]["files"] == 0 and got["embedded"]["files"] == hub_files > 0, got
    res = run_cli("run", str(tmp_path / "from-image"), "--check", env=deploy)
    assert res.code == 0, res.stderr

    # the same directory a pull of the archive makes
    assert run_cli("pull", str(bundle), "--to", str(tmp_path / "from-archive"), env=deploy).code == 0
    for name in [*manifest.members(), "bundle.yaml", "bento.yaml"]:
        assert (tmp_path / "from-image" / name).read_bytes() == (tmp_path / "from-archive" / name).read_bytes(), name

    # a blob is fetched only when a pull asks for it: with the cache complete, none is
    from bundler.oci.registry import open_pushed

    image = open_pushed(ref)
    try:
        blobs = image.hub_local()
        assert len(blobs) == hub_files and image.hub_blobs == {}
        key = next(iter(blobs))
        assert key in blobs and image.hub_blobs == {}  # asking whether it holds one fetches nothing
        assert blobs[key].is_file() and len(image.hub_blobs) == 1
    finally:
        image.close()
    res = run_cli("pull", ref, "--to", str(tmp_path / "again"), "--json", env=deploy)
    assert res.code == 0 and json.loads(res.stdout)["embedded"]["files"] == 0, res.stderr


def _swap_layer(host: str, repo: str, title_ends: str, make) -> None:
    """Tag as ``evil`` the image pushed as ``v1`` with the layer whose title ends in ``title_ends``
    replaced by ``make(its blob)``: a consistent image (digests, diff_ids) whose bytes are not
    what bundler pushed."""
    from bundler.oci.client import Reference, Registry

    index = json.loads(get(host, f"/v2/{repo}/manifests/v1", IMAGE_INDEX_TYPE))
    image = json.loads(get(host, f"/v2/{repo}/manifests/{index['manifests'][0]['digest']}", IMAGE_MANIFEST_TYPE))
    (i, layer), = [(i, d) for i, d in enumerate(image["layers"]) if d["annotations"]["org.opencontainers.image.title"].endswith(title_ends)]
    reg = Registry(host)
    blob = make(get(host, f"/v2/{repo}/blobs/{layer['digest']}", "*/*"))
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    reg.upload_blob(repo, digest, len(blob), blob)
    image["layers"][i] = {**layer, "digest": digest, "size": len(blob)}
    config = json.loads(get(host, f"/v2/{repo}/blobs/{image['config']['digest']}", "*/*"))
    config["rootfs"]["diff_ids"] = [d["digest"] for d in image["layers"]]
    raw_config = json.dumps(config).encode()
    image["config"] = {**image["config"], "digest": "sha256:" + hashlib.sha256(raw_config).hexdigest(), "size": len(raw_config)}
    reg.upload_blob(repo, image["config"]["digest"], len(raw_config), raw_config)
    raw_image = json.dumps(image).encode()
    image_digest = reg.put_manifest(Reference(host, repo, None, "sha256:" + hashlib.sha256(raw_image).hexdigest()), raw_image, IMAGE_MANIFEST_TYPE)
    raw_index = json.dumps({**index, "manifests": [{**index["manifests"][0], "digest": image_digest, "size": len(raw_image)}]}).encode()
    reg.put_manifest(Reference(host, repo, "evil", None), raw_index, IMAGE_INDEX_TYPE)


def test_an_image_whose_file_layer_was_swapped_is_refused_and_nothing_is_written(hub, registry, tmp_path):
    import io

    bundle = make_bundle(tmp_path, "swap", b"\x01" * 1000)
    host = registry["host"]
    assert run_cli("push", str(bundle), f"oci://{host}/acme/swap:v1", "--image").code == 0

    def other_bytes(blob: bytes) -> bytes:  # the same name and size: only the manifest refutes it
        with tarfile.open(fileobj=io.BytesIO(blob)) as t:
            name = t.getmembers()[-1].name
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(name)
            info.size = 1000
            tar.addfile(info, io.BytesIO(b"\x02" * 1000))
        return buf.getvalue()

    _swap_layer(host, "acme/swap", "weights.bin", other_bytes)
    res = run_cli("pull", f"oci://{host}/acme/swap:evil", "--to", str(tmp_path / "d"))
    assert res.code == 1 and "does not match the manifest's hash" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "d").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".d.")]


def test_an_image_whose_bundle_layer_steps_back_is_refused_not_looped_on(hub, registry, tmp_path):
    """A file of the bundle layer with a negative size (its checksum made right) sends a seekable
    tar reader back onto the same header forever; pull refuses it, and inspect (which reads only
    the manifest, before it) still shows the bundle."""
    import io

    bundle = make_bundle(tmp_path, "neg", b"\x01" * 1000)
    host = registry["host"]
    assert run_cli("push", str(bundle), f"oci://{host}/acme/neg:v1", "--image").code == 0

    def forged(blob: bytes) -> bytes:  # the last file's header: the reader steps back onto it
        with tarfile.open(fileobj=io.BytesIO(blob)) as t:
            return negative_size(blob, [m for m in t.getmembers() if m.isreg()][-1].offset)

    _swap_layer(host, "acme/neg", "bundle", forged)
    res = run_cli("pull", f"oci://{host}/acme/neg:evil", "--to", str(tmp_path / "d"))
    assert res.code == 2 and "negative size (-512): a forged header" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "d").exists()
    assert run_cli("inspect", f"oci://{host}/acme/neg:evil").code == 0


def test_hub_files_a_bundle_carries_are_in_the_image_once(hub, registry, tmp_path):
    from bundler.ops.build import build
    from bundler.ops.lock import lock

    from .test_oci import SERVICE

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"w" * 100)
    from bundler.stores.local import Store

    Store().import_dir("weights", tmp_path / "m")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE)
    lock(proj / "service.py")
    bundle = build(proj / "service.py", output=tmp_path / "e.bundle.tar", embed_hub=True).path
    host = registry["host"]
    assert run_cli("push", str(bundle), f"oci://{host}/acme/embedded:v1", "--image").code == 0
    index = json.loads(get(host, "/v2/acme/embedded/manifests/v1", IMAGE_INDEX_TYPE))
    image = json.loads(get(host, f"/v2/acme/embedded/manifests/{index['manifests'][0]['digest']}", IMAGE_MANIFEST_TYPE))
    first = image["layers"][0]
    assert first["annotations"]["org.opencontainers.image.title"] == "bundle"
    (tmp_path / "bundle-layer.tar").write_bytes(get(host, f"/v2/acme/embedded/blobs/{first['digest']}", "*/*"))
    with tarfile.open(tmp_path / "bundle-layer.tar") as tar:
        names = tar.getnames()
    assert "bundle/bundle.yaml" in names and not any(n.startswith("bundle/hub/") for n in names)
    titles = [layer["annotations"]["org.opencontainers.image.title"] for layer in image["layers"]]
    assert any(t.startswith("hub/models--acme--embed-small/blobs/") for t in titles)


@pytest.mark.parametrize("size", [0, 1, 511, 512, 513, 10240 - 2048, 70_000])
def test_a_file_layer_made_as_it_is_read_is_the_tar_tarfile_writes(tmp_path, size):
    from bundler.ops.image import _Entry, _FileLayer, _layer

    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(size))
    name = "hub/models--acme--x/blobs/0123abcd"
    expected = _layer([_Entry(name, "file", source)], tmp_path / "ref.tar", 315532800)
    layer = _FileLayer(name, source, 315532800)
    with layer.open() as f:
        made = f.read()
    assert made == (tmp_path / "ref.tar").read_bytes()
    assert layer.descriptor() == expected

    source.write_bytes(os.urandom(size + 1))  # the file changed after the layer was described
    with pytest.raises(OSError, match="changed size"), layer.open() as f:
        while f.read(4096):
            pass


def test_a_damaged_bundle_is_refused_before_anything_is_pushed(hub, registry, tmp_path):
    from .test_oci import tag_exists
    from .test_signing import flip_a_byte_of

    bundle = make_bundle(tmp_path, "bad", os.urandom(5000))
    with tarfile.open(bundle) as tar:
        member = next(n for n in tar.getnames() if n.endswith("weights.bin"))
    flip_a_byte_of(bundle, member)
    res = run_cli("push", str(bundle), f"oci://{registry['host']}/acme/bad:v1", "--image")
    assert res.code != 0 and "Traceback" not in res.stderr and member in res.stderr, res.stderr
    assert not tag_exists(registry["host"], "acme/bad", "v1")
