"""Human output: rich tables for the CLI (imported only when a table is printed)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .introspect import ScanResult


def _console() -> Console:
    import sys

    # Piped output (CI logs, grep) should not be cut to 80 columns.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def scan_table(result: ScanResult) -> None:
    console = _console()
    if not result.services:
        console.print("no services found", style="yellow")
        return
    for svc in result.services:
        title = f"{svc.name}  ({svc.file}:{svc.line})"
        table = Table(title=title, title_justify="left", show_lines=False)
        for col in ("attribute", "kind", "id", "revision", "include", "exclude", "line"):
            table.add_column(col, overflow="fold")
        for m in svc.models:
            table.add_row(
                m.attribute,
                m.kind,
                m.id,
                m.revision or "-",
                ", ".join(m.include) if m.include else "-",
                ", ".join(m.exclude) if m.exclude else "-",
                f"{m.file}:{m.line}",
            )
        console.print(table)
        extras = []
        if svc.resources:
            extras.append("resources: " + ", ".join(f"{k}={v}" for k, v in svc.resources.items()))
        if svc.depends:
            extras.append("depends on: " + ", ".join(svc.depends))
        for line in extras:
            console.print(f"  {line}")
