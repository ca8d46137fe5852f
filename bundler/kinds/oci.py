"""OCI model artifacts as a model source: ``bundler.OCIModel("oci://host/repo:tag")``.

A registry holds a model as an OCI manifest whose layers are its files, each named by an
annotation: ``org.opencontainers.image.title`` (``oras push``, KitOps, bundler's own pushes) or
``org.cncf.model.filepath`` (CNCF ModelPack). ``lock`` pins the manifest digest (what a tag points
at is not immutable; a digest is) and each file's size and sha256 (its layer digest); ``build``
fetches the layers once into bundler's own cache (verified as they arrive) and carries them in the
bundle under ``oci/``; the service resolves that folder offline.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import BadDescriptor, CallSpec, ModelKind, register

if TYPE_CHECKING:
    from ..model.pins import Pin

#: where each layer's file path is: ModelPack's annotation first, then the title everyone writes
PATH_ANNOTATIONS = ("org.cncf.model.filepath", "org.opencontainers.image.title")
_VERSION = re.compile(r"sha256-[0-9a-f]{64}\Z")
# A ModelPack layer packed as a tar (a folder) is an archive to unpack, not the file itself.
_ARCHIVE_LAYER = re.compile(r"application/vnd\.cncf\.model\.[a-z.]+\.v1\.tar(\+gzip|\+zstd)?\Z")


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
        from ..errors import UsageError
        from ..model.pins import FileEntry, Pin, safe_path
        from ..oci.client import Registry, parse_reference

        if offline:
            raise UsageError(f"`{ref.id}` needs pinning but --offline was given", file=where, line=ref.line,
                             hint="run `bundler lock` once with network access and commit bundler.lock")
        r = parse_reference(ref.id)
        manifest, digest = Registry(r.host).get_manifest(r)
        files = []
        for i, layer in enumerate(manifest["layers"]):
            annotations = layer.get("annotations") if isinstance(layer.get("annotations"), dict) else {}
            path = next((annotations[k] for k in PATH_ANNOTATIONS if isinstance(annotations.get(k), str)), None)
            if path is None:
                raise UsageError(f"{ref.id}: layer {i} ({layer['digest']}) names no file path", file=where, line=ref.line,
                                 hint=f"annotate each layer with {PATH_ANNOTATIONS[1]} (oras push does) or {PATH_ANNOTATIONS[0]}")
            if _ARCHIVE_LAYER.match(str(layer.get("mediaType"))):
                raise UsageError(f"{ref.id}: {path} is a packed folder ({layer['mediaType']}); only file layers are supported so far",
                                 file=where, line=ref.line, hint="push the folder's files as layers of their own (ModelPack `.raw` media types)")
            try:
                files.append(FileEntry(safe_path(path), int(layer["size"]), layer["digest"]))
            except ValueError as e:
                raise UsageError(f"{ref.id}: layer {i}: {e}", file=where, line=ref.line) from None
        if len({f.path for f in files}) != len(files):
            raise UsageError(f"{ref.id}: two layers name the same file", file=where, line=ref.line)
        return Pin(source=self.name, id=ref.id, version=digest.replace(":", "-"), files=tuple(sorted(files, key=lambda f: f.path)))

    def check(self, p: Pin) -> None:
        from ..errors import UsageError
        from ..oci.client import parse_reference

        try:
            parse_reference(p.id)
        except UsageError as e:
            raise ValueError(e.message) from None
        if not isinstance(p.version, str) or not _VERSION.match(p.version):
            raise ValueError(f"OCI model {p.id}: version {p.version!r} is not a manifest digest (sha256-HEX)")
        if any(not f.hash.startswith("sha256:") for f in p.files):
            raise ValueError(f"OCI model {p.id}: every file's hash is its layer's sha256")

    def bundle_dir(self, p: Pin, schema: int) -> str:
        return f"oci/{p.version}"

    def local_copy(self, p: Pin, *, offline: bool = False) -> tuple[Path, str]:
        """The pinned layers in bundler's cache (``$BUNDLER_HOME/oci-models/<digest>``), fetched
        by digest when missing (unless ``offline``) and verified as they arrive."""
        from ..hub.cache import check_file
        from ..io.scratch import scratch_file
        from ..oci.client import Registry, _download, parse_reference
        from ..settings import bundler_home

        root = bundler_home() / "oci-models" / str(p.version)
        r = parse_reference(p.id)
        registry = None
        for f in p.files:
            target = root / f.path
            if check_file(target, f).ok:
                continue
            if offline:
                from ..errors import UsageError

                raise UsageError(f"{p.id}: {f.path} is not in bundler's cache ({root}) and --offline was given",
                                 hint="build once with network access: the layers are cached by digest")
            registry = registry or Registry(r.host)
            target.parent.mkdir(parents=True, exist_ok=True)
            with scratch_file(target.parent, f".{target.name}.", ".part") as (out, tmp):
                _download(registry, r.repo, f.hash, f.size, out)
                out.flush()
                tmp.replace(target)
        return root, p.id


KIND = register(OCIArtifact())
