"""Signatures in the OpenSSF Model Signing format (OMS v1.0), for bundles.

A signature is a Sigstore bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``) whose DSSE
envelope holds an in-toto statement: predicate type ``https://model_signing/signature/v1.0``,
one resource per file with its sha256, named by its path; the subject's digest is the sha256 of
the resources' digests in order. That is what the ``model-signing`` package writes and verifies:
``model_signing verify key DIR --signature BUNDLE.sig --public_key PUB.pem`` accepts a bundler
signature on the directory ``tar xf BUNDLE -C DIR`` gives, because the resources are exactly the
bundle's members. Keys: elliptic curve (P-256, P-384, P-521) PEM, signed with ECDSA over the
DSSE pre-authentication encoding, with the key's hint (sha256 of its PEM) as verification
material. Needs the ``sign`` extra (``cryptography``). Keyless signatures (a Sigstore identity in
place of a key) are the same document with a certificate as its material: ``keyless.py``.

Who signs is a signer (``KeySigner``, ``keyless.KeylessSigner``: ``check()`` before anything is
read, ``sign(payload)`` the document); whom a reader trusts is a trust (``KeyTrust``,
``keyless.IdentityTrust``: ``check()``, ``vouched(data, where)`` the resources a signature vouches
for, ``label`` what a message names).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import ProblemFound, UsageError

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
SERIALIZATION = {"method": "files", "hash_type": "sha256", "allow_symlinks": False, "ignore_paths": []}
_MAX_SIGNATURE = 64 << 20


class Signer(Protocol):
    @property
    def label(self) -> str: ...
    def check(self) -> None: ...
    def sign(self, payload: bytes) -> bytes: ...


class Trust(Protocol):
    @property
    def label(self) -> str: ...
    def check(self) -> None: ...
    def vouched(self, data: bytes, where: str) -> dict[str, str]: ...


@dataclass(frozen=True)
class KeySigner:
    """Signs with an elliptic-curve private key (PEM)."""

    path: Path

    @property
    def label(self) -> str:
        return str(self.path)

    def check(self) -> None:
        _load_key(self.path, private=True)

    def sign(self, payload: bytes) -> bytes:
        return _key_signature(payload, self.path)


@dataclass(frozen=True)
class KeyTrust:
    """Accepts a signature made with the private half of this public key (PEM)."""

    path: Path

    @property
    def label(self) -> str:
        return str(self.path)

    def check(self) -> None:
        _load_key(self.path, private=False)

    def vouched(self, data: bytes, where: str) -> dict[str, str]:
        return vouched(data, where, self.path)


def as_signer(signer: Signer | str | Path) -> Signer:
    """A private key's path stands for the key signer (the library API before keyless)."""
    return KeySigner(Path(signer)) if isinstance(signer, (str, Path)) else signer


def as_trust(trust: Trust | str | Path) -> Trust:
    """A public key's path stands for the key trust (the library API before keyless)."""
    return KeyTrust(Path(trust)) if isinstance(trust, (str, Path)) else trust


def member_digests(bundle: Path) -> dict[str, str]:
    """{member path: sha256 hex} of every member of ``bundle``, the manifest included, each
    checked against the manifest (size and hash) in the same read: a damaged bundle is never
    signed, and a verified one is the bundle its manifest describes."""
    from ..bundle.archive import ExpectedMembers, is_compressed, iter_members, read_manifest, read_member, sha256_and_pinned
    from ..model.layout import MANIFEST_NAME

    manifest = read_manifest(bundle)
    raw = read_member(bundle, MANIFEST_NAME, 64 << 20)
    assert raw is not None  # read_manifest found it
    out = {MANIFEST_NAME: hashlib.sha256(raw).hexdigest()}
    expected = ExpectedMembers(manifest, str(bundle))
    pinned: dict[str, str] = {}
    if is_compressed(bundle):  # a stream: one member after another
        for name, member, f in iter_members(bundle):
            entry = expected.accept(name, member.size)
            out[name] = _matching(bundle, name, sha256_if_pinned(f, entry))
    else:
        def accept(name: str, size: int) -> str:
            pinned[name] = expected.accept(name, size).hash
            return pinned[name].partition(":")[0]

        for name, sha, own in sha256_and_pinned(bundle, accept):
            out[name] = _matching(bundle, name, sha if own == pinned[name] else None)
    expected.require_all()
    return dict(sorted(out.items()))


def _matching(bundle: Path, name: str, sha: str | None) -> str:
    if sha is None:
        raise ProblemFound(f"{bundle}: member {name} does not match the manifest", hint="the bundle is damaged; build or fetch it again")
    return sha


def sha256_if_pinned(f: Any, entry: Any) -> str | None:
    """The sha256 (hex) of what ``f`` holds, read once beside the hash ``entry`` pins; None when
    the bytes are not the pinned ones."""
    from ..io.hashing import new_hasher

    algorithm = entry.hash.partition(":")[0]
    sha, own = hashlib.sha256(), new_hasher(algorithm, entry.size)
    while chunk := f.read(4 << 20):
        sha.update(chunk)
        own.update(chunk)
    return sha.hexdigest() if f"{algorithm}:{own.hexdigest()}" == entry.hash else None


def statement(model_name: str, digests: dict[str, str]) -> dict[str, Any]:
    resources = [{"algorithm": "sha256", "digest": d, "name": n} for n, d in digests.items()]
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"serialization": SERIALIZATION, "resources": resources},
    }


def pae(payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed."""
    return f"DSSEv1 {len(PAYLOAD_TYPE)} {PAYLOAD_TYPE} {len(payload)} ".encode() + payload


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError:
        raise UsageError("signing needs the `cryptography` package", hint="pip install 'bundler[sign]'") from None
    return hashes, serialization, ec


def _hash_for(key: Any) -> Any:
    hashes, _, _ = _crypto()
    size = key.curve.key_size
    return {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[size]


def _hint(public_key: Any) -> str:
    _, serialization, _ = _crypto()
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def _load_key(path: Path, private: bool) -> Any:
    _, serialization, ec = _crypto()
    from ..io.safe_read import read_regular

    try:
        data = read_regular(path, 1 << 20)
        key = serialization.load_pem_private_key(data, None) if private else serialization.load_pem_public_key(data)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such key file") from None
    except (ValueError, TypeError) as e:
        raise UsageError(f"{path}: not a PEM {'private' if private else 'public'} key this can use ({e})",
                         hint="an elliptic-curve key (P-256, P-384 or P-521) in PEM; an encrypted key is not supported") from None
    public = key.public_key() if private else key
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
        raise UsageError(f"{path}: not an elliptic-curve P-256, P-384 or P-521 key", hint="create one: openssl ecparam -name prime256v1 -genkey -noout -out key.pem")
    return key


def sign(bundle: Path, signer: Signer | str | Path, out: Path | None = None) -> Path:
    """Write ``BUNDLE.sig`` (or ``out``): every member's sha256, signed."""
    from ..bundle.archive import read_manifest
    from ..io.atomic import write_atomic

    signer = as_signer(signer)
    signer.check()  # a bad key or token is said before the bundle is read
    doc = signature_doc(read_manifest(bundle).name, member_digests(bundle), signer)
    target = out or bundle.with_name(bundle.name + ".sig")
    write_atomic(target, doc)
    return target


def signature_doc(model_name: str, digests: dict[str, str], signer: Signer) -> bytes:
    """The OMS signature (a Sigstore bundle, JSON) of ``digests``."""
    return signer.sign(json.dumps(statement(model_name, digests), indent=2).encode())


def _key_signature(payload: bytes, key_path: Path) -> bytes:
    _, _, ec = _crypto()
    key = _load_key(key_path, private=True)
    signature = key.sign(pae(payload), ec.ECDSA(_hash_for(key)))
    doc = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": _hint(key.public_key())}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def signed_digests(signature: Path, trust: Trust) -> dict[str, str]:
    """The resources a signature vouches for, after checking it was made by whom ``trust``
    accepts; exit 1 naming what does not hold."""
    from ..io.safe_read import read_regular

    trust.check()
    try:
        data = read_regular(signature, _MAX_SIGNATURE)
    except FileNotFoundError:
        raise ProblemFound(f"{signature}: no signature there", hint="sign the bundle: bundler sign BUNDLE --key PRIVATE.pem (or --keyless)") from None
    return trust.vouched(data, str(signature))


def vouched(data: bytes, signature: str, pub_path: Path) -> dict[str, str]:
    """``signed_digests`` of a signature's bytes (``signature`` names where they came from)."""
    _, _, ec = _crypto()
    from cryptography.exceptions import InvalidSignature

    public = _load_key(pub_path, private=False)
    try:
        doc = json.loads(data)
        envelope = doc["dsseEnvelope"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        raw = base64.b64decode(envelope["signatures"][0]["sig"], validate=True)
        hint = (doc.get("verificationMaterial") or {}).get("publicKey", {}).get("hint")
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as e:
        raise ProblemFound(f"{signature}: not a model-signing signature ({type(e).__name__})") from None
    if not hint and (signer := _certificate_signer(data)):
        raise ProblemFound(f"{signature}: signed keylessly by {signer[0]} (issuer {signer[1]}), not with a key",
                           hint=f"verify it with --identity {signer[0]} --issuer {signer[1]}")
    if hint and hint != _hint(public):
        raise ProblemFound(f"{signature}: signed with another key than {pub_path}")
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise ProblemFound(f"{signature}: payload type {envelope.get('payloadType')!r} is not in-toto")
    try:
        public.verify(raw, pae(payload), ec.ECDSA(_hash_for(public)))
    except InvalidSignature:
        raise ProblemFound(f"{signature}: the signature does not match {pub_path} (another key, or a changed signature)") from None
    return _resources(payload, signature)


def _certificate_signer(data: bytes) -> tuple[str, str] | None:
    from .fulcio_cert import certificate_signer

    return certificate_signer(data)


def _resources(payload: bytes, where: str) -> dict[str, str]:
    try:
        stmt = json.loads(payload)
        if stmt["predicateType"] != PREDICATE_TYPE or stmt["_type"] != STATEMENT_TYPE:
            raise ValueError("not a model-signing statement")
        resources = stmt["predicate"]["resources"]
        out = {r["name"]: r["digest"] for r in resources if r["algorithm"] == "sha256"}
        root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
        if len(out) != len(resources) or stmt["subject"][0]["digest"]["sha256"] != root:
            raise ValueError("its resources do not add up to its subject's digest")
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise ProblemFound(f"{where}: the signed statement is malformed ({e})") from None
    return out


def directory_digests(root: Path, names: list[str]) -> dict[str, str]:
    """{path: sha256} of the signed files in a directory a pull made (the files bundler adds
    beside the members, bento.yaml and its records, are not signed and not read). Files of
    8 MiB or more are hashed on every core at once, as a bundle's members are."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from ..model.pins import safe_path

    out, large = {}, {}
    for name in names:
        path = root / safe_path(name)
        if path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size >= 8 << 20:
            large[name] = path
        else:
            out[name] = _file_sha256(path)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        out.update(zip(large, pool.map(_file_sha256, large.values())))
    return out


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify(bundle: Path, trust: Trust | str | Path, signature: Path | None = None) -> int:
    """Check the signature, then every byte of the bundle (or of the directory a pull made)
    against it; returns the file count. The first file that differs (changed, missing, or not
    signed) is exit 1, named."""
    if bundle.is_dir() and signature is None:
        raise UsageError(f"{bundle}: name the signature of the bundle it was pulled from", hint="--signature BUNDLE.sig")
    signed = signed_digests(signature or bundle.with_name(bundle.name + ".sig"), as_trust(trust))
    actual = directory_digests(bundle, sorted(signed)) if bundle.is_dir() else member_digests(bundle)
    for name in sorted(set(signed) | set(actual)):
        if name not in actual:
            raise ProblemFound(f"{bundle}: {name} is signed but not in the bundle")
        if name not in signed:
            raise ProblemFound(f"{bundle}: {name} is in the bundle but not signed")
        if signed[name] != actual[name]:
            raise ProblemFound(f"{bundle}: {name} differs from what was signed (sha256 {actual[name][:16]}…, signed {signed[name][:16]}…)")
    return len(actual)
