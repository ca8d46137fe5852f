"""Pinned identities: what a model reference resolved to, exactly (the lock file's entries)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FileEntry:
    """One file of a model: its path in the model, its size and ``algo:hex`` hash.

    The Hub's own ids are kept for Hub files (``sha256:`` of LFS files, ``git-sha1:`` blob ids of
    the others) so they can be checked against the Hub and its cache; store files use ``blake3:``.
    """

    path: str
    size: int
    hash: str
    xet: str | None = None  # the Xet content hash the Hub gives a Xet-backed file: how hf_xet fetches it

    def to_json(self) -> dict[str, Any]:
        if self.xet is None:
            return {"path": self.path, "size": self.size, "hash": self.hash}
        return {"path": self.path, "size": self.size, "hash": self.hash, "xet": self.xet}


@dataclass(frozen=True)
class Pin:
    """A model reference as written (the inputs) and what it is pinned to (the outputs)."""

    source: str  # "huggingface" | "store" (bundler's) | "bentoml-store" (BentoML's)
    id: str  # repo id, or the store tag as written
    revision: str | None = None  # as written
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    commit: str | None = None  # huggingface: the commit sha
    version: str | None = None  # store: the concrete version
    files: tuple[FileEntry, ...] = field(default_factory=tuple)
    # huggingface: the repository's own id on the Hub, recorded when the source spells it another
    # way (an old name the Hub redirects, another capitalisation). Files stay cached under ``id``,
    # where the service's loaders look; a pull links the blobs the two spellings share.
    hub_id: str | None = None
    # huggingface: the pinned repository whose config files name this one (an adapter's base
    # model, remote code): pinned by `bundler lock` although no service declares it
    required_by: str | None = None
    # huggingface: the Hub mirror or private endpoint the service names (pulls use it unless the
    # host sets HF_ENDPOINT); None: the host's Hub
    endpoint: str | None = None

    @property
    def key(self) -> tuple:
        """The inputs: a pin is fresh for a reference whose key is the same."""
        return (self.source, self.id, self.revision, self.include, self.exclude)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def short(self) -> str:
        return (self.commit or "")[:12] if self.source == "huggingface" else f"{self.version}"

    @property
    def label(self) -> str:
        if self.source == "huggingface":
            return f"{self.id}@{self.revision}" if self.revision else self.id
        return self.id


def key_of(kind: str, id: str, revision: str | None, include: Any, exclude: Any) -> tuple:
    """The key a reference (scanned, or a runtime descriptor) is matched to its pin on."""
    t = lambda v: tuple(v) if v is not None else None  # noqa: E731
    return (kind, id, revision, t(include), t(exclude))


#: A Hub endpoint a pin may record: an http(s) URL without credentials (the scanner checks the
#: same grammar where the service names it)
ENDPOINT = re.compile(r"https?://[^/@\s?#]+(/[^\s?#]*)?\Z")
_HASH = re.compile(r"^(?:blake3:[0-9a-f]{64}|sha256:[0-9a-f]{64}|git-sha1:[0-9a-f]{40})\Z")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?\Z")
_COMMIT = re.compile(r"^[0-9a-f]{40}\Z")


def safe_path(path: str) -> str:
    """A normalised relative path (no ``..``, no absolute, no backslash), or ValueError."""
    if _UNSAFE_PATH.search(path):
        raise ValueError(f"unsafe path {path!r}")
    return path


def safe_paths(paths: list[str]) -> None:
    """``safe_path`` for many paths at once: a few substring searches in C over all of them (a
    manifest can list 20,000 sources); the one-by-one check runs only to name a bad one."""
    joined = "\x00".join(paths)
    spaced = "/" + joined.replace("\x00", "/") + "/"
    if (joined.count("\x00") != len(paths) - 1 or "//" in spaced or "/./" in spaced or "/../" in spaced
            or _UNSAFE_CHAR.search(joined)):
        for p in paths:
            safe_path(p)


# An empty, "." or ".." segment (which covers "", a leading "/" and "//"), a backslash, a NUL,
# or a surrogate (a JSON escape can make one; no file system call can encode it).
_UNSAFE_PATH = re.compile(r"(?:^|/)\.{0,2}(?:/|\Z)|[\\\x00\ud800-\udfff]")
_UNSAFE_CHAR = re.compile(r"[\\\ud800-\udfff]")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z")


def safe_name(value: object, what: str = "name") -> str:
    """One path component we may build a file or directory name from (a bundle name, a version).

    The one validator for every name and version read from a manifest, a lock, a store record,
    a registry or a setting: letters, digits, ``. _ + -``, starting with a letter or digit, at most
    128 characters; so never ``..``, a separator or an absolute path.
    """
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"unsafe {what} {value!r} (use letters, digits, '.', '_', '+' and '-', starting with a letter or digit)")
    return value


def check_hash(value: str) -> str:
    if not _HASH.match(value):
        raise ValueError(f"bad hash {value!r}")
    return value


def check_pin(p: Pin) -> Pin:
    """Refuse a pin (from a lock file or a bundle) whose values would become unsafe paths."""
    from .store import parse_tag

    if p.source == "huggingface":
        if not _REPO_ID.match(p.id) or ".." in p.id:
            raise ValueError(f"bad repository id {p.id!r}")
        if not p.commit or not _COMMIT.match(p.commit):
            raise ValueError(f"bad commit {p.commit!r} for {p.id}")
        if p.hub_id is not None and (not isinstance(p.hub_id, str) or not _REPO_ID.match(p.hub_id) or ".." in p.hub_id):
            raise ValueError(f"bad Hub id {p.hub_id!r} for {p.id}")
        if p.required_by is not None and (not isinstance(p.required_by, str) or not _REPO_ID.match(p.required_by)):
            raise ValueError(f"bad required_by {p.required_by!r} for {p.id}")
        if p.endpoint is not None and (not isinstance(p.endpoint, str) or not ENDPOINT.match(p.endpoint)):
            raise ValueError(f"bad endpoint for {p.id} (an http(s) URL without credentials)")
    elif p.source == "store":
        parse_tag(f"{p.id.partition(':')[0]}:{p.version}")
    elif p.source == "bentoml-store":
        from .bentoml_store import parse_tag as bentoml_tag

        bentoml_tag(p.id)
        if p.version is None:
            raise ValueError(f"no version for {p.id}")
        # BentoML finds a model under its lowercase concrete version: `LATEST` would land in a
        # folder no tag names
        if bentoml_tag(f"x:{p.version}")[1] != p.version:
            raise ValueError(f"BentoML model {p.id}: version {p.version!r} is not a concrete lowercase version")
    else:
        raise ValueError(f"unknown model source {p.source!r}")
    if p.source != "huggingface" and (p.hub_id is not None or p.required_by is not None or p.endpoint is not None):
        raise ValueError(f"a Hub id, required_by or endpoint for the {p.source} model {p.id}")
    for f in p.files:
        safe_path(f.path)
        check_hash(f.hash)
        if f.xet is not None and (p.source != "huggingface" or not isinstance(f.xet, str) or not _XET.match(f.xet)):
            raise ValueError(f"bad Xet hash {f.xet!r} for {f.path!r}")
    return p


_XET = re.compile(r"[0-9a-f]{64}\Z")
