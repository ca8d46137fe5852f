"""BentoML's model store kind (``$BENTOML_HOME/models``): a tag pinned to a concrete version, its
files carried in the bundle under ``models/`` (BentoML's own bento layout) and landed into the
deploy host's BentoML store (``stores/bentoml.py`` reads and writes it without bentoml)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model.layout import MODEL_PREFIX
from .base import BENTO_EPOCH, CallSpec, ModelKind, register
from .store import STORE_TAG_KEYWORDS, tag_fields

if TYPE_CHECKING:
    from ..model.pins import Pin

# The older per-framework look-ups: ``bentoml.transformers.get("tag")`` and the like.
_FRAMEWORK_GET = re.compile(r"^bentoml\.[a-z_][a-z0-9_]*\.get\Z")


class BentoMLStore(ModelKind):
    name = "bentoml-store"
    markers = frozenset({"bentoml.models.BentoModel", "bentoml.models.get", "bentoml.models.BentoModel.from_tag"})
    id_keywords = STORE_TAG_KEYWORDS
    min_schema = 2  # schema 2 moved bundler's own store out of ``models/``, which is BentoML's

    def recognises(self, qualname: str) -> bool:
        return qualname in self.markers or bool(_FRAMEWORK_GET.match(qualname))

    def call_spec(self, marker: str) -> CallSpec:
        return CallSpec(marker.rsplit(".", 1)[-1] if "BentoModel" in marker else marker, ("tag",),
                        ignored=frozenset({"alias"}))

    def ref_fields(self, args: dict[str, Any]) -> dict[str, Any]:
        return tag_fields(args)

    def pin(self, ref: Any, *, where: str | None, offline: bool, notes: list[str] | None) -> Pin:
        from ..stores import bentoml as bentoml_store
        from ..model.pins import Pin

        version, files = bentoml_store.pinned_files(ref.id)
        return Pin(source=self.name, id=ref.id, version=version, files=files)

    def check(self, p: Pin) -> None:
        from ..stores.bentoml import parse_tag

        parse_tag(p.id)
        if p.version is None:
            raise ValueError(f"no version for {p.id}")
        # BentoML finds a model under its lowercase concrete version: `LATEST` would land in a
        # folder no tag names
        if parse_tag(f"x:{p.version}")[1] != p.version:
            raise ValueError(f"BentoML model {p.id}: version {p.version!r} is not a concrete lowercase version")

    def _name(self, p: Pin) -> str:
        from ..stores.bentoml import parse_tag

        return parse_tag(p.id)[0]

    def bundle_dir(self, p: Pin, schema: int) -> str:
        return f"{MODEL_PREFIX}{self._name(p)}/{p.version}"

    def local_copy(self, p: Pin, *, offline: bool = False) -> tuple[Path, str]:
        from ..stores import bentoml as bentoml_store

        name, version, path = bentoml_store.resolve(f"{self._name(p)}:{p.version}")
        return path, f"{name}:{version}"

    def land(self, p: Pin, src: Path) -> str | None:
        from ..stores import bentoml as bentoml_store

        return f"bentoml:{self._name(p)}:{p.version}" if bentoml_store.land(p, src) else None

    def bento_model(self, p: Pin) -> dict[str, Any]:
        return {"tag": f"{self._name(p)}:{p.version}", "module": "", "creation_time": BENTO_EPOCH, "registry": "bentoml"}

    def bento_latest(self, p: Pin) -> tuple[str, str]:
        return self._name(p), str(p.version)


KIND = register(BentoMLStore())
