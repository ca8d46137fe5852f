"""Weight formats by content: the manifest records what each carried model file is by its bytes,
`inspect` shows it, and `--no-pickle` refuses a pickle whatever its name."""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from bundler.bundle.archive import read_manifest
from bundler.bundle.manifest import loads
from bundler.errors import UsageError
from bundler.io.formats import sniff
from bundler.ops.build import build
from bundler.stores.local import Store

from .conftest import run_cli


def safetensors_bytes() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * 8


def torch_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model/data.pkl", pickle.dumps({"w": 1}, protocol=2))
        z.writestr("model/data/0", b"\0" * 8)
    return buf.getvalue()


def plain_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes.txt", "hi")
    return buf.getvalue()


SAMPLES = {
    "model.safetensors": (safetensors_bytes(), "safetensors"),
    "evil.safetensors": (pickle.dumps({"x": 1}, protocol=4), "pickle"),  # the name lies
    "pytorch_model.bin": (torch_zip(), "torch-zip"),
    "archive.zip": (plain_zip(), "zip"),
    "model.gguf": (b"GGUF\x03\x00\x00\x00" + b"\0" * 24, "gguf"),
    "arr.npy": (b"\x93NUMPY\x01\x00v\x00" + b" " * 118, "numpy"),
    "tf_model.h5": (b"\x89HDF\r\n\x1a\n" + b"\0" * 24, "hdf5"),
    "model.onnx": (b"\x08\x07\x12\x07pytorch", "onnx"),
    "config.json": (b'{"hidden_size": 8}', None),
    "short.safetensors": (b"\x05\0\0\0\0\0\0\0{", None),  # a header longer than the file: not safetensors
}


def test_formats_are_read_from_the_bytes_not_the_name(tmp_path):
    for name, (data, expected) in SAMPLES.items():
        (tmp_path / name).write_bytes(data)
        assert sniff(tmp_path / name) == expected, name


def project(tmp_path: Path, files: dict[str, bytes]) -> Path:
    weights = tmp_path / "weights"
    weights.mkdir()
    for name, data in files.items():
        (weights / name).write_bytes(data)
    Store().import_dir("clf", weights)
    svc = tmp_path / "proj" / "service.py"
    svc.parent.mkdir()
    svc.write_text("import bundler\n\n\n@bundler.service\nclass Svc:\n    m = bundler.StoreModel('clf:latest')\n")
    return svc


def test_the_manifest_records_each_carried_files_format_and_inspect_shows_it(tmp_path):
    svc = project(tmp_path, {n: d for n, (d, _) in SAMPLES.items()})
    bundle = build(svc, tmp_path / "b.bundle.tar", offline=True).path
    manifest = read_manifest(bundle)
    assert manifest.schema == 7
    (model,) = manifest.data["models"]
    assert {f["path"]: f.get("format") for f in model["files"]} == {n: fmt for n, (_, fmt) in SAMPLES.items()}
    res = run_cli("inspect", str(bundle), "--verify")
    assert res.code == 0, res.stderr
    line = next(x for x in res.stdout.splitlines() if x.strip().startswith("formats"))
    assert "clf:latest: gguf 1, hdf5 1, numpy 1, onnx 1, pickle 1 (runs code when loaded), safetensors 1, torch-zip 1 (runs code when loaded), zip 1" in line
    assert build(svc, tmp_path / "again.bundle.tar", offline=True).path.read_bytes() == bundle.read_bytes()


def test_no_pickle_refuses_a_pickle_by_its_content_whatever_its_name(tmp_path):
    svc = project(tmp_path, {"model.safetensors": pickle.dumps([1, 2], protocol=3)})
    out = tmp_path / "b.bundle.tar"
    with pytest.raises(UsageError, match=r"clf:latest: model.safetensors is pickle by its content: it runs code when loaded"):
        build(svc, out, offline=True, no_pickle=True)
    assert not out.exists()
    res = run_cli("build", str(svc), "--offline", "--no-pickle", "-o", str(out))
    assert res.code == 2 and "model.safetensors is pickle by its content" in res.stderr and not out.exists()
    assert build(svc, out, offline=True).path.is_file()  # without the setting: built, and the format says pickle


def test_a_manifest_naming_an_unknown_format_is_refused(tmp_path):
    svc = project(tmp_path, {"model.safetensors": safetensors_bytes()})
    bundle = build(svc, tmp_path / "b.bundle.tar", offline=True).path
    from bundler.bundle.archive import manifest_bytes

    raw = manifest_bytes(bundle).replace(b'"format": "safetensors"', b'"format": "../../evil"')
    with pytest.raises(UsageError, match="unknown format"):
        loads(raw, "bundle.yaml")
    older = manifest_bytes(bundle).replace(b'"schema": 7', b'"schema": 6')
    with pytest.raises(UsageError, match="format"):
        loads(older, "bundle.yaml")  # a schema 6 manifest has no format field
