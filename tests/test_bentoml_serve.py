"""Serving with BentoML itself: a real `bentoml serve` process on loopback loads exactly the pins.

BentoML lives in its own virtual environment (`.venv-bentoml`, made by the README's test command,
or the interpreter named by BUNDLER_TEST_BENTOML_PYTHON) so the main suite stays light. These
tests never skip: without that environment they fail, saying how to make it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from bundler.ops.build import build
from bundler.ops.lock import lock
from bundler.ops.pull import pull

from .conftest import ROOT

SERVICE = '''
import os

import bentoml


@bentoml.service
class Tiny:
    model = bentoml.models.HuggingFaceModel("acme/rerank-tiny")
    {extra}

    @bentoml.api
    def where(self) -> dict:
        out = {{"model": str(self.model), "files": sorted(os.listdir(self.model))}}
        {extra_api}
        return out
'''


def bentoml_python() -> Path:
    explicit = os.environ.get("BUNDLER_TEST_BENTOML_PYTHON")
    py = Path(explicit) if explicit else ROOT / ".venv-bentoml" / "bin" / "python"
    if not py.is_file():
        pytest.fail(
            f"no Python with bentoml at {py}: run the README's test command, or "
            "uv venv -p python3 .venv-bentoml && uv pip install --python .venv-bentoml/bin/python -e . bentoml"
        )
    return py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(target: str, cwd: Path, env: dict[str, str]):
    """`bentoml serve TARGET` as a user runs it; yields the base URL once it answers /readyz."""
    port = free_port()
    py = bentoml_python()
    log = cwd / f"serve-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(py), "-m", "bentoml", "serve", target, "--port", str(port), "--host", "127.0.0.1"],
            cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"bentoml serve exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"bentoml serve not ready in 90 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def call(url: str, api: str) -> dict:
    req = urllib.request.Request(url + "/" + api, data=b"{}", headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def deploy_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "HF_HUB_CACHE": str(tmp_path / "hf-home" / "hub"),
        "BENTOML_HOME": str(tmp_path / "deploy-bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        **extra,
    }


def make(tmp_path: Path, name: str, extra: str = "", extra_api: str = "") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "service.py").write_text(SERVICE.format(extra=extra, extra_api=extra_api))
    return d / "service.py"


def test_bentoml_serve_of_a_pulled_bundle_loads_the_pin_with_no_hub(hub, tmp_path):
    svc = make(tmp_path, "proj")
    bundle = build(svc, output=tmp_path / "tiny.bundle.tar")
    pinned = bundle.manifest.pins[0].commit
    pull(bundle.path, to=tmp_path / "deploy")
    hub.stop()  # no Hub at all on the deploy host
    env = deploy_env(tmp_path, HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_OFFLINE="1")
    with serving(str(tmp_path / "deploy"), tmp_path, env) as url:
        got = call(url, "where")
    assert got["model"].endswith(f"models--acme--rerank-tiny/snapshots/{pinned}")
    assert got["files"] == sorted(f.path for f in bundle.manifest.pins[0].files)


def test_pins_hold_online_after_main_moved_and_two_bundles_keep_their_own_commit(hub, tmp_path):
    svc = make(tmp_path, "proj")
    first = build(svc, output=tmp_path / "a.bundle.tar")
    a = first.manifest.pins[0].commit
    pull(first.path, to=tmp_path / "deploy-a")
    b = hub.commit("acme/rerank-tiny", {"config.json": b'{"model_type": "bert", "moved": true}\n'})  # main moves on
    lock(svc, upgrade=True)
    second = build(svc, output=tmp_path / "b.bundle.tar")
    assert second.manifest.pins[0].commit == b != a
    pull(second.path, to=tmp_path / "deploy-b")  # must not change what deploy-a serves
    env = deploy_env(tmp_path)  # online: the Hub is up and its main is b
    with serving(str(tmp_path / "deploy-a"), tmp_path, env) as url:
        assert call(url, "where")["model"].endswith(f"/snapshots/{a}")
    with serving(str(tmp_path / "deploy-b"), tmp_path, env) as url:
        assert call(url, "where")["model"].endswith(f"/snapshots/{b}")
    # online, BentoML asks the endpoint bento.yaml records: the one the pull used (here the test's
    # Hub), never huggingface.co behind the host's back
    logs = "".join(log.read_text() for log in tmp_path.glob("serve-*.log"))
    assert logs and "huggingface.co" not in logs, logs[-2000:]


def test_bentoml_store_models_are_pinned_embedded_and_served_from_the_bundle(hub, tmp_path, monkeypatch):
    # a model in the build host's BentoML store, in BentoML's own layout
    home = Path(os.environ["BENTOML_HOME"])
    vdir = home / "models" / "intent-head" / "v2aaaa"
    vdir.mkdir(parents=True)
    (vdir / "model.yaml").write_text(
        "name: intent-head\nversion: v2aaaa\nmodule: ''\nlabels: {}\noptions: {}\n"
        "metadata: {}\ncontext:\n  framework_name: ''\n  framework_versions: {}\n  bentoml_version: 1.4.0\n"
        "  python_version: 3.11.7\nsignatures: {}\napi_version: v1\ncreation_time: '2026-01-01T00:00:00+00:00'\n"
    )
    (vdir / "saved_model.pkl").write_bytes(b"head weights v2")
    (home / "models" / "intent-head" / "latest").write_text("v2aaaa")
    svc = make(
        tmp_path, "proj",
        extra='head = bentoml.models.BentoModel("intent-head:latest")',
        extra_api='out["head"] = open(self.head.path_of("saved_model.pkl")).read()',
    )
    bundle = build(svc, output=tmp_path / "t.bundle.tar")
    (pin,) = [p for p in bundle.manifest.pins if p.source == "bentoml-store"]
    assert pin.version == "v2aaaa" and sorted(f.path for f in pin.files) == ["model.yaml", "saved_model.pkl"]
    env = deploy_env(tmp_path, HF_HUB_OFFLINE="1")
    monkeypatch.setenv("BENTOML_HOME", env["BENTOML_HOME"])  # the deploy host's own (empty) store
    result = pull(bundle.path, to=tmp_path / "deploy")
    assert result.store_imported == ["bentoml:intent-head:v2aaaa"]
    landed = tmp_path / "deploy-bentoml" / "models" / "intent-head" / "v2aaaa"
    assert (landed / "saved_model.pkl").read_bytes() == b"head weights v2"
    assert landed.stat().st_mode & 0o777 == 0o755  # the serving user may be another one
    with serving(str(tmp_path / "deploy"), tmp_path, env) as url:
        assert call(url, "where")["head"] == "head weights v2"


def test_the_shipped_example_runs_under_real_bentoml(hub, tmp_path):
    from bundler.stores.local import Store

    Store().import_dir("intent-clf", ROOT / "examples" / "search" / "models" / "intent-clf")
    example = tmp_path / "search"
    shutil.copytree(ROOT / "examples" / "search", example, ignore=shutil.ignore_patterns("dist", "__pycache__"))
    bundle = build(example / "service.py", offline=True, output=tmp_path / "search.bundle.tar")
    pull(bundle.path, to=tmp_path / "deploy")
    hub.stop()
    env = deploy_env(tmp_path, HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_OFFLINE="1", BUNDLER_HOME=os.environ["BUNDLER_HOME"])
    with serving(str(tmp_path / "deploy"), tmp_path, env) as url:
        got = call(url, "models")
    embed = next(p for p in bundle.manifest.pins if p.id == "acme/embed-small")
    assert got["embedder"].endswith(f"/snapshots/{embed.commit}")
    assert got["head"] == str(tmp_path / "deploy" / "store" / "intent-clf" / "09d347638c5c38fa")


def test_bundler_run_check_loads_a_bentoml_service_with_its_pins_and_reports_init_errors(hub, tmp_path):
    svc = make(tmp_path, "proj")
    bundle = build(svc, output=tmp_path / "tiny.bundle.tar")
    pull(bundle.path, to=tmp_path / "deploy")
    py = bentoml_python()
    env = {**os.environ, **deploy_env(tmp_path, HF_ENDPOINT="http://127.0.0.1:9")}
    res = subprocess.run([str(py), "-m", "bundler", "run", str(tmp_path / "deploy"), "--check"], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert f"model: {tmp_path}/hf-home/hub/models--acme--rerank-tiny/snapshots/{bundle.manifest.pins[0].commit}" in res.stdout
    # BentoML's own descriptor loads through huggingface_hub at the pinned commit: the audit sees it, pinned
    res = subprocess.run([str(py), "-m", "bundler", "run", str(tmp_path / "deploy"), "--check", "--audit"], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert f"acme/rerank-tiny at {bundle.manifest.pins[0].commit}" in res.stdout and "all pinned" in res.stdout
    broken = make(tmp_path, "broken", extra="def __init__(self):\n        import torch_not_installed  # noqa")
    bundle = build(broken, output=tmp_path / "broken.bundle.tar")
    pull(bundle.path, to=tmp_path / "deploy-broken")
    res = subprocess.run([str(py), "-m", "bundler", "run", str(tmp_path / "deploy-broken"), "--check"], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "Tiny() failed: ModuleNotFoundError: No module named 'torch_not_installed'" in res.stderr


LLM_SERVICE = '''
import bentoml
import pydantic

# Official services name their requirements relative to the service's directory at import.
image = bentoml.images.Image(python_version="3.11").requirements_file("requirements.txt")


class LLMArgs(pydantic.BaseModel):
    model_id: str = "acme/rerank-tiny"
    max_model_len: int = 2048
    tool_parser: str | None = None
    cli_args: list[str] = []


args = bentoml.use_arguments(LLMArgs)


@bentoml.service(image=image)
class LLM:
    model = bentoml.models.HuggingFaceModel(args.model_id)

    @bentoml.api
    def engine(self) -> dict:
        return {"args": args.model_dump(), "model": str(self.model)}
'''


def test_bentoml_serve_hands_every_build_argument_to_the_service(hub, tmp_path):
    d = tmp_path / "llm"
    d.mkdir()
    (d / "service.py").write_text(LLM_SERVICE)
    (d / "requirements.txt").write_text("# the image's packages would be listed here\n")
    (d / "pyproject.toml").write_text('[project]\nname = "llm"\n\n[tool.bentoml.build.args]\n'
                                      'max_model_len = 8192\ntool_parser = "hermes"\ncli_args = ["--enforce-eager"]\n')
    bundle = build(d / "service.py", output=tmp_path / "llm.bundle.tar", arguments={"max_model_len": "4096"})
    pull(bundle.path, to=tmp_path / "deploy")
    hub.stop()
    env = deploy_env(tmp_path, HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_OFFLINE="1")
    with serving(str(tmp_path / "deploy"), tmp_path, env) as url:
        got = call(url, "engine")
    assert got["args"] == {"model_id": "acme/rerank-tiny", "max_model_len": 4096, "tool_parser": "hermes",
                           "cli_args": ["--enforce-eager"]}
    assert got["model"].endswith(f"models--acme--rerank-tiny/snapshots/{bundle.manifest.pins[0].commit}")
    # the same bundle checked by `bundler run` from an unrelated directory: the import finds
    # requirements.txt as `bentoml serve DIR` does
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = subprocess.run([str(bentoml_python()), "-m", "bundler", "run", str(tmp_path / "deploy"), "--check"],
                         env={**os.environ, **env}, cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "model: " in res.stdout
