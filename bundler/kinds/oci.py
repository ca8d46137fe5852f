"""OCI model artifacts as a model source: ``bundler.OCIModel("oci://host/repo:tag")``.

A registry holds a model as an OCI manifest whose layers are either its files, each named by an
annotation (``org.opencontainers.image.title``: ``oras push``; ``org.cncf.model.filepath``: CNCF
ModelPack's ``.raw`` layers), or tar archives of files and folders (KitOps ModelKits, ModelPack's
``.tar`` layers, plain image layers), whose member names are the paths. ``lock`` pins the manifest
digest (what a tag points at is not immutable; a digest is) and each file's size and sha256 (a
file layer's digest; an archive's files are hashed as they are unpacked, so lock fetches those
layers once); ``build`` fetches what bundler's cache lacks (verified as it arrives) and carries the
files in the bundle under ``oci/``; the service resolves that folder offline.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .base import BadDescriptor, CallSpec, ModelKind, register

if TYPE_CHECKING:
    import tarfile

    from ..model.pins import FileEntry, Pin
    from ..oci.client import Reference, Registry

#: where each layer's file path is: ModelPack's annotation first, then the title everyone writes
PATH_ANNOTATIONS = ("org.cncf.model.filepath", "org.opencontainers.image.title")
_VERSION = re.compile(r"sha256-[0-9a-f]{64}\Z")
# A layer packed as a tar (ModelPack's `.tar` types, KitOps' `modelkit.*.v1.tar`, image layers)
# is an archive to unpack, not the file itself.
_ARCHIVE_LAYER = re.compile(r"application/[a-z0-9.+-]*[./]tar(\+gzip|\+zstd)?\Z")
_CHUNK = 1 << 20


class OCIArtifact(ModelKind):
    name = "oci"
    markers = frozenset({"bundler.OCIModel", "bundler.models.OCIModel", "bundler.descriptors.OCIModel"})
    id_keywords = ("ref",)

    def call_spec(self, marker: str) -> CallSpec:
        return CallSpec("OCIModel", ("ref",))

    def ref_fields(self, args: dict[str, Any]) -> dict[str, Any]:
        from ..errors import UsageError
        from ..oci.client import parse_reference

        ref = args.get("ref")
        if not isinstance(ref, str):
            raise BadDescriptor(f"OCIModel needs a reference string like 'oci://host/repo:tag', not {ref!r}")
        try:
            parse_reference(ref)
        except UsageError as e:
            raise BadDescriptor(e.message, hint=e.hint) from None
        return {"id": ref}

    def pin(self, ref: Any, *, where: str | None, offline: bool, notes: list[str] | None) -> Pin:
        from ..errors import BundlerError, UsageError
        from ..model.pins import Pin
        from ..oci.client import Registry, parse_reference

        if offline:
            raise UsageError(f"`{ref.id}` needs pinning but --offline was given", file=where, line=ref.line,
                             hint="run `bundler lock` once with network access and commit bundler.lock")
        r = parse_reference(ref.id)
        registry = Registry(r.host)
        manifest, digest = registry.get_manifest(r)
        version = digest.replace(":", "-")
        try:
            files = _layer_files(registry, r, manifest["layers"], self.cache_root() / version)
        except BundlerError as e:
            raise UsageError(f"{ref.id}: {e.message}", file=where, line=ref.line, hint=e.hint) from None
        return Pin(source=self.name, id=ref.id, version=version, files=tuple(sorted(files, key=lambda f: f.path)))

    def check(self, p: Pin) -> None:
        from ..oci.client import parse_reference

        parse_reference(p.id)  # its UsageError is the reader's ValueError (``checked``)
        if not isinstance(p.version, str) or not _VERSION.match(p.version):
            raise ValueError(f"OCI model {p.id}: version {p.version!r} is not a manifest digest (sha256-HEX)")
        if any(not f.hash.startswith("sha256:") for f in p.files):
            raise ValueError(f"OCI model {p.id}: every file's hash is its sha256")

    def bundle_dir(self, p: Pin, schema: int) -> str:
        return f"oci/{p.version}"

    def purl(self, p: Pin) -> Any:
        from packageurl import PackageURL

        from ..oci.client import parse_reference

        r = parse_reference(p.id)
        return PackageURL(type="oci", name=r.repo.rsplit("/", 1)[-1].lower(), version=str(p.version).replace("-", ":", 1),
                          qualifiers={"repository_url": f"{r.host}/{r.repo}"})

    def cache_root(self) -> Path:
        from ..settings import bundler_home

        return bundler_home() / "oci-models"

    def local_copy(self, p: Pin, *, offline: bool = False) -> tuple[Path, str]:
        """The pinned files in bundler's cache (``$BUNDLER_HOME/oci-models/<digest>``), fetched
        from the pinned manifest's layers when missing (unless ``offline``), verified."""
        from ..errors import ProblemFound, UsageError
        from ..hub.cache import check_file
        from ..oci.client import Reference, Registry, parse_reference

        root = self.host_dir(p)
        missing = [f for f in p.files if not check_file(root / f.path, f).ok]
        if not missing:
            return root, p.id
        if offline:
            raise UsageError(f"{p.id}: {missing[0].path} is not in bundler's cache ({root}) and --offline was given",
                             hint="build once with network access: the layers are cached by digest")
        r = parse_reference(p.id)
        registry = Registry(r.host)
        pinned = Reference(r.host, r.repo, None, str(p.version).replace("-", ":", 1))
        manifest, _ = registry.get_manifest(pinned)  # by digest: the registry's answer is checked against it
        got = {f.path: f for f in _layer_files(registry, pinned, manifest["layers"], root, only={f.path for f in missing})}
        for f in missing:
            if got.get(f.path) != f and not check_file(root / f.path, f).ok:
                raise ProblemFound(f"{p.id}: {f.path} differs from its pin in the pinned manifest's layers",
                                   hint="the registry serves other bytes under the pinned digest; report it to its operator")
        return root, p.id


def _layer_files(registry: Registry, ref: Reference, layers: list[dict[str, Any]], root: Path,
                 only: set[str] | None = None) -> list[FileEntry]:
    """Every file the layers hold, as pinned; each written under ``root`` as it is verified (with
    ``only``: just the layers that hold those paths, or may: every archive)."""
    from ..errors import UsageError
    from ..model.pins import FileEntry, safe_path

    files: list[FileEntry] = []
    raw_paths = {_path_of(layer) for layer in layers if not _ARCHIVE_LAYER.match(str(layer.get("mediaType")))}
    unpack = only is None or bool(only - raw_paths)  # only what the cache lacks: an archive may hold it
    for i, layer in enumerate(layers):
        if _ARCHIVE_LAYER.match(str(layer.get("mediaType"))) is not None:
            if unpack:
                files += _unpacked(registry, ref.repo, layer, root)
            continue
        path = _path_of(layer)
        if path is None:
            raise UsageError(f"layer {i} ({layer['digest']}) names no file path",
                             hint=f"annotate each layer with {PATH_ANNOTATIONS[1]} (oras push does) or {PATH_ANNOTATIONS[0]}")
        try:
            entry = FileEntry(safe_path(path), int(layer["size"]), layer["digest"])
        except ValueError as e:
            raise UsageError(f"layer {i}: {e}") from None
        files.append(entry)
        if only is not None and entry.path in only:
            _fetch_file(registry, ref.repo, entry, root / entry.path)
    if len({f.path for f in files}) != len(files):
        raise UsageError("two layers name the same file")
    return files


def _path_of(layer: dict[str, Any]) -> str | None:
    annotations = layer.get("annotations")
    if not isinstance(annotations, dict):
        return None
    return next((annotations[k] for k in PATH_ANNOTATIONS if isinstance(annotations.get(k), str)), None)


def _fetch_file(registry: Registry, repo: str, entry: FileEntry, target: Path) -> None:
    from ..io.scratch import scratch_file
    from ..oci.client import _download

    target.parent.mkdir(parents=True, exist_ok=True)
    with scratch_file(target.parent, f".{target.name}.", ".part") as (out, tmp):
        _download(registry, repo, entry.hash, entry.size, out)
        out.flush()
        tmp.replace(target)


def _unpacked(registry: Registry, repo: str, layer: dict[str, Any], root: Path) -> list[FileEntry]:
    """Fetch an archive layer (verified against its digest), then unpack its regular files under
    ``root``, hashing each: links, devices and paths that leave ``root`` are refused. Plain, gzip
    and zstd tars (by their bytes; zstd through the zstd extra) are read as one stream."""
    import tarfile

    from ..io.compression import open_decompressed
    from ..io.scratch import scratch_file
    from ..oci.client import _download

    root.mkdir(parents=True, exist_ok=True)
    with scratch_file(root, ".layer.", ".tar") as (out, tmp):
        _download(registry, repo, str(layer["digest"]), int(layer["size"]), out)
        out.flush()
        try:
            with open_decompressed(tmp) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                return [_unpack_member(tar, m, root, layer["digest"]) for m in tar if not m.isdir()]
        except (tarfile.TarError, EOFError, OSError) as e:
            from ..errors import UsageError

            raise UsageError(f"layer {layer['digest']} is not a readable tar ({e})") from None


def _unpack_member(tar: tarfile.TarFile, m: tarfile.TarInfo, root: Path, digest: str) -> FileEntry:
    import hashlib

    from ..errors import UsageError
    from ..io.scratch import scratch_file
    from ..model.pins import FileEntry, safe_path

    name = m.name[2:] if m.name.startswith("./") else m.name
    if not m.isreg():
        what = "link" if m.issym() or m.islnk() else "special file"
        raise UsageError(f"layer {digest}: {name!r} is a {what}; a model layer holds regular files and folders only")
    try:
        path = safe_path(name.rstrip("/"))
    except ValueError as e:
        raise UsageError(f"layer {digest}: {e}") from None
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    src: IO[bytes] | None = tar.extractfile(m)
    assert src is not None  # a regular member always has a file
    h = hashlib.sha256()
    with scratch_file(target.parent, f".{target.name}.", ".part") as (out, tmp):
        while chunk := src.read(_CHUNK):
            h.update(chunk)
            out.write(chunk)
        out.flush()
        tmp.replace(target)
    return FileEntry(path, m.size, f"sha256:{h.hexdigest()}")


KIND = register(OCIArtifact())
