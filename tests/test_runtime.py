"""The runtime library service authors import: light, lazy, honest identities."""

from __future__ import annotations

import subprocess
import sys

import pytest

import bundler
from bundler import HuggingFaceModel, StoreModel, depends, service
from bundler.errors import UsageError


def test_import_bundler_stays_light():
    code = (
        "import sys, bundler, bundler.models\n"
        "heavy = [m for m in ('huggingface_hub', 'yaml', 'blake3', 'rich', 'typer') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_descriptor_identity_and_no_io():
    m = HuggingFaceModel("acme/embed", revision="main", include="*.json")
    assert m.to_info() == {
        "kind": "huggingface",
        "id": "acme/embed",
        "revision": "main",
        "include": ["*.json"],
        "exclude": None,
    }
    assert StoreModel("clf:1").to_info() == {"kind": "store", "id": "clf:1"}
    assert m == HuggingFaceModel("acme/embed", "main", ["*.json"])
    assert repr(StoreModel("clf:1")) == "StoreModel(id='clf:1')"


def test_models_module_exports_the_same_classes():
    import bundler.models

    assert bundler.models.HuggingFaceModel is bundler.HuggingFaceModel
    assert bundler.models.StoreModel is bundler.StoreModel


@pytest.mark.parametrize("bad", ["", "  ", None, 3])
def test_bad_model_id_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="repository id"):
        HuggingFaceModel(bad)


def test_bad_patterns_are_a_usage_error():
    with pytest.raises(UsageError, match="include must be"):
        HuggingFaceModel("acme/x", include=[1])


def test_service_decorator_bare_and_called():
    @service
    class A:
        m = HuggingFaceModel("acme/a")

    @bundler.service(name="bee", resources={"gpu": 1}, traffic={"timeout": 10})
    class B:
        pass

    assert A.__bundler_service__.name == "A"
    assert B.__bundler_service__.name == "bee"
    assert B.__bundler_service__.resources == {"gpu": 1}
    assert A.m.attribute == "m"


def test_depends_creates_one_instance_lazily():
    created = []

    class Other:
        def __init__(self):
            created.append(self)

    class Svc:
        other = depends(Other)

    s = Svc()
    assert created == []
    assert s.other is s.other
    assert len(created) == 1
    assert isinstance(Svc.other, bundler.services.Dependency)


RESOLVE = """
import sys
from bundler import HuggingFaceModel
m = HuggingFaceModel("acme/embed-small", revision=sys.argv[1], include=["*.json"])
p = m.resolve()
assert m.resolve() == p
print(p)
"""


def test_huggingface_resolve_downloads_then_works_offline(hub, tmp_path):
    import os
    from pathlib import Path

    env = {**os.environ}
    out = subprocess.run([sys.executable, "-c", RESOLVE, "main"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "tokenizer.json"]
    assert path.parent.parent.name == "models--acme--embed-small"
    assert path.is_relative_to(Path(os.environ["HF_HUB_CACHE"]))
    # Pinned to the commit: served from the cache with no request at all.
    commit = hub.repos["acme/embed-small"].refs["main"]
    hub.requests.clear()
    out = subprocess.run([sys.executable, "-c", RESOLVE, commit], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(path)
    assert hub.requests == []
