"""Benchmark: bundler's file hashing (blake3, mmap + threads) beside b3sum and hashlib.sha256.

    python bench/hash.py [SIZE_MIB]      (default 1024; b3sum from Debian's `b3sum` package)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from bundler.io.hashing import blake3_file, sha256_file

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        path = Path(d) / "weights.bin"
        with open(path, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(size):
                f.write(block)
        gb = size / 1024
        subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
        print(f"file: {size} MiB, {os.cpu_count()} cores")
        t_ours, ours = timed(lambda: blake3_file(path))
        rows = [("bundler blake3_file", t_ours)]
        b3sum = shutil.which("b3sum")
        if b3sum:
            t_b3, out = timed(lambda: subprocess.run([b3sum, "--no-names", str(path)], capture_output=True, text=True, check=True).stdout)
            assert out.strip() == ours.split(":", 1)[1], "b3sum disagrees"
            rows.append(("b3sum", t_b3))
        t_sha, _ = timed(lambda: sha256_file(path), repeat=1)
        rows.append(("hashlib.sha256", t_sha))
        for name, t in rows:
            print(f"{name:22} {gb / t:6.2f} GiB/s  ({t:.3f} s)")
        if b3sum:
            print(f"ratio bundler/b3sum time: {t_ours / t_b3:.2f}x   target <= 1.3x")
        print(f"ratio sha256/bundler time: {t_sha / t_ours:.2f}x")


if __name__ == "__main__":
    main()
