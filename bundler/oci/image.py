"""A bundle pushed as a mountable image (``bundler push --image``), read back: ``pull`` and
``inspect`` of its ``oci://`` reference.

The image's filesystem (``ops/image.py`` writes it) is ``bundle/`` (the unpacked bundle, its model
files each in a layer of its own) and ``hub/`` (a Hugging Face cache: a layer per blob, one of
links). Reading it back trusts nothing in it but what the bundle manifest pins: every layer is
checked against its digest (and the config's ``diff_ids``) as it streams, every bundle member
against the manifest (size and hash), every Hub blob later against its pin as the pull places it
in the host's cache; files the image holds beside those (the views a pull derives, ``bento.yaml``)
are not taken from it but made again.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import ProblemFound, UsageError
from ..model.layout import MANIFEST_NAME
from .client import TITLE, Reference, Registry, _download

if TYPE_CHECKING:
    from ..bundle.manifest import Manifest
    from ..model.pins import Pin

IMAGE_MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
IMAGE_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
PLATFORMS = ("amd64", "arm64")
BUNDLE_DIR = "bundle"
HUB_DIR = "hub"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_MAX_CONFIG = 1 << 20


class PushedImage:
    """An image index ``bundler push --image`` wrote: its image manifest, config and bundle layer
    read (the bundle manifest with them), the model file layers not yet."""

    def __init__(self, registry: Registry, ref: Reference, index: dict[str, Any]) -> None:
        from ..bundle.manifest import loads

        self.registry, self.ref = registry, ref
        self.image = _image_manifest(registry, ref, index)
        self.layers = self.image["layers"]
        self._check_diff_ids()
        bundle = [d for d in self.layers if _title(d) == BUNDLE_DIR]
        if len(bundle) != 1:
            raise UsageError(f"{ref}: an image without bundler's `{BUNDLE_DIR}` layer: not a bundle pushed with `push --image`")
        # A nameless temporary file: the sources can be large, and the pull reads them again.
        self._bundle_layer: IO[bytes] = tempfile.TemporaryFile()
        _download(registry, ref.repo, bundle[0]["digest"], int(bundle[0]["size"]), self._bundle_layer)
        self.raw_manifest = self._bundle_member(f"{BUNDLE_DIR}/{MANIFEST_NAME}")
        self.manifest: Manifest = loads(self.raw_manifest, str(ref))
        self._work = tempfile.TemporaryDirectory(prefix="bundler-image-pull-")
        self.hub_blobs: dict[str, Path] = {}  # image path -> the blob, fetched and checked against its layer digest

    def close(self) -> None:
        self._bundle_layer.close()
        self._work.cleanup()

    def _check_diff_ids(self) -> None:
        config_desc = self.image["config"]
        if config_desc.get("mediaType") != IMAGE_CONFIG_TYPE or int(config_desc.get("size", 0)) > _MAX_CONFIG:
            raise UsageError(f"{self.ref}: not an image config ({config_desc.get('mediaType')!r})")
        import io
        import json

        buf = io.BytesIO()
        _download(self.registry, self.ref.repo, config_desc["digest"], int(config_desc["size"]), buf)
        try:
            diff_ids = json.loads(buf.getvalue())["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise ProblemFound(f"{self.ref}: the image config has no rootfs.diff_ids") from None
        # Layers are uncompressed tar: each one's digest is its diff_id (what containerd checks).
        if diff_ids != [d["digest"] for d in self.layers] or any(d.get("mediaType") != LAYER_TYPE for d in self.layers):
            raise ProblemFound(f"{self.ref}: the image's layers are not the uncompressed tar layers its config lists",
                               hint="this is not an image `bundler push --image` wrote; pull the bundle it was made from")

    def _bundle_member(self, name: str) -> bytes:
        from ..bundle.archive import members_of
        from ..bundle.manifest import MAX_MANIFEST_BYTES

        self._bundle_layer.seek(0)
        try:
            with tarfile.open(fileobj=self._bundle_layer, mode="r:") as tar:
                for m in members_of(tar, f"{self.ref} {BUNDLE_DIR} layer"):
                    if m.name == name and m.isreg() and m.size <= MAX_MANIFEST_BYTES:
                        f = tar.extractfile(m)
                        if f is not None:
                            return f.read()
        except (tarfile.TarError, EOFError) as e:
            raise ProblemFound(f"{self.ref}: the `{BUNDLE_DIR}` layer is not a valid tar ({e})") from None
        raise ProblemFound(f"{self.ref}: the `{BUNDLE_DIR}` layer holds no {name}", hint="pull the bundle it was made from")

    def fetch_into(self, root: Path) -> None:
        """Write the bundle's members under ``root``: from the bundle layer, the file layers and
        (for an ``--embed-hub`` bundle) the Hub blobs; each checked against the manifest."""
        from ..bundle.archive import ExpectedMembers, check_member, members_of, write_member

        expected = ExpectedMembers(self.manifest, str(self.ref))
        members = self.manifest.members()
        (root / MANIFEST_NAME).write_bytes(self.raw_manifest)
        self._bundle_layer.seek(0)
        made: set[str] = set()
        try:
            with tarfile.open(fileobj=self._bundle_layer, mode="r:") as tar:
                for m in members_of(tar, f"{self.ref} {BUNDLE_DIR} layer"):
                    if m.isdir():
                        continue
                    name = check_member(m, f"{self.ref} {BUNDLE_DIR} layer")
                    rel = name.partition("/")[2]
                    if name.startswith(f"{BUNDLE_DIR}/") and rel in members:  # the rest: views a pull makes again
                        write_member(root, rel, tar.extractfile(m), expected.accept(rel, m.size),  # type: ignore[arg-type]
                                     executable=bool(m.mode & 0o111), made=made)
        except (tarfile.TarError, EOFError) as e:
            raise ProblemFound(f"{self.ref}: the `{BUNDLE_DIR}` layer is not a valid tar ({e})") from None
        for desc in self.layers:
            title = _title(desc)
            if title.startswith(f"{BUNDLE_DIR}/"):
                rel = title.partition("/")[2]
                self._file_layer(desc, lambda f, size: write_member(root, rel, f, expected.accept(rel, size), made=made))
            elif title.startswith(f"{HUB_DIR}/"):
                self._hub_blob(desc)
        self._embedded_hub(root, expected)
        expected.require_all()

    def _embedded_hub(self, root: Path, expected: Any) -> None:
        """An ``--embed-hub`` bundle's Hub members, from the image's cache blobs."""
        from ..bundle.archive import write_member
        from ..bundle.manifest import hub_model_dir

        for pin in self.manifest.embedded_hub:
            for f in pin.files:
                name = f"{hub_model_dir(pin)}/{f.path}"
                blob = self.hub_blobs.get(blob_path(pin, f.hash))
                if blob is None:
                    raise ProblemFound(f"{self.ref}: the image holds no blob for {name}", hint="push the bundle again with --image")
                with open(blob, "rb") as src:
                    write_member(root, name, src, expected.accept(name, f.size))

    def hub_local(self) -> Mapping[tuple[Any, str], Path]:
        """(pin key, file path) -> the image's blob of each pinned Hub file it holds, for the pull
        to place in this host's cache (checked against the pin there). A blob ``fetch_into`` did
        not fetch is fetched when the pull asks for it: files the cache holds already cost nothing."""
        by_title = {_title(d): d for d in self.layers}
        wanted = {(p.key, f.path): blob_path(p, f.hash) for p in self.manifest.pins if p.commit is not None for f in p.files}
        return _LazyBlobs(self, {k: by_title[t] for k, t in wanted.items() if t in by_title})

    def _hub_blob(self, desc: dict[str, Any]) -> None:
        from ..model.pins import safe_path

        title = _title(desc)
        try:
            target = Path(self._work.name) / safe_path(title)
        except ValueError as e:
            raise ProblemFound(f"{self.ref}: layer {desc['digest']}: {e}") from None

        def keep(f: IO[bytes], size: int) -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                shutil.copyfileobj(f, out, 1 << 20)

        self._file_layer(desc, keep)
        self.hub_blobs[title] = target

    def _file_layer(self, desc: dict[str, Any], take: Any) -> None:
        """Stream a one-file layer: its folders, then the file named by its title, given to
        ``take(reader, size)``; the layer's digest is checked once the stream ends."""
        r = self.registry.get_blob(self.ref.repo, desc["digest"])
        reader = _Sha256Reader(r, int(desc["size"]))
        title = _title(desc)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                files = 0
                for m in tar:
                    if m.isdir():
                        continue
                    if not m.isreg() or m.name != title or files:
                        raise ProblemFound(f"{self.ref}: layer {desc['digest']} holds {m.name!r}, not just the file {title!r}")
                    files += 1
                    take(tar.extractfile(m), m.size)
            reader.drain()
        except (tarfile.TarError, EOFError) as e:
            raise ProblemFound(f"{self.ref}: layer {desc['digest']} is not a valid tar ({e})") from None
        finally:
            r.close()
        if reader.digest != desc["digest"]:
            raise ProblemFound(f"{self.ref}: layer {desc['digest']} ({title}) failed verification", hint="pull again")


class _LazyBlobs(Mapping[tuple[Any, str], Path]):
    """The image's Hub blobs by (pin key, path), each fetched on first use (pulls ask from
    several threads: one fetch per blob)."""

    def __init__(self, image: PushedImage, layers: dict[tuple[Any, str], dict[str, Any]]) -> None:
        self.image, self.layers = image, layers
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __getitem__(self, key: tuple[Any, str]) -> Path:
        desc = self.layers[key]
        title = _title(desc)
        with self._guard:
            lock = self._locks.setdefault(title, threading.Lock())
        with lock:
            if title not in self.image.hub_blobs:
                self.image._hub_blob(desc)
            return self.image.hub_blobs[title]

    def __contains__(self, key: object) -> bool:  # Mapping's own would fetch the blob to answer
        return key in self.layers

    def __iter__(self) -> Iterator[tuple[Any, str]]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)


class _Sha256Reader:
    """A blob as it streams: hashed, and never longer than its descriptor says."""

    def __init__(self, r: Any, size: int) -> None:
        self.r, self.size, self.seen, self.sha = r, size, 0, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.r.read(n if n is not None and n >= 0 else 1 << 20)
        self.seen += len(data)
        if self.seen > self.size:
            raise ProblemFound(f"a layer is larger than its descriptor says ({self.size} bytes)")
        self.sha.update(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest() if self.seen == self.size else "(truncated)"


def blob_path(pin: Pin, hash_: str) -> str:
    """Where a pinned Hub file's blob is in the image (the cache's layout)."""
    from ..hub.cache import repo_folder

    return f"{repo_folder(Path(HUB_DIR), pin.id).as_posix()}/blobs/{hash_.partition(':')[2]}"


def _title(desc: dict[str, Any]) -> str:
    annotations = desc.get("annotations")
    title = annotations.get(TITLE) if isinstance(annotations, dict) else None
    return title if isinstance(title, str) else ""


def _image_manifest(registry: Registry, ref: Reference, index: dict[str, Any]) -> dict[str, Any]:
    """This host's platform's image manifest of the index (they share their layers)."""
    entries = [m for m in index.get("manifests", []) if isinstance(m, dict) and m.get("mediaType") == IMAGE_MANIFEST_TYPE]
    if not entries:
        raise UsageError(f"{ref}: an image index with no image manifest")
    arch = _ARCH.get(platform.machine(), platform.machine())
    chosen = next((m for m in entries if (m.get("platform") or {}).get("architecture") == arch), entries[0])
    image, _ = registry.get_manifest(Reference(ref.host, ref.repo, None, str(chosen["digest"])))
    return image

