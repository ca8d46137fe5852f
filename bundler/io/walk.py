"""``os.walk`` without recursion: Python 3.11's recurses once per directory level, so a tree
1,000 directories deep (a hostile clone, a runaway symlink farm copied flat) is a RecursionError."""

from __future__ import annotations

import os
from typing import Callable, Iterator


def walk(top: str | os.PathLike[str], onerror: Callable[[OSError], None] | None = None) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(top, onerror=onerror)``: top-down, links to directories not followed, and the
    caller may prune ``dirnames`` in place. Iterative, so any depth works."""
    stack = [os.fspath(top)]
    while stack:
        path = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError as e:
            if onerror is not None:
                onerror(e)
            continue
        dirs: list[str] = []
        files: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry.name)
        yield path, dirs, files
        # reversed: popped in the order os.walk visits them
        stack.extend(os.path.join(path, d) for d in reversed(dirs))
