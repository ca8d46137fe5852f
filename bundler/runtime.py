"""Serving from an unpacked bundle: descriptors resolve offline, from the pins, to verified files.

A service runs from a bundle when ``BUNDLER_BUNDLE`` names the bundle directory, or when a
``bundle.yaml`` lies beside or above the module that declares the descriptor.
"""

from __future__ import annotations

import json
import os
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import NotInBundleError, ProblemFound, UsageError
from .bundle.manifest import Manifest
from .model.layout import MANIFEST_NAME
from .model.pins import Pin

_contexts: dict[Path, "BundleContext"] = {}


class BundleContext:
    def __init__(self, root: Path) -> None:
        from .bundle.manifest import loads

        self.root = root
        self.manifest: Manifest = loads((root / MANIFEST_NAME).read_bytes(), str(root / MANIFEST_NAME))
        self._pins = {p.key: p for p in self.manifest.pins}

    @cached_property
    def pulled(self) -> dict[str, Any]:
        """What `bundler pull` recorded here: the cache it used and, for a selective pull, the
        pins it fetched and the services they can run."""
        try:
            record = json.loads((self.root / ".bundler-pull.json").read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    @cached_property
    def cache(self) -> Path:
        """Where `bundler pull` put this bundle's Hub files (it records it), else the default cache."""
        from .hub.cache import hub_cache_dir

        where = self.pulled.get("cache_dir")
        return Path(where) if isinstance(where, str) else hub_cache_dir()

    @property
    def pins_here(self) -> list[Pin]:
        """The pins a pull brought to this host: all, or a selective pull's."""
        from .model.pins import key_of

        chosen = self.pulled.get("pins")
        if not isinstance(chosen, list):
            return self.manifest.pins
        try:
            keys = {key_of(*entry) for entry in chosen}
        except TypeError:
            return self.manifest.pins
        return [p for p in self.manifest.pins if p.key in keys]

    def require_runnable(self, name: str) -> None:
        """A selective pull (``--service``/``--model``) may not have brought this service's models."""
        services = self.pulled.get("services")
        if isinstance(services, list) and name not in services:
            raise UsageError(
                f"{self.root}: service `{name}` can't run here: this host pulled only the models of "
                + (", ".join(str(s) for s in services) or "no complete service"),
                hint=f"pull the bundle again without --service/--model (or with --service {name})",
            )

    def pin_for(self, key: tuple, label: str) -> Pin:
        pin = self._pins.get(key)
        if pin is None:
            raise NotInBundleError(
                f"{label} is not pinned in the bundle at {self.root}",
                hint="the service changed after the bundle was built: rebuild it with `bundler build`",
            )
        return pin

    def resolve_huggingface(self, key: tuple, label: str) -> str:
        from .hub.cache import check_file, snapshot_dir

        pin = self.pin_for(key, label)
        snap = snapshot_dir(self.cache, pin.id, pin.commit or "")
        for entry in pin.files:
            check = check_file(snap / entry.path, entry)
            if check.status == "missing":
                raise NotInBundleError(
                    f"model {pin.id} at commit {pin.commit}: {entry.path} is not in the Hugging Face cache {self.cache}",
                    hint=f"run `bundler pull` for this bundle on this host (bundle at {self.root})",
                )
            if not check.ok:
                raise NotInBundleError(
                    f"model {pin.id} at commit {pin.commit}: {entry.path} was modified (expected {entry.expected(check.actual)}, found {check.actual})",
                    hint="run `bundler pull` again: it replaces modified files",
                )
        return str(snap)

    def model_dir(self, pin: Pin) -> Path:
        """Where a pinned model's files are on this host: the Hub cache's snapshot, or the
        bundle's own store directories."""
        from .hub.cache import snapshot_dir

        where = self.manifest.model_dir(pin)
        if where is not None:
            return self.root / where
        from .kinds import of as kind_of

        if (k := kind_of(pin)).fetched:  # in bundler's cache, where `bundler pull` fetched them
            return k.host_dir(pin)
        return snapshot_dir(self.cache, pin.id, pin.commit or "")  # a Hub kind's: the Hugging Face cache

    def check_models(self, *, full: bool = False) -> dict[str, Path]:
        """Every pinned file of every model (Hub and stores, whoever's descriptor declares it)
        present and unchanged, before anything imports the service: {model label: directory}.

        By default a file is trusted while the stamp its last full hash left (size, mtime, ctime,
        inode) still holds: any write changes ctime, which no one can set back. ``full`` re-hashes
        every byte. A missing or changed file is exit 1 naming the model and the file."""
        from concurrent.futures import ThreadPoolExecutor

        from .hub.cache import check_file

        todo = [(pin, entry, self.model_dir(pin)) for pin in self.pins_here for entry in pin.files]
        # Files are hashed side by side (hashlib and blake3 release the GIL): a model is shards.
        with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
            checks = list(pool.map(lambda t: check_file(t[2] / t[1].path, t[1], full=full), todo))
        for (pin, entry, base), check in zip(todo, checks):
            if check.ok:
                continue
            what = f"model {pin.label} ({pin.commit or pin.version})"
            found = "is missing" if check.status == "missing" else f"was modified (expected {entry.expected(check.actual)}, found {check.actual})"
            raise ProblemFound(f"{what}: {entry.path} {found} in {base}",
                               hint=f"run `bundler pull` for this bundle again: it replaces missing and modified files (bundle at {self.root})")
        return {pin.label: self.model_dir(pin) for pin in self.pins_here}

    def resolve_store(self, key: tuple, label: str) -> str:
        from .hub.cache import check_file

        pin = self.pin_for(key, label)
        base = self.model_dir(pin)
        for entry in pin.files:
            check = check_file(base / entry.path, entry)
            if not check.ok:
                raise NotInBundleError(
                    f"store model {pin.id} ({pin.version}): {entry.path} is {check.status} in {base}",
                    hint="unpack the bundle again with `bundler pull`",
                )
        return str(base)


def context(root: Path) -> BundleContext:
    root = root.resolve()
    if root not in _contexts:
        _contexts[root] = BundleContext(root)
    return _contexts[root]


def bundle_for(module: str | None) -> BundleContext | None:
    """The bundle a descriptor declared in ``module`` runs from, or None (development mode)."""
    from .settings import bundle_dir

    env = bundle_dir()
    if env:
        root = Path(env)
        root = root.parent if root.name == MANIFEST_NAME else root
        if not (root / MANIFEST_NAME).is_file():
            raise UsageError(f"BUNDLER_BUNDLE={env}: no {MANIFEST_NAME} there", hint="point it at an unpacked bundle")
        return context(root)
    mod = sys.modules.get(module or "")
    file = getattr(mod, "__file__", None)
    if not file:
        return None
    for d in Path(file).resolve().parents:
        if (d / MANIFEST_NAME).is_file():
            return context(d)
    return None
