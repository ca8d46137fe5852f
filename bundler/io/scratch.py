"""Temporary files and directories that a killed run leaves behind, and the next run removes.

Each one is created under a fixed name pattern (``PREFIX`` + 8 random characters + ``SUFFIX``)
and holds an exclusive ``flock`` for as long as its creator lives. The kernel drops the lock when
the process dies, however it dies, so the next run of the same command can tell a leftover (lock
free) from another run's work in progress (lock held) without trusting PIDs or clocks.

The rule: whatever its age, a leftover no live process holds is removed by the next run that
uses the same place. A name only matches once it is locked: each is made under a name with
``.new`` appended, locked, then renamed (the lock is the inode's, so it moves with it). Only a
``.new`` one, left by a run killed inside those microseconds, waits a few seconds to be swept.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

# mkstemp/mkdtemp draw 8 characters from this alphabet.
_RANDOM = r"[a-z0-9_]{8}"
# A ``.new`` name is not locked yet for a moment after it is made: never sweep a younger one.
_MIN_AGE_S = 5.0
_NEW = ".new"


def _pattern(prefix: str, suffix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix) + _RANDOM + re.escape(suffix) + r"\Z")


def is_scratch(name: str, prefix: str, suffix: str) -> bool:
    return bool(_pattern(prefix, suffix).match(name))


def sweep(parent: Path, prefix: str, suffix: str) -> list[Path]:
    """Remove the leftovers of killed runs in ``parent``; returns what was removed."""
    pattern = _pattern(prefix, suffix)
    unlocked = _pattern(prefix, suffix + _NEW)
    removed: list[Path] = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    now = time.time()
    for name in names:
        young_ok = bool(pattern.match(name))
        if not young_ok and not unlocked.match(name):
            continue
        path = parent / name
        try:
            st = path.lstat()
            if not young_ok and now - st.st_mtime < _MIN_AGE_S or path.is_symlink():
                continue
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # alive: another run is using it
        try:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


@contextmanager
def scratch_dir(parent: Path, prefix: str, suffix: str = "") -> Iterator[Path]:
    """A locked temporary directory in ``parent``, removed on exit (unless renamed away)."""
    parent.mkdir(parents=True, exist_ok=True)
    sweep(parent, prefix, suffix)
    new = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix + _NEW, dir=parent))
    fd = os.open(new, os.O_RDONLY)
    path = new.with_name(new.name[: -len(_NEW)])
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(new, path)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(new, ignore_errors=True)  # the rename never happened
        os.close(fd)


@contextmanager
def scratch_file(parent: Path, prefix: str, suffix: str = "") -> Iterator[tuple[IO[bytes], Path]]:
    """A locked temporary file in ``parent``, open for writing; removed on exit unless renamed."""
    sweep(parent, prefix, suffix)
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix + _NEW, dir=parent)
    path = Path(name[: -len(_NEW)])
    f = os.fdopen(fd, "wb")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        os.rename(name, path)
        yield f, path
    finally:
        f.close()
        # Renamed into place on success: only a file still under the scratch name is ours.
        if path.exists() and is_scratch(path.name, prefix, suffix):
            path.unlink(missing_ok=True)


@contextmanager
def exclusive(directory: Path) -> Iterator[None]:
    """Serialise runs that replace entries of ``directory`` (two pulls into one destination).

    The lock is taken on the directory itself, so nothing is left behind to clean up.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
