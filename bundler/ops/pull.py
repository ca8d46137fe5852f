"""``bundler pull`` on a deploy host: unpack a bundle safely, fetch its pinned Hub files into the
standard Hugging Face cache (through huggingface_hub), land its store models, verify everything."""

from __future__ import annotations

import json
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Sequence

from .. import kinds
from ..io.atomic import write_atomic
from ..hub.cache import Check, check_file, hub_cache_dir, remember, remove_cached, repo_folder, sha256_mismatch, snapshot_dir
from ..errors import BundlerError, ProblemFound, UsageError
from ..hub.api import offline as hub_offline
from ..notes import note
from ..bundle.manifest import Manifest, hub_model_dir
from ..model.layout import MANIFEST_NAME
from ..model.pins import FileEntry, Pin
from .signing import Trust

PULL_RECORD = ".bundler-pull.json"
#: Written into every directory bundler unpacks: only such a directory is ever replaced.
UNPACKED_MARKER = ".bundler-unpacked"
Progress = Callable[[str, Pin, FileEntry], None]


def default_dest(bundle: Path) -> Path:
    name = bundle.name
    for suffix in (".bundle.tar.gz", ".bundle.tar.zst", ".bundle.tar", ".tar.gz", ".tar.zst", ".tgz", ".tar"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return bundle.parent / (name or "bundle")


@dataclass
class PullResult:
    bundle: str  # the archive path or the oci:// reference, as given
    dest: Path
    cache: Path
    manifest: Manifest
    unpacked: bool = False
    downloaded: list[tuple[Pin, FileEntry]] = field(default_factory=list)
    cached: list[tuple[Pin, FileEntry]] = field(default_factory=list)
    embedded: list[tuple[Pin, FileEntry]] = field(default_factory=list)  # placed from the bundle (--embed-hub)
    refetched: list[str] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)  # "id/path": blobs another spelling of the repo had
    store_imported: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)  # the services the pulled models can run
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "dir": str(self.dest),
            "cache_dir": str(self.cache),
            "digest": self.manifest.digest,
            "bundle_digest": self.manifest.digest,
            "unpacked": self.unpacked,
            "downloaded": {"files": len(self.downloaded), "bytes": sum(f.size for _, f in self.downloaded)},
            "cached": {"files": len(self.cached), "bytes": sum(f.size for _, f in self.cached)},
            "embedded": {"files": len(self.embedded), "bytes": sum(f.size for _, f in self.embedded)},
            "refetched": self.refetched,
            "linked": self.linked,
            "store_imported": self.store_imported,
            "services": self.services,
            "failures": self.failures,
            "ok": not self.failures,
        }


# --- unpacking ----------------------------------------------------------------------------------
def _already_unpacked(dest: Path, manifest: Manifest, *, full: bool = False) -> bool:
    """Is ``dest`` this bundle, every member intact? A member is re-hashed when its size, mtime
    or inode changed since it was last verified (every time with ``full``): a same-size edit is
    never taken for the bundle."""
    return not _unpacked_problems(dest, manifest, full=full)


def _unpacked_problems(dest: Path, manifest: Manifest, *, full: bool = False) -> list[str]:
    from ..bundle.manifest import loads

    try:
        existing = loads((dest / MANIFEST_NAME).read_bytes(), str(dest / MANIFEST_NAME))
    except (OSError, BundlerError):
        return [MANIFEST_NAME]
    if existing.digest != manifest.digest:
        return [MANIFEST_NAME]
    problems = []
    for name, entry in manifest.members().items():
        p = dest / name
        if p.is_symlink() or not p.is_file() or not check_file(p, entry, full=full).ok:
            problems.append(name)
    return problems


def unpack(bundle: Path, dest: Path, manifest: Manifest) -> bool:
    """Unpack into ``dest`` through a fresh temporary directory; False when already there.

    Every member must be a regular file the manifest lists, with the size and hash it gives.
    """
    from ..bundle.archive import ExpectedMembers, iter_members, write_member

    shown = str(bundle)

    def fill(tmp: Path) -> None:
        # Every member is a regular file at a checked relative path (check_member), written with
        # O_EXCL|O_NOFOLLOW into a fresh directory that bundler made and that holds no links: no
        # realpath per member is needed to keep it inside (tarfile's data filter did two each).
        expected = ExpectedMembers(manifest, shown)
        made: set[str] = set()
        for name, member, f in iter_members(bundle):
            entry = expected.accept(name, member.size)
            write_member(tmp, name, f, entry, executable=bool(member.mode & 0o111), made=made)
        expected.require_all()

    return unpack_with(dest, manifest, fill)


def unpack_with(dest: Path, manifest: Manifest, fill: Callable[[Path], None]) -> bool:
    """Fill a scratch directory beside ``dest`` and put it in place; False when already there.

    Runs into one ``dest`` are serialised; a directory is replaced only when bundler unpacked it
    (its marker file), never because it happens to hold a ``bundle.yaml``.
    """
    from .bento_view import write_view
    from ..io.scratch import exclusive, scratch_dir, sweep

    dest = Path(os.path.abspath(dest))
    with exclusive(dest.parent):
        sweep(dest.parent, f".{dest.name}.", ".unpack")  # a killed pull's, even when nothing is to do
        if _already_unpacked(dest, manifest):
            return False
        check_replaceable(dest)
        with scratch_dir(dest.parent, f".{dest.name}.", ".unpack") as tmp:
            os.chmod(tmp, 0o755)  # a deploy directory other users (the serving user) can read
            (tmp / MANIFEST_NAME).write_bytes(manifest.to_yaml())
            fill(tmp)
            write_view(tmp, manifest)  # `bentoml serve DIR` loads it as a bento, with the pins
            (tmp / UNPACKED_MARKER).write_text(manifest.digest + "\n")
            _publish(tmp, dest)
    return True


def _is_ours(dest: Path) -> bool:
    return any((dest / m).is_file() and not (dest / m).is_symlink() for m in (UNPACKED_MARKER, PULL_RECORD))


def check_replaceable(dest: Path) -> None:
    """``dest`` may be missing, an empty directory, or a directory bundler unpacked."""
    if not dest.exists() and not dest.is_symlink():
        return
    if dest.is_symlink() or not dest.is_dir():
        raise UsageError(f"{dest}: exists and is not a directory", hint="choose another directory with --to")
    if any(dest.iterdir()) and not _is_ours(dest):
        raise UsageError(
            f"{dest}: exists, is not empty and was not unpacked by bundler; nothing was changed",
            hint="choose another directory with --to, or an empty one",
        )


def _publish(tmp: Path, dest: Path) -> None:
    """Move a completely unpacked bundle into place, replacing an older unpacked bundle.

    A whole-directory rename when possible (readers see the old bundle or the new one); entry by
    entry when ``dest`` is the working directory or a mount point, which can't be renamed over.
    """
    from ..io.scratch import scratch_dir

    if not dest.exists():
        os.rename(tmp, dest)
        return
    in_place = os.path.ismount(dest) or Path.cwd().resolve() == dest.resolve()
    with scratch_dir(dest.parent, f".{dest.name}.", ".old") as trash:
        if not in_place:
            os.rename(dest, trash / "old")
            os.rename(tmp, dest)
            return
        for entry in list(dest.iterdir()):
            os.rename(entry, trash / entry.name)
        for entry in list(tmp.iterdir()):
            os.rename(entry, dest / entry.name)


# --- Hub files ----------------------------------------------------------------------------------
class PickleRefused(ProblemFound):
    """A file that is pickle by its content, under ``--no-pickle``: it never enters the cache."""


def download_pinned(
    pin: Pin, entry: FileEntry, cache: Path, local: Path | None = None, twins: Sequence[Path] = (),
    stop: threading.Event | None = None, no_pickle: bool = False,
) -> Check:
    """Fetch one pinned file into huggingface_hub's cache layout, resuming a partial download.

    With ``local`` (a file a bundle carries, from ``--embed-hub``) the bytes come from there
    instead of the network, through the same checks and placement. ``twins`` are the cache
    folders of other spellings of the same repository: a verified blob there is hard-linked
    (``Check.linked``), not downloaded again. Once ``stop`` is set, the download ends at its
    next chunk with :class:`~bundler.hashing.Stopped`, keeping the bytes for a resume.

    huggingface_hub 2.x downloads to a process-unique temporary file that it discards when
    interrupted, so ``hf_hub_download`` can't resume a killed pull. The same client still does the
    work here: its URL builder, auth headers and ``http_get`` (with ``resume_size``), its lock file
    for the blob, and its layout (``blobs/<etag>``, ``snapshots/<commit>/<path>`` -> blob). The
    etag is known from the pin (LFS sha256 or git blob id), so no metadata request is needed, and
    the file is verified before it enters the cache.
    """
    from huggingface_hub.utils import WeakFileLock

    etag = entry.hash.partition(":")[2]
    repo_dir = repo_folder(cache, pin.id)
    blob = repo_dir / "blobs" / etag
    link = repo_dir / "snapshots" / (pin.commit or "") / entry.path
    locks = cache / ".locks" / repo_dir.name
    for d in (blob.parent, link.parent, locks):
        d.mkdir(parents=True, exist_ok=True)
    linked = False
    # huggingface_hub's own lock for the blob (group-writable, soft-lock fallback where flock is
    # missing): a cache shared by several users or processes waits the same way hf_hub_download does.
    with WeakFileLock(locks / f"{etag}.lock"):
        if local is None and not (blob.is_file() and blob.stat().st_size == entry.size):
            linked = _link_twin(blob, entry, twins)
        if not blob.is_file() or blob.stat().st_size != entry.size:
            problem = _download_blob(pin, entry, blob, local, stop, no_pickle)
            if problem is not None:
                return Check(link, entry, "mismatch", problem)
        _link_snapshot(blob, link)
    check = check_file(link, entry)
    return Check(check.path, entry, check.status, linked=True) if linked and check.ok else check


def _download_blob(pin: Pin, entry: FileEntry, blob: Path, local: Path | None, stop: threading.Event | None,
                   no_pickle: bool) -> str | None:
    """The blob's bytes into a partial file beside it (resumed where an earlier pull stopped),
    hashed while written, then verified and moved in; else what was wrong with them."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    from .. import __version__
    from ..io.hashing import HashingWriter, TooLarge
    from ..hub.api import endpoint_for, token as hub_token

    partial = blob.with_name(f"{blob.name}.bundler-partial")
    url = hf_hub_url(pin.id, entry.path, revision=pin.commit, endpoint=endpoint_for(pin, at_pull=True))
    headers = build_hf_headers(token=hub_token(), library_name="bundler", library_version=__version__)
    # A Range from the very first request: the Hub's bridge answers a plain GET of a file
    # over 50 GB with 400. http_get moves the start when it resumes or retries.
    headers["Range"] = "bytes=0-"
    if local is not None:
        partial.unlink(missing_ok=True)  # a local copy is cheap to redo whole
    # Left by an earlier bundler, which had hf_xet's parallel writer fill a fresh file
    # under this name: a killed one has holes, so it is nothing to resume from.
    partial.with_name(f"{blob.name}.bundler-xet").unlink(missing_ok=True)
    with open(partial, "ab") as f:
        done = f.tell()
        if done > entry.size:  # not a prefix of this file: start over, from byte 0
            f.truncate(0)
            f.seek(0)
            done = 0
        # Hash while writing: verification costs no second read of the file.
        writer = HashingWriter(f, entry.hash.partition(":")[0], entry.size, stop)
        try:
            if local is not None:
                with open(local, "rb") as src:
                    shutil.copyfileobj(src, writer, 4 << 20)
            elif done < entry.size:
                if not (entry.xet and _xet_download(pin, entry, writer, done, headers)):
                    # No expected_size: the size is checked here, the same way for every
                    # source; a network failure propagates and leaves the partial file to
                    # resume from (after a failed Xet attempt too: from where it stopped).
                    http_get(url, writer, resume_size=writer.tell(), headers=headers)  # type: ignore[arg-type]  # file-like: write()
            # else every byte is here already (a range request would only get 416):
            # the writer hashed them, and they are verified below like any download.
        except TooLarge:
            partial.unlink(missing_ok=True)
            return f"more than {entry.size} bytes"
        finally:
            writer.close()
    got = partial.stat().st_size
    # the sha256 beside a blob id: a small file, read once more
    if got != entry.size or writer.digest != entry.hash or (other := sha256_mismatch(partial, entry)) is not None:
        partial.unlink(missing_ok=True)
        return f"size {got}" if got != entry.size else writer.digest if writer.digest != entry.hash else other
    if no_pickle:
        _refuse_pickle(partial, entry)
    os.chmod(partial, 0o644)
    os.replace(partial, blob)
    remember(blob, entry)
    return None


def _link_snapshot(blob: Path, link: Path) -> None:
    """``snapshots/<commit>/<path>`` -> the blob, replaced at once (a reader never sees it missing)."""
    tmp_link = link.with_name(f".{link.name}.{os.getpid()}.link")
    tmp_link.unlink(missing_ok=True)
    if _use_symlinks(link.parent):
        os.symlink(os.path.relpath(blob, link.parent), tmp_link)
    else:  # as huggingface_hub does without symlinks: a real file in the snapshot
        shutil.copyfile(blob, tmp_link)
    os.replace(tmp_link, link)


def _pickle_problem(path: Path) -> str | None:
    """Why ``--no-pickle`` refuses a file, read from its first bytes; None when it does not."""
    from .lean import pickle_by_content

    what = pickle_by_content(path)
    return None if what is None else f"is {what} by its content: it runs code when loaded; refused (--no-pickle)"


def _refuse_pickle(path: Path, entry: FileEntry) -> None:
    if (problem := _pickle_problem(path)) is not None:
        path.unlink(missing_ok=True)
        raise PickleRefused(f"{entry.path} {problem}")


def _link_twin(blob: Path, entry: FileEntry, twins: Sequence[Path]) -> bool:
    """Hard-link ``blob`` from another spelling's cache folder when that one holds it verified.
    A hard link, not a symlink: removing a tampered file under one name leaves the other's."""
    for twin in twins:
        candidate = twin / "blobs" / blob.name
        try:
            if candidate.stat().st_size != entry.size or not check_file(candidate, entry).ok:
                continue
            tmp = blob.with_name(f"{blob.name}.{os.getpid()}.{threading.get_ident()}.link")
            tmp.unlink(missing_ok=True)
            os.link(candidate, tmp)
            os.replace(tmp, blob)
            return True
        except OSError:
            continue  # another file system, or links refused: download it
    return False


def _xet_ready(pin: Pin, headers: dict[str, str]) -> tuple[Any, dict[str, str]] | None:
    """A Xet connection for ``pin``'s commit and the headers for hf_xet (no Range), or None when
    Xet is not to be used."""
    from ..hub import xet
    from ..hub.api import endpoint_for

    from ..settings import no_xet

    if not xet.available() or no_xet():
        return None
    from huggingface_hub import constants

    auth = {k: v for k, v in headers.items() if k.lower() != "range"}
    return xet.connect(xet.token_url(endpoint_for(pin, at_pull=True) or constants.ENDPOINT, pin.id, pin.commit or ""), auth), auth


def _xet_download(pin: Pin, entry: FileEntry, writer: Any, done: int, headers: dict[str, str]) -> bool:
    """Fetch a Xet-backed file with hf_xet's ordered stream from byte ``done`` on (0 for a fresh
    one), through ``writer``, which hashes every byte as it is written. The file grows in order,
    so a killed pull leaves a prefix the next one resumes from. False, with the bytes written so
    far kept, when hf_xet is missing or fails: the caller goes on over plain HTTP from there."""
    from ..hub import xet
    from ..io.hashing import TooLarge

    try:
        ready = _xet_ready(pin, headers)
        if ready is None:
            return False
        conn, auth = ready
        for chunk in xet.stream(conn, entry.xet or "", entry.size, done, auth):
            writer.write(chunk)
        if writer.tell() != entry.size:
            raise ValueError(f"the stream ended after {writer.tell()} of {entry.size} bytes")
        return True
    except TooLarge:
        raise
    except Exception as e:  # noqa: BLE001 - any hf_xet or token failure: plain HTTP takes over
        note(f"{pin.id} {entry.path}: Xet download failed ({type(e).__name__}: {e}); continuing over HTTP")
        return False


def pin_ref(cache: Path, pin: Pin) -> None:
    """``refs/bundler/<commit>`` -> the commit, in the repo's cache folder.

    A ref of bundler's own: huggingface_hub's cache tools see the pinned revision as referenced
    (`hf cache prune` keeps it, `hf cache ls` names it), while ``refs/main`` and every other name
    stay huggingface_hub's. Moving ``main`` to a pin would make a plain `from_pretrained(id)` load
    a bundle's commit silently, and two bundles pinning different commits would fight over it.
    """
    assert pin.commit is not None
    refs = repo_folder(cache, pin.id) / "refs" / "bundler"
    refs.mkdir(parents=True, exist_ok=True)
    write_atomic(refs / pin.commit, pin.commit.encode())
    if pin.required_by:
        _main_for_dependency(cache, pin)


def _main_for_dependency(cache: Path, pin: Pin) -> None:
    """A repository the bundle pins because another loads it (an adapter's base model) is loaded
    by name, at ``main``: ``refs/main`` names the pin unless it already names another commit.
    Then the first pull on the host keeps it (moving it would change what a running service or
    another bundle loads), and this pull says so: loaded by name, that repository gives the
    other commit; the pinned files are still at ``snapshots/<commit>``."""
    assert pin.commit is not None
    main = repo_folder(cache, pin.id) / "refs" / (pin.revision or "main")
    try:
        current = main.read_text().strip()
    except FileNotFoundError:
        write_atomic(main, pin.commit.encode())
        return
    except OSError:
        current = ""
    if current != pin.commit:
        note(f"{pin.id} (needed by {pin.required_by}): refs/{main.name} in {cache} names {current[:12] or '?'}, not this "
             f"bundle's pin {pin.commit[:12]}; it is left as it is, so loading {pin.id} by name gets {current[:12] or 'that'}")


def _use_symlinks(directory: Path) -> bool:
    """huggingface_hub's rule: symlinks unless ``HF_HUB_DISABLE_SYMLINKS`` is set or the file
    system can't make them (checked once per directory)."""
    from ..settings import hf_disable_symlinks

    if hf_disable_symlinks():
        return False
    if directory in _SYMLINKS_OK:
        return _SYMLINKS_OK[directory]
    # Unique per thread: parallel downloads probe one snapshot directory at the same moment, and
    # a shared name made one of them see the other's probe, fail, and copy instead of linking.
    probe = directory / f".bundler-symlink-probe-{os.getpid()}-{threading.get_ident()}"
    try:
        probe.unlink(missing_ok=True)
        os.symlink("x", probe)
        probe.unlink()
        ok = True
    except OSError:
        ok = False
    _SYMLINKS_OK[directory] = ok
    return ok


_SYMLINKS_OK: dict[Path, bool] = {}


def _failure(pin: Pin, check: Check, why: str) -> dict[str, Any]:
    return {
        "model": pin.id,
        "commit": pin.commit,
        "path": check.entry.path,
        "problem": why,
        "expected": check.entry.expected(check.actual),
        "actual": check.actual,
    }


def fetch(
    result: PullResult, pins: list[Pin], *, jobs: int, verify_only: bool, progress: Progress | None,
    no_pickle: bool = False, local: Mapping[tuple[Any, str], Path] | None = None,
) -> None:
    """Every pinned Hub file checked in the cache; the missing and modified ones fetched (from
    the bundle's embedded copy, ``local`` copies, or the Hub) on ``jobs`` threads, unless
    ``verify_only``."""
    todo = _unverified(result, pins, verify_only=verify_only, progress=progress, no_pickle=no_pickle)
    if not todo:
        return
    # Files a bundle carries (--embed-hub) are placed from the unpacked bundle, not downloaded.
    from collections import ChainMap

    embedded = {
        (pin.key, entry.path): result.dest / hub_model_dir(pin) / entry.path
        for pin in result.manifest.embedded_hub
        for entry in pin.files
    }
    # a chain, not a merge: an image's blobs (``local``) are fetched only when a file is asked for
    local = ChainMap(embedded, local or {})  # type: ignore[arg-type]
    if hub_offline():
        _refuse_offline(result, [t for t in todo if (t[0].key, t[1].path) not in local])
    _download_all(result, todo, local, _spellings(result.cache, pins), jobs=jobs, progress=progress, no_pickle=no_pickle)


def _spellings(cache: Path, pins: list[Pin]) -> dict[str, list[Path]]:
    """Spellings of one repository (the Hub's ids ignore case; ``hub_id`` names a renamed one):
    each keeps its own cache folder, where its loaders look, but a blob is fetched once."""
    spellings: dict[str, list[Path]] = {}
    for pin in pins:
        folders = spellings.setdefault(_repo_key(pin), [])
        for rid in (pin.id, pin.hub_id):
            if rid and repo_folder(cache, rid) not in folders:
                folders.append(repo_folder(cache, rid))
    return spellings


def _unverified(result: PullResult, pins: list[Pin], *, verify_only: bool, progress: Progress | None,
                no_pickle: bool) -> list[tuple[Pin, FileEntry, Path]]:
    """The pinned files the cache lacks or holds modified (a modified one is removed); the rest
    are counted as cached, or as failures when ``verify_only``."""
    todo: list[tuple[Pin, FileEntry, Path]] = []
    for pin in pins:
        if not verify_only:
            pin_ref(result.cache, pin)
        snap = snapshot_dir(result.cache, pin.id, pin.commit or "")
        for entry in pin.files:
            check = check_file(snap / entry.path, entry, full=verify_only)
            if check.ok and no_pickle and (problem := _pickle_problem(snap / entry.path)) is not None:
                result.failures.append(_failure(pin, check, problem))  # cached earlier: refused, left as it is
                continue
            if check.ok:
                result.cached.append((pin, entry))
                if progress:
                    progress("cached", pin, entry)
                continue
            if check.status == "mismatch":
                remove_cached(check.path)
                if verify_only:
                    result.failures.append(_failure(pin, check, "modified (removed)"))
                    continue
                result.refetched.append(f"{pin.id}/{entry.path}")
            elif verify_only:
                result.failures.append(_failure(pin, check, "missing"))
                continue
            todo.append((pin, entry, snap / entry.path))
    return todo


def _download_all(result: PullResult, todo: list[tuple[Pin, FileEntry, Path]], local: Mapping[tuple[Any, str], Path],
                  spellings: dict[str, list[Path]], *, jobs: int, progress: Progress | None, no_pickle: bool) -> None:
    # A blob that another spelling in this pull fetches too waits for that download, then is linked;
    # the Hub's own spelling (no hub_id) is the one that downloads.
    first: dict[tuple[str, str], str] = {}
    now: list[tuple[Pin, FileEntry, Path]] = []
    later: list[tuple[Pin, FileEntry, Path]] = []
    for t in sorted(todo, key=lambda t: t[0].hub_id is not None):
        owner = first.setdefault((_repo_key(t[0]), t[1].hash), t[0].id)
        (now if owner == t[0].id else later).append(t)

    def one(pin: Pin, entry: FileEntry, path: Path) -> tuple[Pin, FileEntry, Check | None, str | None]:
        if progress:
            progress("start", pin, entry)
        own = repo_folder(result.cache, pin.id)
        twins = [f for f in spellings[_repo_key(pin)] if f != own]
        try:
            check = download_pinned(pin, entry, result.cache, local.get((pin.key, entry.path)), twins, stop, no_pickle)
        except PickleRefused as e:
            return pin, entry, None, e.message
        except Exception as e:  # noqa: BLE001 - reported per file below
            return pin, entry, None, _fetch_problem(e, pin, entry)
        return pin, entry, check, None

    # Ctrl-C lands in this thread: the downloads on the workers are told to stop at their next
    # chunk and the queued ones are dropped (leaving the pool's block would otherwise download
    # everything first), so the command ends now, with resumable partial files.
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        with _quiet_hub():
            for batch in (now, later):
                for fut in as_completed([pool.submit(one, *t) for t in batch]):
                    got = fut.result()
                    _record(result, *got, progress, embedded=(got[0].key, got[1].path) in local)
    except BaseException:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()


def _fetch_problem(e: Exception, pin: Pin, entry: FileEntry) -> str:
    """One line for a file that could not be fetched: the Hub's error translated, else as it is."""
    from ..hub.api import hub_error

    try:
        err: BundlerError = hub_error(e, pin, None, None, action="fetch", path=entry.path)
    except Exception:  # noqa: BLE001 - unknown: report it as it is
        return f"{type(e).__name__}: {e}"
    return err.message + (f" ({err.hint})" if err.hint else "")


@contextmanager
def _quiet_hub() -> Iterator[None]:
    """huggingface_hub's progress bars and retry warnings off while a pull downloads (ours are
    per file; failures are reported once), and back as they were after: a library caller keeps
    its own settings."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from huggingface_hub.utils import logging as hf_logging

    bars_were_off = are_progress_bars_disabled()
    verbosity = hf_logging.get_verbosity()
    disable_progress_bars()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if not bars_were_off:
            enable_progress_bars()


def _repo_key(pin: Pin) -> str:
    """One key for every spelling of a repository: the Hub's own id, in the Hub's case-blind way."""
    return (pin.hub_id or pin.id).lower()


def _refuse_offline(result: PullResult, missing: list[tuple[Pin, FileEntry, Path]]) -> None:
    """Offline, Hub files the cache lacks and the bundle does not carry: one error, with the ways out."""
    if not missing:
        return
    models = sorted({pin.id for pin, _, _ in missing})
    raise ProblemFound(
        f"{len(missing)} pinned Hub file(s) of {', '.join(models)} are not in the cache {result.cache} and not "
        f"in the bundle, and HF_HUB_OFFLINE forbids downloading them",
        hint="pull where the Hub is reachable (unset HF_HUB_OFFLINE), or build the bundle with --embed-hub so it "
             "carries them, or point --cache-dir at a cache that holds them",
    )


def _record(result: PullResult, pin: Pin, entry: FileEntry, check: Check | None, error: str | None,
            progress: Progress | None, *, embedded: bool = False) -> None:
    if error is not None:
        result.failures.append({"model": pin.id, "commit": pin.commit, "path": entry.path, "problem": error, "expected": entry.hash, "actual": None})
        if progress:
            progress("failed", pin, entry)
    elif check is not None and not check.ok:
        remove_cached(check.path)
        result.failures.append(_failure(pin, check, "downloaded file does not match its pin (removed)"))
        if progress:
            progress("failed", pin, entry)
    elif check is not None and check.linked:
        result.linked.append(f"{pin.id}/{entry.path}")
        if progress:
            progress("done", pin, entry)
    else:
        (result.embedded if embedded else result.downloaded).append((pin, entry))
        if progress:
            progress("done", pin, entry)


def land_store_models(result: PullResult, pins: list[Pin]) -> None:
    """Each model whose files travel in the bundle, landed where its services find it."""
    for pin in pins:
        where = result.manifest.model_dir(pin)
        if where is not None and (tag := kinds.of(pin).land(pin, result.dest / where)) is not None:
            result.store_imported.append(tag)


def fetch_host_models(result: PullResult, pins: list[Pin], *, verify_only: bool) -> None:
    """Each model a deploy host keeps in bundler's own cache (S3 objects the bundle does not
    carry): what the cache lacks is fetched and verified (``kind.local_copy``); ``verify_only``
    re-hashes every file and reports, fetching nothing."""
    for pin in pins:
        kind = kinds.of(pin)
        if not kind.fetched or result.manifest.model_dir(pin) is not None:
            continue
        base = kind.host_dir(pin)
        missing = [c for c in (check_file(base / f.path, f, full=verify_only) for f in pin.files) if not c.ok]
        if verify_only:
            result.failures += [_failure(pin, c, c.status if c.status == "missing" else "modified") for c in missing]
        elif missing:
            kind.local_copy(pin)
            result.downloaded += [(pin, c.entry) for c in missing]


def pull(
    bundle: str | os.PathLike[str],
    *,
    to: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    jobs: int = 8,
    verify_only: bool = False,
    progress: Progress | None = None,
    insecure: bool = False,
    token: str | None = None,
    service: str | None = None,
    model: str | None = None,
    signed_by: str | os.PathLike[str] | Trust | None = None,
    no_pickle: bool = False,
) -> PullResult:
    """Pull a bundle archive, or a pushed bundle (``oci://HOST/REPO:TAG`` or ``@sha256:…``), or
    check and complete a directory a pull made. ``service`` pulls only the models of that service
    and of the services it depends on; ``model`` one model (by attribute or id). ``signed_by``
    (a public key's path, or a trust) requires a signature it accepts, else the host's
    (``BUNDLER_REQUIRE_SIGNATURE``, or ``BUNDLER_REQUIRE_IDENTITY`` with its issuer)."""
    only = _Choices(service, model, no_pickle)
    key = _trust_of(signed_by)
    if key is not None:
        _require_signature(str(bundle), key)
    from ..bundle.archive import read_manifest

    if str(bundle).startswith("oci://"):
        from ..oci import registry as oci
        from ..oci.image import PushedImage

        pushed = oci.open_pushed(str(bundle), insecure=insecure, token=token)
        manifest = pushed.manifest
        # The manifest's name and version were validated as single safe path components.
        dest = Path(to) if to is not None else Path.cwd() / f"{manifest.name}-{manifest.version}"
        unpacked = False
        try:
            if key is not None:  # the pushed bundle read once: its signature checked before anything is written
                from .oci_signing import check_pushed

                check_pushed(pushed, key)
            if not verify_only:
                unpacked = unpack_with(dest, manifest, pushed.fetch_into)
            # an image carries the Hub files too: placed from it, checked against their pins
            hub_local = pushed.hub_local() if isinstance(pushed, PushedImage) and not verify_only else None
            return _pull(None, manifest, dest, cache_dir, jobs, verify_only, progress, label=str(bundle), unpacked=unpacked, only=only,
                         hub_local=hub_local)
        finally:
            if isinstance(pushed, PushedImage):
                pushed.close()
    bundle = Path(bundle)
    if bundle.is_dir():
        return _pull_dir(bundle, to=to, cache_dir=cache_dir, jobs=jobs, verify_only=verify_only, progress=progress, only=only)
    manifest = read_manifest(bundle)
    dest = Path(to) if to is not None else default_dest(bundle)
    return _pull(bundle, manifest, dest, cache_dir, jobs, verify_only, progress, only=only)


def _trust_of(signed_by: str | os.PathLike[str] | Trust | None) -> Trust | None:
    """Whom this pull's signature must be by: a public key's path, a trust, else the host's."""
    from .signing import as_trust

    return _required_trust() if signed_by is None else as_trust(Path(signed_by) if isinstance(signed_by, os.PathLike) else signed_by)


def _required_trust() -> Trust | None:
    """The signature this host requires of every pull: ``BUNDLER_REQUIRE_SIGNATURE=PUB.pem`` (a
    key), or ``BUNDLER_REQUIRE_IDENTITY`` with ``BUNDLER_REQUIRE_ISSUER`` (a Sigstore identity;
    ``BUNDLER_SIGSTORE_OFFLINE=1``: with the trust root this host has)."""
    from ..settings import require_identity, require_signature, sigstore_offline

    key, who = require_signature(), require_identity()
    if key and who:
        raise UsageError("BUNDLER_REQUIRE_SIGNATURE and BUNDLER_REQUIRE_IDENTITY are both set", hint="require a key or a Sigstore identity, not both")
    if key:
        from .signing import KeyTrust

        return KeyTrust(Path(key))
    if who:
        from .keyless import IdentityTrust

        return IdentityTrust(who[0], who[1], offline=sigstore_offline())
    return None


@dataclass(frozen=True)
class _Choices:
    """What this pull is asked to fetch and to refuse: one service's models, one model, pickles."""

    service: str | None = None
    model: str | None = None
    no_pickle: bool = False


def _require_signature(bundle: str, key: Trust) -> None:
    """A signature ``key`` accepts over every byte, checked before anything is written (no directory,
    nothing in the caches or stores). A pushed bundle's key is checked here, its signature once
    it is read (``check_pushed``): its referrers, then every member against the signed bundle.yaml."""
    from .signing import verify

    if bundle.startswith("oci://"):
        key.check()
        return
    if Path(bundle).is_dir():
        raise UsageError(f"{bundle}: a required signature is checked on the bundle archive (with BUNDLE.sig beside it) or its oci:// reference",
                         hint="pull the archive, or unset the requirement for this pull")
    verify(Path(bundle), key)


def _pull_dir(dest: Path, *, to: str | os.PathLike[str] | None, cache_dir: str | os.PathLike[str] | None,
              jobs: int, verify_only: bool, progress: Progress | None, only: _Choices) -> PullResult:
    """A directory a pull made (its ``bundle.yaml``): verify it, or fetch what its Hub pins lack,
    into the cache the pull recorded unless ``--cache-dir`` names another."""
    from ..bundle.manifest import loads
    from ..io.safe_read import read_regular

    if to is not None and Path(to).resolve() != dest.resolve():
        raise UsageError(f"{dest}: an unpacked bundle is pulled in place; --to names another directory",
                         hint="pull the bundle archive or its oci:// reference to unpack it elsewhere")
    path = dest / MANIFEST_NAME
    try:
        raw = read_regular(path, 64 << 20)
    except FileNotFoundError:
        raise UsageError(f"{dest}: no {MANIFEST_NAME} here: not a directory `bundler pull` made",
                         hint="pass the bundle archive, its oci:// reference, or the directory a pull unpacked it to") from None
    manifest = loads(raw, str(path))
    if cache_dir is None:
        try:
            cache_dir = json.loads((dest / PULL_RECORD).read_text())["cache_dir"]
        except (OSError, ValueError, KeyError, TypeError):
            cache_dir = None
    if not verify_only and _unpacked_problems(dest, manifest, full=False):
        raise ProblemFound(f"{dest}: the unpacked bundle is damaged", hint="pull the bundle archive (or its oci:// reference) again")
    return _pull(None, manifest, dest, cache_dir, jobs, verify_only, progress, label=str(dest), unpacked=False, only=only)


def _pull(
    bundle: Path | None,
    manifest: Manifest,
    dest: Path,
    cache_dir: str | os.PathLike[str] | None,
    jobs: int,
    verify_only: bool,
    progress: Progress | None,
    label: str | None = None,
    unpacked: bool = False,
    only: _Choices | None = None,
    hub_local: Mapping[tuple[Any, str], Path] | None = None,
) -> PullResult:
    from .selection import runnable, select

    only = only or _Choices()
    cache = hub_cache_dir(cache_dir)
    result = PullResult(label or str(bundle), dest, cache, manifest)
    keys = select(manifest, service=only.service, model=only.model)  # before anything is written: a bad name is exit 2
    chosen = [p for p in manifest.pins if keys is None or p.key in keys]
    result.services = runnable(manifest, keys)
    hub_pins = [p for p in chosen if kinds.of(p).hub]
    store_pins = [p for p in chosen if not kinds.of(p).hub]
    if verify_only:
        members = manifest.members()
        for name in _unpacked_problems(dest, manifest, full=True):
            problem = "bundle not unpacked here" if name == MANIFEST_NAME else "missing or modified (run `bundler pull` to restore it)"
            expected = manifest.digest if name == MANIFEST_NAME else members[name].hash
            result.failures.append({"model": None, "commit": None, "path": str(dest / name), "problem": problem, "expected": expected, "actual": None})
    else:
        result.unpacked = unpack(bundle, dest, manifest) if bundle is not None else unpacked
        land_store_models(result, store_pins)
    fetch_host_models(result, store_pins, verify_only=verify_only)
    fetch(result, hub_pins, jobs=jobs, verify_only=verify_only, progress=progress, no_pickle=only.no_pickle, local=hub_local)
    if not verify_only:
        pulled: dict[str, Any] = {"cache_dir": str(cache.resolve())}
        if keys is not None:  # a selective pull: what is here, and what it can run
            pulled["pins"] = sorted([list(k[:3]) + [list(k[3]) if k[3] else None, list(k[4]) if k[4] else None] for k in keys], key=str)
            pulled["services"] = result.services
        record = json.dumps(pulled, indent=2) + "\n"
        write_atomic(dest / PULL_RECORD, record.encode())
        from .records import note_pulled

        placed = sorted({(p.id, p.commit) for p, _ in result.downloaded + result.embedded if p.commit is not None})
        note_pulled(dest, cache, placed, result.store_imported)
    return result


def require_ok(result: PullResult) -> None:
    if not result.failures:
        return
    lines = []
    # One line per model and problem: a gated repository without a token is one line naming it
    # and HF_TOKEN, not one per file.
    same: dict[tuple[Any, Any, str], list[dict[str, Any]]] = {}
    for f in result.failures:
        key = (f["model"], f["commit"], f["problem"]) if f["model"] and not f.get("actual") else (None, None, str(id(f)))
        same.setdefault(key, []).append(f)
    for group in same.values():
        f = group[0]
        files = f"{f['path']}" + (f" and {len(group) - 1} more file(s)" if len(group) > 1 else "")
        where = f"{f['model']}@{(f['commit'] or '')[:12]} {files}" if f["model"] else f["path"]
        detail = f" (expected {f['expected']}, found {f['actual']})" if f.get("actual") else ""
        lines.append(f"{where}: {f['problem']}{detail}")
    raise ProblemFound(
        f"{result.bundle}: {len(lines)} problem(s)\n  " + "\n  ".join(lines),
        hint="run `bundler pull` again to fetch what is missing or was removed",
    )
