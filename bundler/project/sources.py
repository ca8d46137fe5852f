"""The service's project on disk: its root, `[tool.bundler]` settings, source files, requirements."""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.walk import walk
from ..errors import UsageError
from ..model.pins import safe_name

# Never part of a bundle: VCS data, environments, caches, build outputs.
DEFAULT_EXCLUDE_DIRS = {
    ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "__pycache__", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", "node_modules", "build", "dist", ".eggs",
    ".idea", ".vscode", ".hypothesis",
}
DEFAULT_EXCLUDE_FILES = ["*.pyc", "*.pyo", "*.bundle.tar", "*.bundle.tar.gz", "*.bundle.tar.zst", ".DS_Store", "*.swp", "*~"]


# Never packed, whatever the include rules say: files whose whole purpose is a credential.
CREDENTIAL_NAMES = {".netrc", "_netrc", ".pypirc", ".git-credentials", ".npmrc", ".dockercfg", "credentials.json"}
CREDENTIAL_PATTERNS = ["*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*"]
CREDENTIAL_PATHS = [".aws/credentials", ".docker/config.json", "huggingface/token", ".huggingface/token", ".cache/huggingface/token", "hf_token"]
IGNORE_FILES = (".gitignore", ".bentoignore", ".bundlerignore")  # later files win over earlier ones
ALWAYS = {"bundler.lock", "pylock.toml"}  # the pins: packed wherever they are, whatever the rules say


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    name: str | None = None
    version: str | None = None
    service: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    python: str | None = None  # ``requires-python``
    python_target: str | None = None  # the Python the project names (MAJOR.MINOR); None: from requires-python
    no_pickle: bool = False  # [tool.bundler] weights = "no-pickle": pickle-format weights are refused
    origins: dict[str, str] = field(default_factory=dict)  # setting -> the file it came from
    arguments: dict[str, Any] = field(default_factory=dict)  # bentofile `args`
    #: [tool.bundler.repos."org/name"]: the include/exclude patterns of a repository the models
    #: load by themselves (lowercase id -> (include, exclude)); without one it takes its parent's
    repos: dict[str, tuple[tuple[str, ...] | None, tuple[str, ...] | None]] = field(default_factory=dict)


def find_root(service_file: Path, fallback: Path) -> Path:
    """The nearest directory above the service holding ``pyproject.toml``, else ``fallback``."""
    here = service_file.resolve().parent
    for d in (here, *here.parents):
        if (d / "pyproject.toml").is_file():
            return d
        if (d / ".git").exists():
            break
    return fallback


def load_config(root: Path, service_file: Path | None = None) -> ProjectConfig:
    """The project's settings: ``[tool.bundler]`` first, then BentoML's build settings
    (``bentofile.yaml`` or ``[tool.bentoml.build]``), then ``[project]``."""
    from . import bentofile

    pyproject = root / "pyproject.toml"
    data = _pyproject(pyproject)
    project = data.get("project", {}) if isinstance(data.get("project"), dict) else {}
    tool = _tool_settings(data, pyproject)

    def strings(key: str) -> tuple[str, ...]:
        value = tool.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{_shown(pyproject)}: [tool.bundler] {key} must be a list of strings")
        return tuple(value)

    bento = bentofile.find(service_file or root / "service.py", root)
    here = "pyproject.toml [tool.bundler]"
    there = _rel(bento.path, root) if bento.path else ""
    origins: dict[str, str] = {}

    def pick(key: str, mine: Any, theirs: Any) -> Any:
        if mine:
            origins[key] = here
            return mine
        if theirs:
            origins[key] = there
            return theirs
        return mine

    name = pick("name", tool.get("name"), bento.name)
    if not name and isinstance(project.get("name"), str) and project["name"].strip():
        name, origins["name"] = project["name"], "pyproject.toml [project]"
    requirements = _requirements(root, project, bento, there, origins)  # before the rest: origins keep this order
    python_target = _python_target(root, tool.get("python"), bento.python_version, there, origins)
    return ProjectConfig(
        root=root,
        python_target=python_target,
        no_pickle=tool.get("weights") == "no-pickle",
        name=_normalise_name(name) if isinstance(name, str) else None,
        version=tool.get("version"),
        service=pick("service", tool.get("service"), bento.service),
        include=pick("include", strings("include"), bento.include) or (),
        exclude=pick("exclude", strings("exclude"), bento.exclude) or (),
        requirements=requirements,
        python=project.get("requires-python") if isinstance(project.get("requires-python"), str) else None,
        origins=origins,
        arguments=dict(bento.args),
        repos=_repo_patterns(tool.get("repos", {}), pyproject),
    )


def _repo_patterns(table: Any, pyproject: Path) -> dict[str, tuple[tuple[str, ...] | None, tuple[str, ...] | None]]:
    """``[tool.bundler.repos."org/name"]`` tables: ``include`` / ``exclude`` for a repository
    pinned because a model loads it (an adapter's base model, remote code)."""
    from ..model.pins import REPO_ID, normalise_patterns

    where = f"{_shown(pyproject)}: [tool.bundler.repos"
    if not isinstance(table, dict):
        raise UsageError(f"{where}] must be a table of repositories", hint='e.g. [tool.bundler.repos."org/base-model"] include = ["*.safetensors", "*.json"]')
    out: dict[str, tuple[tuple[str, ...] | None, tuple[str, ...] | None]] = {}
    for repo, value in table.items():
        if not REPO_ID.match(repo) or "/" not in repo:
            raise UsageError(f"{where}] {repo!r} is not a repository id like 'org/name'")
        if not isinstance(value, dict) or not value or set(value) - {"include", "exclude"}:
            raise UsageError(f'{where}."{repo}"] takes include and exclude only', hint='e.g. include = ["*.safetensors", "*.json"]')
        try:
            include, exclude = (normalise_patterns(value.get(k), k) for k in ("include", "exclude"))
        except ValueError as e:
            raise UsageError(f'{where}."{repo}"] {e}') from None
        out[repo.lower()] = (tuple(include) if include is not None else None, tuple(exclude) if exclude is not None else None)
    return out


def _pyproject(pyproject: Path) -> dict[str, Any]:
    """``pyproject.toml`` parsed (empty when there is none); exit 2 naming it when it is broken."""
    from ..io.safe_read import read_regular

    if not pyproject.is_file():
        return {}
    try:
        return tomllib.loads(read_regular(pyproject, 4 << 20).decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{_shown(pyproject)}: not valid TOML: {e}", hint="fix pyproject.toml") from None
    except RecursionError:
        raise UsageError(f"{_shown(pyproject)}: nested too deeply", hint="fix pyproject.toml") from None


def _tool_settings(data: dict[str, Any], pyproject: Path) -> dict[str, Any]:
    """``[tool.bundler]``, every key known and of its type."""
    tool = data.get("tool", {}).get("bundler", {}) if isinstance(data.get("tool"), dict) else {}
    if not isinstance(tool, dict):
        raise UsageError(f"{_shown(pyproject)}: [tool.bundler] must be a table")
    for key in ("name", "version", "service", "python", "weights"):
        if key in tool and not isinstance(tool[key], str):
            raise UsageError(f"{_shown(pyproject)}: [tool.bundler] {key} must be a string")
    unknown = set(tool) - {"name", "version", "service", "include", "exclude", "python", "weights", "repos"}
    if unknown:
        raise UsageError(
            f"{_shown(pyproject)}: unknown [tool.bundler] setting(s): {', '.join(sorted(unknown))}",
            hint="known: name, version, service, include, exclude, python, weights, repos",
        )
    if tool.get("weights", "any") not in ("any", "no-pickle"):
        raise UsageError(f"{_shown(pyproject)}: [tool.bundler] weights must be \"any\" or \"no-pickle\"")
    if "version" in tool:
        try:
            safe_name(tool["version"], "version")
        except ValueError as e:
            raise UsageError(f"{_shown(pyproject)}: [tool.bundler] {e}", hint='a version names a file: e.g. version = "1.2.0"') from None
    return tool


def _requirements(root: Path, project: dict[str, Any], bento: Any, there: str, origins: dict[str, str]) -> tuple[str, ...]:
    """The project's Python requirements: ``[project] dependencies``, else the bentofile's
    packages, else its requirements file (inside the project), else ``requirements.txt``."""
    from ..io.safe_read import read_regular

    if isinstance(project.get("dependencies"), list):
        origins["requirements"] = "pyproject.toml [project]"
        return tuple(str(r) for r in project["dependencies"])
    if bento.packages:
        origins["requirements"] = there
        return tuple(bento.packages)
    req_file = root / (bento.requirements_txt or "requirements.txt")
    if bento.requirements_txt:
        req_file = (bento.path.parent if bento.path else root) / bento.requirements_txt
        _inside_project(req_file, root, f"{there}: python.requirements_txt {bento.requirements_txt!r}")
    if not req_file.is_file():
        return ()
    try:
        lines = read_regular(req_file, 4 << 20).decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UsageError(f"{_shown(req_file)}: not UTF-8 ({e})", hint="save it as UTF-8") from None
    origins["requirements"] = _rel(req_file, root)
    return tuple(s for line in lines if (s := line.split(" #", 1)[0].strip()) and not s.startswith("#"))


def _python_target(root: Path, mine: str | None, theirs: str | None, there: str, origins: dict[str, str]) -> str | None:
    """The Python the project names, first found: ``[tool.bundler] python``, BentoML's
    (``python.version`` / ``docker.python_version``), ``.python-version``; as MAJOR.MINOR."""
    from ..env.lock import check_target
    from ..io.safe_read import read_regular

    found: list[tuple[str, str]] = []
    if mine:
        found.append((mine, "pyproject.toml [tool.bundler]"))
    if theirs:
        found.append((theirs, there))
    pinned = root / ".python-version"
    if pinned.is_file():
        words = read_regular(pinned, 4096).decode("utf-8", "replace").split()
        if words:
            found.append((words[0], ".python-version"))
    if not found:
        return None
    value, origin = found[0]
    m = re.match(r"(?:cpython-|python)?(3\.\d{1,2})(?:\.\d+)?[a-z0-9]*\Z", value.strip())
    target = m.group(1) if m else value
    try:
        check_target(target, "linux")
    except ValueError as e:
        raise UsageError(f"{_shown(root / origin.split(' ')[0])}: {e}", hint='name a Python like "3.11"') from None
    origins["python"] = origin
    return target


def python_choice(config: ProjectConfig, image_python: str | None, service: str) -> tuple[str | None, str | None]:
    """(the target Python, where it came from): what the project names, where the service's
    ``image=Image(python_version=...)`` ranks beside the bentofile's, above ``.python-version``."""
    origin = config.origins.get("python")
    if image_python and (config.python_target is None or origin == ".python-version"):
        m = re.match(r"(3\.\d{1,2})(?:\.\d+)?\Z", image_python.strip())
        if m:
            return m.group(1), f"{service} image python_version"
    return config.python_target, origin


def named_target(directory: Path) -> str:
    """The service the project in ``directory`` names, as ``path/file.py:Class``: ``[tool.bundler]
    service`` (relative to the project), else BentoML's ``service`` (``bentofile.yaml`` or
    ``[tool.bentoml.build]``, relative to the file that names it; ``module:Class`` or
    ``file.py:Class``). None named is exit 2 saying where to name it."""
    root = directory.resolve()
    config = load_config(root)
    spec = config.service
    if not spec:
        raise UsageError(
            f"{_shown(directory)}: the project names no service",
            hint='name it: [tool.bundler] service = "service.py:Class" in pyproject.toml (or `service:` in bentofile.yaml), or pass the file: bundler build service.py',
        )
    origin = config.origins.get("service", "")
    base = root if origin.startswith("pyproject.toml [tool.bundler]") else (root / origin.split(" ")[0]).parent
    head, sep, cls = spec.rpartition(":")
    if not sep:
        head, cls = spec, ""
    if head.endswith(".py") or "/" in head:
        file = base / head
    else:
        parts = head.split(".")
        file = base.joinpath(*parts).with_suffix(".py")
        if not file.is_file() and base.joinpath(*parts, "__init__.py").is_file():
            file = base.joinpath(*parts, "__init__.py")
    if not file.resolve().is_relative_to(root):
        raise UsageError(f"{_shown(directory)}: the service {spec!r} named by {origin} is outside the project",
                         hint="name a service file inside the project")
    if not file.is_file():
        raise UsageError(f"{_shown(directory)}: the service {spec!r} named by {origin} is not a file here ({_shown(file)})",
                         hint="fix the setting, or pass the service file")
    return f"{file}:{cls}" if cls else str(file)


def _inside_project(path: Path, root: Path, what: str) -> None:
    """A file a setting names must be the project's own (a cloned repository's settings are
    input): refused before it is read, naming the setting, never quoting the file."""
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside:
        raise UsageError(f"{what} is outside the project ({_shown(root)}); it was not read",
                         hint="name a file inside the project")


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _normalise_name(name: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", name.strip().lower()).strip("-.") or "bundle"


def default_name(service_name: str) -> str:
    """The bundle name when no setting gives one: the entry service's name, never a directory's."""
    return _normalise_name(service_name)


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _matches(rel: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Does a project path match one of ``patterns``: the whole path or its file name (glob),
    everything under ``dir`` / ``dir/**``, ``**/p`` at any depth? One compiled regex per
    pattern list: 20,000 sources with ten patterns would otherwise be 400,000 fnmatch calls."""
    if not patterns:
        return False
    whole, name = _matcher(tuple(patterns))
    return bool(whole.match(rel) or name.match(rel.rsplit("/", 1)[-1]))


@functools.lru_cache(maxsize=64)
def _matcher(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    whole: list[str] = []
    names: list[str] = []
    for pat in patterns:
        pat = pat.rstrip("/")
        while True:
            glob = fnmatch.translate(pat)
            whole.append(glob)
            names.append(glob)
            base = pat[:-3] if pat.endswith("/**") else pat
            whole.append(re.escape(base + "/"))  # a prefix: everything under it
            if not pat.startswith("**/"):
                break
            pat = pat[3:]
    return re.compile("|".join(whole), re.S), re.compile("|".join(names), re.S)


@dataclass
class Selection:
    """The files a build packs, and every file or directory left out with the rule that did it."""

    files: list[tuple[str, str]] = field(default_factory=list)  # (archive path, the file to read: a path string)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    kept_despite: list[tuple[str, str]] = field(default_factory=list)  # always packed, with the rule it overrode

    @property
    def credentials(self) -> list[str]:
        return [p for p, why in self.left_out if why == "credential file"]

    def to_json(self) -> dict[str, Any]:
        return {
            "files": [rel for rel, _ in self.files],
            "left_out": [{"path": p, "reason": why} for p, why in self.left_out],
            "always": [{"path": p, "overrides": why} for p, why in self.kept_despite],
        }


class _Ignores:
    """Ignore files (``.gitignore``, ``.bentoignore``, ``.bundlerignore``) as git applies them:
    each file's patterns are relative to its directory, deeper files win, negation re-includes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.specs: dict[str, list[tuple[str, Any, list[str]]]] = {}  # dir rel -> [(file, spec, lines)]

    def load(self, rel_dir: str, here: Path) -> None:
        found = []
        for name in IGNORE_FILES:
            f = here / name
            if not f.is_file():
                continue
            from .ignore import IgnoreFile  # only when there is an ignore file to read
            from ..io.safe_read import read_regular

            try:
                lines = read_regular(f, 4 << 20).decode("utf-8", errors="replace").splitlines()
                spec = IgnoreFile(lines)
            except (ValueError, TypeError) as e:
                raise UsageError(f"{_shown(f)}: can't read its patterns ({e})", hint=f"fix {name}") from None
            found.append((f"{rel_dir}/{name}" if rel_dir else name, spec, lines))
        if found:
            self.specs[rel_dir] = found

    def why(self, rel: str, is_dir: bool) -> str | None:
        """The rule that ignores ``rel`` (``.gitignore:3: data/``), or None."""
        if not self.specs:
            return None
        parts = rel.split("/")
        for depth in range(len(parts) - 1, -1, -1):
            base = "/".join(parts[:depth])
            for fname, spec, lines in reversed(self.specs.get(base, [])):
                sub = "/".join(parts[depth:]) + ("/" if is_dir else "")
                ignored, index = spec.check(sub)
                if ignored is None:
                    continue
                if not ignored:
                    return None  # re-included by a negation
                line = _pattern_line(lines, index)
                return f"{fname}:{line[0]}: {line[1]}"
        return None


def _pattern_line(lines: list[str], index: int | None) -> tuple[int, str]:
    """(line number, pattern) of the index-th pattern pathspec compiled (blank and comment lines
    compile to no pattern but keep their place)."""
    if index is not None and 0 <= index < len(lines):
        return index + 1, lines[index].strip()
    return 0, "?"


def is_credential(rel: str) -> bool:
    # Names without case: `.ENV`, `.AWS/credentials` and `Server.PEM` hold the same secrets.
    rel = rel.lower()
    name = rel.rsplit("/", 1)[-1]
    if _CREDENTIAL_NAME.match(name) is None and _CREDENTIAL_PATH.search(rel) is None:
        return False
    if name in CREDENTIAL_NAMES:
        return True
    if name == ".env" or name.startswith(".env.") and name not in (".env.example", ".env.sample", ".env.template"):
        return True
    if _matcher(tuple(CREDENTIAL_PATTERNS))[1].match(name) and not name.endswith(".pub"):
        return True
    return _CREDENTIAL_PATH.search(rel) is not None


_CREDENTIAL_PATH = re.compile("(?:^|/)(?:" + "|".join(re.escape(p) for p in CREDENTIAL_PATHS) + r")\Z")
# A cheap first look that every credential name passes (and few others): the exact checks below it
# run only for those.
_CREDENTIAL_NAME = re.compile("|".join([*(re.escape(n) for n in CREDENTIAL_NAMES), r"\.env",
                                        *(fnmatch.translate(p) for p in CREDENTIAL_PATTERNS)]), re.S)
_UNCARRIABLE = re.compile(r"[\x00-\x1f\\]")  # a backslash or a control character
_UNCARRIABLE_OR_ASCII = re.compile(r"[\x20-\x5b\x5d-\x7e]*")  # a name that needs no closer look


def select_sources(config: ProjectConfig, skip: tuple[Path, ...] = ()) -> Selection:
    """Every source file (archive-relative path, file path), sorted by path, and what was left out.

    Symbolic links are followed only when they stay inside the project; one pointing outside is
    an error, since what it points to would differ from machine to machine. A directory that
    can't be read is an error, not a silent gap.
    """
    from ..io.scratch import is_scratch

    root = config.root.resolve()
    skipped = {p.resolve() for p in skip}
    skipped_names = {p.name for p in skipped}  # resolve() per file only for a name that could match
    # A killed build's partial output beside an output inside the project is never a source.
    scratch = [f".{p.name}." for p in skip]
    ignores = _Ignores(root)
    sel = Selection()
    origin_in = config.origins.get("include", "[tool.bundler]")
    origin_ex = config.origins.get("exclude", "[tool.bundler]")

    def walk_error(e: OSError) -> None:
        raise UsageError(f"{_shown(Path(e.filename or root))}: can't read: {e.strerror}", hint="fix its permissions or exclude it") from None

    rules = _FileRules(config, ignores, origin_in, origin_ex)
    for dirpath, dirnames, filenames in walk(root, onerror=walk_error, kinds=True):
        here = Path(dirpath)
        rel_dir = "" if here == root else here.relative_to(root).as_posix()
        prefix = rel_dir + "/" if rel_dir else ""
        ignores.load(rel_dir, here)
        dirnames[:] = _walked_dirs(sel, here, prefix, dirnames, config, ignores, origin_ex)
        # 20,000 files go through here: strings, not Paths, until a file is kept, and the
        # entry's type from the directory listing instead of an lstat each
        for fn, kind in sorted(filenames):
            rel = prefix + fn
            if _UNCARRIABLE_OR_ASCII.fullmatch(fn) is None:
                _checked_rel(rel, here / fn)
            if skipped and (fn in skipped_names and (here / fn).resolve() in skipped or any(fn.startswith(pre) and is_scratch(fn, pre, ".tmp") for pre in scratch)):
                continue
            if is_credential(rel):
                sel.left_out.append((rel, "credential file"))
                continue
            if fn in ALWAYS:
                why = ignores.why(rel, False) or (f"exclude pattern ({origin_ex})" if _matches(rel, config.exclude) else None)
                if why:
                    sel.kept_despite.append((rel, why))
            elif why := rules.why(rel, fn):
                sel.left_out.append((rel, why))
                continue
            if kind == "file":
                sel.files.append((rel, f"{dirpath}/{fn}"))
            elif (target := _regular(here / fn, root)) is not None:
                sel.files.append((rel, str(target)))
            else:
                sel.left_out.append((rel, "not a regular file"))
    sel.files.sort(key=lambda t: t[0])
    return sel


def _walked_dirs(sel: Selection, here: Path, prefix: str, dirnames: list[str], config: ProjectConfig, ignores: _Ignores,
                 origin_ex: str) -> list[str]:
    """The directories of ``here`` to walk into; each one left out goes into ``sel`` with its rule."""
    keep = []
    for d in sorted(dirnames):
        full = here / d
        rel = _checked_rel(prefix + d, full)
        why = _dir_left_out(rel, full, ignores.root, config, ignores, origin_ex)
        if why:
            sel.left_out.append((rel + "/", why))
        else:
            keep.append(d)
    return keep


def _dir_left_out(rel: str, full: Path, root: Path, config: ProjectConfig, ignores: _Ignores, origin_ex: str) -> str | None:
    """Why a directory of the project is not walked, or None."""
    try:
        is_venv = (full / "pyvenv.cfg").exists()
    except PermissionError:
        raise UsageError(f"{_shown(full)}: can't read this directory: permission denied", hint="fix its permissions or exclude it") from None
    if full.name in DEFAULT_EXCLUDE_DIRS or full.name.endswith(".egg-info") or is_venv:
        return "default exclude"
    if _matches(rel, config.exclude):
        return f"exclude pattern ({origin_ex})"
    if full.is_symlink():
        _inside(full, root)  # raises when it escapes; inside, its files are already here
        return "symbolic link to a directory inside the project"
    return ignores.why(rel, True)


class _FileRules:
    """Why a file (not one of ``ALWAYS``) is not a source, or None: the default excludes, the
    exclude patterns, the ignore files, the include patterns, in that order. Each pattern list is
    compiled once per selection and matched against the name the listing gave (20,000 files
    take each check once)."""

    def __init__(self, config: ProjectConfig, ignores: _Ignores, origin_in: str, origin_ex: str) -> None:
        self.default = _matcher(tuple(DEFAULT_EXCLUDE_FILES))
        self.exclude = _matcher(tuple(config.exclude)) if config.exclude else None
        self.include = _matcher(tuple(config.include)) if config.include else None
        self.ignores, self.origin_in, self.origin_ex = ignores, origin_in, origin_ex

    def why(self, rel: str, name: str) -> str | None:
        whole, named = self.default
        if whole.match(rel) or named.match(name):
            return "default exclude"
        if self.exclude is not None and (self.exclude[0].match(rel) or self.exclude[1].match(name)):
            return f"exclude pattern ({self.origin_ex})"
        if self.ignores.specs and (why := self.ignores.why(rel, False)):
            return why
        if self.include is not None and not (self.include[0].match(rel) or self.include[1].match(name)):
            return f"not matched by include ({self.origin_in})"
        return None


def _regular(full: Path, root: Path) -> Path | None:
    """The regular file to pack for ``full`` (a link inside the project: its target), or None
    when it is not a regular file; a link out of the project is an error."""
    try:
        mode = os.lstat(full).st_mode  # one lstat: a link, a regular file or neither
    except OSError:
        return None
    if stat.S_ISLNK(mode):
        target = _inside(full, root)
        if not target.is_file():
            raise UsageError(f"{_shown(full)}: symbolic link to something that is not a file", hint="replace it with the file")
        return target
    return full if stat.S_ISREG(mode) else None


def _checked_rel(rel: str, full: Path) -> str:
    """The archive path of a project file; a name no bundle can carry is an error, not a surprise."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"{_shown(full)!r}: the file name is not valid UTF-8", hint="rename it, or exclude it in [tool.bundler] exclude"
        ) from None
    if _UNCARRIABLE.search(rel):
        raise UsageError(
            f"{rel!r}: a file name with a backslash or a control character can't go into a bundle",
            hint="rename it, or exclude it in [tool.bundler] exclude",
        )
    return rel


def _inside(link: Path, root: Path) -> Path:
    try:
        target = link.resolve(strict=True)
    except (RuntimeError, OSError) as e:
        raise UsageError(f"{_shown(link)}: a broken or looping symbolic link ({e})", hint="remove it or point it at a file") from None
    if target != root and root not in target.parents:
        raise UsageError(
            f"{_shown(link)}: symbolic link points outside the project ({target})",
            hint="copy the file into the project, or exclude the link in [tool.bundler] exclude",
        )
    return target
