"""BentoML's own model store (``$BENTOML_HOME/models``), read and written without importing bentoml.

Layout, as BentoML's ``Store`` and ``Tag`` write it::

    $BENTOML_HOME/models/<name>/<version>/model.yaml   name, version, creation_time, ...
    $BENTOML_HOME/models/<name>/<version>/...          the model's files
    $BENTOML_HOME/models/<name>/latest                 the version ``name:latest`` means

Tags are lowercase; ``name:latest`` reads ``latest`` and, when that is missing or names a version
that is gone, falls back to the newest ``creation_time``, as BentoML does.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..io.walk import walk
from ..errors import ProblemFound, UsageError
from ..model.pins import FileEntry, Pin

# BentoML's Tag: lowercase letters, digits, and ``-._`` inside.
_TAG_PART = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?\Z")
MODEL_YAML = "model.yaml"


def home() -> Path:
    from ..settings import bentoml_home

    return bentoml_home()


def models_dir() -> Path:
    return home() / "models"


def parse_tag(tag: str) -> tuple[str, str | None]:
    """``name[:version]`` -> (name, version or None for latest), lowercased as BentoML does."""
    name, _, version = tag.strip().lower().partition(":")
    if not _TAG_PART.match(name):
        raise ValueError(f"invalid BentoML model name {name!r}")
    if version in ("", "latest"):
        return name, None
    if not _TAG_PART.match(version):
        raise ValueError(f"invalid BentoML model version {version!r}")
    return name, version


def _creation_time(vdir: Path) -> str:
    try:
        text = (vdir / MODEL_YAML).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    m = re.search(r"^creation_time:\s*['\"]?([^'\"\n]+)", text, re.M)
    return m.group(1).strip() if m else ""


def resolve(tag: str) -> tuple[str, str, Path]:
    """(name, concrete version, directory) of a tag in this machine's BentoML store."""
    try:
        name, version = parse_tag(tag)
    except ValueError as e:
        raise UsageError(str(e), hint="BentoML tags look like name:version, lowercase") from None
    root = models_dir()
    ndir = root / name
    missing = UsageError(
        f"BentoML model `{tag}` is not in the BentoML store ({root})",
        hint="save or import it with bentoml first (`bentoml models list` shows the store), or set BENTOML_HOME",
    )
    if version is None:
        try:
            latest = (ndir / "latest").read_text().strip()
        except OSError:
            latest = ""
        if _TAG_PART.match(latest) and (ndir / latest / MODEL_YAML).is_file():
            version = latest
        else:
            versions = [d for d in _versions(ndir)]
            if not versions:
                raise missing
            version = max(versions, key=lambda d: (_creation_time(d), d.name)).name
    elif not (ndir / version / MODEL_YAML).is_file():
        matches = [d.name for d in _versions(ndir) if d.name.startswith(version)]
        if len(matches) != 1:
            raise missing
        version = matches[0]
    return name, version, ndir / version


def _versions(ndir: Path) -> list[Path]:
    try:
        return [d for d in ndir.iterdir() if d.is_dir() and _TAG_PART.match(d.name) and (d / MODEL_YAML).is_file()]
    except OSError:
        return []


def pinned_files(tag: str) -> tuple[str, tuple[FileEntry, ...]]:
    """A BentoML store model's concrete version and every file's size and blake3."""
    from ..io.hashing import blake3_file

    name, version, vdir = resolve(tag)
    files = []
    for dirpath, dirnames, filenames in walk(vdir):
        dirnames.sort()
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            if p.is_symlink() or not p.is_file():
                raise UsageError(f"{p}: a BentoML model file that is a link or not a regular file", hint="save the model again")
            files.append(FileEntry(p.relative_to(vdir).as_posix(), p.stat().st_size, blake3_file(p)))
    files.sort(key=lambda f: f.path)
    return version, tuple(files)


def land(p: Pin, src: Path) -> bool:
    """Put a pulled BentoML model into this host's BentoML store; False when already there.

    Built beside its place and renamed, so BentoML never sees half a model; ``latest`` is
    written only when the name has none (an existing choice on this host is not changed).
    """
    from ..io.atomic import link_or_copy, write_atomic
    from ..hub.cache import check_file
    from ..io.scratch import scratch_dir

    name, _ = parse_tag(p.id)
    assert p.version is not None
    target = models_dir() / name / p.version
    if target.is_dir():
        bad = [f.path for f in p.files if not check_file(target / f.path, f).ok]
        if not bad:
            return False
        raise ProblemFound(
            f"BentoML model {name}:{p.version} in {target} differs from the bundle ({bad[0]})",
            hint=f"remove it (bentoml models delete {name}:{p.version}) and pull again",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with scratch_dir(target.parent, f".{p.version}.", ".import") as work:
        os.chmod(work, 0o755)  # like the unpacked bundle: the serving user may be another one
        for f in p.files:
            dst = work / f.path
            dst.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(src / f.path, dst)
        try:
            os.rename(work, target)
        except OSError:
            if not target.is_dir():
                raise
    latest = target.parent / "latest"
    if not latest.exists():
        write_atomic(latest, p.version.encode())
    return True

