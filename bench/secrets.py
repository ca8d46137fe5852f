"""The credential check rides on the hashing read: its cost beside plain hashing of sources.

    python bench/secrets.py     (2,000 small source files, then one 256 MiB source file)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bundler.io.hashing import blake3_file  # noqa: E402
from bundler.project.secrets import hash_and_scan  # noqa: E402


def best(fn, files, n=5) -> float:
    out = 9e9
    for _ in range(n):
        t = time.perf_counter()
        for f in files:
            fn(f)
        out = min(out, time.perf_counter() - t)
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        small = []
        for i in range(2000):
            p = root / f"mod_{i}.py"
            p.write_text(f"import os\nVALUE_{i} = {i}\nNAME = 'acme/model-{i}'\n" * 40)
            small.append(p)
        big = root / "big.txt"
        line = b"some ordinary text, an id acme/model-1 and a number 12345 on every line\n"
        with open(big, "wb") as f:
            for _ in range((256 << 20) // len(line)):
                f.write(line)
        for name, files in (("2,000 small sources", small), ("one 256 MiB source", [big])):
            plain = best(blake3_file, files)
            scan = best(lambda f: hash_and_scan(f, f.name), files)
            print(f"{name:<22} hash only {plain * 1000:8.1f} ms   hash + secret scan {scan * 1000:8.1f} ms   ratio {scan / plain:.2f}x")


if __name__ == "__main__":
    main()
