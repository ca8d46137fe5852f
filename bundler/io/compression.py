"""Compressed bundles: which compression a file has (by its first bytes, never its name), and
zstd streams through the ``zstandard`` package (the ``zstd`` extra: Python 3.11 has no zstd).

zstd is written in multi-threaded mode with at least one worker: its frames are then the same
bytes whatever the number of workers (the library's rule; single-threaded mode frames
differently), so a bundle is byte-identical on a 2-core laptop and a 64-core builder that run
the same zstandard release.
"""

from __future__ import annotations

import errno
import os
from typing import IO, Any

from ..errors import UsageError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_LEVEL = 3  # zstd's default: about gzip -6's ratio at several times its speed


def compression_of(path: str | os.PathLike[str]) -> str | None:
    """"gzip", "zstd" or None (plain), from the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(4)
    return kind_of(head)


def kind_of(head: bytes) -> str | None:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def require_zstd(what: str) -> None:
    """A clear error now when zstd is needed and missing."""
    _zstandard(what)


def _zstandard(what: str) -> Any:
    try:
        import zstandard
    except ImportError:
        raise UsageError(f"{what} needs zstd support, which this Python lacks", hint="pip install 'bundler[zstd]'") from None
    return zstandard


def zstd_writer(fileobj: IO[bytes], threads: int | None = None) -> Any:
    """A file object that zstd-compresses into ``fileobj`` on ``threads`` workers (default: every
    core); ``close()`` ends the frame and leaves ``fileobj`` open."""
    zstandard = _zstandard("writing a .tar.zst bundle")
    workers = max(1, threads if threads is not None else (os.cpu_count() or 1))
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=workers, write_checksum=True)
    return compressor.stream_writer(fileobj, closefd=False)


def zstd_reader(fileobj: IO[bytes], what: str) -> IO[bytes]:
    """A file object of ``fileobj``'s zstd stream, decompressed as it is read (every frame, in
    bounded memory); ``close()`` closes ``fileobj`` too. A damaged stream is an ``OSError``, as a
    damaged gzip stream is."""
    zstandard = _zstandard(f"reading {what} (zstd-compressed)")
    reader = zstandard.ZstdDecompressor().stream_reader(fileobj, read_across_frames=True, closefd=True)
    return _ZstdStream(reader, zstandard.ZstdError)  # type: ignore[return-value]


class _ZstdStream:
    def __init__(self, reader: Any, error: type[BaseException]) -> None:
        self._reader, self._error = reader, error

    def read(self, n: int = -1) -> bytes:
        try:
            data: bytes = self._reader.read(n)
        except self._error as e:
            raise OSError(errno.EIO, f"corrupt zstd stream: {e}") from None
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> _ZstdStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_decompressed(path: str | os.PathLike[str]) -> IO[bytes]:
    """``path``'s bytes as a tar reader wants them: gzip and zstd decompressed as they are read."""
    kind = compression_of(path)
    if kind == "gzip":
        import gzip

        return gzip.open(path, "rb")  # type: ignore[return-value]
    raw = open(path, "rb")
    if kind == "zstd":
        try:
            return zstd_reader(raw, str(path))
        except BaseException:
            raw.close()
            raise
    return raw
