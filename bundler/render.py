"""Human output: rich tables for the CLI (imported only when a table is printed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from .manifest import Manifest
from .units import human_size

if TYPE_CHECKING:  # the scanner costs ~30 ms to import; inspect, pull and diff never need it
    from .introspect import ScanResult


def _console() -> Console:
    import sys

    # Piped output (CI logs, grep) should not be cut to 80 columns.
    # markup=False: every string shown is the user's text, literally (`uvicorn[standard]`, `[a-z]`).
    return Console(highlight=False, markup=False, width=None if sys.stdout.isatty() else 160)


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
        for u in svc.undeclared:
            extras.append(f"undeclared: {u['id']} loaded by {u['call']}() at {u['file']}:{u['line']}")
        for line in extras:
            console.print(f"  {line}")


def inspect_table(m: Manifest, report=None) -> None:
    console = _console()
    d = m.data
    console.print(f"{m.name} {m.version}", style="bold")
    console.print(f"  digest      {m.digest}")
    console.print(f"  entrypoint  {d.get('entrypoint')}")
    if d.get("python"):
        console.print(f"  python      {d['python']}")
    src = d.get("sources", [])  # the raw entries: no object per file just to count them
    console.print(f"  sources     {len(src)} files, {human_size(sum(f['size'] for f in src))}")
    if d.get("requirements"):
        console.print(f"  requires    {', '.join(d['requirements'])}")
    if env := m.environment:
        embedded = f", {len(env['wheels'])} files embedded" if env.get("wheels") else ""
        console.print(f"  environment Python {env['python']} on {env['platform']}: {len(env['packages'])} locked packages{embedded} (src/{env['lock']})")
        console.print("  packages    " + ", ".join(f"{n} {v}" for n, v in env["packages"].items()), soft_wrap=False)
    for key, origin in (d.get("settings") or {}).items():
        console.print(f"  setting     {key}: from {origin}")
    for key, value in (d.get("arguments") or {}).items():
        console.print(f"  argument    {key}={value!r}")
    services = Table(title="services", title_justify="left")
    for col in ("service", "class", "resources", "depends", "models"):
        services.add_column(col, overflow="fold")
    for s in d.get("services", []):
        services.add_row(
            s["name"],
            f"{s['module']}:{s['class']}",
            ", ".join(f"{k}={v}" for k, v in s.get("resources", {}).items()) or "-",
            ", ".join(s.get("depends", [])) or "-",
            ", ".join(x["attribute"] for x in s.get("models", [])) or "-",
        )
    console.print(services)
    models = Table(title="models", title_justify="left")
    for col in ("source", "id", "revision", "pinned", "files", "size"):
        models.add_column(col, overflow="fold")
    for p in m.pins:
        models.add_row(
            p.source, p.id if p.hub_id is None else f"{p.id} (Hub: {p.hub_id})", p.revision or "-", p.short, str(len(p.files)), human_size(p.size)
        )
    console.print(models)
    if report is not None:
        if report.ok:
            console.print(f"verified: {report.checked} members match the manifest", style="green")
        else:
            console.print(
                f"verification failed: {len(report.missing)} missing, {len(report.modified)} modified, "
                f"{len(report.extra)} extra",
                style="red",
            )


class PullProgress:
    """Per-file progress for pulls: a rich bar on a terminal, plain lines otherwise (stderr)."""

    def __init__(self, enabled: bool = True) -> None:
        import sys

        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._bar = None

    def __enter__(self) -> "PullProgress":
        if self.enabled and self.tty:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("pulling", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, event: str, pin, entry) -> None:
        import sys

        if not self.enabled:
            return
        if self._bar is not None:
            if event in ("done", "cached"):
                self._bar.update(self._task, advance=entry.size, description=f"{pin.id} {entry.path}")
            return
        if event in ("done", "failed"):
            word = "fetched" if event == "done" else "FAILED "
            print(f"{word} {pin.id}@{(pin.commit or '')[:12]} {entry.path} ({human_size(entry.size)})", file=sys.stderr)
