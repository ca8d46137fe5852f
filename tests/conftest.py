"""Shared test helpers: the CLI run as a real process, fixture locations."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """Run ``python -m bundler`` as a user would, in its own process."""
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    proc = subprocess.run(
        [sys.executable, "-m", "bundler", *args],
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,  # never a terminal: nothing may wait on a person (keyless login)
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def sizes_of(root: Path, pattern: str) -> list[int]:
    """The sizes of the files under ``root`` matching ``pattern`` (recursively), read while another
    process writes, renames and removes them: whatever vanishes midway is skipped, not an error."""
    found = []
    stack = [root]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for e in entries:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(Path(e.path))
                        elif Path(e.name).match(pattern):
                            found.append(e.stat(follow_symlinks=False).st_size)
                    except FileNotFoundError:
                        pass
        except (FileNotFoundError, NotADirectoryError):
            pass
    return found


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(autouse=True)
def isolated_homes(monkeypatch, tmp_path):
    """No test sees the developer's store, Hugging Face token or cache."""
    monkeypatch.setenv("BUNDLER_HOME", str(tmp_path / "bundler-home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # uv (the environment lock) reaches no index in tests: only --find-links directories they make.
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_DEFAULT_INDEX", "http://127.0.0.1:9/simple")  # refused at once if ever reached
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    for var in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT", "SOURCE_DATE_EPOCH", "UV_INDEX_URL",
                "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "VIRTUAL_ENV"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def hub(monkeypatch):
    """A fake Hub on 127.0.0.1 serving fixtures/hub/, with HF_ENDPOINT pointing at it."""
    from .fakehub import FakeHub

    fake = FakeHub(FIXTURES / "hub").start()
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    yield fake
    fake.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_registry(root: Path, auth: str = ""):
    import shutil

    binary = shutil.which("docker-registry")
    assert binary, "docker-registry is not installed: `apt-get install docker-registry` (the README's test command does it)"
    port = free_port()
    (root / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    proc = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL, stderr=open(root / "log", "w"))
    host = f"127.0.0.1:{port}"
    wait_until_up(proc, f"http://{host}/v2/", root / "log", "docker-registry", up_codes=(401,))  # 401: up, asking for credentials
    return proc, host


def wait_until_up(proc: subprocess.Popen, url: str, log: Path, what: str, up_codes: tuple[int, ...] = ()) -> None:
    """Poll ``url`` until the server ``proc`` answers (2xx, or one of ``up_codes``); its log when it never does."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError as e:
            if e.code in up_codes:
                return
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"{what} did not start: " + log.read_text())
        time.sleep(0.05)


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """A real OCI registry (Debian's docker-registry, CNCF Distribution) on 127.0.0.1."""
    root = tmp_path_factory.mktemp("registry")
    proc, host = _start_registry(root)
    yield {"host": host, "data": root / "data"}
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    """The same registry asking for a user and password (htpasswd, bcrypt)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # stdlib up to 3.12; bcrypt through the system's libcrypt

        hashed = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH))
    except (ImportError, AttributeError):
        pytest.skip("no bcrypt implementation to write an htpasswd file with")
    root = tmp_path_factory.mktemp("auth-registry")
    (root / "htpasswd").write_text(f"alice:{hashed}\n")
    proc, host = _start_registry(root, f"auth:\n  htpasswd:\n    realm: test\n    path: {root / 'htpasswd'}\n")
    yield {"host": host, "user": "alice", "password": "s3cret"}
    proc.terminate()
    proc.wait(timeout=10)


def start_moto(root: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """A real S3 API server (moto's) on 127.0.0.1; its URL."""
    port = free_port()
    binary = Path(sys.executable).parent / "moto_server"
    assert binary.exists(), "moto_server is not installed: pip install -e '.[test]' (the README's test command does it)"
    proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=open(root / "moto.log", "w"), env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    wait_until_up(proc, f"{url}/moto-api/", root / "moto.log", "moto_server")
    return proc, url


@pytest.fixture(scope="session")
def _moto(tmp_path_factory):
    proc, url = start_moto(tmp_path_factory.mktemp("moto"))
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3(_moto, monkeypatch):
    """A boto3 client of the loopback S3 server, with the AWS settings pointing every process at it."""
    import boto3

    for name, value in {"AWS_ENDPOINT_URL": _moto, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return boto3.client("s3")
