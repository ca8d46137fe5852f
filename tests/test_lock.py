"""Pinning and bundler.lock, against the fake Hub through the real huggingface_hub client."""

from __future__ import annotations

import hashlib
import time
import tomllib
from pathlib import Path

import pytest

from bundler.errors import ProblemFound, UsageError
from bundler.hub.api import HubUnreachable
from bundler.ops.lock import lock

from .conftest import FIXTURES, run_cli
from .fakehub import GOOD_TOKEN, blob_id

HUB = FIXTURES / "hub"
HEADER = "from bundler import HuggingFaceModel, StoreModel, service\n\n\n@service\nclass Svc:\n"


def write_service(dir: Path, *attrs: str) -> Path:
    dir.mkdir(parents=True, exist_ok=True)
    path = dir / "service.py"
    path.write_text(HEADER + "".join(f"    {a}\n" for a in attrs))
    return path


def entries(lock_file: Path) -> dict[str, dict]:
    data = tomllib.loads(lock_file.read_text())
    return {m["id"] + "@" + str(m.get("revision")): m for m in data.get("model", [])}


EMBED_V1 = 'embed = HuggingFaceModel("acme/embed-small", revision="v1.0", include=["*.json", "*.safetensors"])'
RERANK = 'rerank = HuggingFaceModel("acme/rerank-tiny", revision="main", exclude="*.bin")'


def test_lock_matches_golden_file(hub, tmp_path):
    svc = write_service(tmp_path / "svc", EMBED_V1, RERANK)
    result = lock(svc)
    assert result.written
    assert (tmp_path / "svc" / "bundler.lock").read_text() == (FIXTURES / "lock" / "golden.lock").read_text()


def test_lock_records_hub_hashes(hub, tmp_path):
    svc = write_service(tmp_path, EMBED_V1)
    lock(svc)
    files = {f["path"]: f for f in entries(tmp_path / "bundler.lock")["acme/embed-small@v1.0"]["files"]}
    assert sorted(files) == ["config.json", "model.safetensors", "tokenizer.json"]
    weights = (HUB / "acme/embed-small/1/model.safetensors").read_bytes()
    config = (HUB / "acme/embed-small/1/config.json").read_bytes()
    assert files["model.safetensors"] == {"path": "model.safetensors", "size": len(weights), "hash": "sha256:" + hashlib.sha256(weights).hexdigest()}
    # a file the Hub pins only by its git blob id (SHA-1) also gets its sha256, fetched at lock
    assert files["config.json"] == {"path": "config.json", "size": len(config), "hash": "git-sha1:" + blob_id(config),
                                    "sha256": hashlib.sha256(config).hexdigest()}


def test_include_and_exclude_select_like_huggingface_hub(hub, tmp_path):
    svc = write_service(
        tmp_path,
        'a = HuggingFaceModel("acme/embed-small", include=["*.json", "*.safetensors"])',
        'b = HuggingFaceModel("acme/embed-small", exclude=["*.md", "onnx/*"])',
        'c = HuggingFaceModel("acme/embed-small", include="onnx/*")',
        'd = HuggingFaceModel("acme/rerank-tiny", exclude="*.bin")',
    )
    lock(svc)
    data = tomllib.loads((tmp_path / "bundler.lock").read_text())["model"]
    got = {(m["id"], tuple(m.get("include", [])), tuple(m.get("exclude", []))): [f["path"] for f in m["files"]] for m in data}
    assert got == {
        ("acme/embed-small", ("*.json", "*.safetensors"), ()): ["config.json", "model.safetensors", "tokenizer.json"],
        ("acme/embed-small", (), ("*.md", "onnx/*")): ["config.json", "model.safetensors", "tokenizer.json"],
        ("acme/embed-small", ("onnx/*",), ()): ["onnx/model.onnx"],
        ("acme/rerank-tiny", (), ("*.bin",)): ["config.json", "model.safetensors"],
    }


def test_relock_rewrites_nothing_and_needs_no_network(hub, tmp_path):
    svc = write_service(tmp_path, EMBED_V1, RERANK)
    lock(svc)
    before = (tmp_path / "bundler.lock").read_bytes()
    mtime = (tmp_path / "bundler.lock").stat().st_mtime_ns
    hub.requests.clear()
    res = run_cli("lock", str(svc))
    assert res.code == 0, res.stderr
    assert "unchanged (2 models, 2 kept)" in res.stdout
    assert (tmp_path / "bundler.lock").read_bytes() == before
    assert (tmp_path / "bundler.lock").stat().st_mtime_ns == mtime
    assert hub.requests == []


def test_lock_keeps_commit_when_main_moves_until_upgrade(hub, tmp_path):
    svc = write_service(tmp_path, RERANK)
    lock(svc)
    old = entries(tmp_path / "bundler.lock")["acme/rerank-tiny@main"]["commit"]
    new_sha = hub.commit("acme/rerank-tiny", {"config.json": b'{"model_type": "bert", "num_labels": 2}\n'})
    assert new_sha != old
    lock(svc)
    assert entries(tmp_path / "bundler.lock")["acme/rerank-tiny@main"]["commit"] == old
    res = run_cli("lock", str(svc), "--upgrade")
    assert res.code == 0, res.stderr
    assert f"upgraded acme/rerank-tiny@main: {old[:12]} -> {new_sha[:12]}" in res.stdout
    assert entries(tmp_path / "bundler.lock")["acme/rerank-tiny@main"]["commit"] == new_sha


def test_upgrade_model_moves_only_the_named_model(hub, tmp_path):
    svc = write_service(tmp_path, RERANK, 'embed = HuggingFaceModel("acme/embed-small", revision="main")')
    lock(svc)
    before = entries(tmp_path / "bundler.lock")
    hub.commit("acme/rerank-tiny", {"extra.json": b"{}"})
    hub.commit("acme/embed-small", {"extra.json": b"{}"})
    res = run_cli("lock", str(svc), "--upgrade-model", "acme/embed-small")
    assert res.code == 0, res.stderr
    after = entries(tmp_path / "bundler.lock")
    assert after["acme/rerank-tiny@main"] == before["acme/rerank-tiny@main"]
    assert after["acme/embed-small@main"]["commit"] == hub.repos["acme/embed-small"].refs["main"]
    assert "extra.json" in [f["path"] for f in after["acme/embed-small@main"]["files"]]


def test_new_descriptor_is_pinned_without_touching_the_others(hub, tmp_path):
    svc = write_service(tmp_path, RERANK)
    lock(svc)
    before = entries(tmp_path / "bundler.lock")
    hub.commit("acme/rerank-tiny", {"extra.json": b"{}"})  # main moved: must not be picked up
    write_service(tmp_path, RERANK, EMBED_V1)
    hub.requests.clear()
    result = lock(svc)
    assert [p.id for p in result.pinned] == ["acme/embed-small"]
    after = entries(tmp_path / "bundler.lock")
    assert after["acme/rerank-tiny@main"] == before["acme/rerank-tiny@main"]
    assert all("rerank-tiny" not in path for _, path in hub.requests)


def test_removed_descriptor_disappears_from_the_lock(hub, tmp_path):
    svc = write_service(tmp_path, RERANK, EMBED_V1)
    lock(svc)
    write_service(tmp_path, EMBED_V1)
    result = lock(svc)
    assert [p.id for p in result.removed] == ["acme/rerank-tiny"]
    assert list(entries(tmp_path / "bundler.lock")) == ["acme/embed-small@v1.0"]


def test_check_lists_stale_entries_and_exits_1(hub, tmp_path):
    svc = write_service(tmp_path, RERANK)
    lock(svc)
    write_service(tmp_path, 'rerank = HuggingFaceModel("acme/rerank-tiny", revision="main", exclude=["*.bin", "*.md"])')
    before = (tmp_path / "bundler.lock").read_bytes()
    hub.requests.clear()
    res = run_cli("lock", str(svc), "--check")
    assert res.code == 1
    assert "service.py:6: rerank (acme/rerank-tiny) has no fresh lock entry" in res.stderr
    assert "entry for acme/rerank-tiny@main matches no model in the service" in res.stderr
    assert (tmp_path / "bundler.lock").read_bytes() == before
    assert hub.requests == []
    # Re-locking re-pins the changed reference; then the check passes.
    lock(svc)
    res = run_cli("lock", str(svc), "--check")
    assert res.code == 0, res.stderr
    assert "fresh (1 models)" in res.stdout


def test_check_without_a_lock_file_is_stale(tmp_path):
    svc = write_service(tmp_path, RERANK)
    with pytest.raises(ProblemFound):
        from bundler.ops.lock import require_fresh

        require_fresh(lock(svc, check=True))
    assert not (tmp_path / "bundler.lock").exists()


@pytest.mark.parametrize(
    "attr, code, message, hint",
    [
        ('m = HuggingFaceModel("acme/nope")', 2, "repository `acme/nope` not found", "HF_TOKEN"),
        ('m = HuggingFaceModel("acme/embed-small", revision="v9")', 2, "revision `v9` not found in `acme/embed-small`", "branch, tag or full commit"),
        ('m = HuggingFaceModel("acme/gated-model")', 2, "`acme/gated-model` is gated", "HF_TOKEN"),
        ('m = HuggingFaceModel("acme/private-model")', 2, "repository `acme/private-model` not found", "HF_TOKEN"),
        ('m = HuggingFaceModel("acme/embed-small", include="*.gguf")', 2, "select no file", "include/exclude"),
    ],
)
def test_pin_errors_name_the_reference(hub, tmp_path, attr, code, message, hint):
    write_service(tmp_path, attr)
    res = run_cli("lock", "service.py", cwd=tmp_path)
    assert res.code == code
    first, second = res.stderr.splitlines()[:2]
    assert first.startswith("error: service.py:6: ")
    assert message in first
    assert second.startswith("hint: ") and hint in second
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "bundler.lock").exists()


def test_gated_and_private_repos_pin_with_a_token(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", GOOD_TOKEN)
    svc = write_service(tmp_path, 'g = HuggingFaceModel("acme/gated-model")', 'p = HuggingFaceModel("acme/private-model")')
    lock(svc)
    assert sorted(entries(tmp_path / "bundler.lock")) == ["acme/gated-model@None", "acme/private-model@None"]
    assert GOOD_TOKEN not in (tmp_path / "bundler.lock").read_text()


def test_unreachable_hub_says_offline_works_with_a_lock(tmp_path, monkeypatch):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    svc = write_service(tmp_path, RERANK)
    with pytest.raises(HubUnreachable) as info:
        lock(svc)
    assert info.value.exit_code == 1
    assert "can't reach the Hub" in info.value.message and "--offline" in info.value.hint


def test_offline_mode_uses_the_lock_and_refuses_new_pins(hub, tmp_path, monkeypatch):
    svc = write_service(tmp_path, RERANK)
    lock(svc)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.requests.clear()
    assert lock(svc).written is False
    write_service(tmp_path, RERANK, EMBED_V1)
    res = run_cli("lock", str(svc))
    assert res.code == 1
    assert "needs pinning but HF_HUB_OFFLINE is set" in res.stderr
    assert hub.requests == []


def test_newer_lock_version_is_refused(tmp_path):
    svc = write_service(tmp_path, RERANK)
    (tmp_path / "bundler.lock").write_text("version = 99\n")
    with pytest.raises(UsageError, match="format version 99 is newer"):
        lock(svc)


def test_malformed_lock_is_a_clear_error(tmp_path):
    svc = write_service(tmp_path, RERANK)
    (tmp_path / "bundler.lock").write_text("version = 1\n[[model]]\nsource = 'huggingface'\n")
    res = run_cli("lock", str(svc))
    assert res.code == 2
    assert "model entry 1 is malformed" in res.stderr
    (tmp_path / "bundler.lock").write_text("version = [\n")
    res = run_cli("lock", str(svc))
    assert res.code == 2 and "not valid TOML" in res.stderr and "Traceback" not in res.stderr


def test_store_models_are_pinned_to_a_version_until_upgrade(tmp_path):
    from bundler.stores.local import Store

    model_dir = tmp_path / "clf"
    model_dir.mkdir()
    (model_dir / "weights.bin").write_bytes(b"v1")
    first = Store().import_dir("intent-clf", model_dir)
    svc = write_service(tmp_path / "svc", 'head = StoreModel("intent-clf:latest")')
    lock(svc)
    entry = entries(tmp_path / "svc" / "bundler.lock")["intent-clf:latest@None"]
    assert entry["version"] == first.version
    assert entry["files"] == [{"path": "weights.bin", "size": 2, "hash": first.files[0].hash}]
    (model_dir / "weights.bin").write_bytes(b"v2")
    second = Store().import_dir("intent-clf", model_dir)
    lock(svc)
    assert entries(tmp_path / "svc" / "bundler.lock")["intent-clf:latest@None"]["version"] == first.version
    lock(svc, upgrade=["intent-clf"])
    assert entries(tmp_path / "svc" / "bundler.lock")["intent-clf:latest@None"]["version"] == second.version


def test_missing_store_model_is_an_error_with_location(tmp_path):
    write_service(tmp_path, 'head = StoreModel("nope:1")')
    res = run_cli("lock", "service.py", cwd=tmp_path)
    assert res.code == 2
    assert res.stderr.startswith("error: service.py:6: model `nope:1` is not in the local store")
    assert "bundler models import nope:1 DIR" in res.stderr


def test_lock_json_output(hub, tmp_path):
    svc = write_service(tmp_path, RERANK)
    res = run_cli("lock", str(svc), "--json")
    assert res.code == 0, res.stderr
    import json

    data = json.loads(res.stdout)
    assert data["written"] is True and data["stale"] == []
    assert data["models"] == [
        {"source": "huggingface", "id": "acme/rerank-tiny", "revision": "main", "pinned": hub.repos["acme/rerank-tiny"].refs["main"], "files": 2}
    ]


def test_lock_entries_that_would_become_unsafe_paths_are_refused(hub, tmp_path):
    svc = write_service(tmp_path, RERANK)
    lock(svc)
    text = (tmp_path / "bundler.lock").read_text()
    (tmp_path / "bundler.lock").write_text(text.replace('path = "config.json"', 'path = "../../../etc/passwd"'))
    res = run_cli("lock", str(svc))
    assert res.code == 2
    assert "model entry 1 is malformed (ValueError: unsafe path '../../../etc/passwd')" in res.stderr


def test_pins_list_every_file_from_the_paginated_tree_not_the_truncated_siblings(hub, tmp_path):
    files = {f"shards/part-{i:03d}.safetensors": bytes([i]) * (i + 1) for i in range(40)}
    hub.create_repo("acme/many-files")
    commit = hub.commit("acme/many-files", {"config.json": b"{}\n", **files})
    hub.siblings_limit = 10  # what the real Hub does to big repos' model_info
    hub.tree_page_size = 7  # several pages, followed through the Link header
    svc = write_service(tmp_path, 'm = HuggingFaceModel("acme/many-files")')
    lock(svc)
    entry = entries(tmp_path / "bundler.lock")["acme/many-files@None"]
    assert entry["commit"] == commit
    assert len(entry["files"]) == 41
    got = {f["path"]: f for f in entry["files"]}
    assert got["shards/part-039.safetensors"]["size"] == 40
    assert got["config.json"]["hash"] == "git-sha1:" + blob_id(b"{}\n")
    assert sum(1 for method, path in hub.requests if "/tree/" in path) >= 6


def test_a_rate_limited_hub_is_waited_out_as_retry_after_asks(hub, tmp_path):
    svc = write_service(tmp_path / "svc", EMBED_V1)
    hub.rate_limited = {"/api/models/acme/embed-small": 2}
    res = run_cli("lock", str(svc))
    assert res.code == 0, res.stderr
    assert res.stderr.count("the Hub answered HTTP 429 for `acme/embed-small`; retrying in 1 s") == 2
    assert hub.rate_limited["/api/models/acme/embed-small"] == 0
    assert entries(tmp_path / "svc" / "bundler.lock")["acme/embed-small@v1.0"]["commit"]


def test_a_rate_limit_longer_than_bundler_waits_says_so(hub, tmp_path):
    svc = write_service(tmp_path / "svc", EMBED_V1)
    hub.rate_limited = {"/api/models/acme/embed-small": 1}
    hub.retry_after = 3600
    res = run_cli("lock", str(svc))
    assert res.code == 1
    assert "the Hub rate-limits requests for `acme/embed-small` at revision `v1.0` (HTTP 429, retry after 3600 s)" in res.stderr
    assert "hint: wait and try again" in res.stderr and not (tmp_path / "svc" / "bundler.lock").exists()


@pytest.mark.parametrize("spelling", ["acme/old-embed", "ACME/Embed-Small"])
def test_a_repo_id_the_hub_knows_by_another_name_is_pinned_with_a_warning(hub, tmp_path, spelling):
    hub.renames = {"acme/old-embed": "acme/embed-small"}
    svc = write_service(tmp_path / "svc", f'embed = HuggingFaceModel("{spelling}", revision="v1.0")')
    res = run_cli("lock", str(svc))
    assert res.code == 0, res.stderr
    assert f"`{spelling}` is `acme/embed-small` on the Hub (renamed, or spelled differently); use `acme/embed-small`" in res.stderr
    assert "service.py:6:" in res.stderr
    canonical = write_service(tmp_path / "canonical", 'embed = HuggingFaceModel("acme/embed-small", revision="v1.0")')
    assert run_cli("lock", str(canonical)).code == 0
    ours = entries(tmp_path / "svc" / "bundler.lock")[f"{spelling}@v1.0"]
    theirs = entries(tmp_path / "canonical" / "bundler.lock")["acme/embed-small@v1.0"]
    assert ours["commit"] == theirs["commit"] and ours["files"] == theirs["files"]
    assert ours["hub_id"] == "acme/embed-small" and "hub_id" not in theirs  # recorded only where it differs
    again = run_cli("lock", str(svc), "--check")  # the recorded id is read back and kept
    assert again.code == 0, again.stderr


def test_a_hub_id_in_a_lock_is_validated_like_any_id(tmp_path):
    from bundler.ops.lock import loads

    lock = (FIXTURES / "lock" / "golden.lock").read_text()
    bad = lock.replace('id = "acme/embed-small"\n', 'id = "acme/embed-small"\nhub_id = "../../etc"\n', 1)
    assert bad != lock
    with pytest.raises(UsageError, match=r"bundler.lock: model entry 1 is malformed .*bad Hub id '\.\./\.\./etc'"):
        loads(bad, "bundler.lock")


def test_a_gated_repo_with_a_token_lacking_access_says_so(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_token_of_an_account_without_access")
    svc = write_service(tmp_path, 'g = HuggingFaceModel("acme/gated-model")')
    res = run_cli("lock", str(svc))
    assert res.code == 2
    assert "`acme/gated-model` is gated and this token has no access" in res.stderr
    assert "accept the model's terms on the Hub" in res.stderr


def test_a_token_saved_by_hf_auth_login_is_used_and_no_token_is_claimed_missing(hub, tmp_path):
    import os

    svc = write_service(tmp_path, 'g = HuggingFaceModel("acme/gated-model")')
    token_file = tmp_path / "hf-home" / "token"  # where `hf auth login` saves it (HF_HOME/token)
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text("hf_token_of_an_account_without_access")
    res = run_cli("lock", str(svc))
    assert res.code == 2 and "is gated and this token has no access" in res.stderr
    assert "no token is set" not in res.stderr
    token_file.write_text(GOOD_TOKEN)
    res = run_cli("lock", str(svc))
    assert res.code == 0, res.stderr
    assert sorted(entries(tmp_path / "bundler.lock")) == ["acme/gated-model@None"]
    assert os.environ.get("HF_TOKEN") is None


def _tree_rewrite(change):
    def rewrite(data):
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return change([dict(e) for e in data])
        return data
    return rewrite


@pytest.mark.parametrize(("how", "what"), [
    ("portal", "not a valid Hub answer"),
    ("list-for-object", "not a valid Hub answer"),
    ("object-for-list", "not a valid Hub answer"),
    ("negative-size", "has size -5"),
    ("text-size", "has size 'big'"),
    ("listed-twice", "repeats"),
    ("next-page-is-itself", "repeats"),
])
def test_a_hostile_hub_answer_is_one_error_at_lock_time_and_nothing_is_written(hub, tmp_path, how, what):
    svc = write_service(tmp_path, 'm = HuggingFaceModel("acme/rerank-tiny", exclude="*.bin")')
    info, tree = "/api/models/acme/rerank-tiny", "/api/models/acme/rerank-tiny/tree/"
    if how == "portal":
        hub.answers[info] = (200, b"<html><body>Sign in to the hotel Wi-Fi</body></html>", "text/html")
    elif how == "list-for-object":
        hub.rewrites[info] = lambda data: [data] if isinstance(data, dict) and "sha" in data else data
    elif how == "object-for-list":
        hub.rewrites[tree] = lambda data: {"files": data} if isinstance(data, list) else data
    elif how == "negative-size":
        hub.rewrites[tree] = _tree_rewrite(lambda es: [{**e, "size": -5} if e.get("type") == "file" else e for e in es])
    elif how == "text-size":
        hub.rewrites[tree] = _tree_rewrite(lambda es: [{**e, "size": "big"} if e.get("type") == "file" else e for e in es])
    elif how == "listed-twice":
        hub.rewrites[tree] = _tree_rewrite(lambda es: es + [e for e in es if e.get("type") == "file"][:1])
    else:
        hub.tree_loops = True
    res = run_cli("lock", str(svc))
    assert res.code in (1, 2) and "Traceback" not in res.stderr, res.stderr
    assert what in res.stderr and "acme/rerank-tiny" in res.stderr, res.stderr
    assert not (tmp_path / "bundler.lock").exists()


def test_a_model_info_answer_that_never_ends_is_refused_at_a_fixed_cap(hub, tmp_path):
    from bundler.hub.api import MAX_INFO_BYTES

    svc = write_service(tmp_path, 'm = HuggingFaceModel("acme/rerank-tiny", exclude="*.bin")')
    hub.endless.add("/api/models/acme/rerank-tiny")
    res = run_cli("lock", str(svc))
    assert res.code == 1 and "Traceback" not in res.stderr, res.stderr
    assert "`acme/rerank-tiny`" in res.stderr and "not a valid Hub answer" in res.stderr
    assert f"over {MAX_INFO_BYTES >> 20} MiB and does not end" in res.stderr
    # the client hung up near the cap: what it read never grew past it
    deadline = time.monotonic() + 10  # the server notices the hang-up at its next write
    while not hub.endless_sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub.endless_sent and MAX_INFO_BYTES <= hub.endless_sent[0] < 2 * MAX_INFO_BYTES
    assert not (tmp_path / "bundler.lock").exists()


def test_one_repository_in_many_weight_formats_gets_a_lean_hint(hub, tmp_path):
    hub.create_repo("acme/diffusion")
    mib = b"w" * (1 << 20)
    hub.commit("acme/diffusion", {
        "model_index.json": b"{}",
        "unet/diffusion_pytorch_model.safetensors": mib * 3,
        "unet/diffusion_pytorch_model.fp16.safetensors": mib * 2,
        "unet/diffusion_pytorch_model.bin": mib * 3,
        "onnx/unet/model.onnx": mib * 3,
    })
    svc = write_service(tmp_path, 'd = HuggingFaceModel("acme/diffusion")')
    res = run_cli("lock", str(svc))
    assert res.code == 0, res.stderr
    line = next(x for x in res.stderr.splitlines() if "acme/diffusion: the same weights in 4 formats" in x)
    assert "safetensors 3.0 MiB" in line and "pickle (runs code when loaded) 3.0 MiB" in line
    assert "keeping only safetensors saves 8.0 MiB" in line and "'*.bin'" in line and "'*.onnx'" in line
    plain = write_service(tmp_path / "lean", 'd = HuggingFaceModel("acme/diffusion", include=["*.json", "unet/diffusion_pytorch_model.safetensors"])')
    res = run_cli("lock", str(plain))
    assert res.code == 0 and "formats" not in res.stderr


def test_pickle_weights_are_a_warning_and_refused_under_no_pickle(hub, tmp_path):
    svc = write_service(tmp_path, 'r = HuggingFaceModel("acme/rerank-tiny")')  # it holds a pytorch_model.bin
    res = run_cli("lock", str(svc), "--no-pickle")
    assert res.code == 2 and "pins pickle-format weights" in res.stderr and "run code when loaded" in res.stderr
    assert "exclude=['*.bin']" in res.stderr and not (tmp_path / "bundler.lock").exists()
    res = run_cli("lock", str(svc))
    assert res.code == 0 and "pickle-format weights" in res.stderr and "--no-pickle" in res.stderr
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.bundler]\nweights = "no-pickle"\n')
    res = run_cli("build", str(svc), "--locked", "-o", str(tmp_path / "b.bundle.tar"), "--no-env")
    assert res.code == 2 and "pins pickle-format weights" in res.stderr and not (tmp_path / "b.bundle.tar").exists()
