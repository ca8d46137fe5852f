"""The command line: typer commands (``app``) over the library, and how results are shown (``render``)."""

from .app import main

__all__ = ["main"]
