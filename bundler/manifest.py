"""``bundle.yaml``: the bundle's manifest, its YAML form and its canonical digest.

The digest is the blake3 of the canonical bytes of every manifest field except ``version``
(sorted-key compact JSON): it names the content, and the version, a label, defaults to its prefix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .errors import UsageError
from .pins import FileEntry, Pin, check_hash, check_pin, safe_path

SCHEMA = 1
MANIFEST_NAME = "bundle.yaml"
SOURCE_PREFIX = "src/"
MODEL_PREFIX = "models/"
HUB_PREFIX = "hub/"
VERSION_LENGTH = 12


def pin_to_dict(p: Pin, *, embedded: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {"source": p.source, "id": p.id}
    for key in ("revision", "include", "exclude", "commit", "version"):
        value = getattr(p, key)
        if value is not None:
            d[key] = list(value) if isinstance(value, tuple) else value
    if p.source == "store":
        d["path"] = store_model_dir(p)
    if embedded:
        d["embedded"] = True
    d["files"] = [f.to_json() for f in p.files]
    return d


def pin_from_dict(d: dict[str, Any]) -> Pin:
    t = lambda v: tuple(v) if v is not None else None  # noqa: E731
    return Pin(
        source=d["source"],
        id=d["id"],
        revision=d.get("revision"),
        include=t(d.get("include")),
        exclude=t(d.get("exclude")),
        commit=d.get("commit"),
        version=d.get("version"),
        files=tuple(FileEntry(f["path"], int(f["size"]), f["hash"]) for f in d["files"]),
    )


def store_model_dir(p: Pin) -> str:
    """Where a store model's files live inside the bundle."""
    name = p.id.partition(":")[0]
    return f"{MODEL_PREFIX}{name}/{p.version}"


def hub_model_dir(p: Pin) -> str:
    """Where a Hub model's files live inside a bundle built with ``--embed-hub``."""
    return f"{HUB_PREFIX}{p.id}/{p.commit}"


@dataclass(frozen=True)
class Manifest:
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def version(self) -> str:
        return self.data["version"]

    @cached_property
    def digest(self) -> str:
        return digest_of(self.data)

    @property
    def pins(self) -> list[Pin]:
        return [pin_from_dict(m) for m in self.data.get("models", [])]

    @property
    def embedded_hub(self) -> list[Pin]:
        """The Hub models whose files travel inside the bundle (built with ``--embed-hub``)."""
        return [pin_from_dict(m) for m in self.data.get("models", []) if m.get("embedded") and m["source"] == "huggingface"]

    @property
    def sources(self) -> list[FileEntry]:
        return [FileEntry(f["path"], int(f["size"]), f["hash"]) for f in self.data.get("sources", [])]

    def members(self) -> dict[str, FileEntry]:
        """Every archive member but the manifest, with its expected size and hash."""
        out = {SOURCE_PREFIX + f.path: f for f in self.sources}
        for p in self.pins:
            if p.source == "store":
                base = store_model_dir(p)
                for f in p.files:
                    out[f"{base}/{f.path}"] = f
        for p in self.embedded_hub:
            base = hub_model_dir(p)
            for f in p.files:
                out[f"{base}/{f.path}"] = f
        return out

    def to_yaml(self) -> bytes:
        import yaml

        return yaml.safe_dump(
            self.data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
        ).encode("utf-8")

    def to_json(self) -> dict[str, Any]:
        return {**self.data, "digest": self.digest}


def digest_of(data: dict[str, Any]) -> str:
    from .hashing import blake3_bytes

    content = {k: v for k, v in data.items() if k != "version"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return blake3_bytes(canonical.encode("utf-8"))


def loads(raw: bytes, shown: str) -> Manifest:
    import yaml

    try:
        # libyaml's loader when present (10x faster on big manifests); writing stays pure-Python
        # so that the bytes of bundle.yaml never depend on how PyYAML was installed.
        data = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except yaml.YAMLError as e:
        raise UsageError(f"{shown}: the manifest is not valid YAML: {e}") from None
    if not isinstance(data, dict) or "schema" not in data:
        raise UsageError(f"{shown}: bundle.yaml is not a bundler manifest")
    if not isinstance(data["schema"], int) or data["schema"] > SCHEMA:
        raise UsageError(
            f"{shown}: manifest schema {data['schema']!r} is newer than this bundler understands ({SCHEMA})",
            hint="upgrade bundler",
        )
    for key in ("name", "version", "models", "sources"):
        if key not in data:
            raise UsageError(f"{shown}: the manifest has no `{key}`")
    try:
        m = Manifest(data)
        _validate(m)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UsageError(f"{shown}: the manifest is malformed or unsafe ({type(e).__name__}: {e})") from None
    return m


def _validate(m: Manifest) -> None:
    """Everything that later becomes a path or a file name must be safe: a bundle is untrusted."""
    for f in m.sources:
        safe_path(f.path)
        if not f.hash.startswith("blake3:"):
            raise ValueError(f"bad hash {f.hash!r} for {f.path!r}")
        check_hash(f.hash)
    for p in m.pins:
        check_pin(p)
