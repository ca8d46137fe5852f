"""bundler's build and deploy flow beside BentoML's own, on one small service, whole processes.

Build host: `bundler lock` + `bundler build`  vs  `bentoml build` + `bentoml export`.
Deploy host: `bundler pull` + first `bentoml serve DIR` ready  vs  `bentoml import` + first
`bentoml serve TAG` ready. The Hub is the loopback fake Hub (tests/fakehub.py); BentoML runs from
.venv-bentoml (made by the README's test command). Run: .venv/bin/python bench/bentoml_flow.py
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakehub import FakeHub  # noqa: E402

SERVICE = '''
import bentoml


@bentoml.service
class Tiny:
    model = bentoml.models.HuggingFaceModel("acme/embed-small", revision="v1.0")

    @bentoml.api
    def where(self) -> str:
        return str(self.model)
'''
BENTOML = ROOT / ".venv-bentoml" / "bin"
BUNDLER = ROOT / ".venv" / "bin" / "bundler"


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def serve_ready(target: str, env: dict[str, str], cwd: Path) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(BENTOML / "bentoml"), "serve", target, "--port", str(port)],
        env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
            if proc.poll() is not None or time.perf_counter() - start > 120:
                raise SystemExit(f"bentoml serve {target} failed")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def main() -> None:
    if not (BENTOML / "bentoml").exists():
        raise SystemExit("make .venv-bentoml first (README's test command)")
    with FakeHub(ROOT / "fixtures" / "hub") as hub, tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proj = tmp / "proj"
        proj.mkdir()
        (proj / "service.py").write_text(SERVICE)
        base = {**os.environ, "HF_ENDPOINT": hub.url, "BENTOML_DO_NOT_TRACK": "true", "PATH": f"{BENTOML}:{os.environ['PATH']}"}
        build_env = {**base, "BENTOML_HOME": str(tmp / "build-bentoml"), "HF_HOME": str(tmp / "build-hf"), "BUNDLER_HOME": str(tmp / "b1")}
        deploy_env = {**base, "BENTOML_HOME": str(tmp / "deploy-bentoml"), "HF_HOME": str(tmp / "deploy-hf"), "BUNDLER_HOME": str(tmp / "b2")}
        rows = []
        t_lock = timed([str(BUNDLER), "lock", "service.py"], build_env, proj)
        t_build = timed([str(BUNDLER), "build", "service.py", "-o", str(tmp / "tiny.bundle.tar")], build_env, proj)
        t_bbuild = timed([str(BENTOML / "bentoml"), "build", "service:Tiny"], build_env, proj)
        tag = subprocess.run([str(BENTOML / "bentoml"), "list", "-o", "json"], env=build_env, capture_output=True, text=True, check=True).stdout
        import json

        tag = json.loads(tag)[0]["tag"]
        t_export = timed([str(BENTOML / "bentoml"), "export", tag, str(tmp / "tiny.bento")], build_env, proj)
        rows.append(("build host: bundler lock + build", t_lock + t_build))
        rows.append(("build host: bentoml build + export", t_bbuild + t_export))
        t_pull = timed([str(BUNDLER), "pull", str(tmp / "tiny.bundle.tar"), "--to", str(tmp / "deploy")], deploy_env, tmp)
        t_serve = serve_ready(str(tmp / "deploy"), {**deploy_env, "HF_HUB_OFFLINE": "1"}, tmp)
        t_import = timed([str(BENTOML / "bentoml"), "import", str(tmp / "tiny.bento")], deploy_env, tmp)
        t_bserve = serve_ready(tag, deploy_env, tmp)  # downloads the model on first start
        rows.append(("deploy host: bundler pull + bentoml serve DIR ready", t_pull + t_serve))
        rows.append(("deploy host: bentoml import + bentoml serve TAG ready", t_import + t_bserve))
        for name, t in rows:
            print(f"{name:<55} {t * 1000:8.0f} ms")
        print(f"ratio build  bundler/bentoml: {rows[0][1] / rows[1][1]:.2f}x")
        print(f"ratio deploy bundler/bentoml: {rows[2][1] / rows[3][1]:.2f}x")


if __name__ == "__main__":
    main()
