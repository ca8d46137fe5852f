"""Tiny, valid, pure-Python wheels built byte for byte in tests: what a ``--find-links``
directory holds, so that locking and installing need no index."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(directory: Path, name: str, version: str, requires: tuple[str, ...] = (), code: str | None = None,
               extra: dict[str, bytes] | None = None) -> Path:
    """``name-version-py3-none-any.whl`` in ``directory``: a module ``name`` whose VERSION is
    ``version`` (``code`` replaces it), depending on ``requires``, plus ``extra`` members."""
    mod = name.replace("-", "_")
    dist = f"{mod}-{version}"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{mod}/__init__.py": (code if code is not None else f"VERSION = {version!r}\n").encode(),
        f"{dist}.dist-info/METADATA": metadata.encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: bundler-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        **(extra or {}),
    }
    record = "".join(f"{p},{_record_hash(b)},{len(b)}\n" for p, b in files.items()) + f"{dist}.dist-info/RECORD,,\n"
    files[f"{dist}.dist-info/RECORD"] = record.encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, b in files.items():
            z.writestr(zipfile.ZipInfo(p, (2020, 1, 1, 0, 0, 0)), b)
    return path
