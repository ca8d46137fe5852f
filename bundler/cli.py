"""The ``bundler`` command: thin typer commands over the library; errors rendered once, here."""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any, Optional

import typer

from . import __version__
from .errors import BundlerError

app = typer.Typer(
    name="bundler",
    help="Package ML model services into reproducible, deployable bundles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
_debug = False


def _version(value: bool) -> None:
    if value:
        print(f"bundler {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback on errors."),
) -> None:
    global _debug
    _debug = debug


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def render_error(e: BundlerError) -> None:
    print(f"error: {e}", file=sys.stderr)
    if e.hint:
        print(f"hint: {e.hint}", file=sys.stderr)


@app.command()
def scan(
    target: str = typer.Argument(..., metavar="PATH", help="The service file, optionally file.py:ClassName."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Find services and the models they declare, reading the source only (no import, no network)."""
    from .introspect import scan as do_scan, split_target

    path, only = split_target(target)
    result = do_scan(path, only)
    if as_json:
        emit_json(result.to_json())
        return
    from .render import scan_table

    scan_table(result)


def main() -> None:
    try:
        app()
    except BundlerError as e:
        if _debug:
            traceback.print_exc()
        render_error(e)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
