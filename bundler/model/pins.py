"""Pinned identities: what a model reference resolved to, exactly (the lock file's entries)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar


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
    # an object store's own identity of the object (S3): the version fetched, the ETag it must have
    version_id: str | None = None
    etag: str | None = None
    # the sha256 (hex) of a Hub file the Hub pins only by its git blob id (SHA-1): recorded at lock
    # so every pinned byte is covered by a sha256, and checked beside the blob id
    sha256: str | None = None

    def expected(self, found: str | None) -> str:
        """The pinned hash to show beside ``found``: the sha256 beside a blob id when what was
        found is a sha256, else the file's hash."""
        return f"sha256:{self.sha256}" if self.sha256 and str(found).startswith("sha256:") else self.hash

    def same_file(self, other: FileEntry) -> bool:
        """The same pinned bytes: a sha256 recorded on one side only (a lock made before bundler
        recorded it) is no change; two that differ are."""
        if self.sha256 is not None and other.sha256 is not None and self.sha256 != other.sha256:
            return False
        return (self.path, self.size, self.hash, self.xet, self.version_id, self.etag) == (
            other.path, other.size, other.hash, other.xet, other.version_id, other.etag)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "size": self.size, "hash": self.hash}
        for key in ("xet", "version_id", "etag", "sha256"):
            if (value := getattr(self, key)) is not None:
                d[key] = value
        return d


@dataclass(frozen=True)
class Pin:
    """A model reference as written (the inputs) and what it is pinned to (the outputs)."""

    source: str  # the kind's name (``bundler.kinds``): what pinned it, and how its files travel
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

    #: the optional fields, in the order lock files and manifests write them
    OPTIONAL: ClassVar[tuple[str, ...]] = ("revision", "include", "exclude", "commit", "hub_id", "required_by", "endpoint", "version")

    def to_dict(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The pin as lock files and manifests write it: ``source``, ``id``, the fields that are
        set (in ``OPTIONAL``'s order), the writer's own ``extra`` fields, then ``files``."""
        d: dict[str, Any] = {"source": self.source, "id": self.id}
        for key in self.OPTIONAL:
            value = getattr(self, key)
            if value is not None:
                d[key] = list(value) if isinstance(value, tuple) else value
        if extra:
            d.update(extra)
        d["files"] = [f.to_json() for f in self.files]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Pin:
        """The pin of an entry a lock file or a manifest holds (untrusted): every value of its
        type, or TypeError / KeyError; the kind's own rules are ``kinds.check_pin``'s."""
        def patterns(v: Any) -> tuple[str, ...] | None:
            if v is None:
                return None
            if not isinstance(v, list):
                raise TypeError(f"expected a list of patterns, got {v!r}")
            return tuple(_str(x) for x in v)

        return cls(
            source=_str(d["source"]),
            id=_str(d["id"]),
            revision=_opt_str(d.get("revision")),
            include=patterns(d.get("include")),
            exclude=patterns(d.get("exclude")),
            commit=_opt_str(d.get("commit")),
            version=_opt_str(d.get("version")),
            files=tuple(FileEntry(_str(f["path"]), _size(f["size"]), _str(f["hash"]), _opt_str(f.get("xet")),
                                  _opt_str(f.get("version_id")), _opt_str(f.get("etag")), _opt_str(f.get("sha256"))) for f in d["files"]),
            hub_id=_opt_str(d.get("hub_id")),
            required_by=_opt_str(d.get("required_by")),
            endpoint=_opt_str(d.get("endpoint")),
        )

    @property
    def key(self) -> tuple:
        """The inputs: a pin is fresh for a reference whose key is the same."""
        return (self.source, self.id, self.revision, self.include, self.exclude)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def pinned(self) -> str:
        """What the reference is pinned to: a Hub kind's commit, a store's concrete version."""
        return str(self.commit if self.commit is not None else self.version)

    @property
    def short(self) -> str:
        return self.commit[:12] if self.commit is not None else str(self.version)

    @property
    def label(self) -> str:
        return f"{self.id}@{self.revision}" if self.revision else self.id


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {v!r}")
    return v


def _opt_str(v: Any) -> str | None:
    return None if v is None else _str(v)


def _size(v: Any) -> int:
    if type(v) is not int or v < 0:
        raise TypeError(f"size {v!r} is not a byte count")
    return v


def normalise_patterns(value: Any, what: str) -> list[str] | None:
    """include/exclude as a list (a single pattern may be given as a string); the same rule at
    run time and in the static scan. ValueError names ``what`` when the value is neither."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"{what} must be a string or a list of strings, not {value!r}")


def key_of(kind: str, id: str, revision: str | None, include: Any, exclude: Any) -> tuple:
    """The key a reference (scanned, or a runtime descriptor) is matched to its pin on."""
    t = lambda v: tuple(v) if v is not None else None  # noqa: E731
    return (kind, id, revision, t(include), t(exclude))


#: A Hub endpoint a pin may record: an http(s) URL without credentials (the scanner checks the
#: same grammar where the service names it)
ENDPOINT = re.compile(r"https?://[^/@\s?#]+(/[^\s?#]*)?\Z")
_HASH = re.compile(r"^(?:blake3:[0-9a-f]{64}|sha256:[0-9a-f]{64}|git-sha1:[0-9a-f]{40})\Z")
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?\Z")
COMMIT = re.compile(r"^[0-9a-f]{40}\Z")


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


def check_files(p: Pin, *, xet: bool, object_ids: bool = False) -> None:
    """The rules every pin's files keep: safe paths, known hashes; a Xet hash only where ``xet``,
    an object store's version id and ETag only where ``object_ids``."""
    for f in p.files:
        safe_path(f.path)
        check_hash(f.hash)
        if f.xet is not None and (not xet or not isinstance(f.xet, str) or not _XET.match(f.xet)):
            raise ValueError(f"bad Xet hash {f.xet!r} for {f.path!r}")
        for what, value in (("version id", f.version_id), ("ETag", f.etag)):
            if value is not None and (not object_ids or not isinstance(value, str) or not _OBJECT_ID.match(value)):
                raise ValueError(f"bad {what} {value!r} for {f.path!r}")
        if f.sha256 is not None and (not f.hash.startswith("git-sha1:") or not isinstance(f.sha256, str) or not _XET.match(f.sha256)):
            raise ValueError(f"bad sha256 {f.sha256!r} for {f.path!r} (only beside a git blob id, as 64 hex digits)")


_XET = re.compile(r"[0-9a-f]{64}\Z")
# what S3 returns for either: printable ASCII, no spaces (a version id is at most 1,024 bytes)
_OBJECT_ID = re.compile(r'[!-~]{1,1024}\Z')
