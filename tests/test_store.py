"""The local model store: import, list, show, delete, latest, create(), concurrency."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

import bundler.models
from bundler.errors import UsageError
from bundler.io.hashing import blake3_bytes
from bundler.stores.local import Store

from .conftest import run_cli


def model_dir(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def test_import_copies_and_hashes_every_file(tmp_path):
    src = model_dir(tmp_path / "m", {"config.json": b"{}", "sub/weights.bin": b"\x00" * 1000})
    model = Store().import_dir("clf", src)
    assert [f.to_json() for f in model.files] == [
        {"path": "config.json", "size": 2, "hash": blake3_bytes(b"{}")},
        {"path": "sub/weights.bin", "size": 1000, "hash": blake3_bytes(b"\x00" * 1000)},
    ]
    assert (model.path / "sub/weights.bin").read_bytes() == b"\x00" * 1000
    assert model.path == Path(os.environ["BUNDLER_HOME"]) / "models" / "clf" / model.version / "files"
    assert not any((Path(os.environ["BUNDLER_HOME"]) / "tmp").iterdir())


def test_same_files_give_the_same_version(tmp_path):
    a = model_dir(tmp_path / "a", {"w.bin": b"same"})
    b = model_dir(tmp_path / "b", {"w.bin": b"same"})
    c = model_dir(tmp_path / "c", {"w.bin": b"other"})
    store = Store()
    assert store.import_dir("m", a).version == store.import_dir("m", b).version
    assert store.import_dir("m", c).version != store.import_dir("m", a).version
    assert len(store.list()) == 2


def test_latest_is_the_most_recently_imported(tmp_path):
    store = Store()
    v1 = store.import_dir("m", model_dir(tmp_path / "1", {"w": b"1"})).version
    v2 = store.import_dir("m", model_dir(tmp_path / "2", {"w": b"2"})).version
    assert store.get("m").version == v2
    assert store.get("m:latest").version == v2
    store.import_dir("m", model_dir(tmp_path / "1b", {"w": b"1"}))  # re-import of v1 makes it latest
    assert store.get("m:latest").version == v1
    store.delete(f"m:{v1}")
    assert store.get("m:latest").version == v2
    store.delete("m")
    with pytest.raises(UsageError, match="not in the local store"):
        store.get("m")
    assert not (Path(os.environ["BUNDLER_HOME"]) / "models" / "m").exists()


def test_explicit_version_with_other_content_is_refused(tmp_path):
    store = Store()
    store.import_dir("m:v1", model_dir(tmp_path / "1", {"w": b"1"}))
    assert store.import_dir("m:v1", model_dir(tmp_path / "1b", {"w": b"1"})).version == "v1"
    with pytest.raises(UsageError, match="already exists in the store with other content"):
        store.import_dir("m:v1", model_dir(tmp_path / "2", {"w": b"2"}))
    assert (store.get("m:v1").path / "w").read_bytes() == b"1"


@pytest.mark.parametrize("tag", ["Bad Name", "../evil", "m:../x", ":v1", "m:bad version"])
def test_invalid_tags_are_usage_errors(tmp_path, tag):
    with pytest.raises(UsageError, match="invalid model"):
        Store().import_dir(tag, model_dir(tmp_path / "m", {"w": b"1"}))


def test_create_imports_on_success(tmp_path):
    with bundler.models.create("trained") as new:
        (new.path / "weights.bin").write_bytes(b"trained weights")
        (new.path / "cfg").mkdir()
        (new.path / "cfg" / "config.json").write_text("{}")
    assert new.model is not None
    stored = Store().get("trained:latest")
    assert stored.version == new.model.version
    assert sorted(f.path for f in stored.files) == ["cfg/config.json", "weights.bin"]
    assert not new.path.exists()  # moved, not copied


def test_create_leaves_nothing_on_an_exception():
    with pytest.raises(RuntimeError):
        with bundler.models.create("broken") as new:
            (new.path / "weights.bin").write_bytes(b"partial")
            raise RuntimeError("training diverged")
    assert Store().list() == []
    assert not new.path.exists()
    assert not any((Path(os.environ["BUNDLER_HOME"]) / "tmp").iterdir())


def _import_worker(args: tuple[str, str, str]) -> str:
    home, tag, src = args
    os.environ["BUNDLER_HOME"] = home
    return Store().import_dir(tag, Path(src)).version


def test_concurrent_imports_end_with_one_complete_copy(tmp_path):
    src = model_dir(tmp_path / "m", {f"shard-{i}.bin": os.urandom(200_000) for i in range(8)})
    home = os.environ["BUNDLER_HOME"]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        versions = pool.map(_import_worker, [(home, "shared", str(src))] * 8)
    assert len(set(versions)) == 1
    (model,) = Store().list()
    for f in model.files:
        assert (model.path / f.path).read_bytes() == (src / f.path).read_bytes()
    assert not any((Path(home) / "tmp").iterdir())


def test_models_cli_round_trip(tmp_path):
    src = model_dir(tmp_path / "m", {"w.bin": b"abc"})
    res = run_cli("models", "import", "clf:v1", str(src))
    assert res.code == 0, res.stderr
    assert res.stdout.strip() == "imported clf:v1 (1 files, 3 B)"
    res = run_cli("models", "list", "--json")
    listed = json.loads(res.stdout)
    assert [(m["name"], m["version"], m["size"]) for m in listed] == [("clf", "v1", 3)]
    res = run_cli("models", "list")
    assert "clf:v1" in res.stdout and "latest" in res.stdout
    res = run_cli("models", "show", "clf")
    assert json.loads(res.stdout)["files"] == [{"path": "w.bin", "size": 3, "hash": blake3_bytes(b"abc")}]
    res = run_cli("models", "delete", "clf:v1")
    assert res.code == 0 and res.stdout.strip() == "deleted clf:v1"
    res = run_cli("models", "show", "clf:v1")
    assert res.code == 2 and "not in the local store" in res.stderr


def test_import_of_a_missing_directory_is_a_usage_error(tmp_path):
    res = run_cli("models", "import", "clf", str(tmp_path / "nope"))
    assert res.code == 2 and "not a directory" in res.stderr
    assert Store().list() == []


def test_store_model_resolves_from_the_store(tmp_path):
    stored = Store().import_dir("clf", model_dir(tmp_path / "m", {"w.bin": b"abc"}))
    assert bundler.StoreModel("clf:latest").resolve() == str(stored.path)
