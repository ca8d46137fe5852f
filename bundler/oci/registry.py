"""Bundles as OCI artifacts: push to and pull from any OCI distribution registry.

Layout of a pushed bundle (an OCI image manifest):

- config: ``bundle.yaml`` itself (``application/vnd.bundler.manifest.v1+yaml``);
- layer 1: the project sources, a reproducible tar (``application/vnd.bundler.source.v1.tar``);
- one layer per embedded model file (``application/vnd.bundler.model.file.v1``), titled with its
  path in the bundle, so weights that did not change are blobs the registry already has;
- annotations: name, version and bundle digest.

The registry client is ``client.py``; the ``oras`` client is used in the tests to prove others read
what bundler writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ProblemFound, UsageError
from ..model.layout import MANIFEST_NAME, SOURCE_PREFIX
from .client import (  # noqa: F401 - the client's names, as this module always offered them
    CHUNK, INDEX_TYPE, MANIFEST_TYPE, TITLE, Reference, Registry, RegistryError, _download, check_tag, docker_auth, parse_reference,
)

ARTIFACT_TYPE = "application/vnd.bundler.bundle.v1"
CONFIG_TYPE = "application/vnd.bundler.manifest.v1+yaml"
SOURCE_TYPE = "application/vnd.bundler.source.v1.tar"
MODEL_FILE_TYPE = "application/vnd.bundler.model.file.v1"
SOURCE_TITLE = "src.tar"

if TYPE_CHECKING:
    from ..bundle.manifest import Manifest
    from .image import PushedImage


class _Slice(io.RawIOBase):
    """``size`` bytes of ``f`` from ``offset``: a blob inside the bundle archive, read in place."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self.f = open(path, "rb")
        self.f.seek(offset)
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.f.close()
        super().close()


@dataclass
class PushResult:
    ref: Reference
    digest: str  # the OCI manifest's sha256 (what a registry names it by)
    bundle_digest: str = ""  # the bundle's own blake3 digest (what build and inspect name it by)
    uploaded: int = 0
    skipped: int = 0
    blobs_uploaded: int = 0
    blobs_skipped: int = 0
    tags: list[str] = field(default_factory=list)  # the extra tags (--tag) given the same manifest

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": str(self.ref),
            "digest": self.digest,  # kept for scripts written before manifest_digest; same value
            "manifest_digest": self.digest,
            "bundle_digest": self.bundle_digest,
            "uploaded_bytes": self.uploaded,
            "skipped_bytes": self.skipped,
            "blobs_uploaded": self.blobs_uploaded,
            "blobs_skipped": self.blobs_skipped,
            "tags": [self.ref.tag or "latest", *self.tags],
        }


def _plain_tar(bundle: Path, work: Path, limit: int) -> Path:
    """The bundle as an uncompressed tar, so members can be read in place by offset.

    Never more than ``limit`` bytes (what the verified manifest allows, with tar's headers): a
    gzip bomb stops there instead of filling the disk.
    """
    from ..bundle.archive import is_compressed
    from ..io.compression import open_decompressed

    if not is_compressed(bundle):
        return bundle
    import zlib

    out = work / "bundle.tar"
    written = 0
    try:
        with open_decompressed(bundle) as src, open(out, "wb") as dst:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > limit:
                    raise UsageError(f"{bundle}: decompresses to more than its manifest allows ({limit} bytes); refusing it")
                dst.write(chunk)
    except (OSError, EOFError, zlib.error) as e:
        raise UsageError(f"{bundle}: truncated or corrupt archive ({e})", hint="fetch or build the bundle again") from None
    return out


def _tar_limit(manifest: Any) -> int:
    """The most bytes the uncompressed tar of ``manifest`` can hold: members padded to 512, a
    header (and a PAX header) per member, the end marker and the record padding."""
    members = manifest.members()
    body = sum(-(-e.size // 512) * 512 for e in members.values())
    return body + (len(members) + 2) * 3 * 512 + (1 << 20)


def _digest_record(recorded: str) -> Path:
    from ..settings import bundler_home as home

    algorithm, _, hexdigest = recorded.partition(":")
    return home() / "oci-digests" / f"{algorithm}-{hexdigest}"


def _known_sha256(recorded: str) -> str | None:
    """The sha256 of content known by another hash, if bundler computed it before.

    Sound without reading the file again: content with the recorded hash has this sha256, and a
    registry accepts an upload only when the bytes match the digest it is given; so a later push of
    unchanged weights reads nothing but asks the registry whether it has them.
    """
    return _read_digest(_digest_record(recorded))


def _remember_sha256(recorded: str, sha: str) -> None:
    _write_digest(_digest_record(recorded), sha)  # lost, it only costs a re-hash next time


def _read_digest(path: Path) -> str | None:
    """A ``sha256:`` digest bundler recorded in ``path``; None when absent or not one."""
    try:
        value = path.read_text().strip()
    except OSError:
        return None
    return value if re.fullmatch(r"sha256:[0-9a-f]{64}", value) else None


def _write_digest(path: Path, digest: str) -> None:
    """Record ``digest`` at ``path``, best effort: every record is only a shortcut."""
    from ..io.atomic import write_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (digest + "\n").encode())
    except OSError:
        pass


def _hash_slice(path: Path, offset: int, size: int, algorithm: str) -> tuple[str, str]:
    """(the OCI sha256 digest, the bundle manifest's ``algorithm:hex``) of a member, in one read."""
    from ..io.hashing import new_hasher

    s, b = hashlib.sha256(), new_hasher(algorithm, size)
    with _Slice(path, offset, size) as f:
        while chunk := f.read(CHUNK):
            s.update(chunk)
            b.update(chunk)
    return "sha256:" + s.hexdigest(), f"{algorithm}:{b.hexdigest()}"


PARALLEL = 8  # requests in flight at once during a push


def push(bundle: str | os.PathLike[str], target: str, *, insecure: bool = False, token: str | None = None,
         tags: Sequence[str] = ()) -> PushResult:
    """Push a bundle archive; blobs the registry already has are not uploaded again."""
    from ..bundle.archive import require_ok, verify

    bundle = Path(bundle)
    ref, registry = push_target(target, insecure=insecure, token=token)
    # What is sent is checked at least as strictly as `bundler inspect --verify`: every byte
    # against the manifest, the end-of-archive marker, no links or unsafe paths. Only then may
    # remembered sha256s stand in for reading a weight again.
    manifest, report = verify(bundle)
    require_ok(bundle, report)
    result = PushResult(ref, "", manifest.digest)
    with tempfile.TemporaryDirectory(prefix="bundler-push-") as d:
        plain = _plain_tar(bundle, Path(d), _tar_limit(manifest))
        config, blobs = _blobs(bundle, plain, manifest, Path(d) / "sources.tar")
        cfg = {"mediaType": CONFIG_TYPE, "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)}
        upload_missing(registry, ref, [(cfg, config), *blobs], result)
        oci_manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "artifactType": ARTIFACT_TYPE,
            "config": cfg,
            "layers": [desc for desc, _ in blobs],
            "annotations": bundle_annotations(manifest),
        }
        tag_manifest(registry, ref, json.dumps(oci_manifest, sort_keys=True, separators=(",", ":")).encode(), tags, result)
    _remember_pushed(ref, result.digest)
    return result


def push_target(target: str, *, insecure: bool, token: str | None) -> tuple[Reference, Registry]:
    """The tag a push writes and a client for its registry; a digest is exit 2 (a push names)."""
    ref = parse_reference(target)
    if ref.digest:
        raise UsageError(f"{target}: push to a tag, not a digest")
    return ref, Registry(ref.host, insecure=insecure, token=token)


def bundle_annotations(manifest: Manifest) -> dict[str, str]:
    """What a pushed bundle, in either form, says about itself: name, version, bundle digest."""
    return {TITLE: manifest.name, "org.opencontainers.image.version": manifest.version, "dev.bundler.digest": manifest.digest}


def tag_manifest(registry: Registry, ref: Reference, data: bytes, tags: Sequence[str], result: PushResult,
                 media_type: str = MANIFEST_TYPE) -> None:
    """``data`` under the push's tag, then under each extra tag: one upload, the same bytes under
    each name. Called once every blob is in place: an interrupted push leaves orphan blobs
    (reused by the next push) but never a half-visible tag."""
    result.digest = registry.put_manifest(ref, data, media_type)
    for tag in tags:
        registry.put_manifest(Reference(ref.host, ref.repo, tag, None), data, media_type)
        result.tags.append(tag)


#: a blob to send: its descriptor, and its bytes or the (file, offset, size) slice holding them
_Blob = tuple[dict[str, Any], Any]


def _blobs(bundle: Path, plain: Path, manifest: Manifest, source_path: Path) -> tuple[bytes, list[_Blob]]:
    """The config (the manifest's own bytes) and the layers of an uncompressed copy of the
    bundle: the sources as one tar, then each model file in place, read through the archive's one
    validated member reader and checked against the manifest."""
    from ..bundle.archive import ArchiveWriter, ExpectedMembers, iter_members, manifest_bytes
    from ..io.hashing import sha256_file

    expected = ExpectedMembers(manifest, str(bundle))
    layers: list[_Blob] = []
    # The source layer goes to a file, not memory: a large file among the sources must not make
    # memory grow with it.
    with open(source_path, "w+b") as sources:
        writer = ArchiveWriter(sources, compress=False)
        for name, m, f in iter_members(plain):
            entry = expected.accept(name, m.size)
            if name.startswith(SOURCE_PREFIX):
                if writer.add_stream(name[len(SOURCE_PREFIX):], f, m.size) != entry.hash:
                    raise ProblemFound(f"{bundle}: member {name!r} does not match the manifest", hint="rebuild the bundle")
                continue
            sha = _known_sha256(entry.hash)
            if sha is None:
                sha, recorded = _hash_slice(plain, m.offset_data, m.size, entry.hash.partition(":")[0])
                if recorded != entry.hash:
                    raise ProblemFound(f"{bundle}: member {name!r} does not match the manifest", hint="rebuild the bundle")
                _remember_sha256(entry.hash, sha)
            layers.append(({"mediaType": MODEL_FILE_TYPE, "digest": sha, "size": m.size, "annotations": {TITLE: name}}, (plain, m.offset_data, m.size)))
        expected.require_all()
        writer.close()
    size = source_path.stat().st_size
    source = {"mediaType": SOURCE_TYPE, "digest": "sha256:" + sha256_file(source_path), "size": size, "annotations": {TITLE: SOURCE_TITLE}}
    return manifest_bytes(plain), [(source, (source_path, 0, size)), *layers]


def upload_missing(registry: Registry, ref: Reference, todo: list[_Blob], result: PushResult, present: set[str] | None = None) -> None:
    """Every blob the registry lacks, uploaded; existence checks and uploads run several at a
    time over keep-alive connections (a model of thousands of small files is round trips, not bytes)."""
    from concurrent.futures import ThreadPoolExecutor

    def upload(item: _Blob) -> None:
        desc, body = item
        if isinstance(body, tuple):
            with _Slice(*body) as f:
                registry.upload_blob(ref.repo, desc["digest"], desc["size"], f)  # type: ignore[arg-type]  # file-like: read()
        elif hasattr(body, "open"):  # a blob made as it is read (an image layer around one file)
            with body.open() as f:
                registry.upload_blob(ref.repo, desc["digest"], desc["size"], f)
        else:
            registry.upload_blob(ref.repo, desc["digest"], desc["size"], body)

    present = _present_by_manifest(registry, ref) if present is None else present
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        there = list(pool.map(lambda item: item[0]["digest"] in present or registry.blob_exists(ref.repo, item[0]["digest"]), todo))
        missing = [item for item, found in zip(todo, there) if not found]
        list(pool.map(upload, missing))
    result.blobs_skipped = len(todo) - len(missing)
    result.skipped = sum(d["size"] for (d, _), found in zip(todo, there) if found)
    result.blobs_uploaded = len(missing)
    result.uploaded = sum(d["size"] for d, _ in missing)


def _pushed_record(ref: Reference) -> Path:
    from ..settings import bundler_home as home

    key = hashlib.sha256(f"{ref.host}/{ref.repo}".encode()).hexdigest()[:32]
    return home() / "oci-pushed" / key


def _remember_pushed(ref: Reference, digest: str) -> None:
    _write_digest(_pushed_record(ref), digest)  # lost, it only costs existence checks next time


def _present_by_manifest(registry: Registry, ref: Reference) -> set[str]:
    """Blobs the registry has because a manifest it holds right now references them: the
    target tag's current manifest and the last one bundler pushed to this repository. A
    registry never collects a blob a live manifest references, so one manifest GET stands for a
    thousand HEADs. The answer is fresh from the registry; nothing local is trusted but a digest
    to ask about."""
    candidates = [Reference(ref.host, ref.repo, ref.tag or "latest", None)]
    last = _read_digest(_pushed_record(ref))
    if last is not None:
        candidates.append(Reference(ref.host, ref.repo, None, last))
    present: set[str] = set()
    for candidate in candidates:
        try:
            m, _ = registry.get_manifest(candidate)
        except (UsageError, ProblemFound):
            continue  # none there, or not ours: ask blob by blob
        present.add(m["config"]["digest"])
        present.update(layer["digest"] for layer in m["layers"])
    return present


# --- pull / inspect -----------------------------------------------------------------------------
class ForeignArtifact(UsageError):
    """An OCI artifact that is not a bundle (a ModelPack artifact, an oras push): its manifest."""

    def __init__(self, message: str, *, manifest: dict[str, Any]) -> None:
        super().__init__(message, hint="pull a bundle pushed by `bundler push`; a model artifact is named in a service with bundler.OCIModel")
        self.manifest = manifest


@dataclass
class Pushed:
    """A pushed bundle: its OCI manifest and bundle manifest read, its layers not yet."""

    registry: Registry
    ref: Reference
    oci: dict[str, Any]
    raw_config: bytes
    manifest: Any  # bundler.manifest.Manifest

    def fetch_into(self, root: Path) -> None:
        """Write the bundle's members under ``root``, each streamed once and checked twice:
        against the registry digest (sha256) and the bundle manifest (size, blake3). Only members
        the manifest lists, at safe paths, are accepted."""
        from ..bundle.archive import ExpectedMembers, check_member, members_of, write_member

        expected = ExpectedMembers(self.manifest, str(self.ref))

        (root / MANIFEST_NAME).write_bytes(self.raw_config)
        for i, layer in enumerate(self.oci.get("layers", [])):
            digest, size, kind = layer["digest"], int(layer["size"]), layer.get("mediaType")
            if kind == SOURCE_TYPE:
                # A nameless temporary file, not memory: a large source must not grow memory.
                buf = tempfile.TemporaryFile(dir=root)
                _download(self.registry, self.ref.repo, digest, size, buf)
                buf.seek(0)
                try:
                    with tarfile.open(fileobj=buf, mode="r:") as src:
                        for m in members_of(src, f"{self.ref} source layer"):
                            name = SOURCE_PREFIX + check_member(m, f"{self.ref} source layer")
                            entry = expected.accept(name, m.size)
                            write_member(root, name, src.extractfile(m), entry, executable=bool(m.mode & 0o111))  # type: ignore[arg-type]
                except (tarfile.TarError, EOFError) as e:
                    raise ProblemFound(f"{self.ref}: the source layer is not a valid tar ({e})", hint="push the bundle again") from None
                finally:
                    buf.close()
            elif kind == MODEL_FILE_TYPE:
                info = tarfile.TarInfo(layer.get("annotations", {}).get(TITLE, ""))
                name = check_member(info, f"{self.ref} layer {i}")
                entry = expected.accept(name, size)
                sha = hashlib.sha256()
                r = self.registry.get_blob(self.ref.repo, digest)
                try:
                    write_member(root, name, r, entry, tee=sha)  # type: ignore[arg-type]
                finally:
                    r.close()
                if "sha256:" + sha.hexdigest() != digest:
                    raise ProblemFound(f"{self.ref}: blob {digest} ({name}) failed verification", hint="pull again")
            else:
                raise UsageError(f"{self.ref}: layer {i} has an unknown media type {kind!r}")
        expected.require_all()


def open_pushed(target: str, *, insecure: bool = False, token: str | None = None) -> Pushed | PushedImage:
    """Read a pushed bundle's OCI manifest and its config (the bundle manifest), nothing more; or,
    for a bundle pushed as a mountable image, its image manifest, config and bundle layer."""
    from ..bundle.manifest import loads
    from .image import PushedImage

    ref = parse_reference(target)
    registry = Registry(ref.host, insecure=insecure, token=token)
    oci, _ = registry.get_manifest(ref, index_ok=True)
    if oci.get("mediaType") == INDEX_TYPE:
        return PushedImage(registry, ref, oci)
    if oci["config"]["mediaType"] != CONFIG_TYPE:
        raise ForeignArtifact(f"{ref}: not a bundler bundle (config media type {oci['config']['mediaType']!r})", manifest=oci)
    buf = io.BytesIO()
    _download(registry, ref.repo, oci["config"]["digest"], int(oci["config"]["size"]), buf)
    raw = buf.getvalue()
    return Pushed(registry, ref, oci, raw, loads(raw, str(ref)))


def read_manifest(target: str, *, insecure: bool = False, token: str | None = None) -> Manifest:
    """The bundle manifest of a pushed bundle: only the OCI manifest and config are read (of an
    image: its manifest, config and the small bundle layer)."""
    from .image import PushedImage

    pushed = open_pushed(target, insecure=insecure, token=token)
    if isinstance(pushed, PushedImage):
        pushed.close()
    return pushed.manifest
