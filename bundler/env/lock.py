"""The Python environment lock: the project's requirements resolved by uv into ``pylock.toml``
(PEP 751) for the host the bundle will run on, not the machine that builds it.

``pylock.toml`` is uv's output, kept byte for byte; ``bundler.lock`` records what it was made
from (the requirements as written, the target Python and platform) and its sha256, so that
freshness is decided offline and a hand-edited or swapped ``pylock.toml`` is caught, the same
discipline as model pins.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import ProblemFound, UsageError

PYLOCK_NAME = "pylock.toml"
DEFAULT_PLATFORM = "x86_64-manylinux_2_28"
MAX_PYLOCK_BYTES = 64 << 20
_PYTHON = re.compile(r"3\.\d{1,2}\Z")
_PLATFORM = re.compile(r"[a-z0-9_]+(-[a-z0-9_.]+)*\Z")
NAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?\Z")
FILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*\.(whl|tar\.gz|zip)\Z")
SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")
RELOCK = "run `bundler lock` (add --upgrade to re-resolve every package) and commit bundler.lock and pylock.toml"


@dataclass(frozen=True)
class EnvPin:
    """The ``[environment]`` table of ``bundler.lock``."""

    requirements: tuple[str, ...]
    python: str
    platform: str
    sha256: str  # of pylock.toml

    def to_toml(self) -> dict[str, Any]:
        return {"lock": PYLOCK_NAME, "python": self.python, "platform": self.platform,
                "requirements": list(self.requirements), "sha256": self.sha256}

    @classmethod
    def from_toml(cls, d: Any) -> EnvPin:
        if not isinstance(d, dict) or d.get("lock") != PYLOCK_NAME:
            raise ValueError("`environment` must be a table naming lock = \"pylock.toml\"")
        reqs = d.get("requirements")
        if not isinstance(reqs, list) or not all(isinstance(r, str) for r in reqs):
            raise ValueError("environment requirements must be a list of strings")
        python, platform, sha = d.get("python"), d.get("platform"), d.get("sha256")
        check_target(python, platform)
        pin = cls(tuple(reqs), str(python), str(platform), sha if isinstance(sha, str) else "")
        if not isinstance(pin.sha256, str) or not SHA256_RE.match(pin.sha256):
            raise ValueError("environment sha256 is not a sha256")
        return pin


@dataclass(frozen=True)
class LockedFile:
    name: str  # the file name: what it is called under wheels/ in a bundle
    sha256: str
    size: int | None
    url: str | None = None
    path: str | None = None  # relative to pylock.toml's directory, or absolute


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    wheels: tuple[LockedFile, ...]
    sdist: LockedFile | None

    @property
    def files(self) -> tuple[LockedFile, ...]:
        """What an air-gapped host needs: the wheels, or the sdist when there is no wheel."""
        return self.wheels or ((self.sdist,) if self.sdist else ())


#: The Pythons a lock can target: what uv resolves for and wheels are built for.
KNOWN_PYTHONS = range(8, 16)


def check_target(python: Any, platform: Any) -> None:
    if not isinstance(python, str) or not _PYTHON.match(python):
        raise ValueError(f"target python {python!r} is not MAJOR.MINOR (e.g. 3.11)")
    if int(python.split(".")[1]) not in KNOWN_PYTHONS:
        raise ValueError(f"target python {python} is not a Python release bundler can lock for (3.{KNOWN_PYTHONS[0]} to 3.{KNOWN_PYTHONS[-1]})")
    if not isinstance(platform, str) or not _PLATFORM.match(platform):
        raise ValueError(f"target platform {platform!r} is not a platform name (e.g. {DEFAULT_PLATFORM})")


def default_python(requires_python: str | None) -> str:
    """The lowest Python a ``requires-python`` admits (``>=3.11`` -> 3.11), else the running one."""
    if requires_python:
        m = re.search(r"(?:>=|~=|==)\s*(3\.\d{1,2})", requires_python)
        if m:
            return m.group(1)
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- requirements that can't be locked ----------------------------------------------------------
_VCS = re.compile(r"(?:^|@\s*)(git|hg|svn|bzr)\+\S+")
_COMMIT = re.compile(r"@([0-9a-f]{40})(?:#\S*)?\s*(?:;.*)?\Z")


def check_requirements(requirements: Sequence[str], shown: str) -> None:
    """Refuse what no lock can pin to exact bytes: local paths, editables, VCS without a commit,
    and nested requirement files (their contents would not be part of the lock's inputs)."""
    for r in requirements:
        s = r.strip()
        why = None
        if s.startswith(("-e", "--editable")):
            why = "an editable install is a local directory, not a package with a hash"
        elif s.startswith(("-r", "-c", "--requirement", "--constraint")):
            why = "nested requirement files are not followed"
        elif s.startswith((".", "/", "~", "file:")) or re.search(r"@\s*file:", s):
            why = "a local path has no version or hash another host could fetch"
        elif _VCS.search(s) and not _COMMIT.search(s):
            why = "a VCS URL without a full commit hash moves with its branch"
        if why:
            raise UsageError(
                f"requirement `{s}` can't be locked: {why}",
                file=shown,
                hint="require a released version (name==1.2), a VCS URL pinned to a 40-character commit, or build a wheel and use --find-links",
            )


# --- pylock.toml, read as untrusted input -----------------------------------------------------
def read_pylock(data: bytes, shown: str) -> list[Package]:
    if len(data) > MAX_PYLOCK_BYTES:
        raise UsageError(f"{shown}: {len(data)} bytes, over the {MAX_PYLOCK_BYTES >> 20} MiB limit")
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"{shown}: not a valid pylock.toml: {e}", hint=RELOCK) from None
    version = doc.get("lock-version")
    if not isinstance(version, str) or not version.startswith("1."):
        raise UsageError(f"{shown}: lock-version {version!r} is not a PEP 751 lock this bundler reads", hint=RELOCK)
    packages = doc.get("packages", [])
    if not isinstance(packages, list):
        raise UsageError(f"{shown}: `packages` must be an array of tables", hint=RELOCK)
    out: list[Package] = []
    for i, p in enumerate(packages):
        try:
            out.append(_package(p))
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise UsageError(f"{shown}: package entry {i + 1} is malformed or unsafe ({e})", hint=RELOCK) from None
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise UsageError(f"{shown}: package {dup} is listed twice (a lock for one target lists each once)", hint=RELOCK)
    return out


def _package(p: Any) -> Package:
    if not isinstance(p, dict):
        raise TypeError("not a table")
    name, version = p["name"], p.get("version")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"name {name!r}")
    if not isinstance(version, str) or not version or "/" in version:
        raise ValueError(f"{name}: version {version!r}")
    if any(k in p for k in ("vcs", "directory", "archive")):
        raise ValueError(f"{name}: only index files (wheels, sdist) can be locked by hash")
    wheels = tuple(_file(w, name) for w in p.get("wheels", []))
    sdist = _file(p["sdist"], name) if "sdist" in p else None
    if not wheels and sdist is None:
        raise ValueError(f"{name}: no file to install")
    return Package(name, version, wheels, sdist)


def _file(f: Any, pkg: str) -> LockedFile:
    if not isinstance(f, dict):
        raise TypeError(f"{pkg}: a file entry is not a table")
    url, path = f.get("url"), f.get("path")
    where = url if url is not None else path
    if not isinstance(where, str) or (url is not None and path is not None):
        raise ValueError(f"{pkg}: a file needs exactly one of url and path")
    name = f.get("name") or where.rstrip("/").rpartition("/")[2].partition("#")[0]
    if not isinstance(name, str) or not FILE_RE.match(name) or ".." in name:
        raise ValueError(f"{pkg}: file name {name!r}")
    hashes = f.get("hashes")
    sha = hashes.get("sha256") if isinstance(hashes, dict) else None
    if not isinstance(sha, str) or not SHA256_RE.match(sha):
        raise ValueError(f"{pkg}: {name} has no sha256 hash")
    size = f.get("size")
    if size is not None and (type(size) is not int or size < 0):
        raise ValueError(f"{pkg}: {name} size {size!r}")
    return LockedFile(name, sha, size, url, path)


# --- locking ----------------------------------------------------------------------------------
@dataclass
class EnvOptions:
    """How to resolve: the target host and where packages come from (index settings are not part
    of the lock's inputs: they say where to look, not what to get)."""

    python: str | None = None
    platform: str | None = None
    index_url: str | None = None
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    upgrade_packages: tuple[str, ...] = ()
    skip: bool = False


@dataclass
class EnvResult:
    pin: EnvPin | None
    packages: list[Package] = field(default_factory=list)
    resolved: bool = False
    changes: list[str] = field(default_factory=list)  # "+ name 1.0", "- name 1.0", "~ name 1.0 -> 1.1"
    stale: list[str] = field(default_factory=list)
    pylock: bytes | None = None  # what to write to pylock.toml (None: leave it)

    def to_json(self) -> dict[str, Any] | None:
        if self.pin is None:
            return None
        return {"lock": PYLOCK_NAME, "python": self.pin.python, "platform": self.pin.platform,
                "packages": {p.name: p.version for p in self.packages}, "resolved": self.resolved, "changes": self.changes}


def plan(
    requirements: Sequence[str],
    origin: str,
    lock_dir: Path,
    existing: EnvPin | None,
    *,
    requires_python: str | None,
    options: EnvOptions,
    python_target: str | None = None,
    upgrade: bool = False,
    check: bool = False,
    offline: bool = False,
) -> EnvResult:
    """The environment entry for ``requirements``: kept when fresh, else resolved by uv.

    ``check`` resolves nothing and lists what is stale."""
    reqs = tuple(requirements)
    pylock_path = lock_dir / PYLOCK_NAME
    if not reqs:
        if existing is not None:
            if check:
                return EnvResult(None, stale=[f"{PYLOCK_NAME}: the project has no requirements any more"])
            return EnvResult(None, changes=["- every package (the project has no requirements)"])
        return EnvResult(None)
    # --python, else what the project names, else the lock's own, else requires-python's lowest
    python = options.python or python_target or (existing.python if existing else default_python(requires_python))
    platform = options.platform or (existing.platform if existing else DEFAULT_PLATFORM)
    try:
        check_target(python, platform)
    except ValueError as e:
        raise UsageError(str(e), hint="e.g. --python 3.11 --platform x86_64-manylinux_2_28") from None
    check_requirements(reqs, origin)

    current = _read_current(pylock_path)
    stale = _staleness(reqs, python, platform, existing, current)
    if not stale and not upgrade and not options.upgrade_packages:
        return EnvResult(existing, read_pylock(current, str(pylock_path)) if current else [])
    if check:
        return EnvResult(existing, stale=stale)
    if offline:
        raise ProblemFound(f"{pylock_path} is stale and --offline forbids resolving: " + "; ".join(stale), hint=RELOCK)
    old = _packages_or_none(current, pylock_path)
    text = _resolve(reqs, python, platform, options, upgrade, current if old is not None and not upgrade else None)
    packages = read_pylock(text, f"{PYLOCK_NAME} as uv wrote it")
    pin = EnvPin(reqs, python, platform, sha256_of(text))
    return EnvResult(pin, packages, resolved=True, changes=package_changes(old or [], packages), pylock=text)


def _read_current(path: Path) -> bytes | None:
    from ..io.safe_read import read_regular

    try:
        return read_regular(path, MAX_PYLOCK_BYTES)
    except FileNotFoundError:
        return None


def _packages_or_none(data: bytes | None, path: Path) -> list[Package] | None:
    if data is None:
        return None
    try:
        return read_pylock(data, str(path))
    except UsageError:
        return None  # a broken pylock.toml is replaced, not used as preferences


def _staleness(reqs: tuple[str, ...], python: str, platform: str, existing: EnvPin | None, current: bytes | None) -> list[str]:
    if existing is None:
        return ["the Python requirements have no lock yet"]
    out = []
    if existing.requirements != reqs:
        added = [r for r in reqs if r not in existing.requirements]
        removed = [r for r in existing.requirements if r not in reqs]
        out.append("requirements changed since the lock: " + ", ".join([f"+ {r}" for r in added] + [f"- {r}" for r in removed] or ["order"]))
    if (existing.python, existing.platform) != (python, platform):
        out.append(f"target changed: locked for Python {existing.python} on {existing.platform}, asked for Python {python} on {platform}")
    if current is None:
        out.append(f"{PYLOCK_NAME} is missing")
    elif sha256_of(current) != existing.sha256:
        out.append(f"{PYLOCK_NAME} was changed after it was locked (its sha256 differs from bundler.lock's)")
    return out


def _resolve(reqs: tuple[str, ...], python: str, platform: str, options: EnvOptions, upgrade: bool, preferences: bytes | None) -> bytes:
    import tempfile

    from .uv import index_args, run_uv

    with tempfile.TemporaryDirectory(prefix="bundler-envlock-") as name:
        tmp = Path(name)
        (tmp / "requirements.in").write_text("\n".join(reqs) + "\n", encoding="utf-8")
        out = tmp / PYLOCK_NAME
        if preferences is not None:
            out.write_bytes(preferences)  # uv keeps the versions it finds there unless told to upgrade
        args = ["pip", "compile", str(tmp / "requirements.in"), "--format", "pylock.toml", "--no-header", "--quiet",
                "--python-version", python, "--python-platform", platform, "-o", str(out)]
        if upgrade:
            args.append("--upgrade")
        for name in options.upgrade_packages:
            args += ["--upgrade-package", name]
        args += index_args(options.index_url, options.find_links, options.no_index)
        run_uv(args, doing=f"resolving the requirements for Python {python} on {platform}",
               hint="check the requirements and the index settings (--index-url, --find-links, UV_INDEX_URL, PIP_INDEX_URL)")
        return out.read_bytes()


def package_changes(old: Sequence[Package], new: Sequence[Package]) -> list[str]:
    before = {p.name: p.version for p in old}
    after = {p.name: p.version for p in new}
    return versions_diff(before, after)


def versions_diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    out = [f"+ {n} {after[n]}" for n in sorted(after.keys() - before.keys())]
    out += [f"- {n} {before[n]}" for n in sorted(before.keys() - after.keys())]
    out += [f"~ {n} {before[n]} -> {after[n]}" for n in sorted(before.keys() & after.keys()) if before[n] != after[n]]
    return out
