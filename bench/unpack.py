"""Benchmark: a local `bundler pull` (unpack, verify every byte, land the store model) beside
`tar xf` of the same bundle.

    python bench/unpack.py [MODEL_MIB]      (default 1024)

Order-fair: pairs alternate which runs first; each run starts after `sync` and, as root, with
the page cache dropped (both read the bundle cold), and is timed together with the `sync` that
writes its output back. Best of 4 each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import BUNDLER, make_project, run  # noqa: E402


def cold() -> str:
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "cold (page cache dropped before each run)"
    except OSError:
        return "warm (not root: the page cache could not be dropped)"


def main() -> None:
    model_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        root = Path(d)
        os.environ["BUNDLER_HOME"] = str(root / "home")
        proj = make_project(root, model_mib, "big")
        bundle = root / "big.bundle.tar"
        run([*BUNDLER, "build", str(proj / "service.py"), "--offline", "-o", str(bundle)])
        ours, tars = [], []
        state = ""
        for i in range(4):
            def pull() -> None:
                nonlocal state
                dest, home = root / f"pulled{i}", root / f"deploy-home{i}"
                state = cold()
                env = {**os.environ, "BUNDLER_HOME": str(home)}
                ours.append(run([*BUNDLER, "pull", str(bundle), "--to", str(dest)], env=env, stderr=subprocess.DEVNULL) + run(["sync"]))
                shutil.rmtree(dest)
                shutil.rmtree(home)

            def untar() -> None:
                dest = root / f"untarred{i}"
                dest.mkdir()
                cold()
                tars.append(run(["tar", "xf", str(bundle), "-C", str(dest)]) + run(["sync"]))
                shutil.rmtree(dest)

            for fn in ((pull, untar) if i % 2 == 0 else (untar, pull)):
                fn()
        size = bundle.stat().st_size / (1 << 20)
        print(f"bundle: {size:.0f} MiB ({model_mib} MiB store model + 200 source modules), {os.cpu_count()} cores, {state}")
        print(f"bundler pull (verifies every byte, lands the store model): {min(ours):6.2f} s")
        print(f"tar xf (no verification):                                  {min(tars):6.2f} s")
        print(f"ratio pull/tar: {min(ours) / min(tars):.2f}x   target <= 1.3")


if __name__ == "__main__":
    main()
