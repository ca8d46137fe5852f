"""``bundler outdated``: which pins of a lock point somewhere else now (a branch moved on the Hub,
a store's ``latest`` changed), and which files that changes. Nothing is written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .errors import UsageError
from .pins import Pin

_COMMIT = re.compile(r"[0-9a-f]{40}\Z")


@dataclass
class Moved:
    pin: Pin
    current: Pin | None  # None: the revision names a commit, which cannot move
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    @property
    def moved(self) -> bool:
        return self.current is not None and (self.current.commit, self.current.version) != (self.pin.commit, self.pin.version)

    def to_json(self) -> dict[str, Any]:
        now = self.current or self.pin
        return {
            "source": self.pin.source, "id": self.pin.id, "revision": self.pin.revision,
            "pinned": self.pin.commit or self.pin.version, "current": now.commit or now.version,
            "moved": self.moved,
            "files": {"added": self.added, "removed": self.removed, "changed": self.changed},
        }


@dataclass
class OutdatedResult:
    lock: Path
    models: list[Moved] = field(default_factory=list)

    @property
    def moved(self) -> list[Moved]:
        return [m for m in self.models if m.moved]

    def to_json(self) -> dict[str, Any]:
        return {"lock": str(self.lock), "moved": len(self.moved), "models": [m.to_json() for m in self.models]}


def outdated(service: str | Path) -> OutdatedResult:
    """Ask where each pin of ``service``'s ``bundler.lock`` would point now."""
    from .introspect import split_target
    from .lock import lock_path_for, pin_ref, read_all

    path, _ = split_target(str(service))
    lock_file = lock_path_for(path)
    found = read_all(lock_file)
    if found is None:
        raise UsageError(f"{lock_file}: no lock file", hint="run `bundler lock` first")
    out = OutdatedResult(lock_file)
    for pin in found[0]:
        if pin.source == "huggingface" and pin.revision and _COMMIT.match(pin.revision):
            out.models.append(Moved(pin, None))
            continue
        ref = SimpleNamespace(kind=pin.source, id=pin.id, revision=pin.revision, include=pin.include, exclude=pin.exclude, line=None)
        current = pin_ref(ref, str(lock_file))
        out.models.append(_compare(pin, current))
    return out


def _compare(old: Pin, new: Pin) -> Moved:
    a = {f.path: (f.size, f.hash) for f in old.files}
    b = {f.path: (f.size, f.hash) for f in new.files}
    return Moved(old, new, added=sorted(set(b) - set(a)), removed=sorted(set(a) - set(b)),
                 changed=sorted(p for p in set(a) & set(b) if a[p] != b[p]))
