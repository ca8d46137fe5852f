"""Benchmark: `bundler pull` (download + verify) beside `huggingface_hub.snapshot_download` of the
same files from the loopback fake Hub, and a no-op second pull.

    python bench/pull.py [FILE_MIB]      (default 256: 4 files x 256 MiB)
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
sys.path.insert(0, str(ROOT))


def timed(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    from tests.fakehub import FakeHub

    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d, FakeHub() as hub:
        root = Path(d)
        hub.create_repo("acme/bench")
        files = {f"model-{i:05d}-of-00004.safetensors": os.urandom(mib << 20) for i in range(4)}
        files["config.json"] = b"{}"
        commit = hub.commit("acme/bench", files)
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.url,
            "BUNDLER_HOME": str(root / "home"),
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        proj = root / "proj"
        proj.mkdir()
        (proj / "service.py").write_text('import bundler\n\n@bundler.service\nclass S:\n    m = bundler.HuggingFaceModel("acme/bench")\n')
        bundle = root / "bench.bundle.tar"
        subprocess.run([sys.executable, "-m", "bundler", "build", str(proj / "service.py"), "-o", str(bundle)], check=True, env=env, stdout=subprocess.DEVNULL)
        snap = (
            "import sys\nfrom huggingface_hub import snapshot_download\n"
            "snapshot_download('acme/bench', revision=sys.argv[1], cache_dir=sys.argv[2], max_workers=8)\n"
        )
        ours, theirs = [], []
        for i in range(2):
            c1, c2 = root / f"c-ours-{i}", root / f"c-hf-{i}"
            ours.append(timed([sys.executable, "-m", "bundler", "pull", str(bundle), "--cache-dir", str(c1), "--to", str(root / f"d{i}"), "--jobs", "8"], env))
            theirs.append(timed([sys.executable, "-c", snap, commit, str(c2)], env))
            if i == 0:
                shutil.rmtree(c2)
        noop = min(timed([sys.executable, "-m", "bundler", "pull", str(bundle), "--cache-dir", str(root / "c-ours-1"), "--to", str(root / "d1")], env) for _ in range(3))
        total = 4 * mib
        to, tt = min(ours), min(theirs)
        print(f"repo: 4 x {mib} MiB on the loopback fake Hub, {os.cpu_count()} cores")
        print(f"bundler pull (download + verify every file): {to:6.2f} s  {total / to:6.0f} MiB/s")
        print(f"huggingface_hub.snapshot_download:           {tt:6.2f} s  {total / tt:6.0f} MiB/s")
        print(f"ratio pull/snapshot_download: {to / tt:.2f}x   target <= 1.1")
        print(f"no-op second pull: {noop * 1000:.0f} ms   target < 500 ms")


if __name__ == "__main__":
    main()
