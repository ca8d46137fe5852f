"""``bundler build``: scan -> pins (lock file first) -> source files -> manifest -> archive."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import kinds
from ..errors import ProblemFound, UsageError
from ..introspect import ScanResult, Service
from .lock import LockResult
from ..bundle.manifest import SCHEMA, schema_for, VERSION_LENGTH, Manifest, ServiceEntry, ServiceModel, digest_of, hub_model_dir, pin_to_dict
from ..model.layout import MANIFEST_NAME, SOURCE_PREFIX, WHEEL_PREFIX
from ..project import source_cache
from ..project.sources import ProjectConfig, default_name, find_root, load_config, python_choice, select_sources


@dataclass(frozen=True)
class BuildResult:
    path: Path
    manifest: Manifest
    lock: LockResult
    selection: Any = None  # the sources' Selection: what was packed and what was left out
    unchanged: int = 0  # sources the source cache knew unchanged since the last build: not read again

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def to_json(self) -> dict[str, Any]:
        # ``digest`` is kept for scripts written before ``bundle_digest``; the same value
        return {"path": str(self.path), "digest": self.digest, "bundle_digest": self.digest,
                "name": self.manifest.name, "version": self.manifest.version}


def pick_entry(scan: ScanResult, only: str | None, config: ProjectConfig) -> Service:
    services = scan.services
    shown = os.path.relpath(scan.file)
    if not services:
        raise UsageError(f"{shown}: no services found", hint="decorate the service class with @bundler.service")
    wanted = only or (config.service.rpartition(":")[2] if config.service else None)
    if wanted:
        for s in services:
            if wanted in (s.cls, s.name):
                return s
        raise UsageError(f"{shown}: no service named `{wanted}`", hint="services: " + ", ".join(s.cls for s in services))
    used = {d for s in services for d in s.depends}
    roots = [s for s in services if s.cls not in used and s.name not in used]
    if len(roots) == 1:
        return roots[0]
    raise UsageError(
        f"{shown}: several services could be the entry point ({', '.join(s.cls for s in roots or services)})",
        hint="name one: bundler build file.py:ClassName, or [tool.bundler] service in pyproject.toml",
    )


def _service_entry(s: Service, module: str, rel_file: str) -> dict[str, Any]:
    t = lambda v: tuple(v) if v is not None else None  # noqa: E731
    models = tuple(ServiceModel(m.attribute, m.kind, m.id, m.revision, t(m.include), t(m.exclude)) for m in s.models)
    return ServiceEntry(s.name, s.cls, module, rel_file, models, s.resources, tuple(s.depends)).to_dict()


def build(
    target: str | Path,
    output: str | Path | None = None,
    *,
    locked: bool = False,
    offline: bool = False,
    compress: bool | str | None = None,
    embed_hub: bool = False,
    embed_s3: bool = False,
    arguments: dict[str, Any] | None = None,
    strict: bool = False,
    allow_secrets: tuple[str | Path, ...] = (),
    embed_wheels: bool = False,
    env: Any = None,
    deps: bool = True,
    no_pickle: bool = False,
) -> BuildResult:
    """Build a bundle for the service at ``target`` (``file.py`` or ``file.py:Class``).

    ``arguments`` are build arguments (``--arg``) over the bentofile's ``args``; every argument
    ``use_arguments`` sees is recorded in the manifest. ``strict`` fails on undeclared model loads.
    ``env`` (EnvOptions) says how the Python environment is locked; ``embed_wheels`` packs its files;
    ``embed_hub`` / ``embed_s3`` pack the files a deploy host would otherwise fetch;
    ``deps`` pins what the models load by themselves."""
    from ..introspect import split_target
    from .lock import lock, require_fresh

    path, only = split_target(str(target))
    early = load_config(find_root(Path(path), Path(path).parent), Path(path))  # bad settings fail before the lock is written
    if locked:
        pinned = lock(path, check=True, arguments=arguments, env=env, deps=deps, no_pickle=no_pickle, config=early)
        require_fresh(pinned)
    else:
        pinned = lock(path, offline=offline, arguments=arguments, env=env, deps=deps, no_pickle=no_pickle, config=early)
    scan: ScanResult = pinned.scan
    if strict:
        _refuse_undeclared(scan)
    root = find_root(scan.file, scan.root)
    config = early if early.root == root else load_config(root, scan.file)
    entry = pick_entry(scan, only, config)

    out = Path(output) if output is not None else None
    compress = _compression(out, compress)
    if out is not None and out.is_dir():
        raise UsageError(f"{out}: is a directory", hint="give -o a file name, e.g. -o dist/name.bundle.tar")
    selection, cache = select_sources(config, skip=(out,) if out else ()), source_cache.load(root)
    source_entries, packed = _hash_sources(selection.files, root, scan, config, allow_secrets, cache)
    copies, hub_files, formats = _carried(pinned.pins, embed_hub, embed_s3, offline, no_pickle or config.no_pickle)
    data, wheel_files = _plan_manifest(scan, pinned, config, entry, root, source_entries, selection.files, embed=(embed_hub, embed_s3),
                                       embed_wheels=embed_wheels, offline=offline, env=env, formats=formats)
    digest = data.pop("digest")
    manifest = Manifest(data)
    manifest.__dict__["digest"] = digest  # the cached property, computed once (20,000 entries take tens of ms)
    suffix = ".bundle.tar.zst" if compress == "zstd" else ".bundle.tar.gz" if compress else ".bundle.tar"
    if out is None:
        out = root / "dist" / f"{manifest.name}-{manifest.version}{suffix}"
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(out, manifest, packed, pinned, compress, {**hub_files, **wheel_files}, copies, cache)
    return BuildResult(out, manifest, pinned, selection, len(cache.fresh) - cache.recorded)


def _carried(pins: list, embed_hub: bool, embed_s3: bool, offline: bool, no_pickle: bool) -> tuple[dict, dict[str, Path], dict]:
    """What the bundle carries of its models, before the manifest is written: each packed
    model's local copy (``kind.local_copy``), the embedded Hub files, and the format of each of
    their files by its bytes ((pin key, path) -> format). Under ``no_pickle`` a file that runs code
    when loaded is refused by its content, whatever its name, before anything is written."""
    from ..io.formats import RUNS_CODE, sniff

    copies = {p.key: kinds.of(p).local_copy(p, offline=offline) for p in pins
              if kinds.of(p).bundle_dir(p, SCHEMA) is not None and (embed_s3 or not kinds.of(p).fetched)}
    hub_files = _cached_hub_files(pins, offline=offline) if embed_hub else {}
    formats: dict[tuple, str] = {}
    for p in pins:
        if p.key in copies:
            local = {f.path: copies[p.key][0] / f.path for f in p.files}
        else:
            local = {f.path: hub_files[name] for f in p.files if (name := f"{hub_model_dir(p)}/{f.path}") in hub_files}
        for path, file in local.items():
            try:
                found = sniff(file)
            except OSError:
                continue  # missing or unreadable: the write names it
            if found is not None:
                formats[(p.key, path)] = found
            if no_pickle and found in RUNS_CODE:
                raise UsageError(f"{p.label}: {path} is {found} by its content: it runs code when loaded; nothing was written",
                                 hint="leave it out of the model, convert it to safetensors, or allow pickle (weights = \"any\")")
    return copies, hub_files, formats


def _compression(out: Path | None, compress: bool | str | None) -> bool | str:
    """False, True (gzip) or "zstd": as asked, else by the output's name (.tar.gz or .tgz is
    gzip, .tar.zst zstd). A missing zstd library fails now, before any work."""
    name = str(out) if out is not None else ""
    if compress is None:
        compress = "zstd" if name.endswith((".tar.zst", ".tzst")) else name.endswith((".tar.gz", ".tgz"))
    if compress == "zstd":
        from ..io.compression import require_zstd

        require_zstd("writing a .tar.zst bundle")
        return compress
    if compress not in (True, False, "gzip"):
        raise UsageError(f"compress={compress!r}: one of True (gzip), \"gzip\", \"zstd\" or False")
    return bool(compress)


def _refuse_undeclared(scan: ScanResult) -> None:
    """``--strict``: a model load no class attribute declares fails the build."""
    from ..introspect.scanner import undeclared_label

    undeclared = [u for s in scan.services for u in s.undeclared]
    if undeclared:
        raise ProblemFound(
            f"{len(undeclared)} model load(s) not declared: "
            + ", ".join(f"{u['file']}:{u['line']} {undeclared_label(u)}" for u in undeclared),
            hint="declare each as a HuggingFaceModel(...) class attribute, or build without --strict",
        )


def _hash_sources(sources: list[tuple[str, str]], root: Path, scan: ScanResult, config: ProjectConfig,
                  allow_secrets: tuple[str | Path, ...], cache: Any) -> tuple[list[dict[str, Any]], list[tuple[str, Any, bool]]]:
    """(the manifest's source entries, what to pack: (path, the file or the bytes that were
    hashed, executable)).

    Sources are hashed before packing because the manifest that lists their hashes is the
    archive's first member. A file unchanged since the last build (``cache``, a SourceCache) is
    not read at all: its hash and scan are the recorded ones. Small ones keep the bytes that were
    hashed and are packed from memory (thousands of files are not opened twice); others are
    hashed again while they are packed, and a change in between fails the build. The same read
    looks for credentials, as do the build values the manifest records: a bundle travels to
    everyone who can pull it."""
    from ..project.secrets import Secret, read_hash_and_scan
    from ..project.source_cache import Known

    allowed = {_allowed(a, root) for a in allow_secrets}
    source_entries: list[dict[str, Any]] = []
    secrets: list[Any] = []
    budget = _KEEP_TOTAL
    packed: list[tuple[str, Any, bool]] = []
    lookup, add_entry, add_packed = cache.lookup, source_entries.append, packed.append  # 20,000 times round
    for rel, file in sources:
        known = lookup(rel, file)
        if known is None:
            size, digest, found, kept, st = read_hash_and_scan(file, rel, _KEEP_BELOW if budget > 0 else 0)
            executable = bool(st.st_mode & 0o111)
            known = Known(size, digest, executable, tuple((s.line, s.kind) for s in found) if found else ())
            cache.record(rel, file, st, known)
            budget -= len(kept) if kept is not None else 0
            add_packed((rel, file if kept is None else kept, executable))
        else:
            found = [Secret(rel, line, kind) for line, kind in known.secrets] if known.secrets else []
            add_packed((rel, file, known.executable))
        add_entry({"path": rel, "size": known.size, "hash": known.hash})
        if found and rel not in allowed:
            secrets.extend(found)
    shown = [f"{os.path.relpath(root / s.path)}:{s.line}: {s.kind}" for s in secrets]
    shown += [f"{s.path}: {s.kind}" for s in _value_secrets(scan, config, {str(a) for a in allow_secrets})]
    if shown:
        raise ProblemFound(
            f"{len(shown)} secret(s) in the sources or build values; nothing was built:\n  " + "\n  ".join(shown),
            hint="remove the credential (read it from the environment at serve time), or let a reviewed file or "
                 "argument through with --allow-secret PATH|ARGUMENT",
        )
    return source_entries, packed


def _plan_manifest(scan: ScanResult, pinned: LockResult, config: ProjectConfig, entry: Service, root: Path,
                   source_entries: list[dict[str, Any]], sources: list[tuple[str, str]], *, embed: tuple[bool, bool],
                   embed_wheels: bool, offline: bool, env: Any, formats: dict | None = None) -> tuple[dict[str, Any], dict[str, Path]]:
    """The manifest's fields, digest and version, and the locked files to embed; ``formats``:
    what each carried model file is by its bytes ((pin key, path) -> format)."""
    rel_service = _relative(scan.file, root)
    origins = dict(config.origins)
    python_origin = python_choice(config, scan.image_python, rel_service)[1]
    if python_origin:
        origins["python"] = python_origin
    name = config.name
    if not name:
        name, origins["name"] = default_name(entry.name), f"the entry service `{entry.name}`"
    data: dict[str, Any] = {"schema": SCHEMA, "name": name, "version": ""}
    data["entrypoint"] = f"{rel_service}:{entry.cls}"
    data["settings"] = dict(sorted(origins.items()))
    if scan.arguments:
        data["arguments"] = scan.arguments
        data["argument_origins"] = scan.argument_origins
    if config.python:
        data["python"] = config.python
    data["requirements"] = list(config.requirements)
    wheel_files: dict[str, Path] = {}
    if pinned.env is not None and pinned.env.pin is not None:
        data["environment"], wheel_files = _environment(pinned, root, sources, embed_wheels, offline, env)
    elif embed_wheels:
        raise UsageError("--embed-wheels: the project has no locked Python requirements to embed",
                         hint="declare them in [project] dependencies (or requirements.txt), or build without --embed-wheels")
    data["services"] = [_service_entry(s, scan.module, rel_service) for s in scan.services]
    data["models"] = [pin_to_dict(p, embedded=(embed[0] and kinds.of(p).hub) or (embed[1] and kinds.of(p).fetched)) for p in pinned.pins]
    for model, p in zip(data["models"], pinned.pins):
        for f in model["files"]:
            if (found := (formats or {}).get((p.key, f["path"]))) is not None:
                f["format"] = found
    data["sources"] = source_entries
    data["schema"] = schema_for(data)
    digest = digest_of(data)
    data["version"] = config.version or digest.partition(":")[2][:VERSION_LENGTH]
    data["digest"] = digest  # taken out again by the caller: the digest leaves out the version
    return data, wheel_files


def _value_secrets(scan: ScanResult, config: ProjectConfig, allowed: set[str]) -> list[Any]:
    """Credentials in what the manifest records besides files: build arguments (given ones: a
    default is in a source file, scanned there) and requirements. A bundle shows them to all."""
    import json

    from ..project.secrets import scan_bytes

    origins = scan.argument_origins
    found = []
    for key, value in scan.arguments.items():
        if origins.get(key) != "default" and key not in allowed:
            found += scan_bytes(json.dumps(value).encode(), f"build argument `{key}` (from {origins.get(key)})")
    for requirement in config.requirements:
        found += scan_bytes(requirement.encode(), f"requirement {requirement.split('@')[0].strip()!r}")
    return found


def _environment(pinned: LockResult, root: Path, sources: list[tuple[str, str]], embed: bool, offline: bool,
                 options: Any = None) -> tuple[dict[str, Any], dict[str, Path]]:
    """The manifest's ``environment`` entry and, with ``embed``, the locked files to pack."""
    from ..env.lock import PYLOCK_NAME

    env = pinned.env
    assert env is not None and env.pin is not None  # the caller checked
    rel_lock = _relative(pinned.path.parent / PYLOCK_NAME, root)
    if rel_lock not in {rel for rel, _ in sources}:
        raise UsageError(f"{rel_lock}: the Python environment lock is not among the sources (its directory is left out)",
                         hint="don't exclude the service's directory")
    entry: dict[str, Any] = {"lock": rel_lock, "sha256": env.pin.sha256, "python": env.pin.python, "platform": env.pin.platform,
                             "packages": {p.name: p.version for p in env.packages}}
    files: dict[str, Path] = {}
    if embed:
        from ..env.lock import EnvOptions
        from ..env.wheels import locked_files

        wheels = []
        options = options or EnvOptions()
        for f, path, digest in locked_files(env.packages, pinned.path.parent, offline=offline, find_links=options.find_links,
                                            index_urls=(options.index_url,) if options.index_url else ()):
            files[WHEEL_PREFIX + f.name] = path
            wheels.append({"path": f.name, "size": path.stat().st_size, "hash": digest})
        entry["wheels"] = sorted(wheels, key=lambda w: w["path"])
    return entry, files


_KEEP_BELOW = 256 << 10  # sources smaller than this are packed from the bytes that were hashed
_KEEP_TOTAL = 256 << 20  # ... up to this much in all: memory stays bounded


def _cached_hub_files(pins: list, *, offline: bool) -> dict[str, Path]:
    """Bundle path -> verified file in the local Hugging Face cache, for ``--embed-hub``.

    Files missing from the cache are fetched (through huggingface_hub, as `bundler pull` does)
    unless ``offline``; every file is checked against its pin before it is packed.
    """
    from ..hub.cache import check_file, hub_cache_dir, snapshot_dir
    from .pull import download_pinned

    cache = hub_cache_dir()
    out: dict[str, Path] = {}
    for pin in pins:
        if not kinds.of(pin).hub:
            continue
        snap = snapshot_dir(cache, pin.id, pin.commit)
        for entry in pin.files:
            check = check_file(snap / entry.path, entry)
            if not check.ok:
                if offline:
                    raise UsageError(
                        f"--embed-hub: {pin.id}@{pin.commit[:12]} {entry.path} is {check.status} in the Hugging Face cache {cache}",
                        hint="run once without --offline to fetch it, or pull a bundle of this model first",
                    )
                check = download_pinned(pin, entry, cache)
                if not check.ok:
                    raise ProblemFound(
                        f"--embed-hub: {pin.id}@{pin.commit[:12]} {entry.path} does not match its pin (expected {entry.hash}, found {check.actual})"
                    )
            out[f"{hub_model_dir(pin)}/{entry.path}"] = (snap / entry.path).resolve()
    return out


def _allowed(path: str | Path, root: Path) -> str:
    """An ``--allow-secret`` path as the project-relative path a source has."""
    p = Path(path)
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def list_sources(target: str | Path, output: str | Path | None = None) -> Any:
    """What a build would pack and, for each file left out, the rule that left it out (no lock,
    no network, nothing written)."""
    from ..introspect import split_target

    path, _ = split_target(str(target))
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file", hint="pass the service's .py file")
    root = find_root(path, path.resolve().parent)
    config = load_config(root, path)
    return select_sources(config, skip=(Path(output),) if output else ())


def _relative(file: Path, root: Path) -> str:
    try:
        return file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UsageError(f"{file}: outside the project directory {root}") from None


def _write(
    out: Path, manifest: Manifest, sources: list[tuple[str, Any, bool]], pinned: LockResult, compress: bool | str, hub_files: dict[str, Path],
    copies: dict[tuple, tuple[Path, str]], cache: Any,
) -> None:
    """Write to a temporary file beside ``out`` and rename: a failed build leaves no bundle.
    ``copies``: each packed model's local folder and the tag messages name (``kind.local_copy``)."""
    try:
        _write_archive(out, manifest, sources, pinned, compress, hub_files, copies, cache)
    except OSError as e:
        from ..bundle.archive import WRITE_FAILURES

        if e.errno not in WRITE_FAILURES:
            raise
        raise ProblemFound(
            f"{out}: can't write the bundle: {e.strerror}; nothing was left behind",
            hint="free some space on that disk, or write the bundle elsewhere with -o",
        ) from None


def _write_archive(
    out: Path, manifest: Manifest, sources: list[tuple[str, Any, bool]], pinned: LockResult, compress: bool | str, hub_files: dict[str, Path],
    copies: dict[tuple, tuple[Path, str]], cache: Any,
) -> None:
    from ..bundle.archive import ArchiveWriter
    from ..io.scratch import scratch_file

    with scratch_file(out.parent, f".{out.name}.", ".tmp") as (f, tmp):
        writer = ArchiveWriter(f, compress=compress)
        writer.add_bytes(MANIFEST_NAME, manifest.to_yaml())
        previous = None if compress else cache.reusable(writer.mtime)
        try:
            where = _pack_sources(writer, sources, manifest.data["sources"], previous)
        finally:
            if previous is not None:
                os.close(previous[0])
        for p in pinned.pins:
            if (base := manifest.model_dir(p)) is None:
                continue
            path, tag = copies[p.key]
            for fe in p.files:
                src = path / fe.path
                if not src.is_file():
                    raise ProblemFound(f"store model {tag}: {fe.path} is missing", hint=f"re-import it: bundler models import {tag} DIR")
                # A size that differs (bytes appended, or cut) is a modified copy as much as other bytes are.
                if src.stat().st_size != fe.size or writer.add_file(f"{base}/{fe.path}", src, fe.size, fe.hash.partition(":")[0]) != fe.hash:
                    raise ProblemFound(
                        f"store model {tag}: {fe.path} does not match its recorded hash",
                        hint=f"the store copy was modified; delete and re-import it (bundler models delete {tag})",
                    )
        members = manifest.members() if hub_files else {}
        for name, src in sorted(hub_files.items()):  # embedded Hub files, then embedded wheels
            entry = members[name]
            if writer.add_file(name, src, entry.size, entry.hash.partition(":")[0]) != entry.hash:
                raise ProblemFound(f"{src}: changed while the bundle was being built", hint="build again")
        writer.close()
        f.flush()
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    cache.save(None if compress else out, writer.mtime, where)


def _pack_sources(writer: Any, sources: list[tuple[str, Any, bool]], entries: list[dict[str, Any]],
                  previous: tuple[int, Any] | None) -> dict[str, tuple[int, int, str, bool]]:
    """Pack the sources (``entries``: their manifest entries, in the same order); one the previous
    bundle holds with the same hash and mode is copied from it whole (``previous``: that bundle's
    descriptor and where each member is in it, a ``source_cache.Spans``). Returns where each one
    is in this archive (for the next build to copy from)."""
    fd, before = previous if previous is not None else (-1, lambda rel: None)
    where = {}
    for (rel, src, executable), entry in zip(sources, entries, strict=True):
        digest = entry["hash"]
        start = writer.offset
        old = before(rel)
        if (old is not None and old[2] == digest and old[3] == executable
                and writer.copy_member(fd, old[0], old[1], SOURCE_PREFIX + rel, entry["size"], executable)):
            pass
        elif isinstance(src, bytes):  # the bytes that were hashed
            writer.add_bytes(SOURCE_PREFIX + rel, src, executable=executable)
        elif writer.add_file(SOURCE_PREFIX + rel, src, entry["size"]) != digest:
            raise ProblemFound(f"{src}: changed while the bundle was being built", hint="build again")
        where[rel] = (start, writer.offset, digest, executable)
    writer.end_copies()
    return where
