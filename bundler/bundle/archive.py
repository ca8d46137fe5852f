"""Bundle archives: a reproducible tar writer and a careful reader.

Writing normalises everything a machine leaks into a tar: entry order (the caller's, sorted),
mtimes (``SOURCE_DATE_EPOCH`` or a fixed epoch, as an int so PAX writes no fractional time),
owners (0, empty names), modes (0644, or 0755 for executables), no directory entries, no links,
and a gzip header with no file name and a zero mtime. Reading trusts nothing: members must be
regular files with normalised relative names.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Callable, Iterable, Iterator, NamedTuple

from ..errors import ProblemFound, UsageError
from ..io.compression import kind_of, open_decompressed
from ..io.hashing import Hashers, _blake3, new_hasher
from .manifest import Manifest, loads
from ..model.layout import MANIFEST_NAME
from ..model.pins import FileEntry

FIXED_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest date zip and wheels can hold
COPY_BUFFER = 4 << 20


def archive_mtime() -> int:
    from ..settings import source_date_epoch

    value = source_date_epoch()
    if value is None or value.strip() == "":
        return FIXED_EPOCH
    try:
        return max(0, int(value))
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH must be an integer, not {value!r}") from None


class _HashingReader:
    """Feeds every byte read through a hash: hashing in the same pass that copies."""

    def __init__(self, f: IO[bytes], algorithm: str, size: int) -> None:
        self.f = f
        self.algorithm = algorithm
        self.h = new_hasher(algorithm, size)
        self.hashers = Hashers([self.h], size)
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        if data:
            self.hashers.update(data)
        self.size += len(data)
        return data

    def close(self) -> None:
        self.hashers.finish()

    @property
    def digest(self) -> str:
        self.hashers.finish()
        return f"{self.algorithm}:{self.h.hexdigest()}"


def tar_info(name: str, size: int, executable: bool, mtime: int) -> tarfile.TarInfo:
    """A member as bundler writes every one: a regular file owned by 0 with no names, 0644 or 0755."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o755 if executable else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


@functools.lru_cache(maxsize=8)
def _template(executable: bool, mtime: int) -> tuple[bytes, bytes, bytes, int] | None:
    """A tarfile-made header cut around its name and size, and its byte sum without them."""
    made = tar_info("x", 0, executable, mtime).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    if len(made) != tarfile.BLOCKSIZE:
        return None
    # The checksum is the sum of every byte with its own field as spaces: the template's sum
    # without its name and size, plus those of each member (a sum over 512 bytes each would be
    # most of a small member's cost).
    base = bytearray(made)
    base[0:100] = bytes(100)
    base[124:136] = bytes(12)
    base[148:156] = b"        "
    return bytes(base[100:124]), bytes(base[136:148]), bytes(base[156:]), sum(base)


def ustar_header(raw_name: bytes, size: int, executable: bool, mtime: int) -> bytes | None:
    """The plain header bundler writes for a member (an ASCII name of at most 100 bytes)."""
    template = _template(executable, mtime)
    if template is None:
        return None
    between, after_size, rest, base_sum = template
    size_field = b"%011o\0" % size
    return b"".join((raw_name.ljust(100, b"\0"), between, size_field, after_size,
                     b"%06o\0 " % (base_sum + sum(raw_name) + sum(size_field)), rest))


class ArchiveWriter:
    def __init__(self, fileobj: IO[bytes], *, compress: bool | str) -> None:
        # gzip (True) or zstd ("zstd") on every core, in a way whose bytes never depend on the
        # number of threads: gzip in fixed independent blocks, zstd in its multi-threaded mode
        self._gz: Any = None  # the compressing stream, when there is one
        if compress == "zstd":
            from ..io.compression import zstd_writer

            self._gz = zstd_writer(fileobj)
        elif compress:
            from ..io.pgzip import ParallelGzipWriter  # its thread pool is not every command's start-up

            self._gz = ParallelGzipWriter(fileobj, level=6)
        self.tar = tarfile.open(  # type: ignore[call-overload]  # copybufsize: in tarfile, not in its stubs
            fileobj=self._gz or fileobj, mode="w", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFFER
        )
        self.mtime = archive_mtime()
        self._run: list[int] | None = None  # [fd, start, end]: members still to copy from a previous bundle

    def _header(self, name: str, size: int, executable: bool) -> bytes | None:
        """The member's header block: the same bytes tarfile writes for an ASCII name of at most
        100 bytes (no pax record needed), at a fraction of its cost per member. None for anything
        else: tarfile writes those."""
        try:
            raw = name.encode("ascii")
        except UnicodeEncodeError:
            return None
        if len(raw) > 100 or size >= 8**11:
            return None
        return ustar_header(raw, size, executable, self.mtime)

    @property
    def offset(self) -> int:
        """Where the next member's header goes."""
        return self.tar.offset + (self._run[2] - self._run[1] if self._run else 0)

    def copy_member(self, fd: int, start: int, end: int, name: str, size: int, executable: bool) -> bool:
        """Add a member by copying its whole record (header, data, padding) from ``start`` to
        ``end`` of another archive this writer's settings wrote (False, nothing added, when it
        can't be). Adjacent members are copied in one run, by the kernel where it can
        (``copy_file_range``). The first header of each run is read and compared with the one this
        writer would write; the members that follow it are taken on the caller's word (a previous
        bundle whose identity is unchanged since it was written: a read per member was most of a
        rebuild's packing)."""
        if end - start != tarfile.BLOCKSIZE + size + (-size % tarfile.BLOCKSIZE):
            return False
        if self._run is not None and self._run[0] == fd and self._run[2] == start:
            self._run[2] = end
            return True
        header = self._header(name, size, executable)
        if header is None or os.pread(fd, 512, start) != header:
            return False
        self._copy_run()
        self._run = [fd, start, end]
        return True

    def end_copies(self) -> None:
        """Copy what ``copy_member`` has queued (before its source is closed)."""
        self._copy_run()

    def _copy_run(self) -> None:
        if self._run is None:
            return
        fd, start, end = self._run
        self._run = None
        out = self.tar.fileobj
        out.flush()
        from ..io.copy import copy_range

        copy_range(fd, out.fileno(), start, end - start)
        out.seek(0, os.SEEK_END)  # the buffered writer's idea of its position, after the kernel's write
        self.tar.offset += end - start

    def _add(self, name: str, size: int, executable: bool, src: IO[bytes] | bytes) -> None:
        self._copy_run()
        header = self._header(name, size, executable)
        if header is None:
            import io

            self.tar.addfile(self._info(name, size, executable), io.BytesIO(src) if isinstance(src, bytes) else src)
            return
        out = self.tar.fileobj
        pad = -size % tarfile.BLOCKSIZE
        if isinstance(src, bytes):
            out.write(b"".join((header, src, bytes(pad))) if size < COPY_BUFFER else header + src)
            if size >= COPY_BUFFER and pad:
                out.write(bytes(pad))
        else:
            out.write(header)
            left = size
            while left:
                chunk = src.read(min(COPY_BUFFER, left))
                if not chunk:
                    raise OSError("unexpected end of data")
                out.write(chunk)
                left -= len(chunk)
            if pad:
                out.write(bytes(pad))
        self.tar.offset += tarfile.BLOCKSIZE + size + pad

    def _info(self, name: str, size: int, executable: bool) -> tarfile.TarInfo:
        return tar_info(name, size, executable, self.mtime)

    def add_bytes(self, name: str, data: bytes, executable: bool = False) -> None:
        self._add(name, len(data), executable, data)

    def add_file(self, name: str, src: Path, size: int, algorithm: str = "blake3") -> str:
        """Add ``src`` as ``name``, reading it once; returns its ``algorithm:hex`` hash."""
        executable = bool(os.stat(src).st_mode & 0o111)
        with open(src, "rb") as f:
            reader = _HashingReader(f, algorithm, size)
            try:
                self._add(name, size, executable, reader)  # type: ignore[arg-type]
            except OSError as e:
                if e.errno in WRITE_FAILURES:
                    raise  # the output's disk said no: not the model's fault
                raise ProblemFound(f"{src}: changed while it was being packed ({e})", hint="build again") from None
            finally:
                reader.close()
        if reader.size != size:
            raise ProblemFound(f"{src}: changed while it was being packed", hint="build again")
        return reader.digest

    def add_stream(self, name: str, f: IO[bytes], size: int, executable: bool = False, algorithm: str = "blake3") -> str:
        """Add ``size`` bytes read from ``f`` as ``name``, in bounded memory; returns their hash."""
        reader = _HashingReader(f, algorithm, size)
        try:
            self._add(name, size, executable, reader)  # type: ignore[arg-type]
        finally:
            reader.close()
        return reader.digest

    def close(self) -> None:
        self._copy_run()
        self.tar.close()
        if self._gz is not None:
            self._gz.close()


WRITE_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


# --- reading ----------------------------------------------------------------------------------
def _open(path: Path) -> tarfile.TarFile:
    if not path.exists():
        raise UsageError(f"{path}: no such file", hint="pass a bundle archive (.bundle.tar)")
    if path.is_dir():
        raise UsageError(f"{path}: is a directory", hint="pass a bundle archive (.bundle.tar)")
    if not path.is_file():
        raise UsageError(f"{path}: not a regular file (a pipe or a device?)", hint="save the bundle to a file first; verifying reads it more than once")
    with open(path, "rb") as raw:
        magic = raw.read(6)
    if magic.startswith(b"BZh") or magic.startswith(b"\xfd7zXZ"):
        raise UsageError(f"{path}: a bz2 or xz archive; bundles are .tar, .tar.gz or .tar.zst",
                         hint="recompress it with gzip or zstd, or use the .tar `bundler build` wrote")
    try:
        # Stream mode: nothing past what is asked for is read, and nothing seeks.
        if kind_of(magic) == "zstd":
            return _OwningTarFile.open(fileobj=open_decompressed(path), mode="r|")
        return tarfile.open(path, mode="r|*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise UsageError(f"{path}: not a bundle archive ({e})", hint="pass a file written by `bundler build`") from None


class _OwningTarFile(tarfile.TarFile):
    """A stream-mode TarFile over a decompressing reader it closes when it closes (tarfile closes
    only files it opened itself)."""

    def close(self) -> None:
        try:
            super().close()
        finally:
            inner = getattr(self.fileobj, "fileobj", None)  # tarfile's stream wraps the reader
            if inner is not None:
                inner.close()


def members_of(tar: tarfile.TarFile, shown: str) -> Iterator[tarfile.TarInfo]:
    """The members of an untrusted tar, one at a time; a negative size is a forged header (a
    seekable tarfile would step back onto it forever) and an error before the next is read."""
    for member in tar:
        if member.size < 0:
            raise UsageError(f"{shown}: member {member.name!r} has a negative size ({member.size}): a forged header")
        yield member


def check_member(member: tarfile.TarInfo, shown: str) -> str:
    """The member's name if it is a regular file at a normalised relative path; else an error."""
    name = member.name
    if not (member.isreg()):
        kind = "link" if (member.issym() or member.islnk()) else "directory" if member.isdir() else "special file"
        raise UsageError(f"{shown}: member {name!r} is a {kind}; bundles hold regular files only")
    p = PurePosixPath(name)
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in name.split("/"))
        or p.as_posix() != name
    ):
        raise UsageError(f"{shown}: member {name!r} has an unsafe path")
    if member.size < 0:  # tarfile reads a "-" in the size field, and would step back onto the same header forever
        raise UsageError(f"{shown}: member {name!r} has a negative size ({member.size}): a forged header")
    return name


class ExpectedMembers:
    """The members a bundle manifest lists, for reading untrusted members against it in one place:
    each name must be listed, may come once, and must have the listed size."""

    def __init__(self, manifest: Manifest, where: str) -> None:
        self.entries = manifest.members()
        self.where = where
        self.seen: set[str] = set()

    def accept(self, name: str, size: int) -> FileEntry:
        entry = self.entries.get(name)
        if entry is None:
            raise UsageError(f"{self.where}: member {name!r} is not in the manifest; refusing it")
        if name in self.seen:
            raise UsageError(f"{self.where}: member {name!r} appears twice; refusing it")
        if size != entry.size:
            raise UsageError(f"{self.where}: member {name!r} is {size} bytes but the manifest says {entry.size}; refusing it")
        self.seen.add(name)
        return entry

    def require_all(self) -> None:
        missing = sorted(set(self.entries) - self.seen)
        if missing:
            raise ProblemFound(f"{self.where}: members missing: {', '.join(missing)}", hint="the bundle is incomplete; fetch or build it again")


def write_member(
    root: Path, name: str, src: IO[bytes], entry: FileEntry, *, executable: bool = False, tee: Any = None, made: set[str] | None = None
) -> None:
    """Write one member of a bundle under ``root``, checked against its manifest ``entry``.

    The file must not exist yet (``O_EXCL``, no following links); it may not grow past the size
    the manifest gives, and its hash must match. ``tee`` (a hashlib object) sees the same bytes,
    for a transport digest checked by the caller.
    """
    algorithm = entry.hash.partition(":")[0]
    # Plain strings, not Path objects: a bundle of 20,000 sources paid for two Paths per member.
    target = os.path.join(root, name)
    parent = os.path.dirname(target)
    if made is None or parent not in made:  # ``made``: directories already created
        os.makedirs(parent, exist_ok=True)
        if made is not None:
            made.add(parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o755 if executable else 0o644)
    h = new_hasher(algorithm, entry.size)
    also = new_hasher("sha256") if getattr(entry, "sha256", None) else None  # the sha256 beside a blob id
    hashers = Hashers([x for x in (h, tee, also) if x is not None], entry.size)
    size = 0
    try:
        # Straight to the descriptor: a buffered file object per member cost more than the write
        # for a bundle of 20,000 small sources, and large chunks bypass its buffer anyway.
        while chunk := src.read(COPY_BUFFER):
            size += len(chunk)
            if size > entry.size:
                raise UsageError(f"member {name!r} is larger than the manifest says ({entry.size} bytes); refusing it")
            hashers.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
    finally:
        try:
            os.close(fd)
        finally:  # a failing close must not leave the hash thread holding its pipeline slot
            hashers.finish()
    if size != entry.size or f"{algorithm}:{h.hexdigest()}" != entry.hash or (also is not None and also.hexdigest() != entry.sha256):
        raise ProblemFound(f"member {name!r} does not match the manifest's hash", hint="the bundle is corrupt; fetch it again")


def read_member(path: str | os.PathLike[str], name: str, limit: int) -> bytes | None:
    """One member's bytes (a small one: ``limit``), found by walking the headers; None when the
    bundle has none of that name or it is larger. The caller checks them against the manifest."""
    tar = _open(Path(path))
    try:
        for member in members_of(tar, str(path)):
            if member.name == name and member.isreg() and member.size <= limit:
                f = tar.extractfile(member)
                return f.read() if f is not None else None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise UsageError(f"{path}: truncated or corrupt archive ({e})") from None
    finally:
        tar.close()
    return None


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read only the first member: time does not grow with the bundle's size."""
    return loads(manifest_bytes(path), str(path))


def manifest_bytes(path: str | os.PathLike[str]) -> bytes:
    """The first member's bytes, which must be the manifest (unchecked: ``loads`` checks them)."""
    path = Path(path)
    tar = _open(path)
    try:
        first = tar.next()
        if first is None or first.name != MANIFEST_NAME or not first.isreg():
            raise UsageError(f"{path}: no bundle.yaml at the start of the archive", hint="pass a file written by `bundler build`")
        f = tar.extractfile(first)
        assert f is not None
        raw = f.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise UsageError(f"{path}: truncated or corrupt archive ({e})") from None
    finally:
        tar.close()
    return raw


@dataclass
class VerifyReport:
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.modified)

    def to_json(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "missing": self.missing, "extra": self.extra, "modified": self.modified}


class _MemberReader:
    """A member's file object whose read errors (a cut or damaged archive) are one clear error,
    wherever the caller reads it."""

    def __init__(self, f: IO[bytes], path: Path, name: str) -> None:
        self._f, self._path, self._name = f, path, name

    def read(self, n: int = -1) -> bytes:
        try:
            return self._f.read(n)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise UsageError(f"{self._path}: truncated or corrupt archive in member {self._name!r} ({e})", hint="fetch or build the bundle again") from None


class _RegionReader:
    """One member of an uncompressed bundle, read by offset in large reads (tarfile's stream
    reader copies through a 10 KiB record buffer)."""

    def __init__(self, fd: int, offset: int, size: int, path: Path, name: str) -> None:
        self._fd, self._offset, self._left, self._path, self._name = fd, offset, size, path, name

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self._offset)
        if not data:
            raise UsageError(f"{self._path}: truncated archive in member {self._name!r}", hint="fetch or build the bundle again")
        self._offset += len(data)
        self._left -= len(data)
        return data


def iter_members(path: Path) -> Iterator[tuple[str, tarfile.TarInfo, IO[bytes]]]:
    """Every member after the manifest, validated, with a file object to read it: an
    uncompressed bundle read in place by offset, a gzip one streamed."""
    if not is_compressed(path):
        members = _plain_members(path)
        with open(path, "rb") as f:
            for name, size, mode, offset in members:
                yield name, _Header(size, mode, offset), _RegionReader(f.fileno(), offset, size, path, name)  # type: ignore[misc]
        return
    # compressed: streamed; a claimed size past the end shows as a truncated stream while it is read
    tar = _open(path)
    shown = str(path)
    try:
        first = tar.next()
        if first is None or first.name != MANIFEST_NAME:
            raise UsageError(f"{path}: no bundle.yaml at the start of the archive")
        while (m := tar.next()) is not None:
            name = check_member(m, shown)
            data = tar.extractfile(m)
            assert data is not None
            yield name, m, _MemberReader(data, path, name)  # type: ignore[misc]
        if not _ends_with_marker(path, tar.offset):
            raise UsageError(f"{path}: truncated archive (no end-of-archive marker after {tar.offset} bytes)")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise UsageError(f"{path}: truncated or corrupt archive ({e})") from None
    finally:
        tar.close()


def is_compressed(path: Path) -> bool:
    """gzip or zstd (by the first bytes): read as a stream, never in place."""
    from ..io.compression import compression_of

    return compression_of(path) is not None


def _ends_with_marker(path: Path, offset: int) -> bool:
    """A whole tar ends with two zero blocks; one cut at a member boundary lacks them."""
    with open_decompressed(path) as f:
        if hasattr(f, "seek"):
            f.seek(offset)
        else:  # a zstd stream can't seek: read up to the offset
            left = offset
            while left > 0:
                skipped = f.read(min(left, COPY_BUFFER))
                if not skipped:
                    return False
                left -= len(skipped)
        return f.read(1024) == bytes(1024)


def _plain_members(path: Path) -> list[tuple[str, int, int, int]]:
    """(name, size, mode, offset of its data) of every member after the manifest of an
    uncompressed bundle, from its headers alone (the data is skipped by seeking), validated as
    ``iter_members`` validates them."""
    fast = _simple_members(path)
    if fast is not None:
        return fast
    size = path.stat().st_size
    shown = str(path)
    try:
        with tarfile.open(path, "r:") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST_NAME:
                raise UsageError(f"{path}: no bundle.yaml at the start of the archive")
            out = []
            while (member := tar.next()) is not None:
                name = check_member(member, shown)
                if member.offset_data + member.size > size:
                    raise UsageError(f"{path}: member {name!r} claims {member.size} bytes, more than the file holds (truncated or forged)")
                out.append((name, member.size, member.mode, member.offset_data))
            end = tar.offset
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UsageError(f"{path}: truncated or corrupt archive ({e})") from None
    if not _ends_with_marker(path, end):
        raise UsageError(f"{path}: truncated archive (no end-of-archive marker after {end} bytes)")
    return out


class _Header(NamedTuple):
    size: int
    mode: int
    offset_data: int




def _simple_members(path: Path) -> list[tuple[str, int, int, int]] | None:
    """``_plain_members`` for an archive of plain ustar headers only (what bundler writes for
    ASCII names up to 100 bytes), parsed directly: tarfile's header object costs more than
    hashing a small member. None as soon as any header is of another kind (pax records, long
    names, links, a damaged block): tarfile then reads the archive and gives its own errors."""
    import mmap

    with open(path, "rb") as f:
        total = os.fstat(f.fileno()).st_size
        if total < 1536:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _simple_walk(mm, total)


def _simple_walk(mm: Any, total: int) -> list[tuple[str, int, int, int]] | None:
    """Each header compared, inline, with the one bundler writes for its name, size and mode
    (``ustar_header``'s bytes: a call per piece cost more than hashing a small member); the names
    are checked together at the end, by one regex."""
    try:
        heads = _heads(int(mm[136:148].rstrip(b"\0 ") or b"-1", 8))
    except ValueError:
        return None
    if heads is None:
        return None
    out: list[tuple[bytes, int, int, int]] = []
    names: list[bytes] = []
    offset = 0
    while True:
        block = mm[offset:offset + 512]
        head = heads.get(block[100:124])  # mode, owner and group: one of the two bundler writes
        if head is None or len(block) < 512:
            if block == _ZERO_BLOCK and out and mm[offset + 512:offset + 1024] == _ZERO_BLOCK:
                break
            return None
        after_size, rest, sum_off, mode = head
        raw_name, size_field = block[:100].rstrip(b"\0"), block[124:136]  # a NUL left inside fails the name check
        try:
            size = int(size_field[:11], 8)
        except ValueError:
            return None
        start = offset + 512
        # the checksum: the template's sum with the name and size fields as they are here
        if (size < 0 or size_field != b"%011o\0" % size or block[136:148] != after_size or block[156:] != rest
                or block[148:156] != b"%06o\0 " % (sum(block[:136]) + sum_off) or start + size > total):
            return None
        names.append(raw_name)
        out.append((raw_name, size, mode, start))
        offset = start + size + (-size % 512)
    if names[0] != _MANIFEST_RAW or _MANIFEST_RAW in names[1:] or not _SAFE_NAMES.fullmatch(b"\n".join(names) + b"\n"):
        return None
    return [(raw.decode("ascii"), size, mode, start) for raw, size, mode, start in out[1:]]


@functools.lru_cache(maxsize=4)
def _heads(mtime: int) -> dict[bytes, tuple[bytes, bytes, int, int]] | None:
    """The header bytes from mode to group (offsets 100-124) of the two kinds of member bundler
    writes, each with the rest of its template, what its byte sum adds to that of the header's
    first 136 bytes (name, mode to group, size) to make its checksum, and its mode."""
    heads = {}
    for mode in (0o644, 0o755):
        template = _template(mode == 0o755, mtime)
        if template is None:
            return None
        between, after_size, rest, base_sum = template
        heads[between] = (after_size, rest, base_sum - sum(between), mode)
    return heads


_ZERO_BLOCK = bytes(512)
_MANIFEST_RAW = MANIFEST_NAME.encode("ascii")
# printable ASCII but / and \, not . or .. (names are checked one per line, so a segment ends at / or a newline)
_SEGMENT = rb"(?!\.\.?[/\n])[\x20-\x2e\x30-\x5b\x5d-\x7e]+"
_SAFE_NAMES = re.compile(rb"(?:" + _SEGMENT + rb"(?:/" + _SEGMENT + rb")*\n)+")


_WINDOW = 32 << 20  # hashed at once on every core, then unmapped: RSS stays near this


def _hash_region(view: memoryview, mm: Any, offset: int, size: int, algorithm: str) -> str:
    """Hash a member in place from the mapped bundle: no copy out of the page cache (a read
    into a buffer cost a third of verify's time), blake3 on every core for large members, and
    each window dropped from the mapping once hashed so memory stays flat."""
    if algorithm == "blake3" and size < 8 << 20:  # thousands of small sources: one call each
        return "blake3:" + _blake3(view[offset:offset + size]).hexdigest()
    h = _region_hasher(algorithm, size)
    _hash_windows(view, mm, offset, size, (h,))
    return f"{algorithm}:{h.hexdigest()}"


def _region_hasher(algorithm: str, size: int) -> Any:
    """A hash object for a member's recorded algorithm: blake3 on every core from 8 MiB on."""
    if algorithm == "blake3" and size >= 8 << 20:
        from blake3 import blake3

        return _blake3(max_threads=blake3.AUTO)
    return new_hasher(algorithm, size)


def _hash_windows(view: memoryview, mm: Any, offset: int, size: int, hashers: tuple[Any, ...]) -> None:
    """Feed a member to every hasher one window at a time, each full window dropped from the
    mapping once hashed."""
    import mmap

    done = 0
    while done < size:
        start = offset + done
        n = min(_WINDOW, size - done)
        window = view[start : start + n]
        for h in hashers:
            h.update(window)
        window.release()
        if n == _WINDOW:
            page = start - start % mmap.PAGESIZE
            mm.madvise(mmap.MADV_DONTNEED, page, start + n - page)
        done += n


def sha256_and_pinned(path: Path, accept: Callable[[str, int], str]) -> Iterator[tuple[str, str, str]]:
    """``(name, sha256 hex, "algo:hex")`` of every member after the manifest of an uncompressed
    bundle: its sha256 (what a signature names) and, in the same read, its hash in the algorithm
    ``accept(name, size)`` returns (which may raise to refuse the member). Read in place from
    the mapping; members of 8 MiB or more are hashed on every core at once (hashlib and blake3
    let go of the GIL), the rest here as they come. Order: small members first."""
    import mmap
    from concurrent.futures import ThreadPoolExecutor

    members = _plain_members(path)  # every member is checked to lie inside the file
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        mm.madvise(mmap.MADV_SEQUENTIAL)
        view = memoryview(mm)
        pool = ThreadPoolExecutor(os.cpu_count() or 1)
        try:
            large = []
            for name, size, _, offset in members:
                algorithm = accept(name, size)
                if size >= 8 << 20:
                    large.append((name, pool.submit(_two_hashes, view, mm, offset, size, algorithm)))
                else:
                    yield (name, *_two_hashes(view, mm, offset, size, algorithm))
            for name, running in large:
                yield (name, *running.result())
        finally:
            pool.shutdown(cancel_futures=True)  # waits for the running ones: they read the mapping
            view.release()


def _two_hashes(view: memoryview, mm: Any, offset: int, size: int, algorithm: str) -> tuple[str, str]:
    import hashlib

    sha, own = hashlib.sha256(), _region_hasher(algorithm, size)
    _hash_windows(view, mm, offset, size, (sha, own))
    return sha.hexdigest(), f"{algorithm}:{own.hexdigest()}"


def verify(path: str | os.PathLike[str]) -> tuple[Manifest, VerifyReport]:
    """Re-hash every member against the manifest: missing, extra and modified members by path.

    An uncompressed bundle is read in place (headers by seeking, members read by offset and
    hashed on all cores): a gzip stream can only be read from the start, once."""
    path = Path(path)
    manifest = read_manifest(path)
    if is_compressed(path):
        return manifest, _report(manifest, _streamed_members(path), _stream_digest)
    import mmap

    members = _plain_members(path)  # every member is checked to lie inside the file
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        mm.madvise(mmap.MADV_SEQUENTIAL)
        view = memoryview(mm)
        try:
            return manifest, _report(manifest, ((name, size, offset) for name, size, _, offset in members),
                                     lambda algorithm, size, offset: _hash_region(view, mm, offset, size, algorithm))
        finally:
            view.release()


# (name, size in the header, what the digest function reads it from: a file object or an offset)
_Member = tuple[str, int, Any]


def _streamed_members(path: Path) -> Iterator[_Member]:
    for name, member, f in iter_members(path):
        yield name, member.size, f


def _stream_digest(algorithm: str, size: int, f: IO[bytes]) -> str:
    h = new_hasher(algorithm, size)
    while chunk := f.read(COPY_BUFFER):
        h.update(chunk)
    return f"{algorithm}:{h.hexdigest()}"


def _report(manifest: Manifest, members: Iterable[_Member], digest: Callable[[str, int, Any], str]) -> VerifyReport:
    """Compare each member with the manifest; ``digest(algorithm, size, where)`` hashes one (read
    only for members of the right name and size)."""
    expected = manifest.expected_members()
    report = VerifyReport()
    seen: set[str] = set()
    for name, size, where in members:
        entry = expected.get(name)
        if name in seen or entry is None:
            report.extra.append(name)
            continue
        seen.add(name)
        if size != entry[0]:
            report.modified.append(name)
            continue
        report.checked += 1
        if digest(entry[1].partition(":")[0], size, where) != entry[1]:
            report.modified.append(name)
    report.missing = sorted(set(expected) - seen)
    return report


def require_ok(path: str | os.PathLike[str], report: VerifyReport) -> None:
    if report.ok:
        return
    lines = [f"missing:  {n}" for n in report.missing]
    lines += [f"modified: {n}" for n in report.modified]
    lines += [f"extra:    {n}" for n in report.extra]
    if len(lines) > 50:  # the whole list is in `--json`; a terminal gets the start and a count
        lines = lines[:50] + [f"... and {len(lines) - 50} more (--json lists them all)"]
    raise ProblemFound(f"{path}: verification failed\n  " + "\n  ".join(lines), hint="rebuild the bundle; don't edit it")
