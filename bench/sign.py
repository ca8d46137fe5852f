"""Benchmark: `bundler sign` and `bundler verify` (OMS v1.0 signatures, an EC P-256 key).

    python bench/sign.py [--hub-files 1000] [--mib 4096] [--rounds 3]

1. A bundle pinning HUB_FILES Hub files it does not carry (the loopback fake Hub: nine in ten are
   LFS files, one in ten small configs whose sha256 `lock` fetches), signed with the Hub stopped
   and an empty Hugging Face cache: the signature covers them through the signed `bundle.yaml`,
   so no weight byte can be read. Target: under 1 s.
2. A bundle carrying a MIB store model (4 shards) and 200 sources: `bundler sign` beside upstream
   `model_signing sign key` of the directory `tar xf` gives (the same bytes, the same format);
   `bundler verify` beside `model_signing verify key`, `sha256sum` and `b3sum` of those bytes.
   Warm page cache (everything read once first); best of ROUNDS, alternating who goes first.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from build import BUNDLER, make_project  # noqa: E402


def timed(cmd: list[str], env: dict | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def keypair(root: Path) -> tuple[Path, Path]:
    private, public = root / "key.pem", root / "key.pub.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(private)], check=True)
    subprocess.run(["openssl", "ec", "-in", str(private), "-pubout", "-out", str(public)], check=True, stderr=subprocess.DEVNULL)
    return private, public


def best_of(rounds: int, runs: dict[str, list[str]], env: dict | None = None) -> dict[str, float]:
    """Each command ``rounds`` times, the order rotating every round; the best time of each."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for i in range(rounds):
        for name in names[i % len(names):] + names[: i % len(names)]:
            times[name].append(timed(runs[name], env))
    return {name: min(t) for name, t in times.items()}


def hub_pins(root: Path, count: int, rounds: int, private: Path, public: Path) -> None:
    from tests.fakehub import FakeHub

    env = {**os.environ, "BUNDLER_HOME": str(root / "home"), "HF_HOME": str(root / "hf"), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    proj = root / "hubproj"
    proj.mkdir()
    (proj / "service.py").write_text('import bundler\n\n@bundler.service\nclass S:\n    m = bundler.HuggingFaceModel("acme/many")\n')
    with FakeHub() as hub:
        hub.create_repo("acme/many")
        files = {f"shard-{i:05d}.safetensors": os.urandom(1024) for i in range(count - count // 10)}
        files.update({f"config-{i:04d}.json": b'{"i": %d}' % i for i in range(count // 10)})
        hub.commit("acme/many", files)
        env["HF_ENDPOINT"] = hub.url
        t = time.perf_counter()
        subprocess.run([*BUNDLER, "lock", str(proj / "service.py"), "--no-env"], check=True, env=env, stdout=subprocess.DEVNULL)
        lock_s = time.perf_counter() - t
        bundle = root / "many.bundle.tar"
        subprocess.run([*BUNDLER, "build", str(proj / "service.py"), "--no-env", "-o", str(bundle)], check=True, env=env, stdout=subprocess.DEVNULL)
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # the Hub is down: refused at once if ever asked
    shutil.rmtree(root / "hf", ignore_errors=True)
    got = best_of(rounds, {"sign": [*BUNDLER, "sign", str(bundle), "--key", str(private)],
                           "verify": [*BUNDLER, "verify", str(bundle), "--key", str(public)]}, env)
    assert not (root / "hf").exists(), "signing read the Hugging Face cache"
    print(f"{count} Hub files pinned, not carried (lock {lock_s:.2f} s, Hub down for sign and verify): "
          f"sign {got['sign']:.3f} s, verify {got['verify']:.3f} s (target: sign < 1 s)")


def big_bundle(root: Path, mib: int, rounds: int, private: Path, public: Path) -> None:
    os.environ["BUNDLER_HOME"] = str(root / "home")
    proj = make_project(root, mib, "big")
    bundle = root / "big.bundle.tar"
    subprocess.run([*BUNDLER, "build", str(proj / "service.py"), "--offline", "--no-env", "-o", str(bundle)], check=True, stdout=subprocess.DEVNULL)
    tree = root / "extracted"
    tree.mkdir()
    subprocess.run(["tar", "xf", str(bundle), "-C", str(tree)], check=True)
    files = sorted(str(p) for p in tree.rglob("*") if p.is_file())
    for cmd in (["cat", str(bundle)], ["cat", *files]):  # warm the page cache for both copies
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    upstream = [sys.executable, "-m", "model_signing"]
    sign = best_of(rounds, {
        "bundler sign": [*BUNDLER, "sign", str(bundle), "--key", str(private), "-o", str(root / "b.sig")],
        "model_signing sign": [*upstream, "sign", "key", str(tree), "--private_key", str(private), "--signature", str(root / "m.sig")],
    })
    verify = best_of(rounds, {
        "bundler verify": [*BUNDLER, "verify", str(bundle), "--key", str(public), "--signature", str(root / "b.sig")],
        "model_signing verify": [*upstream, "verify", "key", str(tree), "--public_key", str(public), "--signature", str(root / "m.sig")],
        "sha256sum": ["sha256sum", str(bundle)],
        "b3sum": ["b3sum", str(bundle)],
    })
    print(f"{mib} MiB model + 200 sources, {os.cpu_count()} cores, warm page cache, best of {rounds}:")
    ref = sign["model_signing sign"]
    for name, s in sign.items():
        print(f"  {name:22s} {s:7.2f} s  {s / ref:5.2f}x model_signing sign")
    for name, s in verify.items():
        print(f"  {name:22s} {s:7.2f} s  {s / verify['sha256sum']:5.2f}x sha256sum  {s / verify['b3sum']:5.2f}x b3sum")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hub-files", type=int, default=1000)
    ap.add_argument("--mib", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    for tool in ("b3sum", "sha256sum", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        root = Path(d)
        private, public = keypair(root)
        hub_pins(root, args.hub_files, max(args.rounds, 5), private, public)
        if args.mib:
            big_bundle(root, args.mib, args.rounds, private, public)


if __name__ == "__main__":
    main()
