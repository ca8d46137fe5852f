"""Benchmark: many small sources, each bundler command beside the tool that does the same work.

    python bench/many_files.py [FILES] [ROUNDS]   (default 20000 files of 1 KiB in 40 directories, 3 rounds)

- build, cold (page cache dropped, no source cache) and warm (page cache warm, no source cache),
  beside `tar cf` of the project in the same state;
- rebuild after editing one file (the source cache of the build before it), beside `tar cf`;
- `bundler pull` beside `tar xf` (cold);
- `bundler inspect --verify` beside `b3sum` of the same files (warm);
- `bundler inspect` of the big bundle beside a 5-file one (warm).

Order-fair: pairs alternate which runs first; each run starts after `sync` and is timed together
with the `sync` of its output. Best of ROUNDS (inspect: best of 5).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import BUNDLER, run  # noqa: E402
from unpack import cold  # noqa: E402


def project(root: Path, files: int) -> Path:
    proj = root / "proj"
    proj.mkdir()
    (proj / "service.py").write_text("import bundler\n\n\n@bundler.service\nclass Svc:\n    pass\n")
    for i in range(files):
        d = proj / "data" / f"d{i % 40:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.txt").write_text((f"row {i} " * 128)[:1024])
    return proj


def warm() -> str:
    subprocess.run(["sync"], check=True)
    return "warm"


def pair(rounds: int, ours, ref) -> tuple[float, float]:
    a, b = [], []
    for i in range(rounds):
        for fn, out in (((ours, a), (ref, b)) if i % 2 == 0 else ((ref, b), (ours, a))):
            out.append(fn())
    return min(a), min(b)


def line(what: str, ours: float, ref: float, ref_name: str, target: str) -> str:
    return f"{what:<34} {ours:7.3f} s   {ref_name:<8} {ref:7.3f} s   ratio {ours / ref:5.2f}x  (target {target})"


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        root = Path(d)
        home = root / "home"
        os.environ["BUNDLER_HOME"] = str(home)
        proj = project(root, files)
        time.sleep(2.2)  # the source cache records only files that settled (see project/source_cache.py)
        out = root / "out"
        out.mkdir()
        bundle = out / "many.bundle.tar"
        build = [*BUNDLER, "build", str(proj / "service.py"), "--offline", "-o", str(bundle)]
        tar_cf = ["tar", "cf", str(out / "t.tar"), "-C", str(proj), "."]
        results = []

        def tar(prepare) -> float:  # the reference, with the page cache as ``prepare`` leaves it
            (out / "t.tar").unlink(missing_ok=True)
            prepare()
            return run(tar_cf) + run(["sync"])

        for state, prepare in (("cold", cold), ("warm", warm)):
            def ours() -> float:
                shutil.rmtree(home / "cache", ignore_errors=True)  # a first build: no source cache
                bundle.unlink(missing_ok=True)
                prepare()
                return run(build) + run(["sync"])

            results.append(line(f"build, {state}", *pair(rounds, ours, lambda: tar(prepare)), "tar cf", "<= 1.5x" if state == "cold" else "<= 2x"))

        run(build)  # the source cache of the build before the edit
        edited = proj / "data" / "d07" / "f00007.txt"

        def rebuild() -> float:
            with open(edited, "a") as f:
                f.write("one more row\n")
            warm()
            return run(build) + run(["sync"])

        results.append(line("rebuild after editing one file", *pair(rounds, rebuild, lambda: tar(warm)), "tar cf", "<= 1.0x"))

        def pull() -> float:
            shutil.rmtree(root / "pulled", ignore_errors=True)
            cold()
            return run([*BUNDLER, "pull", str(bundle), "--to", str(root / "pulled")], stderr=subprocess.DEVNULL) + run(["sync"])

        def untar() -> float:
            shutil.rmtree(root / "untarred", ignore_errors=True)
            (root / "untarred").mkdir()
            cold()
            return run(["tar", "xf", str(bundle), "-C", str(root / "untarred")]) + run(["sync"])

        results.append(line("pull, cold", *pair(rounds, pull, untar), "tar xf", "<= 3x"))
        files_of = root / "untarred"
        b3 = ["sh", "-c", f"cd {files_of} && find . -type f -print0 | xargs -0 b3sum > /dev/null"]
        if shutil.which("b3sum"):
            results.append(line("inspect --verify, warm", *pair(5, lambda: run([*BUNDLER, "inspect", str(bundle), "--verify"]),
                                                                lambda: run(b3)), "b3sum", "<= 2x"))
        small = root / "small"
        small.mkdir()
        (small / "service.py").write_text((proj / "service.py").read_text())
        for i in range(3):
            (small / f"m{i}.py").write_text("X = 1\n")
        run([*BUNDLER, "build", str(small / "service.py"), "--offline", "-o", str(out / "small.bundle.tar")])
        results.append(line("inspect, warm", *pair(5, lambda: run([*BUNDLER, "inspect", str(bundle)]),
                                                   lambda: run([*BUNDLER, "inspect", str(out / "small.bundle.tar")])), "5 files", "<= 1.3x"))
        print(f"{files} sources of 1 KiB, {os.cpu_count()} cores, {cold()}; best of {rounds} (verify, inspect: best of 5)")
        print("\n".join(results))


if __name__ == "__main__":
    main()
