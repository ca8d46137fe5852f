"""The Hugging Face Hub kind: a repository pinned to a commit, its files fetched into the standard
Hugging Face cache on the deploy host (``hub/api.py`` pins, ``ops/pull.py`` fetches)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..model.pins import COMMIT, ENDPOINT, REPO_ID
from .base import BENTO_EPOCH, BadDescriptor, CallSpec, ModelKind, descriptor_patterns, register

if TYPE_CHECKING:
    from ..model.pins import Pin

#: BentoML's default endpoint (``DEFAULT_HF_ENDPOINT``)
_BENTO_ENDPOINT = "https://huggingface.co"


class HuggingFace(ModelKind):
    name = "huggingface"
    hub = True
    markers = frozenset({
        "bundler.HuggingFaceModel",
        "bundler.models.HuggingFaceModel",
        "bundler.descriptors.HuggingFaceModel",
        "bentoml.models.HuggingFaceModel",
    })
    id_keywords = ("model_id",)

    def call_spec(self, marker: str) -> CallSpec:
        # bentoml's HuggingFaceModel differs from bundler's after `revision`, so only the first
        # two may be positional there; `endpoint` is keyword-only in both.
        return CallSpec("HuggingFaceModel", ("model_id", "revision", "include", "exclude", "endpoint"),
                        4 if marker.startswith("bundler.") else 2)

    def ref_fields(self, args: dict[str, Any]) -> dict[str, Any]:
        model_id = args.get("model_id")
        if not isinstance(model_id, str) or not model_id.strip():
            raise BadDescriptor("HuggingFaceModel needs a repository id string like 'org/name'")
        revision = args.get("revision")
        if revision is not None and (not isinstance(revision, str) or not revision):
            raise BadDescriptor(f"revision must be a non-empty string, not {revision!r}")
        endpoint = args.get("endpoint")
        if endpoint is not None and (not isinstance(endpoint, str) or not ENDPOINT.match(endpoint)):
            shown = re.sub(r"//[^/@]*@", "//***@", str(endpoint))[:80]  # never echo credentials
            raise BadDescriptor(f"endpoint must be an http(s) URL without credentials, not {shown!r}",
                                hint="give the mirror's URL; its token comes from HF_TOKEN or `hf auth login`, never from the source")
        return {"id": model_id, "revision": revision, **descriptor_patterns(args), "endpoint": endpoint.rstrip("/") if endpoint else None}

    def pin(self, ref: Any, *, where: str | None, offline: bool, notes: list[str] | None) -> Pin:
        from ..hub import api as hub

        pin = hub.pin(ref, where=where, no_network=offline, notes=notes)
        try:
            return self.checked(pin)
        except ValueError as e:  # the Hub's answer made a pin no lock may hold
            raise hub.malformed(ref, where, e) from None

    def check(self, p: Pin) -> None:
        if not REPO_ID.match(p.id) or ".." in p.id:
            raise ValueError(f"bad repository id {p.id!r}")
        if not p.commit or not COMMIT.match(p.commit):
            raise ValueError(f"bad commit {p.commit!r} for {p.id}")
        if p.hub_id is not None and (not isinstance(p.hub_id, str) or not REPO_ID.match(p.hub_id) or ".." in p.hub_id):
            raise ValueError(f"bad Hub id {p.hub_id!r} for {p.id}")
        if p.required_by is not None and (not isinstance(p.required_by, str) or not REPO_ID.match(p.required_by)):
            raise ValueError(f"bad required_by {p.required_by!r} for {p.id}")
        if p.endpoint is not None and (not isinstance(p.endpoint, str) or not ENDPOINT.match(p.endpoint)):
            raise ValueError(f"bad endpoint for {p.id} (an http(s) URL without credentials)")

    def bento_model(self, p: Pin) -> dict[str, Any]:
        # BentoML's own HuggingFaceModel.to_info: the tag's version is the md5 of this metadata
        import hashlib
        import json

        from ..hub.api import endpoint_for

        metadata = {
            # the id as the bundle spells it: the cache bundler pulled into is named after it
            "model_id": p.id,
            "revision": p.commit,
            # the endpoint this host's pull uses (its HF_ENDPOINT or --hub-endpoint, else the pin's):
            # BentoML's serve-time snapshot_download asks it, and a mirror's host can't reach another
            "endpoint": (endpoint_for(p, at_pull=True) or _BENTO_ENDPOINT).rstrip("/"),
            "include": list(p.include) if p.include is not None else None,
            "exclude": list(p.exclude) if p.exclude is not None else None,
        }
        content = hashlib.md5(json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        return {
            "tag": f"{p.id.lower().replace('/', '--')}:{content}",
            "module": None,
            "creation_time": BENTO_EPOCH,
            "registry": "huggingface",
            "metadata": metadata,
        }

    def purl(self, p: Pin) -> Any:
        from packageurl import PackageURL

        namespace, _, name = p.id.rpartition("/")
        return PackageURL(type="huggingface", namespace=namespace or None, name=name, version=p.commit)


KIND = register(HuggingFace())
