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

from pathlib import Path

from .. import kinds
from ..kinds import BENTO_EPOCH
from ..bundle.manifest import Manifest

BENTO_YAML = "bento.yaml"


def bento_yaml(m: Manifest) -> bytes:
    """BentoML's ``bento.yaml`` for the bundle (only what loading a bento needs)."""
    import yaml

    pins = {p.key: p for p in m.pins}
    file, _, entry_cls = (m.entrypoint or "").rpartition(":")
    services = []
    entry_name = entry_cls
    for s in m.services:
        if s.cls == entry_cls:
            entry_name = s.name
        models = []
        # BentoML lists a service's models in ``dir()`` order: by attribute name.
        for ref in sorted(s.models, key=lambda r: r.attribute):
            pin = pins.get(ref.key)
            info = kinds.of(pin).bento_model(pin) if pin is not None else None
            if info is not None:  # None: resolved by bundler (its own StoreModel), not BentoML
                models.append(info)
        services.append({"name": s.name, "service": "", "models": models, "dependencies": [], "config": {}})
    module = file[:-3].replace("/", ".") if file.endswith(".py") else file
    data = {
        "service": f"{module}:{entry_cls}",
        "name": m.name.lower(),
        "version": m.version.lower(),
        "bentoml_version": "1.4.0",
        "creation_time": BENTO_EPOCH,
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
    (root / BENTO_YAML).write_bytes(bento_yaml(m))
    for p in m.pins:
        if (latest := kinds.of(p).bento_latest(p)) is not None:
            name, version = latest
            (root / "models" / name / "latest").write_text(version)
