"""What each source file hashed to last time, and where the last bundle holds it: a rebuild reads
only what changed.

Keyed like git's index: a file whose path, size, mtime, ctime, inode, device and mode are all
as recorded is taken to hold the bytes it held (its hash and the credentials its scan found are
reused). An entry is recorded only for a file last changed more than ``SETTLE_NS`` before it was
read, so an edit in the same clock tick as the read can't hide behind an equal mtime (git's
"racy" case). Members of the previous bundle are reused only while that bundle's own identity
(size, mtime, ctime, inode) is as this build wrote it; every reused member's bytes are copied
whole (header, data, padding) and so are exactly what a clean build writes.

It is a cache: anything unreadable, malformed or from another bundler is ignored, never an
error, and a build without it gives the same bytes.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

FORMAT = 2
SETTLE_NS = 2_000_000_000


class Known(NamedTuple):
    """A source as it was last read: its size, ``blake3:`` hash, executable bit and the
    (line, kind) of each credential its scan found."""

    size: int
    hash: str
    executable: bool
    secrets: tuple[tuple[int, str], ...]


@dataclass
class SourceCache:
    path: Path | None
    root: Path
    columns: dict[str, Any] = field(default_factory=dict)  # the recorded files, as loaded (see _columns)
    index: dict[str, int] = field(default_factory=dict)  # rel -> its place in the columns
    bundle: dict[str, Any] = field(default_factory=dict)  # the last bundle: path, identity, mtime, members
    started_ns: int = field(default_factory=time.time_ns)
    fresh: dict[str, tuple[str, list[Any], Known]] = field(default_factory=dict)
    recorded: int = 0  # entries of ``fresh`` read in this build (the others were found unchanged)

    def lookup(self, rel: str, file: str) -> Known | None:
        """What ``file`` held when it was last read, if it is unchanged since (one stat). Values
        of the wrong type only ever fail to match."""
        i = self.index.get(rel)
        if i is None:
            return None
        c = self.columns
        if file != (c["elsewhere"].get(rel) if rel in c["elsewhere"] else c["prefix"] + rel):
            return None
        try:
            st = os.stat(file)
        except OSError:
            return None
        key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, st.st_mode]
        if c["stat"][6 * i:6 * i + 6] != key:
            return None
        found = c["secrets"].get(rel)
        known = Known(st.st_size, "blake3:" + c["hash"][i], c["executable"][i] == "1", found or ())
        self.fresh[rel] = (file, key, known)
        return known

    def record(self, rel: str, file: str, st: os.stat_result, known: Known) -> None:
        """Remember a file just read, unless it changed too recently to tell a later edit apart."""
        if max(st.st_mtime_ns, st.st_ctime_ns) < self.started_ns - SETTLE_NS:
            self.fresh[rel] = (file, _key(st), known)
            self.recorded += 1

    def reusable(self, mtime: int) -> tuple[int, dict[str, tuple[int, int, str, bool]]] | None:
        """(an open descriptor of the last bundle, rel -> (start, end, hash, executable) of its
        members) when that bundle is still the file this build wrote, dated ``mtime``; else None."""
        b = self.bundle
        if not b or b.get("mtime") != mtime:
            return None
        try:
            fd = os.open(b["path"], os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except (OSError, TypeError, ValueError):
            return None
        try:
            same = _identity(os.fstat(fd)) == b.get("identity")
        except OSError:
            same = False
        if not same:
            os.close(fd)
            return None
        return fd, b["members"]

    def save(self, bundle: Path | None, mtime: int, members: dict[str, tuple[int, int, str, bool]]) -> None:
        """Write what this build read (and, for an uncompressed bundle, where its members are).
        Column lists, not an object per file: 20,000 entries load in milliseconds."""
        if self.path is None:
            return
        rels = sorted(self.fresh)
        prefix = f"{self.root}/"
        entries = [self.fresh[r] for r in rels]
        data: dict[str, Any] = {
            "format": FORMAT, "root": str(self.root), "rel": rels,
            "elsewhere": {r: f for r, (f, _, _) in zip(rels, entries) if f != prefix + r},  # links: their targets
            "stat": [x for _, k, _ in entries for x in k],
            "hash": [kn.hash.partition(":")[2] for _, _, kn in entries],
            "executable": "".join("1" if kn.executable else "0" for _, _, kn in entries),
            "secrets": {r: [list(s) for s in kn.secrets] for r, (_, _, kn) in zip(rels, entries) if kn.secrets},
        }
        if bundle is not None:
            try:
                identity = _identity(os.stat(bundle))
            except OSError:
                identity = []
            # a member is recorded beside its file's entry (so with its hash and mode) when it
            # holds what that entry says: [start, end] in the file's place, else [-1, -1]
            spans: list[int] = []
            for r, (_, _, kn) in zip(rels, entries):
                m = members.get(r)
                spans += m[:2] if m is not None and m[2] == kn.hash and m[3] == kn.executable else (-1, -1)
            if identity:
                data["bundle"] = {"path": os.path.abspath(bundle), "identity": identity, "mtime": mtime, "span": spans}
        from ..io.atomic import write_atomic

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(data, separators=(",", ":")).encode())
        except OSError:
            pass  # a cache that can't be written is a slower next build, not a failed one


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, st.st_mode]


def cache_dir() -> Path:
    from ..settings import bundler_home

    return bundler_home() / "cache" / "sources"


def orphans() -> list[tuple[str, Path]]:
    """(project folder, cache file) of each cache whose project folder is gone (or that can't be
    read): ``bundler gc`` removes them."""
    out = []
    for path in sorted(cache_dir().glob("*.json")):
        try:
            root = json.loads(path.read_bytes()).get("root")
        except (OSError, ValueError, AttributeError, RecursionError):
            root = None
        if type(root) is not str or not os.path.isdir(root):
            out.append((str(root), path))
    return out


def load(root: Path) -> SourceCache:
    """The cache of the project at ``root`` (empty when there is none or it can't be read)."""
    from ..io.hashing import blake3_bytes

    root = root.resolve()
    path = cache_dir() / (blake3_bytes(str(root).encode()).partition(":")[2][:32] + ".json")
    cache = SourceCache(path, root)
    try:
        data = json.loads(path.read_bytes())
        if type(data) is dict and data.get("format") == FORMAT and data.get("root") == str(root):
            cache.columns, cache.index = _columns(data, f"{root}/")
            cache.bundle = _bundle(data.get("bundle"), cache.columns, cache.index)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError):
        cache.columns, cache.index, cache.bundle = {}, {}, {}
    return cache


def _columns(data: dict[str, Any], prefix: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The file columns and an index into them, when their shapes agree (else nothing)."""
    rels, stats, hashes, executable = data["rel"], data["stat"], data["hash"], data["executable"]
    elsewhere, secrets = data.get("elsewhere") or {}, data.get("secrets") or {}
    if not (type(rels) is list and type(stats) is list and type(hashes) is list and type(executable) is str
            and len(stats) == 6 * len(rels) and len(hashes) == len(rels) == len(executable)
            and type(elsewhere) is dict and type(secrets) is dict):
        return {}, {}
    # every hash checked for its form in one pass (a bad one means a damaged file: none is used)
    if not _HEXES.fullmatch("\n".join(h if type(h) is str else "" for h in hashes) + "\n" if hashes else ""):
        return {}, {}
    try:
        found = {rel: tuple((int(line), str(kind)) for line, kind in v) for rel, v in secrets.items()}
    except (TypeError, ValueError):
        return {}, {}
    columns = {"count": len(rels), "prefix": prefix, "stat": stats, "hash": hashes, "executable": executable,
               "elsewhere": elsewhere, "secrets": found}
    return columns, {rel: i for i, rel in enumerate(rels) if type(rel) is str}


def _bundle(raw: Any, columns: dict[str, Any], index: dict[str, int]) -> dict[str, Any]:
    """The last bundle's path, identity, date and rel -> (start, end, hash, executable) of its
    members, each from its file's entry."""
    if type(raw) is not dict or type(raw.get("path")) is not str or type(raw.get("mtime")) is not int:
        return {}
    span = raw["span"]
    if type(span) is not list or len(span) != 2 * columns["count"]:
        return {}
    members = {}
    for rel, i in index.items():
        start, end, digest = span[2 * i], span[2 * i + 1], columns["hash"][i]
        if type(start) is int and type(end) is int and 0 <= start < end and type(digest) is str:
            members[rel] = (start, end, "blake3:" + digest, columns["executable"][i] == "1")
    return {"path": raw["path"], "identity": raw.get("identity"), "mtime": raw["mtime"], "members": members}


_HEXES = re.compile(r"(?:[0-9a-f]{64}\n)*")
