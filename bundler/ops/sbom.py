"""``bundler sbom``: a CycloneDX 1.6 SBOM of a bundle, byte-stable.

One ``machine-learning-model`` component per model (``pkg:huggingface/org/name@commit`` for Hub
models, name and version for store models), each of its files with its hash; every locked Python
package (``pkg:pypi/name@version``, with the sha256 of its locked files when the bundle's
``pylock.toml`` is at hand); every source file with its BLAKE3. The same bundle gives the same
bytes: the serial number is derived from the bundle digest, and the timestamp is
``SOURCE_DATE_EPOCH`` or the archive's fixed date, never the clock. Built with
cyclonedx-python-lib (the ``sbom`` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..bundle.manifest import Manifest
from ..model.layout import MANIFEST_NAME, SOURCE_PREFIX
from ..model.pins import FileEntry, Pin


def load(target: str) -> tuple[Manifest, bytes | None]:
    """The manifest of a bundle archive, a pulled directory or an ``oci://`` reference, and its
    ``pylock.toml`` when it can be read cheaply (checked against the manifest before use)."""
    from ..io.hashing import blake3_bytes

    if target.startswith("oci://"):
        from ..oci.registry import read_manifest as read_pushed

        return read_pushed(target), None
    path = Path(target)
    if path.is_dir():
        from ..bundle.manifest import loads
        from ..io.safe_read import read_regular

        try:
            manifest = loads(read_regular(path / MANIFEST_NAME, 64 << 20), str(path / MANIFEST_NAME))
        except FileNotFoundError:
            raise UsageError(f"{path}: no {MANIFEST_NAME} here", hint="pass a bundle, a pulled directory or an oci:// reference") from None
        lock = _lock_path(manifest)
        data = (path / SOURCE_PREFIX / lock).read_bytes() if lock and (path / SOURCE_PREFIX / lock).is_file() else None
    else:
        from ..bundle.archive import read_manifest, read_member

        manifest = read_manifest(path)
        lock = _lock_path(manifest)
        data = read_member(path, SOURCE_PREFIX + lock, 32 << 20) if lock else None
    if data is not None and lock:
        expected = next((f.hash for f in manifest.sources if f.path == lock), None)
        if expected != blake3_bytes(data):
            data = None  # not the locked file: left out rather than trusted
    return manifest, data


def _lock_path(m: Manifest) -> str | None:
    env = m.environment
    return env.lock if env else None


def sbom(target: str) -> str:
    """The SBOM's JSON text."""
    import importlib.util

    if importlib.util.find_spec("cyclonedx") is None:
        raise UsageError("`bundler sbom` needs cyclonedx-python-lib", hint="pip install 'bundler[sbom]'")
    manifest, pylock = load(target)
    return render(manifest, pylock)


def render(m: Manifest, pylock: bytes | None) -> str:
    import datetime
    import uuid

    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    from ..bundle.archive import archive_mtime

    app = Component(name=m.name, version=m.version, type=ComponentType.APPLICATION, bom_ref=f"bundle:{m.name}@{m.version}",
                    hashes=_hashes(m.digest), properties=[Property(name="bundler:digest", value=m.digest)])
    metadata = BomMetaData(component=app)
    metadata.timestamp = datetime.datetime.fromtimestamp(archive_mtime(), tz=datetime.timezone.utc)
    models = [_model(p) for p in m.pins]
    packages = _packages(m, pylock)
    sources = [Component(name=f.path, type=ComponentType.FILE, bom_ref=f"src:{f.path}", hashes=_hashes(f.hash)) for f in m.sources]
    bom = Bom(components=[*models, *packages, *sources], metadata=metadata,
              serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"bundler:{m.digest}"))
    bom.register_dependency(app, [*models, *packages])
    return JsonV1Dot6(bom).output_as_string(indent=1) + "\n"


def _hashes(value: str) -> list[Any]:
    """CycloneDX hashes for a bundler ``algo:hex`` (git blob ids are not file hashes: none)."""
    from cyclonedx.model import HashAlgorithm, HashType

    algo, _, hexdigest = value.partition(":")
    alg = {"blake3": HashAlgorithm.BLAKE3, "sha256": HashAlgorithm.SHA_256}.get(algo)
    return [HashType(alg=alg, content=hexdigest)] if alg else []


def _model(p: Pin) -> Any:
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType

    from .. import kinds

    version = p.pinned
    purl = kinds.of(p).purl(p)
    props = [Property(name="bundler:source", value=p.source)]
    if p.revision:
        props.append(Property(name="bundler:revision", value=p.revision))
    if p.required_by:
        props.append(Property(name="bundler:required_by", value=p.required_by))
    return Component(name=p.id, version=version, type=ComponentType.MACHINE_LEARNING_MODEL, purl=purl,
                     bom_ref=f"model:{p.source}:{p.id}@{version}", properties=props,
                     components=[_file(p, f) for f in p.files])


def _file(p: Pin, f: FileEntry) -> Any:
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType

    props = [Property(name="bundler:size", value=str(f.size))]
    if f.hash.startswith("git-sha1:"):
        props.append(Property(name="bundler:git-blob-id", value=f.hash.partition(":")[2]))
    return Component(name=f.path, type=ComponentType.FILE, bom_ref=f"file:{p.source}:{p.id}@{p.commit or p.version}/{f.path}",
                     hashes=_hashes(f.hash) + (_hashes(f"sha256:{f.sha256}") if f.sha256 else []), properties=props)


def _packages(m: Manifest, pylock: bytes | None) -> list[Any]:
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    env = m.environment
    if not env:
        return []
    files: dict[str, list[str]] = {}
    if pylock is not None:
        from ..env.lock import read_pylock

        for pkg in read_pylock(pylock, env.lock):
            files[pkg.name] = [f.sha256 for f in pkg.files]
    out = []
    for name, version in env.packages.items():
        hashes = _hashes("sha256:" + files[name][0]) if len(files.get(name, [])) == 1 else []
        out.append(Component(name=name, version=version, type=ComponentType.LIBRARY, purl=PackageURL(type="pypi", name=name, version=version),
                             bom_ref=f"pypi:{name}@{version}", hashes=hashes))
    return out

