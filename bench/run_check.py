"""Benchmark: `bundler run DIR --check --no-import` on a pulled Hub model, default (the stamps a
pull left) and `--verify` (re-hash every byte), beside `b3sum` and `sha256sum` of the same files
(the Hub pins LFS files by sha256, so that is the hash `--verify` computes).

    python bench/run_check.py [MODEL_MIB ...]     (default 1024 4096; b3sum from Debian's `b3sum`)

The model comes from the loopback fake Hub, pulled once; the files are read from a warm page
cache (read once before timing). `--no-import` so the number is the check itself, not Python
importing a service. Best of 5, alternating which runs first. The marker check's own cost is the
default run minus a run of a bundle with no models (the start-up of the command).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
BUNDLER = [sys.executable, "-m", "bundler"]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def pulled(root: Path, hub, mib: int, name: str, env: dict[str, str]) -> Path:
    """A project whose one Hub model holds ``mib`` MiB in four files, built and pulled."""
    repo = f"acme/{name}"
    hub.create_repo(repo)
    files = {f"model-{i}.safetensors": os.urandom((mib << 20) // 4) for i in range(4)} if mib else {}
    files["config.json"] = b"{}"
    hub.commit(repo, files)
    del files
    proj = root / name
    proj.mkdir()
    (proj / "service.py").write_text(f'import bundler\n\n@bundler.service\nclass S:\n    m = bundler.HuggingFaceModel("{repo}")\n')
    bundle = root / f"{name}.bundle.tar"
    subprocess.run([*BUNDLER, "build", str(proj / "service.py"), "--no-env", "-o", str(bundle)], check=True, env=env, stdout=subprocess.DEVNULL)
    dest = root / f"{name}-deploy"
    subprocess.run([*BUNDLER, "pull", str(bundle), "--to", str(dest)], check=True, env=env, stderr=subprocess.DEVNULL)
    return dest


def main() -> None:
    from tests.fakehub import FakeHub
    from verify import sizes_and_b3sum

    sizes, b3sum = sizes_and_b3sum()
    for mib in sizes:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d, FakeHub() as hub:
            root = Path(d)
            env = {**os.environ, "HF_ENDPOINT": hub.url, "BUNDLER_HOME": str(root / "home"),
                   "HF_HUB_CACHE": str(root / "hf"), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
            dest = pulled(root, hub, mib, "big", env)
            empty = pulled(root, hub, 0, "empty", env)
            blobs = sorted(str(p) for p in (root / "hf" / "models--acme--big" / "blobs").iterdir())
            subprocess.run(["cat", *blobs], check=True, stdout=subprocess.DEVNULL)
            runs: dict[str, list[float]] = {"check (stamps)": [], "check --verify": [], "b3sum": [], "sha256sum": [], "start-up only": []}
            for i in range(5):
                steps = [
                    ("check (stamps)", [*BUNDLER, "run", str(dest), "--check", "--no-import"]),
                    ("check --verify", [*BUNDLER, "run", str(dest), "--check", "--no-import", "--verify"]),
                    ("b3sum", [b3sum, "--no-names", *blobs]),
                    ("sha256sum", ["sha256sum", *blobs]),
                    ("start-up only", [*BUNDLER, "run", str(empty), "--check", "--no-import"]),
                ]
                for label, cmd in steps if i % 2 == 0 else reversed(steps):
                    runs[label].append(timed(cmd, env))
            best = {k: min(v) for k, v in runs.items()}
            print(f"{mib} MiB in 4 files: " + ", ".join(f"{k} {v:.3f} s" for k, v in best.items())
                  + f"; --verify / b3sum {best['check --verify'] / best['b3sum']:.2f}x, / sha256sum {best['check --verify'] / best['sha256sum']:.2f}x"
                  + f"; the stamp check itself {1000 * (best['check (stamps)'] - best['start-up only']):.0f} ms")


if __name__ == "__main__":
    main()
