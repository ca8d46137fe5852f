"""`bundler pull --service NAME | --model ID`: only what one service (and its dependencies) needs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bundler.ops.build import build

from .conftest import run_cli

SERVICES = '''import bundler


@bundler.service
class Reranker:
    model = bundler.HuggingFaceModel("acme/rerank-tiny", exclude="*.bin")


@bundler.service
class Embedder:
    model = bundler.HuggingFaceModel("acme/embed-small", revision="v1.0")


@bundler.service
class Search:
    reranker = bundler.depends(Reranker)
'''


def bundle(tmp_path: Path) -> Path:
    d = tmp_path / "p"
    d.mkdir()
    (d / "service.py").write_text(SERVICES)
    return build(f"{d / 'service.py'}:Search", output=tmp_path / "s.bundle.tar").path


def cached_repos() -> list[str]:
    cache = Path(os.environ["HF_HUB_CACHE"])
    return sorted(p.name for p in cache.glob("models--*") if any((p / "blobs").glob("*")))


def test_pull_service_fetches_its_models_and_its_dependencies_only(hub, tmp_path):
    b = bundle(tmp_path)
    res = run_cli("pull", str(b), "--to", str(tmp_path / "search"), "--service", "Search", "--json")
    assert res.code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["services"] == ["Reranker", "Search"]
    assert cached_repos() == ["models--acme--rerank-tiny"]  # the embedder's files were not fetched
    res = run_cli("run", str(tmp_path / "search"), "--check")
    assert res.code == 0, res.stderr  # the entry service has everything it needs


def test_a_service_the_pull_left_out_is_not_runnable_and_says_so(hub, tmp_path):
    b = bundle(tmp_path)
    res = run_cli("pull", str(b), "--to", str(tmp_path / "emb"), "--model", "acme/embed-small")
    assert res.code == 0, res.stderr
    assert "runnable services: Embedder" in res.stderr
    assert cached_repos() == ["models--acme--embed-small"]
    res = run_cli("run", str(tmp_path / "emb"), "--check")
    assert res.code == 2 and "service `Search` can't run here" in res.stderr and "without --service/--model" in res.stderr
    assert run_cli("run", str(tmp_path / "emb"), "--check", "--no-import").code == 0  # what is here is intact
    res = run_cli("pull", str(tmp_path / "emb"), "--json")  # the rest, in place
    assert res.code == 0 and json.loads(res.stdout)["services"] == ["Reranker", "Embedder", "Search"]
    assert run_cli("run", str(tmp_path / "emb"), "--check").code == 0


def test_an_unknown_service_or_model_is_exit_2_before_anything_is_written(hub, tmp_path):
    b = bundle(tmp_path)
    res = run_cli("pull", str(b), "--to", str(tmp_path / "x"), "--service", "Nope")
    assert res.code == 2 and "services: Reranker, Embedder, Search" in res.stderr
    assert not (tmp_path / "x").exists()
    res = run_cli("pull", str(b), "--to", str(tmp_path / "x"), "--model", "nope")
    assert res.code == 2 and "no model of the bundle has that attribute or id" in res.stderr
