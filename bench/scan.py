"""Benchmark: static scan vs importing the same modules (the import-based approach).

Generates a project of ~200 modules / ~50k lines / 100 services with cross-module constants,
then times, in one run: scanning every service, scanning one service, importing every module
with Python, and the whole `bundler scan --json` process on the shipped example.

    python bench/scan.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N_SERVICES = 100
FILLER_FUNCS = 40  # ~250 lines a module


def filler(i: int) -> str:
    out = []
    for f in range(FILLER_FUNCS):
        out.append(
            f"def helper_{i}_{f}(x, y=2):\n"
            f"    total = 0\n"
            f"    for k in range(x):\n"
            f"        total += k * y + {f}\n"
            f"    return total\n"
        )
    return "\n".join(out)


def generate(root: Path) -> list[Path]:
    app = root / "app"
    app.mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "common.py").write_text('ORG = "acme"\nPATTERNS = ["*.json", "*.safetensors"]\n' + filler(0))
    services = []
    for i in range(N_SERVICES):
        (app / f"consts_{i}.py").write_text(
            "from app.common import ORG\n"
            f'MODEL = ORG + "/model-{i}"\n'
            f'REVISION = "v{i}.0"\n' + filler(i)
        )
        dep = f"from app.svc_{i - 1} import Service{i - 1}\n" if i else ""
        dep_attr = f"    upstream = bundler.depends(Service{i - 1})\n" if i else ""
        (app / f"svc_{i}.py").write_text(
            "import bundler\n"
            "from bundler import HuggingFaceModel\n"
            "from app import common\n"
            f"from app.consts_{i} import MODEL, REVISION\n"
            f"{dep}\n\n"
            "@bundler.service(resources={'gpu': 1})\n"
            f"class Service{i}:\n"
            "    model = HuggingFaceModel(MODEL, revision=REVISION, include=common.PATTERNS)\n"
            f"    clf = bundler.StoreModel(f'clf-{i}:latest')\n"
            f"{dep_attr}\n" + filler(i)
        )
        services.append(app / f"svc_{i}.py")
    return services


def best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from bundler.introspect import scan, scan_files

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        services = generate(root)
        files = sorted(root.rglob("*.py"))
        lines = sum(p.read_text().count("\n") for p in files)
        print(f"project: {len(files)} modules, {lines} lines, {len(services)} services")

        found = sum(len(scan(p).models) for p in services)
        assert found == 2 * N_SERVICES, found
        t_all = best(lambda: scan_files(services))
        t_one = best(lambda: scan(services[N_SERVICES // 2]), repeat=20)

        importer = (
            "import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter()\n"
            f"[__import__(f'app.svc_{{i}}') for i in range({N_SERVICES})]\n"
            "print(time.perf_counter() - t)"
        )
        imports = []
        for _ in range(5):
            out = subprocess.run(
                [sys.executable, "-B", "-c", importer, str(root)], capture_output=True, text=True, check=True
            ).stdout
            imports.append(float(out))
        t_import = min(imports)

    example = ROOT / "examples" / "search" / "service.py"
    cli = []
    for _ in range(7):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bundler", "scan", str(example), "--json"], check=True, capture_output=True)
        cli.append(time.perf_counter() - t)

    print(f"scan all {N_SERVICES} services (bundler, in-process): {t_all * 1000:8.1f} ms   target < 1000 ms")
    print(f"scan one service (bundler, in-process):       {t_one * 1000:8.1f} ms")
    print(f"import all modules (python, no bytecode):     {t_import * 1000:8.1f} ms")
    print(f"ratio scan-all / import-all:                  {t_all / t_import:8.2f}x")
    print(
        f"`bundler scan example --json` whole process:  {statistics.median(cli) * 1000:8.1f} ms (median of 7)"
        "   target < 250 ms"
    )


if __name__ == "__main__":
    main()
