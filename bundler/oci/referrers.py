"""OCI 1.1 referrers: artifacts (a signature) attached to a pushed manifest by its ``subject``.

A referrer is an image manifest with ``artifactType``, an empty config, one layer (the artifact)
and ``subject`` naming the manifest it refers to. A registry with the referrers API answers
``GET /v2/<repo>/referrers/<digest>`` with an index of them and says so on the PUT
(``OCI-Subject``); for one without it (CNCF Distribution 2.8, Debian's docker-registry) the
client keeps that index itself under the tag schema's fallback tag, ``sha256-<hex>``, as the
distribution spec describes.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

from ..errors import UsageError
from .client import INDEX_TYPE, MANIFEST_TYPE, TITLE, Reference, Registry, _download

EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
MAX_ARTIFACT = 64 << 20


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def attach(registry: Registry, repo: str, subject: dict[str, Any], artifact_type: str, data: bytes, title: str) -> str:
    """Push ``data`` as a referrer of ``subject`` (its mediaType, digest and size); its digest."""
    for blob in (EMPTY, data):
        registry.upload_blob(repo, _digest(blob), len(blob), blob)
    manifest = _json({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_TYPE, "digest": _digest(EMPTY), "size": len(EMPTY)},
        "layers": [{"mediaType": artifact_type, "digest": _digest(data), "size": len(data), "annotations": {TITLE: title}}],
        "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]},
    })
    digest = _digest(manifest)
    headers = registry.put_manifest_headers(Reference(registry.host, repo, None, digest), manifest, MANIFEST_TYPE)
    if headers.get("OCI-Subject") != subject["digest"]:  # no referrers API: keep the fallback tag's index
        tag = Reference(registry.host, repo, fallback_tag(subject["digest"]), None)
        index = _fallback_index(registry, tag)
        entry = {"mediaType": MANIFEST_TYPE, "digest": digest, "size": len(manifest), "artifactType": artifact_type}
        if entry not in index["manifests"]:
            index["manifests"].append(entry)
            registry.put_manifest(tag, _json(index), INDEX_TYPE)
    return digest


def fallback_tag(digest: str) -> str:
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}-{hex_}"


def _fallback_index(registry: Registry, tag: Reference) -> dict[str, Any]:
    try:
        index, _ = registry.get_manifest(tag, index_ok=True)
    except UsageError as e:
        if "no such manifest" not in e.message:
            raise
        return {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": []}  # no referrer yet
    manifests = index.get("manifests")
    return {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []}


def referrers(registry: Registry, repo: str, digest: str, artifact_type: str | None = None) -> list[dict[str, Any]]:
    """The descriptors of what refers to ``digest`` (of ``artifact_type``): the referrers API,
    else the fallback tag."""
    r = registry.request("GET", f"/v2/{repo}/referrers/{digest}", scope=f"repository:{repo}:pull", ok=(200, 400, 404, 405),
                         headers={"Accept": INDEX_TYPE})
    raw = r.read(4 << 20)
    r.close()
    found: list[dict[str, Any]] = []
    if r.status == 200 and "json" in (r.headers.get("Content-Type") or ""):
        try:
            found = [m for m in json.loads(raw).get("manifests", []) if isinstance(m, dict)]
        except (ValueError, AttributeError):
            found = []
    if not found:
        found = _fallback_index(registry, Reference(registry.host, repo, fallback_tag(digest), None))["manifests"]
    return [m for m in found if artifact_type is None or m.get("artifactType") == artifact_type]


def artifact(registry: Registry, repo: str, desc: dict[str, Any], subject: str) -> bytes | None:
    """The one layer of a referrer whose ``subject`` is ``subject``; None for any other shape."""
    manifest, _ = registry.get_manifest(Reference(registry.host, repo, None, str(desc["digest"])))
    layers = manifest.get("layers") or []
    if (manifest.get("subject") or {}).get("digest") != subject or len(layers) != 1 or int(layers[0]["size"]) > MAX_ARTIFACT:
        return None
    buf = io.BytesIO()
    _download(registry, repo, layers[0]["digest"], int(layers[0]["size"]), buf)
    return buf.getvalue()
