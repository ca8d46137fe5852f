"""Benchmark: `bundler build` of a 2 GiB store model + sources beside `tar cf` of the same files,
and `bundler inspect` on that bundle beside a 10 MB one.

    python bench/build.py [MODEL_MIB]     (default 2048)
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
BUNDLER = [sys.executable, "-m", "bundler"]

# Start-up is timed as an installed bundler has it: pip writes bytecode at install, while an
# editable checkout under PYTHONDONTWRITEBYTECODE=1 would compile every module on every run.
subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "bundler")], check=True)


def run(cmd: list[str], **kw) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def synced(cmd: list[str]) -> float:
    subprocess.run(["sync"], check=True)
    return run(cmd) + run(["sync"])


def make_project(root: Path, model_mib: int, name: str) -> Path:
    proj = root / name
    (proj / "app").mkdir(parents=True)
    (proj / "service.py").write_text(
        "import bundler\n\n\n@bundler.service\nclass Svc:\n"
        f"    weights = bundler.StoreModel('{name}-weights:latest')\n"
    )
    for i in range(200):  # a source tree of ~200 small modules
        (proj / "app" / f"mod_{i}.py").write_text(f"VALUE_{i} = {i}\n" * 50)
    model = root / f"{name}-model"
    model.mkdir()
    shard = max(1, model_mib // 4)
    block = os.urandom(1 << 20)
    for s in range(4):
        with open(model / f"shard-{s}.safetensors", "wb") as f:
            for _ in range(shard):
                f.write(block)
    subprocess.run([*BUNDLER, "models", "import", f"{name}-weights", str(model)], check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(model)
    return proj


def main() -> None:
    model_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 2048
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        root = Path(d)
        os.environ["BUNDLER_HOME"] = str(root / "home")
        big = make_project(root, model_mib, "big")
        small = make_project(root, 10, "small")
        store_big = next((root / "home" / "models" / "big-weights").glob("*/files"))
        out = root / "out"
        out.mkdir()

        # Order-fair: pairs alternate which runs first, and each run is timed together with the
        # `sync` that writes its output back (neither leaves its dirty pages to the other).
        builds, tars = [], []
        for i in range(4):
            ours = lambda: builds.append(synced([*BUNDLER, "build", str(big / "service.py"), "--offline", "-o", str(out / f"b{i}.bundle.tar")]))  # noqa: E731
            ref = lambda: tars.append(synced(["tar", "cf", str(out / f"t{i}.tar"), "-C", str(big), ".", "-C", str(store_big), "."]))  # noqa: E731
            for fn in ((ours, ref) if i % 2 == 0 else (ref, ours)):
                fn()
            (out / f"b{i}.bundle.tar").unlink() if i < 3 else None
            (out / f"t{i}.tar").unlink()
        bundle = out / "b3.bundle.tar"
        run([*BUNDLER, "build", str(small / "service.py"), "--offline", "-o", str(out / "small.bundle.tar")])

        size = bundle.stat().st_size / (1 << 20)
        tb, tt = min(builds), min(tars)
        print(f"bundle: {size:.0f} MiB ({model_mib} MiB store model + 200 source modules), {os.cpu_count()} cores")
        print("best of 4, alternating order, each timed with the sync of its output")
        print(f"bundler build (hashes every byte):  {tb:6.2f} s  {size / tb:7.0f} MiB/s")
        print(f"tar cf (no hashing):                {tt:6.2f} s  {size / tt:7.0f} MiB/s")
        print(f"ratio build/tar: {tb / tt:.2f}x   target <= 1.0")
        for label, path in (("big", bundle), ("10 MB", out / "small.bundle.tar")):
            t = min(run([*BUNDLER, "inspect", str(path), "--json"]) for _ in range(5))
            print(f"bundler inspect {label:6} bundle ({path.stat().st_size / (1 << 20):7.1f} MiB): {t * 1000:6.0f} ms   target < 200 ms")


if __name__ == "__main__":
    main()
