"""`bundler run DIR --check`: every pinned file checked before the import, from any directory."""

from __future__ import annotations

import os
from pathlib import Path

from bundler.ops.build import build
from bundler.hub.cache import _marker, _stamp
from bundler.ops.pull import pull

from .conftest import run_cli

SERVICE = '''
from pathlib import Path

import bundler

PROMPT = Path("prompt.txt").read_text()  # a relative path at import, as real services do
{extra}


@bundler.service
class Ranker:
    model = bundler.HuggingFaceModel("acme/rerank-tiny")
'''


def pulled(tmp_path: Path, extra: str = "") -> tuple[Path, object]:
    d = tmp_path / "proj"
    d.mkdir()
    (d / "service.py").write_text(SERVICE.format(extra=extra))
    (d / "prompt.txt").write_text("rank these\n")
    bundle = build(d / "service.py", output=tmp_path / "r.bundle.tar")
    pull(bundle.path, to=tmp_path / "deploy")
    return tmp_path / "deploy", bundle.manifest.pins[0]


def weights(pin) -> Path:
    entry = max(pin.files, key=lambda f: f.size)
    return Path(os.environ["HF_HUB_CACHE"]) / "models--acme--rerank-tiny" / "snapshots" / pin.commit / entry.path


def flip_a_byte_keeping_size_and_mtime(path: Path) -> None:
    real = path.resolve()
    st = real.stat()
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0xFF
    real.write_bytes(bytes(data))
    os.utime(real, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_run_check_works_from_any_directory(hub, tmp_path):
    deploy, pin = pulled(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    hub.stop()
    res = run_cli("run", str(deploy), "--check", cwd=elsewhere)
    assert res.code == 0, res.stderr
    assert f"model: {weights(pin).parent}" in res.stdout
    assert "ok: Ranker loaded" in res.stdout


def test_a_flipped_byte_in_the_cache_fails_the_check_before_the_import(hub, tmp_path):
    deploy, pin = pulled(tmp_path)
    assert run_cli("run", str(deploy), "--check").code == 0  # the stamps of a good start
    flip_a_byte_keeping_size_and_mtime(weights(pin))
    res = run_cli("run", str(deploy), "--check")
    assert res.code == 1 and "Traceback" not in res.stderr
    assert f"model acme/rerank-tiny ({pin.commit}): {weights(pin).name} was modified" in res.stderr
    assert "run `bundler pull` for this bundle again" in res.stderr
    assert "ok:" not in res.stdout
    pull(tmp_path / "r.bundle.tar", to=deploy)  # the way out the hint names
    assert run_cli("run", str(deploy), "--check").code == 0


def test_verify_rehashes_even_a_file_whose_stamp_holds(hub, tmp_path):
    deploy, pin = pulled(tmp_path)
    path = weights(pin)
    entry = max(pin.files, key=lambda f: f.size)
    flip_a_byte_keeping_size_and_mtime(path)
    _marker(path.resolve()).write_text(_stamp(path.resolve().stat(), entry))  # a stamp that lies
    assert run_cli("run", str(deploy), "--check").code == 0  # the fast default trusts the stamp
    res = run_cli("run", str(deploy), "--check", "--verify")
    assert res.code == 1 and f"{path.name} was modified" in res.stderr


def test_no_import_checks_the_models_of_a_service_that_cannot_be_imported_here(hub, tmp_path):
    deploy, pin = pulled(tmp_path, extra="import torch_is_not_on_this_host  # noqa")
    res = run_cli("run", str(deploy), "--check", "--no-import")
    assert res.code == 0, res.stderr
    assert f"acme/rerank-tiny: {weights(pin).parent}" in res.stdout
    assert "ok: 1 model(s)" in res.stdout and "(not imported)" in res.stdout
    assert run_cli("run", str(deploy), "--check").code == 2  # the import itself fails
    os.unlink(weights(pin))
    res = run_cli("run", str(deploy), "--check", "--no-import")
    assert res.code == 1 and f"{weights(pin).name} is missing" in res.stderr


AUDITED = '''
import os

import bundler
from huggingface_hub import hf_hub_download


@bundler.service
class Ranker:
    model = bundler.HuggingFaceModel("acme/rerank-tiny")

    def __init__(self) -> None:
        self.path = self.model.resolve()
        {extra}
'''


def audited_bundle(tmp_path: Path, extra: str) -> Path:
    d = tmp_path / "audited"
    d.mkdir()
    (d / "service.py").write_text(AUDITED.format(extra=extra))
    bundle = build(d / "service.py", output=tmp_path / "a.bundle.tar")
    pull(bundle.path, to=tmp_path / "audited-deploy")
    return tmp_path / "audited-deploy"


def test_audit_catches_a_load_no_scan_can_see_with_its_call_site(hub, tmp_path):
    # the repository comes from the environment at serve time: no static scan knows it
    deploy = audited_bundle(tmp_path, 'self.extra = hf_hub_download(os.environ.get("SIDE", "acme/embed-small"), "config.json")')
    res = run_cli("run", str(deploy), "--check", "--audit")
    assert res.code == 1 and "Traceback" not in res.stderr
    assert "1 Hub look-up(s) outside the bundle's pins" in res.stderr
    assert "service.py:14: hf_hub_download(acme/embed-small config.json at main)" in res.stderr
    assert "the service failed to start" in res.stderr  # offline, the unpinned file is not there
    assert "hub: service.py:14: hf_hub_download(acme/embed-small config.json at main)" in res.stdout


def test_audit_passes_a_service_whose_loads_are_all_pinned(hub, tmp_path):
    deploy = audited_bundle(tmp_path, "pass")
    res = run_cli("run", str(deploy), "--check", "--audit")
    assert res.code == 0, res.stderr
    assert "audited: 0 Hub look-up(s), all pinned" in res.stdout
