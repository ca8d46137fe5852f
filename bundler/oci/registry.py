"""Bundles as OCI artifacts: push to and pull from any OCI distribution registry.

Layout of a pushed bundle (an OCI image manifest):

- config: ``bundle.yaml`` itself (``application/vnd.bundler.manifest.v1+yaml``);
- layer 1: the project sources, a reproducible tar (``application/vnd.bundler.source.v1.tar``);
- one layer per embedded model file (``application/vnd.bundler.model.file.v1``), titled with its
  path in the bundle, so weights that did not change are blobs the registry already has;
- annotations: name, version and bundle digest.

The protocol subset is small (blob HEAD/POST/PUT/GET, manifest PUT/GET, token auth), so it is spoken
here with the standard library rather than through a client whose push API hides which blobs were
skipped; the ``oras`` client is used in the tests to prove others read what bundler writes.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import ipaddress
import json
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Sequence
from urllib.parse import quote, urlencode, urljoin, urlsplit

from ..errors import ProblemFound, UsageError
from ..model.layout import MANIFEST_NAME, SOURCE_PREFIX

if TYPE_CHECKING:
    from ..bundle.manifest import Manifest

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
ARTIFACT_TYPE = "application/vnd.bundler.bundle.v1"
CONFIG_TYPE = "application/vnd.bundler.manifest.v1+yaml"
SOURCE_TYPE = "application/vnd.bundler.source.v1.tar"
MODEL_FILE_TYPE = "application/vnd.bundler.model.file.v1"
TITLE = "org.opencontainers.image.title"
SOURCE_TITLE = "src.tar"
CHUNK = 4 << 20
_REF = re.compile(
    r"^oci://(?P<host>[A-Za-z0-9.\-]+(?::\d+)?|\[[0-9a-fA-F:]+\](?::\d+)?)/"
    r"(?P<repo>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?\Z"
)


class RegistryError(ProblemFound):
    """The registry refused or failed a request (exit 1)."""


@dataclass(frozen=True)
class Reference:
    host: str
    repo: str
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        return f"oci://{self.host}/{self.repo}" + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")


def check_tag(tag: str) -> str:
    """A tag as the distribution spec allows it, or exit 2."""
    if not _TAG.match(tag):
        raise UsageError(f"--tag {tag!r} is not an OCI tag", hint="letters, digits, `_`, `.` and `-`, at most 128, not starting with `.` or `-`")
    return tag


def parse_reference(text: str) -> Reference:
    m = _REF.match(text)
    if not m:
        raise UsageError(
            f"{text!r} is not an OCI reference",
            hint="use oci://HOST[:PORT]/REPO[:TAG] or oci://HOST/REPO@sha256:DIGEST (lowercase repository names)",
        )
    return Reference(m["host"], m["repo"], m["tag"], m["digest"])


def _loopback(host: str) -> bool:
    if host.startswith("["):
        name = host[1 : host.index("]")]
    else:
        name = host.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# --- credentials ------------------------------------------------------------------------------
def docker_auth(host: str) -> tuple[str, str] | None:
    """(user, secret) for ``host`` from the docker config.json ``auths`` (never logged)."""
    from ..settings import docker_config_dir

    folder = docker_config_dir()
    try:
        data = json.loads(Path(folder, "config.json").read_text())
    except (OSError, ValueError):
        return None
    auths = data.get("auths") or {}
    for key in (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"):
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
                return user, secret
            except (ValueError, UnicodeDecodeError):
                return None
        if entry.get("identitytoken"):
            return "<token>", entry["identitytoken"]
        if entry.get("username"):
            return entry["username"], entry.get("password", "")
    return None


# --- the client ---------------------------------------------------------------------------------
class _Response:
    def __init__(self, resp: http.client.HTTPResponse, conn: http.client.HTTPConnection) -> None:
        self.resp = resp
        self.conn = conn
        self.status = resp.status
        self.headers = resp.headers

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.resp.read(n) if n >= 0 else self.resp.read()
        except (http.client.HTTPException, OSError) as e:
            raise RegistryError(f"the connection to the registry broke mid-transfer ({type(e).__name__})", hint="pull again; what was received is discarded") from None
        if n != 0 and not data and self.resp.length:
            raise RegistryError(f"the registry closed the connection with {self.resp.length} bytes still to send", hint="pull again")
        return data

    def close(self) -> None:
        # A response read to its end leaves the connection usable: it goes back to its pool
        # (a 2,000-blob push then needs a handful of connections, not 4,000).
        reusable = self.resp.isclosed() and not self.resp.will_close and getattr(self.conn, "_pool", None) is not None
        self.resp.close()
        if reusable:
            self.conn._pool.append(self.conn)  # type: ignore[attr-defined]
        else:
            self.conn.close()


class Registry:
    def __init__(self, host: str, *, insecure: bool = False, token: str | None = None) -> None:
        self.host = host
        self.scheme = "http" if (insecure or _loopback(host)) else "https"
        from ..settings import registry_token

        self._bearer = token or registry_token()
        self._basic = docker_auth(host)
        self._auth: dict[str, str] = {}  # scope -> Authorization header earned by a challenge
        self._pools: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}  # idle keep-alive connections

    def _connect(self, netloc: str, scheme: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=300, blocksize=1 << 20)
        return http.client.HTTPConnection(netloc, timeout=300, blocksize=1 << 20)

    def _pooled(self, netloc: str, scheme: str) -> tuple[http.client.HTTPConnection, bool]:
        """An idle keep-alive connection to ``netloc`` (True: reused), else a new one. list.pop
        and list.append are atomic, so threads share the pool without a lock."""
        pool = self._pools.setdefault((scheme, netloc), [])
        try:
            conn, reused = pool.pop(), True
        except IndexError:
            conn, reused = self._connect(netloc, scheme), False
        conn._pool = pool  # type: ignore[attr-defined]
        return conn, reused

    def _auth_header(self, scope: str) -> dict[str, str]:
        if self._bearer:
            return {"Authorization": f"Bearer {self._bearer}"}
        if scope in self._auth:
            return {"Authorization": self._auth[scope]}
        return {}

    def _basic_value(self) -> str:
        assert self._basic is not None
        return "Basic " + base64.b64encode(f"{self._basic[0]}:{self._basic[1]}".encode()).decode()

    def _login(self, challenge: str, scope: str) -> bool:
        """Answer a ``WWW-Authenticate`` challenge (Bearer token service, or Basic)."""
        scheme, _, params = challenge.partition(" ")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        if scheme.lower() == "basic":
            if not self._basic:
                return False
            self._auth[scope] = self._basic_value()
            return True
        if scheme.lower() != "bearer" or "realm" not in fields:
            return False
        query = {"service": fields.get("service", ""), "scope": fields.get("scope", scope)}
        url = urlsplit(fields["realm"] + ("&" if "?" in fields["realm"] else "?") + urlencode(query))
        conn = self._connect(url.netloc, url.scheme)
        headers = {"Authorization": self._basic_value()} if self._basic else {}
        try:
            conn.request("GET", url.path + ("?" + url.query if url.query else ""), headers=headers)
            resp = conn.getresponse()
            body = resp.read(1 << 20)  # a token answer is small; never read an endless one whole
        except OSError as e:
            raise RegistryError(f"can't reach the token service of {self.host}: {e}") from None
        finally:
            conn.close()
        if resp.status != 200:
            return False
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise RegistryError(f"the token service of {self.host} answered something that is not JSON") from None
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            return False
        self._auth[scope] = f"Bearer {token}"
        return True

    def request(
        self,
        method: str,
        url: str,
        *,
        scope: str,
        headers: dict[str, str] | None = None,
        body: bytes | IO[bytes] | None = None,
        ok: tuple[int, ...] = (200,),
        redirects: int = 3,
    ) -> _Response:
        target = urlsplit(url if "://" in url else f"{self.scheme}://{self.host}{url}")
        for attempt in range(2):
            hdrs = dict(headers or {})
            if target.netloc == self.host:  # credentials never follow a redirect elsewhere
                hdrs.update(self._auth_header(scope))
            path = target.path + ("?" + target.query if target.query else "")
            replayable = body is None or isinstance(body, bytes)
            while True:
                # A streamed body can't be sent twice: it gets a fresh connection, never a pooled
                # one the server may have closed while it sat idle.
                conn, reused = self._pooled(target.netloc, target.scheme) if replayable else (self._connect(target.netloc, target.scheme), False)
                try:
                    conn.request(method, path, body=body, headers=hdrs)
                    resp = conn.getresponse()
                    break
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    if reused:
                        continue  # an idle connection the server dropped: once more on a new one
                    hint = "is the registry running? plain HTTP is used only for loopback hosts or with --insecure"
                    raise RegistryError(f"can't reach {self.host}: {e}", hint=hint) from None
            if resp.status == 401 and attempt == 0 and not self._bearer:
                challenge = resp.headers.get("WWW-Authenticate", "")
                resp.read()
                conn.close()
                if self._login(challenge, scope) and (body is None or isinstance(body, bytes)):
                    continue
                raise RegistryError(
                    f"{self.host} requires authentication for {scope}",
                    hint="log in with `docker login` (config.json auths) or pass --token / BUNDLER_REGISTRY_TOKEN",
                )
            if resp.status in (301, 302, 303, 307, 308) and redirects > 0 and method in ("GET", "HEAD"):
                location = resp.headers.get("Location", "")
                resp.read()
                conn.close()
                target = urlsplit(urljoin(f"{target.scheme}://{target.netloc}{target.path}", location))
                redirects -= 1
                continue
            if resp.status not in ok:
                detail = resp.read(4096).decode("utf-8", "replace")
                conn.close()
                raise RegistryError(f"{self.host}: {method} {target.path} answered HTTP {resp.status}: {_oci_error(detail)}")
            return _Response(resp, conn)
        raise RegistryError(f"{self.host}: {method} {target.path}: too many redirects or authentication rounds")

    # -- blobs ------------------------------------------------------------------------------
    def blob_exists(self, repo: str, digest: str) -> bool:
        scope = f"repository:{repo}:pull"
        try:
            r = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=scope, ok=(200, 404))
        except RegistryError:
            return False
        r.read()
        r.close()
        return r.status == 200

    def upload_blob(self, repo: str, digest: str, size: int, body: bytes | IO[bytes]) -> None:
        """POST for an upload session, then one PUT with the whole blob and its digest."""
        scope = f"repository:{repo}:pull,push"
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, ok=(202,), headers={"Content-Length": "0"}, body=b"")
        r.read()
        r.close()
        location = r.headers.get("Location")
        if not location:
            raise RegistryError(f"{self.host}: no upload location for {repo}")
        sep = "&" if "?" in location else "?"
        put = self.request(
            "PUT",
            urljoin(f"{self.scheme}://{self.host}/", location) + f"{sep}digest={quote(digest)}",
            scope=scope,
            ok=(201, 204),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            body=body,
        )
        put.read()
        put.close()

    def get_blob(self, repo: str, digest: str) -> _Response:
        return self.request("GET", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull")

    # -- manifests --------------------------------------------------------------------------
    def put_manifest(self, ref: Reference, data: bytes, media_type: str = MANIFEST_TYPE) -> str:
        """PUT a manifest (or an index: ``media_type``) under the reference's tag or digest."""
        r = self.request(
            "PUT",
            f"/v2/{ref.repo}/manifests/{ref.reference}",
            scope=f"repository:{ref.repo}:pull,push",
            ok=(201, 204),
            headers={"Content-Type": media_type, "Content-Length": str(len(data))},
            body=data,
        )
        r.read()
        r.close()
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def get_manifest(self, ref: Reference) -> tuple[dict[str, Any], str]:
        r = self.request(
            "GET",
            f"/v2/{ref.repo}/manifests/{ref.reference}",
            scope=f"repository:{ref.repo}:pull",
            ok=(200, 404),
            headers={"Accept": f"{MANIFEST_TYPE}, {INDEX_TYPE}"},  # an index: to say what it is
        )
        # Manifests are small (the distribution spec lets registries refuse over 4 MiB): read at
        # most that much more, so an endless or huge answer is refused, not held in memory.
        data = r.read(MAX_MANIFEST_BYTES + 1)
        r.close()
        if len(data) > MAX_MANIFEST_BYTES:
            raise ProblemFound(f"{ref}: the registry's manifest is over {MAX_MANIFEST_BYTES >> 20} MiB; refused",
                               hint="a bundle's manifest is a few KiB: check the reference and the registry")
        if r.status == 404:
            raise UsageError(f"{ref}: no such manifest in the registry", hint="check the repository and tag")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if ref.digest and ref.digest != digest:
            raise ProblemFound(f"{ref}: the registry returned a manifest with digest {digest}")
        try:
            manifest = json.loads(data)
        except (ValueError, RecursionError):
            raise ProblemFound(f"{ref}: the manifest is not JSON") from None
        if isinstance(manifest, dict) and manifest.get("mediaType") == INDEX_TYPE:
            raise UsageError(f"{ref}: an image index (a mountable image, `bundler push --image`), not a bundle",
                             hint="mount it as an image volume, or pull the bundle pushed without --image")
        _check_oci_manifest(manifest, ref)
        if manifest["config"]["mediaType"] != CONFIG_TYPE:
            raise UsageError(f"{ref}: not a bundler bundle (config media type {manifest['config']['mediaType']!r})")
        return manifest, digest


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
MAX_MANIFEST_BYTES = 4 << 20


def _check_descriptor(d: Any, what: str, ref: Any) -> None:
    if not isinstance(d, dict):
        raise ProblemFound(f"{ref}: {what} is not an object")
    if not isinstance(d.get("mediaType"), str):
        raise ProblemFound(f"{ref}: {what} has no media type")
    if not isinstance(d.get("digest"), str) or not _DIGEST.fullmatch(d["digest"]):
        raise ProblemFound(f"{ref}: {what} has no sha256 digest ({str(d.get('digest'))[:80]!r})")
    if type(d.get("size")) is not int or d["size"] < 0:
        raise ProblemFound(f"{ref}: {what} has no valid size ({str(d.get('size'))[:40]!r})")
    ann = d.get("annotations", {})
    if not isinstance(ann, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in ann.items()):
        raise ProblemFound(f"{ref}: {what} has malformed annotations")


def _check_oci_manifest(m: Any, ref: Any) -> None:
    """A registry's answer is input: an OCI image manifest has exactly these shapes."""
    if not isinstance(m, dict):
        raise ProblemFound(f"{ref}: the registry's manifest is not a JSON object")
    _check_descriptor(m.get("config"), "the manifest's config", ref)
    if m["config"]["size"] > 64 << 20:
        raise ProblemFound(f"{ref}: the config blob claims {m['config']['size']} bytes; a bundle manifest is far smaller")
    layers = m.get("layers")
    if not isinstance(layers, list):
        raise ProblemFound(f"{ref}: the manifest's layers are not a list")
    for i, layer in enumerate(layers):
        _check_descriptor(layer, f"layer {i}", ref)


def _oci_error(body: str) -> str:
    try:
        errors = json.loads(body).get("errors", [])
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or body.strip()
    except (ValueError, AttributeError):
        return body.strip()[:300]


# --- push ---------------------------------------------------------------------------------------
class _Slice(io.RawIOBase):
    """``size`` bytes of ``f`` from ``offset``: a blob inside the bundle archive, read in place."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self.f = open(path, "rb")
        self.f.seek(offset)
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.f.close()
        super().close()


@dataclass
class PushResult:
    ref: Reference
    digest: str  # the OCI manifest's sha256 (what a registry names it by)
    bundle_digest: str = ""  # the bundle's own blake3 digest (what build and inspect name it by)
    uploaded: int = 0
    skipped: int = 0
    blobs_uploaded: int = 0
    blobs_skipped: int = 0
    tags: list[str] = field(default_factory=list)  # the extra tags (--tag) given the same manifest

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": str(self.ref),
            "digest": self.digest,  # kept for scripts written before manifest_digest; same value
            "manifest_digest": self.digest,
            "bundle_digest": self.bundle_digest,
            "uploaded_bytes": self.uploaded,
            "skipped_bytes": self.skipped,
            "blobs_uploaded": self.blobs_uploaded,
            "blobs_skipped": self.blobs_skipped,
            "tags": [self.ref.tag or "latest", *self.tags],
        }


def _plain_tar(bundle: Path, work: Path, limit: int) -> Path:
    """The bundle as an uncompressed tar, so members can be read in place by offset.

    Never more than ``limit`` bytes (what the verified manifest allows, with tar's headers): a
    gzip bomb stops there instead of filling the disk.
    """
    from ..bundle.archive import is_gzip

    if not is_gzip(bundle):
        return bundle
    import gzip
    import zlib

    out = work / "bundle.tar"
    written = 0
    try:
        with gzip.open(bundle, "rb") as src, open(out, "wb") as dst:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > limit:
                    raise UsageError(f"{bundle}: decompresses to more than its manifest allows ({limit} bytes); refusing it")
                dst.write(chunk)
    except (OSError, EOFError, zlib.error) as e:
        raise UsageError(f"{bundle}: truncated or corrupt archive ({e})", hint="fetch or build the bundle again") from None
    return out


def _tar_limit(manifest: Any) -> int:
    """The most bytes the uncompressed tar of ``manifest`` can hold: members padded to 512, a
    header (and a PAX header) per member, the end marker and the record padding."""
    members = manifest.members()
    body = sum(-(-e.size // 512) * 512 for e in members.values())
    return body + (len(members) + 2) * 3 * 512 + (1 << 20)


def _digest_record(recorded: str) -> Path:
    from ..settings import bundler_home as home

    algorithm, _, hexdigest = recorded.partition(":")
    return home() / "oci-digests" / f"{algorithm}-{hexdigest}"


def _known_sha256(recorded: str) -> str | None:
    """The sha256 of content known by another hash, if bundler computed it before.

    Sound without reading the file again: content with the recorded hash has this sha256, and a
    registry accepts an upload only when the bytes match the digest it is given; so a later push of
    unchanged weights reads nothing but asks the registry whether it has them.
    """
    return _read_digest(_digest_record(recorded))


def _remember_sha256(recorded: str, sha: str) -> None:
    _write_digest(_digest_record(recorded), sha)  # lost, it only costs a re-hash next time


def _read_digest(path: Path) -> str | None:
    """A ``sha256:`` digest bundler recorded in ``path``; None when absent or not one."""
    try:
        value = path.read_text().strip()
    except OSError:
        return None
    return value if re.fullmatch(r"sha256:[0-9a-f]{64}", value) else None


def _write_digest(path: Path, digest: str) -> None:
    """Record ``digest`` at ``path``, best effort: every record is only a shortcut."""
    from ..io.atomic import write_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (digest + "\n").encode())
    except OSError:
        pass


def _hash_slice(path: Path, offset: int, size: int, algorithm: str) -> tuple[str, str]:
    """(the OCI sha256 digest, the bundle manifest's ``algorithm:hex``) of a member, in one read."""
    from ..io.hashing import new_hasher

    s, b = hashlib.sha256(), new_hasher(algorithm, size)
    with _Slice(path, offset, size) as f:
        while chunk := f.read(CHUNK):
            s.update(chunk)
            b.update(chunk)
    return "sha256:" + s.hexdigest(), f"{algorithm}:{b.hexdigest()}"


PARALLEL = 8  # requests in flight at once during a push


def push(bundle: str | os.PathLike[str], target: str, *, insecure: bool = False, token: str | None = None,
         tags: Sequence[str] = ()) -> PushResult:
    """Push a bundle archive; blobs the registry already has are not uploaded again."""
    from ..bundle.archive import require_ok, verify

    bundle = Path(bundle)
    ref = parse_reference(target)
    if ref.digest:
        raise UsageError(f"{target}: push to a tag, not a digest")
    # What is sent is checked at least as strictly as `bundler inspect --verify`: every byte
    # against the manifest, the end-of-archive marker, no links or unsafe paths. Only then may
    # remembered sha256s stand in for reading a weight again.
    manifest, report = verify(bundle)
    require_ok(bundle, report)
    registry = Registry(ref.host, insecure=insecure, token=token)
    result = PushResult(ref, "", manifest.digest)
    with tempfile.TemporaryDirectory(prefix="bundler-push-") as d:
        plain = _plain_tar(bundle, Path(d), _tar_limit(manifest))
        config, blobs = _blobs(bundle, plain, manifest, Path(d) / "sources.tar")
        cfg = {"mediaType": CONFIG_TYPE, "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)}
        _upload(registry, ref, [(cfg, config), *blobs], result)
        oci_manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "artifactType": ARTIFACT_TYPE,
            "config": cfg,
            "layers": [desc for desc, _ in blobs],
            "annotations": {
                TITLE: manifest.name,
                "org.opencontainers.image.version": manifest.version,
                "dev.bundler.digest": manifest.digest,
            },
        }
        data = json.dumps(oci_manifest, sort_keys=True, separators=(",", ":")).encode()
        # The tag appears only now, after every blob is in place: an interrupted push leaves
        # orphan blobs (reused by the next push) but never a half-visible tag.
        result.digest = registry.put_manifest(ref, data)
        # More tags for the same manifest: one upload, the same bytes under each name.
        for tag in tags:
            registry.put_manifest(Reference(ref.host, ref.repo, tag, None), data)
            result.tags.append(tag)
    _remember_pushed(ref, result.digest)
    return result


#: a blob to send: its descriptor, and its bytes or the (file, offset, size) slice holding them
_Blob = tuple[dict[str, Any], Any]


def _blobs(bundle: Path, plain: Path, manifest: Manifest, source_path: Path) -> tuple[bytes, list[_Blob]]:
    """The config (the manifest's own bytes) and the layers of an uncompressed copy of the
    bundle: the sources as one tar, then each model file in place, read through the archive's one
    validated member reader and checked against the manifest."""
    from ..bundle.archive import ArchiveWriter, ExpectedMembers, iter_members, manifest_bytes
    from ..io.hashing import sha256_file

    expected = ExpectedMembers(manifest, str(bundle))
    layers: list[_Blob] = []
    # The source layer goes to a file, not memory: a large file among the sources must not make
    # memory grow with it.
    with open(source_path, "w+b") as sources:
        writer = ArchiveWriter(sources, compress=False)
        for name, m, f in iter_members(plain):
            entry = expected.accept(name, m.size)
            if name.startswith(SOURCE_PREFIX):
                if writer.add_stream(name[len(SOURCE_PREFIX):], f, m.size) != entry.hash:
                    raise ProblemFound(f"{bundle}: member {name!r} does not match the manifest", hint="rebuild the bundle")
                continue
            sha = _known_sha256(entry.hash)
            if sha is None:
                sha, recorded = _hash_slice(plain, m.offset_data, m.size, entry.hash.partition(":")[0])
                if recorded != entry.hash:
                    raise ProblemFound(f"{bundle}: member {name!r} does not match the manifest", hint="rebuild the bundle")
                _remember_sha256(entry.hash, sha)
            layers.append(({"mediaType": MODEL_FILE_TYPE, "digest": sha, "size": m.size, "annotations": {TITLE: name}}, (plain, m.offset_data, m.size)))
        expected.require_all()
        writer.close()
    size = source_path.stat().st_size
    source = {"mediaType": SOURCE_TYPE, "digest": "sha256:" + sha256_file(source_path), "size": size, "annotations": {TITLE: SOURCE_TITLE}}
    return manifest_bytes(plain), [(source, (source_path, 0, size)), *layers]


def _upload(registry: Registry, ref: Reference, todo: list[_Blob], result: PushResult, present: set[str] | None = None) -> None:
    """Every blob the registry lacks, uploaded; existence checks and uploads run several at a
    time over keep-alive connections (a model of thousands of small files is round trips, not bytes)."""
    from concurrent.futures import ThreadPoolExecutor

    def upload(item: _Blob) -> None:
        desc, body = item
        if isinstance(body, tuple):
            with _Slice(*body) as f:
                registry.upload_blob(ref.repo, desc["digest"], desc["size"], f)  # type: ignore[arg-type]  # file-like: read()
        else:
            registry.upload_blob(ref.repo, desc["digest"], desc["size"], body)

    present = _present_by_manifest(registry, ref) if present is None else present
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        there = list(pool.map(lambda item: item[0]["digest"] in present or registry.blob_exists(ref.repo, item[0]["digest"]), todo))
        missing = [item for item, found in zip(todo, there) if not found]
        list(pool.map(upload, missing))
    result.blobs_skipped = len(todo) - len(missing)
    result.skipped = sum(d["size"] for (d, _), found in zip(todo, there) if found)
    result.blobs_uploaded = len(missing)
    result.uploaded = sum(d["size"] for d, _ in missing)


def _pushed_record(ref: Reference) -> Path:
    from ..settings import bundler_home as home

    key = hashlib.sha256(f"{ref.host}/{ref.repo}".encode()).hexdigest()[:32]
    return home() / "oci-pushed" / key


def _remember_pushed(ref: Reference, digest: str) -> None:
    _write_digest(_pushed_record(ref), digest)  # lost, it only costs existence checks next time


def _present_by_manifest(registry: Registry, ref: Reference) -> set[str]:
    """Blobs the registry has because a manifest it holds right now references them: the
    target tag's current manifest and the last one bundler pushed to this repository. A
    registry never collects a blob a live manifest references, so one manifest GET stands for a
    thousand HEADs. The answer is fresh from the registry; nothing local is trusted but a digest
    to ask about."""
    candidates = [Reference(ref.host, ref.repo, ref.tag or "latest", None)]
    last = _read_digest(_pushed_record(ref))
    if last is not None:
        candidates.append(Reference(ref.host, ref.repo, None, last))
    present: set[str] = set()
    for candidate in candidates:
        try:
            m, _ = registry.get_manifest(candidate)
        except (UsageError, ProblemFound):
            continue  # none there, or not ours: ask blob by blob
        present.add(m["config"]["digest"])
        present.update(layer["digest"] for layer in m["layers"])
    return present


# --- pull / inspect -----------------------------------------------------------------------------
def _download(registry: Registry, repo: str, digest: str, size: int, out: IO[bytes]) -> None:
    r = registry.get_blob(repo, digest)
    h = hashlib.sha256()
    n = 0
    try:
        while chunk := r.read(CHUNK):
            n += len(chunk)
            if n > size:
                raise ProblemFound(f"blob {digest} is larger than its descriptor says ({size} bytes)")
            h.update(chunk)
            out.write(chunk)
    finally:
        r.close()
    if n != size or "sha256:" + h.hexdigest() != digest:
        raise ProblemFound(f"blob {digest} failed verification (got {n} bytes, sha256:{h.hexdigest()})", hint="pull again")


@dataclass
class Pushed:
    """A pushed bundle: its OCI manifest and bundle manifest read, its layers not yet."""

    registry: Registry
    ref: Reference
    oci: dict[str, Any]
    raw_config: bytes
    manifest: Any  # bundler.manifest.Manifest

    def fetch_into(self, root: Path) -> None:
        """Write the bundle's members under ``root``, each streamed once and checked twice:
        against the registry digest (sha256) and the bundle manifest (size, blake3). Only members
        the manifest lists, at safe paths, are accepted."""
        from ..bundle.archive import ExpectedMembers, check_member, write_member

        expected = ExpectedMembers(self.manifest, str(self.ref))

        (root / MANIFEST_NAME).write_bytes(self.raw_config)
        for i, layer in enumerate(self.oci.get("layers", [])):
            digest, size, kind = layer["digest"], int(layer["size"]), layer.get("mediaType")
            if kind == SOURCE_TYPE:
                # A nameless temporary file, not memory: a large source must not grow memory.
                buf = tempfile.TemporaryFile(dir=root)
                _download(self.registry, self.ref.repo, digest, size, buf)
                buf.seek(0)
                try:
                    with tarfile.open(fileobj=buf, mode="r:") as src:
                        for m in src.getmembers():
                            name = SOURCE_PREFIX + check_member(m, f"{self.ref} source layer")
                            entry = expected.accept(name, m.size)
                            write_member(root, name, src.extractfile(m), entry, executable=bool(m.mode & 0o111))  # type: ignore[arg-type]
                except (tarfile.TarError, EOFError) as e:
                    raise ProblemFound(f"{self.ref}: the source layer is not a valid tar ({e})", hint="push the bundle again") from None
                finally:
                    buf.close()
            elif kind == MODEL_FILE_TYPE:
                info = tarfile.TarInfo(layer.get("annotations", {}).get(TITLE, ""))
                name = check_member(info, f"{self.ref} layer {i}")
                entry = expected.accept(name, size)
                sha = hashlib.sha256()
                r = self.registry.get_blob(self.ref.repo, digest)
                try:
                    write_member(root, name, r, entry, tee=sha)  # type: ignore[arg-type]
                finally:
                    r.close()
                if "sha256:" + sha.hexdigest() != digest:
                    raise ProblemFound(f"{self.ref}: blob {digest} ({name}) failed verification", hint="pull again")
            else:
                raise UsageError(f"{self.ref}: layer {i} has an unknown media type {kind!r}")
        expected.require_all()


def open_pushed(target: str, *, insecure: bool = False, token: str | None = None) -> Pushed:
    """Read a pushed bundle's OCI manifest and its config (the bundle manifest), nothing more."""
    from ..bundle.manifest import loads

    ref = parse_reference(target)
    registry = Registry(ref.host, insecure=insecure, token=token)
    oci, _ = registry.get_manifest(ref)
    buf = io.BytesIO()
    _download(registry, ref.repo, oci["config"]["digest"], int(oci["config"]["size"]), buf)
    raw = buf.getvalue()
    return Pushed(registry, ref, oci, raw, loads(raw, str(ref)))


def read_manifest(target: str, *, insecure: bool = False, token: str | None = None) -> Manifest:
    """The bundle manifest of a pushed bundle: only the OCI manifest and config are read."""
    return open_pushed(target, insecure=insecure, token=token).manifest
