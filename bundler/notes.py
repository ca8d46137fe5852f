"""The library's one channel for notes (a retry, a fallback).

The library never prints. The CLI asks for each note as one ``note: ...`` line on stderr; a
program using the library gets them through the ``bundler`` logger (Python's last-resort
handler prints warnings to stderr when nothing is configured) and silences them like any logger.
``logging`` is imported only when a note is made outside the CLI: a command's start-up pays nothing.
"""

from __future__ import annotations

import sys

_on_stderr = False


def note(text: str) -> None:
    if _on_stderr:
        print(f"note: {text}", file=sys.stderr)
        return
    import logging

    logging.getLogger("bundler").warning(text)


def print_notes_on_stderr() -> None:
    """What the CLI does: each note as one ``note:`` line on stderr."""
    global _on_stderr
    _on_stderr = True
