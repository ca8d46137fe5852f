"""Hostile bundle manifests: names that would become paths, strict schema, aliases, JSON tricks, control characters."""

from __future__ import annotations

import io
import tarfile
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bundler.model.pins import safe_path, safe_paths

from ..conftest import run_cli

from .helpers import _entries, _HASH, _raw_manifest, _VALUES, FUZZ, one_clear_error, rewrite_manifest, tree_digest


@pytest.mark.parametrize("field,value", [("name", "/X/victim"), ("name", "../../x"), ("version", "../up"), ("name", 123), ("version", "a/b"),
                                         ("version", "v1\n")])  # `$` would let a final newline through
def test_manifest_names_that_would_become_paths_are_refused_everywhere(bundle, tmp_path, field, value):
    hostile = rewrite_manifest(bundle, tmp_path / "hostile.bundle.tar", lambda d: d.__setitem__(field, value))
    before = tree_digest(tmp_path)
    for args in (["inspect", str(hostile)], ["inspect", str(hostile), "--verify"], ["pull", str(hostile)], ["push", str(hostile), "oci://127.0.0.1:9/x:y"]):
        res = run_cli(*args, cwd=tmp_path)
        one_clear_error(res)
        assert "unsafe" in res.stderr or "must be a string" in res.stderr
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: d.__setitem__("schema", 0), "not a schema version"),
        (lambda d: d.__setitem__("schema", True), "not a schema version"),
        (lambda d: d.__setitem__("entrypoint", "service.py:Tinx"), "names no service"),
        (lambda d: d["sources"][0].__setitem__("size", 6.7), "not a byte count"),
        (lambda d: d.__setitem__("surprise", 1), "unknown field `surprise`"),
        (lambda d: d.__setitem__("services", "oops"), "services must be a list"),
        (lambda d: d["sources"][0].__setitem__("path", "\ud800.py"), "invalid Unicode"),
    ],
)
def test_manifest_schema_is_strict(bundle, tmp_path, edit, message):
    bad = rewrite_manifest(bundle, tmp_path / "bad.bundle.tar", edit)
    res = run_cli("inspect", str(bad), "--verify")
    one_clear_error(res)
    assert message in res.stderr


def test_yaml_alias_bomb_is_refused_at_once(bundle, tmp_path):
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 12)
    )
    raw = (b"schema: 1\nname: x\nversion: y\nmodels: []\nsources: []\n" + bomb.encode())
    out = tmp_path / "bomb.bundle.tar"
    with tarfile.open(out, "w") as t:
        info = tarfile.TarInfo("bundle.yaml")
        info.size = len(raw)
        t.addfile(info, io.BytesIO(raw))
    start = time.monotonic()
    res = run_cli("inspect", str(out))
    assert time.monotonic() - start < 10
    one_clear_error(res)
    assert "aliases" in res.stderr


@FUZZ
@given(picks=st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(_VALUES)), min_size=1, max_size=4))
def test_mutated_manifests_are_refused_or_stay_safe(bundle, picks):
    import re as _re

    from bundler.bundle.archive import read_manifest
    from bundler.errors import UsageError
    from bundler.bundle.manifest import loads
    from bundler.model.pins import safe_path

    text = read_manifest(bundle).to_yaml().decode()
    values = list(_re.finditer(r'(?<=": )("[^"\\n]*"|-?\d+|true|false|null)', text))
    for pos, new in picks:
        m = values[pos % len(values)]
        text = text[: m.start()] + new + text[m.end():]
        values = list(_re.finditer(r'(?<=": )("[^"\\n]*"|-?\d+|true|false|null)', text))
    try:
        m = loads(text.encode(), "mutated")
    except UsageError as e:
        assert str(e).startswith("mutated: ")
        return
    for name in m.members():
        safe_path(name)
    for p in m.pins:
        assert ".." not in (p.version or "") and "/" not in (p.version or "")
    assert "/" not in m.name and "/" not in m.version


@pytest.mark.parametrize(
    "edit,message",
    [
        # JSON keeps the last of two equal keys: a second size or hash must not slip past the check.
        (lambda raw: raw.replace(b'"size": ', b'"size": 1, "size": ', 1), "the key 'size' appears twice"),
        (lambda raw: raw.replace(b'"name": ', b'"name": "a", "name": ', 1), "the key 'name' appears twice"),
        (lambda raw: raw.replace(b'"path": "service.py"', b'"path": "\\ud800service.py"'), "not valid unicode"),
    ],
)
def test_json_manifest_tricks_are_refused(bundle, tmp_path, edit, message):
    bad = _raw_manifest(bundle, tmp_path / "bad.bundle.tar", edit)
    res = run_cli("inspect", str(bad), "--verify")
    one_clear_error(res)
    assert message in res.stderr


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.text(alphabet="a./\\\x00\ud800", max_size=6), max_size=4))
def test_the_batched_path_check_refuses_exactly_what_the_single_one_does(paths):
    def refused(check, arg) -> bool:
        try:
            check(arg)
        except ValueError:
            return True
        return False

    assert refused(safe_paths, paths) == any(refused(safe_path, p) for p in paths)


def test_inspect_shows_control_characters_of_a_hostile_manifest_escaped(bundle, tmp_path):
    """A manifest's strings reach the terminal: an escape sequence in one must not clear the screen,
    retitle the window or reorder the text (bidi override); each shows as its escape."""

    def edit(d):
        d["requirements"] = ["torch\x1b[2J"]
        d["services"][0]["resources"] = {"gpu": "1\x07\u202e"}

    evil = rewrite_manifest(bundle, tmp_path / "evil.bundle.tar", edit)
    res = run_cli("inspect", str(evil))
    assert res.code == 0, res.stderr
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout and "\u202e" not in res.stdout
    assert "requires    torch\\x1b[2J" in res.stdout
    assert "gpu=1\\x07\\u202e" in res.stdout


def test_diff_and_errors_show_control_characters_of_a_hostile_manifest_escaped(bundle, tmp_path):
    def add_source(d):
        d["sources"].append({"path": "evil\x1b]0;owned\x07.py", "size": 1, "hash": "blake3:" + "0" * 64})

    evil = rewrite_manifest(bundle, tmp_path / "evil.bundle.tar", add_source)
    res = run_cli("diff", str(bundle), str(evil))
    assert res.code == 1, res.stderr
    assert "+ source evil\\x1b]0;owned\\x07.py" in res.stdout and "\x1b" not in res.stdout

    def unknown_field(d):
        d["\x1b[2Jnote"] = 1

    res = run_cli("inspect", str(rewrite_manifest(bundle, tmp_path / "field.bundle.tar", unknown_field)))
    assert res.code == 2
    assert "unknown field `\\x1b[2Jnote`" in res.stderr and "\x1b" not in res.stderr


@given(_entries)
@example([{"path": "a.py", "size": 0, "hash": "0" * 64 + "blake3:"}])  # the prefix at the end
@example([{"path": "a.py", "size": 0, "hash": "blake3:" + "0" * 64}, {"path": "b.py", "size": 0, "hash": "blake3:blake3:" + "0" * 57}])
@example([{"path": "a.py", "size": True, "hash": _HASH}])
@example([{"path": "a.py", "size": 0, "hash": _HASH}, {"path": "a.py", "size": 1, "hash": _HASH}])
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_the_column_check_of_sources_accepts_only_what_the_entry_check_accepts(entries):
    """The fast check of a source list (columns in C) must never let through an entry that the
    entry-by-entry rules refuse: exactly path/size/hash, a str path, an int size >= 0 (not a
    bool), a lowercase blake3 hash, no path twice."""
    import re

    from bundler.bundle.manifest import _plain_sources

    def one_ok(f):
        return (f.keys() == {"path", "size", "hash"} and type(f["path"]) is str and type(f["size"]) is int and f["size"] >= 0
                and type(f["hash"]) is str and re.fullmatch(r"blake3:[0-9a-f]{64}", f["hash"]) is not None)

    ok = all(one_ok(f) for f in entries) and len({f["path"] for f in entries}) == len(entries)
    assert (_plain_sources(entries) is not None) == ok


def test_inspect_aligns_a_wide_service_name(bundle, tmp_path):
    def rename(d):
        d["services"][0]["name"] = "模型"

    res = run_cli("inspect", str(rewrite_manifest(bundle, tmp_path / "wide.bundle.tar", rename)))
    assert res.code == 0, res.stderr
    lines = res.stdout.splitlines()
    header, row = lines[lines.index("services") + 1], lines[lines.index("services") + 2]
    # Each of the two characters takes two columns: on screen the class starts 2 columns after
    # its index in the string, which is where the header's "class" is.
    assert row.index("service:Tiny") + 2 == header.index("class") == 11
