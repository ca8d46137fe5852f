"""Benchmark: `bundler inspect --verify` (re-hash every member against the manifest) beside
`b3sum` of the same bundle file.

    python bench/verify.py [MODEL_MIB ...]     (default 1024 4096; b3sum from Debian's `b3sum`)

Both read the same bytes from a warm page cache (the bundle is read once before timing): this
measures hashing speed, not the disk. Best of 5, alternating which runs first.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import BUNDLER, make_project, run  # noqa: E402


def sizes_and_b3sum() -> tuple[list[int], str]:
    """The MiB sizes asked for (default 1 and 4 GiB) and b3sum's path; prints the conditions."""
    sizes = [int(a) for a in sys.argv[1:]] or [1024, 4096]
    b3sum = shutil.which("b3sum")
    if not b3sum:
        sys.exit("b3sum not found (apt-get install b3sum)")
    print(f"{os.cpu_count()} cores; best of 5, alternating order, warm page cache")
    return sizes, b3sum


def main() -> None:
    sizes, b3sum = sizes_and_b3sum()
    for mib in sizes:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
            root = Path(d)
            os.environ["BUNDLER_HOME"] = str(root / "home")
            proj = make_project(root, mib, "big")
            bundle = root / "big.bundle.tar"
            run([*BUNDLER, "build", str(proj / "service.py"), "--offline", "-o", str(bundle)])
            run(["cat", str(bundle)])  # both timed runs start from the same warm cache
            ours, ref = [], []
            for i in range(5):
                a = lambda: ours.append(run([*BUNDLER, "inspect", str(bundle), "--verify"]))  # noqa: E731
                b = lambda: ref.append(run([b3sum, "--no-names", str(bundle)]))  # noqa: E731
                for fn in ((a, b) if i % 2 == 0 else (b, a)):
                    fn()
            size = bundle.stat().st_size / (1 << 20)
            to, tr = min(ours), min(ref)
            print(f"{size:6.0f} MiB bundle: inspect --verify {to:6.2f} s ({size / to:5.0f} MiB/s)   "
                  f"b3sum {tr:6.2f} s ({size / tr:5.0f} MiB/s)   ratio {to / tr:.2f}x   target <= 1.5")


if __name__ == "__main__":
    main()
