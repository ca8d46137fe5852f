"""Benchmark: `bundler pull` (download + verify every byte) beside `huggingface_hub.snapshot_download`
and the `hf download` CLI, the same files from the loopback fake Hub, and a no-op second pull.

    python bench/pull.py [--xet] [--shapes 4x1024,40x64,1x4096] [--rounds 2]

SHAPES are COUNTxMIB. With --xet the fake Hub is Xet-backed (hf_xet's own local CAS behind the
Hub's token route), so all three download through hf_xet, as they do from the real Hub; without
it, plain HTTP through the fake CDN redirect. Order-fair: rounds alternate who goes first, and
each run is timed together with the `sync` that writes its files back. Best of the rounds.
"""

from __future__ import annotations

import argparse
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
    subprocess.run(["sync"], check=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - t


def one_shape(root: Path, count: int, mib: int, xet: bool, rounds: int) -> None:
    from tests.fakehub import FakeHub

    with FakeHub() as hub:
        if xet:
            hub.enable_xet(root / "cas")
        hub.create_repo("acme/bench")
        files = {f"model-{i:05d}-of-{count:05d}.safetensors": os.urandom(mib << 20) for i in range(count)}
        files["config.json"] = b"{}"
        commit = hub.commit("acme/bench", files)
        del files
        env = {**os.environ, "HF_ENDPOINT": hub.url, "BUNDLER_HOME": str(root / "home"), "HF_HUB_DISABLE_PROGRESS_BARS": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1"}
        proj = root / "proj"
        proj.mkdir(exist_ok=True)
        (proj / "service.py").write_text('import bundler\n\n@bundler.service\nclass S:\n    m = bundler.HuggingFaceModel("acme/bench")\n')
        (proj / "bundler.lock").unlink(missing_ok=True)
        bundle = root / "bench.bundle.tar"
        subprocess.run([sys.executable, "-m", "bundler", "build", str(proj / "service.py"), "--no-env", "-o", str(bundle)],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        snap = ("import sys\nfrom huggingface_hub import snapshot_download\n"
                "snapshot_download('acme/bench', revision=sys.argv[1], cache_dir=sys.argv[2], max_workers=8)\n")
        hf = shutil.which("hf", path=str(Path(sys.executable).parent))
        runs: dict[str, list[float]] = {"bundler pull": [], "snapshot_download": [], "hf download": []}
        for i in range(rounds):
            def ours() -> None:
                runs["bundler pull"].append(timed([sys.executable, "-m", "bundler", "pull", str(bundle), "--cache-dir", str(root / f"c-ours-{i}"),
                                                   "--to", str(root / f"d{i}"), "--jobs", "8"], env))

            def theirs() -> None:
                runs["snapshot_download"].append(timed([sys.executable, "-c", snap, commit, str(root / f"c-snap-{i}")], env))

            def cli() -> None:
                if hf:
                    runs["hf download"].append(timed([hf, "download", "acme/bench", "--revision", commit, "--cache-dir", str(root / f"c-hf-{i}")], env))

            order = [ours, theirs, cli]
            for fn in order[i % 3:] + order[: i % 3]:
                fn()
            for d in (f"c-snap-{i}", f"c-hf-{i}"):
                shutil.rmtree(root / d, ignore_errors=True)
            if i < rounds - 1:
                shutil.rmtree(root / f"c-ours-{i}")
                shutil.rmtree(root / f"d{i}")
        last = rounds - 1
        noop = min(timed([sys.executable, "-m", "bundler", "pull", str(bundle), "--cache-dir", str(root / f"c-ours-{last}"),
                          "--to", str(root / f"d{last}")], env) for _ in range(3))
        total = count * mib
        best = {k: min(v) for k, v in runs.items() if v}
        fastest = min(v for k, v in best.items() if k != "bundler pull")
        print(f"\n{count} x {mib} MiB, {'Xet (hf_xet, local CAS)' if xet else 'plain HTTP via the CDN redirect'}, {os.cpu_count()} cores, best of {rounds}")
        for k, v in best.items():
            print(f"  {k:18} {v:7.2f} s  {total / v:7.0f} MiB/s")
        print(f"  ratio bundler / fastest other: {best['bundler pull'] / fastest:.2f}x   target <= 1.1")
        print(f"  no-op second pull: {noop * 1000:.0f} ms")
        for p in ("cas", "home", f"c-ours-{last}", f"d{last}", "proj"):
            shutil.rmtree(root / p, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--xet", action="store_true")
    ap.add_argument("--shapes", default="4x1024,40x64,1x4096")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        for shape in args.shapes.split(","):
            count, mib = (int(x) for x in shape.split("x"))
            one_shape(Path(d), count, mib, args.xet, args.rounds)


if __name__ == "__main__":
    main()
