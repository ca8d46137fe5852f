"""Copying a byte range between open files without passing it through Python."""

from __future__ import annotations

import errno
import os

_CHUNK = 8 << 20
# Where the kernel can't copy between these two files (another file system on an old kernel, a
# file system without the call): the range is read and written instead.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}


def copy_range(src: int, dst: int, offset: int, count: int) -> None:
    """Append ``count`` bytes of ``src`` from ``offset`` at ``dst``'s position (which moves on).
    A source shorter than that is an ``OSError``: the caller's record of it was wrong."""
    kernel = hasattr(os, "copy_file_range")
    while count > 0:
        n = 0
        if kernel:
            try:
                n = os.copy_file_range(src, dst, min(count, 1 << 30), offset)
            except OSError as e:
                if e.errno not in _NO_KERNEL_COPY:
                    raise
                kernel = False
                continue
        else:
            data = os.pread(src, min(count, _CHUNK), offset)
            n = len(data)
            view = memoryview(data)
            while view:
                view = view[os.write(dst, view):]
        if n == 0:
            raise OSError(errno.EIO, "the source ended before the range did")
        offset += n
        count -= n
