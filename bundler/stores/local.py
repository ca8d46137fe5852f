"""The local model store: content-addressed model versions under ``$BUNDLER_HOME``.

Layout::

    $BUNDLER_HOME/models/<name>/<version>/manifest.json   name, version, created, files (blake3)
    $BUNDLER_HOME/models/<name>/<version>/files/...       the model's files
    $BUNDLER_HOME/models/<name>/latest                    the most recently imported version
    $BUNDLER_HOME/tmp/                                    imports in progress

Every import is built in ``tmp/`` and renamed into place, so a reader never sees half a model and
two processes importing at once both end with one complete copy.
"""

from __future__ import annotations

import builtins

import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager, Iterator

from ..io.atomic import write_atomic
from ..io.walk import walk
from ..errors import ProblemFound, UsageError
from ..model.pins import FileEntry, check_hash, safe_path

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}\Z")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
MANIFEST = "manifest.json"
VERSION_LENGTH = 16


def home() -> Path:
    """``$BUNDLER_HOME``, else ``$XDG_DATA_HOME/bundler``, else ``~/.local/share/bundler``."""
    from ..settings import bundler_home

    return bundler_home()


@dataclass(frozen=True)
class StoredModel:
    name: str
    version: str
    created: float
    files: tuple[FileEntry, ...]
    path: Path  # the directory holding the model's files

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "size": self.size,
            "path": str(self.path),
            "files": [f.to_json() for f in self.files],
        }


def parse_tag(tag: str) -> tuple[str, str | None]:
    """``name[:version]`` -> (name, version or None for latest)."""
    name, _, version = tag.partition(":")
    if not _NAME.match(name):
        raise UsageError(
            f"invalid model name {name!r}",
            hint="use lowercase letters, digits, '.', '_' and '-' (e.g. intent-clf:v1)",
        )
    if version in ("", "latest"):
        return name, None
    if not _VERSION.match(version):
        raise UsageError(f"invalid model version {version!r}", hint="use letters, digits, '.', '_' and '-'")
    return name, version


def content_version(files: list[FileEntry]) -> str:
    """The version that the files' content implies: the same files give the same version."""
    from ..io.hashing import blake3_bytes

    listing = "".join(f"{f.path}\0{f.size}\0{f.hash}\n" for f in sorted(files, key=lambda f: f.path))
    return blake3_bytes(listing.encode())[len("blake3:") :][:VERSION_LENGTH]


class Store:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else home()

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def _tmp(self, prefix: str = "import-") -> ContextManager[Path]:
        """Work space in ``tmp/``; a killed import's leftovers are removed by the next one."""
        from ..io.scratch import scratch_dir

        return scratch_dir(self.root / "tmp", prefix)

    # -- reading ---------------------------------------------------------------------------
    def _load(self, name: str, version: str) -> StoredModel | None:
        vdir = self.models_dir / name / version
        try:
            data = json.loads((vdir / MANIFEST).read_text())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError) as e:
            raise ProblemFound(f"{vdir / MANIFEST}: unreadable store manifest ({e})", hint=f"delete it: bundler models delete {name}:{version}") from None
        try:
            # The record is input like any other: every value that becomes a path is checked.
            if data["name"] != name or data["version"] != version:
                raise ValueError(f"it records {data['name']!r}:{data['version']!r}")
            files = tuple(
                FileEntry(safe_path(f["path"]), f["size"], check_hash(f["hash"])) for f in data["files"]
            )
            if any(type(f.size) is not int or f.size < 0 for f in files) or not isinstance(data["created"], (int, float)):
                raise ValueError("a size or the creation time is not a number")
            return StoredModel(name, version, float(data["created"]), files, vdir / "files")
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ProblemFound(
                f"{vdir / MANIFEST}: damaged store manifest ({e})", hint=f"delete it: bundler models delete {name}:{version}"
            ) from None

    def get(self, tag: str) -> StoredModel:
        name, version = parse_tag(tag)
        if version is None:
            version = self._latest(name)
        model = self._load(name, version) if version else None
        if model is None:
            raise UsageError(
                f"model `{tag}` is not in the local store ({self.root})",
                hint=f"import it: bundler models import {name}{':' + version if version else ''} DIR",
            )
        return model

    def _latest(self, name: str) -> str | None:
        try:
            version = (self.models_dir / name / "latest").read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, UnicodeDecodeError):
            return self._newest(name)
        if not _VERSION.match(version):
            return self._newest(name)  # damaged or hostile: never a path outside the store
        if self._load(name, version) is not None:
            return version
        return self._newest(name)

    def _newest(self, name: str) -> str | None:
        models = [m for m in self.list() if m.name == name]
        return max(models, key=lambda m: (m.created, m.version)).version if models else None

    def list(self) -> list[StoredModel]:
        out: builtins.list[StoredModel] = []
        if not self.models_dir.is_dir():
            return out
        for ndir in sorted(self.models_dir.iterdir()):
            if not ndir.is_dir():
                continue
            for vdir in sorted(ndir.iterdir()):
                if vdir.is_dir() and (m := self._load(ndir.name, vdir.name)) is not None:
                    out.append(m)
        return out

    def latest_versions(self) -> dict[str, str]:
        return {name: v for name in {m.name for m in self.list()} if (v := self._latest(name))}

    # -- writing ---------------------------------------------------------------------------
    def import_dir(self, tag: str, source: Path) -> StoredModel:
        """Copy a directory of model files into the store, hashing each byte once on the way."""
        from ..io.hashing import copy_and_hash

        name, version = parse_tag(tag)
        source = Path(source)
        if not source.is_dir():
            raise UsageError(f"{source}: not a directory", hint="pass the directory holding the model's files")
        with self._tmp() as work:
            files = []
            for src in _walk(source):
                rel = src.relative_to(source).as_posix()
                dst = work / "files" / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                size, digest = copy_and_hash(src, dst)
                files.append(FileEntry(rel, size, digest))
            return self._commit(work, name, version, files)

    def place_verified(self, tag: str, source: Path, files: builtins.list[FileEntry]) -> StoredModel:
        """Land files that were just verified against ``files`` (a pulled bundle's members):
        hard-linked where the store shares the file system, so no byte is written twice; copied
        otherwise. Nothing is re-hashed: the unpack checked every byte."""
        from ..io.atomic import link_or_copy

        name, version = parse_tag(tag)
        with self._tmp() as work:
            for f in files:
                dst = work / "files" / f.path
                dst.parent.mkdir(parents=True, exist_ok=True)
                link_or_copy(source / safe_path(f.path), dst)
            return self._commit(work, name, version, list(files))

    def _commit(self, work: Path, name: str, version: str | None, files: builtins.list[FileEntry]) -> StoredModel:
        """Write the manifest into ``work`` and rename it into place (idempotent, race-safe)."""
        if not files:
            raise UsageError(f"model `{name}` has no files", hint="a model needs at least one file")
        (work / "files").mkdir(exist_ok=True)
        files.sort(key=lambda f: f.path)
        implied = content_version(files)
        version = version or implied
        manifest = {
            "name": name,
            "version": version,
            "created": time.time(),
            "content": implied,
            "files": [f.to_json() for f in files],
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        target = self.models_dir / name / version
        target.parent.mkdir(parents=True, exist_ok=True)
        existing = self._load(name, version)
        if existing is None:
            try:
                os.rename(work, target)
            except OSError:
                # Another process placed the same version first.
                existing = self._load(name, version)
                if existing is None:
                    raise
        if existing is not None and content_version(list(existing.files)) != implied:
            raise UsageError(
                f"model `{name}:{version}` already exists in the store with other content",
                hint=f"choose another version, or delete it first: bundler models delete {name}:{version}",
            )
        self._set_latest(name, version)
        model = self._load(name, version)
        assert model is not None
        return model

    def _set_latest(self, name: str, version: str) -> None:
        write_atomic(self.models_dir / name / "latest", (version + "\n").encode())

    @contextmanager
    def create(self, tag: str) -> Iterator["NewModel"]:
        """Write files into ``model.path``; imported on success, discarded on an exception."""
        name, version = parse_tag(tag)
        with self._tmp() as work:
            new = NewModel(work / "files")
            new.path.mkdir()
            yield new
            files = []
            for f in _walk(new.path):
                from ..io.hashing import blake3_file

                files.append(FileEntry(f.relative_to(new.path).as_posix(), f.stat().st_size, blake3_file(f)))
            new.model = self._commit(work, name, version, files)

    def delete(self, tag: str) -> StoredModel:
        name, version = parse_tag(tag)
        try:
            model = self.get(tag)
        except ProblemFound:
            if version is None or not (self.models_dir / name / version).is_dir():
                raise
            # A damaged record must still be deletable: that is the way out its error names.
            model = StoredModel(name, version, 0.0, (), self.models_dir / name / version / "files")
        vdir = model.path.parent
        with self._tmp("delete-") as trash:
            os.rename(vdir, trash / "model")  # atomic: readers see it whole or not at all
        latest = self.models_dir / model.name / "latest"
        if latest.exists() and latest.read_text().strip() == model.version:
            newest = self._newest(model.name)
            if newest:
                self._set_latest(model.name, newest)
            else:
                latest.unlink(missing_ok=True)
        ndir = self.models_dir / model.name
        if ndir.is_dir() and not any(ndir.iterdir()):
            ndir.rmdir()
        return model


class NewModel:
    """A model being written by training code; ``model`` is set once it is imported."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.model: StoredModel | None = None


def _walk(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            if p.is_symlink():
                raise UsageError(f"{p}: symbolic links are not stored", hint="copy the file it points to instead")
            out.append(p)
    return out
