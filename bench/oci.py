"""Benchmark: `bundler push`/`pull oci://` of a bundle with 1 GiB of weights beside the `oras`
client (PyPI) on the same files, over loopback to Debian's docker-registry; then a second push of a
version whose weights did not change.

    python bench/oci.py [WEIGHTS_MIB] [FILES]     (default 1024 MiB in 4 files; e.g. `64 2000` for a
                                                   model of 2,000 small files; needs `docker-registry`
                                                   and `pip install oras`)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

BUNDLER = [sys.executable, "-m", "bundler"]


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def start_registry(root: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (root / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"127.0.0.1:{port}"


def main() -> None:
    import oras.client

    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    nfiles = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        root = Path(d)
        os.environ["BUNDLER_HOME"] = str(root / "home")
        proc, host = start_registry(root)
        try:
            model = root / "model"
            model.mkdir()
            each = (mib << 20) // nfiles
            block = os.urandom(min(each, 1 << 20))
            for i in range(nfiles):
                with open(model / f"shard-{i:05d}.safetensors", "wb") as f:
                    left = each
                    while left:
                        n = min(left, len(block))
                        f.write(block[: n - 4] + i.to_bytes(4, "big"))
                        left -= n
            subprocess.run([*BUNDLER, "models", "import", "bench-weights", str(model)], check=True, stdout=subprocess.DEVNULL)
            proj = root / "proj"
            proj.mkdir()
            (proj / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    w = bundler.StoreModel('bench-weights:latest')\n")
            subprocess.run([*BUNDLER, "build", str(proj / "service.py"), "-o", str(root / "v1.bundle.tar")], check=True, stdout=subprocess.DEVNULL)
            (proj / "service.py").write_text((proj / "service.py").read_text() + "# v2\n")
            subprocess.run([*BUNDLER, "build", str(proj / "service.py"), "-o", str(root / "v2.bundle.tar")], check=True, stdout=subprocess.DEVNULL)

            t_push = timed(lambda: subprocess.run([*BUNDLER, "push", str(root / "v1.bundle.tar"), f"oci://{host}/bench/ours:v1"], check=True, capture_output=True))
            t_same = timed(lambda: subprocess.run([*BUNDLER, "push", str(root / "v1.bundle.tar"), f"oci://{host}/bench/ours:again"], check=True, capture_output=True))
            t_push2 = timed(lambda: subprocess.run([*BUNDLER, "push", str(root / "v2.bundle.tar"), f"oci://{host}/bench/ours:v2"], check=True, capture_output=True))
            t_pull = timed(lambda: subprocess.run([*BUNDLER, "pull", f"oci://{host}/bench/ours:v1", "--to", str(root / "pulled")], check=True, capture_output=True, env={**os.environ, "BUNDLER_HOME": str(root / "home2")}))

            # oras: the same weight files plus the sources as one tar, as separate layers.
            files = root / "oras-in"
            with tarfile.open(root / "v1.bundle.tar") as tar:
                tar.extractall(files, filter="data")
            weights = sorted(str(p.relative_to(files)) for p in (files / "store").rglob("*") if p.is_file())
            client = oras.client.OrasClient(hostname=host, insecure=True)
            cwd = os.getcwd()
            os.chdir(files)
            try:
                t_oras_push = timed(lambda: client.push(target=f"{host}/bench/oras:v1", files=["src", *weights], disable_path_validation=True))
            finally:
                os.chdir(cwd)
            t_oras_pull = timed(lambda: client.pull(target=f"{host}/bench/oras:v1", outdir=str(root / "oras-out")))
        finally:
            proc.terminate()
            proc.wait()
        print(f"bundle: {mib} MiB of weights in {nfiles} files, registry on loopback, {os.cpu_count()} cores")
        print(f"bundler push:            {t_push:6.2f} s  {mib / t_push:6.0f} MiB/s")
        print(f"oras push (same files):  {t_oras_push:6.2f} s  {mib / t_oras_push:6.0f} MiB/s   ratio bundler/oras {t_push / t_oras_push:.2f}x")
        print(f"bundler pull oci:// (fetch, verify, unpack, land in store): {t_pull:6.2f} s  {mib / t_pull:6.0f} MiB/s")
        print(f"oras pull (fetch):       {t_oras_pull:6.2f} s  {mib / t_oras_pull:6.0f} MiB/s   ratio bundler/oras {t_pull / t_oras_pull:.2f}x")
        print(f"second push, nothing changed:   {t_same:6.2f} s")
        print(f"second push, unchanged weights: {t_push2:6.2f} s  ({t_push2 / t_push:.2f}x the first push)")


if __name__ == "__main__":
    main()
