"""`bundler sbom`: a CycloneDX 1.6 SBOM, valid under the library's strict validator, byte-stable."""

from __future__ import annotations

import json
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from bundler.ops.build import build
from bundler.ops.pull import pull

from .conftest import run_cli

SERVICE = '''import bundler


@bundler.service
class S:
    model = bundler.HuggingFaceModel("acme/embed-small", revision="v1.0", include=["*.json", "*.safetensors"])
'''


def bundle(tmp_path: Path) -> Path:
    d = tmp_path / "p"
    d.mkdir()
    (d / "service.py").write_text(SERVICE)
    return build(d / "service.py", output=tmp_path / "s.bundle.tar").path


def test_the_sbom_is_valid_cyclonedx_1_6_naming_every_model_file_and_source(hub, tmp_path):
    b = bundle(tmp_path)
    res = run_cli("sbom", str(b))
    assert res.code == 0, res.stderr
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(res.stdout) is None
    doc = json.loads(res.stdout)
    assert doc["specVersion"] == "1.6" and doc["metadata"]["timestamp"].startswith("1980-01-01")
    (model,) = [c for c in doc["components"] if c["type"] == "machine-learning-model"]
    commit = model["version"]
    assert model["purl"] == f"pkg:huggingface/acme/embed-small@{commit}"
    files = {f["name"]: f for f in model["components"]}
    assert sorted(files) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert files["model.safetensors"]["hashes"][0]["alg"] == "SHA-256"
    assert {p["name"] for p in files["config.json"]["properties"]} == {"bundler:size", "bundler:git-blob-id"}
    sources = [c for c in doc["components"] if c["type"] == "file"]
    assert [c["name"] for c in sources] == ["bundler.lock", "service.py"]
    assert all(c["hashes"][0]["alg"] == "BLAKE3" for c in sources)


def test_the_same_bundle_gives_the_same_bytes_from_the_archive_and_the_pulled_directory(hub, tmp_path, monkeypatch):
    b = bundle(tmp_path)
    first = run_cli("sbom", str(b)).stdout
    assert run_cli("sbom", str(b)).stdout == first  # no clock, no random serial number
    pull(b, to=tmp_path / "deploy")
    assert run_cli("sbom", str(tmp_path / "deploy")).stdout == first
    later = run_cli("sbom", str(b), env={"SOURCE_DATE_EPOCH": "1700000000"}).stdout
    assert json.loads(later)["metadata"]["timestamp"].startswith("2023-11-14")


def test_locked_python_packages_are_listed_with_their_files_sha256(tmp_path):
    from .test_env import build as env_build, make_wheel, sha256  # the environment tests' helpers

    wheelhouse = tmp_path / "wheelhouse"
    make_wheel(wheelhouse, "tinya", "1.0")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "envproj"\ndependencies = ["tinya"]\n')
    (project / "service.py").write_text("import bundler\n\n@bundler.service\nclass Api:\n    pass\n")
    assert env_build(project, wheelhouse, tmp_path / "e.tar").code == 0
    doc = json.loads(run_cli("sbom", str(tmp_path / "e.tar")).stdout)
    (pkg,) = [c for c in doc["components"] if c["type"] == "library"]
    assert pkg["purl"] == "pkg:pypi/tinya@1.0"
    assert pkg["hashes"] == [{"alg": "SHA-256", "content": sha256(wheelhouse / "tinya-1.0-py3-none-any.whl")}]
