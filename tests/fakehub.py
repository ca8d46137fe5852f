"""A small Hugging Face Hub on 127.0.0.1 for tests and benchmarks.

It speaks the endpoints the real ``huggingface_hub`` client uses for pinning and downloading:
``/api/models/{repo}[/revision/{rev}]`` (model info, ``?blobs=true`` for file metadata),
``/api/models/{repo}/tree/{rev}`` (listing), and ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``
(``X-Repo-Commit``, ``ETag``, ``X-Linked-Etag``/``X-Linked-Size`` for LFS files, ``Range``), with the
``X-Error-Code`` headers the client turns into its typed errors.

Like the real Hub, LFS files are not served by the Hub itself: ``GET``/``HEAD`` on ``resolve``
answer 302 with the file's headers, pointing at a second origin playing the CDN (another port:
a client must not send the token there). Switches make it behave like the Hub on a bad day:
``require_range`` (the CDN answers 400 to a GET without ``Range``, as the bridge does for files
over 50 GB), ``rate_limited`` (429 with ``Retry-After`` for the next N requests of a path prefix),
``renames`` (an old repo id answered with 307 to the new one, whose info names the new id).

``enable_xet(cas_dir)`` makes LFS files Xet-backed as on the real Hub: each is stored in a local
CAS through hf_xet's own ``local://`` storage (the simulation client hf_xet's tests use), the
tree lists its ``xetHash``, ``resolve`` sends ``X-Xet-Hash`` and the ``xet-auth`` link, and
``/api/models/{repo}/xet-read-token/{rev}`` hands out the CAS endpoint and a token, so the real
hf_xet (through bundler or through huggingface_hub) downloads on loopback with no server.

Repositories load from ``fixtures/hub/<org>/<name>/``: ``repo.json`` names the commit folders in
order and the refs; each commit folder holds that commit's whole tree. Tests can add commits and
move refs while the server runs.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt", ".gguf", ".msgpack", ".h5")
GOOD_TOKEN = "hf_fake_token_with_access"


def blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(path: str) -> bool:
    return path.endswith(LFS_SUFFIXES)


@dataclass
class Blob:
    data: bytes
    sha256: str
    oid: str

    @classmethod
    def of(cls, data: bytes) -> "Blob":
        return cls(data, hashlib.sha256(data).hexdigest(), blob_id(data))


@dataclass
class Repo:
    id: str
    commits: dict[str, dict[str, Blob]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    gated: bool = False
    private: bool = False


class FakeHub:
    def __init__(self, fixtures: Path | None = None) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.ranges: list[tuple[str, str]] = []  # (path, Range header) of ranged GETs
        self.slow: dict[str, float] = {}  # file path -> seconds to wait per 64 KiB sent
        # Like the real Hub: model_info's siblings are cut past a limit (documented as unreliable
        # past ~1000 files), and the tree listing is paginated with a Link header.
        self.siblings_limit: int | None = None
        self.tree_page_size = 1000
        self.require_range = False
        self.rate_limited: dict[str, int] = {}  # path prefix -> how many more requests get 429
        self.retry_after = 1
        self.renames: dict[str, str] = {}  # old repo id -> new repo id (307 to the new one)
        self.cdn_requests: list[tuple[str, str, str | None]] = []  # (method, path, Authorization)
        self.xet_cas: str | None = None  # local://DIR when Xet-backed
        self.xet_hashes: dict[str, str] = {}  # sha256 -> Xet hash
        self.xet_token_requests: list[tuple[str, str | None]] = []  # (path, Authorization)
        self.tree_loops = False  # every tree page names itself as the next one
        self.rewrites: dict[str, Any] = {}  # path prefix -> function rewriting the JSON answer
        self.answers: dict[str, tuple[int, bytes, str]] = {}  # path prefix -> (status, body, type), as is
        self.endless: set[str] = set()  # path prefixes answered 200 with a JSON body that never ends
        self.endless_sent: list[int] = []  # bytes each endless answer got out before the client left
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._cdn: ThreadingHTTPServer | None = None
        if fixtures is not None:
            self.load(fixtures)

    # -- content -----------------------------------------------------------------------------
    def load(self, root: Path) -> None:
        for meta in sorted(root.glob("*/*/repo.json")):
            spec = json.loads(meta.read_text())
            repo_id = f"{meta.parent.parent.name}/{meta.parent.name}"
            repo = self.create_repo(repo_id, gated=spec.get("gated", False), private=spec.get("private", False))
            names: dict[str, str] = {}
            prev = None
            for name in spec["commits"]:
                folder = meta.parent / name
                files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
                prev = names[name] = self.commit(repo.id, files, branch=None, replace=True, parent=prev)
            for ref, name in spec["refs"].items():
                repo.refs[ref] = names[name]

    def create_repo(self, repo_id: str, *, gated: bool = False, private: bool = False) -> Repo:
        repo = Repo(repo_id, gated=gated, private=private)
        self.repos[repo_id] = repo
        return repo

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes | None],
        *,
        branch: str | None = "main",
        replace: bool = False,
        parent: str | None = None,
    ) -> str:
        """Add a commit (``None`` deletes a file; ``replace`` makes ``files`` the whole tree)."""
        repo = self.repos[repo_id]
        with self._lock:
            base = parent or (repo.refs.get(branch) if branch else None)
            tree = {} if replace or base is None else dict(repo.commits[base])
            for path, data in files.items():
                if data is None:
                    tree.pop(path, None)
                else:
                    tree[path] = Blob.of(data)
            listing = "".join(f"{p}\0{b.oid}\n" for p, b in sorted(tree.items()))
            sha = hashlib.sha1(f"{repo_id}\n{base}\n{len(repo.commits)}\n{listing}".encode()).hexdigest()
            repo.commits[sha] = tree
            if branch:
                repo.refs[branch] = sha
        if self.xet_cas is not None:
            self._xet_upload()
        return sha

    def resolve(self, repo: Repo, rev: str | None) -> str | None:
        rev = rev or "main"
        if rev in repo.refs:
            return repo.refs[rev]
        return rev if rev in repo.commits else None

    # -- server ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def cdn_url(self) -> str:
        assert self._cdn is not None
        host, port = self._cdn.server_address[:2]
        return f"http://{host}:{port}"

    def enable_xet(self, cas_dir: Path) -> None:
        """Store every LFS blob (now and committed later) in a local Xet CAS."""
        self.xet_cas = f"local://{cas_dir}"
        self._xet_upload()

    def _xet_upload(self) -> None:
        import tempfile

        import hf_xet

        todo = {b.sha256: b for r in self.repos.values() for t in r.commits.values() for p, b in t.items()
                if is_lfs(p) and b.sha256 not in self.xet_hashes}
        if not todo:
            return
        with tempfile.TemporaryDirectory() as d:
            paths = []
            for sha, blob in todo.items():
                (Path(d) / sha).write_bytes(blob.data)
                paths.append(str(Path(d) / sha))
            import warnings

            with warnings.catch_warnings():  # deprecated for XetSession, still the one-call form
                warnings.simplefilter("ignore", DeprecationWarning)
                infos = hf_xet.upload_files(paths, self.xet_cas, None, None, None, "model")
            for sha, info in zip(todo, infos):
                self.xet_hashes[sha] = info.hash

    def blob_by_sha256(self, sha256: str) -> tuple[str, Blob] | None:
        for repo in self.repos.values():
            for tree in repo.commits.values():
                for path, blob in tree.items():
                    if blob.sha256 == sha256 and is_lfs(path):
                        return path, blob
        return None

    def start(self) -> "FakeHub":
        hub = self

        class Handler(_Handler):
            fake = hub

        class Cdn(_CdnHandler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._cdn = ThreadingHTTPServer(("127.0.0.1", 0), Cdn)
        for server in (self._server, self._cdn):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        for server in (self._server, self._cdn):
            if server is not None:
                server.shutdown()
                server.server_close()
        self._server = self._cdn = None

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    # -- plumbing ----------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _rewritten(self, data: Any) -> Any:
        path = urlsplit(self.path).path
        rewrite = next((f for p, f in self.fake.rewrites.items() if path.startswith(p)), None)
        return data if rewrite is None else rewrite(data)  # a hostile or broken Hub's answer

    def _json(self, data: object) -> None:
        self._send(200, json.dumps(self._rewritten(data)).encode(), {"Content-Type": "application/json"})

    def _error(self, status: int, code: str, message: str, head: bool = False) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(status, body, {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": message}, head)

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {GOOD_TOKEN}"

    def _repo(self, repo_id: str, head: bool = False) -> Repo | None:
        repo = self.fake.repos.get(repo_id)
        if repo is None:  # the Hub finds a repo whatever the capitalisation of its id
            repo = next((r for k, r in self.fake.repos.items() if k.lower() == repo_id.lower()), None)
        if repo is None or (repo.private and not self._authorized()):
            # Like the Hub: a private repo looks missing to whoever may not see it.
            self._error(401 if repo is not None else 404, "RepoNotFound", "Repository not found", head)
            return None
        return repo

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, head: bool) -> None:
        url = urlsplit(self.path)
        self.fake.requests.append((self.command, url.path))
        if any(url.path.startswith(p) for p in self.fake.endless):
            return self._endless()
        canned = next((a for p, a in self.fake.answers.items() if url.path.startswith(p)), None)
        if canned is not None:
            return self._send(canned[0], canned[1], {"Content-Type": canned[2]}, head)
        with self.fake._lock:
            prefix = next((p for p, n in self.fake.rate_limited.items() if n > 0 and url.path.startswith(p)), None)
            if prefix is not None:
                self.fake.rate_limited[prefix] -= 1
        if prefix is not None:
            body = b'{"error": "Too Many Requests"}'
            return self._send(429, body, {"Content-Type": "application/json", "Retry-After": str(self.fake.retry_after)}, head)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        query = parse_qs(url.query)
        for old, new in self.fake.renames.items():  # the Hub redirects a renamed repo's old id
            o, n = old.split("/"), new.split("/")
            at = 2 if parts[:2] == ["api", "models"] else 0
            if parts[at : at + 2] == o:
                moved = "/".join(parts[:at] + n + parts[at + 2 :])
                return self._send(307, b"", {"Location": f"/{moved}" + (f"?{url.query}" if url.query else "")}, head)
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo = self._repo(f"{parts[2]}/{parts[3]}", head)
            if repo is None:
                return
            rest = parts[4:]
            if not rest:
                return self._info(repo, None, query)
            if rest[0] == "revision" and len(rest) == 2:
                return self._info(repo, rest[1], query)
            if rest[0] == "tree" and len(rest) >= 2:
                return self._tree(repo, rest[1], "/".join(rest[2:]), query)
            if rest[0] == "xet-read-token" and len(rest) == 2 and self.fake.xet_cas:
                self.fake.xet_token_requests.append((url.path, self.headers.get("Authorization")))
                if repo.gated and not self._authorized():
                    return self._error(401, "GatedRepo", "Access to model is restricted.", head)
                exp = str(int(time.time()) + 3600)
                body = json.dumps({"casUrl": self.fake.xet_cas, "accessToken": "xet-fake-token", "exp": int(exp)}).encode()
                return self._send(200, body, {"Content-Type": "application/json", "X-Xet-Cas-Url": self.fake.xet_cas,
                                              "X-Xet-Access-Token": "xet-fake-token", "X-Xet-Token-Expiration": exp}, head)
        elif len(parts) >= 5 and parts[2] == "resolve":
            repo = self._repo(f"{parts[0]}/{parts[1]}", head)
            if repo is None:
                return
            return self._file(repo, parts[3], "/".join(parts[4:]), head)
        self._error(404, "NotFound", f"no route for {url.path}", head)

    def _endless(self) -> None:
        """A hostile or broken Hub: 200, JSON that never ends, until the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk, sent = b" " * (1 << 16), 0
        try:
            self.wfile.write(b'{"id": "acme/x", "sha": "')
            while sent < 8 << 30:  # a test that never hangs up still ends
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass
        self.fake.endless_sent.append(sent)
        self.close_connection = True

    # -- endpoints ---------------------------------------------------------------------------
    def _info(self, repo: Repo, rev: str | None, query: dict) -> None:
        sha = self.fake.resolve(repo, rev)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        blobs = query.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for path, blob in sorted(repo.commits[sha].items()):
            s: dict = {"rfilename": path}
            if blobs:
                s["size"] = len(blob.data)
                s["blobId"] = blob.oid if not is_lfs(path) else blob_id(_pointer(blob))
                if is_lfs(path):
                    s["lfs"] = {"sha256": blob.sha256, "size": len(blob.data), "pointerSize": len(_pointer(blob))}
            siblings.append(s)
        if self.fake.siblings_limit is not None:
            siblings = siblings[: self.fake.siblings_limit]
        self._json(
            {
                "_id": hashlib.sha1(repo.id.encode()).hexdigest()[:24],
                "id": repo.id,
                "modelId": repo.id,
                "sha": sha,
                "private": repo.private,
                "gated": "manual" if repo.gated else False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "lastModified": "2026-01-01T00:00:00.000Z",
                "createdAt": "2026-01-01T00:00:00.000Z",
                "siblings": siblings,
            }
        )

    def _tree(self, repo: Repo, rev: str, prefix: str, query: dict) -> None:
        sha = self.fake.resolve(repo, rev)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        entries, folders = [], set()
        for path, blob in sorted(repo.commits[sha].items()):
            if prefix and not path.startswith(prefix.rstrip("/") + "/"):
                continue
            rel = path[len(prefix.rstrip("/")) + 1 :] if prefix else path
            if "/" in rel and not recursive:
                folders.add((prefix.rstrip("/") + "/" if prefix else "") + rel.split("/")[0])
                continue
            parts = path.split("/")
            for i in range(1, len(parts)):
                folders.add("/".join(parts[:i]))
            e: dict = {"type": "file", "oid": blob.oid, "size": len(blob.data), "path": path}
            if is_lfs(path):
                e["oid"] = blob_id(_pointer(blob))
                e["lfs"] = {"oid": blob.sha256, "size": len(blob.data), "pointerSize": len(_pointer(blob))}
                if blob.sha256 in self.fake.xet_hashes:
                    e["xetHash"] = self.fake.xet_hashes[blob.sha256]
            entries.append(e)
        dirs = [{"type": "directory", "oid": "0" * 40, "path": d} for d in sorted(folders) if not prefix or d.startswith(prefix)]
        listing = dirs + entries
        start = int(query.get("cursor", ["0"])[0])
        size = self.fake.tree_page_size
        page = listing[start : start + size]
        headers = {"Content-Type": "application/json"}
        if self.fake.tree_loops:  # a broken or hostile Hub: the next page is this one again
            headers["Link"] = f'<{self.fake.url}{self.path}>; rel="next"'
        elif start + size < len(listing):
            q = f"recursive={'true' if recursive else 'false'}&cursor={start + size}"
            headers["Link"] = f'<{self.fake.url}/api/models/{repo.id}/tree/{rev}?{q}>; rel="next"'
        self._send(200, json.dumps(self._rewritten(page)).encode(), headers)

    def _file(self, repo: Repo, rev: str, path: str, head: bool) -> None:
        sha = self.fake.resolve(repo, rev)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
        if repo.gated and not self._authorized():
            # Like the Hub: 401 without a token, 403 with a token whose account has no access.
            status = 403 if self.headers.get("Authorization") else 401
            return self._error(status, "GatedRepo", "Access to model is restricted.", head)
        blob = repo.commits[sha].get(path)
        if blob is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist", head)
        etag = blob.sha256 if is_lfs(path) else blob.oid
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{etag}"',
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        if is_lfs(path):
            headers["X-Linked-Etag"] = f'"{etag}"'
            headers["X-Linked-Size"] = str(len(blob.data))
            # Like the Hub: LFS bytes come from the CDN; the redirect carries the file's headers.
            headers["Location"] = f"{self.fake.cdn_url}/cdn/{blob.sha256}?X-Amz-Signature=fake"
            headers["ETag"] = f'"{blob_id(_pointer(blob))}"'  # the pointer's git id, as the Hub sends
            if blob.sha256 in self.fake.xet_hashes:
                headers["X-Xet-Hash"] = self.fake.xet_hashes[blob.sha256]
                headers["Link"] = f'<{self.fake.url}/api/models/{repo.id}/xet-read-token/{sha}>; rel="xet-auth"'
            del headers["Accept-Ranges"]
            return self._send(302, b"", headers, head)
        self._serve(blob.data, path, headers, head)

    def _serve(self, data: bytes, path: str, headers: dict[str, str], head: bool) -> None:
        status = 200
        rng = self.headers.get("Range", "")
        if rng and not head:
            self.fake.ranges.append((path, rng))
        if not rng and not head and self.fake.require_range:
            return self._error(400, "RangeRequired", "a GET of this file must send a Range header")
        if rng.startswith("bytes=") and not head:
            start_s, _, end_s = rng[6:].partition("-")
            start = int(start_s or 0)
            end = int(end_s) if end_s else len(data) - 1
            if start >= len(data):
                return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            # A view, not a copy: a CDN does not duplicate a 4 GiB file in memory per request,
            # and on a small machine the copy took CPU from the clients being measured.
            data, status = memoryview(data)[start : end + 1], 206
        headers["Content-Length"] = str(len(data))
        delay = self.fake.slow.get(path)
        if delay is None or head:
            return self._send(status, data, headers, head)
        self._send(status, b"", headers, head=True)
        for i in range(0, len(data), 64 << 10):
            self.wfile.write(data[i : i + (64 << 10)])
            self.wfile.flush()
            time.sleep(delay)


class _CdnHandler(_Handler):
    """The second origin: LFS bytes by sha256, with Range, like the Hub's CDN."""

    def _route(self, head: bool) -> None:
        url = urlsplit(self.path)
        self.fake.cdn_requests.append((self.command, url.path, self.headers.get("Authorization")))
        parts = url.path.strip("/").split("/")
        found = self.fake.blob_by_sha256(parts[1]) if len(parts) == 2 and parts[0] == "cdn" else None
        if found is None:
            return self._send(404, b"NoSuchKey", {"Content-Type": "text/plain"}, head)
        path, blob = found
        headers = {"ETag": f'"{blob.sha256}"', "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        self._serve(blob.data, path, headers, head)


def _pointer(blob: Blob) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{blob.sha256}\nsize {len(blob.data)}\n"
    ).encode()
