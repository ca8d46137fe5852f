"""S3 and S3-compatible object stores (AWS, MinIO, R2, GCS's XML API) as a model's home.

Through boto3: it reads the endpoint and credentials from every place AWS tools do
(``AWS_ENDPOINT_URL``, ``AWS_PROFILE`` and the config files, the environment, SSO, instance and
container roles) and signs every request; bundler never sees, records or prints a secret.

What is pinned per object: its ``VersionId`` where the bucket keeps versions (the only identity S3
promises never changes), its ETag (a fetch asks ``If-Match`` for it, so a replaced object is
refused before a byte moves), its size and sha256 (the object's own full-object SHA-256 checksum
when it has one; otherwise read once at lock time). Fetches resume a killed transfer from its
``.part`` file with a ranged request, run several objects at once, and verify the sha256 of every
byte before the file takes its name.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError

#: bucket names as S3 allows them (lowercase, digits, dots, hyphens; 3-63)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_CHUNK = 1 << 20
JOBS = 8


@dataclass(frozen=True)
class S3Url:
    bucket: str
    key: str  # "" or ending in "/": a prefix; otherwise one object

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class S3Object:
    """One object as pinned: where it is in the model, and what identifies its bytes."""

    path: str  # relative to the prefix (the object's name for a single object)
    key: str
    size: int
    etag: str
    version_id: str | None
    sha256: str | None  # hex; None until read


def parse_url(url: str) -> S3Url:
    """``s3://bucket/prefix/`` or ``s3://bucket/key``; UsageError for anything else."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise UsageError(f"not an S3 URL: {url!r}", hint="write it as s3://bucket/prefix/ or s3://bucket/path/file")
    bucket, _, key = url[len("s3://"):].partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise UsageError(f"{url}: {bucket!r} is not an S3 bucket name", hint="bucket names are 3-63 lowercase letters, digits, dots and hyphens")
    if "\x00" in key or key.startswith("/") or any(part in (".", "..") for part in key.split("/")[:-1]):
        raise UsageError(f"{url}: the key {key!r} is not a plain object path")
    return S3Url(bucket, key)


def client() -> Any:
    """A boto3 S3 client configured the way the AWS CLI would be on this host."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise UsageError("S3 models need boto3, which is not installed",
                         hint="pip install 'bundler[s3]'") from None
    # "when_required": no CRC trailer on every request (S3-compatible stores differ in support);
    # bundler checks sha256 itself.
    return boto3.session.Session().client("s3", config=Config(retries={"max_attempts": 5, "mode": "standard"},
                                                                request_checksum_calculation="when_required",
                                                                response_checksum_validation="when_required",
                                                                max_pool_connections=JOBS * 2))


def s3_error(e: BaseException, what: str) -> UsageError:
    """A boto3 failure as bundler's message: what was asked, what the store answered, what to do."""
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    if isinstance(e, (NoCredentialsError, PartialCredentialsError)):
        return UsageError(f"{what}: no AWS credentials found", hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run on a host with a role")
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(err.get("Code", status))
        if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return UsageError(f"{what}: access denied ({code})", hint="check the credentials and the bucket policy (AWS_PROFILE, AWS_ACCESS_KEY_ID)")
        if status == 404 or code in ("NoSuchKey", "NoSuchBucket", "NoSuchVersion", "404"):
            return UsageError(f"{what}: not found ({code})",
                              hint="the object (or the pinned version) is gone; run `bundler lock --upgrade` to pin what is there now")
        if status == 412 or code == "PreconditionFailed":
            return UsageError(f"{what}: the object changed since it was locked (its ETag differs)",
                              hint="run `bundler lock --upgrade` to pin the new bytes, or restore the old object")
        return UsageError(f"{what}: the S3 endpoint answered {status} {code}: {err.get('Message', '')}".rstrip(": "))
    return UsageError(f"{what}: the S3 endpoint cannot be reached ({type(e).__name__}: {e})",
                      hint="check AWS_ENDPOINT_URL and the network")


def _aws_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def list_objects(s3: Any, url: S3Url, *, keep: Callable[[list[str]], list[str]] | None = None) -> list[S3Object]:
    """The objects the URL names (``keep`` filters their relative paths), each with its current
    version, ETag, size and the store's own full-object sha256 where it keeps one."""
    try:
        if url.is_prefix:
            keys = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=url.bucket, Prefix=url.key):
                keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]  # folder markers
            paths = {k[len(url.key):]: k for k in keys}
        else:
            paths = {url.key.rsplit("/", 1)[-1]: url.key}
    except _aws_errors() as e:
        raise s3_error(e, str(url)) from None
    chosen = keep(sorted(paths)) if keep else sorted(paths)
    with ThreadPoolExecutor(JOBS) as pool:
        return list(pool.map(lambda p: _head(s3, url.bucket, paths[p], p), chosen))


def _head(s3: Any, bucket: str, key: str, path: str) -> S3Object:
    try:
        h = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except _aws_errors() as e:
        raise s3_error(e, f"s3://{bucket}/{key}") from None
    sha = h.get("ChecksumSHA256")
    # A multipart upload's checksum is of its parts ("…-N", type COMPOSITE), not of the object.
    if not isinstance(sha, str) or "-" in sha or h.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
        sha = None
    else:
        sha = base64.b64decode(sha).hex()
    return S3Object(path, key, int(h["ContentLength"]), str(h["ETag"]), h.get("VersionId") or None, sha)


def fetch(s3: Any, bucket: str, obj: S3Object, target: Path, sha256: str) -> int:
    """Stream ``obj`` (its pinned version, only while its ETag holds) into ``target``, resuming
    from ``target``'s ``.part`` file; bytes that are not ``sha256`` (hex) never take the name.
    Returns the bytes transferred."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part")
    where = f"s3://{bucket}/{obj.key}" + (f" (version {obj.version_id})" if obj.version_id else "")
    with open(part, "ab+") as out:
        fcntl.flock(out, fcntl.LOCK_EX)  # another pull of the same object waits, then finds it done
        if target.exists() and _sha256_file(target) == sha256:  # another process finished it
            part.unlink(missing_ok=True)
            return 0
        have = out.seek(0, os.SEEK_END)
        if have > obj.size:
            out.truncate(0)
            have = 0
        h = hashlib.sha256()
        out.seek(0)
        while chunk := out.read(_CHUNK):
            h.update(chunk)
        got = 0
        if have < obj.size:
            args: dict[str, Any] = {"Bucket": bucket, "Key": obj.key, "IfMatch": obj.etag}
            if obj.version_id:
                args["VersionId"] = obj.version_id
            if have:
                args["Range"] = f"bytes={have}-"
            try:
                body = s3.get_object(**args)["Body"]
                for chunk in body.iter_chunks(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    got += len(chunk)
            except _aws_errors() as e:
                raise s3_error(e, where) from None
            out.flush()
        size = out.seek(0, os.SEEK_END)
        if size != obj.size or h.hexdigest() != sha256:
            out.truncate(0)
            raise UsageError(f"{where}: the bytes differ from the pin ({size} bytes, sha256:{h.hexdigest()}; "
                             f"expected {obj.size} bytes, sha256:{sha256})",
                             hint="the object was changed in place; run `bundler lock --upgrade` to pin the new bytes")
        os.fsync(out.fileno())
        part.replace(target)
    return got


def fetch_all(s3: Any, bucket: str, todo: list[tuple[S3Object, Path, str]]) -> int:
    """``fetch`` each (object, target, sha256), several at once; the bytes transferred."""
    with ThreadPoolExecutor(min(JOBS, max(1, len(todo)))) as pool:
        return sum(pool.map(lambda t: fetch(s3, bucket, *t), todo))


def read_sha256(s3: Any, bucket: str, obj: S3Object) -> str:
    """The sha256 (hex) of the object's pinned version, read once as a stream (nothing is kept)."""
    args: dict[str, Any] = {"Bucket": bucket, "Key": obj.key, "IfMatch": obj.etag}
    if obj.version_id:
        args["VersionId"] = obj.version_id
    h, size = hashlib.sha256(), 0
    try:
        for chunk in s3.get_object(**args)["Body"].iter_chunks(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    except _aws_errors() as e:
        raise s3_error(e, f"s3://{bucket}/{obj.key}") from None
    if size != obj.size:
        raise UsageError(f"s3://{bucket}/{obj.key}: read {size} bytes, the store said {obj.size}", hint="try again: it changed while being read")
    return h.hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
