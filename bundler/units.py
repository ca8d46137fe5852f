"""Human-readable quantities for CLI output."""

from __future__ import annotations


def human_size(n: float) -> str:
    """``2048`` -> ``2.0 KiB``; bytes stay whole."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
