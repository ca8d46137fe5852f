"""Rebuilds: unchanged sources are neither read nor scanned again, their members are copied from
the previous bundle, and the bundle is byte-for-byte the one a clean build writes."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from bundler.errors import ProblemFound
from bundler.ops.build import build
from bundler.project import source_cache

from .conftest import run_cli

SERVICE = "import bundler\n\n\n@bundler.service\nclass Svc:\n    pass\n"


def make_project(root: Path, files: int = 30) -> Path:
    root.mkdir()
    (root / "service.py").write_text(SERVICE)
    for i in range(files):
        d = root / "data" / f"d{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:03d}.txt").write_text(f"row {i}\n" * (i + 1))
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "run.sh", 0o755)
    return root


def settle() -> None:
    """Files changed within SETTLE_NS of a build are read again by the next one (an edit in the
    same clock tick could hide behind an equal mtime): wait that long once."""
    time.sleep(source_cache.SETTLE_NS / 1e9 + 0.1)


class Opens:
    """The project files a build opens, seen through Python's audit hook (os.open, open())."""

    def __init__(self, root: Path) -> None:
        self.root, self.seen, self.on = str(root), [], False
        sys.addaudithook(self.hook)

    def hook(self, event: str, args: tuple) -> None:
        if self.on and event == "open" and isinstance(args[0], str) and args[0].startswith(self.root):
            self.seen.append(os.path.relpath(args[0], self.root))


@pytest.fixture(scope="module")
def opens(tmp_path_factory):
    return Opens(tmp_path_factory.getbasetemp())


def clean_build(proj: Path, out: Path, monkeypatch, tmp_path) -> bytes:
    """The same tree built with an empty cache (another BUNDLER_HOME)."""
    monkeypatch.setenv("BUNDLER_HOME", str(tmp_path / f"clean-home-{out.name}"))
    build(proj / "service.py", out, offline=True)
    monkeypatch.setenv("BUNDLER_HOME", str(tmp_path / "bundler-home"))
    return out.read_bytes()


def test_a_rebuild_reads_only_the_edited_file_and_equals_a_clean_build(tmp_path, monkeypatch, opens):
    proj = make_project(tmp_path / "proj")
    settle()
    bundle = tmp_path / "out" / "b.bundle.tar"
    build(proj / "service.py", bundle, offline=True)
    first = bundle.read_bytes()
    with open(proj / "data" / "d1" / "f004.txt", "a") as f:
        f.write("one more row\n")
    opens.root, opens.seen, opens.on = str(proj), [], True
    try:
        build(proj / "service.py", bundle, offline=True)
    finally:
        opens.on = False
    sources_opened = sorted(p for p in opens.seen if p.startswith(("data", "run.sh")))
    assert sources_opened == ["data/d1/f004.txt"]
    rebuilt = bundle.read_bytes()
    assert rebuilt != first
    assert rebuilt == clean_build(proj, tmp_path / "clean.bundle.tar", monkeypatch, tmp_path)
    # the CLI says how many sources it took from the cache (another edit: 33 files; the edited one and bundler.lock, written by the first build under 2 s ago, are read)
    with open(proj / "data" / "d1" / "f004.txt", "a") as f:
        f.write("and another\n")
    res = run_cli("build", str(proj / "service.py"), "--offline", "-o", str(bundle))
    assert res.code == 0 and "33 source files (31 unchanged since the last build, not read again)," in res.stdout, res.stdout


def test_mode_rename_delete_and_date_changes_give_a_clean_builds_bytes(tmp_path, monkeypatch):
    proj = make_project(tmp_path / "proj")
    settle()
    bundle = tmp_path / "b.bundle.tar"
    build(proj / "service.py", bundle, offline=True)
    os.chmod(proj / "data" / "d0" / "f000.txt", 0o755)  # same bytes, another mode: another header
    (proj / "data" / "d2" / "f002.txt").rename(proj / "data" / "d2" / "g002.txt")
    (proj / "data" / "d1" / "f001.txt").unlink()
    build(proj / "service.py", bundle, offline=True)
    assert bundle.read_bytes() == clean_build(proj, tmp_path / "c1.bundle.tar", monkeypatch, tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # every header's date differs: nothing copied
    build(proj / "service.py", bundle, offline=True)
    assert bundle.read_bytes() == clean_build(proj, tmp_path / "c2.bundle.tar", monkeypatch, tmp_path)


def test_a_previous_bundle_changed_since_is_not_copied_from(tmp_path, monkeypatch):
    proj = make_project(tmp_path / "proj")
    settle()
    bundle = tmp_path / "b.bundle.tar"
    build(proj / "service.py", bundle, offline=True)
    data = bytearray(bundle.read_bytes())
    at = data.index(b"row 7\nrow 7\n")
    data[at:at + 3] = b"ROW"  # same size, other bytes: the cache's offsets still fit
    bundle.write_bytes(bytes(data))
    (proj / "service.py").write_text(SERVICE + "# edited\n")
    build(proj / "service.py", bundle, offline=True)
    rebuilt = bundle.read_bytes()
    assert b"ROW 7" not in rebuilt
    assert rebuilt == clean_build(proj, tmp_path / "clean.bundle.tar", monkeypatch, tmp_path)


def _ints(values: list[int]) -> str:
    import array
    import base64

    return base64.b64encode(array.array("q", values).tobytes()).decode()


def _unints(text: str) -> list[int]:
    import array
    import base64

    out = array.array("q")
    out.frombytes(base64.b64decode(text))
    return out.tolist()


def test_a_damaged_or_hostile_cache_is_ignored(tmp_path, monkeypatch):
    proj = make_project(tmp_path / "proj")
    settle()
    bundle = tmp_path / "b.bundle.tar"
    build(proj / "service.py", bundle, offline=True)
    cache_file = source_cache.load(proj).path
    assert cache_file is not None and cache_file.is_file()
    good = json.loads(cache_file.read_bytes())
    count = len(good["rel"].split("\n"))
    hostile = dict(good, hash="../../etc/passwd" * 4 * count, bundle=dict(good["bundle"], span=_ints([0, 10**12] * count)))
    damaged = [dict(good, stat=_ints(_unints(good["stat"])[:-1])), dict(good, stat="*" + good["stat"][1:]), dict(good, byteorder="middle"),
               dict(good, executable="2" * count), dict(good, rel=[]), dict(good, hash=good["hash"].upper())]
    for text in (b"{not json", b"[]", json.dumps(hostile).encode(), *(json.dumps(d).encode() for d in damaged)):
        cache_file.write_bytes(text)
        build(proj / "service.py", bundle, offline=True)
        assert bundle.read_bytes() == clean_build(proj, tmp_path / "clean.bundle.tar", monkeypatch, tmp_path)
    # spans moved onto the neighbouring members of the very bundle they describe: each header read
    # there is not the member's, so nothing is copied from a wrong place
    current = json.loads(cache_file.read_bytes())
    spans = _unints(current["bundle"]["span"])
    pairs = [spans[i:i + 2] for i in range(0, len(spans), 2)]
    moved = _ints([x for p in pairs[1:] + pairs[:1] for x in p])
    cache_file.write_bytes(json.dumps(dict(current, bundle=dict(current["bundle"], span=moved))).encode())
    (proj / "service.py").write_text(SERVICE + "# edited\n")
    build(proj / "service.py", bundle, offline=True)
    assert bundle.read_bytes() == clean_build(proj, tmp_path / "clean2.bundle.tar", monkeypatch, tmp_path)


def test_a_credential_found_once_fails_every_rebuild_it_is_not_allowed_in(tmp_path, opens):
    proj = make_project(tmp_path / "proj")
    (proj / "data" / "leak.txt").write_text("a\ntoken = hf_" + "a1B2" * 8 + "zz\n")
    settle()
    bundle = tmp_path / "b.bundle.tar"
    build(proj / "service.py", bundle, offline=True, allow_secrets=(proj / "data" / "leak.txt",))
    before = bundle.read_bytes()
    # the file is not read again: the refusal comes from what the cache recorded of its scan
    opens.root, opens.seen, opens.on = str(proj), [], True
    try:
        with pytest.raises(ProblemFound, match=r"data/leak.txt:2: Hugging Face token"):
            build(proj / "service.py", bundle, offline=True)
    finally:
        opens.on = False
    assert "data/leak.txt" not in opens.seen
    assert bundle.read_bytes() == before


def test_gc_frees_the_cache_of_a_project_that_is_gone_and_keeps_the_others(tmp_path):
    import shutil

    from bundler.ops.gc import gc

    kept, gone = make_project(tmp_path / "kept", 2), make_project(tmp_path / "gone", 2)
    settle()
    for proj in (kept, gone):
        build(proj / "service.py", tmp_path / f"{proj.name}.bundle.tar", offline=True)
    kept_cache, gone_cache = source_cache.load(kept).path, source_cache.load(gone).path
    assert kept_cache is not None and gone_cache is not None and kept_cache.is_file() and gone_cache.is_file()
    shutil.rmtree(gone)
    listed = gc(dry_run=True)
    assert [(f.what, f.name, f.path) for f in listed.freed] == [("source cache", str(gone.resolve()), str(gone_cache))]
    assert gone_cache.is_file()
    gc()
    assert not gone_cache.exists() and kept_cache.is_file()
