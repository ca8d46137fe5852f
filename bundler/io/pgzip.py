"""gzip on every core, byte-reproducible: the stream is cut into fixed 1 MiB blocks, each
compressed on its own (a full flush resets the dictionary, as pigz --independent does), so the
bytes depend on the data and the level alone, never on the number of threads or their timing.
Any gzip reader reads it (one deflate stream, one member); zlib releases the GIL while it works.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

BLOCK = 1 << 20
# What GzipFile writes with filename="" and mtime=0: no name, no time, OS "unknown".
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def _deflate(block: bytes, level: int, last: bool) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    return c.compress(block) + c.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)


class ParallelGzipWriter:
    """A write-only binary file whose bytes go, gzipped, to ``fileobj``."""

    def __init__(self, fileobj: IO[bytes], level: int = 6, threads: int | None = None) -> None:
        self.f = fileobj
        self.level = level
        self.threads = max(1, threads or os.cpu_count() or 1)
        self.pool = ThreadPoolExecutor(max_workers=self.threads) if self.threads > 1 else None
        self.pending: deque[Future[bytes] | bytes] = deque()
        self.buf = bytearray()
        self.crc = 0
        self.size = 0
        self.closed = False
        self.f.write(_HEADER)

    def _submit(self, block: bytes, last: bool = False) -> None:
        if self.pool is None:
            self.f.write(_deflate(block, self.level, last))
            return
        self.pending.append(self.pool.submit(_deflate, block, self.level, last))
        while len(self.pending) > 2 * self.threads:  # bounded memory: a few blocks in flight
            self._write_one()

    def _write_one(self) -> None:
        done = self.pending.popleft()
        self.f.write(done if isinstance(done, bytes) else done.result())

    def write(self, data: bytes | bytearray | memoryview) -> int:
        mv = memoryview(data).cast("B")
        n = len(mv)
        self.crc = zlib.crc32(mv, self.crc)
        self.size += n
        pos = 0
        if self.buf:
            take = min(BLOCK - len(self.buf), n)
            self.buf += mv[:take]
            pos = take
            if len(self.buf) == BLOCK:
                self._submit(bytes(self.buf))
                self.buf = bytearray()
        while n - pos >= BLOCK:
            self._submit(bytes(mv[pos:pos + BLOCK]))
            pos += BLOCK
        self.buf += mv[pos:]
        return n

    def tell(self) -> int:
        """The position in the uncompressed stream (as GzipFile's; tarfile asks for it)."""
        return self.size

    def flush(self) -> None:
        pass  # blocks are fixed: flushing early would change the bytes

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._submit(bytes(self.buf), last=True)
            while self.pending:
                self._write_one()
            self.f.write(struct.pack("<II", self.crc & 0xFFFFFFFF, self.size & 0xFFFFFFFF))
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
