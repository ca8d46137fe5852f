"""Benchmark: `bundler build --gzip` beside `tar -I pigz -cf` and `tar czf` of the same files
(the project and its store model's files), on the same cores.

    python bench/gzip.py [MODEL_MIB]     (default 1024; pigz from Debian's `pigz`)

Order-fair: rounds alternate who goes first, each run is timed together with the `sync` that
writes its output. Best of 3. The weights are half random, half text-like, so compression works.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import BUNDLER, synced  # noqa: E402


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    if not shutil.which("pigz"):
        sys.exit("pigz not found (apt-get install pigz)")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        root = Path(d)
        os.environ["BUNDLER_HOME"] = str(root / "home")
        proj = root / "proj"
        proj.mkdir()
        (proj / "service.py").write_text("import bundler\n\n\n@bundler.service\nclass Svc:\n    w = bundler.StoreModel('gz-weights:latest')\n")
        model = root / "model"
        model.mkdir()
        text = (b"layer.%d.weight = [0.125, 0.25, 0.5]\n" * 30000)[: 1 << 20]
        with open(model / "weights.bin", "wb") as f:
            for i in range(mib):
                f.write(os.urandom(1 << 20) if i % 2 else text)
        subprocess.run([*BUNDLER, "models", "import", "gz-weights", str(model)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*BUNDLER, "lock", str(proj / "service.py"), "--no-env"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        runs: dict[str, list[float]] = {"bundler build --gzip": [], "tar -I pigz": [], "tar czf": []}
        steps = {
            "bundler build --gzip": [*BUNDLER, "build", str(proj / "service.py"), "--offline", "--no-env", "--gzip", "-o", str(root / "b.bundle.tar.gz")],
            "tar -I pigz": ["tar", "-I", "pigz", "-cf", str(root / "p.tar.gz"), "-C", str(root), "proj", "model"],
            "tar czf": ["tar", "czf", str(root / "t.tar.gz"), "-C", str(root), "proj", "model"],
        }
        for i in range(3):
            for label in (list(steps) if i % 2 == 0 else list(reversed(steps))):
                runs[label].append(synced(steps[label]))
        best = {k: min(v) for k, v in runs.items()}
        sizes = {"bundler build --gzip": root / "b.bundle.tar.gz", "tar -I pigz": root / "p.tar.gz", "tar czf": root / "t.tar.gz"}
        print(f"{os.cpu_count()} cores, {mib} MiB model, best of 3, alternating, with sync")
        for k, v in best.items():
            print(f"  {k:22s} {v:7.2f} s  {sizes[k].stat().st_size >> 20} MiB")
        print(f"  bundler / pigz: {best['bundler build --gzip'] / best['tar -I pigz']:.2f}x; bundler / tar czf: {best['bundler build --gzip'] / best['tar czf']:.2f}x")


if __name__ == "__main__":
    main()
