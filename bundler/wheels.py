"""The locked packages' files for ``build --embed-wheels``: fetched once into a cache keyed by
their sha256 (``$BUNDLER_HOME/wheels``), checked against the lock every time they are used.

A wheel is only ever taken from the cache or its source after its sha256 matched pylock.toml:
the index, a mirror and the cache are all untrusted input.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable
from urllib.parse import unquote, urlparse

from .envlock import RELOCK, LockedFile, Package
from .errors import ProblemFound
from .hashing import CHUNK, new_hasher


def cache_dir() -> Path:
    from .store import home

    return home() / "wheels"


def locked_files(packages: Iterable[Package], lock_dir: Path, *, offline: bool) -> list[tuple[LockedFile, Path, str]]:
    """Every file an air-gapped host needs: (its entry, a verified local path (cached, else
    fetched), its ``blake3:`` hash for the manifest, from the same read that checked it)."""
    out = []
    for pkg in packages:
        if not pkg.wheels:
            raise ProblemFound(
                f"{pkg.name} {pkg.version}: only a source distribution is locked; an air-gapped host would have to "
                "build it, fetching its build requirements from the network; nothing was built",
                hint="lock a version with a wheel for the target, put a wheel of it in a --find-links directory and lock "
                     "again, or build without --embed-wheels (the host then installs from the index)",
            )
        for f in pkg.files:
            out.append((f, *_fetch(pkg, f, lock_dir, offline=offline)))
    names = [f.name for f, _, _ in out]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ProblemFound(f"pylock.toml: two packages lock a file named {dup}", hint=RELOCK)
    return out


def _fetch(pkg: Package, f: LockedFile, lock_dir: Path, *, offline: bool) -> tuple[Path, str]:
    cached = cache_dir() / f.sha256 / f.name
    if cached.is_file():
        sha, b3 = hashlib.sha256(), new_hasher("blake3")
        with open(cached, "rb") as src:
            while chunk := src.read(CHUNK):
                sha.update(chunk)
                b3.update(chunk)
        if sha.hexdigest() == f.sha256:
            return cached, "blake3:" + b3.hexdigest()
        cached.unlink()  # damaged: fetch it again
    local = _local_source(f, lock_dir)
    if local is None and offline:
        raise ProblemFound(
            f"{pkg.name} {pkg.version}: {f.name} is not in the wheel cache ({cache_dir()}) and --offline forbids downloading it",
            hint="build once with the network (or --find-links to a directory holding it) to fill the cache",
        )
    cached.parent.mkdir(parents=True, exist_ok=True)
    from .scratch import scratch_file

    with scratch_file(cached.parent, f".{f.name}.", ".tmp") as (out, tmp):
        digest, b3 = hashlib.sha256(), new_hasher("blake3")
        try:
            src = open(local, "rb") if local is not None else _open_url(f.url or "")
        except OSError as e:
            raise ProblemFound(f"{pkg.name} {pkg.version}: can't fetch {f.name}: {e}", hint="check the network or the index, then build again") from None
        with src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                b3.update(chunk)
                out.write(chunk)
        out.flush()
        if digest.hexdigest() != f.sha256:
            raise ProblemFound(
                f"{pkg.name} {pkg.version}: {f.name} does not match its sha256 in pylock.toml (got {digest.hexdigest()[:16]}…)",
                hint="the index or a mirror served different bytes; nothing was embedded. Re-lock only if the change is expected",
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, cached)
    return cached, "blake3:" + b3.hexdigest()


def _local_source(f: LockedFile, lock_dir: Path) -> Path | None:
    if f.path is not None:
        return (lock_dir / f.path) if not os.path.isabs(f.path) else Path(f.path)
    parsed = urlparse(f.url or "")
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return None


def _open_url(url: str):
    import urllib.request

    if urlparse(url).scheme not in ("http", "https"):
        raise OSError(f"unsupported URL {url!r}")
    return urllib.request.urlopen(url, timeout=60)  # noqa: S310 - http(s) only, checked above
