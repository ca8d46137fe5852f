"""``os.walk`` without recursion: Python 3.11's recurses once per directory level, so a tree
1,000 directories deep (a hostile clone, a runaway symlink farm copied flat) is a RecursionError."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator


def walk(top: str | os.PathLike[str], onerror: Callable[[OSError], None] | None = None, kinds: bool = False) -> Iterator[tuple[str, list[str], list[Any]]]:
    """``os.walk(top, onerror=onerror)``: top-down, links to directories not followed, and the
    caller may prune ``dirnames`` in place. Iterative, so any depth works. With ``kinds``, each
    file comes as ``(name, "file" | "other")``, read from the listing (no stat per file): "other"
    is a link or something that is not a regular file."""
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
        files: list[Any] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                dirs.append(entry.name)
            elif kinds:
                try:
                    regular = entry.is_file(follow_symlinks=False)
                except OSError:
                    regular = False
                files.append((entry.name, "file" if regular else "other"))
            else:
                files.append(entry.name)
        yield path, dirs, files
        # reversed: popped in the order os.walk visits them
        stack.extend(os.path.join(path, d) for d in reversed(dirs))
