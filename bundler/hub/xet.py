"""Downloads through Xet, the Hub's storage for large files, with ``hf_xet`` (installed with
huggingface_hub on x86_64 and arm64): parallel range fetches of deduplicated chunks, the path
``hf download`` takes.

Each file comes as hf_xet's ordered stream (hf_xet fetches and reassembles ahead in parallel),
written through bundler's hashing writer: so what makes bundler's pull better than ``hf download``
holds here too: every byte hashed against the pin in the same pass, before the file enters the
cache (hf_xet itself checks nothing it reassembles), resume of a killed pull from the bytes on
disk (``start=``), the standard cache layout. On two cores this measured the same as hf_xet's
parallel file writer followed by a hash of the finished file (README). Without a usable
``hf_xet`` (missing, too old) the caller falls back to plain HTTP.
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


def stream(conn: Connection, xet_hash: str, size: int, start: int, headers: dict[str, str]) -> Any:
    """The file's bytes from ``start``, in order, as an iterator of chunks."""
    import hf_xet

    return _group("new_download_stream_group", conn, headers).download_stream(hf_xet.XetFileInfo(xet_hash, size), start=start or None)
