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

import base64
import json
import os
import sys
import time
from array import array
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, NamedTuple

FORMAT = 3
SETTLE_NS = 2_000_000_000


class Known(NamedTuple):
    """A source as it was last read: its size, ``blake3:`` hash, executable bit and the
    (line, kind) of each credential its scan found."""

    size: int
    hash: str
    executable: bool
    secrets: tuple[tuple[int, str], ...]


# rel -> (start, end, hash, executable) of its member in the last bundle, or None
Spans = Callable[[str], "tuple[int, int, str, bool] | None"]


@dataclass
class SourceCache:
    path: Path | None
    root: Path
    index: dict[str, int] = field(default_factory=dict)  # rel -> its place in the columns below
    stat: list[int] = field(default_factory=list)  # six numbers a file (see _key)
    hexes: str = ""  # 64 hex digits a file: its blake3
    executable: str = ""  # "1" or "0" a file
    elsewhere: dict[str, str] = field(default_factory=dict)  # rel -> the file read, when not root/rel (a link's target)
    secrets: dict[str, tuple[tuple[int, str], ...]] = field(default_factory=dict)
    bundle: dict[str, Any] = field(default_factory=dict)  # the last bundle: path, identity, mtime, span (two numbers a file)
    started_ns: int = field(default_factory=time.time_ns)
    fresh: dict[str, tuple[str, list[Any], Known]] = field(default_factory=dict)
    recorded: int = 0  # entries of ``fresh`` read in this build (the others were found unchanged)

    @cached_property
    def prefix(self) -> str:  # asked 20,000 times a build
        return f"{self.root}/"

    def lookup(self, rel: str, file: str) -> Known | None:
        """What ``file`` held when it was last read, if it is unchanged since (one stat)."""
        i = self.index.get(rel)
        if i is None or file != (self.elsewhere[rel] if rel in self.elsewhere else self.prefix + rel):
            return None
        try:
            st = os.stat(file)
        except OSError:
            return None
        key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, st.st_mode]
        if self.stat[6 * i:6 * i + 6] != key:
            return None
        known = Known(key[0], "blake3:" + self.hexes[64 * i:64 * i + 64], self.executable[i] == "1", self.secrets.get(rel, ()))
        self.fresh[rel] = (file, key, known)
        return known

    def record(self, rel: str, file: str, st: os.stat_result, known: Known) -> None:
        """Remember a file just read, unless it changed too recently to tell a later edit apart."""
        if max(st.st_mtime_ns, st.st_ctime_ns) < self.started_ns - SETTLE_NS:
            self.fresh[rel] = (file, _key(st), known)
            self.recorded += 1

    def reusable(self, mtime: int) -> tuple[int, Spans] | None:
        """(an open descriptor of the last bundle, where each member is in it) when that bundle
        is still the file this build wrote, dated ``mtime``; else None."""
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
        return fd, self._member

    def _member(self, rel: str) -> tuple[int, int, str, bool] | None:
        i = self.index.get(rel)
        if i is None:
            return None
        start, end = self.bundle["span"][2 * i:2 * i + 2]
        if not 0 <= start < end:
            return None
        return start, end, "blake3:" + self.hexes[64 * i:64 * i + 64], self.executable[i] == "1"

    def save(self, bundle: Path | None, mtime: int, members: dict[str, tuple[int, int, str, bool]]) -> None:
        """Write what this build read (and, for an uncompressed bundle, where its members are).
        A column is one string (numbers as 64-bit integers in base64, hashes end to end): 20,000
        entries load in milliseconds, where JSON lists of numbers and strings took several times
        that."""
        if self.path is None:
            return
        rels = sorted(self.fresh)
        entries = [self.fresh[r] for r in rels]
        prefix = self.prefix
        data: dict[str, Any] = {
            "format": FORMAT, "root": str(self.root), "rel": "\n".join(rels),
            "elsewhere": {r: f for r, (f, _, _) in zip(rels, entries) if f != prefix + r},  # links: their targets
            "byteorder": sys.byteorder,
            "stat": _pack_ints(list(chain.from_iterable(map(itemgetter(1), entries)))),
            "hash": "".join([kn.hash[7:] for _, _, kn in entries]),
            "executable": "".join(["1" if kn.executable else "0" for _, _, kn in entries]),
            "secrets": {r: [list(s) for s in kn.secrets] for r, (_, _, kn) in zip(rels, entries) if kn.secrets},
        }
        if bundle is not None:
            try:
                identity = _identity(os.stat(bundle))
            except OSError:
                identity = []
            # a member is recorded beside its file's entry (so with its hash and mode) when it
            # holds what that entry says: start and end in the file's place, else -1 -1
            spans: list[int] = []
            for r, (_, _, kn) in zip(rels, entries):
                m = members.get(r)
                spans += (m[0], m[1]) if m is not None and m[2] == kn.hash and m[3] == kn.executable else (-1, -1)
            if identity:
                data["bundle"] = {"path": os.path.abspath(bundle), "identity": identity, "mtime": mtime, "span": _pack_ints(spans)}
        if data["rel"].count("\n") != max(len(rels) - 1, 0):
            return  # a name no selection lets through; never a cache that reads back otherwise
        from ..io.atomic import write_atomic

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(data, separators=(",", ":")).encode())
        except (OSError, UnicodeEncodeError):
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
            _fill(cache, data)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError):
        cache = SourceCache(path, root)
    return cache


def _fill(cache: SourceCache, data: dict[str, Any]) -> None:
    """The columns into ``cache`` when every one has the shape and length the others say (else
    it stays empty). Numbers that are not whole 64-bit ones, or a hash that is not hex, fail here."""
    rels, stats, hexes, executable = data["rel"], data["stat"], data["hash"], data["executable"]
    elsewhere, secrets = data.get("elsewhere") or {}, data.get("secrets") or {}
    if not (type(rels) is str and type(stats) is str and type(hexes) is str and type(executable) is str
            and type(elsewhere) is dict and type(secrets) is dict and all(type(v) is str for v in elsewhere.values())):
        return
    if data.get("byteorder") != sys.byteorder:
        return
    names = rels.split("\n") if rels else []
    stat = _unpack_ints(stats)
    if not (len(stat) == 6 * len(names) and len(hexes) == 64 * len(names) == 64 * len(executable)
            and hexes.isascii() and not hexes.encode("ascii").translate(None, b"0123456789abcdef")
            and not executable.encode("ascii", "replace").translate(None, b"01")):
        return
    found = {rel: tuple((int(line), str(kind)) for line, kind in v) for rel, v in secrets.items()}
    cache.index, cache.stat, cache.hexes, cache.executable = dict(zip(names, range(len(names)))), stat, hexes, executable
    cache.elsewhere, cache.secrets = elsewhere, found
    cache.bundle = _bundle(data.get("bundle"), len(names))


def _bundle(raw: Any, count: int) -> dict[str, Any]:
    """The last bundle's path, identity, date and span column (two numbers a file), when their
    shapes agree."""
    if type(raw) is not dict or type(raw.get("path")) is not str or type(raw.get("mtime")) is not int or type(raw.get("span")) is not str:
        return {}
    span = _unpack_ints(raw["span"])
    if len(span) != 2 * count:
        return {}
    return {"path": raw["path"], "identity": raw.get("identity"), "mtime": raw["mtime"], "span": span}


def _pack_ints(values: list[int]) -> str:
    try:
        packed = array("q", values)
    except OverflowError:  # an inode or device number past 2**63 (some file systems): its 64-bit pattern, which never matches again
        packed = array("q", [v - (1 << 64) if v >= 1 << 63 else v for v in values])
    return base64.b64encode(packed.tobytes()).decode("ascii")


def _unpack_ints(text: str) -> list[int]:
    raw = base64.b64decode(text, validate=True)
    if len(raw) % 8:
        raise ValueError("not whole 64-bit numbers")
    out = array("q")
    out.frombytes(raw)
    return out.tolist()
