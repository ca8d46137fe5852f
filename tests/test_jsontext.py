"""The hand-indented JSON writer behind bundle.yaml and every --json answer."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from bundler.model.jsontext import canonical_json, json_text

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=30)
entries = st.fixed_dictionaries({"path": st.text(), "size": st.integers(0), "hash": st.text()})


@given(values, st.sampled_from([1, 2, 4]))
def test_same_text_as_json_dumps_without_file_lists(value, indent):
    # A file entry is a non-empty mapping whose keys are all path/size/hash/xet; text keys
    # drawn at random are never those, so this is json.dumps' own layout, byte for byte.
    assert json_text(value, indent) == json.dumps(value, indent=indent, ensure_ascii=False)


@given(st.lists(entries, min_size=1), st.dictionaries(st.text(), values, max_size=3))
def test_file_entries_are_one_line_each_and_read_back_equal(files, extra):
    data = {**extra, "sources": files}
    text = json_text(data)
    assert json.loads(text) == data
    lines = text.split("\n")  # not splitlines(): a path may hold U+0085 or U+2028
    start = lines.index('  "sources": [')
    assert [json.loads(line.strip().rstrip(",")) for line in lines[start + 1 : start + 1 + len(files)]] == files


def test_non_string_keys_are_written_as_json_dumps_writes_them():
    assert json_text({1: "a", None: "b", False: "c"}) == json.dumps({1: "a", None: "b", False: "c"}, indent=2)


def _canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@given(values)
def test_canonical_json_is_json_dumps_sorted_and_compact(value):
    assert canonical_json(value) == _canonical(value)


@given(st.lists(entries | st.fixed_dictionaries({"path": st.text(), "size": st.integers(0), "hash": st.text(), "xet": st.text()})), values)
def test_canonical_json_of_file_lists_is_the_digest_text(files, other):
    # The digest is blake3 of this text: one character off changes every bundle digest.
    data = {"sources": files, "models": [{"id": "m", "files": files}], "other": other}
    assert canonical_json(data) == _canonical(data)
    assert canonical_json({"sources": [{"path": "a\"b", "size": True, "hash": "h"}]}) == _canonical({"sources": [{"path": "a\"b", "size": True, "hash": "h"}]})
