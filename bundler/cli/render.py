"""Human output: plain aligned tables for the CLI, and a progress bar for pulls on a terminal.

Tables are plain text (two spaces between columns, never cut or folded): piped into a CI log
or grep they read the same as on a terminal, and printing one does not import rich, which is
about 60 ms of every ``inspect``. Rich draws only the live progress bar of ``pull``.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any, Sequence

from .. import kinds
from ..bundle.manifest import Manifest
from ..units import human_size

if TYPE_CHECKING:  # the scanner costs ~30 ms to import; inspect, pull and diff never need it
    from ..bundle.archive import VerifyReport
    from ..introspect import ScanResult
    from ..model.pins import FileEntry, Pin

# C0 and C1 controls, DEL and the bidi overrides: a hostile bundle's strings must not move the
# cursor, clear the screen or reorder what the user reads.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_STYLES = {"bold": "1", "green": "32", "red": "31", "yellow": "33"}


def shown(text: object, lines: bool = False) -> str:
    """``text`` with every control character written as its escape, for printing; ``lines``:
    newlines stay (an error message of several lines)."""
    if lines:
        return "\n".join(_CONTROL.sub(_escape, part) for part in str(text).split("\n"))
    return _CONTROL.sub(_escape, str(text))


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def _say(text: str, style: str | None = None) -> None:
    """One line to stdout; styled only on a colour terminal (``NO_COLOR`` is respected)."""
    from ..settings import color

    if style and sys.stdout.isatty() and color():
        text = f"\x1b[{_STYLES[style]}m{text}\x1b[0m"
    print(text)


def _width(text: str) -> int:
    """Terminal columns: a wide East Asian character (a CJK class name) takes two."""
    if text.isascii():
        return len(text)
    from unicodedata import east_asian_width

    return sum(2 if east_asian_width(c) in "WF" else 1 for c in text)


def _table(title: str, columns: Sequence[str], rows: list[Sequence[object]], indent: str = "  ") -> None:
    cells = [[shown(c) for c in row] for row in rows]
    widths = [max([len(col), *(_width(r[i]) for r in cells)]) for i, col in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return indent + "  ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths)).rstrip()

    _say(shown(title), "bold")
    if not cells:
        print(f"{indent}none")
        return
    _say(line(columns), "bold")
    for r in cells:
        print(line(r))


def scan_table(result: ScanResult) -> None:
    from ..introspect.scanner import undeclared_label

    if not result.services:
        _say("no services found", "yellow")
        return
    for n, svc in enumerate(result.services):
        if n:
            print()
        rows: list[Sequence[object]] = [
            (
                m.attribute,
                m.kind,
                m.id,
                m.revision or "-",
                ", ".join(m.include) if m.include else "-",
                ", ".join(m.exclude) if m.exclude else "-",
                f"{m.file}:{m.line}",
            )
            for m in svc.models
        ]
        _table(f"{svc.name}  ({svc.file}:{svc.line})", ("attribute", "kind", "id", "revision", "include", "exclude", "line"), rows)
        if svc.resources:
            print(shown("  resources: " + ", ".join(f"{k}={v}" for k, v in svc.resources.items())))
        if svc.depends:
            print(shown("  depends on: " + ", ".join(svc.depends)))
        for u in svc.undeclared:
            print(shown(f"  undeclared: {undeclared_label(u)} loaded by {u['call']}() at {u['file']}:{u['line']}"))


def inspect_table(m: Manifest, report: VerifyReport | None = None) -> None:
    _say(shown(f"{m.name} {m.version}"), "bold")
    for text in _summary(m):
        print(shown(text))
    print()
    _table(
        "services",
        ("service", "class", "resources", "depends", "models"),
        [
            (
                s.name,
                f"{s.module}:{s.cls}",
                ", ".join(f"{k}={v}" for k, v in s.resources.items()) or "-",
                ", ".join(s.depends) or "-",
                ", ".join(x.attribute for x in s.models) or "-",
            )
            for s in m.services
        ],
    )
    print()
    carried = {p.key: True for p in m.embedded_hub}
    _table(
        "models",
        ("source", "id", "revision", "pinned", "files", "size", "embedded"),
        [
            (p.source, (p.id if p.hub_id is None else f"{p.id} (Hub: {p.hub_id})") + (f" (for {p.required_by})" if p.required_by else ""),
             p.revision or ("main" if kinds.of(p).hub else "-"), p.short, len(p.files), human_size(p.size),
             "yes" if not kinds.of(p).hub or carried.get(p.key) else "no")
            for p in m.pins
        ],
    )
    for line in _formats(m):
        print(shown(line))
    if report is not None:
        if report.ok:
            _say(f"verified: {report.checked} members match the manifest", "green")
        else:
            _say(
                f"verification failed: {len(report.missing)} missing, {len(report.modified)} modified, "
                f"{len(report.extra)} extra",
                "red",
            )


def _formats(m: Manifest) -> list[str]:
    """One line per model whose carried files' formats the build read from their bytes."""
    from ..io.formats import RUNS_CODE

    lines = []
    for model, p in zip(m.data.get("models", []), m.pins):
        counts: dict[str, int] = {}
        for f in model.get("files", []):
            if "format" in f:
                counts[f["format"]] = counts.get(f["format"], 0) + 1
        if counts:
            parts = [f"{k} {n}" + (" (runs code when loaded)" if k in RUNS_CODE else "") for k, n in sorted(counts.items())]
            lines.append(f"  formats  {p.label}: " + ", ".join(parts))
    return lines


def _summary(m: Manifest) -> list[str]:
    """The lines above the tables: digest, entry point, sources, environment, settings, arguments."""
    lines = [f"  digest      {m.digest}", f"  entrypoint  {m.entrypoint}"]
    if m.python:
        lines.append(f"  python      {m.python}")
    count, size = m.sources_total
    lines.append(f"  sources     {count} files, {human_size(size)}")
    if m.requirements:
        lines.append(f"  requires    {', '.join(m.requirements)}")
    if env := m.environment:
        embedded = f", {len(env.wheels)} files embedded" if env.wheels else ""
        lines.append(f"  environment {env.target}: {len(env.packages)} locked packages{embedded} (src/{env.lock})")
        import textwrap

        # wrapped at a terminal's width: a real environment lists hundreds of packages
        wrapped = textwrap.wrap(", ".join(f"{n}\0{v}" for n, v in env.packages.items()), width=100,
                                initial_indent="  packages    ", subsequent_indent=" " * 14, break_on_hyphens=False)
        lines += [w.replace("\0", " ") for w in wrapped]  # a name and its version stay on one line
    for key, origin in m.settings.items():
        lines.append(f"  setting     {key}: from {origin}")
    origins = m.argument_origins
    for key, value in m.arguments.items():
        lines.append(f"  argument    {key}={value!r} (from {origins.get(key, 'given')})")
    return lines


class PullProgress:
    """Per-file progress for pulls: a rich bar on a terminal, plain lines otherwise (stderr)."""

    def __init__(self, enabled: bool = True) -> None:
        import sys

        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._bar: Any = None

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

    def __call__(self, event: str, pin: Pin, entry: FileEntry) -> None:
        import sys

        if not self.enabled:
            return
        if self._bar is not None:
            if event in ("done", "cached"):
                self._bar.update(self._task, advance=entry.size, description=f"{pin.id} {entry.path}")
            return
        if event in ("done", "failed"):
            word = "fetched" if event == "done" else "FAILED "
            print(shown(f"{word} {pin.id}@{(pin.commit or '')[:12]} {entry.path} ({human_size(entry.size)})"), file=sys.stderr)
