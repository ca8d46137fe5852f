"""``bundler run DIR --check --audit``: every Hub look-up the service makes while it is imported
and instantiated, offline, each with its call site; the ones outside the bundle's pins fail.

No static scan sees a model id built at run time; this sees what the process really asks
huggingface_hub for. The entry points that transformers, diffusers, sentence-transformers and
BentoML go through (``hf_hub_download``, ``snapshot_download``) are wrapped before the service
is imported, so the names those libraries import are the wrapped ones.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import kinds
from ..model.pins import Pin

_LIBRARIES = (os.sep + "huggingface_hub" + os.sep, os.sep + "bundler" + os.sep, os.sep + "transformers" + os.sep,
              os.sep + "diffusers" + os.sep, os.sep + "sentence_transformers" + os.sep, os.sep + "_bentoml_sdk" + os.sep,
              os.sep + "bentoml" + os.sep, os.sep + "peft" + os.sep, "<frozen ")


@dataclass(frozen=True)
class Lookup:
    call: str  # hf_hub_download | snapshot_download
    repo_id: str
    revision: str | None
    filename: str | None
    where: str  # file:line of the call in the service's code (or the nearest frame outside the libraries)

    def __str__(self) -> str:
        what = f"{self.repo_id}" + (f" {self.filename}" if self.filename else "") + f" at {self.revision or 'main'}"
        return f"{self.where}: {self.call}({what})"


class HubAudit:
    """Records every look-up; ``outside(pins)`` lists those the bundle does not pin."""

    def __init__(self, src: Path) -> None:
        self.src = str(src.resolve()) + os.sep
        self.lookups: list[Lookup] = []

    def install(self) -> None:
        import huggingface_hub
        from huggingface_hub import _snapshot_download, file_download

        for module, name in ((file_download, "hf_hub_download"), (huggingface_hub, "hf_hub_download"),
                             (_snapshot_download, "snapshot_download"), (huggingface_hub, "snapshot_download")):
            original = getattr(module, name)
            if not getattr(original, "__bundler_audit__", False):
                setattr(module, name, self._wrap(name, original))

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def audited(*args: Any, **kwargs: Any) -> Any:
            repo_id = kwargs.get("repo_id", args[0] if args else "?")
            filename = kwargs.get("filename", args[1] if len(args) > 1 and name == "hf_hub_download" else None)
            self.lookups.append(Lookup(name, str(repo_id), kwargs.get("revision"), filename, self._site()))
            return original(*args, **kwargs)

        audited.__bundler_audit__ = True  # type: ignore[attr-defined]
        audited.__wrapped__ = original  # type: ignore[attr-defined]
        return audited

    def _site(self) -> str:
        frames = traceback.extract_stack()[:-2]
        mine = [f for f in frames if f.filename.startswith(self.src)]
        outside = [f for f in frames if not any(lib in f.filename for lib in _LIBRARIES)]
        frame = (mine or outside or frames)[-1]
        shown = frame.filename[len(self.src):] if frame.filename.startswith(self.src) else frame.filename
        return f"{shown}:{frame.lineno}"

    def outside(self, pins: list[Pin]) -> list[Lookup]:
        """The look-ups no Hub pin covers: another repository, a revision that is not the pinned
        commit (a branch resolves to whatever it names on that host), or a file the pin lacks."""
        hub = [p for p in pins if kinds.of(p).hub]

        def pinned(lookup: Lookup) -> bool:
            for p in hub:
                if lookup.repo_id.lower() not in {p.id.lower(), (p.hub_id or p.id).lower()}:
                    continue
                if lookup.revision != p.commit:
                    continue
                if lookup.filename is None or lookup.filename in {f.path for f in p.files}:
                    return True
            return False

        seen: list[Lookup] = []
        for lookup in self.lookups:
            if not pinned(lookup) and lookup not in seen:
                seen.append(lookup)
        return seen
