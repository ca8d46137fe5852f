"""bundler's own model store kind: a tag pinned to a concrete version, its files carried in the
bundle under ``store/`` and placed into the deploy host's store by a pull (``stores/local.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model.layout import MODEL_PREFIX, STORE_PREFIX
from .base import BadDescriptor, CallSpec, ModelKind, register

if TYPE_CHECKING:
    from ..model.pins import Pin

#: the keywords a store descriptor or a BentoML loader names its model with
STORE_TAG_KEYWORDS = ("tag", "bento_model")


def tag_fields(args: dict[str, Any]) -> dict[str, Any]:
    tag = args.get("tag")
    if not isinstance(tag, str) or not tag.strip():
        raise BadDescriptor("a store model needs a tag string like 'name:version'")
    return {"id": tag}


class BundlerStore(ModelKind):
    name = "store"
    markers = frozenset({"bundler.StoreModel", "bundler.models.StoreModel", "bundler.descriptors.StoreModel"})
    id_keywords = STORE_TAG_KEYWORDS

    def call_spec(self, marker: str) -> CallSpec:
        return CallSpec(marker.rsplit(".", 1)[-1], ("tag",))

    def ref_fields(self, args: dict[str, Any]) -> dict[str, Any]:
        return tag_fields(args)

    def pin(self, ref: Any, *, where: str | None, offline: bool, notes: list[str] | None) -> Pin:
        from ..model.pins import Pin
        from ..stores.local import Store

        model = Store().get(ref.id)
        return Pin(source=self.name, id=ref.id, version=model.version, files=model.files)

    def check(self, p: Pin) -> None:
        from ..stores.local import parse_tag

        parse_tag(f"{p.id.partition(':')[0]}:{p.version}")

    def bundle_dir(self, p: Pin, schema: int) -> str:
        return f"{MODEL_PREFIX if schema < 2 else STORE_PREFIX}{p.id.partition(':')[0]}/{p.version}"

    def local_copy(self, p: Pin, *, offline: bool = False) -> tuple[Path, str]:
        from ..stores.local import Store

        model = Store().get(f"{p.id.partition(':')[0]}:{p.version}")
        return model.path, model.tag

    def land(self, p: Pin, src: Path) -> str | None:
        from ..errors import UsageError
        from ..stores.local import Store

        store = Store()
        tag = f"{p.id.partition(':')[0]}:{p.version}"
        try:
            store.get(tag)
            return None
        except UsageError:
            pass
        store.place_verified(tag, src, list(p.files))
        return tag


KIND = register(BundlerStore())
