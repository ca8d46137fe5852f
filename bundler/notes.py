"""The library's one channel for notes (a retry, a fallback): the ``bundler`` logger.

The library never prints. The CLI installs a handler that prints ``note: ...`` on stderr; a
program using the library sees them through logging (Python's last-resort handler prints
warnings to stderr when nothing is configured) or silences them like any logger.
"""

from __future__ import annotations

import logging

LOG = logging.getLogger("bundler")


def note(text: str) -> None:
    LOG.warning(text)


def print_notes_on_stderr() -> None:
    """What the CLI does: each note as one ``note:`` line on stderr."""
    import sys

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("note: %(message)s"))
    LOG.handlers[:] = [handler]
    LOG.propagate = False
