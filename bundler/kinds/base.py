"""The model-kind protocol and the registry's table (the built-in kinds and any other register here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..model.pins import Pin


@dataclass(frozen=True)
class CallSpec:
    """How a descriptor call names its model: the parameters in positional order, how many may be
    positional, the ones accepted but not recorded, and the name messages use."""

    what: str
    params: tuple[str, ...]
    positional: int = 1
    ignored: frozenset[str] = frozenset()


class BadDescriptor(ValueError):
    """A descriptor's value the kind can't accept; the scanner reports it at the call."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def descriptor_patterns(args: dict[str, Any]) -> dict[str, list[str] | None]:
    """A descriptor's ``include`` and ``exclude`` as lists (one pattern may be a string), the
    same rule as at run time; ``BadDescriptor`` else."""
    from ..model.pins import normalise_patterns

    patterns = {}
    for what in ("include", "exclude"):
        try:
            patterns[what] = normalise_patterns(args.get(what), f"`{what}`")
        except ValueError as e:
            raise BadDescriptor(str(e)) from None
    return patterns


class ModelKind:
    """One model source. Subclasses set ``name`` (the ``source`` written in locks and bundles) and
    the scanner's spellings, and implement what their family needs."""

    name: ClassVar[str]
    #: files come from a Hub through the Hugging Face cache (else they travel in the bundle)
    hub: ClassVar[bool] = False
    #: qualified names of the descriptor calls the scanner reads as this kind
    markers: ClassVar[frozenset[str]] = frozenset()
    #: the keywords a loader call names this kind's model with
    id_keywords: ClassVar[tuple[str, ...]] = ()
    #: files reach the deploy host through bundler's own cache (``host_dir``; ``bundler pull``
    #: fetches them with ``local_copy``) unless the bundle carries them (``build --embed-s3``)
    fetched: ClassVar[bool] = False
    #: each file pins an object store's version id and ETag
    object_ids: ClassVar[bool] = False
    #: the oldest manifest schema that can hold a model of this kind
    min_schema: ClassVar[int] = 1

    # -- scanning ---------------------------------------------------------------------------
    def recognises(self, qualname: str) -> bool:
        return qualname in self.markers

    def call_spec(self, marker: str) -> CallSpec:
        raise NotImplementedError

    def ref_fields(self, args: dict[str, Any]) -> dict[str, Any]:
        """The reference's fields (``id``, and ``revision``, ``include``, ``exclude``, ``endpoint``
        where the kind has them) from a descriptor's evaluated arguments; ``BadDescriptor`` else."""
        raise NotImplementedError

    # -- pinning ----------------------------------------------------------------------------
    def pin(self, ref: Any, *, where: str | None, offline: bool, notes: list[str] | None) -> Pin:
        """Pin a scanned reference (``ref.kind`` is this kind's name); the caller checks the pin."""
        raise NotImplementedError

    def check(self, pin: Pin) -> None:
        """Refuse a pin (from a lock or a bundle: untrusted) whose values this kind can't use safely."""
        raise NotImplementedError

    def checked(self, p: Pin) -> Pin:
        """``p``, after this kind's rules and the ones every pin keeps (ValueError names the first
        broken one): what a lock or a bundle may hold."""
        from ..errors import BundlerError
        from ..model.pins import check_files

        try:
            self.check(p)
        except BundlerError as e:  # a store's tag grammar speaks to users; a reader names its file
            raise ValueError(e.message) from None
        if not self.hub and (p.hub_id is not None or p.required_by is not None or p.endpoint is not None):
            raise ValueError(f"a Hub id, required_by or endpoint for the {p.source} model {p.id}")
        check_files(p, xet=self.hub, object_ids=self.object_ids)
        return p

    # -- packing and landing (kinds whose files travel in the bundle) ----------------------
    def bundle_dir(self, pin: Pin, schema: int) -> str | None:
        """Where the pin's files are inside a bundle of ``schema`` (a ``fetched`` kind's: when
        it is embedded); None for a Hub kind."""
        return None

    def cache_root(self) -> Path | None:
        """bundler's own cache of this kind's files on this host (``host_dir`` is under it);
        None for a kind that keeps none."""
        return None

    def host_dir(self, pin: Pin) -> Path:
        """The folder of the pinned files in this host's cache (where ``local_copy`` puts them;
        where a ``fetched`` kind's service finds them)."""
        root = self.cache_root()
        if root is None or pin.version is None:
            raise NotImplementedError(f"{self.name} models are not cached by bundler")
        return root / pin.version

    def local_copy(self, pin: Pin, *, offline: bool = False) -> tuple[Path, str]:
        """The build host's copy of the pinned files (their folder) and the tag messages name;
        ``offline``: what is not on this host already is an error, not a download."""
        raise NotImplementedError

    def land(self, pin: Pin, src: Path) -> str | None:
        """Put the unpacked files at ``src`` where this host's services find them; the tag landed,
        or None when it was already there."""
        return None

    # -- views -------------------------------------------------------------------------------
    def bento_model(self, pin: Pin) -> dict[str, Any] | None:
        """The model's entry in ``bento.yaml`` (None: BentoML does not resolve this kind)."""
        return None

    def bento_latest(self, pin: Pin) -> tuple[str, str] | None:
        """(name, version) for a ``models/<name>/latest`` file in the bundle's model store."""
        return None

    def purl(self, pin: Pin) -> Any:
        """The package URL an SBOM names the model by (None: there is none for this kind)."""
        return None


#: the creation time ``bento.yaml`` records for every model: a bundle's bytes never hold the clock
BENTO_EPOCH = "1980-01-01T00:00:00+00:00"

_KINDS: dict[str, ModelKind] = {}
_loaded = False


def register(kind: ModelKind) -> ModelKind:
    """Make ``kind`` known by its name; a name already taken by another kind is an error."""
    known = _KINDS.get(kind.name)
    if known is not None and type(known) is not type(kind):
        raise ValueError(f"model source {kind.name!r} is already registered ({type(known).__name__})")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _KINDS.pop(name, None)
