"""``bundler env DIR`` / ``pull --env``: the bundle's locked Python packages, exactly, in
``DIR/.venv``, installed by uv with every file's hash enforced.

Environments are content-addressed and shared: ``$BUNDLER_HOME/envs/<key>``, the key being the
sha256 of the lock's sha256, the Python version and the platform it was locked for, and
``DIR/.venv`` is a link to it. A deploy host keeping many versions of a service with one
``pylock.toml`` installs it once (the next version's ``env`` is a link, made in milliseconds);
environments of different locks share unchanged packages' files through uv's cache (hard links
where the cache and ``$BUNDLER_HOME`` share a file system). ``bundler gc`` removes the ones no
pulled bundle links to.

A venv is made in ``envs/`` under a scratch name and renamed into place when it is complete (uv
makes it relocatable), so an interrupted install never leaves a half-made environment; a marker
in it records which lock it holds.
"""

from __future__ import annotations

import json
import os
import stat
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..env.lock import MAX_PYLOCK_BYTES, RELOCK, read_pylock, sha256_of
from ..errors import ProblemFound, UsageError
from ..bundle.manifest import MAX_MANIFEST_BYTES, Environment
from ..model.layout import MANIFEST_NAME, SOURCE_PREFIX, WHEEL_PREFIX

VENV = ".venv"
MARKER = ".bundler-env.json"
ENVS = "envs"
_PARTIAL = ".partial-"
_OLD = ".venv.old-"


@dataclass
class EnvInstall:
    venv: Path
    installed: bool  # False: an environment of exactly this lock was there already (this bundle's, or shared)
    packages: int
    offline: bool  # installed from the bundle's embedded files only
    env: Path | None = None  # the shared environment ``venv`` links to
    linked: bool = False  # ``venv`` was made (or moved) to link to ``env`` now

    def to_json(self) -> dict[str, Any]:
        return {"venv": str(self.venv), "env": str(self.env), "installed": self.installed, "linked": self.linked,
                "packages": self.packages, "offline": self.offline}


def envs_dir() -> Path:
    from ..settings import bundler_home

    return bundler_home() / ENVS


def env_key(env: Environment) -> str:
    """The shared environment's name: what makes two environments the same."""
    import hashlib

    return hashlib.sha256(json.dumps(_marker(env), sort_keys=True).encode()).hexdigest()


def _marker(env: Environment) -> dict[str, Any]:
    return {"sha256": env.sha256, "python": env.python, "platform": env.platform}


def venv_python(bundle_dir: Path) -> Path | None:
    """The bundle's installed environment's interpreter, when ``bundler env`` completed there."""
    python = Path(bundle_dir) / VENV / "bin" / "python"
    return python if (Path(bundle_dir) / VENV / MARKER).is_file() and python.exists() else None


def ensure_env(bundle_dir: str | os.PathLike[str], *, offline: bool = False) -> EnvInstall:
    """Create (or keep) ``DIR/.venv`` holding exactly the bundle's locked packages.

    With embedded files (``build --embed-wheels``) nothing is downloaded; otherwise uv fetches
    the locked files from the URLs in pylock.toml (``offline``: from uv's cache only)."""
    from ..bundle.manifest import loads
    from ..io.safe_read import read_regular

    root = Path(bundle_dir)
    try:
        manifest = loads(read_regular(root / MANIFEST_NAME, MAX_MANIFEST_BYTES), str(root / MANIFEST_NAME))
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"{root}: not an unpacked bundle (no {MANIFEST_NAME})", hint="run `bundler pull BUNDLE --to DIR` first") from None
    env = manifest.environment
    if env is None:
        raise UsageError(f"{root}: the bundle has no locked Python environment",
                         hint="declare the requirements ([project] dependencies or requirements.txt) and build it again")
    lock_path = root / SOURCE_PREFIX / env.lock
    try:
        text = read_regular(lock_path, MAX_PYLOCK_BYTES)
    except FileNotFoundError:
        raise ProblemFound(f"{lock_path}: missing from the unpacked bundle", hint="pull the bundle again") from None
    if sha256_of(text) != env.sha256:
        raise ProblemFound(f"{lock_path}: does not match the sha256 the manifest records; it was modified after the build",
                           hint="pull the bundle again; do not edit files inside a pulled bundle")
    packages = read_pylock(text, str(lock_path))
    if {p.name: p.version for p in packages} != env.packages:
        raise ProblemFound(f"{lock_path}: its packages differ from the manifest's list", hint="pull the bundle again")

    from ..io.scratch import exclusive

    # The lock a pull into this directory takes: an install never runs while a pull replaces it.
    with exclusive(root.resolve().parent):
        return _ensure(root, env, packages, lock_path, offline)


def _ensure(root: Path, env: Environment, packages: list, lock_path: Path, offline: bool) -> EnvInstall:
    from ..io.scratch import exclusive, scratch_dir, sweep

    venv, embedded = root / VENV, bool(env.wheels)
    envs = envs_dir()
    shared = envs / env_key(env)
    envs.mkdir(parents=True, exist_ok=True)
    installed = False
    with exclusive(envs):  # one install of a lock at a time; the others then link to it
        if not _holds(shared, _marker(env)):
            if embedded:
                _check_embedded(root, packages, env)
            with scratch_dir(envs, f"{shared.name}{_PARTIAL}") as work:
                sync_from = lock_path
                if embedded:
                    sync_from = work / "pylock.toml"
                    sync_from.write_bytes(_local_pylock(root, packages))
                new = work / "venv"
                _uv_install(new, sync_from, env.python, offline=offline or embedded)
                (new / MARKER).write_text(json.dumps(_marker(env), sort_keys=True) + "\n")
                _swap_in(new, shared)
            installed = True
        # linked under the same lock `bundler gc` takes, and the folder recorded: gc keeps it
        from .records import note_pulled

        note_pulled(root, None, [], [])
        if venv.is_symlink() and os.readlink(venv) == str(shared):
            return EnvInstall(venv, installed, len(packages), embedded, shared, linked=False)
        sweep(root, _OLD, "")
        link = root / f"{VENV}.link-{os.getpid()}"
        link.unlink(missing_ok=True)
        link.symlink_to(shared, target_is_directory=True)
        _swap_in(link, venv)
    return EnvInstall(venv, installed, len(packages), embedded, shared, linked=True)


def _holds(venv: Path, marker: dict[str, Any]) -> bool:
    try:
        return (venv / "bin" / "python").exists() and json.loads((venv / MARKER).read_text()) == marker
    except (OSError, ValueError):
        return False  # unreadable marker: install again


def _check_embedded(root: Path, packages: list, env: Environment) -> None:
    """Every embedded file against its sha256 in pylock.toml, before uv sees any of them, so a
    tampered file is named with its package."""
    from ..io.hashing import sha256_file

    listed = {w.path for w in env.wheels}
    for pkg in packages:
        for f in pkg.files:
            if f.name not in listed:
                raise ProblemFound(f"{pkg.name} {pkg.version}: {f.name} is locked but not embedded in the bundle", hint="build it again with --embed-wheels")
            path = root / WHEEL_PREFIX / f.name
            try:
                st = path.lstat()
            except FileNotFoundError:
                raise ProblemFound(f"{pkg.name} {pkg.version}: {path} is missing", hint="pull the bundle again") from None
            if not stat.S_ISREG(st.st_mode):  # a FIFO would hang the read, a link could point at /dev/zero
                raise ProblemFound(f"{pkg.name} {pkg.version}: {path} is not a regular file; nothing was installed",
                                   hint="pull the bundle again")
            ok = sha256_file(path) == f.sha256
            if not ok:
                raise ProblemFound(f"{pkg.name} {pkg.version}: {path} does not match its sha256 in pylock.toml; nothing was installed",
                                   hint="the file was modified after the build; pull the bundle again")


def _local_pylock(root: Path, packages: list) -> bytes:
    """pylock.toml with every file pointing at the bundle's own copy (PEP 751 ``path``)."""
    import tomli_w

    entries: list[dict[str, Any]] = []
    doc = {"lock-version": "1.0", "created-by": "bundler", "packages": entries}
    for pkg in packages:
        entry: dict[str, Any] = {"name": pkg.name, "version": pkg.version}
        files = [{"name": f.name, "path": str((root / WHEEL_PREFIX / f.name).resolve()), "hashes": {"sha256": f.sha256}} for f in pkg.files]
        if pkg.wheels:
            entry["wheels"] = files
        else:
            entry["sdist"] = files[0]
        entries.append(entry)
    return tomli_w.dumps(doc).encode()


def _uv_install(venv: Path, pylock: Path, python: str, *, offline: bool) -> None:
    from ..env.uv import run_uv

    flags = ["--offline"] if offline else []
    run_uv(["venv", "--relocatable", "--quiet", "--no-project", "--python", python, *flags, str(venv)],
           doing=f"creating a Python {python} environment",
           hint=f"the bundle's packages are locked for Python {python}: install it on this host (or let uv fetch it), or lock for this host's Python with `bundler lock --python X.Y`")
    run_uv(["pip", "sync", str(pylock), "--python", str(venv / "bin" / "python"), "--preview-features", "pylock", "--quiet", *flags],
           doing="installing the locked packages", hint=RELOCK if not offline else "check that every locked file is in the bundle (--embed-wheels) or uv's cache")


def _swap_in(new: Path, venv: Path) -> None:
    """Put ``new`` at ``venv``: the old one moves aside first, then goes."""
    import tempfile

    old = None
    if venv.exists() or venv.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=_OLD, dir=venv.parent))
        os.replace(venv, old / "venv")
    os.replace(new, venv)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
