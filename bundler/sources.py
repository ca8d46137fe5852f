"""The service's project on disk: its root, `[tool.bundler]` settings, source files, requirements."""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .pins import safe_name

# Never part of a bundle: VCS data, environments, caches, build outputs.
DEFAULT_EXCLUDE_DIRS = {
    ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "__pycache__", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", "node_modules", "build", "dist", ".eggs",
    ".idea", ".vscode", ".hypothesis",
}
DEFAULT_EXCLUDE_FILES = ["*.pyc", "*.pyo", "*.bundle.tar", "*.bundle.tar.gz", ".DS_Store", "*.swp", "*~"]


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    name: str | None = None
    version: str | None = None
    service: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    python: str | None = None


def find_root(service_file: Path, fallback: Path) -> Path:
    """The nearest directory above the service holding ``pyproject.toml``, else ``fallback``."""
    here = service_file.resolve().parent
    for d in (here, *here.parents):
        if (d / "pyproject.toml").is_file():
            return d
        if (d / ".git").exists():
            break
    return fallback


def load_config(root: Path) -> ProjectConfig:
    pyproject = root / "pyproject.toml"
    data: dict[str, Any] = {}
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"{_shown(pyproject)}: not valid TOML: {e}", hint="fix pyproject.toml") from None
    project = data.get("project", {}) if isinstance(data.get("project"), dict) else {}
    tool = data.get("tool", {}).get("bundler", {}) if isinstance(data.get("tool"), dict) else {}
    if not isinstance(tool, dict):
        raise UsageError(f"{_shown(pyproject)}: [tool.bundler] must be a table")

    def strings(key: str) -> tuple[str, ...]:
        value = tool.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{_shown(pyproject)}: [tool.bundler] {key} must be a list of strings")
        return tuple(value)

    for key in ("name", "version", "service"):
        if key in tool and not isinstance(tool[key], str):
            raise UsageError(f"{_shown(pyproject)}: [tool.bundler] {key} must be a string")
    unknown = set(tool) - {"name", "version", "service", "include", "exclude"}
    if unknown:
        raise UsageError(
            f"{_shown(pyproject)}: unknown [tool.bundler] setting(s): {', '.join(sorted(unknown))}",
            hint="known: name, version, service, include, exclude",
        )

    if "version" in tool:
        try:
            safe_name(tool["version"], "version")
        except ValueError as e:
            raise UsageError(f"{_shown(pyproject)}: [tool.bundler] {e}", hint='a version names a file: e.g. version = "1.2.0"') from None

    requirements: tuple[str, ...] = ()
    if isinstance(project.get("dependencies"), list):
        requirements = tuple(str(r) for r in project["dependencies"])
    elif (root / "requirements.txt").is_file():
        lines = (root / "requirements.txt").read_text(encoding="utf-8").splitlines()
        requirements = tuple(s for line in lines if (s := line.split(" #", 1)[0].strip()) and not s.startswith("#"))
    name = tool.get("name") or project.get("name")
    return ProjectConfig(
        root=root,
        name=_normalise_name(name) if isinstance(name, str) else None,
        version=tool.get("version"),
        service=tool.get("service"),
        include=strings("include"),
        exclude=strings("exclude"),
        requirements=requirements,
        python=project.get("requires-python") if isinstance(project.get("requires-python"), str) else None,
    )


def _normalise_name(name: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", name.strip().lower()).strip("-.") or "bundle"


def default_name(root: Path) -> str:
    return _normalise_name(root.name)


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _matches(rel: str, patterns: tuple[str, ...] | list[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    for pat in patterns:
        pat = pat.rstrip("/")
        if fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(name, pat):
            return True
        # "dir/**" or "dir" excludes everything under dir
        base = pat[:-3] if pat.endswith("/**") else pat
        if rel.startswith(base + "/"):
            return True
        if pat.startswith("**/") and _matches(rel, [pat[3:]]):
            return True
    return False


def collect_sources(config: ProjectConfig, skip: tuple[Path, ...] = ()) -> list[tuple[str, Path]]:
    """(archive-relative path, file) for every source file, sorted by path.

    Symbolic links are followed only when they stay inside the project; one pointing outside is
    an error, since what it points to would differ from machine to machine.
    """
    from .scratch import is_scratch

    root = config.root.resolve()
    skipped = {p.resolve() for p in skip}
    # A killed build's partial output beside an output inside the project is never a source.
    scratch = [f".{p.name}." for p in skip]
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            full = here / d
            rel = full.relative_to(root).as_posix()
            if d in DEFAULT_EXCLUDE_DIRS or d.endswith(".egg-info") or (full / "pyvenv.cfg").exists():
                continue
            if _matches(rel, config.exclude):
                continue
            if full.is_symlink():
                _inside(full, root)  # raises when it escapes; inside, its files are already here
                continue
            keep.append(d)
        dirnames[:] = keep
        for fn in sorted(filenames):
            full = here / fn
            rel = full.relative_to(root).as_posix()
            if _matches(rel, DEFAULT_EXCLUDE_FILES) or _matches(rel, config.exclude):
                continue
            if config.include and not _matches(rel, config.include) and fn != "bundler.lock":
                continue
            if skipped and (full.resolve() in skipped or any(is_scratch(fn, pre, ".tmp") for pre in scratch)):
                continue
            if full.is_symlink():
                target = _inside(full, root)
                if not target.is_file():
                    raise UsageError(f"{_shown(full)}: symbolic link to something that is not a file", hint="replace it with the file")
                full = target
            elif not full.is_file():
                continue  # sockets, fifos: not source
            out.append((rel, full))
    out.sort(key=lambda t: t[0])
    return out


def _inside(link: Path, root: Path) -> Path:
    target = link.resolve()
    if target != root and root not in target.parents:
        raise UsageError(
            f"{_shown(link)}: symbolic link points outside the project ({target})",
            hint="copy the file into the project, or exclude the link in [tool.bundler] exclude",
        )
    return target
