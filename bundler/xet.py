"""Downloads through Xet, the Hub's storage for large files, with ``hf_xet`` (installed with
huggingface_hub on x86_64 and arm64): parallel range fetches of deduplicated chunks, the path
``hf download`` takes.

A fresh file is written by hf_xet's own parallel writer and then hashed against the pin (from the
page cache) before it enters the cache; a partial file left by a killed pull is resumed with an
ordered stream from the bytes already on disk (``start=``) through bundler's hashing writer. So
what makes bundler's pull better than ``hf download`` holds here too: no unverified byte enters
the cache (hf_xet itself checks nothing it reassembles), resume, the standard cache layout. Without a usable ``hf_xet`` (missing, too old) the
caller falls back to plain HTTP.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

_session: Any = None
_session_lock = threading.Lock()
_tokens: dict[str, "Connection"] = {}


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
    return all(hasattr(hf_xet, n) for n in ("XetSession", "XetFileInfo"))


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


def fetch_file(conn: Connection, xet_hash: str, size: int, dest: str, headers: dict[str, str]) -> None:
    """The whole file written to ``dest`` by hf_xet itself (its parallel writer: no copy through
    Python). The caller hashes it before trusting it."""
    import hf_xet

    group = _group("new_file_download_group", conn, headers)
    group.start_download_file(hf_xet.XetFileInfo(xet_hash, size), dest)
    group.wait_to_finish()


def stream(conn: Connection, xet_hash: str, size: int, start: int, headers: dict[str, str]) -> Any:
    """The file's bytes from ``start``, in order, as an iterator of chunks (to resume)."""
    import hf_xet

    return _group("new_download_stream_group", conn, headers).download_stream(hf_xet.XetFileInfo(xet_hash, size), start=start or None)
