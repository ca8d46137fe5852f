"""Benchmark: `bundler build --gzip` beside `tar -I pigz -cf` and `tar czf`, and `bundler build
--zstd` beside `tar -I 'zstd -T0'`, of the same files (the project and its store model's files),
on the same cores.

    python bench/gzip.py [MODEL_MIB]     (default 1024; pigz and zstd from Debian's `pigz`, `zstd`)

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
    if not shutil.which("pigz") or not shutil.which("zstd"):
        sys.exit("pigz or zstd not found (apt-get install pigz zstd)")
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
        steps = {
            "bundler build --zstd": [*BUNDLER, "build", str(proj / "service.py"), "--offline", "--no-env", "--zstd", "-o", str(root / "b.bundle.tar.zst")],
            "tar -I 'zstd -T0'": ["tar", "-I", "zstd -T0", "-cf", str(root / "z.tar.zst"), "-C", str(root), "proj", "model"],
            "bundler build --gzip": [*BUNDLER, "build", str(proj / "service.py"), "--offline", "--no-env", "--gzip", "-o", str(root / "b.bundle.tar.gz")],
            "tar -I pigz": ["tar", "-I", "pigz", "-cf", str(root / "p.tar.gz"), "-C", str(root), "proj", "model"],
            "tar czf": ["tar", "czf", str(root / "t.tar.gz"), "-C", str(root), "proj", "model"],
        }
        runs: dict[str, list[float]] = {k: [] for k in steps}
        for i in range(3):
            for label in (list(steps) if i % 2 == 0 else list(reversed(steps))):
                runs[label].append(synced(steps[label]))
        best = {k: min(v) for k, v in runs.items()}
        sizes = {label: Path(cmd[cmd.index("-o") + 1] if "-o" in cmd else cmd[cmd.index("-cf") + 1] if "-cf" in cmd else cmd[2])
                 for label, cmd in steps.items()}
        print(f"{os.cpu_count()} cores, {mib} MiB model, best of 3, alternating, with sync")
        for k, v in best.items():
            print(f"  {k:22s} {v:7.2f} s  {sizes[k].stat().st_size >> 20} MiB")
        print(f"  bundler / pigz: {best['bundler build --gzip'] / best['tar -I pigz']:.2f}x; bundler / tar czf: {best['bundler build --gzip'] / best['tar czf']:.2f}x")
        zstd_ratio = best["bundler build --zstd"] / best["tar -I 'zstd -T0'"]
        print(f"  bundler --zstd / tar -I 'zstd -T0': {zstd_ratio:.2f}x")


if __name__ == "__main__":
    main()
