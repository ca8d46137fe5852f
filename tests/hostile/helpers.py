"""What the hostile-input tests share: a small bundle, ways to rewrite and damage it, checks."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


SERVICE = '''
import bundler


@bundler.service
class Tiny:
    head = bundler.StoreModel("tiny-head:latest")
'''




def rewrite_manifest(bundle: Path, out: Path, edit) -> Path:
    """A copy of ``bundle`` whose bundle.yaml went through ``edit(dict)``."""
    with tarfile.open(bundle) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name == "bundle.yaml":
                d = yaml.safe_load(data)
                edit(d)
                data = yaml.safe_dump(d, sort_keys=False).encode()
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    return out


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def one_clear_error(res, code: int = 2) -> None:
    assert res.code == code, (res.code, res.stderr)
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr


def _leftover(path: Path, *, dir: bool = False) -> Path:
    path.mkdir(exist_ok=True) if dir else path.write_bytes(b"partial" * 1000)
    old = time.time() - 3600
    os.utime(path, (old, old))
    return path


FUZZ = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def negative_size(tar: bytes, at: int) -> bytes:
    """``tar`` with the header at offset ``at`` given the size -512 (``%o`` writes it as a
    well-formed-looking field) and its checksum made right again: a forged header that sends a
    seekable reader back onto itself."""
    data = bytearray(tar)
    data[at + 124:at + 136] = b"%011o\0" % -512
    data[at + 148:at + 156] = b" " * 8
    data[at + 148:at + 156] = b"%06o\0 " % sum(data[at:at + 512])
    return bytes(data)


def _damage(data: bytes, how: str, where: float, bit: int) -> bytes:
    at = min(int(where * len(data)), len(data) - 1)
    if how == "truncate":
        return data[:at]
    out = bytearray(data)
    out[at] ^= 1 << bit
    return bytes(out)




# --- mutated manifests and lock files ----------------------------------------------------------
_VALUES = ["-7", "true", "null", '"../x"', '"/etc/passwd"', "6.7", "[]", "{}", '"2024-01-01"', '"a\\\\b"', "1e400",
           '"' + "x" * 300 + '"', '{"a": 1}', '[1, [2, [3]]]', "0", '"hf_"', '""']


def _as_nobody(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI as an unprivileged user (root reads everything), with the system Python."""
    import shutil as sh
    import subprocess as sp
    import sysconfig

    site = sysconfig.get_paths()["purelib"]
    py = "/usr/bin/python3"
    if os.geteuid() != 0 or not sh.which("setpriv") or not Path(py).exists():
        pytest.skip("needs root, setpriv and /usr/bin/python3 to run a command as nobody")
    env = {"HOME": str(cwd), "BUNDLER_HOME": str(cwd / "home"), "PYTHONPATH": f"{Path(__file__).resolve().parents[2]}:{site}", "PATH": "/usr/bin:/bin"}
    probe = sp.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", py, "-c", "import bundler, blake3, yaml, typer"], env=env, capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"the package is not readable by nobody here: {probe.stderr.decode()[-200:]}")
    return sp.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", py, "-m", "bundler", *args], cwd=cwd, env=env, capture_output=True, text=True)


def _raw_manifest(bundle: Path, out: Path, edit) -> Path:
    """A copy of ``bundle`` whose bundle.yaml bytes went through ``edit(bytes)``."""
    with tarfile.open(bundle) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name == "bundle.yaml":
                data = edit(data)
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    return out


_HASH = "blake3:" + "0123456789abcdef" * 4


_entry_values = st.one_of(
    st.just(_HASH), st.text(max_size=80), st.integers(-2, 2**40), st.booleans(), st.none(),
    st.sampled_from(["blake3:" + "A" * 64, "blake3:" + "0" * 63, "blake3:blake3:" + "0" * 57, "sha256:" + "0" * 64,
                     "0" * 64 + "blake3:", "blake3:" + "0" * 63 + "\n"]),
)


_entries = st.lists(
    st.dictionaries(st.sampled_from(["path", "size", "hash", "xet", "mode"]), _entry_values, min_size=2, max_size=4)
    | st.fixed_dictionaries({"path": st.sampled_from(["a.py", "b.py", "c/d.py"]) | st.integers(), "size": _entry_values,
                             "hash": st.just(_HASH) | _entry_values}),
    max_size=4,
)
