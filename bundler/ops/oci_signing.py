"""Signatures of pushed bundles, attached to the pushed manifest as OCI 1.1 referrers
(``oci/referrers.py``): ``bundler sign oci://…``, ``push --sign``, ``verify oci://…`` and
``pull oci://… --require-signature``.

The signature is the same OMS document ``bundler sign`` writes beside an archive (the sha256 of
every member, named by its path, ``bundle.yaml`` included), stored as a referrer whose artifact
type is the Sigstore bundle's media type. Signing a pushed bundle reads no weight bytes: a model
file's layer digest is its sha256, and the registry checked it on upload; only the sources
layer is read. Checking one reads the same: the signature, then ``bundle.yaml`` (the pushed
config) and the layer digests against it; the pull then checks every member against
``bundle.yaml`` as it streams, so nothing unsigned lands.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..errors import ProblemFound, UsageError
from ..model.layout import MANIFEST_NAME
from .signing import BUNDLE_MEDIA_TYPE, Signer, Trust

SIGNATURE_TITLE = "bundle.sig"


def subject_of(registry: Any, ref: Any) -> dict[str, Any]:
    """The descriptor (media type, digest, size) of the manifest or index ``ref`` names."""
    from ..oci.client import INDEX_TYPE, MANIFEST_TYPE

    r = registry.request("HEAD", f"/v2/{ref.repo}/manifests/{ref.reference}", scope=f"repository:{ref.repo}:pull",
                         headers={"Accept": f"{MANIFEST_TYPE}, {INDEX_TYPE}"})
    r.read()
    r.close()
    media_type = (r.headers.get("Content-Type") or "").split(";")[0].strip()
    digest = ref.digest or r.headers.get("Docker-Content-Digest")
    size = r.headers.get("Content-Length")
    if media_type not in (MANIFEST_TYPE, INDEX_TYPE) or not digest or not (size or "").isdigit():
        raise ProblemFound(f"{ref}: the registry did not describe the manifest (type {media_type!r}, digest {digest!r})")
    return {"mediaType": media_type, "digest": digest, "size": int(size or 0)}


def attach(registry: Any, ref: Any, doc: bytes) -> str:
    """Attach signature ``doc`` to what ``ref`` names; the referrer's digest."""
    from ..oci.referrers import attach as put

    return put(registry, ref.repo, subject_of(registry, ref), BUNDLE_MEDIA_TYPE, doc, SIGNATURE_TITLE)


def referrers_of(target: str, *, insecure: bool = False, token: str | None = None) -> list[dict[str, Any]]:
    """What refers to the pushed manifest ``target`` names (signatures, SBOMs): digest and type."""
    from ..oci.client import Registry, parse_reference
    from ..oci.referrers import referrers

    ref = parse_reference(target)
    registry = Registry(ref.host, insecure=insecure, token=token)
    subject = subject_of(registry, ref)
    return [{"digest": str(d.get("digest")), "artifactType": str(d.get("artifactType"))} for d in referrers(registry, ref.repo, subject["digest"])]


def sign_pushed(target: str, signer: Signer, *, insecure: bool = False, token: str | None = None) -> str:
    """Sign a pushed bundle in place (its sources layer read, no weight bytes); the referrer."""
    from ..oci.image import PushedImage
    from ..oci.registry import open_pushed
    from .signing import signature_doc

    signer.check()
    pushed = open_pushed(target, insecure=insecure, token=token)
    if isinstance(pushed, PushedImage):
        pushed.close()
        raise UsageError(f"{target}: a mountable image's layers are not the bundle's files; sign it as it is pushed",
                         hint="bundler push BUNDLE oci://… --image --sign --key PRIVATE.pem")
    doc = signature_doc(pushed.manifest.name, pushed_digests(pushed), signer)
    return attach(pushed.registry, pushed.ref, doc)


def pushed_digests(pushed: Any) -> dict[str, str]:
    """{member: sha256} of a pushed bundle: ``bundle.yaml`` (the config), each source (the
    sources layer, checked against the manifest as it is read) and each model file (its layer
    digest, which the registry checked)."""
    from ..bundle.archive import ExpectedMembers
    from ..oci.registry import MODEL_FILE_TYPE, TITLE

    out = {MANIFEST_NAME: hashlib.sha256(pushed.raw_config).hexdigest()}
    expected = ExpectedMembers(pushed.manifest, str(pushed.ref))
    for layer in pushed.oci.get("layers", []):
        if layer.get("mediaType") == MODEL_FILE_TYPE:
            name = str((layer.get("annotations") or {}).get(TITLE, ""))
            expected.accept(name, int(layer["size"]))
            out[name] = str(layer["digest"]).partition(":")[2]
        else:
            out.update(_source_digests(pushed, layer, expected))
    expected.require_all()
    return dict(sorted(out.items()))


def _source_digests(pushed: Any, layer: dict[str, Any], expected: Any) -> dict[str, str]:
    import tarfile
    import tempfile

    from ..bundle.archive import check_member, members_of
    from ..model.layout import SOURCE_PREFIX
    from ..oci.registry import SOURCE_TYPE, _download
    from .signing import sha256_if_pinned

    if layer.get("mediaType") != SOURCE_TYPE:
        raise UsageError(f"{pushed.ref}: a layer of unknown media type {layer.get('mediaType')!r}")
    out = {}
    with tempfile.TemporaryFile() as buf:
        _download(pushed.registry, pushed.ref.repo, layer["digest"], int(layer["size"]), buf)
        buf.seek(0)
        with tarfile.open(fileobj=buf, mode="r:") as tar:
            for m in members_of(tar, f"{pushed.ref} source layer"):
                name = SOURCE_PREFIX + check_member(m, f"{pushed.ref} source layer")
                entry = expected.accept(name, m.size)
                sha = sha256_if_pinned(tar.extractfile(m), entry)
                if sha is None:
                    raise ProblemFound(f"{pushed.ref}: {name} does not match the bundle manifest", hint="push the bundle again")
                out[name] = sha
    return out


def verify_pushed(target: str, trust: Trust, *, insecure: bool = False, token: str | None = None) -> int:
    """A signature by whom ``trust`` accepts refers to the pushed bundle and vouches for its
    ``bundle.yaml`` and every file layer; the number of files signed. Exit 1 names what fails."""
    from ..oci.image import PushedImage
    from ..oci.registry import open_pushed

    trust.check()
    pushed = open_pushed(target, insecure=insecure, token=token)
    try:
        return check_pushed(pushed, trust)
    finally:
        if isinstance(pushed, PushedImage):
            pushed.close()


def check_pushed(pushed: Any, trust: Trust) -> int:
    """``verify_pushed`` of a pushed bundle already read (``open_pushed``)."""
    from ..oci.image import PushedImage

    signed = _signed(pushed, trust)
    raw = pushed.raw_manifest if isinstance(pushed, PushedImage) else pushed.raw_config
    if signed.get(MANIFEST_NAME) != hashlib.sha256(raw).hexdigest():
        raise ProblemFound(f"{pushed.ref}: {MANIFEST_NAME} differs from what was signed (another bundle's signature, or a changed one)")
    names = {MANIFEST_NAME, *pushed.manifest.members()}
    for name in sorted(names ^ set(signed)):
        raise ProblemFound(f"{pushed.ref}: {name} is {'signed but not in the bundle' if name in signed else 'in the bundle but not signed'}")
    if not isinstance(pushed, PushedImage):
        from ..oci.registry import MODEL_FILE_TYPE, TITLE

        for layer in pushed.oci.get("layers", []):
            name = str((layer.get("annotations") or {}).get(TITLE, ""))
            if layer.get("mediaType") == MODEL_FILE_TYPE and signed.get(name) != str(layer["digest"]).partition(":")[2]:
                raise ProblemFound(f"{pushed.ref}: {name} differs from what was signed (layer {layer['digest']})")
    return len(signed)


def _signed(pushed: Any, trust: Trust) -> dict[str, str]:
    """The digests the first signature among the referrers that ``trust`` accepts vouches for."""
    from ..oci.referrers import artifact, referrers

    subject = subject_of(pushed.registry, pushed.ref)
    found = referrers(pushed.registry, pushed.ref.repo, subject["digest"], BUNDLE_MEDIA_TYPE)
    if not found:
        raise ProblemFound(f"{pushed.ref}: no signature refers to it ({subject['digest']})",
                           hint="sign it: bundler sign oci://… --key PRIVATE.pem (or push it with --sign)")
    refused: ProblemFound | None = None
    for desc in found:
        data = artifact(pushed.registry, pushed.ref.repo, desc, subject["digest"])
        if data is None:
            continue
        try:
            return trust.vouched(data, f"{pushed.ref} signature {desc['digest']}")
        except ProblemFound as e:
            refused = e
    raise refused or ProblemFound(f"{pushed.ref}: none of its {len(found)} signature(s) can be read")
