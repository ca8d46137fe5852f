"""Plain data: the values a build argument (and so a manifest field that holds one) may take.

A build writes them into ``bundle.yaml`` as JSON and hands them to ``bentoml.use_arguments`` on
the deploy host, so they must survive both: strings, finite numbers, booleans, null, lists and
string-keyed mappings, nested no deeper than a person would write. One checker serves the build
(refusing a value at the door) and the reader (refusing a hostile manifest), so a build never
writes a value its own reader refuses.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 32  # real argument values nest two or three deep; 32 keeps every walk far from the recursion limit
MAX_ITEMS = 100_000


class NotPlain(ValueError):
    """A value that is not plain data; the message says where inside it and why."""


def plain(value: Any, where: str = "the value", *, _depth: int = 0) -> Any:
    """``value`` as plain data (tuples become lists), or ``NotPlain`` naming ``where`` inside it went wrong."""
    if _depth > MAX_DEPTH:
        raise NotPlain(f"{where} is nested more than {MAX_DEPTH} deep")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if abs(value) >= 10**100:
            raise NotPlain(f"{where} is a number too large to record")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotPlain(f"{where} is {value!r}, which JSON cannot hold")
        return value
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS:
            raise NotPlain(f"{where} has more than {MAX_ITEMS} items")
        return [plain(v, f"{where}[{i}]", _depth=_depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if len(value) > MAX_ITEMS:
            raise NotPlain(f"{where} has more than {MAX_ITEMS} keys")
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise NotPlain(f"{where} has a key {k!r} that is not a string")
            out[k] = plain(v, f"{where}.{k}", _depth=_depth + 1)
        return out
    raise NotPlain(f"{where} is a {type(value).__name__}, not a string, number, boolean, list or mapping")
