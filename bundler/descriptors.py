"""Model descriptors: lazy proxies naming a model; constructing one does no I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .kinds import huggingface as _hf, oci as _oci, s3 as _s3, store as _store
from .model.pins import normalise_patterns

if TYPE_CHECKING:
    from .kinds import ModelKind
    from .runtime import BundleContext


def _patterns(value: Any, what: str) -> list[str] | None:
    try:
        return normalise_patterns(value, what)
    except ValueError as e:
        raise UsageError(str(e)) from None


class _Descriptor:
    kind: str = ""
    attribute: str | None = None
    _module: str | None = None  # the module that declares it: where a bundle.yaml is looked for

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = name
        self._module = owner.__module__

    @property
    def key(self) -> tuple:
        """The identity a lock or bundle pin is matched on."""
        from .model.pins import key_of

        info = self.to_info()
        return key_of(self.kind, info["id"], info.get("revision"), info.get("include"), info.get("exclude"))

    def _bundle(self) -> BundleContext | None:
        from .runtime import bundle_for

        return bundle_for(self._module)

    def to_info(self) -> dict[str, Any]:
        raise NotImplementedError

    def _fetched_now(self, kind: ModelKind) -> str:
        """Development mode, for a kind bundler caches: the reference pinned now, its files
        fetched into bundler's cache (verified); their folder."""
        from types import SimpleNamespace

        info = self.to_info()
        ref = SimpleNamespace(kind=self.kind, id=info["id"], include=info.get("include"), exclude=info.get("exclude"), line=None)
        return str(kind.local_copy(kind.pin(ref, where=None, offline=False, notes=None))[0])

    def resolve(self) -> str:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_info() == self.to_info()

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_info().items() if k != "kind")
        return f"{type(self).__name__}({args})"


class HuggingFaceModel(_Descriptor):
    """A model repository on the Hugging Face Hub.

    ``revision`` is a branch, tag or commit (``None`` means the repo's default branch);
    ``include``/``exclude`` are glob patterns with huggingface_hub's allow/ignore semantics.
    """

    kind = _hf.KIND.name

    def __init__(
        self,
        model_id: str,
        revision: str | None = None,
        include: str | list[str] | None = None,
        exclude: str | list[str] | None = None,
        **_bentoml_compat: Any,
    ) -> None:
        if not isinstance(model_id, str) or not model_id.strip():
            raise UsageError(f"HuggingFaceModel needs a repository id like 'org/name', not {model_id!r}")
        if revision is not None and not isinstance(revision, str):
            raise UsageError(f"revision must be a string, not {revision!r}")
        self.model_id = model_id
        self.revision = revision
        self.include = _patterns(include, "include")
        self.exclude = _patterns(exclude, "exclude")
        self._resolved: str | None = None

    def to_info(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.model_id,
            "revision": self.revision,
            "include": self.include,
            "exclude": self.exclude,
        }

    def resolve(self) -> str:
        """Return the local directory holding the model's files.

        From a bundle: the cache snapshot of the pinned commit, with no network call, after
        checking every pinned file is there and unmodified.

        Development mode (no bundle): downloads the snapshot through huggingface_hub into the
        standard cache. The path is memoised, so later calls in this process do no network; a new
        process reuses the cache (huggingface_hub falls back to it when the Hub is unreachable).
        """
        if self._resolved is None and (ctx := self._bundle()) is not None:
            self._resolved = ctx.resolve_huggingface(self.key, repr(self))
        if self._resolved is None:
            from huggingface_hub import snapshot_download

            from .hub.api import endpoint

            kwargs: dict[str, Any] = {
                "endpoint": endpoint(),
                "revision": self.revision,
                "allow_patterns": self.include,
                "ignore_patterns": self.exclude,
            }
            if self.revision and _is_commit(self.revision):
                # A commit is immutable: once cached, no request is needed to trust it.
                try:
                    self._resolved = snapshot_download(self.model_id, local_files_only=True, **kwargs)
                    return self._resolved
                except Exception:  # noqa: BLE001 - not cached yet: fetch below
                    pass
            self._resolved = snapshot_download(self.model_id, **kwargs)
        return self._resolved


class StoreModel(_Descriptor):
    """A model in the local bundler store, by tag ``name:version`` (``name`` means ``name:latest``)."""

    kind = _store.KIND.name

    def __init__(self, tag: str, **_bentoml_compat: Any) -> None:
        if not isinstance(tag, str) or not tag.strip():
            raise UsageError(f"StoreModel needs a tag like 'name:version', not {tag!r}")
        self.tag = tag
        self._resolved: str | None = None

    def to_info(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.tag}

    def resolve(self) -> str:
        """Return the directory holding the model's files: the bundle's embedded copy when running
        from a bundle, else (development mode) the local store's."""
        if self._resolved is None and (ctx := self._bundle()) is not None:
            self._resolved = ctx.resolve_store(self.key, repr(self))
        if self._resolved is None:
            from .stores.local import Store

            self._resolved = str(Store().get(self.tag).path)
        return self._resolved


class OCIModel(_Descriptor):
    """A model held in an OCI registry as an artifact whose layers are its files (``oras push``,
    ModelPack, KitOps), by reference ``oci://host/repo:tag`` or ``oci://host/repo@sha256:…``."""

    kind = _oci.KIND.name

    def __init__(self, ref: str) -> None:
        if not isinstance(ref, str) or not ref.startswith("oci://"):
            raise UsageError(f"OCIModel needs a reference like 'oci://host/repo:tag', not {ref!r}")
        self.ref = ref
        self._resolved: str | None = None

    def to_info(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.ref}

    def resolve(self) -> str:
        """Return the directory holding the model's files: the bundle's copy when running from a
        bundle (offline), else (development mode) the layers fetched into bundler's cache."""
        if self._resolved is None and (ctx := self._bundle()) is not None:
            self._resolved = ctx.resolve_store(self.key, repr(self))
        if self._resolved is None:
            self._resolved = self._fetched_now(_oci.KIND)
        return self._resolved


class S3Model(_Descriptor):
    """Objects in S3 or an S3-compatible store: every object under a prefix
    (``s3://bucket/prefix/``, filtered by ``include``/``exclude`` globs) or one object
    (``s3://bucket/path/model.safetensors``). Endpoint and credentials come from the standard AWS
    settings (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, the environment, instance roles)."""

    kind = _s3.KIND.name

    def __init__(self, url: str, include: str | list[str] | None = None, exclude: str | list[str] | None = None) -> None:
        if not isinstance(url, str) or not url.startswith("s3://"):
            raise UsageError(f"S3Model needs a URL like 's3://bucket/prefix/', not {url!r}")
        self.url = url
        self.include = _patterns(include, "include")
        self.exclude = _patterns(exclude, "exclude")
        self._resolved: str | None = None

    def to_info(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.url, "include": self.include, "exclude": self.exclude}

    def resolve(self) -> str:
        """Return the directory holding the objects (by their paths under the prefix): the
        bundle's copy when running from a bundle (offline), else (development mode) the objects
        pinned now and fetched into bundler's cache."""
        if self._resolved is None and (ctx := self._bundle()) is not None:
            self._resolved = ctx.resolve_store(self.key, repr(self))
        if self._resolved is None:
            self._resolved = self._fetched_now(_s3.KIND)
        return self._resolved


def _is_commit(revision: str) -> bool:
    return len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)
