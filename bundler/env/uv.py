"""Running uv, the resolver and installer behind the environment lock, and turning its failures
into bundler's one-line errors.

uv comes from the ``uv`` package on the index (its wheel ships the binary), so ``pip install
bundler`` brings it; a ``uv`` on PATH is the fallback for installs that removed the package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Sequence

from ..errors import ProblemFound, UsageError

#: Index settings pip users already have; uv reads only its own UV_* names.
_PIP_ENV = (("PIP_INDEX_URL", "--index-url"), ("PIP_EXTRA_INDEX_URL", "--extra-index-url"), ("PIP_FIND_LINKS", "--find-links"))


def uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise UsageError("uv is not installed; bundler locks and installs Python packages with it", hint="pip install uv")


def index_args(index_url: str | None = None, find_links: Sequence[str] = (), no_index: bool = False) -> list[str]:
    """uv options for where packages come from: the command line first, then uv's own
    environment (read by uv itself), then pip's (PIP_INDEX_URL and friends)."""
    from ..settings import pip_index_settings

    pip_index, pip_extra, pip_links = pip_index_settings()
    args: list[str] = []
    if index_url:
        args += ["--index-url", index_url]
    elif pip_index:
        args += ["--index-url", pip_index]
    for url in pip_extra:
        args += ["--extra-index-url", url]
    for link in find_links:
        args += ["--find-links", str(link)]
    if not find_links:
        for link in pip_links:
            args += ["--find-links", link]
    if no_index:
        args.append("--no-index")
    return args


def run_uv(args: Sequence[str], *, doing: str, hint: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``uv ARGS``; a failure is a one-line error carrying uv's own reason."""
    from ..settings import environment

    env = {**environment(), "UV_NO_PROGRESS": "1", "NO_COLOR": "1"}
    try:
        proc = subprocess.run([uv_binary(), *args], capture_output=True, text=True, env=env)
    except OSError as e:
        raise ProblemFound(f"can't run uv ({e.strerror}) while {doing}", hint="pip install --force-reinstall uv") from None
    if proc.returncode == 0:
        return proc
    reason = uv_reason(proc.stderr)
    mismatch = re.search(r"Hash mismatch for `([^`]+)`", proc.stderr)
    if mismatch:
        raise ProblemFound(
            f"{mismatch.group(1)}: the downloaded file does not match the hash in the lock while {doing}",
            hint="the index or a mirror served different bytes; do not install it. Re-lock only if the change is expected",
        )
    if "No solution found" in proc.stderr:  # the requirements themselves (uv exits 2 for most failures)
        raise UsageError(f"{doing} failed: {reason}", hint=hint)
    raise ProblemFound(f"{doing} failed: {reason}", hint=hint)


def uv_reason(stderr: str) -> str:
    """uv's error, without warnings and blank lines, on as few lines as it takes."""
    lines = [ln.rstrip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith(("warning:", "Using Python", "Resolved", "Prepared", "Installed"))]
    text = "\n  ".join(ln.strip() for ln in lines[:12])
    return text.removeprefix("error: ") or "uv gave no reason"
