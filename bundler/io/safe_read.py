"""Reading a file bundler did not write: only a regular file, only up to a size."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import UsageError


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of ``path``; a FIFO, device or directory, or a file over ``limit``, is refused
    at once (a FIFO would hang the read, ``/dev/zero`` would never end).

    FileNotFoundError passes through: a missing file is often a normal answer.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise UsageError(f"{path}: can't read: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{path}: not a regular file", hint="replace it with a regular file")
        if st.st_size > limit:
            raise UsageError(f"{path}: {st.st_size} bytes, over the {limit >> 20} MiB this file may have")
        chunks = []
        left = limit + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:
            raise UsageError(f"{path}: over the {limit >> 20} MiB this file may have")
        return b"".join(chunks)
    except OSError as e:
        raise UsageError(f"{path}: can't read: {e.strerror}") from None
    finally:
        os.close(fd)
