"""Credentials in source files: found in the same pass that hashes each file, never printed.

A bundle is pushed to registries and read by everyone who can pull it; one token in a packed
source file leaks to all of them. Each pattern is specific enough to be worth failing a build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .hashing import CHUNK

# (kind, pattern): the token formats as their issuers publish them.
PATTERNS: list[tuple[str, bytes]] = [
    ("Hugging Face token", rb"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{34}(?![A-Za-z0-9])"),
    ("AWS access key id", rb"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])"),
    ("GitHub token", rb"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?![A-Za-z0-9_])"),
    ("OpenAI API key", rb"(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}|(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-)[A-Za-z0-9_-]{40,}"),
    ("private key", rb"-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"),
]
_ANY = re.compile(b"|".join(b"(" + p + b")" for _, p in PATTERNS))
_OVERLAP = 256  # longer than any token: a match cut by a chunk boundary is still seen


@dataclass(frozen=True)
class Secret:
    path: str
    line: int
    kind: str


def hash_and_scan(path: Path, rel: str) -> tuple[int, str, list[Secret]]:
    """(size, ``blake3:<hex>``, secrets found) reading the file once."""
    from .hashing import _blake3

    h = _blake3()
    size = 0
    found: dict[str, Secret] = {}
    tail = b""
    lines_before_tail = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            window = tail + chunk
            for m in _ANY.finditer(window):
                if m.end() <= len(tail):
                    continue  # seen in the previous window
                kind = PATTERNS[m.lastindex - 1][0] if m.lastindex else "secret"
                if kind not in found:
                    found[kind] = Secret(rel, lines_before_tail + window.count(b"\n", 0, m.start()) + 1, kind)
            keep = window[-_OVERLAP:]
            lines_before_tail += window.count(b"\n", 0, len(window) - len(keep))
            tail = keep
    return size, "blake3:" + h.hexdigest(), sorted(found.values(), key=lambda s: s.line)
