"""An unpacked bundle that BentoML itself loads as a bento: ``bentoml serve DIR``.

``bundler pull`` writes ``DIR/bento.yaml`` from the bundle's manifest. BentoML, loading a bento
directory, replaces the revision of each ``HuggingFaceModel`` with the commit its ``bento.yaml``
records (``Service.on_load_bento``), hands the recorded ``args`` to ``bentoml.use_arguments``,
imports the service from ``DIR/src`` and reads ``bentoml.models.BentoModel`` models from
``DIR/models`` (its bento-local model store). So the pins hold whatever the Hub's ``main`` is
now, and two bundles pinning different commits of one repository each serve their own.
The user's source is never edited.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .manifest import Manifest
from .pins import Pin, key_of

BENTO_YAML = "bento.yaml"
_EPOCH = "1980-01-01T00:00:00+00:00"
_ENDPOINT = "https://huggingface.co"


def _hf_info(p: Pin) -> dict[str, Any]:
    metadata = {
        # the id as the bundle spells it: the cache bundler pulled into is named after it
        "model_id": p.id,
        "revision": p.commit,
        "endpoint": _ENDPOINT,
        "include": list(p.include) if p.include is not None else None,
        "exclude": list(p.exclude) if p.exclude is not None else None,
    }
    content = hashlib.md5(json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return {
        "tag": f"{p.id.lower().replace('/', '--')}:{content}",
        "module": None,
        "creation_time": _EPOCH,
        "registry": "huggingface",
        "metadata": metadata,
    }


def _store_info(p: Pin) -> dict[str, Any]:
    from .bentoml_store import parse_tag

    return {"tag": f"{parse_tag(p.id)[0]}:{p.version}", "module": "", "creation_time": _EPOCH, "registry": "bentoml"}


def bento_yaml(m: Manifest) -> bytes:
    """BentoML's ``bento.yaml`` for the bundle (only what loading a bento needs)."""
    import yaml

    pins = {p.key: p for p in m.pins}
    entry = m.data.get("entrypoint", "")
    file, _, entry_cls = entry.rpartition(":")
    services = []
    entry_name = entry_cls
    for s in m.data.get("services", []):
        if s["class"] == entry_cls:
            entry_name = s["name"]
        models = []
        # BentoML lists a service's models in ``dir()`` order: by attribute name.
        for ref in sorted(s.get("models", []), key=lambda r: r["attribute"]):
            pin = pins.get(key_of(ref["source"], ref["id"], ref.get("revision"), ref.get("include"), ref.get("exclude")))
            if pin is None or pin.source == "store":
                continue  # bundler's own StoreModel is resolved by bundler, not BentoML
            models.append(_hf_info(pin) if pin.source == "huggingface" else _store_info(pin))
        services.append({"name": s["name"], "service": "", "models": models, "dependencies": [], "config": {}})
    module = file[:-3].replace("/", ".") if file.endswith(".py") else file
    data = {
        "service": f"{module}:{entry_cls}",
        "name": m.name.lower(),
        "version": m.version.lower(),
        "bentoml_version": "1.4.0",
        "creation_time": _EPOCH,
        "labels": {"built-by": "bundler", "bundle-digest": m.digest},
        "models": [],
        "entry_service": entry_name,
        "services": services,
        "envs": [],
        "schema": {},
        "args": m.given_arguments,
        "spec": 2,
    }
    return yaml.safe_dump(data, sort_keys=False).encode()


def write_view(root: Path, m: Manifest) -> None:
    """``bento.yaml`` and the ``latest`` files of the bento-local model store, into ``root``."""
    from .bentoml_store import parse_tag

    (root / BENTO_YAML).write_bytes(bento_yaml(m))
    for p in m.pins:
        if p.source == "bentoml-store":
            name = parse_tag(p.id)[0]
            (root / "models" / name / "latest").write_text(str(p.version))
