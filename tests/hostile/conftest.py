"""Fixtures of the hostile-input tests: a small built bundle, a tiny disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundler.ops.build import build
from bundler.stores.local import Store

from .helpers import SERVICE


@pytest.fixture
def bundle(tmp_path) -> Path:
    """A bundle needing no Hub: one embedded store model."""
    head = tmp_path / "head"
    head.mkdir()
    (head / "weights.bin").write_bytes(b"w" * 1000)
    Store().import_dir("tiny-head", head)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE)
    return build(proj / "service.py", output=tmp_path / "tiny.bundle.tar").path


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB file system: writes past it fail with ENOSPC, as on a full disk."""
    import subprocess as sp

    mnt = tmp_path / "small"
    mnt.mkdir()
    if sp.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    yield mnt
    sp.run(["umount", str(mnt)], check=False)
