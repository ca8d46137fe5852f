"""Everything that talks to the Hugging Face Hub, through huggingface_hub only."""

from __future__ import annotations

from typing import Any

from ..errors import BundlerError, ProblemFound, UsageError
from ..notes import note
from ..model.pins import FileEntry, Pin


def endpoint_for(ref: Any, *, at_pull: bool = False) -> str | None:
    """The Hub a reference or pin is reached at: at lock, the endpoint the service names, else
    ``HF_ENDPOINT``; at pull, ``HF_ENDPOINT`` (the host's own mirror) first, else the recorded one."""
    named = getattr(ref, "endpoint", None)
    return (endpoint() or named) if at_pull else (named or endpoint())


def endpoint() -> str | None:
    # Read at call time: huggingface_hub reads HF_ENDPOINT once, when it is first imported.
    from ..settings import hf_endpoint

    return hf_endpoint()


def token() -> str | None:
    """The Hub token as huggingface_hub finds it: HF_TOKEN, then the token `hf auth login`
    saved (under HF_HOME), then the environment's OIDC token. Read at call time."""
    from huggingface_hub import get_token

    return get_token()


def offline() -> bool:
    from ..settings import hf_offline

    return hf_offline()


class HubUnreachable(ProblemFound):
    """The Hub could not be reached (exit 1: the input may be fine)."""


def _is_network_error(e: BaseException) -> bool:
    names = {c.__name__ for c in type(e).__mro__}
    return isinstance(e, (ConnectionError, TimeoutError)) or bool(
        names & {"TransportError", "RequestError", "ConnectionError", "Timeout", "OfflineModeIsEnabled"}
    )


def hub_error(e: Exception, ref: Any, where: str | None, line: int | None, action: str = "pin", path: str | None = None) -> BundlerError:
    """Translate a huggingface_hub exception into one clear error about ``ref`` (a scanned
    reference, or a pin being fetched: then ``path`` is the pinned file)."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    commit = getattr(ref, "commit", None)
    relock = f"the pin is no longer on the Hub: re-pin with `bundler lock --upgrade-model {ref.id}`, rebuild and pull the new bundle"
    if action == "fetch" and commit:
        if isinstance(e, RevisionNotFoundError):
            return ProblemFound(f"commit {commit} of `{ref.id}` is gone from the Hub (history rewritten?)", hint=relock)
        if isinstance(e, EntryNotFoundError) or getattr(getattr(e, "response", None), "status_code", None) == 404 and not isinstance(e, RepositoryNotFoundError):
            return ProblemFound(f"`{path or '?'}` is not in `{ref.id}` at commit {commit[:12]} any more", hint=relock)

    label = f"`{ref.id}`" + (f" at revision `{ref.revision}`" if getattr(ref, "revision", None) else "")
    if isinstance(e, GatedRepoError):
        if not token():
            return UsageError(f"{label} is gated and no token is set",
                              hint="set HF_TOKEN (or run `hf auth login`) with a token of an account that accepted the model's terms", file=where, line=line)
        return UsageError(
            f"{label} is gated and this token has no access",
            hint="accept the model's terms on the Hub, then set HF_TOKEN to a token of that account",
            file=where, line=line,
        )
    if isinstance(e, RepositoryNotFoundError):
        return UsageError(
            f"repository `{ref.id}` not found on {endpoint_for(ref) or 'the Hub'}",
            hint="check the id; if the repository is private or gated, set HF_TOKEN",
            file=where, line=line,
        )
    if isinstance(e, RevisionNotFoundError):
        return UsageError(
            f"revision `{ref.revision}` not found in `{ref.id}`",
            hint="use a branch, tag or full commit sha that exists in the repository",
            file=where, line=line,
        )
    if _is_network_error(e):
        return HubUnreachable(
            f"can't reach the Hub ({endpoint_for(ref, at_pull=action == 'fetch') or 'huggingface.co'}) to {action} {label}: {e}",
            hint="check the network or HF_ENDPOINT; with a fresh bundler.lock, --offline needs no network",
            file=where, line=line,
        )
    if isinstance(e, HfHubHTTPError):
        return _http_error(e, label, where, line, path)
    if isinstance(e, (ValueError, TypeError, KeyError, AttributeError)):  # JSONDecodeError is one
        return malformed(ref, where, e)
    raise e


def _http_error(e: Exception, label: str, where: str | None, line: int | None, path: str | None) -> BundlerError:
    """An HTTP answer the Hub gave for ``label``, by its status."""
    status = getattr(getattr(e, "response", None), "status_code", "?")
    if status in (401, 403):
        return UsageError(f"access to {label} denied (HTTP {status})", hint="set HF_TOKEN to a token with access", file=where, line=line)
    if status == 429:
        after = getattr(getattr(e, "response", None), "headers", {}).get("Retry-After")
        return ProblemFound(f"the Hub rate-limits requests for {label} (HTTP 429" + (f", retry after {after} s)" if after else ")"),
                            hint="wait and try again; a token (HF_TOKEN) gets a higher limit", file=where, line=line)
    if isinstance(status, int) and status >= 500:
        return ProblemFound(f"the Hub answered HTTP {status} for {label}", hint="the Hub is busy or failing: try again later", file=where, line=line)
    return ProblemFound(
        f"the Hub refused the request for {label}{' ' + path if path else ''} (HTTP {status})",
        hint="this is not transient: check HF_ENDPOINT and the pin; run with --debug for details", file=where, line=line,
    )


#: 429 / 503 answers are waited out, as their Retry-After asks, this many times at most.
RETRIES = 5
MAX_WAIT_S = 60.0


def _patiently(call: Any, ref: Any) -> Any:
    """``call()``, waiting out rate limits: the Hub answers 429 (or 503) with Retry-After."""
    import time

    from huggingface_hub.errors import HfHubHTTPError

    for attempt in range(RETRIES + 1):
        try:
            return call()
        except HfHubHTTPError as e:
            response = getattr(e, "response", None)
            status = getattr(response, "status_code", None)
            if status not in (429, 503) or attempt == RETRIES:
                raise
            wait = _retry_after(getattr(response, "headers", {}) or {}, attempt)
            if wait > MAX_WAIT_S:
                raise
            note(f"the Hub answered HTTP {status} for `{ref.id}`; retrying in {wait:g} s")
            time.sleep(wait)
    raise AssertionError("unreachable")


def _retry_after(headers: Any, attempt: int) -> float:
    value = str(headers.get("Retry-After", "")).strip()
    if value.isdigit():
        return float(value)
    return float(min(2**attempt, 30))  # no usable header: back off


def pin(ref: Any, *, where: str | None = None, no_network: bool = False, notes: list[str] | None = None) -> Pin:
    """Pin a Hugging Face reference: its revision's commit sha and the selected files' hashes.

    File selection uses huggingface_hub's own allow/ignore matching, so a pull later selects
    exactly these files. ``notes`` collects warnings (a repo id the Hub knows by another name).
    """
    if no_network or offline():
        why = "--offline was given" if no_network else "HF_HUB_OFFLINE is set"
        raise HubUnreachable(
            f"`{ref.id}` needs pinning but {why}",
            file=where,
            line=ref.line,
            hint="run `bundler lock` once with network access and commit bundler.lock",
        )
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    api = HfApi(endpoint=endpoint_for(ref), token=token())
    try:
        info = _patiently(lambda: _model_info(api, ref), ref)
        # The file list comes from the paginated tree at the resolved commit, never from
        # model_info's siblings: the Hub documents those as unreliable past ~1000 files
        # (truncated, sometimes empty), and a cut list would silently pin a subset.
        tree = _patiently(lambda: _listing(api, ref, info.sha), ref)
        siblings = list(
            filter_repo_objects(
                tree,
                allow_patterns=list(ref.include) if ref.include else None,
                ignore_patterns=list(ref.exclude) if ref.exclude else None,
                key=lambda f: f.path,
            )
        )
        if siblings and getattr(info, "gated", False):
            _check_access(api, ref.id, info.sha, siblings[0].path)
    except Exception as e:  # noqa: BLE001 - translated, or re-raised when unknown
        raise hub_error(e, ref, where, ref.line) from None
    try:
        pinned = _pin_from(ref, info, siblings, where, notes)
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise malformed(ref, where, e) from None
    # a look at where a revision points now (`outdated`) compares commits: no file is fetched
    return _with_sha256(api, ref, pinned, where) if getattr(ref, "file_hashes", True) else pinned


#: The Hub keeps files over 10 MB in LFS (pinned by sha256); one claiming more outside it is broken.
MAX_PLAIN_FILE = 64 << 20


def _with_sha256(api: Any, ref: Any, pinned: Pin, where: str | None) -> Pin:
    """``pinned`` with the sha256 of each file the Hub pins only by its git blob id (SHA-1):
    those are small (configs, tokenizers, cards), so they are fetched once, here, checked
    against their blob id, and hashed; the bytes are not kept. Then every pinned byte is covered
    by a sha256 (what a signature's statement and a deploy host check)."""
    import dataclasses
    from concurrent.futures import ThreadPoolExecutor

    plain = [f for f in pinned.files if f.hash.startswith("git-sha1:")]
    if not plain:
        return pinned
    for f in plain:
        if f.size > MAX_PLAIN_FILE:
            raise malformed(ref, where, ValueError(f"{f.path!r} is {f.size} bytes outside LFS"))
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            digests = dict(zip([f.path for f in plain], pool.map(lambda f: _plain_sha256(api, ref, pinned.commit, f), plain)))
    except ValueError as e:
        raise malformed(ref, where, e) from None
    except Exception as e:  # noqa: BLE001 - translated, or re-raised when unknown
        raise hub_error(e, ref, where, ref.line) from None
    files = tuple(dataclasses.replace(f, sha256=digests[f.path]) if f.path in digests else f for f in pinned.files)
    return dataclasses.replace(pinned, files=files)


def _plain_sha256(api: Any, ref: Any, commit: str | None, entry: FileEntry) -> str:
    """The sha256 of one non-LFS file at ``commit``, fetched through huggingface_hub into a
    throwaway cache; its size and git blob id must be the listing's."""
    import tempfile
    from pathlib import Path

    from huggingface_hub import hf_hub_download

    from ..io.hashing import new_hasher

    with tempfile.TemporaryDirectory(prefix="bundler-lock-") as tmp:
        path = Path(hf_hub_download(ref.id, entry.path, revision=commit, cache_dir=tmp, endpoint=api.endpoint, token=api.token))
        data = path.read_bytes()
    blob_id, sha = new_hasher("git-sha1", len(data)), new_hasher("sha256")
    for h in (blob_id, sha):
        h.update(data)
    blob = blob_id.hexdigest()
    if len(data) != entry.size or f"git-sha1:{blob}" != entry.hash:
        raise ValueError(f"{entry.path!r} fetched at {str(commit)[:12]} is not the file the listing names (size {len(data)}, blob {blob[:12]})")
    return str(sha.hexdigest())


#: Bigger than any model's info answer (a repository of 100,000 files lists in a few MB): an
#: answer past it is broken or hostile, and is not read on.
MAX_INFO_BYTES = 64 << 20


def _model_info(api: Any, ref: Any) -> Any:
    """``HfApi.model_info`` with a bound on the answer: the same request through
    huggingface_hub's own session, headers and error mapping, read as a stream and refused past
    ``MAX_INFO_BYTES`` (``model_info`` reads an answer whole: one that never ends takes all memory)."""
    import json
    from urllib.parse import quote

    from huggingface_hub import ModelInfo
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    url = f"{api.endpoint}/api/models/{ref.id}" + (f"/revision/{quote(ref.revision, safe='')}" if ref.revision else "")
    body = bytearray()
    with get_session().stream("GET", url, headers=build_hf_headers(token=api.token)) as r:
        for chunk in r.iter_bytes():
            body += chunk
            if len(body) > MAX_INFO_BYTES:
                raise ValueError(f"the answer is over {MAX_INFO_BYTES >> 20} MiB and does not end")
        # what huggingface_hub's error mapping reads: the status, the headers and the (bounded) body
        whole = type(r)(r.status_code, headers=r.headers, content=bytes(body), request=r.request)
    hf_raise_for_status(whole)
    return ModelInfo(**json.loads(body))


#: More entries than any model repository holds: a listing past it is not ending.
MAX_TREE_ENTRIES = 1_000_000


def _listing(api: Any, ref: Any, commit: str) -> list[Any]:
    """The files of the tree at ``commit``. huggingface_hub follows the pages' next links itself:
    a listing that repeats a path (a next link pointing back) or never ends is stopped here."""
    files, seen = [], set()
    for n, f in enumerate(api.list_repo_tree(ref.id, revision=commit, recursive=True)):
        path = getattr(f, "path", None)
        if path in seen or n >= MAX_TREE_ENTRIES:
            raise ValueError(f"the file listing repeats {path!r} or does not end (after {n} entries)")
        seen.add(path)
        if hasattr(f, "blob_id"):
            files.append(f)
    return files


def malformed(ref: Any, where: str | None, e: BaseException) -> ProblemFound:
    """An answer that is not the Hub's (a captive portal's page, a broken proxy, a hostile
    server): one error at lock time, and nothing written."""
    return ProblemFound(
        f"the answer about `{ref.id}` from {endpoint_for(ref) or 'the Hub'} is not a valid Hub answer ({type(e).__name__}: {str(e)[:200]})",
        file=where, line=getattr(ref, "line", None),
        hint="check the network and HF_ENDPOINT: a proxy or a captive portal may be answering in the Hub's place",
    )


def _pin_from(ref: Any, info: Any, siblings: list[Any], where: str | None, notes: list[str] | None) -> Pin:
    if not siblings:
        pats = f" (include={list(ref.include) if ref.include else None}, exclude={list(ref.exclude) if ref.exclude else None})"
        raise UsageError(
            f"the patterns of `{ref.id}` select no file at commit {info.sha[:12]}{pats}",
            file=where,
            line=ref.line,
            hint="fix include/exclude; they match paths like huggingface_hub's allow/ignore patterns",
        )
    files = []
    for f in sorted(siblings, key=lambda f: f.path):
        lfs = f.lfs
        if lfs is not None:
            sha = lfs.sha256 if hasattr(lfs, "sha256") else lfs["sha256"]
            size = lfs.size if hasattr(lfs, "size") else lfs["size"]
            xet = getattr(f, "xet_hash", None)  # Xet-backed (every new upload): how hf_xet fetches it
            files.append(FileEntry(f.path, size, f"sha256:{sha}", xet if isinstance(xet, str) and xet else None))
        else:
            files.append(FileEntry(f.path, f.size or 0, f"git-sha1:{f.blob_id}"))
    canonical = getattr(info, "id", None)
    hub_id = canonical if isinstance(canonical, str) and canonical != ref.id else None
    if hub_id is not None and notes is not None:
        # The Hub answers an old name (renamed repo) or another capitalisation with the repo's
        # own id. It is recorded (``hub_id``); files are fetched under the id as written, where the
        # service's own loaders look, and a pull links the blobs another spelling already has.
        notes.append(
            f"{where or '?'}:{ref.line}: `{ref.id}` is `{canonical}` on the Hub (renamed, or spelled differently);"
            f" use `{canonical}` in the service so every host and cache uses one name"
        )
    for f in files:
        if type(f.size) is not int or f.size < 0:
            raise ValueError(f"{f.path!r} has size {f.size!r}")
    return Pin(
        source=ref.kind,
        id=ref.id,
        revision=ref.revision,
        include=tuple(ref.include) if ref.include is not None else None,
        exclude=tuple(ref.exclude) if ref.exclude is not None else None,
        commit=info.sha,
        files=tuple(files),
        hub_id=hub_id,
        endpoint=getattr(ref, "endpoint", None),
    )


def _check_access(api: Any, repo_id: str, commit: str, path: str) -> None:
    """Gated repos show their metadata to anyone: probe one file so pinning fails early."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(repo_id, path, revision=commit, endpoint=api.endpoint)
    get_hf_file_metadata(url, token=api.token)
