"""Model sources: each kind of place a model comes from is one backend, found by name here.

A pin records its kind's name (``Pin.source``); every step that treats kinds differently (the
scanner, lock, build, pull, serving, ``bento.yaml``, SBOM, inspect) asks the kind, never compares
the name. A new source is one module with a ``ModelKind`` subclass and a ``register`` call (pip's
``VcsSupport`` registry does the same for version control systems); the built-in ones are loaded
on first use, so importing this package costs nothing.

Three families exist: a Hub kind (``hub = True``) pins a commit, and its files reach the deploy
host through the Hugging Face cache (``bundler pull`` fetches them); a fetched kind (``fetched =
True``, S3) has ``bundler pull`` fetch its files into bundler's own cache (``host_dir``) unless
the bundle embeds them; every other kind's files travel in the bundle under ``bundle_dir`` and
are landed where the service finds them (``land``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import BENTO_EPOCH, BadDescriptor, CallSpec, ModelKind, register, unregister, _KINDS

if TYPE_CHECKING:
    from ..model.pins import Pin

__all__ = ["BENTO_EPOCH", "BadDescriptor", "CallSpec", "ModelKind", "all_kinds", "check_pin", "for_call", "get", "of",
           "register", "unregister"]

_loaded = False


def _builtins() -> None:
    global _loaded
    if not _loaded:
        from . import bentoml, huggingface, oci, s3, store  # noqa: F401 - each registers itself

        _loaded = True


def get(name: str) -> ModelKind:
    """The kind named ``name`` (a pin's ``source``); ValueError for a name no kind has."""
    _builtins()
    kind = _KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ValueError(f"unknown model source {name!r}")
    return kind


def of(pin: Pin) -> ModelKind:
    return get(pin.source)


def all_kinds() -> list[ModelKind]:
    _builtins()
    return list(_KINDS.values())


def for_call(qualname: str | None) -> ModelKind | None:
    """The kind whose descriptor a call is, by the call's qualified name."""
    if qualname is None:
        return None
    return next((k for k in all_kinds() if k.recognises(qualname)), None)


def check_pin(p: Pin) -> Pin:
    """Refuse a pin (from a lock file or a bundle) whose values would become unsafe paths: the
    kind's own rules, then the ones every pin keeps."""
    return get(p.source).checked(p)
