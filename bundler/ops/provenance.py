"""Provenance: an SLSA v1 statement of what a bundle was built from, and a rebuild that proves it.

``bundler build --provenance`` writes ``BUNDLE.intoto.jsonl`` beside the bundle: one DSSE envelope
(in-toto's form) holding an in-toto statement whose subject is the archive (its sha256) and whose
predicate (``https://slsa.dev/provenance/v1``) names the build's inputs (the service, the given
build arguments, the settings and where they came from) and every resolved dependency with its
digest: each pinned repository's commit, each pinned file's hash, each source file's blake3,
each locked Python package. Signed with ``--key`` (the signing key of ``bundler sign``); unsigned
otherwise. The same bundle gives the same bytes: nothing in it depends on the clock or the host.

Because builds are reproducible, a claim can be checked by doing it again: ``bundler verify BUNDLE
--rebuild SRC_DIR`` builds the checkout offline from its own lock, with the bundle's given
arguments, and compares the digests, naming what differs.
"""

from __future__ import annotations

import base64
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ProblemFound, UsageError

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:bundler:build:v1"
SUFFIX = ".intoto.jsonl"


def statement(bundle: Path) -> dict[str, Any]:
    """The in-toto statement of ``bundle`` (its manifest is read; the archive is hashed once)."""
    from .. import __version__, kinds
    from ..bundle.archive import read_manifest
    from ..io.hashing import sha256_file

    m = read_manifest(bundle)
    dependencies: list[dict[str, Any]] = []
    for p in m.pins:
        kind = kinds.of(p)
        if kind.hub:
            dependencies.append({"uri": f"{p.endpoint or 'https://huggingface.co'}/{p.id}", "name": p.id,
                                 "digest": {"gitCommit": str(p.commit)},
                                 "annotations": {"source": p.source, **({"required_by": p.required_by} if p.required_by else {})}})
        else:
            dependencies.append({"name": f"{p.source}:{p.id}", "annotations": {"source": p.source, "version": str(p.version)}, "digest": {}})
        dependencies += [{"name": f"{p.id.rstrip('/')}/{f.path}", "digest": _digest(f.hash, f.sha256)} for f in p.files]  # an S3 prefix ends in /
    dependencies += [{"name": f"src/{f.path}", "digest": _digest(f.hash)} for f in m.sources]
    if m.environment:
        dependencies += [{"uri": f"pkg:pypi/{name}@{version}", "name": name} for name, version in sorted(m.environment.packages.items())]
    origins = m.argument_origins
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": bundle.name, "digest": {"sha256": sha256_file(bundle)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "service": m.entrypoint,
                    "arguments": {k: v for k, v in m.arguments.items() if origins.get(k) == "--arg"},
                    "settings": m.settings,
                },
                "internalParameters": {"name": m.name, "version": m.version, "bundle_digest": m.digest,
                                       **({"python": m.environment.target} if m.environment else {})},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {"builder": {"id": f"pkg:pypi/bundler@{__version__}"}, "metadata": {}},
        },
    }


def _digest(recorded: str, sha256: str | None = None) -> dict[str, str]:
    """A pin's ``algo:hex`` as an in-toto digest set (a git blob id is ``gitBlob``, with the
    sha256 lock recorded beside it)."""
    algo, _, value = recorded.partition(":")
    return {"gitBlob" if algo == "git-sha1" else algo: value, **({"sha256": sha256} if sha256 else {})}


def write(bundle: Path, key: Path | None = None) -> Path:
    """``BUNDLE.intoto.jsonl``: the statement in a DSSE envelope, signed when ``key`` is given."""
    from ..io.atomic import write_atomic
    from .signing import PAYLOAD_TYPE, pae

    payload = json.dumps(statement(bundle), sort_keys=True, separators=(",", ":")).encode()
    signatures = []
    if key is not None:
        from .signing import _crypto, _hash_for, _hint, _load_key

        _, _, ec = _crypto()
        private = _load_key(key, private=True)
        sig = private.sign(pae(payload), ec.ECDSA(_hash_for(private)))
        signatures.append({"keyid": _hint(private.public_key()), "sig": base64.b64encode(sig).decode()})
    envelope = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(), "signatures": signatures}
    target = bundle.with_name(bundle.name + SUFFIX)
    write_atomic(target, (json.dumps(envelope, sort_keys=True, separators=(",", ":")) + "\n").encode())
    return target


@dataclass(frozen=True)
class Rebuilt:
    digest: str  # the bundle's
    rebuilt: str  # the rebuild's

    @property
    def ok(self) -> bool:
        return self.digest == self.rebuilt


def rebuild(bundle: Path, src: Path) -> Rebuilt:
    """Build ``src`` (a checkout of the bundle's project) again, offline, from its own lock and with
    the bundle's given build arguments; exit 1 naming what differs when the digests do not match."""
    from .. import kinds
    from ..bundle.archive import read_manifest
    from .build import build
    from .diff import diff

    m = read_manifest(bundle)
    if not m.entrypoint:
        raise UsageError(f"{bundle}: the bundle records no entry point to rebuild from")
    file, _, cls = m.entrypoint.rpartition(":")
    service = src / file
    if not service.is_file():
        raise UsageError(f"{src}: no {file} here (the bundle's service)", hint="pass the root of the bundle's project checkout")
    origins = m.argument_origins
    given = {k: v for k, v in m.arguments.items() if origins.get(k) == "--arg"}
    with tempfile.TemporaryDirectory(prefix="bundler-rebuild-") as d:
        again = build(f"{service}:{cls}", Path(d) / "rebuilt.bundle.tar", locked=True, offline=True, arguments=given,
                      embed_hub=bool(m.embedded_hub), embed_s3=any(m.model_dir(p) for p in m.pins if kinds.of(p).fetched), embed_wheels=bool(m.environment and m.environment.wheels))
    result = Rebuilt(m.digest, again.digest)
    if not result.ok:
        raise ProblemFound(f"{bundle}: rebuilding {src} gives {again.digest}, not the bundle's {m.digest}: " + _first_difference(diff(m, again.manifest)),
                           hint="the checkout is not what the bundle was built from (or its lock moved)")
    return result


def _first_difference(d: dict[str, Any]) -> str:
    for what, key in (("source", "sources"),):
        for change in ("changed", "added", "removed"):
            if d[key][change]:
                return f"{what} {d[key][change][0]} {change}"
    for change in ("changed", "added", "removed"):
        if d["models"][change]:
            return f"model {d['models'][change][0]['id']} {change}"
    if any(d["arguments"].values()):
        return "the build arguments differ"
    if any(d["requirements"].values()) or any(v for k, v in d["packages"].items() if k != "target") or d["packages"]["target"]:
        return "the Python requirements or locked packages differ"
    if d["entrypoint"]:
        return "the entry point differs"
    return "the settings or the bundle's name differ"
