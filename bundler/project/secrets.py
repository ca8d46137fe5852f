"""Credentials in source files: found in the same pass that hashes each file, never printed.

A bundle is pushed to registries and read by everyone who can pull it; one token in a packed
source file leaks to all of them. Each pattern is specific enough to be worth failing a build.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..io.hashing import CHUNK, _blake3

# (kind, anchor regex, full token regex matched at the anchor, characters that may not precede it).
# A literal-only anchor scan is what runs over every byte (re's literal alternation); the precise
# pattern runs only where an anchor is found.
_WORD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
PATTERNS: list[tuple[str, bytes, bytes, bytes]] = [
    ("Hugging Face token", rb"hf_", rb"hf_[A-Za-z0-9]{34}(?![A-Za-z0-9])", _WORD),
    ("AWS access key id", rb"A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA)", rb"A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA)[A-Z0-9]{16}(?![A-Z0-9])", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
    ("GitHub token", rb"gh[pousr]_|github_pat_", rb"(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?![A-Za-z0-9_])", _WORD),
    ("OpenAI API key", rb"sk-", rb"sk-(?:(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}|(?:proj-|svcacct-)[A-Za-z0-9_-]{40,})", _WORD + b"-"),
    ("private key", rb"-----BEGIN ", rb"-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----", b""),
]
# No capturing groups: with them re gives up its literal-prefix scan and runs ~12x slower.
_ANCHORS = re.compile(b"|".join(b"(?:" + anchor + b")" for _, anchor, _, _ in PATTERNS))
_FULL = [(kind, re.compile(full), set(before)) for kind, _, full, before in PATTERNS]
_OVERLAP = 256  # longer than any token: a match cut by a chunk boundary is still seen


_ESCAPE_LETTERS = frozenset(b"ntrfvb")


def _glued(data: bytes, start: int, before: bytes | set[int]) -> bool:
    """Is the anchor at ``start`` the middle of a longer word (then it is no token)? The letter
    of an escape (``\n`` in a notebook's stored output, a .jsonl log, a YAML string) ends a word."""
    if not start or data[start - 1] not in before:
        return False
    return not (start >= 2 and data[start - 2] == 0x5C and data[start - 1] in _ESCAPE_LETTERS)


def scan_bytes(data: bytes, where: str) -> list[Secret]:
    """The credentials in ``data`` (a value, not a file: a build argument, a requirement)."""
    found: dict[str, Secret] = {}
    for m in _ANCHORS.finditer(data):
        start = m.start()
        for kind, full, before in _FULL:
            if kind not in found and not _glued(data, start, before) and full.match(data, start):
                found[kind] = Secret(where, data.count(b"\n", 0, start) + 1, kind)
    return sorted(found.values(), key=lambda s: s.line)


@dataclass(frozen=True)
class Secret:
    path: str
    line: int
    kind: str


def hash_and_scan(path: Path, rel: str) -> tuple[int, str, list[Secret]]:
    """(size, ``blake3:<hex>``, secrets found) reading the file once."""
    size, digest, found, _, _ = read_hash_and_scan(path, rel)
    return size, digest, found


def read_hash_and_scan(path: str | os.PathLike[str], rel: str, keep_below: int = 0) -> tuple[int, str, list[Secret], bytes | None, os.stat_result]:
    """``hash_and_scan`` plus, for a file smaller than ``keep_below``, the very bytes that were
    hashed (a build packs those instead of reading the file again), and the file's stat from
    just before the read (its mode, and the identity a source cache records)."""
    # Thousands of small sources: raw descriptors, one read each (a buffered file object costs
    # more than reading the kilobyte it holds).
    fd = os.open(path, _READ_FLAGS)
    try:
        st = os.fstat(fd)
        if st.st_size < keep_below:
            # the size it has, and a byte more to see one that grew since: asking for keep_below
            # bytes made each read allocate (and give back) that much, more than a small read costs
            kept = os.read(fd, st.st_size + 1)
            if len(kept) <= st.st_size and (len(kept) == st.st_size or not os.read(fd, 1)):
                return len(kept), "blake3:" + _blake3(kept).hexdigest(), scan_bytes(kept, rel) if _ANCHORS.search(kept) else [], kept, st
        # grown past the limit while being read, or large: streamed
        with open(fd, "rb", closefd=False) as f:
            f.seek(0)
            size, digest, found = _stream_hash_and_scan(f, rel)
        return size, digest, found, None, st
    finally:
        os.close(fd)


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _stream_hash_and_scan(f: IO[bytes], rel: str) -> tuple[int, str, list[Secret]]:
    h = _blake3()
    size = 0
    found: dict[str, Secret] = {}
    tail = b""
    lines_before_tail = 0
    for chunk in iter(lambda: f.read(CHUNK), b""):
        h.update(chunk)
        size += len(chunk)
        window = tail + chunk
        for m in _ANCHORS.finditer(window):
            start = m.start()
            for kind, full, before in _FULL:
                if kind in found or _glued(window, start, before):
                    continue
                hit = full.match(window, start)
                if hit is None or hit.end() <= len(tail):
                    continue  # not a token, or seen in the previous window
                found[kind] = Secret(rel, lines_before_tail + window.count(b"\n", 0, start) + 1, kind)
        keep = window[-_OVERLAP:]
        lines_before_tail += window.count(b"\n", 0, len(window) - len(keep))
        tail = keep
    return size, "blake3:" + h.hexdigest(), sorted(found.values(), key=lambda s: s.line)
