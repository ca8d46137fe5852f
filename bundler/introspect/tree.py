"""``bundler scan DIR``: every service file under a directory, scanned, or refused with why."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.walk import walk
from ..errors import BundlerError
from .scanner import ScanResult, scan

# A file is a candidate when it mentions bundler or BentoML and declares something they know.
_MENTIONS = re.compile(rb"\b(?:bentoml|bundler)\b")
_DECLARES = re.compile(rb"HuggingFaceModel|BentoModel|StoreModel|\bservice\b|models\.get|\.get\(|use_arguments")


@dataclass
class TreeScan:
    root: Path
    results: list[ScanResult] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        services = []
        for r in self.results:
            rel = os.path.relpath(r.file, self.root)
            for s in r.to_json()["services"]:
                services.append({**s, "file": rel})
        return {"services": services, "refused": self.refused}


def candidates(root: Path) -> list[Path]:
    """Python files under ``root`` that may declare services, skipping what a build skips."""
    from ..project.sources import DEFAULT_EXCLUDE_DIRS

    out = []
    for dirpath, dirnames, filenames in walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in DEFAULT_EXCLUDE_DIRS and not d.startswith(".") and not d.endswith(".egg-info")
            and not (here / d / "pyvenv.cfg").exists()
        )
        for fn in sorted(filenames):
            if not fn.endswith(".py"):
                continue
            p = here / fn
            try:
                head = p.read_bytes()
            except OSError:
                continue
            if _MENTIONS.search(head) and _DECLARES.search(head):
                out.append(p)
    return out


def scan_tree(root: Path, arguments: dict[str, Any] | None = None) -> TreeScan:
    """Scan every candidate; a module that only holds base classes used by services elsewhere
    under ``root`` is not refused."""
    out = TreeScan(root)
    parsed: dict = {}
    errors: dict[Path, BundlerError] = {}
    accounted: set[int] = set()
    for path in candidates(root):
        try:
            r = scan(path, arguments=arguments, _parsed=parsed)
        except BundlerError as e:
            errors[path] = e
            continue
        accounted |= r.accounted
        if r.services:
            out.results.append(r)
    for path in list(errors):
        if accounted:
            try:
                r = scan(path, arguments=arguments, accounted_elsewhere=frozenset(accounted), _parsed=parsed)
            except BundlerError as again:
                errors[path] = again
            else:
                if r.services:
                    out.results.append(r)
                continue
        err = errors[path]
        out.refused.append({"file": os.path.relpath(path, root), "line": err.line, "error": str(err)})
    out.results.sort(key=lambda r: str(r.file))
    return out
