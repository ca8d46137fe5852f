"""The one exception hierarchy: every error knows its location, a hint and its exit code."""

from __future__ import annotations

from pathlib import Path

#: Exit codes are a contract (DESIGN.md): CI pipelines branch on them.
EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2


class BundlerError(Exception):
    """Base of every error bundler raises on purpose.

    The CLI renders it as one line ``file:line: message`` followed by the hint, and exits with
    ``exit_code``; nothing else escapes as a traceback.
    """

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.hint = hint

    @property
    def location(self) -> str | None:
        if self.file is None:
            return None
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        loc = self.location
        return f"{loc}: {self.message}" if loc else self.message


class UsageError(BundlerError):
    """Bad input or usage: missing file, wrong argument."""


class IntrospectionError(BundlerError):
    """The service source can't be read or understood statically."""


class DynamicValueError(IntrospectionError):
    """A descriptor argument whose value is only known at run time."""


class ProblemFound(BundlerError):
    """The command ran and found a problem (stale lock, verification failure)."""

    exit_code = EXIT_PROBLEM


class NotInBundleError(BundlerError):
    """A runtime feature that needs a bundle or a later capability."""
