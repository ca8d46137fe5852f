"""Who a Fulcio certificate names: the identity (SAN email or URI) and the OIDC issuer that
vouched for it. Read with ``cryptography`` alone, so a message can name the signer of a keyless
signature even where ``sigstore`` is not installed."""

from __future__ import annotations

import json
from typing import Any

_ISSUER_OID = "1.3.6.1.4.1.57264.1.8"  # Fulcio's OIDC issuer, a DER UTF8String
_LEGACY_ISSUER_OID = "1.3.6.1.4.1.57264.1.1"  # the same, raw bytes (certificates before 2023)


def certificate_signer(data: bytes) -> tuple[str, str] | None:
    """(identity, issuer) named by a keyless signature's certificate; None when it has none."""
    import base64

    from cryptography import x509

    try:
        material = json.loads(data)["verificationMaterial"]
        raw = (material.get("certificate") or (material.get("x509CertificateChain") or {}).get("certificates", [None])[0])["rawBytes"]
        return signed_by(x509.load_der_x509_certificate(base64.b64decode(raw)))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError):
        return None


def signed_by(cert: Any) -> tuple[str, str]:
    """The identity (SAN email or URI) and OIDC issuer a Fulcio certificate names."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.RFC822Name) + san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        names = []
    issuer = ""
    for ext in cert.extensions:
        if ext.oid.dotted_string == _ISSUER_OID:
            issuer = _der_utf8(ext.value.value)
        elif ext.oid.dotted_string == _LEGACY_ISSUER_OID and not issuer:
            issuer = ext.value.value.decode("utf-8", "replace")
    return (names[0] if names else "?"), (issuer or "?")


def _der_utf8(der: bytes) -> str:
    if len(der) < 2 or der[0] != 0x0C:
        return "?"
    n = der[1]
    start = 2 if n < 0x80 else 2 + (n & 0x7F)
    return der[start:].decode("utf-8", "replace")
