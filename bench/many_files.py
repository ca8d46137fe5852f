"""Benchmark: many small sources. `bundler build` beside `tar cf`, `bundler pull` beside `tar xf`,
and `bundler inspect` of the big bundle beside a 5-file one.

    python bench/many_files.py [FILES]      (default 20000 files of 1 KiB in 40 directories)

Order-fair: pairs alternate which runs first; each run starts after `sync` (and, as root, with
the page cache dropped) and is timed together with the `sync` of its output. Best of 3.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
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


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        root = Path(d)
        os.environ["BUNDLER_HOME"] = str(root / "home")
        proj = project(root, files)
        small = root / "small"
        small.mkdir()
        (small / "service.py").write_text((proj / "service.py").read_text())
        for i in range(3):
            (small / f"m{i}.py").write_text("X = 1\n")
        out = root / "out"
        out.mkdir()
        bundle = out / "many.bundle.tar"
        builds, tars, pulls, untars = [], [], [], []
        for i in range(3):
            def ours() -> None:
                cold()
                bundle.unlink(missing_ok=True)
                builds.append(run([*BUNDLER, "build", str(proj / "service.py"), "--offline", "-o", str(bundle)]) + run(["sync"]))

            def ref() -> None:
                cold()
                tars.append(run(["tar", "cf", str(out / "t.tar"), "-C", str(proj), "."]) + run(["sync"]))
                (out / "t.tar").unlink()

            for fn in ((ours, ref) if i % 2 == 0 else (ref, ours)):
                fn()
        for i in range(3):
            def pull() -> None:
                cold()
                pulls.append(run([*BUNDLER, "pull", str(bundle), "--to", str(root / "pulled")], stderr=subprocess.DEVNULL) + run(["sync"]))
                shutil.rmtree(root / "pulled")

            def untar() -> None:
                (root / "untarred").mkdir()
                cold()
                untars.append(run(["tar", "xf", str(bundle), "-C", str(root / "untarred")]) + run(["sync"]))
                shutil.rmtree(root / "untarred")

            for fn in ((pull, untar) if i % 2 == 0 else (untar, pull)):
                fn()
        run([*BUNDLER, "build", str(small / "service.py"), "--offline", "-o", str(out / "small.bundle.tar")])
        big_inspect = min(run([*BUNDLER, "inspect", str(bundle)]) for _ in range(5))
        small_inspect = min(run([*BUNDLER, "inspect", str(out / "small.bundle.tar")]) for _ in range(5))
        print(f"{files} sources of 1 KiB, {os.cpu_count()} cores, {cold()}, best of 3 (inspect: best of 5, warm)")
        print(f"bundler build {min(builds):6.2f} s   tar cf {min(tars):6.2f} s   ratio {min(builds) / min(tars):5.2f}x (target <= 3)")
        print(f"bundler pull  {min(pulls):6.2f} s   tar xf {min(untars):6.2f} s   ratio {min(pulls) / min(untars):5.2f}x (target <= 3)")
        print(f"bundler inspect {big_inspect * 1000:5.0f} ms   5-file bundle {small_inspect * 1000:5.0f} ms   ratio {big_inspect / small_inspect:4.2f}x (target <= 2, < 200 ms)")


if __name__ == "__main__":
    main()
