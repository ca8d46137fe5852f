"""Indented JSON text, fast: the manifest's bytes and every ``--json`` answer.

``json.dumps(indent=...)`` switches to the pure-Python encoder: 20,000 file entries take a few
hundred milliseconds that way. Here the structure is indented by hand and each file entry (a
manifest's source list can be 20,000 of them) is one line, written by an f-string or the C encoder.
The manifest's bytes come from here too, so this output is part of what makes a bundle
byte-identical: change it and every bundle digest stays, but every archive changes.
"""

from __future__ import annotations

import json
import re
from typing import Any

_LINE_KEYS = frozenset({"path", "size", "hash", "xet"})
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')


def json_text(value: Any, indent: int = 2) -> str:
    """``value`` as JSON text, ``indent`` spaces a level; a list of file entries gets one line each."""
    return _dump(value, 0, indent)


def _file_line(f: dict[str, Any]) -> str:
    """One file entry as ``json.dumps`` writes it, without its per-call cost where nothing in
    it needs escaping (the common case)."""
    path, size, hash_ = f.get("path"), f.get("size"), f.get("hash")
    if (list(f) == ["path", "size", "hash"] and type(path) is str and type(size) is int and type(hash_) is str
            and not _NEEDS_ESCAPE.search(path) and not _NEEDS_ESCAPE.search(hash_)):
        return f'{{"path": "{path}", "size": {size}, "hash": "{hash_}"}}'
    return json.dumps(f, ensure_ascii=False)


def _key(k: Any) -> str:
    # json.dumps writes a non-string key (int, bool, None) as the string of its JSON value.
    return json.dumps(k if isinstance(k, str) else json.dumps(k), ensure_ascii=False)


def _dump(v: Any, level: int, step: int) -> str:
    pad, inner = " " * level, " " * (level + step)
    if isinstance(v, dict) and v:
        items = (f"{inner}{_key(k)}: {_dump(x, level + step, step)}" for k, x in v.items())
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(v, (list, tuple)) and v:
        if all(type(x) is dict and x and x.keys() <= _LINE_KEYS for x in v):  # file lists: one line each
            items = (inner + _file_line(x) for x in v)
        else:
            items = (inner + _dump(x, level + step, step) for x in v)
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(v, ensure_ascii=False)
