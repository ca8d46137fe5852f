"""CNCF ModelPack artifacts (modelpack/model-spec v1), reproducibly: ``bundler push --modelpack``
writes one model of a bundle as one, and ``bundler pull oci://…`` of one lands its files.

An artifact is an OCI image manifest with ``artifactType`` ``application/vnd.cncf.model.manifest.v1+json``,
a config (``application/vnd.cncf.model.config.v1+json``: descriptor, config, modelfs) and a layer
per file. bundler writes each file as a ``.raw`` layer (the file's bytes: its digest is its
sha256, the same blob wherever the file is pushed) typed by its role (weight, weight config, doc,
code), annotated with its path (``org.cncf.model.filepath``, and the title ``oras pull`` names it
by) and its file metadata with fixed owner, mode and time. Unlike the reference tool nothing in it
holds a clock, a user or a host: the same model gives the same digest on any machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from ..errors import ProblemFound, UsageError

ARTIFACT_TYPE = "application/vnd.cncf.model.manifest.v1+json"
CONFIG_TYPE = "application/vnd.cncf.model.config.v1+json"
FILEPATH = "org.cncf.model.filepath"
FILE_METADATA = "org.cncf.model.file.metadata+json"
_PREFIX = "application/vnd.cncf.model."
_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".h5", ".msgpack", ".pkl", ".npz", ".model", ".tflite", ".mlmodel")
_DOCS = (".md", ".txt", ".rst", ".pdf")
_CODE = (".py", ".ipynb", ".sh", ".js")


def layer_type(path: str) -> str:
    """The ``.raw`` media type of a model file, by its role (the spec's weight, weight config,
    doc, code)."""
    name = path.rsplit("/", 1)[-1].lower()
    if name.endswith(_WEIGHTS):
        role = "weight"
    elif name.startswith(("readme", "license", "notice")) or name.endswith(_DOCS):
        role = "doc"
    elif name.endswith(_CODE):
        role = "code"
    else:
        role = "weight.config"  # config.json, tokenizer files, vocabularies
    return f"{_PREFIX}{role}.v1.raw"


def _file_metadata(path: str, size: int, mtime: int) -> str:
    from datetime import datetime, timezone

    stamp = datetime.fromtimestamp(mtime, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"name": path, "mode": 0o644, "uid": 0, "gid": 0, "size": size, "mtime": stamp, "typeflag": ord("0")},
                      sort_keys=True, separators=(",", ":"))


def config_for(pin: Any, diff_ids: list[str], formats: set[str]) -> dict[str, Any]:
    """The artifact's config: what the model is (its id, pinned revision, Hub origin) and its files."""
    descriptor: dict[str, Any] = {"revision": pin.pinned}
    if pin.commit is not None:  # a Hub model: its repository, and where it came from
        descriptor["name"] = pin.id
        descriptor["sourceURL"] = f"{(pin.endpoint or 'https://huggingface.co').rstrip('/')}/{pin.id}"
    else:  # a store's `name:tag`, an `oci://…/repo:tag`, an `s3://…/prefix/`: the name, and the concrete version
        descriptor["name"] = pin.id.rstrip("/").rsplit("/", 1)[-1].partition(":")[0] or pin.id
        descriptor["version"] = pin.pinned
    config = {"format": sorted(formats)[0]} if len(formats) == 1 else {}
    return {"descriptor": descriptor, "config": config, "modelfs": {"type": "layers", "diffIds": diff_ids}}


def _choose(manifest: Any, model: str | None) -> Any:
    from .selection import select

    keys = select(manifest, model=model) if model else None
    pins = [p for p in manifest.pins if keys is None or p.key in keys]
    if len(pins) != 1:
        listed = ", ".join(p.id for p in manifest.pins)
        raise UsageError(f"a ModelPack artifact holds one model; the bundle pins {len(manifest.pins)} ({listed})",
                         hint="name one with --model ATTRIBUTE_OR_ID")
    return pins[0]


def push_modelpack(bundle: str | os.PathLike[str], target: str, *, model: str | None = None, insecure: bool = False,
                   token: str | None = None, tags: Sequence[str] = ()) -> Any:
    """Push one model of ``bundle`` (``model``: its attribute or id; the only one by default) as a
    ModelPack artifact. Its files come from the bundle, checked as it is unpacked, or (a Hub
    model) from this host's cache or the Hub, checked against their pins."""
    from ..bundle.archive import archive_mtime, read_manifest
    from ..hub.cache import hub_cache_dir, snapshot_dir
    from ..oci.registry import MANIFEST_TYPE, TITLE, PushResult, push_target, tag_manifest, upload_missing
    from .pull import PullResult, fetch, require_ok, unpack

    manifest = read_manifest(Path(bundle))
    pin = _choose(manifest, model)
    ref, registry = push_target(target, insecure=insecure, token=token)
    with tempfile.TemporaryDirectory(prefix="bundler-modelpack-") as d:
        dest, cache = Path(d) / "bundle", hub_cache_dir(None)
        unpack(Path(bundle), dest, manifest)
        where = manifest.model_dir(pin)
        if where is None:
            fetched = PullResult(str(bundle), dest, cache, manifest)
            fetch(fetched, [pin], jobs=8, verify_only=False, progress=None)
            require_ok(fetched)
        base = dest / where if where is not None else snapshot_dir(cache, pin.id, pin.commit or "")
        mtime = archive_mtime()
        layers: list[tuple[dict[str, Any], Any]] = []
        formats = set()
        for f in sorted(pin.files, key=lambda f: f.path):
            path = base / f.path
            kind = layer_type(f.path)
            if kind.endswith("weight.v1.raw"):
                formats.add(f.path.rsplit(".", 1)[-1].lower())
            desc = {"mediaType": kind, "digest": _sha256_file(path), "size": f.size,
                    "annotations": {FILEPATH: f.path, TITLE: f.path, FILE_METADATA: _file_metadata(f.path, f.size, mtime)}}
            layers.append((desc, (path.resolve(), 0, f.size)))
        config = _json(config_for(pin, [desc["digest"] for desc, _ in layers], formats))
        config_desc = {"mediaType": CONFIG_TYPE, "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)}
        data = _json({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": ARTIFACT_TYPE, "config": config_desc,
                      "layers": [desc for desc, _ in layers]})
        result = PushResult(ref, "", manifest.digest)
        upload_missing(registry, ref, [*layers, (config_desc, config)], result, present=set())
        tag_manifest(registry, ref, data, tags, result)
    return result


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def is_modelpack(oci_manifest: dict[str, Any]) -> bool:
    return oci_manifest.get("artifactType") == ARTIFACT_TYPE or (oci_manifest.get("config") or {}).get("mediaType") == CONFIG_TYPE


def pull_modelpack(target: str, *, insecure: bool = False, token: str | None = None) -> tuple[str, Path]:
    """Land a ModelPack artifact's files (every layer checked against its digest; archives
    unpacked safely) as a model in bundler's store, tagged ``NAME:VERSION`` from its config
    (the version: the manifest digest's first 16 hex digits when it names none); (tag, folder)."""
    from ..io.hashing import file_hash
    from ..kinds import get
    from ..model.pins import FileEntry
    from ..oci.client import Registry, parse_reference
    from ..stores.local import Store, parse_tag

    ref = parse_reference(target)
    registry = Registry(ref.host, insecure=insecure, token=token)
    oci, digest = registry.get_manifest(ref)
    if not is_modelpack(oci):
        raise UsageError(f"{target}: not a ModelPack artifact")
    descriptor = _descriptor(registry, ref, oci)
    name = str(descriptor.get("name") or ref.repo).rsplit("/", 1)[-1].lower()
    version = str(descriptor.get("version") or digest.partition(":")[2][:16])
    tag = f"{name}:{version}"
    try:
        parse_tag(tag)
    except UsageError as e:
        raise UsageError(f"{target}: its config names the model {name!r} {version!r}, not a store tag ({e.message})") from None
    kind = get(_oci_kind_name())
    pin = kind.pin(_Ref(target), where=None, offline=False, notes=None)  # every layer: checked, unpacked, hashed
    root, _ = kind.local_copy(pin)
    store = Store()
    try:
        return tag, store.get(tag).path
    except UsageError:
        pass
    # the store records blake3 (its own hash): each file, just checked by its sha256, hashed once more
    files = [FileEntry(f.path, f.size, file_hash(root / f.path, "blake3")) for f in pin.files]
    return tag, store.place_verified(tag, root, files).path


def _descriptor(registry: Any, ref: Any, oci: dict[str, Any]) -> dict[str, Any]:
    import io

    from ..oci.client import _download

    desc = oci["config"]
    if int(desc.get("size", 0)) > 1 << 20:
        raise ProblemFound(f"{ref}: the ModelPack config is over 1 MiB")
    buf = io.BytesIO()
    _download(registry, ref.repo, desc["digest"], int(desc["size"]), buf)
    try:
        config = json.loads(buf.getvalue())
        return config["descriptor"] if isinstance(config.get("descriptor"), dict) else {}
    except (ValueError, AttributeError):
        raise ProblemFound(f"{ref}: the ModelPack config is not JSON") from None


class _Ref:
    """What ``OCIModel``'s kind pins: a reference and where it was written (nowhere: the CLI)."""

    def __init__(self, target: str) -> None:
        self.id, self.line = target, None


def _oci_kind_name() -> str:
    from ..kinds import oci

    return oci.KIND.name
