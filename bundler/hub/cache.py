"""The standard Hugging Face cache on a host, and cheap re-checks of pinned files in it.

A file is hashed in full once; the result is remembered beside bundler's store, keyed by the real
path, with the size, mtime, ctime and inode it had. While those stay the same the file is trusted, so a
second pull or a service start stays fast; any change to the file (tampering included) makes it be
hashed again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..model.pins import FileEntry


def hub_cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--cache-dir``, else ``BENTOML_HF_CACHE_DIR`` (where BentoML's HuggingFaceModel looks),
    else ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    from ..settings import hf_cache_dir

    return hf_cache_dir(explicit)


def repo_folder(cache: Path, repo_id: str) -> Path:
    """huggingface_hub's folder for ``repo_id`` in a cache (``blobs/``, ``snapshots/``, ``refs/``)."""
    return cache / ("models--" + repo_id.replace("/", "--"))


def snapshot_dir(cache: Path, repo_id: str, commit: str) -> Path:
    """Where huggingface_hub keeps the files of ``repo_id`` at ``commit`` (its own layout)."""
    return repo_folder(cache, repo_id) / "snapshots" / commit


@dataclass(frozen=True)
class Check:
    path: Path
    entry: FileEntry
    status: str  # "ok" | "missing" | "mismatch"
    actual: str | None = None  # the hash (or size) found, on a mismatch
    linked: bool = False  # placed by a hard link to another spelling's verified blob, not fetched

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _marker(real: Path) -> Path:
    from ..io.hashing import blake3_bytes
    from ..settings import bundler_home as home

    key = blake3_bytes(str(real).encode())[7:39]
    return home() / "verified" / key


def _stamp(st: os.stat_result, entry: FileEntry) -> str:
    # ctime too: mtime can be set back after an edit (touch -d), ctime cannot; the sha256 beside
    # a blob id too: a stamp made before it was pinned says nothing about it
    pinned = entry.hash + (f" sha256:{entry.sha256}" if entry.sha256 else "")
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino} {pinned}\n"


def sha256_mismatch(path: Path, entry: FileEntry) -> str | None:
    """The sha256 ``path`` has when the pin records another beside its blob id; else None."""
    if entry.sha256 is None:
        return None
    from ..io.hashing import file_hash

    actual = file_hash(path, "sha256")
    return None if actual == f"sha256:{entry.sha256}" else actual


def check_file(path: Path, entry: FileEntry, *, full: bool = False) -> Check:
    """Is ``path`` the pinned file? ``full`` re-hashes even when the file looks unchanged."""
    from ..io.hashing import file_hash

    try:
        real = path.resolve(strict=True)
        st = real.stat()
    except (FileNotFoundError, NotADirectoryError, RuntimeError):
        return Check(path, entry, "missing")
    if st.st_size != entry.size:
        return Check(path, entry, "mismatch", f"size {st.st_size}, expected {entry.size}")
    marker = _marker(real)
    if not full:
        try:
            if marker.read_text() == _stamp(st, entry):
                return Check(path, entry, "ok")
        except OSError:
            pass
    actual = file_hash(real, entry.hash.partition(":")[0])
    if actual != entry.hash:
        return Check(path, entry, "mismatch", actual)
    if (other := sha256_mismatch(real, entry)) is not None:
        return Check(path, entry, "mismatch", other)
    remember(real, entry, st)
    return Check(path, entry, "ok")


def remember(path: Path, entry: FileEntry, st: os.stat_result | None = None) -> None:
    """Record that ``path`` was verified as ``entry``; ``st`` is its stat from before the hash
    (so a change during hashing leaves a stamp that no longer matches)."""
    from ..io.atomic import write_atomic

    real = path.resolve(strict=True)
    marker = _marker(real)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(marker, _stamp(st or real.stat(), entry).encode())
    except OSError:
        pass  # a read-only home only costs a re-hash next time


def remove_cached(path: Path) -> None:
    """Remove a bad cached file: the blob and the snapshot link to it, so a retry fetches it."""
    try:
        real = path.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        real = None
    for p in (path, real):
        if p is not None:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
