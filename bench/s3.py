"""Benchmark: fetching a pinned S3 model (what `bundler pull`, or `build --embed-s3`, does) beside
boto3's transfer manager (what `aws s3 cp --recursive` uses: ranged parts on 10 threads), from the
same S3 API server on loopback (moto_server), order-fair (alternating, `sync` after each), median
of RUNS. Also times `bundler lock` (listing, and reading the sha256 of objects the store keeps
no checksum of).

    python bench/s3.py [MIB] [FILES] [RUNS]     (default 1024 MiB in 4 objects, 3 runs;
                                                 needs `pip install -e '.[test]'`: boto3, moto[server])
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# the repository root instead of bench/ (whose gzip.py would shadow the standard library's)
sys.path[0] = str(Path(__file__).resolve().parent.parent)


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    nfiles = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    from tests.conftest import start_moto

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        root = Path(d)
        proc, url = start_moto(root)
        os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                          BUNDLER_HOME=str(root / "home"))
        try:
            _run(root, mib, nfiles, runs)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _run(root: Path, mib: int, nfiles: int, runs: int) -> None:
    import boto3
    from boto3.s3.transfer import TransferConfig

    from bundler.kinds import get
    from bundler.model.pins import Pin

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bench-models")
    s3.put_bucket_versioning(Bucket="bench-models", VersioningConfiguration={"Status": "Enabled"})
    size = mib * (1 << 20) // nfiles
    src = root / "src.bin"
    with open(src, "wb") as f:
        f.write(os.urandom(size))
    for i in range(nfiles):
        s3.upload_file(str(src), "bench-models", f"m/part-{i}.safetensors")  # multipart: no full-object checksum
    src.unlink()
    (root / "proj").mkdir()
    (root / "proj" / "service.py").write_text('import bundler\n\n@bundler.service\nclass S:\n    m = bundler.S3Model("s3://bench-models/m/")\n')
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bundler", "lock", str(root / "proj" / "service.py")], check=True, capture_output=True)
    lock_s = time.perf_counter() - t
    import tomllib

    pin = Pin.from_dict(tomllib.loads((root / "proj" / "bundler.lock").read_text())["model"][0])
    kind = get("s3")
    cache = root / "home" / "s3-models"

    def ours() -> None:
        shutil.rmtree(cache, ignore_errors=True)
        kind.local_copy(pin)

    manager_dir = root / "boto3"

    def boto3_manager() -> None:
        shutil.rmtree(manager_dir, ignore_errors=True)
        manager_dir.mkdir()
        from boto3.s3.transfer import create_transfer_manager

        with create_transfer_manager(s3, TransferConfig()) as tm:
            futures = [tm.download("bench-models", f"m/{f.path}", str(manager_dir / f.path)) for f in pin.files]
            for fut in futures:
                fut.result()

    def boto3_stream() -> None:
        shutil.rmtree(manager_dir, ignore_errors=True)
        manager_dir.mkdir()
        for f in pin.files:
            with open(manager_dir / f.path, "wb") as out:
                shutil.copyfileobj(s3.get_object(Bucket="bench-models", Key=f"m/{f.path}")["Body"], out, 1 << 20)

    times: dict[str, list[float]] = {"bundler": [], "boto3": [], "stream": []}
    for i in range(runs):
        order = [("bundler", ours), ("boto3", boto3_manager), ("stream", boto3_stream)]
        for name, fn in order if i % 2 == 0 else reversed(order):
            t = time.perf_counter()
            fn()
            os.sync()
            times[name].append(time.perf_counter() - t)
    ours_s, theirs_s, stream_s = (statistics.median(times[k]) for k in ("bundler", "boto3", "stream"))
    print(f"S3 model of {mib} MiB in {nfiles} objects, moto_server on loopback, median of {runs}")
    print(f"  bundler lock (list, head, read sha256 of {nfiles} multipart objects): {lock_s:.2f} s")
    print(f"  fetch pinned versions, verified (bundler): {ours_s:.2f} s")
    print(f"  boto3 transfer manager (aws s3 cp's engine), unverified: {theirs_s:.2f} s")
    print(f"  boto3 get_object, one stream per object in turn, unverified: {stream_s:.2f} s")
    print(f"  ratio bundler / transfer manager: {ours_s / theirs_s:.2f}x; bundler / plain streams: {ours_s / stream_s:.2f}x")
    print("  (moto copies the whole object for every GET, ranged or not, then slices it: the transfer")
    print("   manager's 8 MiB parts each pay that; a real S3 does not, so read its ratio with care)")


if __name__ == "__main__":
    main()
