"""Damaged and hostile lock files: clear errors, nothing trusted that the reader refuses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ..conftest import run_cli

from .helpers import _VALUES, FUZZ, one_clear_error, SERVICE


@pytest.mark.parametrize(
    "text,message",
    [
        ("version = true\n", "no valid format version"),
        ("version = 0\n", "no valid format version"),
        ("version = -3\n", "no valid format version"),
        ('version = 1\n[[model]]\nsource = "store"\nid = "a:latest"\nversion = "v1"\nfiles = [{path = "w", size = inf, hash = "blake3:' + "0" * 64 + '"}]\n', "not a byte count"),
        ("version = 1\nmodel = 5\n", "must be an array"),
        ("version = 1\nx = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ],
)
def test_damaged_lock_files_are_clear_errors(tmp_path, text, message):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE)
    (proj / "bundler.lock").write_text(text)
    res = run_cli("lock", str(proj / "service.py"), "--check")
    one_clear_error(res)
    assert message in res.stderr


def test_a_model_locked_twice_is_refused(tmp_path):
    entry = '[[model]]\nsource = "store"\nid = "a:latest"\nversion = "v1"\nfiles = [{path = "w", size = 1, hash = "blake3:' + "0" * 64 + '"}]\n'
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE)
    (proj / "bundler.lock").write_text("version = 1\n" + entry + entry)
    res = run_cli("lock", str(proj / "service.py"), "--check")
    one_clear_error(res)
    assert "locked twice" in res.stderr


def test_a_fifo_lock_file_does_not_hang(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE)
    os.mkfifo(proj / "bundler.lock")
    res = run_cli("lock", str(proj / "service.py"), "--check")
    one_clear_error(res)
    assert "not a regular file" in res.stderr


@FUZZ
@given(picks=st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(_VALUES)), min_size=1, max_size=4))
def test_mutated_lock_files_are_refused_or_stay_safe(picks):
    import re as _re

    from bundler.errors import UsageError
    from bundler.ops.lock import loads
    from bundler.kinds import check_pin

    text = (Path(__file__).parents[2] / "fixtures" / "lock" / "golden.lock").read_text()
    pattern = r'(?<== )("[^"\n]*"|-?\d+|true|false)'
    for pos, new in picks:
        found = list(_re.finditer(pattern, text))
        m = found[pos % len(found)]
        text = text[: m.start()] + new.replace("null", '"null"') + text[m.end():]
    try:
        pins = loads(text, "mutated.lock")
    except UsageError as e:
        assert str(e).startswith("mutated.lock: ")
        return
    for p in pins:
        check_pin(p)
