"""File hashing: one place for blake3 (bundler's own hashes) and the Hub's git/sha256 ids."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import queue

# Below this, threads and mmap cost more than they save.
_MMAP_THRESHOLD = 8 << 20
CHUNK = 4 << 20


def _blake3(data: bytes | memoryview = b"", **kwargs: Any) -> Any:
    global _blake3_type
    if _blake3_type is None:
        from blake3 import blake3  # imported when first used: not every command hashes

        _blake3_type = blake3
    return _blake3_type(data, **kwargs)


_blake3_type: Any = None


def new_hasher(algorithm: str, size: int = 0) -> Any:
    """A hash object for a recorded ``algo:hex`` hash: ``blake3``, ``sha256`` or ``git-sha1``
    (a git blob id hashes a ``blob <size>\\0`` header first, so it needs the size)."""
    if algorithm == "blake3":
        return _blake3()
    import hashlib  # OpenSSL's loading is 5 ms of a start that may need only blake3

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
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def git_blob_id_file(path: str | os.PathLike[str]) -> str:
    """The git blob id (sha1 of ``blob <size>\\0`` + content): the Hub's id for non-LFS files."""
    import hashlib

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


PIPELINE_MIN = 16 << 20  # below this a thread costs more than the hashing it overlaps
# Hashing threads beside the copying ones: one core is left for the copy (or download) itself, and
# each thread holds at most a few chunks, so memory stays bounded however many files run at once.
_pipelines = threading.BoundedSemaphore(max(1, (os.cpu_count() or 1) - 1))


class Hashers:
    """Hash objects fed the same chunks. For a large input they run on a second thread while the
    caller copies or downloads: blake3 and hashlib release the GIL, so on two cores hashing costs
    no wall time beside the copy (which alone is what `tar cf` / `tar xf` / `hf download` do).
    When every pipeline thread is busy (many files at once already keep the cores hashing), the
    chunks are hashed inline."""

    def __init__(self, hashers: list, size: int, depth: int = 4) -> None:
        self.hashers = hashers
        self._queue: queue.Queue[Any] | None = None
        self._thread: threading.Thread | None = None
        if size >= PIPELINE_MIN and (os.cpu_count() or 1) > 1 and _pipelines.acquire(blocking=False):
            import queue  # only for a file large enough to be hashed on a second thread

            self._queue = queue.Queue(maxsize=depth)  # bounded: a few chunks in memory at most
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self._queue is not None
        try:
            while (chunk := self._queue.get()) is not None:
                for h in self.hashers:
                    h.update(chunk)
        finally:
            _pipelines.release()

    def update(self, chunk: bytes) -> None:
        if self._queue is not None:
            # A chunk is handed to another thread: it must not change under it.
            self._queue.put(chunk if type(chunk) is bytes else bytes(chunk))
        else:
            for h in self.hashers:
                h.update(chunk)

    def finish(self) -> None:
        """Wait for every chunk to be hashed (idempotent); the digests are final after this, and
        later chunks are hashed inline."""
        if self._thread is not None and self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = self._queue = None


class TooLarge(ValueError):
    """More bytes arrived than the pinned size."""


class Stopped(BaseException):
    """The writer's ``stop`` event was set (the user interrupted the command): the download ends
    at this chunk, the bytes written so far stay for a later resume. Not an Exception, so no
    retry or fallback on the way takes it for a failure."""


class HashingWriter:
    """A binary file wrapper that hashes what is written, for checking a download in its own pass.

    ``algorithm`` is that of a recorded ``algo:hex`` hash (``sha256`` or ``git-sha1``; a git blob
    id needs the final size up front). Bytes already in the file are hashed first, so a resumed
    download is checked whole; a truncate (a server that ignored the range) re-hashes what is left.
    """

    def __init__(self, f: BinaryIO, algorithm: str, size: int, stop: threading.Event | None = None) -> None:
        self.f = f
        self.algorithm = algorithm
        self.size = size
        self.stop = stop
        self.hashers: Hashers | None = None
        self._rehash()

    def _rehash(self) -> None:
        self.close()
        self.h = new_hasher(self.algorithm, self.size)
        # Hashed on a second thread while the bytes arrive (a download is then as fast as the
        # network or the hash, not both one after the other); depth 1 keeps at most two chunks of
        # a download here beside the one being written.
        self.hashers = Hashers([self.h], self.size, depth=1)
        end = self.f.tell()
        with open(self.f.name, "rb") as existing:
            remaining = end
            while remaining > 0 and (chunk := existing.read(min(CHUNK, remaining))):
                self.hashers.update(chunk)
                remaining -= len(chunk)

    def write(self, data: bytes) -> int:
        if self.stop is not None and self.stop.is_set():
            raise Stopped()
        # A source that sends more than the pinned size is wrong, however long it would go on.
        if self.f.tell() + len(data) > self.size:
            raise TooLarge(f"more than the expected {self.size} bytes")
        assert self.hashers is not None
        self.hashers.update(data)  # copied there first if it could change under the hash thread
        return self.f.write(data)

    def close(self) -> None:
        """Stop the hash thread (after an error too: it must not wait for chunks forever)."""
        if self.hashers is not None:
            self.hashers.finish()

    def tell(self) -> int:
        return self.f.tell()

    def seek(self, *args: int) -> int:
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
        self.close()
        return f"{self.algorithm}:{self.h.hexdigest()}"
