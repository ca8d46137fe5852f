"""Benchmark: `bundler push --image` of a bundle with N MiB of weights beside `oras push` (oras-py)
of the same layer files and `skopeo copy` of the pushed image to a second registry, over loopback to
Debian's docker-registry. Each runs against a fresh registry (nothing already there), in
alternating order over the rounds, with `sync` before each timing; the medians are printed.

    python bench/image.py [WEIGHTS_MIB] [FILES] [ROUNDS]   (default 1024 MiB in 4 files, 3 rounds;
                                                          needs docker-registry, skopeo, pip install oras)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from oci import BUNDLER, start_registry  # noqa: E402 - the sibling benchmark's registry helper


def timed(fn) -> float:
    subprocess.run(["sync"], check=True)
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    import oras.client

    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    nfiles = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        root = Path(d)
        os.environ["BUNDLER_HOME"] = str(root / "home")
        model = root / "model"
        model.mkdir()
        each = (mib << 20) // nfiles
        for i in range(nfiles):
            with open(model / f"shard-{i:05d}.safetensors", "wb") as f:
                left = each
                while left:
                    n = min(left, 1 << 20)
                    f.write(os.urandom(n))
                    left -= n
        subprocess.run([*BUNDLER, "models", "import", "bench-weights", str(model)], check=True, stdout=subprocess.DEVNULL)
        proj = root / "proj"
        proj.mkdir()
        (proj / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    w = bundler.StoreModel('bench-weights:latest')\n")
        bundle = root / "b.bundle.tar"
        subprocess.run([*BUNDLER, "build", str(proj / "service.py"), "-o", str(bundle), "--no-env"], check=True, stdout=subprocess.DEVNULL)
        layers = sorted(str(p.relative_to(model)) for p in model.iterdir())
        times: dict[str, list[float]] = {"bundler push --image": [], "oras push": [], "skopeo copy": []}
        for r in range(rounds):
            procs = []
            try:
                registries = []
                for name in ("a", "b", "c"):
                    (root / f"reg-{r}-{name}").mkdir()
                    proc, host = start_registry(root / f"reg-{r}-{name}")
                    procs.append(proc)
                    registries.append(host)
                ours, theirs, copy_to = registries

                def push_image() -> None:
                    subprocess.run([*BUNDLER, "push", str(bundle), f"oci://{ours}/bench/image:v1", "--image"], check=True, capture_output=True)

                def oras_push() -> None:
                    client = oras.client.OrasClient(hostname=theirs, insecure=True)
                    cwd = os.getcwd()
                    os.chdir(model)
                    try:
                        client.push(target=f"{theirs}/bench/oras:v1", files=layers, disable_path_validation=True)
                    finally:
                        os.chdir(cwd)

                def skopeo_copy() -> None:
                    subprocess.run(["skopeo", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
                                    f"docker://{ours}/bench/image:v1", f"docker://{copy_to}/bench/image:v1"], check=True, capture_output=True)

                order = [("bundler push --image", push_image), ("oras push", oras_push)]
                for name, fn in order if r % 2 == 0 else order[::-1]:
                    times[name].append(timed(fn))
                times["skopeo copy"].append(timed(skopeo_copy))  # needs the pushed image
            finally:
                for proc in procs:
                    proc.terminate()
                    proc.wait()
        base = statistics.median(times["oras push"])
        print(f"{mib} MiB of weights in {nfiles} files, loopback registries, {os.cpu_count()} cores, median of {rounds}")
        for name, values in times.items():
            t = statistics.median(values)
            print(f"{name:22s} {t:6.2f} s  {mib / t:6.0f} MiB/s   {t / base:.2f}x oras push")


if __name__ == "__main__":
    main()
