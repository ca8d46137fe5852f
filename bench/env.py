"""The environment lock's overhead over uv run by hand, on a realistic requirement set.

    python bench/env.py [--rounds 3] [--requirements "transformers safetensors fastapi pydantic"]

Lock: ``bundler lock`` (nothing locked yet) beside ``uv pip compile --format pylock.toml`` with
the same target options. Install: ``bundler env DIR`` on a pulled bundle beside ``uv venv
--relocatable`` + ``uv pip sync pylock.toml``. Each with a cold uv cache (a new empty
UV_CACHE_DIR per run: everything is downloaded) and a warm one (one cache filled beforehand).
Pairs run in alternating order; the median of each is printed with bundler/uv. Needs the index
(PyPI or UV_INDEX_URL).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = f"{sys.version_info.major}.{sys.version_info.minor}"
TARGET = ["--python-version", PY, "--python-platform", "x86_64-manylinux_2_28"]


def uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requirements", default="transformers safetensors fastapi pydantic")
    args = ap.parse_args()
    reqs = args.requirements.split()
    bundler = [sys.executable, "-m", "bundler"]
    work = Path(tempfile.mkdtemp(prefix="bench-env-"))
    base_env = {**os.environ, "BUNDLER_HOME": str(work / "home")}
    proj = work / "proj"
    proj.mkdir()
    deps = ", ".join(f'"{r}"' for r in reqs)
    (proj / "pyproject.toml").write_text(f'[project]\nname = "benchenv"\nrequires-python = ">={PY}"\ndependencies = [{deps}]\n')
    (proj / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    pass\n")
    (work / "requirements.in").write_text("\n".join(reqs) + "\n")
    by_hand = work / "by-hand"
    by_hand.mkdir()
    warm = work / "warm-cache"

    def lock_ours(env: dict[str, str]) -> float:
        for f in ("pylock.toml", "bundler.lock"):
            (proj / f).unlink(missing_ok=True)
        return timed([*bundler, "lock", str(proj / "service.py"), "--python", PY], env)

    def lock_uv(env: dict[str, str]) -> float:
        (by_hand / "pylock.toml").unlink(missing_ok=True)
        return timed([uv(), "pip", "compile", str(work / "requirements.in"), "--format", "pylock.toml", "--no-header", "-q",
                      *TARGET, "-o", str(by_hand / "pylock.toml")], env)

    # One bundle and one pulled directory for the install runs.
    env = {**base_env, "UV_CACHE_DIR": str(warm)}
    lock_ours(env)
    lock_uv(env)
    subprocess.run([*bundler, "build", str(proj / "service.py"), "-o", str(work / "b.bundle.tar")], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*bundler, "pull", str(work / "b.bundle.tar"), "--to", str(work / "pulled")], env=env, check=True, stderr=subprocess.DEVNULL)

    def install_ours(env: dict[str, str]) -> float:
        (work / "pulled" / ".venv").unlink(missing_ok=True)  # the link, and the shared environment it names
        shutil.rmtree(work / "home" / "envs", ignore_errors=True)
        return timed([*bundler, "env", str(work / "pulled")], env)

    def install_uv(env: dict[str, str]) -> float:
        shutil.rmtree(by_hand / "venv", ignore_errors=True)
        t = timed([uv(), "venv", "--relocatable", "-q", "--python", PY, str(by_hand / "venv")], env)
        return t + timed([uv(), "pip", "sync", str(by_hand / "pylock.toml"), "--preview-features", "pylock", "-q",
                          "--python", str(by_hand / "venv" / "bin" / "python")], env)

    print(f"requirements: {' '.join(reqs)}; target Python {PY} on x86_64-manylinux_2_28; {args.rounds} rounds, alternating order")
    print(f"{'':24}{'bundler':>10}{'uv by hand':>12}{'ratio':>8}")
    for what, ours, theirs in (("lock", lock_ours, lock_uv), ("install", install_ours, install_uv)):
        for cache in ("cold", "warm"):
            a, b = [], []
            for i in range(args.rounds):
                def env_for() -> dict[str, str]:
                    d = warm if cache == "warm" else Path(tempfile.mkdtemp(prefix="uv-cold-", dir=work))
                    return {**base_env, "UV_CACHE_DIR": str(d)}
                pair = [(ours, a), (theirs, b)] if i % 2 == 0 else [(theirs, b), (ours, a)]
                for fn, out in pair:
                    out.append(fn(env_for()))
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"{what + ', ' + cache + ' uv cache':24}{ma:>9.2f}s{mb:>11.2f}s{ma / mb:>7.2f}x")
    # A deploy host's next version with the same pylock.toml: linked to the shared environment.
    before = disk(work / "home") + disk(work / "pulled")
    subprocess.run([*bundler, "pull", str(work / "b.bundle.tar"), "--to", str(work / "pulled-2")], env=base_env, check=True, stderr=subprocess.DEVNULL)
    pulled_only = disk(work / "home") + disk(work / "pulled") + disk(work / "pulled-2") - before
    t = timed([*bundler, "env", str(work / "pulled-2")], {**base_env, "UV_CACHE_DIR": str(warm)})
    grown = disk(work / "home") + disk(work / "pulled") + disk(work / "pulled-2") - before - pulled_only
    print(f"second bundle, same lock: env {t:.2f}s, {grown / 1e6:.2f} MB more disk beside an environment of {disk(work / 'home' / 'envs') / 1e6:.0f} MB")
    shutil.rmtree(work, ignore_errors=True)


def disk(path: Path) -> int:
    """Bytes on disk under ``path`` (each file once), not following links."""
    seen, total = set(), 0
    for folder, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


if __name__ == "__main__":
    main()
