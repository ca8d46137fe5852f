"""The repositories a pinned model loads by itself, pinned too (``bundler lock``).

``from_pretrained`` fetches more than the repository it is given: a PEFT adapter's
``adapter_config.json`` names its base model (``base_model_name_or_path``), and an ``auto_map``
entry of ``config.json`` / ``tokenizer_config.json`` written ``org/repo--module.Class`` loads
remote code from another repository. Without a pin an offline host fails there, and an online one
loads whatever ``main`` is that day. Only those small JSON files are read (never weights), at the
pinned commit, through huggingface_hub.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .. import kinds
from ..errors import BundlerError, UsageError
from ..model.pins import Pin

CONFIG_FILES = {"adapter_config.json", "config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json"}
_MAX_CONFIG = 1 << 20  # a config file is kilobytes; a bigger one is not read
_MAX_DEPTH = 8
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def references(name: str, data: Any) -> list[tuple[str, str]]:
    """(repository id, why) for each other repository a config file names."""
    if not isinstance(data, dict):
        return []
    out: list[tuple[str, str]] = []
    if name == "adapter_config.json":
        base = data.get("base_model_name_or_path")
        if isinstance(base, str) and _REPO.match(base) and not base.startswith((".", "/")):
            out.append((base, f"{name} base_model_name_or_path"))
    auto_map = data.get("auto_map")
    if isinstance(auto_map, dict):
        for key, value in auto_map.items():
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str) and "--" in v:
                    repo = v.split("--", 1)[0]
                    if _REPO.match(repo):
                        out.append((repo, f"{name} auto_map {key}"))
    return out


def _read_configs(pin: Pin, cached_only: bool = False) -> list[tuple[str, str]]:
    """The references in ``pin``'s config files, read at its commit (``cached_only``: from the
    local Hugging Face cache only; a file not there is skipped)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    from ..hub.api import endpoint_for, token
    from ..io.safe_read import read_regular
    from ..settings import bundler_home

    out: list[tuple[str, str]] = []
    for f in pin.files:
        name = f.path.rsplit("/", 1)[-1]
        if name not in CONFIG_FILES or f.size > _MAX_CONFIG:
            continue
        try:
            # into bundler's own cache of config files (the Hugging Face cache is the deploy host's
            # business); a commit's file already there is read with no request at all
            path = hf_hub_download(pin.hub_id or pin.id, f.path, revision=pin.commit, endpoint=endpoint_for(pin), token=token(),
                                   cache_dir=bundler_home() / "hub-configs", local_files_only=cached_only)
        except LocalEntryNotFoundError:
            if cached_only:
                continue
            raise
        try:
            data = json.loads(read_regular(Path(path), _MAX_CONFIG))
        except (ValueError, RecursionError):
            continue  # not JSON: not a config transformers would follow either
        out += [(repo, f"{f.path}: {why.partition(' ')[2]}") for repo, why in references(name, data)]
    return out


def patterns_for(repo: str, parent: tuple[Any, Any], repos: dict[str, tuple[Any, Any]] | None) -> tuple[Any, Any]:
    """(include, exclude) of a repository a parent with the patterns ``parent`` loads: its
    ``[tool.bundler.repos]`` entry, else the parent's."""
    return (repos or {}).get(repo.lower(), parent)


def pin_closure(parents: list[Pin], pinned_ids: set[str], *, offline: bool = False, cached: list[Pin] | None = None,
                notes: list[str] | None = None, patterns: dict[str, tuple[Any, Any]] | None = None) -> list[Pin]:
    """Pin every repository ``parents`` reference, recursively, with ``required_by`` naming the
    parent and the include/exclude patterns ``patterns_for`` gives it. A reference that cannot be
    pinned is an error naming the chain that led to it."""
    from ..hub.api import HubUnreachable, hub_error

    seen = {i.lower() for i in pinned_ids}
    out: list[Pin] = []
    # ``cached``: parents kept from the lock. Their config files come from the local cache when
    # there (no request), else from the Hub; when the Hub can't be reached for them, the lock's
    # own dependencies of them stand and a note says what could not be checked.
    from_cache = {id(p) for p in cached or []}
    todo: list[tuple[Pin, list[str]]] = [(p, [p.id]) for p in [*parents, *(cached or [])] if kinds.of(p).hub]
    while todo:
        parent, chain = todo.pop(0)
        if len(chain) > _MAX_DEPTH:
            raise UsageError(f"{' -> '.join(chain)}: the chain of repositories is longer than {_MAX_DEPTH}",
                             hint="pin the deepest ones as models of their own, or lock with --no-deps")
        try:
            found = _read_configs(parent, cached_only=offline)
        except Exception as e:  # noqa: BLE001 - translated like any Hub failure
            error = hub_error(e, parent, None, None, action="fetch") if not isinstance(e, BundlerError) else e
            if id(parent) in from_cache and isinstance(error, HubUnreachable) and notes is not None:
                notes.append(f"{parent.label}: what it loads by itself was not checked ({error.message}); its locked dependencies are kept")
                continue
            raise _chained(error, chain) from None
        for repo, why in found:
            if repo.lower() in seen:
                continue
            seen.add(repo.lower())
            include, exclude = patterns_for(repo, (parent.include, parent.exclude), patterns)
            ref = SimpleNamespace(kind=parent.source, id=repo, revision=None, include=include,
                                  exclude=exclude, line=None, endpoint=parent.endpoint)
            try:
                child = kinds.of(parent).pin(ref, where=None, offline=offline, notes=None)
            except BundlerError as e:
                raise _chained(e, [*chain, f"{repo} ({why})"]) from None
            child = replace(child, required_by=parent.id)
            out.append(child)
            todo.append((child, [*chain, repo]))
    return out


def _chained(e: BundlerError, chain: list[str]) -> BundlerError:
    e.message = f"{' -> '.join(chain)}: {e.message}"
    e.hint = (e.hint + "; " if e.hint else "") + "or lock with --no-deps to leave the dependencies out"
    return e
