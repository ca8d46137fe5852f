"""Hashing in the same pass as a download or copy: the pipelined hash thread gives the same digest
as hashing inline, on resume and after a rewind, and never outlives the file."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from bundler.io.hashing import PIPELINE_MIN, Hashers, HashingWriter, TooLarge

DATA = os.urandom(PIPELINE_MIN + (5 << 20) + 3)  # large enough for the hash thread


def _threads() -> int:
    return sum(1 for t in threading.enumerate() if t.daemon)


def test_a_large_download_is_hashed_on_a_second_thread_to_the_same_digest(tmp_path):
    before = _threads()
    with open(tmp_path / "f", "ab") as f:
        w = HashingWriter(f, "sha256", len(DATA))
        assert w.hashers._thread is not None, "a file this large must be hashed beside the write"
        for i in range(0, len(DATA), 10 << 20):
            w.write(DATA[i : i + (10 << 20)])
        assert w.digest == "sha256:" + hashlib.sha256(DATA).hexdigest()
    assert _threads() == before
    assert (tmp_path / "f").read_bytes() == DATA


def test_a_resumed_download_hashes_the_bytes_already_on_disk_first(tmp_path):
    cut = 7 << 20
    (tmp_path / "f").write_bytes(DATA[:cut])
    with open(tmp_path / "f", "ab") as f:
        w = HashingWriter(f, "git-sha1", len(DATA))
        w.write(memoryview(DATA)[cut:])  # not bytes: copied before another thread sees it
        expected = hashlib.sha1(b"blob %d\0" % len(DATA) + DATA).hexdigest()
        assert w.digest == f"git-sha1:{expected}"


def test_a_server_that_ignores_range_is_rehashed_from_what_is_left(tmp_path):
    (tmp_path / "f").write_bytes(DATA[: 3 << 20])
    with open(tmp_path / "f", "ab") as f:
        w = HashingWriter(f, "sha256", len(DATA))
        w.write(b"junk" * 1000)
        f.seek(0)
        w.truncate(0)  # what http_get does when the answer is a 200 from byte 0
        w.write(DATA)
        assert w.digest == "sha256:" + hashlib.sha256(DATA).hexdigest()


def test_too_many_bytes_stop_the_hash_thread_too(tmp_path):
    before = _threads()
    with open(tmp_path / "f", "ab") as f:
        w = HashingWriter(f, "sha256", len(DATA))
        w.write(DATA)
        with pytest.raises(TooLarge):
            w.write(b"x")
        w.close()
    assert _threads() == before


def test_busy_pipelines_hash_inline_and_agree(monkeypatch):
    import bundler.io.hashing as hashing

    monkeypatch.setattr(hashing, "_pipelines", threading.BoundedSemaphore(1))
    first, second = hashlib.sha256(), hashlib.sha256()
    a, b = Hashers([first], len(DATA)), Hashers([second], len(DATA))
    assert a._thread is not None and b._thread is None  # one slot: the second hashes inline
    for h in (a, b):
        h.update(DATA)
        h.finish()
    assert first.hexdigest() == second.hexdigest() == hashlib.sha256(DATA).hexdigest()
    c = Hashers([hashlib.sha256()], len(DATA))
    assert c._thread is not None, "a finished pipeline gives its slot back"
    c.finish()
