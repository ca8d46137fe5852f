"""The locked packages' files for ``build --embed-wheels``: fetched once into a cache keyed by
their sha256 (``$BUNDLER_HOME/wheels``), checked against the lock every time they are used.

A wheel is only ever taken from the cache or its source after its sha256 matched pylock.toml:
the index, a mirror and the cache are all untrusted input.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import unquote, urlparse

from .lock import RELOCK, LockedFile, Package
from ..errors import ProblemFound
from ..io.hashing import CHUNK, new_hasher


def cache_dir() -> Path:
    from ..settings import bundler_home as home

    return home() / "wheels"


def locked_files(packages: Iterable[Package], lock_dir: Path, *, offline: bool, find_links: Iterable[str] = (),
                 index_urls: Iterable[str] = ()) -> list[tuple[LockedFile, Path, str]]:
    """Every file an air-gapped host needs: (its entry, a verified local path (cached, else
    fetched), its ``blake3:`` hash for the manifest, from the same read that checked it).

    A locked ``file://`` path that is not on this machine (locked in another checkout) is found
    by name in this build's ``find_links`` directories; its sha256 decides. A download
    authenticates the way uv does: the credentials of the index URL on the same host
    (``--index-url``, ``UV_INDEX_URL``/``UV_DEFAULT_INDEX``, ``PIP_INDEX_URL`` and their extras),
    else ``~/.netrc``; they are never written anywhere."""
    links = tuple(find_links)
    from ..settings import index_urls as environment_index_urls

    auth = _credentials((*index_urls, *environment_index_urls()))
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
            out.append((f, *_fetch(pkg, f, lock_dir, offline=offline, links=links, auth=auth)))
    names = [f.name for f, _, _ in out]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ProblemFound(f"pylock.toml: two packages lock a file named {dup}", hint=RELOCK)
    return out


def _fetch(pkg: Package, f: LockedFile, lock_dir: Path, *, offline: bool, links: tuple[str, ...] = (),
           auth: dict[str, tuple[str, str]] | None = None) -> tuple[Path, str]:
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
    local = _local_source(f, lock_dir, links)
    if local is None and offline:
        raise ProblemFound(
            f"{pkg.name} {pkg.version}: {f.name} is not in the wheel cache ({cache_dir()}) and --offline forbids downloading it",
            hint="build once with the network (or --find-links to a directory holding it) to fill the cache",
        )
    cached.parent.mkdir(parents=True, exist_ok=True)
    from ..io.scratch import scratch_file

    with scratch_file(cached.parent, f".{f.name}.", ".tmp") as (out, tmp):
        digest, b3 = hashlib.sha256(), new_hasher("blake3")
        try:
            src = open(local, "rb") if local is not None else _open_url(f.url or "", auth or {})
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


def _local_source(f: LockedFile, lock_dir: Path, links: tuple[str, ...] = ()) -> Path | None:
    path = None
    if f.path is not None:
        path = (lock_dir / f.path) if not os.path.isabs(f.path) else Path(f.path)
    elif (url := urlparse(f.url or "")).scheme == "file":
        path = Path(unquote(url.path))
    if path is not None and path.is_file():
        return path
    for d in links:  # locked in another checkout: the same file by name here (its sha256 decides)
        here = Path(unquote(urlparse(d).path) if d.startswith("file:") else d) / f.name
        if here.is_file():
            return here
    return path


def _credentials(index_urls: Iterable[str]) -> dict[str, tuple[str, str]]:
    """host[:port] -> (user, password), from the index URLs that carry them."""
    out: dict[str, tuple[str, str]] = {}
    for url in index_urls:
        parsed = urlparse(url.partition("=")[2] if "=" in url.split("://")[0] else url)  # UV_INDEX: name=url
        if parsed.username is not None and parsed.hostname:
            host = parsed.hostname + (f":{parsed.port}" if parsed.port else "")
            out.setdefault(host, (unquote(parsed.username), unquote(parsed.password or "")))
    return out


def _open_url(url: str, auth: dict[str, tuple[str, str]]) -> Any:
    import base64
    import urllib.request

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise OSError(f"unsupported URL {url!r}")
    host = (parsed.hostname or "") + (f":{parsed.port}" if parsed.port else "")
    user = auth.get(host)
    if user is None:
        import netrc

        try:
            found = netrc.netrc().authenticators(parsed.hostname or "")
        except (OSError, netrc.NetrcParseError):
            found = None
        if found:
            user = (found[0], found[2] or "")
    request = urllib.request.Request(url)
    if user is not None:  # to the index's own host only: an unredirected header never follows a redirect
        request.add_unredirected_header("Authorization", "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode())
    return urllib.request.urlopen(request, timeout=60)  # noqa: S310 - http(s) only, checked above
