"""Keep bundles lean: a repository that holds the same weights in several formats or precisions
(safetensors, fp16, ONNX, OpenVINO, pickle, ...) is pinned whole unless the patterns say
otherwise; `bundler lock` says what each family adds and the pattern that keeps one."""

from __future__ import annotations

import fnmatch
import os

from ..model.pins import Pin
from ..units import human_size

# Names that say pickle: such weights run code when they are loaded.
PICKLE = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")
# (family, the patterns that select its files), tried in order: the first that matches a file wins
FAMILIES: list[tuple[str, tuple[str, ...]]] = [
    ("openvino", ("openvino/*", "*openvino*")),
    ("onnx", ("onnx/*", "*.onnx", "*.onnx_data")),
    ("fp16 safetensors", ("*.fp16.safetensors", "*fp16*.safetensors")),
    ("safetensors", ("*.safetensors",)),
    ("pickle (runs code when loaded)", PICKLE),
    ("gguf", ("*.gguf",)),
    ("flax", ("*.msgpack",)),
    ("tensorflow", ("*.h5", "*.keras")),
]
_MIN_FAMILY = 1 << 20  # a family under a MiB is not weights worth a hint


def families(pin: Pin) -> dict[str, int]:
    """Bytes per weight family in the pinned files."""
    out: dict[str, int] = {}
    for f in pin.files:
        for name, patterns in FAMILIES:
            if any(fnmatch.fnmatch(f.path, p) or fnmatch.fnmatch(f.path.rsplit("/", 1)[-1], p) for p in patterns):
                out[name] = out.get(name, 0) + f.size
                break
    return {k: v for k, v in out.items() if v >= _MIN_FAMILY}


def hint(pin: Pin) -> str | None:
    """One line when ``pin`` carries weights in more than one family, else None."""
    found = families(pin)
    if len(found) < 2:
        return None
    keep = "safetensors" if "safetensors" in found else max(found, key=lambda k: found[k])
    drop = [p for name, patterns in FAMILIES if name in found and name != keep for p in patterns]
    sizes = ", ".join(f"{name} {human_size(size)}" for name, size in sorted(found.items(), key=lambda kv: -kv[1]))
    return (f"{pin.label}: the same weights in {len(found)} formats ({sizes}); keeping only {keep} saves "
            f"{human_size(sum(v for k, v in found.items() if k != keep))}: exclude={drop!r}")


def pickle_by_content(path: str | os.PathLike[str]) -> str | None:
    """What a file's first bytes say, when they say pickle: a pickle stream (protocol 2 and up
    begins with PROTO) or a zip archive (torch.save's format, a pickle inside); else None."""
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a pickle stream"
    if head == b"PK\x03\x04":
        return "a zip archive (torch.save's format: a pickle inside)"
    return None


def pickle_files(pin: Pin) -> list[str]:
    """The pinned files whose names say pickle (they run code when loaded)."""
    return [f.path for f in pin.files if any(fnmatch.fnmatch(f.path.rsplit("/", 1)[-1], p) for p in PICKLE)]
