"""Keyless signatures: a Sigstore OIDC identity in place of a key.

Signing asks Fulcio for a short-lived certificate that binds a fresh key to an OIDC identity (a CI
job's ambient token, ``--identity-token``, or a browser login) and records the signature in
Rekor. The document is the same OMS v1.0 Sigstore bundle a key signature is, with the certificate
and the transparency-log entry as its verification material: what ``model_signing sign sigstore``
writes and ``model_signing verify sigstore`` checks. Verifying checks the certificate chain and
the log entry against Sigstore's trust root, and that the certificate names the expected identity
and issuer. Needs the ``keyless`` extra (``sigstore``); signing needs the network.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ProblemFound, UsageError


def _sigstore() -> None:
    try:
        import sigstore  # noqa: F401
    except ImportError:
        raise UsageError("keyless signing needs the `sigstore` package", hint="pip install 'bundler[keyless]'") from None


@dataclass(frozen=True)
class KeylessSigner:
    """Signs as an OIDC identity through Sigstore (production, or ``staging``)."""

    identity_token: str | None = None
    staging: bool = False
    config: Path | None = None
    interactive: bool = False

    @property
    def label(self) -> str:
        return "a Sigstore identity" + (" (staging)" if self.staging else "")

    def check(self) -> None:
        """The token (given or ambient) and the trust config, before the bundle is read."""
        _sigstore()
        if self.identity_token is not None:
            _token(self.identity_token)
        elif not self.interactive and not _ambient():
            raise UsageError("keyless signing found no OIDC identity",
                             hint="pass --identity-token (or SIGSTORE_ID_TOKEN), run in CI with an OIDC token (GitHub Actions: permissions id-token: write), or sign from a terminal to log in")
        if self.config is not None:
            _read_config(self.config)

    def sign(self, payload: bytes) -> bytes:
        """The OMS document: ``payload`` (an in-toto statement) in a DSSE envelope signed by a
        Fulcio certificate for this identity, logged in Rekor."""
        from sigstore import dsse
        from sigstore.sign import SigningContext

        # sigstore's clients raise their own Exception subclasses (Fulcio, Rekor, the TUF
        # refresh) beside requests' and pydantic's: each is one clear line here, not a traceback.
        try:
            config = trust_config(self.staging, self.config, offline=False, hint=_SIGN_HINT)
            token = self._identity(config)
            with SigningContext.from_trust_config(config).signer(token, cache=False) as signer:
                signed = signer.sign_dsse(dsse.Statement(payload))
        except (UsageError, ProblemFound):
            raise
        except Exception as e:
            raise ProblemFound(f"keyless signing failed: {type(e).__name__}: {e}", hint=_SIGN_HINT + ", and an OIDC token they accept") from None
        return (json.dumps(json.loads(signed.to_json()), indent=2) + "\n").encode()

    def _identity(self, config: Any) -> Any:
        from sigstore.oidc import Issuer

        if self.identity_token is not None:
            return _token(self.identity_token)
        if ambient := _ambient():
            return _token(ambient)
        return Issuer(config.signing_config.get_oidc_url()).identity_token()


def _ambient() -> str | None:
    """A CI job's own OIDC token (GitHub Actions, GitLab, Buildkite, Google Cloud…), as sigstore finds it."""
    from sigstore.oidc import IdentityError, detect_credential

    try:
        return detect_credential()
    except IdentityError as e:
        raise UsageError(f"the CI job's OIDC token could not be had ({e})") from None


def _token(raw: str) -> Any:
    from sigstore.oidc import IdentityError, IdentityToken

    try:
        return IdentityToken(raw.strip())
    except IdentityError as e:
        raise UsageError(f"the OIDC identity token is not one Sigstore accepts ({e})",
                         hint="a JWT for audience `sigstore` within its validity period") from None


@dataclass(frozen=True)
class IdentityTrust:
    """Accepts a keyless signature whose certificate names ``identity`` (an email, or a CI
    workflow's URI) issued by ``issuer`` (the OIDC provider's URL). ``offline``: Sigstore's trust
    root as this host has it (cached, else the one sigstore ships), no TUF refresh."""

    identity: str
    issuer: str
    staging: bool = False
    offline: bool = False
    config: Path | None = None

    @property
    def label(self) -> str:
        return f"{self.identity} (issuer {self.issuer})"

    def check(self) -> None:
        _sigstore()
        if self.config is not None:
            _read_config(self.config)

    @functools.cached_property
    def _verifier(self) -> Any:
        """Built once for this trust: a pushed bundle's referrers are tried one after another,
        and each build online refreshes the trust root over TUF."""
        return _verifier(self.staging, self.offline, self.config)

    def vouched(self, data: bytes, where: str) -> dict[str, str]:
        """The resources of the signature ``data`` (``where`` names it), after Sigstore verified
        it and its certificate names this identity and issuer; exit 1 naming what does not hold."""
        from sigstore.errors import Error
        from sigstore.models import Bundle
        from sigstore.verify import policy

        from .fulcio_cert import signed_by
        from .signing import PAYLOAD_TYPE, _resources

        if key_signed(data):
            raise ProblemFound(f"{where}: signed with a key, not by a Sigstore identity", hint="verify it with --key PUB.pem")
        try:
            bundle = Bundle.from_json(data)
        except (Error, ValueError, KeyError, TypeError) as e:
            raise ProblemFound(f"{where}: not a Sigstore bundle ({type(e).__name__})") from None
        verifier = self._verifier
        try:
            payload_type, payload = verifier.verify_dsse(bundle, policy.Identity(identity=self.identity, issuer=self.issuer))
        except Error as e:
            signer = signed_by(bundle.signing_certificate)
            if signer != (self.identity, self.issuer):
                raise ProblemFound(f"{where}: signed by {signer[0]} (issuer {signer[1]}), not by {self.label}") from None
            raise ProblemFound(f"{where}: Sigstore refuses the signature: {e}") from None
        if payload_type != PAYLOAD_TYPE:
            raise ProblemFound(f"{where}: payload type {payload_type!r} is not in-toto")
        return _resources(payload, where)


def _verifier(staging: bool, offline: bool, config: Path | None) -> Any:
    from sigstore.errors import Error
    from sigstore.verify import Verifier

    try:
        return Verifier(trusted_root=trust_config(staging, config, offline).trusted_root)
    except Error as e:
        raise ProblemFound(f"Sigstore's trust root cannot verify: {e}") from None


_SIGN_HINT = "keyless signing needs the network: Sigstore's trust root (TUF), Fulcio and Rekor"
_VERIFY_HINT = "on a host without the network, --sigstore-offline (or BUNDLER_SIGSTORE_OFFLINE=1) uses the trust root this host has"


def trust_config(staging: bool, config: Path | None, offline: bool, hint: str = _VERIFY_HINT) -> Any:
    """Sigstore's client trust config: ``config`` (a private instance's), else the public
    instance's (production or staging) through TUF, refreshed unless ``offline``."""
    import logging

    from sigstore.models import ClientTrustConfig

    if config is not None:
        return _read_config(config)
    if offline:  # asked for: sigstore's warning that it is offline would only repeat the option
        logging.getLogger("sigstore._internal.tuf").setLevel(logging.ERROR)
    try:
        return ClientTrustConfig.staging(offline=offline) if staging else ClientTrustConfig.production(offline=offline)
    except Exception as e:  # the TUF refresh: network and metadata errors of several libraries
        raise ProblemFound(f"cannot load Sigstore's trust root: {type(e).__name__}: {e}", hint=hint) from None


def _read_config(path: Path) -> Any:
    from sigstore.models import ClientTrustConfig

    from ..io.safe_read import read_regular

    try:
        return ClientTrustConfig.from_json(read_regular(path, 16 << 20).decode())
    except (UsageError, ProblemFound):
        raise
    except FileNotFoundError:
        raise UsageError(f"{path}: no such Sigstore trust config") from None
    except Exception as e:  # the protobuf model's own errors, beside UnicodeDecodeError and OSError
        raise UsageError(f"{path}: not a Sigstore client trust config ({type(e).__name__})",
                         hint="a ClientTrustConfig JSON (trusted root and signing config), as `sigstore` takes with --trust-config") from None


def key_signed(data: bytes) -> bool:
    """Whether a Sigstore bundle's verification material is a public key (not a certificate)."""
    try:
        material = json.loads(data).get("verificationMaterial") or {}
    except (ValueError, AttributeError, RecursionError):
        return False
    return isinstance(material, dict) and "publicKey" in material
