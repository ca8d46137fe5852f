"""A small OCI distribution client: references, token auth (docker's config.json), manifests and
blobs, over the standard library.

The protocol subset is small (blob HEAD/POST/PUT/GET, manifest PUT/GET, token auth), so it is spoken
here rather than through a client whose push API hides which blobs were skipped. What a registry
answers is input: manifests are read up to 4 MiB and checked for shape, blobs against their digest.
What a bundle looks like in a registry is ``registry.py``'s business; model sources (``kinds``) use
this client too.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

from ..errors import ProblemFound, UsageError

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
TITLE = "org.opencontainers.image.title"
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
        self.put_manifest_headers(ref, data, media_type)
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def put_manifest_headers(self, ref: Reference, data: bytes, media_type: str = MANIFEST_TYPE) -> Any:
        """``put_manifest``, answering the registry's response headers (``OCI-Subject``)."""
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
        return r.headers

    def get_manifest(self, ref: Reference, *, index_ok: bool = False) -> tuple[dict[str, Any], str]:
        """The manifest (and its digest) ``ref`` names; an image index only with ``index_ok``."""
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
            if index_ok and isinstance(manifest.get("manifests"), list):
                return manifest, digest
            raise UsageError(f"{ref}: an image index (a mountable image, `bundler push --image`), not a bundle",
                             hint="mount it as an image volume, or pull the bundle pushed without --image")
        _check_oci_manifest(manifest, ref)
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
