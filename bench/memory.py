"""Peak memory (max RSS, `/usr/bin/time -f %M`) of every bundler command that moves model bytes,
with one big model file and one big source file.

    python bench/memory.py [MIB]      (default 1024: a 1 GiB store model file, a 1 GiB source file,
                                       a 1 GiB Hub file; needs `docker-registry` for the OCI rows)

Target (issue 13): flat in bytes, under 100 MB with a 1 GiB file, for any command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from build import BUNDLER  # noqa: E402  (also compiles bundler's bytecode, as pip would)
from oci import start_registry  # noqa: E402

TIME = "/usr/bin/time"


def write_random(path: Path, mib: int) -> None:
    """Random through and through, as model weights are: a repeated block with a few bytes
    changed would be deduplicated by Xet's chunking into a tiny CAS and flatter its memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


def peak(label: str, args: list[str], env: dict, rows: list, ok: tuple[int, ...] = (0,), command: list[str] = BUNDLER) -> None:
    out = Path(tempfile.mktemp(prefix="rss-"))
    res = subprocess.run([TIME, "-f", "%M", "-o", str(out), *command, *args], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    if res.returncode not in ok:
        raise SystemExit(f"{label} failed ({res.returncode}): {res.stderr.strip()}")
    kb = int(out.read_text().split()[-1])
    out.unlink()
    rows.append((label, kb / 1024))


def main() -> None:
    from tests.fakehub import FakeHub

    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    if not shutil.which("time", path="/usr/bin"):
        sys.exit("needs /usr/bin/time (apt-get install time)")
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        root = Path(d)
        env = {**os.environ, "BUNDLER_HOME": str(root / "home"), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        write_random(root / "model" / "weights.bin", mib)
        peak("models import", ["models", "import", "mem-weights", str(root / "model")], env, rows)
        shutil.rmtree(root / "model")

        proj = root / "proj"
        write_random(proj / "data" / "table.bin", mib)  # one big source file
        (proj / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    w = bundler.StoreModel('mem-weights:latest')\n")
        a, gz, b = root / "a.bundle.tar", root / "a.bundle.tar.gz", root / "b.bundle.tar"
        peak("build", ["build", str(proj / "service.py"), "--no-env", "-o", str(a)], env, rows)
        peak("build --gzip", ["build", str(proj / "service.py"), "--no-env", "-o", str(gz)], env, rows)
        (proj / "service.py").write_text((proj / "service.py").read_text() + "# v2\n")
        subprocess.run([*BUNDLER, "build", str(proj / "service.py"), "--no-env", "-o", str(b)], env=env, check=True, stdout=subprocess.DEVNULL)
        peak("inspect", ["inspect", str(a)], env, rows)
        peak("inspect --verify", ["inspect", str(a), "--verify"], env, rows)
        peak("inspect --verify (gzip)", ["inspect", str(gz), "--verify"], env, rows)
        peak("diff", ["diff", str(a), str(b)], env, rows, ok=(0, 1))  # 1: they differ, as diff(1) says
        deploy = {**env, "BUNDLER_HOME": str(root / "deploy-home")}
        peak("pull (local bundle)", ["pull", str(a), "--to", str(root / "pulled")], deploy, rows)
        shutil.rmtree(root / "deploy-home")
        peak("pull (local gzip bundle)", ["pull", str(gz), "--to", str(root / "pulled-gz")], deploy, rows)
        shutil.rmtree(root / "deploy-home")
        shutil.rmtree(root / "pulled")
        shutil.rmtree(root / "pulled-gz")
        gz.unlink()

        if shutil.which("docker-registry"):
            (root / "registry").mkdir()
            proc, host = start_registry(root / "registry")
            try:
                peak("push oci://", ["push", str(a), f"oci://{host}/mem/b:v1"], env, rows)
                peak("pull oci://", ["pull", f"oci://{host}/mem/b:v1", "--to", str(root / "pulled")], deploy, rows)
            finally:
                proc.terminate()
                proc.wait()
            shutil.rmtree(root / "registry")
            shutil.rmtree(root / "pulled")
            shutil.rmtree(root / "deploy-home")
        a.unlink()
        b.unlink()

        hf = shutil.which("hf", path=str(Path(sys.executable).parent))
        for xet in (False, True):
            with FakeHub() as hub:
                if xet:
                    hub.enable_xet(root / "cas")
                hub.create_repo("acme/mem")
                write_random(root / "hubfile", mib)
                commit = hub.commit("acme/mem", {"model.safetensors": (root / "hubfile").read_bytes(), "config.json": b"{}"})
                (root / "hubfile").unlink()
                hproj = root / f"hproj{int(xet)}"
                hproj.mkdir()
                (hproj / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    m = bundler.HuggingFaceModel('acme/mem')\n")
                henv = {**env, "HF_ENDPOINT": hub.url, "HF_HOME": str(root / "hf-build")}
                subprocess.run([*BUNDLER, "build", str(hproj / "service.py"), "--no-env", "-o", str(root / "h.bundle.tar")], env=henv, check=True,
                               stdout=subprocess.DEVNULL)
                pull_env = {**henv, "HF_HOME": str(root / "hf-deploy")}
                if not xet:
                    pull_env["BUNDLER_NO_XET"] = "1"
                how = "Xet" if xet else "HTTP"
                peak(f"pull (Hub, {how})", ["pull", str(root / "h.bundle.tar"), "--to", str(root / "hpulled")], pull_env, rows)
                if hf:  # the reference: huggingface_hub's own CLI, the same file the same way
                    hf_env = {**henv, "HF_HOME": str(root / "hf-theirs"), **({} if xet else {"HF_HUB_DISABLE_XET": "1"})}
                    peak(f"  hf download ({how})", ["download", "acme/mem", "--revision", commit], hf_env, rows, command=[hf])
                    shutil.rmtree(root / "hf-theirs")
                for p in ("hf-deploy", "hf-build", "hpulled", "cas", "h.bundle.tar"):
                    shutil.rmtree(root / p, ignore_errors=True) if (root / p).is_dir() else (root / p).unlink(missing_ok=True)

    print(f"peak memory (max RSS) with a {mib} MiB model file and a {mib} MiB source file (random bytes); target < 100 MB")
    for label, mb in rows:
        print(f"  {label:28} {mb:7.0f} MB{'' if mb < 100 else '   OVER'}")


if __name__ == "__main__":
    main()
