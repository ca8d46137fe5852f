"""What pulls placed on this host, for ``bundler gc``: where each bundle was unpacked
(``$BUNDLER_HOME/pulled/<hash>.json``) and a ledger (``pulled/placed.json``) of the Hub revisions
and store models pulls put outside those folders, kept until ``gc`` frees them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

PULLED = "pulled"
LEDGER = "placed.json"


def records_dir() -> Path:
    from ..settings import bundler_home

    return bundler_home() / PULLED


def note_pulled(dest: Path, cache: Path | None, hub: list[tuple[str, str]], store: list[str]) -> None:
    """Record a pull into ``dest``, and add to the ledger the Hub revisions (repo, commit) it
    placed in ``cache`` and the store tags it imported."""
    from ..io.atomic import write_atomic
    from ..io.scratch import exclusive

    dest = dest.resolve()
    folder = records_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(str(dest).encode()).hexdigest()[:32] + ".json")
    if read_record(path) is None:
        write_atomic(path, (json.dumps({"dest": str(dest)}, indent=2) + "\n").encode())
    if hub or store:
        with exclusive(folder):  # two pulls at once both land in the ledger
            ledger = read_ledger()
            key = str(cache.resolve()) if cache is not None else ""
            ledger["hub"][key] = sorted({*map(tuple, ledger["hub"].get(key, [])), *hub})
            ledger["store_models"] = sorted({*ledger["store_models"], *store})
            write_ledger(ledger)


def read_ledger() -> dict[str, Any]:
    try:
        data = json.loads((records_dir() / LEDGER).read_text())
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    hub: dict[str, Any] = data["hub"] if isinstance(data.get("hub"), dict) else {}
    store: list[Any] = data["store_models"] if isinstance(data.get("store_models"), list) else []
    return {"hub": {str(c): [tuple(r) for r in revs if isinstance(r, list) and len(r) == 2 and all(isinstance(x, str) for x in r)]
                    for c, revs in hub.items() if isinstance(revs, list)},
            "store_models": [t for t in store if isinstance(t, str)]}


def write_ledger(ledger: dict[str, Any]) -> None:
    from ..io.atomic import write_atomic

    data = {"hub": {c: [list(r) for r in sorted(revs)] for c, revs in sorted(ledger["hub"].items()) if revs}, "store_models": sorted(ledger["store_models"])}
    write_atomic(records_dir() / LEDGER, (json.dumps(data, indent=2) + "\n").encode())


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("dest"), str) else None
