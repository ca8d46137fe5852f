"""`push --modelpack`: one model of a bundle as a CNCF ModelPack artifact (modelpack/model-spec
v1), reproducible, its config valid under the spec's JSON schema (fixtures/modelpack/config-schema.json,
the spec repository's schema/config-schema.json at d78bf32); `pull` of one lands it in the store."""

from __future__ import annotations

import hashlib
import json
import urllib.request

import jsonschema

from .conftest import FIXTURES, run_cli
from .test_oci import make_bundle

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def get(host: str, path: str, accept: str = "*/*") -> bytes:
    with urllib.request.urlopen(urllib.request.Request(f"http://{host}{path}", headers={"Accept": accept})) as r:
        return r.read()


def test_one_model_of_a_bundle_as_a_modelpack_artifact_valid_and_reproducible(hub, registry, tmp_path):
    host = registry["host"]
    weights = b"\x07" * 5000
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    bundle = make_bundle(tmp_path / "a", "mp", weights)
    res = run_cli("push", str(bundle), f"oci://{host}/acme/mp:v1", "--modelpack")
    assert res.code == 2 and "holds one model" in res.stderr and "--model" in res.stderr, res.stderr
    res = run_cli("push", str(bundle), f"oci://{host}/acme/mp:v1", "--modelpack", "--model", "weights")
    assert res.code == 0, res.stderr
    digest = res.stdout.strip()

    manifest = json.loads(get(host, "/v2/acme/mp/manifests/v1", MANIFEST))
    assert manifest["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.model.config.v1+json"
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.cncf.model.weight.v1.raw"
    assert layer["digest"] == "sha256:" + hashlib.sha256(weights).hexdigest() and layer["size"] == len(weights)
    assert layer["annotations"]["org.cncf.model.filepath"] == "weights.bin"
    meta = json.loads(layer["annotations"]["org.cncf.model.file.metadata+json"])
    assert meta == {"name": "weights.bin", "mode": 0o644, "uid": 0, "gid": 0, "size": len(weights), "mtime": "1980-01-01T00:00:00Z", "typeflag": 48}
    config = json.loads(get(host, f"/v2/acme/mp/blobs/{manifest['config']['digest']}"))
    schema = json.loads((FIXTURES / "modelpack" / "config-schema.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(config)
    assert config["modelfs"] == {"type": "layers", "diffIds": [layer["digest"]]} and config["config"] == {"format": "bin"}

    # another checkout, another machine's paths: the same model is the same artifact
    again = make_bundle(tmp_path / "b", "other", weights)
    res = run_cli("push", str(again), f"oci://{host}/acme/mp:v2", "--modelpack", "--model", "weights")
    assert res.code == 0 and res.stdout.strip() == digest, res.stderr

    # and a pull lands it in the model store, every layer checked
    deploy = {"BUNDLER_HOME": str(tmp_path / "deploy-home")}
    res = run_cli("pull", f"oci://{host}/acme/mp:v1", "--json", env=deploy)
    assert res.code == 0, res.stderr
    landed = json.loads(res.stdout)
    assert landed["store_model"].startswith("weights:")
    from pathlib import Path

    assert (Path(landed["path"]) / "weights.bin").read_bytes() == weights
    assert landed["store_model"] in run_cli("models", "list", env=deploy).stdout


def test_a_hub_model_as_modelpack_names_its_origin_and_types_its_files(hub, registry, tmp_path):
    host = registry["host"]
    bundle = make_bundle(tmp_path, "hubmp", b"\x01" * 100)
    res = run_cli("push", str(bundle), f"oci://{host}/acme/embed:v1", "--modelpack", "--model", "embedder")
    assert res.code == 0, res.stderr
    manifest = json.loads(get(host, "/v2/acme/embed/manifests/v1", MANIFEST))
    config = json.loads(get(host, f"/v2/acme/embed/blobs/{manifest['config']['digest']}"))
    assert config["descriptor"]["name"] == "acme/embed-small" and config["descriptor"]["sourceURL"].endswith("/acme/embed-small")
    assert len(config["descriptor"]["revision"]) == 40
    types = {layer["annotations"]["org.cncf.model.filepath"]: layer["mediaType"] for layer in manifest["layers"]}
    assert types and all(t == "application/vnd.cncf.model.weight.config.v1.raw" for p, t in types.items() if p.endswith(".json")), types
    res = run_cli("push", str(bundle), f"oci://{host}/acme/embed:v2", "--modelpack", "--image")
    assert res.code == 2 and "--modelpack pushes one model" in res.stderr
