"""``bundler outdated``: which pins of a lock point somewhere else now (a branch moved on the Hub,
a store's ``latest`` changed), and which files that changes. Nothing is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .. import kinds
from ..errors import UsageError
from ..model.pins import COMMIT, Pin



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
    packages: list[str] | None = None  # "~ name old -> new", "+ name v", "- name v"; None: not asked

    @property
    def moved(self) -> list[Moved]:
        return [m for m in self.models if m.moved]

    @property
    def any_moved(self) -> bool:
        return bool(self.moved or self.packages)

    def to_json(self) -> dict[str, Any]:
        return {"lock": str(self.lock), "moved": len(self.moved), "models": [m.to_json() for m in self.models],
                "packages": self.packages}


def outdated(service: str | Path, env: Any = None) -> OutdatedResult:
    """Ask where each pin of ``service``'s ``bundler.lock`` would point now, and, with ``env``
    (EnvOptions: where packages come from), which locked packages a fresh resolution would move."""
    from ..introspect import split_target
    from .lock import lock_path_for, pin_ref, read_all

    path, _ = split_target(str(service))
    lock_file = lock_path_for(path)
    found = read_all(lock_file)
    if found is None:
        raise UsageError(f"{lock_file}: no lock file", hint="run `bundler lock` first")
    out = OutdatedResult(lock_file)
    for pin in found[0]:
        if kinds.of(pin).hub and pin.revision and COMMIT.match(pin.revision):
            out.models.append(Moved(pin, None))
            continue
        ref = SimpleNamespace(kind=pin.source, id=pin.id, revision=pin.revision, include=pin.include, exclude=pin.exclude, line=None,
                              file_hashes=False)  # only the commit is compared
        current = pin_ref(ref, str(lock_file))
        out.models.append(_compare(pin, current))
    if env is not None and found[2] is not None:
        out.packages = _packages_moved(found[2], lock_file, env)
    return out


def _packages_moved(pin: Any, lock_file: Path, env: Any) -> list[str]:
    """What ``uv`` would resolve the locked requirements to now, beside ``pylock.toml``."""
    from ..env.lock import PYLOCK_NAME, _resolve, package_changes, read_pylock
    from ..io.safe_read import read_regular

    current = read_pylock(read_regular(lock_file.parent / PYLOCK_NAME, 64 << 20), PYLOCK_NAME)
    fresh = read_pylock(_resolve(pin.requirements, pin.python, pin.platform, env, True, None), f"{PYLOCK_NAME} as uv resolves it now")
    return package_changes(current, fresh)


def _compare(old: Pin, new: Pin) -> Moved:
    a = {f.path: (f.size, f.hash) for f in old.files}
    b = {f.path: (f.size, f.hash) for f in new.files}
    return Moved(old, new, added=sorted(set(b) - set(a)), removed=sorted(set(a) - set(b)),
                 changed=sorted(p for p in set(a) & set(b) if a[p] != b[p]))
