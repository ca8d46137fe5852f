"""``bundler push --image``: a bundle as an OCI image a Kubernetes node mounts (an image volume).

containerd and CRI-O mount only image-shaped manifests: an image config with ``rootfs.diff_ids``
and tar layers. The image's filesystem is what a pull gives, ready to serve with no pull step and
no writes:

- ``bundle/``: the unpacked bundle (``bundle.yaml``, ``bento.yaml``, ``src/``, packed models);
- ``hub/``: a Hugging Face cache holding every pinned Hub file (``models--org--name/blobs``,
  ``snapshots/<commit>`` links, ``refs/main``).

A pod mounting it at ``/models`` sets ``HF_HUB_CACHE=/models/hub`` and ``HF_HUB_OFFLINE=1`` and runs
``bentoml serve /models/bundle`` or ``bundler run /models/bundle``.

Each model file is a layer of its own (one file and its folders, fixed owner, mode and time), so
the same file in any bundle is the same layer: registries and peer-to-peer caches keep and move
it once. The bundle's other files and the cache's links are two small layers. Layers are
uncompressed tar (a layer's digest is its diff_id); the same bundle gives the same digests.
An index names the one set of layers for linux/amd64 and linux/arm64 (model files run anywhere).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Sequence

from ..oci.image import BUNDLE_DIR, HUB_DIR, IMAGE_CONFIG_TYPE, IMAGE_MANIFEST_TYPE, LAYER_TYPE, PLATFORMS, blob_path
from ..oci.registry import INDEX_TYPE

IMAGE_INDEX_TYPE = INDEX_TYPE


@dataclass(frozen=True)
class _Entry:
    """One tar entry: a folder, a file (its bytes, or a file to copy) or a symbolic link."""

    name: str
    kind: str  # "dir" | "file" | "link"
    source: Path | bytes | None = None
    target: str = ""  # a link's target
    executable: bool = False


class _Sha256Writer:
    """Writes through to ``f`` and hashes what passes: a layer's digest costs no second read."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.f.write(data)

    def tell(self) -> int:
        return self.size


def _layer(entries: list[_Entry], out: Path, mtime: int) -> dict[str, Any]:
    """A deterministic uncompressed tar of ``entries`` (with each one's parent folders) at
    ``out``; its descriptor."""
    named = {e.name for e in entries}
    folders: dict[str, None] = {}  # in first-seen order
    for e in entries:
        parts = e.name.split("/")
        for i in range(1, len(parts)):
            folders.setdefault("/".join(parts[:i]))
    with open(out, "wb") as raw:
        sink = _Sha256Writer(raw)
        with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for d in folders:
                if d not in named:
                    tar.addfile(_info(d + "/", tarfile.DIRTYPE, 0o755, mtime))
            for e in entries:
                _add(tar, e, mtime)
    return {"mediaType": LAYER_TYPE, "digest": "sha256:" + sink.sha.hexdigest(), "size": sink.size}


def _info(name: str, kind: bytes, mode: int, mtime: int, size: int = 0, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.size, info.linkname = kind, mode, mtime, size, target
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add(tar: tarfile.TarFile, e: _Entry, mtime: int) -> None:
    if e.kind == "dir":
        tar.addfile(_info(e.name + "/", tarfile.DIRTYPE, 0o755, mtime))
    elif e.kind == "link":
        tar.addfile(_info(e.name, tarfile.SYMTYPE, 0o777, mtime, target=e.target))
    elif isinstance(e.source, bytes):
        import io

        tar.addfile(_info(e.name, tarfile.REGTYPE, 0o755 if e.executable else 0o644, mtime, len(e.source)), io.BytesIO(e.source))
    else:
        assert isinstance(e.source, Path)
        with open(e.source, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            tar.addfile(_info(e.name, tarfile.REGTYPE, 0o755 if e.executable else 0o644, mtime, size), f)


class _FileLayer:
    """A layer holding one file (and its folders), made as it is read: the tar headers, the
    file's bytes from where they already are, the padding and the end blocks. No copy is written;
    the bytes are the ones tarfile writes for the same entries (``_layer``)."""

    def __init__(self, name: str, source: Path, mtime: int) -> None:
        parts = name.split("/")
        head = b"".join(_info("/".join(parts[:i]) + "/", tarfile.DIRTYPE, 0o755, mtime).tobuf(tarfile.PAX_FORMAT)
                        for i in range(1, len(parts)))
        self.source, self.size = source, source.stat().st_size
        self.head = head + _info(name, tarfile.REGTYPE, 0o644, mtime, self.size).tobuf(tarfile.PAX_FORMAT)
        end = len(self.head) + self.size + (-self.size % tarfile.BLOCKSIZE) + 2 * tarfile.BLOCKSIZE
        self.tail = bytes(-self.size % tarfile.BLOCKSIZE + 2 * tarfile.BLOCKSIZE + (-end % tarfile.RECORDSIZE))
        self.length = len(self.head) + self.size + len(self.tail)

    def open(self) -> IO[bytes]:
        import io

        parts: list[Any] = [io.BytesIO(self.head), open(self.source, "rb"), io.BytesIO(self.tail)]
        return _Chain(parts, self.length)  # type: ignore[return-value]

    def descriptor(self) -> dict[str, Any]:
        """The layer's descriptor: one read of the file, hashed."""
        sha = hashlib.sha256()
        with self.open() as f:
            while chunk := f.read(4 << 20):
                sha.update(chunk)
        return {"mediaType": LAYER_TYPE, "digest": "sha256:" + sha.hexdigest(), "size": self.length}


class _Chain:
    """Readers read one after the other, as one file of ``length`` bytes (a file that changes
    size meanwhile is an error, not a short or long layer)."""

    def __init__(self, parts: list[Any], length: int) -> None:
        self.parts, self.length, self.done = parts, length, 0

    def read(self, n: int = -1) -> bytes:
        out = b""
        while self.parts and (n < 0 or len(out) < n):
            data = self.parts[0].read(-1 if n < 0 else n - len(out))
            if not data:
                self.parts.pop(0).close()
                continue
            out += data
        self.done += len(out)
        if self.done > self.length or (not out and n != 0 and self.done != self.length):
            raise OSError(f"a layer's file changed size while it was read ({self.done} of {self.length} bytes)")
        return out

    def close(self) -> None:
        for part in self.parts:
            part.close()
        self.parts = []

    def __enter__(self) -> "_Chain":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def image_layers(bundle: Path, work: Path) -> tuple[Any, list[tuple[dict[str, Any], Any]]]:
    """The manifest and the layers (descriptor, file) of ``bundle`` as a mountable image, written
    under ``work``: the bundle unpacked and its Hub files fetched (from this host's Hugging Face
    cache when there, else the Hub; verified against their pins either way)."""
    from .. import kinds
    from ..bundle.archive import archive_mtime, read_manifest
    from ..bundle.manifest import hub_model_dir
    from ..hub.cache import hub_cache_dir
    from .pull import PullResult, fetch, require_ok, unpack

    manifest = read_manifest(bundle)
    if fetched := [p for p in manifest.pins if kinds.of(p).fetched and manifest.model_dir(p) is None]:
        from ..errors import UsageError

        raise UsageError(f"{bundle}: the {fetched[0].source} model {fetched[0].id} is fetched by `bundler pull` into the host's cache, "
                         "which a mounted image has no way to do", hint=f"build the bundle with --embed-{fetched[0].source} so the image carries it")
    dest, cache = work / BUNDLE_DIR, hub_cache_dir(None)
    unpack(bundle, dest, manifest)
    result = PullResult(str(bundle), dest, cache, manifest)
    hub = [p for p in manifest.pins if kinds.of(p).hub]
    fetch(result, hub, jobs=8, verify_only=False, progress=None)
    require_ok(result)
    mtime = archive_mtime()
    packed = {f"{where}/{f.path}" for p in manifest.pins if (where := manifest.model_dir(p)) is not None for f in p.files}
    # files a bundle built with --embed-hub carries are the cache's blobs in the image: not twice
    embedded = {f"{hub_model_dir(p)}/{f.path}" for p in manifest.embedded_hub for f in p.files}
    layers: list[tuple[dict[str, Any], Any]] = []  # (descriptor, a layer file or a _FileLayer)
    seen: set[str] = set()

    def add(desc: dict[str, Any], body: Any, title: str) -> None:
        desc["annotations"] = {"org.opencontainers.image.title": title}
        if desc["digest"] not in seen:  # one file in two places: one layer
            seen.add(desc["digest"])
            layers.append((desc, body))

    for title, entries in ((BUNDLE_DIR, _bundle_entries(dest, packed | embedded)), (HUB_DIR, _hub_link_entries(hub))):
        out = work / f"layer-{title}.tar"
        add(_layer(entries, out, mtime), out, title)
    files = [(f"{BUNDLE_DIR}/{name}", dest / name) for name in sorted(packed)] + sorted(_hub_blobs(hub, cache).items())
    for name, source in files:
        layer = _FileLayer(name, source, mtime)
        add(layer.descriptor(), layer, name)
    return manifest, layers


def _bundle_entries(dest: Path, packed: set[str]) -> list[_Entry]:
    """The unpacked bundle but its model files (each has a layer of its own): sources, manifest, views."""
    from ..io.walk import walk
    from .pull import PULL_RECORD

    entries = []
    for dirpath, dirnames, filenames in walk(dest):
        dirnames.sort()
        here = Path(dirpath)
        for fn in sorted(filenames):
            rel = (here / fn).relative_to(dest).as_posix()
            if rel in packed or rel == PULL_RECORD:
                continue
            entries.append(_Entry(f"{BUNDLE_DIR}/{rel}", "file", here / fn, executable=bool((here / fn).stat().st_mode & 0o111)))
    return sorted(entries, key=lambda e: e.name)


def _cache_folder(repo_id: str) -> str:
    from ..hub.cache import repo_folder

    return repo_folder(Path(HUB_DIR), repo_id).as_posix()


def _hub_link_entries(hub: list[Any]) -> list[_Entry]:
    """The cache's links and refs: ``snapshots/<commit>/<path>`` -> ``blobs/<etag>``, and
    ``refs/main`` -> the pinned commit (the first pin of a repository, as a pull writes it), so a
    load by name at ``main`` resolves offline too."""
    entries: dict[str, _Entry] = {}
    for pin in hub:
        folder = _cache_folder(pin.id)
        entries.setdefault(f"{folder}/refs/main", _Entry(f"{folder}/refs/main", "file", str(pin.commit).encode()))
        for f in pin.files:
            link = f"{folder}/snapshots/{pin.commit}/{f.path}"
            up = "../" * (f.path.count("/") + 2)
            entries[link] = _Entry(link, "link", target=f"{up}blobs/{f.hash.partition(':')[2]}")
    return sorted(entries.values(), key=lambda e: e.name)


def _hub_blobs(hub: list[Any], cache: Path) -> dict[str, Path]:
    """Image path -> the verified blob in this host's cache, for every pinned Hub file."""
    from ..hub.cache import repo_folder

    out = {}
    for pin in hub:
        for f in pin.files:
            etag = f.hash.partition(":")[2]
            out[blob_path(pin, f.hash)] = repo_folder(cache, pin.id) / "blobs" / etag
    return out


def push_image(bundle: str | os.PathLike[str], target: str, *, insecure: bool = False, token: str | None = None,
               tags: Sequence[str] = ()) -> Any:
    """Push ``bundle`` as a mountable OCI image (an index over linux/amd64 and linux/arm64).

    Every member is checked against the manifest as ``image_layers`` unpacks it (the one member
    reader: sizes, hashes, the end-of-archive marker), before anything is uploaded."""
    from ..oci.registry import PushResult, Reference, bundle_annotations, push_target, tag_manifest, upload_missing

    ref, registry = push_target(target, insecure=insecure, token=token)
    with tempfile.TemporaryDirectory(prefix="bundler-image-") as d:
        manifest, layers = image_layers(Path(bundle), Path(d))
        result = PushResult(ref, "", manifest.digest)
        annotations = bundle_annotations(manifest)
        blobs: list[tuple[dict[str, Any], Any]] = [(desc, body if isinstance(body, _FileLayer) else (body, 0, desc["size"]))
                                                   for desc, body in layers]
        images = []
        for arch in PLATFORMS:
            config = _json({"architecture": arch, "os": "linux", "config": {},
                            "rootfs": {"type": "layers", "diff_ids": [desc["digest"] for desc, _ in layers]}})
            config_desc = {"mediaType": IMAGE_CONFIG_TYPE, "digest": _sha256(config), "size": len(config)}
            blobs.append((config_desc, config))
            image = _json({"schemaVersion": 2, "mediaType": IMAGE_MANIFEST_TYPE, "config": config_desc,
                           "layers": [desc for desc, _ in layers], "annotations": annotations})
            images.append((arch, image))
        upload_missing(registry, ref, blobs, result, present=set())
        for _, image in images:
            registry.put_manifest(Reference(ref.host, ref.repo, None, _sha256(image)), image, IMAGE_MANIFEST_TYPE)
        index = _json({"schemaVersion": 2, "mediaType": IMAGE_INDEX_TYPE, "annotations": annotations, "manifests": [
            {"mediaType": IMAGE_MANIFEST_TYPE, "digest": _sha256(image), "size": len(image), "platform": {"architecture": arch, "os": "linux"}}
            for arch, image in images]})
        tag_manifest(registry, ref, index, tags, result, IMAGE_INDEX_TYPE)
    return result


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
