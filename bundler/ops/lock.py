"""``bundler.lock``: read (tomllib), plan, and write (tomli-w) the pins of a service's models.

The lock is a file bundler owns: a format ``version`` it refuses when newer than it understands,
entries sorted, defaults omitted, every file with its size and hash, and the reference's inputs
(id, revision as written, patterns) kept so that staleness is detectable without the network.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..io.atomic import write_atomic
from ..env.lock import PYLOCK_NAME, EnvOptions, EnvPin, EnvResult, sha256_of
from ..errors import ProblemFound, UsageError
from ..kinds import check_pin, of as kind_of
from ..model.pins import Pin, key_of

if TYPE_CHECKING:
    from ..project.sources import ProjectConfig

LOCK_NAME = "bundler.lock"
LOCK_VERSION = 1
MAX_LOCK_BYTES = 64 << 20
HEADER = "# Written by `bundler lock`: pins every model the service declares. Commit it; don't edit it.\n"


def lock_path_for(service: Path) -> Path:
    return Path(service).parent / LOCK_NAME


# --- the file format ------------------------------------------------------------------------
def _sort_key(p: Pin) -> tuple:
    t = lambda v: ("\x00",) if v is None else tuple(v)  # noqa: E731 - None sorts first
    return (p.source, p.id, p.revision or "", t(p.include), t(p.exclude))


def dumps(pins: Iterable[Pin], used_by: dict[tuple, set[str]] | None = None, environment: EnvPin | None = None) -> str:
    """The lock file's text; ``used_by`` maps a pin's key to the service files that use it;
    ``environment`` is the Python environment's entry (its packages are in pylock.toml)."""
    import tomli_w

    models = []
    for p in sorted(pins, key=_sort_key):
        try:
            check_pin(p)  # never write what the reader would refuse
        except ValueError as e:
            raise UsageError(
                f"{p.label}: can't be locked: {e}",
                hint="rename the file in the model, or leave it out with exclude=[...]",
            ) from None
        models.append(p.to_dict({"used_by": sorted(used_by[p.key])} if used_by and used_by.get(p.key) else None))
    doc: dict[str, Any] = {"version": LOCK_VERSION}
    if environment is not None:
        doc["environment"] = environment.to_toml()
    if models:
        doc["model"] = models
    return HEADER + tomli_w.dumps(doc)


def loads(text: str, shown: str) -> list[Pin]:
    """The pins of a lock file's text (strictly validated)."""
    return _loads(text, shown)[0]


def _loads(text: str, shown: str) -> tuple[list[Pin], dict[tuple, set[str]], EnvPin | None]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{shown}: not valid TOML: {e}", hint="delete it and run `bundler lock` again") from None
    except RecursionError:
        raise UsageError(f"{shown}: nested too deeply to be a lock file", hint="delete it and run `bundler lock` again") from None
    version = data.get("version")
    if type(version) is not int or version < 1:
        raise UsageError(f"{shown}: no valid format version ({version!r})", hint="delete it and run `bundler lock` again")
    if version > LOCK_VERSION:
        raise UsageError(
            f"{shown}: format version {version} is newer than this bundler understands ({LOCK_VERSION})",
            hint="upgrade bundler",
        )
    pins: list[Pin] = []
    users: dict[tuple, set[str]] = {}
    models = data.get("model", [])
    if not isinstance(models, list):
        raise UsageError(f"{shown}: `model` must be an array of tables", hint="delete it and run `bundler lock` again")
    for i, m in enumerate(models):
        try:
            pins.append(check_pin(Pin.from_dict(m)))
            if any(p.key == pins[-1].key for p in pins[:-1]):
                raise ValueError(f"{pins[-1].label} is locked twice")
            used = m.get("used_by", [])
            if not isinstance(used, list) or not all(isinstance(u, str) and u.endswith(".py") and "/" not in u for u in used):
                raise ValueError("used_by must list service file names")
            users[pins[-1].key] = set(used)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UsageError(
                f"{shown}: model entry {i + 1} is malformed ({type(e).__name__}: {e})",
                hint="delete it and run `bundler lock` again",
            ) from None
    environment = None
    if "environment" in data:
        try:
            environment = EnvPin.from_toml(data["environment"])
        except ValueError as e:
            raise UsageError(f"{shown}: the environment entry is malformed ({e})", hint="delete it and run `bundler lock` again") from None
    return pins, users, environment


def read_all(path: Path) -> tuple[list[Pin], dict[tuple, set[str]], EnvPin | None] | None:
    """Models, their users and the environment entry; None when there is no lock file."""
    from ..io.safe_read import read_regular

    try:
        text = read_regular(path, MAX_LOCK_BYTES).decode("utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: can't read: {e}") from None
    return _loads(text, str(path))


# --- planning ---------------------------------------------------------------------------------
@dataclass
class LockResult:
    path: Path
    pins: list[Pin] = field(default_factory=list)
    kept: list[Pin] = field(default_factory=list)
    pinned: list[Pin] = field(default_factory=list)  # new or changed references
    upgraded: list[tuple[Pin, Pin]] = field(default_factory=list)  # (old, new)
    removed: list[Pin] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # --check: what is out of date
    written: bool = False
    scan: Any = None  # the ScanResult the lock was made from
    env: EnvResult | None = None  # the Python environment (None: not asked for)
    notes: list[str] = field(default_factory=list)  # warnings found while pinning

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "written": self.written,
            "stale": self.stale,
            "models": [
                {"source": p.source, "id": p.id, "revision": p.revision, "pinned": p.commit or p.version, "files": len(p.files),
                 **({"required_by": p.required_by} if p.required_by else {})}
                for p in self.pins
            ],
            "environment": self.env.to_json() if self.env else None,
            "warnings": self.notes,
        }


def _wants_upgrade(ref: Any, upgrade: bool | Iterable[str]) -> bool:
    if upgrade is True:
        return True
    if not upgrade:
        return False
    names = set(upgrade)
    return ref.id in names or ref.id.partition(":")[0] in names


def pin_ref(ref: Any, where: str | None, *, offline: bool = False, notes: list[str] | None = None) -> Pin:
    """Pin one scanned reference with its kind (the Hub, a local store)."""
    from .. import kinds

    try:
        return kinds.get(ref.kind).pin(ref, where=where, offline=offline, notes=notes)
    except UsageError as e:
        if e.file is None:  # a store's refusal knows the tag, not where the service named it
            e.file, e.line = where, ref.line
        raise


def lock(
    service: str | Path,
    *,
    upgrade: bool | Iterable[str] = False,
    check: bool = False,
    write: bool = True,
    offline: bool = False,
    arguments: dict[str, Any] | None = None,
    env: EnvOptions | None = None,
    deps: bool = True,
    no_pickle: bool = False,
    config: ProjectConfig | None = None,
) -> LockResult:
    """Pin every reference of ``service`` and write ``bundler.lock`` beside it.

    Fresh entries are kept as they are (no network); a reference without a fresh entry is pinned;
    entries whose reference is gone are dropped. ``check`` changes nothing and lists what is stale.
    The lock covers every service in the file, whatever ``file.py:Class`` selects, and keeps the
    entries of the other service files beside it (each entry records the files that use it).

    The project's Python requirements are locked into ``pylock.toml`` beside it by the same rules
    (``env``: the target and index settings; ``env.skip`` leaves the environment entry alone).
    ``deps`` pins the repositories the pinned Hub models load by themselves (``closure.py``),
    with ``required_by`` naming the parent; they stay fresh while their parent does.
    ``config``: the project's settings when the caller has read them (they are read once).
    """
    from ..introspect import scan, split_target
    from ..project.sources import find_root, load_config

    path, _only = split_target(str(service))
    if config is None:
        config = load_config(find_root(Path(path), Path(path).parent), Path(path))
    result = scan(path, arguments=arguments)
    lock_file = lock_path_for(path)
    me = Path(path).name
    others, by_key, users, old_env = _existing(lock_file, me)
    refs = _refs(result.models)
    out = LockResult(lock_file, scan=result)
    if check:
        _check(out, refs, by_key, others, deps, config.repos)
        _pickle_policy(out, no_pickle or config.no_pickle)
        out.env = _plan_env(config, path, lock_file, old_env, env, upgrade=False, check=True, offline=True, image_python=result.image_python)
        if out.env is not None:
            out.stale += out.env.stale
        return out

    _pin_refs(out, refs, by_key, upgrade, offline)
    deps_of = _lock_dependencies(out, refs, by_key, offline, config.repos) if deps else _without_dependencies(out, by_key)
    out.removed = [p for k, p in by_key.items() if k not in refs and k not in others and k not in deps_of]
    out.pins = sorted([*(by_key[k] for k in refs), *deps_of.values()], key=_sort_key)
    _pickle_policy(out, no_pickle or config.no_pickle)
    out.env = _plan_env(config, path, lock_file, old_env, env, upgrade=upgrade is True, check=False, offline=offline,
                        image_python=result.image_python)
    if write:
        mine = {**{k: by_key[k] for k in refs}, **deps_of}
        used_by = {k: (users.get(k, set()) - {me}) | ({me} if k in mine else set()) for k in {**others, **mine}}
        _write_files(out, {k: p for k, p in {**others, **mine}.items() if used_by[k]}, used_by, old_env)
    return out


def _refs(models: list[Any]) -> dict[tuple, Any]:
    """Each reference the scan found, by its key (the first spelling of one seen twice)."""
    refs: dict[tuple, Any] = {}
    for m in models:
        refs.setdefault(key_of(m.kind, m.id, m.revision, m.include, m.exclude), m)
    return refs


def _without_dependencies(out: LockResult, by_key: dict[tuple, Pin]) -> dict[tuple, Pin]:
    """``--no-deps``: none are pinned; a lock that had some says what leaving them out means."""
    if any(p.required_by for p in by_key.values()):
        out.notes.append("--no-deps: the repositories the models load by themselves are left out of the lock; "
                         "an offline host fails where they load")
    return {}


def _existing(lock_file: Path, me: str) -> tuple[dict[tuple, Pin], dict[tuple, Pin], dict[tuple, set[str]], EnvPin | None]:
    """The lock's entries used by other service files beside ``me`` (they stay), the ones ``me``
    may use, who uses each, and the locked environment."""
    existing, users, old_env = read_all(lock_file) or ([], {}, None)
    # A service file that is gone loses its entries.
    users = {k: {u for u in v if u == me or (lock_file.parent / u).is_file()} for k, v in users.items()}
    others = {p.key: p for p in existing if users.get(p.key) and users[p.key] != {me}}
    by_key = {p.key: p for p in existing if not users.get(p.key) or me in users[p.key]}
    return others, by_key, users, old_env


def _write_files(out: LockResult, every: dict[tuple, Pin], used_by: dict[tuple, set[str]], old_env: EnvPin | None) -> None:
    new_env = old_env if out.env is None else out.env.pin
    pylock = out.path.parent / PYLOCK_NAME
    # pylock.toml first: if bundler.lock's write never happens, its recorded sha256 no longer
    # matches and the next run re-resolves instead of trusting a half-finished lock.
    if out.env is not None and out.env.pylock is not None:
        write_atomic(pylock, out.env.pylock)
    elif old_env is not None and new_env is None and pylock.is_file() and sha256_of(pylock.read_bytes()) == old_env.sha256:
        pylock.unlink()  # ours and unchanged: the requirements are gone, so is their lock
    out.written = write_atomic(out.path, dumps(every.values(), used_by, new_env).encode())


def _pickle_policy(out: LockResult, no_pickle: bool) -> None:
    """Pickle-format weights run code when loaded: refused under ``--no-pickle`` or
    ``[tool.bundler] weights = "no-pickle"`` (before anything is written), else a warning for
    each newly pinned model that has them."""
    from .lean import pickle_files

    new = {p.key for p in out.pinned} | {n.key for _, n in out.upgraded}
    for p in out.pins:
        found = pickle_files(p) if kind_of(p).hub else []
        if not found:
            continue
        listed = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        if no_pickle:
            raise UsageError(f"{p.label} pins pickle-format weights ({listed}): they run code when loaded; nothing was written",
                             hint=f"leave them out: exclude={sorted({'*.' + f.rsplit('.', 1)[-1] for f in found})!r}, or allow pickle (weights = \"any\")")
        if p.key in new:
            out.notes.append(f"{p.label}: pickle-format weights ({listed}) run code when loaded; "
                             "`weights = \"no-pickle\"` in [tool.bundler] (or --no-pickle) refuses them")


def _check(out: LockResult, refs: dict[tuple, Any], by_key: dict[tuple, Pin], others: dict[tuple, Pin], deps: bool,
           repos: _RepoPatterns) -> None:
    """``lock --check``: what is stale, changing nothing and asking nothing."""
    for key, ref in refs.items():
        if key not in by_key:
            out.stale.append(f"{ref.file}:{ref.line}: {ref.attribute} ({ref.id}) has no fresh lock entry")
        elif by_key[key].endpoint != ref.endpoint:
            out.stale.append(f"{ref.file}:{ref.line}: {ref.attribute} ({ref.id}) names another endpoint than the lock's")
    deps_of = _dependencies(by_key, [by_key[k] for k in refs if k in by_key]) if deps else {}
    for p in _repatterned(deps_of, [by_key[k] for k in refs if k in by_key], repos):
        out.stale.append(f"{out.path.name}: {p.label} (needed by {p.required_by}) is locked with other include/exclude patterns than the project gives it now")
    for key, p in by_key.items():
        if key not in refs and key not in others and key not in deps_of:
            out.stale.append(f"{out.path.name}: entry for {p.label} matches no model in the service")
    # in the order a lock gives them: `build --locked` writes the same manifest as `build`
    out.pins = sorted([by_key[k] for k in refs if k in by_key] + list(deps_of.values()), key=_sort_key)


def _pin_refs(out: LockResult, refs: dict[tuple, Any], by_key: dict[tuple, Pin], upgrade: bool | Iterable[str], offline: bool) -> None:
    """Keep each fresh entry, pin the rest (``by_key`` is updated); a repository in several
    weight formats gets the lean hint."""
    from .lean import hint

    for key, ref in refs.items():
        old = by_key.get(key)
        if old is not None and not _wants_upgrade(ref, upgrade) and old.endpoint == ref.endpoint:
            out.kept.append(old)
            continue
        new = pin_ref(ref, out.scan.where(ref), offline=offline, notes=out.notes)
        if kind_of(new).hub and (lean := hint(new)) is not None:
            out.notes.append(f"{out.scan.where(ref)}:{ref.line}: {lean}")
        if old is None:
            out.pinned.append(new)
        elif new != old:
            out.upgraded.append((old, new))
        else:
            out.kept.append(old)
        by_key[key] = new


def _lock_dependencies(out: LockResult, refs: dict[tuple, Any], by_key: dict[tuple, Pin], offline: bool,
                       repos: _RepoPatterns) -> dict[tuple, Pin]:
    """The closure: a kept parent keeps its locked dependencies (but one whose patterns the
    project changed, which is pinned again); every parent's config files are read for new ones
    (``closure.py``), which are pinned."""
    from .closure import pin_closure

    deps_of = _dependencies(by_key, out.kept)
    for stale in _repatterned(deps_of, out.kept, repos):
        deps_of.pop(stale.key)
    fresh = out.pinned + [new for _, new in out.upgraded]
    have = {by_key[k].id for k in refs} | {p.id for p in deps_of.values()}
    kept_parents = [p for p in out.kept if kind_of(p).hub] + list(deps_of.values())
    for child in pin_closure(fresh, have, offline=offline, cached=kept_parents, notes=out.notes, patterns=repos):
        deps_of[child.key] = child
        out.pinned.append(child)
    return deps_of


#: [tool.bundler.repos]: lowercase repository id -> (include, exclude)
_RepoPatterns = dict[str, tuple[tuple[str, ...] | None, tuple[str, ...] | None]]


def _repatterned(deps_of: dict[tuple, Pin], parents: list[Pin], repos: _RepoPatterns) -> list[Pin]:
    """The locked dependencies whose include/exclude are not the ones they would get now (their
    ``[tool.bundler.repos]`` entry, else their parent's)."""
    from .closure import patterns_for

    by_id = {p.id: p for p in [*parents, *deps_of.values()]}

    def expected(p: Pin) -> tuple[Any, Any]:
        """What ``p`` would be pinned with now: its entry, else what its parent would get."""
        chain: list[Pin] = []
        while p.required_by is not None and p.id.lower() not in repos and p.required_by in by_id and p not in chain:
            chain.append(p)
            p = by_id[p.required_by]
        # the top: a declared model keeps its own patterns; a dependency its entry (or, with a
        # parent this lock does not hold, what it was locked with)
        patterns = (p.include, p.exclude) if p.required_by is None else repos.get(p.id.lower(), (p.include, p.exclude))
        for child in reversed(chain):
            patterns = patterns_for(child.id, patterns, repos)
        return patterns

    return [p for p in deps_of.values() if p.required_by in by_id and expected(p) != (p.include, p.exclude)]


def _dependencies(by_key: dict[tuple, Pin], parents: list[Pin]) -> dict[tuple, Pin]:
    """The locked dependencies (``required_by``) of ``parents``, and theirs, recursively."""
    out: dict[tuple, Pin] = {}
    names = {p.id for p in parents}
    grew = True
    while grew:
        grew = False
        for k, p in by_key.items():
            if p.required_by in names and k not in out:
                out[k] = p
                names.add(p.id)
                grew = True
    return out


def _plan_env(config: ProjectConfig, service: str | Path, lock_file: Path, old: EnvPin | None, options: EnvOptions | None, *,
              upgrade: bool, check: bool, offline: bool, image_python: str | None = None) -> EnvResult | None:
    from ..env.lock import plan
    from ..project.sources import python_choice

    options = options or EnvOptions()
    if options.skip:
        return None
    origin = config.origins.get("requirements", "requirements").partition(" ")[0]
    shown = os.path.relpath(config.root / origin)
    return plan(config.requirements, shown, lock_file.parent, old, requires_python=config.python,
                python_target=python_choice(config, image_python, Path(service).name)[0], options=options, upgrade=upgrade, check=check, offline=offline)


def require_fresh(result: LockResult) -> None:
    if result.stale:
        from ..env.lock import PYLOCK_NAME

        files = [os.path.relpath(result.path)]
        if result.env is not None or any(PYLOCK_NAME in s for s in result.stale):
            files.append(os.path.relpath(result.path.parent / PYLOCK_NAME))
        raise ProblemFound(
            f"{result.path} is stale:\n  " + "\n  ".join(result.stale),
            hint=f"run `bundler lock` and commit {' and '.join(files)}",
        )
