"""Ignore files: the same answers as pathspec's GitIgnoreSpec, in time linear in the paths."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pathspec
from hypothesis import given, settings
from hypothesis import strategies as st

from bundler.project.ignore import IgnoreFile

_part = st.text(alphabet="ab.*?", min_size=1, max_size=5)
_pattern = st.builds(
    lambda neg, lead, parts, trail: ("!" if neg else "") + ("/" if lead else "") + "/".join(parts) + ("/" if trail else ""),
    st.booleans(), st.booleans(), st.lists(_part, min_size=1, max_size=3), st.booleans(),
) | st.sampled_from(["*.a", "a", "b/", "!a.b", "**/a", "a/**", "a/**/b", "*a*b", "*a*a*b", "[ab]", "# note", "", "a?b"])
_path = st.builds(
    lambda parts, is_dir: "/".join(parts) + ("/" if is_dir else ""),
    st.lists(st.text(alphabet="ab.", min_size=1, max_size=6).filter(lambda s: s not in (".", "..")), min_size=1, max_size=4),
    st.booleans(),
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(lines=st.lists(_pattern, min_size=1, max_size=8), paths=st.lists(_path, min_size=1, max_size=8))
def test_every_answer_is_pathspecs(lines, paths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
    ours = IgnoreFile(lines)
    # pathspec numbers its patterns without the blank lines (so its line numbers drift after one);
    # ours are the lines' own numbers
    real = [i for i, line in enumerate(lines) if line]
    for path in paths:
        theirs = spec.check_file(path)
        assert ours.check(path) == (theirs.include, None if theirs.index is None else real[theirs.index]), (lines, path)


def test_a_backtracking_pattern_on_a_long_name_is_answered_at_once(tmp_path):
    # *a*a*a*a*a*b on a 200-character name of a's: pathspec's regex backtracks for minutes
    project = tmp_path / "p"
    project.mkdir()
    (project / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    pass\n")
    (project / ".gitignore").write_text("*a*a*a*a*a*b\n")
    (project / ("a" * 200)).write_text("x\n")
    (project / ("a" * 120 + "b")).write_text("x\n")
    res = subprocess.run([sys.executable, "-m", "bundler", "build", str(project / "service.py"), "--list-sources"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert "a" * 200 in res.stdout.split()
    assert f"left out: {'a' * 120 + 'b'}  (.gitignore:1: *a*a*a*a*a*b)" in res.stderr


def test_thousands_of_names_cost_one_lookup_per_component():
    lines = [f"cache{i}" for i in range(5000)] + [f"*.tmp{i}" for i in range(5000)] + ["!cache7"]
    f = IgnoreFile(lines)
    assert f._others == []  # nothing is tried pattern by pattern
    assert f.check("src/cache3/x.py") == (True, 3)
    assert f.check("src/cache7/") == (False, 10000)
    assert f.check("src/a.tmp42") == (True, 5042)
    assert f.check("src/module.py") == (None, None)
