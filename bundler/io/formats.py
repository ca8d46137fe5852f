"""What a weights file is, by its bytes, never its name: a pickle renamed ``model.safetensors``
still runs code when it is loaded.

Only the first bytes are read (and, for a zip, its central directory): recognising a format
costs no second pass over the data.
"""

from __future__ import annotations

import os
import struct
import zipfile
from typing import BinaryIO

#: Every value ``sniff`` gives (a manifest's ``format`` must be one of them).
FORMATS = frozenset({"safetensors", "gguf", "pickle", "torch-zip", "zip", "numpy", "hdf5", "onnx"})
#: Formats whose loading runs code the file holds.
RUNS_CODE = frozenset({"pickle", "torch-zip"})

_HEAD = 16
_MAX_SAFETENSORS_HEADER = 100 << 20  # the format's own limit on its JSON header


def sniff(path: str | os.PathLike[str]) -> str | None:
    """The format of the file at ``path`` from its content, or None when it is none of
    ``FORMATS`` (text, configs, tokenizers, something new)."""
    with open(path, "rb") as f:
        head = f.read(_HEAD)
        size = os.fstat(f.fileno()).st_size
        kind = sniff_head(head, size, os.fspath(path))
        if kind == "zip":
            kind = _zip_kind(f)
    return kind


def sniff_head(head: bytes, size: int, name: str = "") -> str | None:
    """``sniff`` from the first bytes alone (a zip is "zip" here; ``sniff`` looks inside)."""
    if len(head) >= 9 and head[8:9] == b"{":
        (header,) = struct.unpack("<Q", head[:8])
        if 2 <= header <= min(_MAX_SAFETENSORS_HEADER, size - 8):
            return "safetensors"
    if head.startswith(b"GGUF"):
        return "gguf"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # PROTO: pickle protocol 2 and up
        return "pickle"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if name.endswith(".onnx") and head[:1] == b"\x08":  # a protobuf ModelProto opens with ir_version
        return "onnx"
    return None


def _zip_kind(f: BinaryIO) -> str:
    """torch.save's zip holds ``<name>/data.pkl``: a pickle inside; any other zip is a zip."""
    try:
        names = zipfile.ZipFile(f).namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return "zip"
    return "torch-zip" if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names) else "zip"
