"""bundle.yaml read back strictly: a hostile manifest is one clear error, never a traceback."""

from __future__ import annotations

import json

import pytest

from bundler.errors import UsageError
from bundler.bundle.manifest import loads


def manifest(**extra) -> dict:
    return {"schema": 4, "name": "n", "version": "v", "models": [], "sources": [], **extra}


def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("field", ["arguments", "resources", "undeclared"])
def test_values_nested_600_deep_are_one_error(field):
    if field == "arguments":
        data = manifest(arguments={"deep": nested(600)})
    else:
        service = {"name": "S", "class": "S", "module": "svc", "file": "svc.py", "models": [],
                   field: nested(600) if field == "resources" else [nested(600)]}
        data = manifest(services=[service])
    with pytest.raises(UsageError, match="nested more than 32 deep"):
        loads(json.dumps(data).encode(), "bundle.yaml")


def test_an_integer_key_beside_string_keys_is_one_error():
    raw = b"schema: 4\nname: n\nversion: v\nmodels: []\nsources: []\narguments:\n  a: 1\n  1: 2\n"
    with pytest.raises(UsageError, match="has a key 1 that is not a string"):
        loads(raw, "bundle.yaml")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(value):
    raw = json.dumps(manifest(arguments={"t": 1})).replace('"t": 1', f'"t": {value}').encode()
    with pytest.raises(UsageError):
        loads(raw, "bundle.yaml")


def test_argument_origins_must_name_recorded_arguments_and_need_schema_4():
    with pytest.raises(UsageError, match="unknown field `ghost`"):
        loads(json.dumps(manifest(arguments={"a": 1}, argument_origins={"ghost": "--arg"})).encode(), "bundle.yaml")
    old = manifest(arguments={"a": 1}, argument_origins={"a": "--arg"}, schema=3)
    with pytest.raises(UsageError, match="argument_origins needs manifest schema 4"):
        loads(json.dumps(old).encode(), "bundle.yaml")
    m = loads(json.dumps(manifest(arguments={"a": 1, "b": 2}, argument_origins={"a": "--arg", "b": "default"})).encode(), "b")
    assert m.given_arguments == {"a": 1}


def test_a_bentoml_model_version_must_be_concrete_and_lowercase():
    model = {"source": "bentoml-store", "id": "clf:latest", "version": "LATEST", "path": "models/clf/LATEST",
             "files": [{"path": "w.bin", "size": 1, "hash": "blake3:" + "0" * 64}]}
    with pytest.raises(UsageError, match="'LATEST' is not a concrete lowercase version"):
        loads(json.dumps(manifest(models=[model])).encode(), "bundle.yaml")


@pytest.mark.parametrize("source, version", [("store", "../x"), ("bentoml-store", "a/b")])
def test_a_store_model_with_an_unsafe_version_names_the_manifest(source, version):
    model = {"source": source, "id": "clf", "version": version, "files": [{"path": "w.bin", "size": 1, "hash": "blake3:" + "0" * 64}]}
    with pytest.raises(UsageError) as e:
        loads(json.dumps(manifest(models=[model])).encode(), "bundle.yaml")
    assert e.value.message.startswith("bundle.yaml: the manifest is malformed or unsafe: ")
    assert repr(version) in e.value.message


def test_a_lock_with_an_unsafe_store_version_names_the_lock_and_the_entry():
    from bundler.ops.lock import loads as lock_loads

    text = 'version = 1\n[[model]]\nsource = "store"\nid = "clf"\nversion = "../x"\nfiles = []\n'
    with pytest.raises(UsageError, match=r"^bundler.lock: model entry 1 is malformed \(ValueError: invalid model version '../x'\)"):
        lock_loads(text, "bundler.lock")
