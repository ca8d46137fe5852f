"""Downloads through Xet, the Hub's storage for large files, with ``hf_xet`` (installed with
huggingface_hub on x86_64 and arm64): parallel range fetches of deduplicated chunks, the path
``hf download`` takes.

hf_xet's unordered stream hands over each region as soon as it is fetched; bundler writes it in
place and hashes the file in order on a second thread as the written prefix grows, so the pin is
checked beside the download, not after it. A partial file left by a killed pull is resumed from
the bytes known to be on disk (``start=``). So what makes bundler's pull better than ``hf
download`` holds here too: no unverified byte enters the cache (hf_xet itself checks nothing it
reassembles), resume, the standard cache layout. Without a usable ``hf_xet`` (missing, too old)
the caller falls back to plain HTTP.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

_session: Any = None
_session_lock = threading.Lock()
_tokens: dict[str, "Connection"] = {}
CONTIGUOUS = ".contiguous"  # beside a partial file: where its written prefix ends


@dataclass(frozen=True)
class Connection:
    endpoint: str
    token: str
    expires: int
    refresh_url: str


def available() -> bool:
    try:
        import hf_xet
    except ImportError:
        return False
    return all(hasattr(hf_xet, n) for n in ("XetSession", "XetFileInfo")) and hasattr(
        getattr(hf_xet, "XetDownloadStreamGroup", None), "download_unordered_stream"
    )


def token_url(hub: str, repo_id: str, commit: str) -> str:
    """The Hub's route for a read token of a repo at a commit (``rel="xet-auth"``)."""
    return f"{hub.rstrip('/')}/api/models/{repo_id}/xet-read-token/{commit}"


def connect(url: str, headers: dict[str, str]) -> Connection:
    """A CAS endpoint and access token for ``url`` (cached until shortly before it expires)."""
    cached = _tokens.get(url)
    if cached is not None and cached.expires - 60 > time.time():
        return cached
    from huggingface_hub.utils import get_session, hf_raise_for_status

    response = get_session().get(url, headers=headers)
    hf_raise_for_status(response)
    h = response.headers
    try:
        conn = Connection(h["X-Xet-Cas-Url"], h["X-Xet-Access-Token"], int(h["X-Xet-Token-Expiration"]), url)
    except (KeyError, ValueError) as e:
        raise ValueError(f"the Hub's Xet token answer lacks {e}") from None
    _tokens[url] = conn
    return conn


def _group(kind: str, conn: Connection, headers: dict[str, str]) -> Any:
    import hf_xet

    global _session
    with _session_lock:  # one session (runtime and connection pool) per process
        if _session is None:
            _session = hf_xet.XetSession()
    # Groups are made outside the lock: each one's CAS handshake may take a round trip, and
    # parallel downloads must not queue behind each other for it.
    return getattr(_session, kind)(
        endpoint=conn.endpoint,
        token=conn.token,
        token_expiry_unix_secs=conn.expires,
        token_refresh_url=conn.refresh_url,
        token_refresh_headers=headers,
    )


def download(conn: Connection, xet_hash: str, size: int, dest: str, start: int, headers: dict[str, str], algorithm: str) -> str:
    """Bytes ``start``.. of the file written into ``dest`` as hf_xet's unordered stream delivers
    them (its parallel fetches, no waiting for order), each region hashed in file order beside the
    download; returns the ``algo:hex`` of the whole file, bytes before ``start`` included.

    While it runs, ``dest + CONTIGUOUS`` holds the end of the prefix known to be written; on a
    failure ``dest`` is cut back to that prefix. So a resume, by Xet or HTTP, goes on from bytes
    that are there, never from a hole.
    """
    import hf_xet

    from .hashing import RegionHasher

    mark = dest + CONTIGUOUS
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT, 0o644)
    mark_fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    # Fixed width, rewritten in place: a killed process leaves one whole number behind.
    record = lambda end: os.pwrite(mark_fd, b"%020d" % end, 0)  # noqa: E731
    record(start)
    os.ftruncate(fd, start)
    hasher = RegionHasher(dest, algorithm, size, start, on_frontier=record)
    try:
        group = _group("new_download_stream_group", conn, headers)
        for offset, chunk in group.download_unordered_stream(hf_xet.XetFileInfo(xet_hash, size), start=start or None):
            at = start + offset  # offsets count from the start of the range asked for
            hasher.check(at, len(chunk))  # an overlap or bytes past the pinned size: refused unwritten
            view, pos = memoryview(chunk), at
            while view:
                n = os.pwrite(fd, view, pos)
                view, pos = view[n:], pos + n
            hasher.wrote(at, len(chunk))
            if hasher.frontier == size:
                break
        digest = hasher.finish()
        if hasher.frontier != size:
            raise ValueError(f"the stream ended after {hasher.frontier} contiguous bytes of {size}")
    except BaseException:
        try:
            hasher.finish()
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        os.ftruncate(fd, hasher.frontier)
        raise
    finally:
        os.close(fd)
        os.close(mark_fd)
    os.unlink(mark)
    return digest


def cut_to_contiguous(dest: str) -> None:
    """After a killed Xet download: cut ``dest`` back to the prefix its mark says was written."""
    mark = dest + CONTIGUOUS
    try:
        with open(mark, "rb") as f:
            end = int(f.read(20) or b"0")
    except FileNotFoundError:
        return
    except ValueError:
        end = 0
    try:
        if os.path.getsize(dest) > end:
            os.truncate(dest, end)
    except FileNotFoundError:
        pass
    os.unlink(mark)
