"""Benchmark: this checkout beside an earlier revision of bundler, on the many-small-files project,
in one run.

    python bench/ab.py REV [FILES] [ROUNDS]   (e.g. HEAD~5; default 20000 files of 1 KiB, 5 rounds)

On a machine whose speed drifts from minute to minute, a ratio against another tool moves with
the drift; the same command run by two revisions, alternating which goes first, is what shows
whether a change made it faster. Cases: a first build (no source cache, warm page cache), a
rebuild after one edit (each revision's own cache of the build before), `inspect --verify` and
`inspect` of the 20,000-file bundle, `inspect` of a 5-file one. Each run is timed with the `sync`
of what it wrote; best of ROUNDS.
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
from build import ROOT  # noqa: E402  (compiles this checkout's bytecode, as an install would)
from many_files import project  # noqa: E402

# Runs the CLI from the tree given first (the editable install's finder would win over sys.path).
RUNNER = """import sys
tree = sys.argv.pop(1)
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, tree)
sys.argv[0] = "bundler"
from bundler.cli.app import main
main()
"""


def timed(tree: Path, args: list[str]) -> float:
    subprocess.run(["sync"], check=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", RUNNER, str(tree), *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - t


def main() -> None:
    rev = sys.argv[1]
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        root = Path(d)
        before = root / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(before), rev], check=True)
        try:
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(before / "bundler")], check=True)
            compare(root, {"before": before, "now": ROOT}, files, rounds)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=True)


def compare(root: Path, trees: dict[str, Path], files: int, rounds: int) -> None:
    proj = project(root, files)
    small = root / "small"
    small.mkdir()
    (small / "service.py").write_text((proj / "service.py").read_text())
    for i in range(3):
        (small / f"m{i}.py").write_text("X = 1\n")
    time.sleep(2.2)  # the source cache records only files that settled (see project/source_cache.py)
    homes = {label: root / f"home-{label}" for label in trees}
    out = {label: root / f"{label}.bundle.tar" for label in trees}
    build = ["build", str(proj / "service.py"), "--offline", "-o"]
    for label, tree in trees.items():
        os.environ["BUNDLER_HOME"] = str(homes[label])
        timed(tree, [*build, str(out[label])])
        timed(tree, ["build", str(small / "service.py"), "--offline", "-o", str(root / f"{label}-small.bundle.tar")])

    def first(label: str) -> list[str]:
        shutil.rmtree(homes[label] / "cache", ignore_errors=True)
        return [*build, str(out[label])]

    def rebuild(label: str) -> list[str]:
        with open(proj / "data" / "d07" / "f00007.txt", "a") as f:
            f.write("one more row\n")
        timed(trees[label], [*build, str(out[label])])  # the cache of the build before the edit is this tree's own
        with open(proj / "data" / "d07" / "f00007.txt", "a") as f:
            f.write("one more row\n")
        return [*build, str(out[label])]

    cases = [("build, no source cache", first), ("rebuild after one edit", rebuild),
             ("inspect --verify", lambda label: ["inspect", "--verify", str(out[label])]),
             ("inspect", lambda label: ["inspect", str(out[label])]),
             ("inspect, 5-file bundle", lambda label: ["inspect", str(root / f"{label}-small.bundle.tar")])]
    labels = list(trees)
    print(f"{files} sources of 1 KiB, {os.cpu_count()} cores, warm page cache; best of {rounds}, alternating")
    for name, args_of in cases:
        best = {label: float("inf") for label in labels}
        for i in range(rounds):
            for label in labels if i % 2 == 0 else labels[::-1]:
                os.environ["BUNDLER_HOME"] = str(homes[label])
                args = args_of(label)
                best[label] = min(best[label], timed(trees[label], args))
        print(f"{name:<26} before {best['before']:6.3f} s   now {best['now']:6.3f} s   now/before {best['now'] / best['before']:4.2f}")


if __name__ == "__main__":
    main()
