"""``bundler gc``: free what no pulled bundle on this host uses any more.

Every pull records where it unpacked a bundle (``$BUNDLER_HOME/pulled/<hash>.json``), and adds
what it placed outside that folder (the Hub revisions it fetched into a Hugging Face cache, the
store models it imported) to one ledger (``pulled/placed.json``), kept until ``gc`` frees them. A
bundle is live while its folder still holds its ``bundle.yaml``. What ``gc`` removes:

- shared environments (``$BUNDLER_HOME/envs``) no live bundle's ``.venv`` links to;
- cached S3 and OCI models (``$BUNDLER_HOME/s3-models``, ``oci-models``) no live bundle pins;
- store models and Hub revisions a pull placed, once no live bundle pins them (what a person put
  in the store or the Hugging Face cache is never touched: only what a pull recorded);
- the records of bundles whose folder is gone;
- the build source caches (``$BUNDLER_HOME/cache/sources``) of projects whose folder is gone.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any



@dataclass
class Freed:
    what: str  # "env", "<kind> cache", "store model", "hub", "record" or "source cache"
    name: str
    path: str
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "name": self.name, "path": self.path, "bytes": self.bytes}


@dataclass
class GcResult:
    dry_run: bool
    live: list[str] = field(default_factory=list)  # the pulled bundles kept, by folder
    freed: list[Freed] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(f.bytes for f in self.freed)

    def to_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "live": self.live, "freed": [f.to_json() for f in self.freed], "bytes": self.total}


def gc(*, dry_run: bool = False) -> GcResult:
    """Remove (``dry_run``: only list) everything above that no live pulled bundle uses."""
    from .. import kinds
    from ..bundle.manifest import MAX_MANIFEST_BYTES, loads
    from ..errors import BundlerError
    from ..io.safe_read import read_regular
    from ..model.layout import MANIFEST_NAME
    from .records import LEDGER, read_ledger, read_record, records_dir, write_ledger
    from .venv import VENV, envs_dir

    result = GcResult(dry_run)
    records = {p: r for p in sorted(records_dir().glob("*.json")) if p.name != LEDGER and (r := read_record(p)) is not None}
    live_paths: set[Path] = set()
    live_store: set[str] = set()
    live_hub: set[tuple[str, str]] = set()
    dead: list[Path] = []
    for path, record in records.items():
        dest = Path(record["dest"])
        try:
            manifest = loads(read_regular(dest / MANIFEST_NAME, MAX_MANIFEST_BYTES), str(dest / MANIFEST_NAME))
        except (OSError, BundlerError):
            dead.append(path)
            continue
        result.live.append(str(dest))
        if (dest / VENV).is_symlink():
            live_paths.add(Path(os.readlink(dest / VENV)))
        for pin in manifest.pins:
            kind = kinds.of(pin)
            if kind.cache_root() is not None:
                live_paths.add(kind.host_dir(pin))
            if pin.version is not None:
                live_store.add(f"{pin.id.partition(':')[0]}:{pin.version}")
            if pin.commit is not None:
                live_hub.add((pin.id, pin.commit))
    from ..io.scratch import exclusive

    caches = [(f"{k.name} cache", root) for k in kinds.all_kinds() if (root := k.cache_root()) is not None]
    for what, folder in [("env", envs_dir()), *caches]:
        if not folder.is_dir():
            continue
        with exclusive(folder):  # `bundler env` installs and links under this lock
            for entry in sorted(folder.iterdir()):
                if entry not in live_paths and ".partial-" not in entry.name and entry.is_dir() and not entry.is_symlink():
                    _free(result, what, entry.name, entry)

    (folder := records_dir()).mkdir(parents=True, exist_ok=True)
    with exclusive(folder):
        ledger = read_ledger()
        freed_tags = _free_store(result, set(ledger["store_models"]) - live_store)
        freed_hub = _free_hub(result, ledger["hub"], live_hub)
        if not dry_run and (freed_tags or freed_hub):
            ledger["store_models"] = [t for t in ledger["store_models"] if t not in freed_tags]
            ledger["hub"] = {c: [r for r in revs if (c, *r) not in freed_hub] for c, revs in ledger["hub"].items()}
            write_ledger(ledger)
    for path in dead:
        result.freed.append(Freed("record", str(records[path]["dest"]), str(path), 0))
        if not dry_run:
            path.unlink(missing_ok=True)
    _free_source_caches(result)
    return result


def _free_source_caches(result: GcResult) -> None:
    """Build caches (what each source hashed to) of projects whose folder is gone."""
    from ..project.source_cache import orphans

    for root, path in orphans():
        try:
            size = path.stat().st_blocks * 512
        except OSError:
            size = 0
        result.freed.append(Freed("source cache", root, str(path), size))
        if not result.dry_run:
            path.unlink(missing_ok=True)


def _free(result: GcResult, what: str, name: str, path: Path) -> None:
    result.freed.append(Freed(what, name, str(path), _size(path)))
    if not result.dry_run:
        shutil.rmtree(path, ignore_errors=True)


def _free_store(result: GcResult, tags: set[str]) -> set[str]:
    """The store models among ``tags`` (what pulls imported, no live bundle pins): removed, or
    gone already; the tags the ledger can forget."""
    from ..errors import UsageError
    from ..stores.local import Store

    store = Store()
    for tag in sorted(tags):
        try:
            model = store.get(tag)
        except UsageError:
            continue  # gone already
        result.freed.append(Freed("store model", tag, str(model.path), model.size))
        if not result.dry_run:
            store.delete(tag)
    return tags


def _free_hub(result: GcResult, placed: dict[str, list[tuple[str, str]]], live: set[tuple[str, str]]) -> set[tuple[str, str, str]]:
    """Hub revisions pulls placed that no live bundle pins, through huggingface_hub's own cache
    scan (it keeps a blob another revision still links to); (cache, repo, commit) the ledger can
    forget."""
    forget: set[tuple[str, str, str]] = set()
    for cache, revisions in sorted(placed.items()):
        gone = set(revisions) - live
        if not gone:
            continue
        if not Path(cache).is_dir():
            forget |= {(cache, *r) for r in gone}
            continue
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir(cache)
        present = {(repo.repo_id, rev.commit_hash): rev for repo in info.repos if repo.repo_type == "model" for rev in repo.revisions}
        # a commit that a live bundle pins in another repository keeps it: delete_revisions takes hashes
        kept_commits = {c for _, c in live}
        forget |= {(cache, *r) for r in gone if r not in present}
        doomed = sorted((r, present[r]) for r in gone if r in present and r[1] not in kept_commits)
        if not doomed:
            continue
        strategy = info.delete_revisions(*[commit for (_, commit), _ in doomed])
        for (repo, commit), rev in doomed:
            result.freed.append(Freed("hub", f"{repo}@{commit[:12]}", str(rev.snapshot_path), rev.size_on_disk))
            forget.add((cache, repo, commit))
        if not result.dry_run:
            strategy.execute()
    return forget


def _size(path: Path) -> int:
    """Bytes on disk under ``path``, each file once however many links it has."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total
