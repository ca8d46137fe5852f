"""S3 and S3-compatible object stores as a model source: ``bundler.S3Model("s3://bucket/prefix/")``.

``lock`` lists the objects and pins each one (``stores/s3.py``: version id, ETag, size, sha256);
the pin's version is the sha256 of that listing, so it names exactly these bytes. ``bundler
pull`` fetches the pinned versions into bundler's cache on the deploy host
(``$BUNDLER_HOME/s3-models/<version>``, verified), where the service resolves them offline;
``build --embed-s3`` carries them in the bundle under ``s3/<version>/`` instead. A bucket without versioning can only be pinned by content: the lock says so,
and a fetch of bytes that changed since is refused, naming the object.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import BadDescriptor, CallSpec, ModelKind, descriptor_patterns, register

if TYPE_CHECKING:
    from ..model.pins import FileEntry, Pin
    from ..stores.s3 import S3Object

_VERSION = re.compile(r"sha256-[0-9a-f]{64}\Z")


class S3Objects(ModelKind):
    name = "s3"
    object_ids = True
    fetched = True
    min_schema = 5  # its files' version ids and ETags
    markers = frozenset({"bundler.S3Model", "bundler.models.S3Model", "bundler.descriptors.S3Model"})
    id_keywords = ("url",)

    def call_spec(self, marker: str) -> CallSpec:
        return CallSpec("S3Model", ("url", "include", "exclude"), 3)

    def ref_fields(self, args: dict[str, Any]) -> dict[str, Any]:
        from ..errors import UsageError
        from ..stores.s3 import parse_url

        url = args.get("url")
        try:
            parse_url(str(url) if isinstance(url, str) else repr(url))
        except UsageError as e:
            raise BadDescriptor(f"S3Model needs a URL like 's3://bucket/prefix/': {e.message}", hint=e.hint) from None
        return {"id": url, **descriptor_patterns(args)}

    def pin(self, ref: Any, *, where: str | None, offline: bool, notes: list[str] | None) -> Pin:
        from ..errors import UsageError
        from ..model.pins import FileEntry, Pin, safe_path
        from ..stores import s3

        if offline:
            raise UsageError(f"`{ref.id}` needs pinning but --offline was given", file=where, line=ref.line,
                             hint="run `bundler lock` once with network access and commit bundler.lock")
        url = s3.parse_url(ref.id)
        client = s3.client()
        keep = None if ref.include is None and ref.exclude is None else lambda paths: _filtered(paths, ref.include, ref.exclude)
        objects = s3.list_objects(client, url, keep=keep)
        if not objects:
            raise UsageError(f"{ref.id}: no objects" + (" match include/exclude" if keep else ""), file=where, line=ref.line,
                             hint="check the bucket and prefix (a prefix ends with '/')")
        if notes is not None and not any(o.version_id for o in objects):
            notes.append(f"{where or '?'}:{ref.line}: s3://{url.bucket} keeps no versions: `{ref.id}` is pinned by content "
                         "(sha256); a fetch after the objects change is refused. Enable bucket versioning to pin versions")
        for o in objects:
            try:
                safe_path(o.path)
            except ValueError as e:
                raise UsageError(f"{ref.id}: {o.key}: {e}", file=where, line=ref.line) from None
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(s3.JOBS) as pool:  # the objects the store keeps no sha256 of: read, several at once
            shas = list(pool.map(lambda o: o.sha256 or s3.read_sha256(client, url.bucket, o), objects))
        files = [FileEntry(o.path, o.size, f"sha256:{sha}", version_id=o.version_id, etag=o.etag) for o, sha in zip(objects, shas)]
        return Pin(source=self.name, id=ref.id, include=_t(ref.include), exclude=_t(ref.exclude), version=_version(files), files=tuple(files))

    def check(self, p: Pin) -> None:
        from ..stores.s3 import parse_url

        parse_url(p.id)  # its UsageError is the reader's ValueError (``checked``)
        if not isinstance(p.version, str) or not _VERSION.match(p.version):
            raise ValueError(f"S3 model {p.id}: version {p.version!r} is not sha256-HEX")
        if any(not f.hash.startswith("sha256:") or f.etag is None for f in p.files):
            raise ValueError(f"S3 model {p.id}: every object needs its sha256 and ETag")
        if p.version != _version(list(p.files)):
            raise ValueError(f"S3 model {p.id}: version {p.version} is not the digest of its objects")

    def bundle_dir(self, p: Pin, schema: int) -> str:
        return f"s3/{p.version}"

    def purl(self, p: Pin) -> Any:
        # purl has no S3 type: a generic package, found at its URL, versioned by its pinned digest
        from packageurl import PackageURL

        name = p.id.rstrip("/").rsplit("/", 1)[-1] or "objects"
        return PackageURL(type="generic", name=name, version=p.version, qualifiers={"download_url": p.id})

    def cache_root(self) -> Path:
        from ..settings import bundler_home

        return bundler_home() / "s3-models"

    def local_copy(self, p: Pin, *, offline: bool = False) -> tuple[Path, str]:
        """The pinned objects in bundler's cache (``host_dir``), fetched when missing (unless
        ``offline``): each pinned version, several at once, resumed, verified."""
        from ..errors import UsageError
        from ..hub.cache import check_file
        from ..stores import s3

        root = self.host_dir(p)
        missing = [f for f in p.files if not check_file(root / f.path, f).ok]
        if missing and offline:
            raise UsageError(f"{p.id}: {missing[0].path} is not in bundler's cache ({root}) and --offline was given",
                             hint="build once with network access: the objects are cached by content")
        if missing:
            url = s3.parse_url(p.id)
            s3.fetch_all(s3.client(), url.bucket, [(_object(url, f), root / f.path, f.hash.partition(":")[2]) for f in missing])
        return root, p.id


def _object(url: Any, f: FileEntry) -> S3Object:
    from ..stores.s3 import S3Object

    key = url.key + f.path if url.is_prefix else url.key
    return S3Object(f.path, key, f.size, str(f.etag), f.version_id, f.hash.partition(":")[2])


def _version(files: list[FileEntry]) -> str:
    """The digest of what is pinned: every object's path, version id, size and sha256."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        h.update(f"{f.path}\0{f.version_id or ''}\0{f.size}\0{f.hash}\n".encode())
    return f"sha256-{h.hexdigest()}"


def _filtered(paths: list[str], include: list[str] | None, exclude: list[str] | None) -> list[str]:
    # huggingface_hub's allow/ignore semantics, the same as HuggingFaceModel's include/exclude
    from huggingface_hub.utils import filter_repo_objects

    return list(filter_repo_objects(paths, allow_patterns=include, ignore_patterns=exclude))


def _t(v: list[str] | None) -> tuple[str, ...] | None:
    return tuple(v) if v is not None else None


KIND = register(S3Objects())
