"""Deploy-host check on a GPU machine: build, pull, and load the pinned model on CUDA.

Runs the whole flow on one host with no network: the loopback fake Hub (tests/fakehub.py) serves
a repository holding a real safetensors checkpoint; `bundler lock` + `build` pin and pack it; the
Hub is stopped; `bundler pull` fetches nothing it can't verify into a fresh cache (here: from the
bundle, built with --embed-hub, as an air-gapped host would); `bundler run --check` resolves it
offline; torch loads the resolved file on CUDA and checks the numbers against the original.

    python bench/gpu_deploy_check.py        (needs torch with CUDA, safetensors, huggingface_hub)
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakehub import FakeHub  # noqa: E402

SERVICE = '''
import bundler


@bundler.service(resources={"gpu": 1})
class Tiny:
    weights = bundler.HuggingFaceModel("acme/gpu-tiny", revision="main", include=["*.json", "*.safetensors"])

    def __init__(self):
        self.path = self.weights.resolve()
'''


def safetensors_bytes(rows: int, cols: int) -> tuple[bytes, list[float]]:
    """A float32 [rows, cols] tensor in the safetensors format, written by hand (no torch here)."""
    values = [((i * 7919) % 1000) / 1000.0 for i in range(rows * cols)]
    data = struct.pack(f"<{len(values)}f", *values)
    header = json.dumps({"w": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data, values


def cli(*args: str, env: dict[str, str]) -> str:
    res = subprocess.run([sys.executable, "-m", "bundler", *args], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"bundler {' '.join(args)} failed ({res.returncode}):\n{res.stderr}")
    return res.stdout + res.stderr


def main() -> None:
    import torch
    from safetensors.torch import load_file

    assert torch.cuda.is_available(), "no CUDA device"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        weights, values = safetensors_bytes(512, 512)
        hub = FakeHub(ROOT / "fixtures" / "hub").start()
        hub.create_repo("acme/gpu-tiny")
        commit = hub.commit("acme/gpu-tiny", {"config.json": b'{"model_type": "tiny"}\n', "model.safetensors": weights})
        proj = tmp / "proj"
        proj.mkdir()
        (proj / "service.py").write_text(SERVICE)
        base = {**os.environ, "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}", "BUNDLER_HOME": str(tmp / "home")}
        build_env = {**base, "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp / "build-hf")}
        t = time.perf_counter()
        cli("lock", str(proj / "service.py"), env=build_env)
        cli("build", str(proj / "service.py"), "--embed-hub", "-o", str(tmp / "tiny.bundle.tar"), env=build_env)
        hub.stop()  # the deploy host has no Hub
        deploy_env = {**base, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp / "deploy-hf"), "HF_HUB_OFFLINE": "1"}
        print(cli("pull", str(tmp / "tiny.bundle.tar"), "--to", str(tmp / "deploy"), env=deploy_env).strip().splitlines()[-1])
        out = cli("run", str(tmp / "deploy"), "--check", env=deploy_env)
        snap = out.split("weights: ", 1)[1].split()[0]
        assert snap.endswith(f"/snapshots/{commit}"), snap
        tensor = load_file(str(Path(snap) / "model.safetensors"), device="cuda")["w"]
        expected = torch.tensor(values, dtype=torch.float32).reshape(512, 512)
        got = (tensor @ tensor.T).sum().item()
        want = (expected @ expected.T).sum().item()
        print(f"loaded {tuple(tensor.shape)} {tensor.dtype} on {tensor.device} ({torch.cuda.get_device_name(0)})")
        print(f"pinned commit {commit[:12]}; checksum on CUDA {got:.3f}, on CPU {want:.3f}")
        assert abs(got - want) / abs(want) < 1e-4
        print(f"ok: built, pulled offline and loaded on CUDA in {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
