"""Selective pulls: the models one service needs (with the services it depends on), or one
model, out of a bundle of many; and which services the models on a host can run."""

from __future__ import annotations

from ..errors import UsageError
from ..bundle.manifest import Manifest, ServiceEntry


def _closure(manifest: Manifest, name: str) -> list[ServiceEntry]:
    services = manifest.services
    by_name = {s.name: s for s in services} | {s.cls: s for s in services}
    if name not in by_name:
        raise UsageError(f"--service {name!r}: the bundle has no such service",
                         hint="services: " + (", ".join(s.name for s in services) or "none"))
    seen: list[ServiceEntry] = []
    todo = [by_name[name]]
    while todo:
        s = todo.pop()
        if s in seen:
            continue
        seen.append(s)
        # a dependency is named by its class (or a qualified name ending in it)
        todo += [by_name[d.rpartition(".")[2]] for d in s.depends if d.rpartition(".")[2] in by_name]
    return seen


def select(manifest: Manifest, *, service: str | None = None, model: str | None = None) -> set[tuple] | None:
    """The keys of the pins to pull: None for every pin."""
    if service is None and model is None:
        return None
    keys: set[tuple] = set()
    if service is not None:
        for s in _closure(manifest, service):
            keys |= s.keys
    if model is not None:
        found = {m.key for s in manifest.services for m in s.models if model in (m.attribute, m.id)}
        found |= {p.key for p in manifest.pins if model in (p.id, p.label)}
        if not found:
            raise UsageError(f"--model {model!r}: no model of the bundle has that attribute or id",
                             hint="models: " + ", ".join(sorted({p.label for p in manifest.pins})))
        keys |= found
    return keys


def runnable(manifest: Manifest, keys: set[tuple] | None) -> list[str]:
    """The services whose every model (and every dependency's) is among ``keys``."""
    if keys is None:
        return [s.name for s in manifest.services]
    return [s.name for s in manifest.services if all(t.keys <= keys for t in _closure(manifest, s.name))]
