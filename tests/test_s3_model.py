"""S3 (and S3-compatible) object stores as a model source (`bundler.S3Model`), against a real S3 API
server on loopback (moto_server): versioned and unversioned buckets, objects changed after the lock,
a killed fetch resumed, 403 and 404."""

from __future__ import annotations

import hashlib
import json
import tarfile
import tomllib
import uuid
from pathlib import Path

import pytest

from bundler.errors import UsageError
from bundler.kinds import check_pin
from bundler.model.pins import FileEntry, Pin
from bundler.stores import s3 as s3store

from .conftest import run_cli, start_moto

SERVICE = '''import bundler

ROOT = "s3://{bucket}/"


@bundler.service
class Reader:
    model = bundler.S3Model(ROOT + "{prefix}"{extra})

    def __init__(self):
        self.where = self.model.resolve()
'''

WEIGHTS = b"\x07" * 300_000
CONFIG = b'{"hidden_size": 8}'


def bucket(s3, versioned: bool) -> str:
    name = f"models-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def project(tmp_path: Path, bucket: str, prefix: str = "clf/", extra: str = "") -> Path:
    d = tmp_path / "proj"
    d.mkdir(parents=True, exist_ok=True)
    (d / "service.py").write_text(SERVICE.format(bucket=bucket, prefix=prefix, extra=extra))
    return d / "service.py"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def locked(svc: Path) -> dict:
    (entry,) = tomllib.loads((svc.parent / "bundler.lock").read_text())["model"]
    return entry


def test_a_versioned_prefix_is_pinned_per_version_carried_and_resolved_offline(s3, tmp_path):
    b = bucket(s3, versioned=True)
    # one object with the store's own SHA-256 checksum, one without (read once at lock), one excluded
    s3.put_object(Bucket=b, Key="clf/model.safetensors", Body=WEIGHTS, ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket=b, Key="clf/config/config.json", Body=CONFIG)
    s3.put_object(Bucket=b, Key="clf/README.md", Body=b"notes")
    svc = project(tmp_path, b, extra=', exclude="*.md"')
    res = run_cli("lock", str(svc))
    assert res.code == 0, res.stderr
    assert "keeps no versions" not in res.stderr + res.stdout
    entry = locked(svc)
    heads = {k: s3.head_object(Bucket=b, Key=f"clf/{k}") for k in ("model.safetensors", "config/config.json")}
    assert entry["source"] == "s3" and entry["id"] == f"s3://{b}/clf/" and entry["exclude"] == ["*.md"]
    assert [(f["path"], f["size"], f["hash"], f["version_id"], f["etag"]) for f in entry["files"]] == [
        ("config/config.json", len(CONFIG), sha(CONFIG), heads["config/config.json"]["VersionId"], heads["config/config.json"]["ETag"]),
        ("model.safetensors", len(WEIGHTS), sha(WEIGHTS), heads["model.safetensors"]["VersionId"], heads["model.safetensors"]["ETag"]),
    ]
    version = entry["version"]

    # a new version of an object after the lock: the lock keeps the old one, and so does the pull
    s3.put_object(Bucket=b, Key="clf/model.safetensors", Body=b"retrained")
    out = tmp_path / "reader.bundle.tar"
    res = run_cli("build", str(svc), "-o", str(out), "--no-env", "--offline")  # the objects are the deploy host's to fetch
    assert res.code == 0, res.stderr
    assert run_cli("lock", str(svc), "--check").code == 0
    shown = run_cli("inspect", str(out), "--verify")
    assert shown.code == 0 and f"s3://{b}/clf/" in shown.stdout, shown.stdout
    with tarfile.open(out) as tar:
        assert not [n for n in tar.getnames() if n.startswith("s3/")]

    deploy = {"BUNDLER_HOME": str(tmp_path / "deploy-home")}
    res = run_cli("pull", str(out), "--to", str(tmp_path / "deployed"), "--json", env=deploy)
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["downloaded"] == {"files": 2, "bytes": len(WEIGHTS) + len(CONFIG)}
    where = tmp_path / "deploy-home" / "s3-models" / version
    assert (where / "model.safetensors").read_bytes() == WEIGHTS
    assert (where / "config" / "config.json").read_bytes() == CONFIG
    assert not (where / "README.md").exists()
    offline = {**deploy, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # serving needs no S3
    res = run_cli("run", str(tmp_path / "deployed"), "--check", env=offline)
    assert res.code == 0, res.stderr
    assert str(where) in res.stdout
    res = run_cli("pull", str(tmp_path / "deployed"), "--json", env=offline)  # all there: nothing to fetch
    assert res.code == 0 and json.loads(res.stdout)["downloaded"]["files"] == 0, res.stderr

    (where / "model.safetensors").write_bytes(b"\x00" * len(WEIGHTS))
    res = run_cli("run", str(tmp_path / "deployed"), "--check", env=offline)
    assert res.code == 1 and "model.safetensors was modified" in res.stderr, res.stderr
    res = run_cli("pull", str(tmp_path / "deployed"), "--verify-only", env=offline)
    assert res.code == 1 and "model.safetensors: modified" in res.stderr, res.stderr
    res = run_cli("pull", str(tmp_path / "deployed"), "--json", env=deploy)  # the pinned version again
    assert res.code == 0 and json.loads(res.stdout)["downloaded"]["files"] == 1, res.stderr
    assert (where / "model.safetensors").read_bytes() == WEIGHTS

    # --embed-s3: the bundle carries them, and the deploy host needs no S3 at all
    embedded = tmp_path / "embedded.bundle.tar"
    res = run_cli("build", str(svc), "-o", str(embedded), "--no-env", "--embed-s3", "--offline")
    assert res.code == 2 and "is not in bundler's cache" in res.stderr and not embedded.exists(), res.stderr
    res = run_cli("build", str(svc), "-o", str(embedded), "--no-env", "--embed-s3")
    assert res.code == 0, res.stderr
    other = {"BUNDLER_HOME": str(tmp_path / "other-home"), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    assert run_cli("pull", str(embedded), "--to", str(tmp_path / "carried"), env=other).code == 0
    carried = tmp_path / "carried" / "s3" / version
    assert (carried / "model.safetensors").read_bytes() == WEIGHTS
    res = run_cli("run", str(tmp_path / "carried"), "--check", env=other)
    assert res.code == 0 and str(carried) in res.stdout, res.stderr


def test_an_unversioned_bucket_is_pinned_by_content_and_a_changed_object_is_refused(s3, tmp_path):
    b = bucket(s3, versioned=False)
    s3.put_object(Bucket=b, Key="weights/model.safetensors", Body=WEIGHTS)
    svc = project(tmp_path, b, prefix="weights/model.safetensors")  # one object
    res = run_cli("lock", str(svc))
    assert res.code == 0, res.stderr
    assert f"s3://{b} keeps no versions" in res.stderr + res.stdout and "service.py:8" in res.stderr + res.stdout
    entry = locked(svc)
    assert [(f["path"], f["hash"]) for f in entry["files"]] == [("model.safetensors", sha(WEIGHTS))]
    assert "version_id" not in entry["files"][0]

    s3.put_object(Bucket=b, Key="weights/model.safetensors", Body=WEIGHTS[:-1] + b"\x08")  # same size, other bytes
    out = tmp_path / "reader.bundle.tar"
    res = run_cli("build", str(svc), "-o", str(out), "--no-env", "--embed-s3")
    assert res.code == 2, res.stderr
    changed = f"s3://{b}/weights/model.safetensors: the object changed since it was locked"
    assert changed in res.stderr and "Traceback" not in res.stderr and not out.exists()
    cache = tmp_path / "bundler-home" / "s3-models" / entry["version"]
    assert not (cache / "model.safetensors").exists()
    assert run_cli("build", str(svc), "-o", str(out), "--no-env").code == 0  # fetched on the host: refused there
    res = run_cli("pull", str(out), "--to", str(tmp_path / "deployed"))
    assert res.code == 2 and changed in res.stderr, res.stderr
    assert not (cache / "model.safetensors").exists()


def test_a_killed_fetch_resumes_from_its_part_and_wrong_bytes_never_take_the_name(s3, tmp_path):
    b = bucket(s3, versioned=True)
    s3.put_object(Bucket=b, Key="m/w.bin", Body=WEIGHTS)
    (obj,) = s3store.list_objects(s3store.client(), s3store.parse_url(f"s3://{b}/m/"))
    assert obj.sha256 is None and obj.version_id  # no stored checksum: read at lock
    digest = s3store.read_sha256(s3store.client(), b, obj)
    assert digest == hashlib.sha256(WEIGHTS).hexdigest()

    target = tmp_path / "cache" / "w.bin"
    target.parent.mkdir()
    (target.parent / ".w.bin.part").write_bytes(WEIGHTS[:100_000])  # what a killed fetch left
    assert s3store.fetch(s3store.client(), b, obj, target, digest) == len(WEIGHTS) - 100_000
    assert target.read_bytes() == WEIGHTS and not (target.parent / ".w.bin.part").exists()

    other = tmp_path / "cache" / "x.bin"
    (other.parent / ".x.bin.part").write_bytes(b"\xff" * 100_000)  # a part that is not this object's
    with pytest.raises(UsageError, match="the bytes differ from the pin"):
        s3store.fetch(s3store.client(), b, obj, other, digest)
    assert not other.exists() and (other.parent / ".x.bin.part").stat().st_size == 0  # the next try starts over
    assert s3store.fetch(s3store.client(), b, obj, other, digest) == len(WEIGHTS)
    assert other.read_bytes() == WEIGHTS


def test_a_deleted_pinned_version_is_named_not_found(s3, tmp_path):
    b = bucket(s3, versioned=True)
    s3.put_object(Bucket=b, Key="clf/w.bin", Body=WEIGHTS)
    svc = project(tmp_path, b)
    assert run_cli("lock", str(svc)).code == 0
    version_id = locked(svc)["files"][0]["version_id"]
    s3.delete_object(Bucket=b, Key="clf/w.bin", VersionId=version_id)
    res = run_cli("build", str(svc), "-o", str(tmp_path / "x.tar"), "--no-env", "--embed-s3")
    assert res.code == 2, res.stderr
    assert f"s3://{b}/clf/w.bin (version {version_id}): not found" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("lock", str(project(tmp_path / "empty", b)))
    assert res.code == 2 and f"s3://{b}/clf/: no objects" in res.stderr and "service.py:8" in res.stderr, res.stderr


def test_access_denied_is_a_clear_error(tmp_path, monkeypatch):
    # moto checks signatures against its IAM users once told to: these credentials are nobody's
    proc, url = start_moto(tmp_path, {"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-secret-in-use",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
        res = run_cli("lock", str(project(tmp_path, "private-models")), env=env)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert res.code == 2, res.stderr
    assert "s3://private-models/clf/: access denied" in res.stderr and "service.py:8" not in res.stdout
    assert "not-a-secret-in-use" not in res.stderr + res.stdout and "Traceback" not in res.stderr


def test_s3_descriptors_are_checked_by_the_scan(tmp_path):
    (tmp_path / "service.py").write_text('import bundler\n\n@bundler.service\nclass S:\n    m = bundler.S3Model("https://example.com/x")\n')
    res = run_cli("scan", str(tmp_path / "service.py"))
    assert res.code == 2 and "service.py:5" in res.stderr and "S3Model needs a URL" in res.stderr, res.stderr
    (tmp_path / "service.py").write_text('import bundler\n\n@bundler.service\nclass S:\n    m = bundler.S3Model("s3://b/", include=3)\n')
    res = run_cli("scan", str(tmp_path / "service.py"))
    assert res.code == 2 and "service.py:5" in res.stderr, res.stderr
    (tmp_path / "service.py").write_text('import bundler\n\n@bundler.service\nclass S:\n    m = bundler.S3Model("s3://my-bucket/p/", ["*.json"])\n')
    res = run_cli("scan", str(tmp_path / "service.py"), "--json")
    assert res.code == 0 and '"kind": "s3"' in res.stdout and '"include": [\n' in res.stdout, res.stdout


def test_an_s3_pin_from_a_lock_or_bundle_is_checked():
    f = FileEntry("w.bin", 3, sha(b"abc"), version_id="v1", etag='"900150983cd24fb0d6963f7d28e17f72"')
    from bundler.kinds.s3 import _version

    good = Pin(source="s3", id="s3://my-bucket/p/", version=_version([f]), files=(f,))
    assert check_pin(good) is good
    with pytest.raises(ValueError, match="not the digest of its objects"):
        check_pin(Pin(source="s3", id="s3://my-bucket/p/", version="sha256-" + "0" * 64, files=(f,)))
    with pytest.raises(ValueError, match="not an S3 bucket name"):
        check_pin(Pin(source="s3", id="s3://../p/", version=_version([f]), files=(f,)))
    spaced = FileEntry("w.bin", 3, f.hash, version_id="a b", etag="x")
    with pytest.raises(ValueError, match="bad version id"):
        check_pin(Pin(source="s3", id="s3://my-bucket/p/", version=_version([spaced]), files=(spaced,)))
    # a version id or ETag belongs to an object store's pin only
    with pytest.raises(ValueError, match="bad version id"):
        check_pin(Pin(source="store", id="clf:abc", version="abc", files=(FileEntry("w.bin", 3, "blake3:" + "0" * 64, version_id="v1"),)))


def test_a_mountable_image_needs_the_s3_objects_embedded(s3, registry, tmp_path):
    b = bucket(s3, versioned=True)
    s3.put_object(Bucket=b, Key="clf/w.bin", Body=WEIGHTS)
    svc = project(tmp_path, b)
    out = tmp_path / "r.bundle.tar"
    assert run_cli("build", str(svc), "-o", str(out), "--no-env").code == 0
    res = run_cli("push", str(out), f"oci://{registry['host']}/acme/s3img:v1", "--image")
    assert res.code == 2 and "build the bundle with --embed-s3" in res.stderr, res.stderr
    assert run_cli("build", str(svc), "-o", str(out), "--no-env", "--embed-s3").code == 0
    res = run_cli("push", str(out), f"oci://{registry['host']}/acme/s3img:v1", "--image")
    assert res.code == 0, res.stderr


def test_outdated_diff_and_the_sbom_treat_an_s3_model_like_a_hub_model(s3, tmp_path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    b = bucket(s3, versioned=True)
    s3.put_object(Bucket=b, Key="clf/w.bin", Body=WEIGHTS)
    s3.put_object(Bucket=b, Key="clf/config.json", Body=CONFIG)
    svc = project(tmp_path, b)
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    assert run_cli("build", str(svc), "-o", str(first), "--no-env").code == 0
    version = locked(svc)["version"]
    sbom = run_cli("sbom", str(first))
    assert sbom.code == 0 and JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom.stdout) is None, sbom.stderr
    (model,) = [c for c in json.loads(sbom.stdout)["components"] if c["type"] == "machine-learning-model"]
    assert model["purl"] == f"pkg:generic/clf@{version}?download_url=s3://{b}/clf/"

    s3.put_object(Bucket=b, Key="clf/config.json", Body=b'{"hidden_size": 9}')
    res = run_cli("outdated", str(svc))
    assert res.code == 1 and f"s3://{b}/clf/" in res.stdout and "config.json" in res.stdout, res.stdout
    assert run_cli("lock", str(svc), "--upgrade").code == 0
    assert run_cli("build", str(svc), "-o", str(second), "--no-env").code == 0
    res = run_cli("diff", str(first), str(second))
    assert f"~ model s3://{b}/clf/" in res.stdout and "~ config.json" in res.stdout and "w.bin" not in res.stdout, res.stdout


def test_outside_a_bundle_resolve_pins_and_fetches_into_bundlers_cache(s3, tmp_path):
    import bundler

    b = bucket(s3, versioned=True)
    s3.put_object(Bucket=b, Key="dev/config.json", Body=CONFIG)
    s3.put_object(Bucket=b, Key="dev/w.bin", Body=WEIGHTS)
    where = Path(bundler.S3Model(f"s3://{b}/dev/", include="*.json").resolve())
    assert where.parent == tmp_path / "bundler-home" / "s3-models"
    assert sorted(p.name for p in where.iterdir()) == ["config.json"] and (where / "config.json").read_bytes() == CONFIG
