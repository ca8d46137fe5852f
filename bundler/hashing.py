"""File hashing: one place for blake3 (bundler's own hashes) and the Hub's git/sha256 ids."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

# Below this, threads and mmap cost more than they save.
_MMAP_THRESHOLD = 8 << 20
CHUNK = 4 << 20


def _blake3(**kwargs):
    from blake3 import blake3

    return blake3(**kwargs)


def new_hasher(algorithm: str, size: int = 0):
    """A hash object for a recorded ``algo:hex`` hash: ``blake3``, ``sha256`` or ``git-sha1``
    (a git blob id hashes a ``blob <size>\\0`` header first, so it needs the size)."""
    if algorithm == "blake3":
        return _blake3()
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "git-sha1":
        return hashlib.sha1(b"blob %d\0" % size)
    raise ValueError(f"unknown hash algorithm {algorithm!r}")


def blake3_file(path: str | os.PathLike[str]) -> str:
    """``blake3:<hex>`` of a file: memory-mapped and multithreaded for large files."""
    path = Path(path)
    size = path.stat().st_size
    if size >= _MMAP_THRESHOLD:
        from blake3 import blake3

        h = blake3(max_threads=blake3.AUTO)
        h.update_mmap(path)
    else:
        h = _blake3()
        with open(path, "rb") as f:
            h.update(f.read())
    return "blake3:" + h.hexdigest()


def blake3_bytes(data: bytes) -> str:
    h = _blake3()
    h.update(data)
    return "blake3:" + h.hexdigest()


def copy_and_hash(src: Path, dst: Path) -> tuple[int, str]:
    """Copy ``src`` to ``dst`` reading each byte once; return (size, ``blake3:<hex>``)."""
    h = _blake3()
    size = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(CHUNK):
            h.update(chunk)
            fout.write(chunk)
            size += len(chunk)
    shutil.copymode(src, dst)
    return size, "blake3:" + h.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def git_blob_id_file(path: str | os.PathLike[str]) -> str:
    """The git blob id (sha1 of ``blob <size>\\0`` + content): the Hub's id for non-LFS files."""
    size = os.path.getsize(path)
    h = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_hash(path: str | os.PathLike[str], algorithm: str) -> str:
    """Hash a file with the algorithm of a recorded ``algo:hex`` hash, returning the same form."""
    if algorithm == "blake3":
        return blake3_file(path)
    if algorithm == "sha256":
        return "sha256:" + sha256_file(path)
    if algorithm == "git-sha1":
        return "git-sha1:" + git_blob_id_file(path)
    raise ValueError(f"unknown hash algorithm {algorithm!r}")


class TooLarge(ValueError):
    """More bytes arrived than the pinned size."""


class HashingWriter:
    """A binary file wrapper that hashes what is written, for checking a download in its own pass.

    ``algorithm`` is that of a recorded ``algo:hex`` hash (``sha256`` or ``git-sha1``; a git blob
    id needs the final size up front). Bytes already in the file are hashed first, so a resumed
    download is checked whole; a truncate (a server that ignored the range) re-hashes what is left.
    """

    def __init__(self, f, algorithm: str, size: int) -> None:
        self.f = f
        self.algorithm = algorithm
        self.size = size
        self._rehash()

    def _rehash(self) -> None:
        self.h = new_hasher(self.algorithm, self.size)
        end = self.f.tell()
        with open(self.f.name, "rb") as existing:
            remaining = end
            while remaining > 0 and (chunk := existing.read(min(CHUNK, remaining))):
                self.h.update(chunk)
                remaining -= len(chunk)

    def write(self, data: bytes) -> int:
        # A source that sends more than the pinned size is wrong, however long it would go on.
        if self.f.tell() + len(data) > self.size:
            raise TooLarge(f"more than the expected {self.size} bytes")
        self.h.update(data)
        return self.f.write(data)

    def tell(self) -> int:
        return self.f.tell()

    def seek(self, *args) -> int:
        return self.f.seek(*args)

    def truncate(self, size: int | None = None) -> int:
        out = self.f.truncate(size)
        self.f.flush()
        self._rehash()
        return out

    def flush(self) -> None:
        self.f.flush()

    @property
    def digest(self) -> str:
        return f"{self.algorithm}:{self.h.hexdigest()}"
