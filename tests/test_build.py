"""bundler build / inspect / diff on the shipped example and on small purpose-made projects."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from bundler.bundle.archive import FIXED_EPOCH, read_manifest, verify
from bundler.env.lock import EnvOptions
from bundler.ops.build import build
from bundler.errors import ProblemFound, UsageError
from bundler.stores.local import Store

from .conftest import FIXTURES, ROOT, run_cli

EXAMPLE = ROOT / "examples" / "search"


def copy_example(dest: Path, reverse: bool = False) -> Path:
    """Copy the example file by file (optionally in reverse order), leaving build outputs behind."""
    files = sorted(p for p in EXAMPLE.rglob("*") if p.is_file() and "dist" not in p.parts and "__pycache__" not in p.parts)
    for src in reversed(files) if reverse else files:
        dst = dest / src.relative_to(EXAMPLE)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return dest


@pytest.fixture
def example(tmp_path) -> Path:
    Store().import_dir("intent-clf", EXAMPLE / "models" / "intent-clf")
    return copy_example(tmp_path / "search")


def members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return tar.getmembers()


def test_example_builds_offline_with_its_shipped_lock(example):
    res = run_cli("build", str(example / "service.py"), "--offline", "--json")
    assert res.code == 0, res.stderr
    out = json.loads(res.stdout)
    assert sorted(out) == ["bundle_digest", "digest", "name", "path", "version"]
    assert out["name"] == "search" and out["bundle_digest"] == out["digest"]
    assert out["digest"].startswith("blake3:") and out["digest"][7:19] == out["version"]
    assert Path(out["path"]) == example / "dist" / f"search-{out['version']}.bundle.tar"
    assert (example / "bundler.lock").read_bytes() == (EXAMPLE / "bundler.lock").read_bytes()


def test_manifest_matches_golden(example):
    result = build(example / "service.py", offline=True)
    with tarfile.open(result.path) as tar:
        raw = tar.extractfile("bundle.yaml").read()
    golden = FIXTURES / "build" / "example.bundle.yaml"
    assert raw.decode() == golden.read_text()
    assert result.digest == (FIXTURES / "build" / "example.digest").read_text().strip()


def test_build_locked_writes_the_same_bundle_as_build(example, tmp_path):
    """--locked checks the lock instead of re-pinning; the manifest (its models' order too) is the same."""
    plain = build(example / "service.py", offline=True, output=tmp_path / "plain.bundle.tar")
    locked = build(example / "service.py", offline=True, locked=True, output=tmp_path / "locked.bundle.tar")
    assert len(plain.manifest.pins) > 1
    assert locked.digest == plain.digest == (FIXTURES / "build" / "example.digest").read_text().strip()
    assert locked.path.read_bytes() == plain.path.read_bytes()


def test_a_build_reads_the_project_settings_once(example, monkeypatch):
    from bundler.ops import build as build_module
    from bundler.project import sources as sources_module

    reads: list[Path] = []
    real = sources_module.load_config

    def counted(root, service_file=None):
        reads.append(root)
        return real(root, service_file)

    monkeypatch.setattr(sources_module, "load_config", counted)
    monkeypatch.setattr(build_module, "load_config", counted)
    build(example / "service.py", offline=True)
    assert reads == [example]


def test_archive_layout_is_normalised(example):
    result = build(example / "service.py", offline=True)
    infos = members(result.path)
    names = [m.name for m in infos]
    assert names[0] == "bundle.yaml"
    srcs = [n for n in names if n.startswith("src/")]
    models = [n for n in names if n.startswith(("models/", "store/"))]
    assert names == ["bundle.yaml", *srcs, *models]  # manifest first, model files last
    assert srcs == sorted(srcs) and models == sorted(models)
    assert "src/models/intent-clf/weights.bin" not in names  # excluded in [tool.bundler]
    for m in infos:
        assert m.isreg()
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (FIXED_EPOCH, 0, 0, "", "")
        assert m.mode in (0o644, 0o755)
        assert not m.pax_headers  # no times or host data in extended headers


def _build_in_subprocess(project: Path, out: Path, umask: str, tz: str, env_extra: dict | None = None):
    import subprocess
    import sys

    env = {**os.environ, "TZ": tz, "LC_ALL": "C", **(env_extra or {})}
    code = f"import os; os.umask(0o{umask}); from bundler.cli import main; import sys; sys.argv=['bundler','build','service.py','--offline','-o',{str(out)!r}]; main()"
    proc = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("suffix", [".bundle.tar", ".bundle.tar.gz"])
def test_builds_are_byte_identical_across_checkouts(tmp_path, suffix):
    Store().import_dir("intent-clf", EXAMPLE / "models" / "intent-clf")
    b = copy_example(tmp_path / "b-second", reverse=True)
    a = copy_example(tmp_path / "a-first")
    for i, p in enumerate(sorted(b.rglob("*"))):  # different mtimes and modes on the second checkout
        os.utime(p, (1_000_000 + i * 7919, 1_000_000 + i * 7919))
    os.chmod(b / "app" / "settings.py", 0o600)
    _build_in_subprocess(a, tmp_path / f"one{suffix}", "022", "UTC")
    _build_in_subprocess(b, tmp_path / f"two{suffix}", "077", "Asia/Kolkata", {"LANG": "de_DE.UTF-8"})
    one, two = (tmp_path / f"one{suffix}").read_bytes(), (tmp_path / f"two{suffix}").read_bytes()
    assert one == two
    if suffix.endswith(".gz"):
        assert one[3] & 0x08 == 0  # FLG.FNAME unset: no file name in the header
        assert one[4:8] == b"\0\0\0\0"  # MTIME zero
        assert tarfile.open(fileobj=io.BytesIO(gzip.decompress(one))).getnames()[0] == "bundle.yaml"


def test_one_byte_of_source_moves_the_digest(example):
    first = build(example / "service.py", offline=True)
    (example / "app" / "settings.py").write_text((example / "app" / "settings.py").read_text() + "#\n")
    second = build(example / "service.py", offline=True)
    assert first.digest != second.digest
    assert first.path != second.path  # the version follows the content


def test_source_date_epoch_sets_archive_times(example, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    result = build(example / "service.py", offline=True, output=example / "x.bundle.tar")
    assert {m.mtime for m in members(result.path)} == {1700000000}


def test_default_exclusions_and_user_globs(tmp_path):
    proj = tmp_path / "proj"
    (proj / "pkg").mkdir(parents=True)
    (proj / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    pass\n")
    (proj / "pkg" / "util.py").write_text("X = 1\n")
    (proj / "notes.md").write_text("keep\n")
    for junk in (".git/config", ".venv/pyvenv.cfg", "env2/pyvenv.cfg", "__pycache__/s.pyc", "pkg/util.pyc", "build/x", "dist/old.bundle.tar", "x.egg-info/PKG-INFO", "scratch/big.bin"):
        (proj / junk).parent.mkdir(parents=True, exist_ok=True)
        (proj / junk).write_text("junk")
    (proj / "pyproject.toml").write_text('[project]\nname = "Proj"\n[tool.bundler]\nexclude = ["scratch/**", "*.md"]\n')
    (proj / "requirements.txt").write_text("torch==2.3  # pinned\n# comment\n\nnumpy\n")
    result = build(proj / "service.py", offline=True, env=EnvOptions(skip=True))  # no index in tests: leave the environment out
    assert [s.path for s in result.manifest.sources] == ["bundler.lock", "pkg/util.py", "pyproject.toml", "requirements.txt", "service.py"]
    assert result.manifest.name == "proj"
    assert result.manifest.data["requirements"] == ["torch==2.3", "numpy"]
    assert (proj / "bundler.lock").exists()  # an empty lock: no models, but the build pinned


def test_pyproject_dependencies_win_over_requirements_txt(tmp_path):
    (tmp_path / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    pass\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["transformers>=4"]\n')
    (tmp_path / "requirements.txt").write_text("numpy\n")
    assert build(tmp_path / "service.py", env=EnvOptions(skip=True)).manifest.data["requirements"] == ["transformers>=4"]


def test_symlink_outside_the_project_is_refused_and_nothing_is_written(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (tmp_path / "secret.txt").write_text("outside")
    (proj / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    pass\n")
    (proj / "leak.txt").symlink_to(tmp_path / "secret.txt")
    res = run_cli("build", "service.py", cwd=proj)
    assert res.code == 2
    assert res.stderr.startswith("error: leak.txt: symbolic link points outside the project")
    assert not (proj / "dist").exists() or not any((proj / "dist").iterdir())


def test_symlink_inside_the_project_is_stored_as_a_file(tmp_path):
    (tmp_path / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    pass\n")
    (tmp_path / "real.txt").write_text("data")
    (tmp_path / "alias.txt").symlink_to(tmp_path / "real.txt")
    result = build(tmp_path / "service.py")
    with tarfile.open(result.path) as tar:
        assert tar.getmember("src/alias.txt").isreg()
        assert tar.extractfile("src/alias.txt").read() == b"data"


def test_locked_build_fails_on_a_stale_lock_and_writes_nothing(example):
    svc = example / "service.py"
    svc.write_text(svc.read_text().replace('revision="v1.0"', 'revision="main"'))
    res = run_cli("build", str(svc), "--locked")
    assert res.code == 1
    assert "is stale" in res.stderr and "embedder (acme/embed-small) has no fresh lock entry" in res.stderr
    assert not (example / "dist").exists()
    assert (example / "bundler.lock").read_bytes() == (EXAMPLE / "bundler.lock").read_bytes()


def test_offline_build_fails_clearly_when_something_needs_pinning(example):
    svc = example / "service.py"
    svc.write_text(svc.read_text().replace('revision="v1.0"', 'revision="main"'))
    res = run_cli("build", str(svc), "--offline")
    assert res.code == 1
    assert "`acme/embed-small` needs pinning but --offline was given" in res.stderr
    assert not (example / "dist").exists()


def test_build_pins_online_and_updates_the_lock(example, hub):
    svc = example / "service.py"
    svc.write_text(svc.read_text().replace('revision="v1.0"', 'revision="main"'))
    result = build(svc)
    pin = next(p for p in result.manifest.pins if p.id == "acme/embed-small")
    assert pin.commit == hub.repos["acme/embed-small"].refs["main"]
    assert "revision = \"main\"" in (example / "bundler.lock").read_text()


def test_missing_store_model_fails_and_leaves_no_bundle(tmp_path):
    proj = copy_example(tmp_path / "p")  # the store is empty in this test
    res = run_cli("build", str(proj / "service.py"), "--offline")
    assert res.code == 2
    assert "model `intent-clf:09d347638c5c38fa` is not in the local store" in res.stderr
    assert not (proj / "dist").exists() or list((proj / "dist").iterdir()) == []


def test_tampered_store_file_is_caught_during_the_build(example):
    model = Store().get("intent-clf")
    os.chmod(model.path / "weights.bin", 0o644)
    (model.path / "weights.bin").write_bytes(b"X" * 2048)
    with pytest.raises(ProblemFound, match="does not match its recorded hash"):
        build(example / "service.py", offline=True)
    assert list((example / "dist").iterdir()) == []


def test_several_entry_candidates_need_a_choice(tmp_path):
    (tmp_path / "service.py").write_text(
        "import bundler\n\n@bundler.service\nclass A:\n    pass\n\n@bundler.service\nclass B:\n    pass\n"
    )
    with pytest.raises(UsageError, match=r"several services could be the entry point \(A, B\)"):
        build(tmp_path / "service.py")
    assert build(f"{tmp_path / 'service.py'}:B").manifest.data["entrypoint"] == "service.py:B"


# --- inspect ----------------------------------------------------------------------------------
def test_inspect_shows_the_bundle(example):
    result = build(example / "service.py", offline=True)
    res = run_cli("inspect", str(result.path))
    assert res.code == 0, res.stderr
    for text in ("search", result.manifest.version, result.digest, "service.py:Search", "acme/embed-small", "f05963d63252", "intent-clf:latest", "gpu=1", "Reranker"):
        assert text in res.stdout
    res = run_cli("inspect", str(result.path), "--json")
    data = json.loads(res.stdout)
    assert data["digest"] == result.digest and data["name"] == "search"
    assert data["models"] == result.manifest.data["models"]


def test_inspect_tables_are_aligned_plain_text(example):
    """Piped output is what CI logs and grep see: no box drawing, no colour codes, every row of a
    table starting each column where its header does."""
    result = build(example / "service.py", offline=True)
    out = run_cli("inspect", str(result.path)).stdout
    assert "\x1b" not in out and "│" not in out and "─" not in out
    lines = out.splitlines()
    head = lines.index("models") + 1
    header, rows = lines[head], lines[head + 1 : head + 4]
    starts = [header.index(col) for col in ("source", "id", "revision", "pinned", "files", "size")]
    assert [r.split()[0] for r in rows] == ["huggingface", "huggingface", "store"]
    for r in rows:
        for s in starts[1:]:
            assert r[s - 2 : s] == "  " and r[s] != " ", (r, s)


def test_inspect_reads_only_the_manifest(example, tmp_path):
    result = build(example / "service.py", offline=True)
    raw = result.path.read_bytes()
    cut = tmp_path / "truncated.bundle.tar"
    manifest_end = 512 + (len(result.manifest.to_yaml()) + 511) // 512 * 512
    for end in (manifest_end, manifest_end + 700):
        cut.write_bytes(raw[:end])  # the manifest whole, then cut at a member boundary or inside one
        assert read_manifest(cut).digest == result.digest
        res = run_cli("inspect", str(cut))
        assert res.code == 0 and result.digest in res.stdout
        res = run_cli("inspect", str(cut), "--verify")
        assert res.code == 2 and "truncated" in res.stderr and "Traceback" not in res.stderr


def _rewrite(src: Path, dst: Path, edit) -> None:
    with tarfile.open(src) as tin, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read()
            for info, payload in edit(m, data):
                tout.addfile(info, io.BytesIO(payload))


def test_verify_reports_modified_missing_and_extra_members(example, tmp_path):
    result = build(example / "service.py", offline=True)
    assert verify(result.path)[1].ok

    def tamper(m, data):
        if m.name == "src/service.py":
            data = data.replace(b"Search", b"Searcx")
        if m.name == "src/app/settings.py":
            return []
        out = [(m, data)]
        if m.name == "bundle.yaml":
            pass
        elif m.name.startswith(("models/", "store/")) and m.name.endswith("config.json"):
            extra = tarfile.TarInfo("src/implant.py")
            extra.size = 3
            out.append((extra, b"x=1"))
        return out

    bad = tmp_path / "bad.bundle.tar"
    _rewrite(result.path, bad, tamper)
    res = run_cli("inspect", str(bad), "--verify", "--json")
    assert res.code == 1
    report = json.loads(res.stdout)["verify"]
    assert report == {"ok": False, "checked": 7, "missing": ["src/app/settings.py"], "extra": ["src/implant.py"], "modified": ["src/service.py"]}
    res = run_cli("inspect", str(bad), "--verify")
    assert res.code == 1
    assert "modified: src/service.py" in res.stderr and "missing:  src/app/settings.py" in res.stderr


def test_unsafe_members_are_refused(example, tmp_path):
    result = build(example / "service.py", offline=True)

    def add_link(m, data):
        out = [(m, data)]
        if m.name == "bundle.yaml":
            link = tarfile.TarInfo("src/evil")
            link.type = tarfile.SYMTYPE
            link.linkname = "/etc/passwd"
            out.append((link, b""))
        return out

    bad = tmp_path / "link.bundle.tar"
    _rewrite(result.path, bad, add_link)
    res = run_cli("inspect", str(bad), "--verify")
    assert res.code == 2 and "member 'src/evil' is a link" in res.stderr

    def escape(m, data):
        if m.name == "src/service.py":
            m.name = "src/../../escape.py"
        return [(m, data)]

    bad2 = tmp_path / "escape.bundle.tar"
    _rewrite(result.path, bad2, escape)
    res = run_cli("inspect", str(bad2), "--verify")
    assert res.code == 2 and "has an unsafe path" in res.stderr


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a bundle archive"),
        (b"hello, not a tar file at all" * 40, "not a bundle archive"),
    ],
)
def test_inspect_of_non_bundles_is_one_clear_line(tmp_path, content, message):
    p = tmp_path / "x.bundle.tar"
    p.write_bytes(content)
    res = run_cli("inspect", str(p))
    assert res.code == 2 and message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 2


def test_inspect_of_a_tar_without_manifest(tmp_path):
    p = tmp_path / "plain.tar"
    with tarfile.open(p, "w") as tar:
        info = tarfile.TarInfo("readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    res = run_cli("inspect", str(p))
    assert res.code == 2 and "no bundle.yaml at the start of the archive" in res.stderr
    res = run_cli("inspect", str(tmp_path / "missing.tar"))
    assert res.code == 2 and "no such file" in res.stderr


# --- diff -------------------------------------------------------------------------------------
def test_diff_lists_changes_and_exits_1(example, hub):
    old = build(example / "service.py", offline=True, output=example / "old.bundle.tar")
    assert run_cli("diff", str(old.path), str(old.path)).code == 0
    svc = example / "service.py"
    svc.write_text(svc.read_text().replace('revision="v1.0"', 'revision="main"') + "\n# changed\n")
    (example / "app" / "extra.py").write_text("Y = 2\n")
    new = build(svc, output=example / "new.bundle.tar")
    res = run_cli("diff", str(old.path), str(new.path), "--json")
    assert res.code == 1
    d = json.loads(res.stdout)
    assert d["identical"] is False
    assert d["sources"] == {"added": ["app/extra.py"], "removed": [], "changed": ["bundler.lock", "service.py"]}
    (change,) = d["models"]["changed"]
    assert change["id"] == "acme/embed-small"
    assert change["old"]["revision"] == "v1.0" and change["new"]["revision"] == "main"
    assert change["new"]["pinned"] == hub.repos["acme/embed-small"].refs["main"]
    assert change["files_changed"] == ["config.json", "model.safetensors"]  # tokenizer.json is unchanged
    res = run_cli("diff", str(old.path), str(new.path))
    assert res.code == 1
    assert f"~ model acme/embed-small: f05963d63252 -> {change['new']['pinned'][:12]}" in res.stdout
    assert "+ source app/extra.py" in res.stdout


@pytest.mark.parametrize("executable", [False, True])
def test_member_headers_are_the_bytes_tarfile_writes(executable):
    """The writer makes simple headers itself (one tarfile template per mode); each must equal
    tarfile's own, and names that need a pax record still go through tarfile."""
    import io
    import random

    from bundler.bundle.archive import ArchiveWriter

    rng = random.Random(7)
    for name in ["a", "x" * 100, "y" * 101, "src/ü.txt", "src/" + "z" * 96, "n" * 99]:
        for size in (0, 1, 511, 512, 513, 10000):
            data = rng.randbytes(size)
            ours, ref = io.BytesIO(), io.BytesIO()
            w = ArchiveWriter(ours, compress=False)
            w.add_bytes(name, data, executable)
            w.add_bytes("second", b"2")
            w.close()
            r = ArchiveWriter(ref, compress=False)
            r.tar.addfile(r._info(name, size, executable), io.BytesIO(data))
            r.tar.addfile(r._info("second", 1, False), io.BytesIO(b"2"))
            r.close()
            assert ours.getvalue() == ref.getvalue(), (name, size)


def test_inspect_wraps_packages_shows_main_and_which_models_are_embedded(example, tmp_path):
    res = run_cli("build", str(example / "service.py"), "--offline", "-o", str(tmp_path / "b.bundle.tar"))
    assert res.code == 0, res.stderr
    out = run_cli("inspect", str(tmp_path / "b.bundle.tar")).stdout
    assert max(len(line) for line in out.splitlines()) <= 110  # no 3,000-character package line
    assert "  packages    a2wsgi 1.10.10, " in out and "              " in out
    rows = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith(("  huggingface", "  store"))}
    assert rows["acme/rerank-tiny"][2] == "main"  # pinned from the default branch: says so
    assert rows["acme/rerank-tiny"][-1] == "no" and rows["intent-clf:latest"][-1] == "yes"


@pytest.mark.parametrize("change", ["appended", "truncated"])
def test_a_store_file_of_another_size_is_the_same_clear_error(example, change):
    model = Store().get("intent-clf")
    weights = model.path / "weights.bin"
    os.chmod(weights, 0o644)
    data = weights.read_bytes()
    weights.write_bytes(data + b"extra" if change == "appended" else data[:-10])
    with pytest.raises(ProblemFound, match="weights.bin does not match its recorded hash") as err:
        build(example / "service.py", offline=True)
    assert "bundler models delete intent-clf" in err.value.hint
    assert list((example / "dist").iterdir()) == []


def test_parallel_gzip_bytes_do_not_depend_on_the_thread_count():
    import os as _os

    from bundler.io.pgzip import BLOCK, ParallelGzipWriter

    data = _os.urandom(BLOCK + 123) + b"text " * (BLOCK // 2) + _os.urandom(77)
    outs = []
    for threads in (1, 2, 4):
        out = io.BytesIO()
        w = ParallelGzipWriter(out, threads=threads)
        for i in range(0, len(data), 333_333):  # writes that straddle the blocks
            w.write(data[i:i + 333_333])
        assert w.tell() == len(data)
        w.close()
        outs.append(out.getvalue())
    assert outs[0] == outs[1] == outs[2]
    assert gzip.decompress(outs[0]) == data
    assert outs[0][:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, no time
