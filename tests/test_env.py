"""The Python environment lock: `lock` resolves the requirements into pylock.toml with uv, `build`
carries it (and with --embed-wheels its files), `pull --env` / `env` install it into DIR/.venv,
`run` uses that venv. Everything comes from a --find-links directory of tiny wheels: no index."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

import pytest

from bundler.env.lock import check_requirements
from bundler.errors import UsageError
from bundler.bundle.manifest import loads as load_manifest

from .conftest import run_cli
from .wheels import make_wheel

PY = f"{sys.version_info.major}.{sys.version_info.minor}"
SERVICE = """\
import bundler
import tinya


@bundler.service
class Api:
    def __init__(self):
        print("tinya", tinya.VERSION, "tinyb", tinya.tinyb_version())
"""
TINYA = "import tinyb\nVERSION = '1.0'\n\ndef tinyb_version():\n    return tinyb.VERSION\n"


@pytest.fixture
def wheelhouse(tmp_path) -> Path:
    d = tmp_path / "wheelhouse"
    make_wheel(d, "tinya", "1.0", ("tinyb>=1",), code=TINYA)
    make_wheel(d, "tinyb", "1.0")
    return d


@pytest.fixture
def project(tmp_path) -> Path:
    p = tmp_path / "proj"
    p.mkdir()
    (p / "pyproject.toml").write_text(f'[project]\nname = "envproj"\nrequires-python = ">={PY}"\ndependencies = ["tinya"]\n')
    (p / "service.py").write_text(SERVICE)
    return p


def lock(project: Path, wheelhouse: Path, *extra: str):
    return run_cli("lock", str(project / "service.py"), "-f", str(wheelhouse), "--no-index", *extra)


def build(project: Path, wheelhouse: Path, out: Path, *extra: str):
    return run_cli("build", str(project / "service.py"), "-f", str(wheelhouse), "--no-index", "-o", str(out), *extra)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pylock_versions(project: Path) -> dict[str, str]:
    return {p["name"]: p["version"] for p in tomllib.loads((project / "pylock.toml").read_text())["packages"]}


def test_lock_resolves_every_package_with_hashes_for_the_target(project, wheelhouse):
    res = lock(project, wheelhouse)
    assert res.code == 0, res.stderr
    assert f"pylock.toml: resolved 2 packages for Python {PY} on x86_64-manylinux_2_28" in res.stdout
    assert "  + tinya 1.0" in res.stdout and "  + tinyb 1.0" in res.stdout
    doc = tomllib.loads((project / "pylock.toml").read_text())
    wheels = {p["name"]: p["wheels"][0] for p in doc["packages"]}
    assert wheels["tinyb"]["hashes"]["sha256"] == sha256(wheelhouse / "tinyb-1.0-py3-none-any.whl")
    assert wheels["tinya"]["hashes"]["sha256"] == sha256(wheelhouse / "tinya-1.0-py3-none-any.whl")
    env = tomllib.loads((project / "bundler.lock").read_text())["environment"]
    assert env == {"lock": "pylock.toml", "python": PY, "platform": "x86_64-manylinux_2_28", "requirements": ["tinya"],
                   "sha256": sha256(project / "pylock.toml")}
    other = lock(project, wheelhouse, "--platform", "aarch64-manylinux_2_28", "--json")
    assert other.code == 0, other.stderr
    assert json.loads(other.stdout)["environment"]["platform"] == "aarch64-manylinux_2_28"
    assert tomllib.loads((project / "bundler.lock").read_text())["environment"]["platform"] == "aarch64-manylinux_2_28"


def test_a_fresh_lock_is_kept_without_resolving_and_upgrade_re_resolves(project, wheelhouse, tmp_path):
    assert lock(project, wheelhouse).code == 0
    before = (project / "pylock.toml").read_bytes()
    make_wheel(wheelhouse, "tinyb", "1.1")
    # A fresh lock needs no index at all: a missing --find-links directory is never read.
    res = run_cli("lock", str(project / "service.py"), "-f", str(tmp_path / "nowhere"), "--no-index")
    assert res.code == 0, res.stderr
    assert "pylock.toml: fresh (2 packages" in res.stdout
    assert (project / "pylock.toml").read_bytes() == before
    res = lock(project, wheelhouse, "--upgrade")
    assert res.code == 0, res.stderr
    assert "  ~ tinyb 1.0 -> 1.1" in res.stdout
    assert pylock_versions(project) == {"tinya": "1.0", "tinyb": "1.1"}


def test_a_changed_requirement_is_stale_for_check_locked_and_offline(project, wheelhouse, tmp_path):
    assert lock(project, wheelhouse).code == 0
    make_wheel(wheelhouse, "tinyb", "1.1")
    make_wheel(wheelhouse, "tinyc", "2.0")
    (project / "pyproject.toml").write_text(f'[project]\nname = "envproj"\nrequires-python = ">={PY}"\ndependencies = ["tinya", "tinyc"]\n')
    check = run_cli("lock", str(project / "service.py"), "--check")
    assert check.code == 1
    assert "requirements changed since the lock: + tinyc" in check.stderr
    here = run_cli("lock", "service.py", "--check", cwd=project)
    assert here.code == 1 and "hint: run `bundler lock` and commit bundler.lock and pylock.toml" in here.stderr
    locked = build(project, wheelhouse, tmp_path / "b.tar", "--locked")
    assert locked.code == 1 and "+ tinyc" in locked.stderr
    offline = build(project, wheelhouse, tmp_path / "b.tar", "--offline")
    assert offline.code == 1 and "--offline forbids resolving" in offline.stderr
    assert not (tmp_path / "b.tar").exists()
    res = lock(project, wheelhouse)
    assert res.code == 0, res.stderr
    # Re-resolving for a new requirement keeps the versions already locked (uv's preferences).
    assert pylock_versions(project) == {"tinya": "1.0", "tinyb": "1.0", "tinyc": "2.0"}
    assert run_cli("lock", str(project / "service.py"), "--check").code == 0


def test_a_hand_edited_pylock_is_stale(project, wheelhouse):
    assert lock(project, wheelhouse).code == 0
    path = project / "pylock.toml"
    path.write_text(path.read_text().replace('version = "1.0"', 'version = "1.0.1"', 1))
    res = run_cli("lock", str(project / "service.py"), "--check")
    assert res.code == 1
    assert "pylock.toml was changed after it was locked" in res.stderr


@pytest.mark.parametrize(
    "requirement, why",
    [
        ("./vendored/pkg", "a local path"),
        ("pkg @ file:///opt/pkg", "a local path"),
        ("-e .", "an editable install"),
        ("git+https://example.com/org/pkg.git@main", "a VCS URL without a full commit"),
        ("-r other.txt", "nested requirement files"),
    ],
)
def test_requirements_that_cannot_be_locked_exit_2_naming_them(project, wheelhouse, requirement, why):
    (project / "pyproject.toml").write_text(f'[project]\nname = "envproj"\nrequires-python = ">={PY}"\n')
    (project / "requirements.txt").write_text(f"tinya\n{requirement}\n")
    res = lock(project, wheelhouse)
    assert res.code == 2
    assert f"requirements.txt: requirement `{requirement}` can't be locked: {why}" in res.stderr
    assert "hint:" in res.stderr and "Traceback" not in res.stderr
    assert not (project / "pylock.toml").exists() and not (project / "bundler.lock").exists()


def test_a_vcs_requirement_pinned_to_a_commit_is_lockable():
    check_requirements(["pkg @ git+https://example.com/org/pkg.git@" + "a" * 40], "requirements.txt")
    with pytest.raises(UsageError):
        check_requirements(["pkg @ git+https://example.com/org/pkg.git@" + "a" * 12], "requirements.txt")


def test_a_project_without_requirements_has_no_environment(tmp_path):
    (tmp_path / "service.py").write_text("import bundler\n\n@bundler.service\nclass S:\n    pass\n")
    res = run_cli("build", str(tmp_path / "service.py"), "-o", str(tmp_path / "b.tar"), "--json")
    assert res.code == 0, res.stderr
    assert not (tmp_path / "pylock.toml").exists()
    assert "environment" not in tomllib.loads((tmp_path / "bundler.lock").read_text())
    res = run_cli("build", str(tmp_path / "service.py"), "--embed-wheels", "-o", str(tmp_path / "c.tar"))
    assert res.code == 2 and "no locked Python requirements to embed" in res.stderr


@pytest.fixture
def embedded(project, wheelhouse, tmp_path) -> Path:
    out = tmp_path / "env.bundle.tar"
    res = build(project, wheelhouse, out, "--embed-wheels")
    assert res.code == 0, res.stderr
    assert "2 locked packages, 2 files embedded" in res.stdout
    return out


def test_embedded_wheels_are_packed_reproducibly_and_listed(embedded, project, wheelhouse, tmp_path):
    with tarfile.open(embedded) as tar:
        names = tar.getnames()
        manifest = load_manifest(tar.extractfile("bundle.yaml").read(), "bundle.yaml")
        assert tar.extractfile("wheels/tinyb-1.0-py3-none-any.whl").read() == (wheelhouse / "tinyb-1.0-py3-none-any.whl").read_bytes()
    assert "src/pylock.toml" in names and "src/bundler.lock" in names
    env = manifest.environment
    assert env is not None and env.packages == {"tinya": "1.0", "tinyb": "1.0"}
    assert env.sha256 == sha256(project / "pylock.toml") and env.python == PY
    assert [w.path for w in env.wheels] == ["tinya-1.0-py3-none-any.whl", "tinyb-1.0-py3-none-any.whl"]
    again = tmp_path / "again.bundle.tar"
    assert build(project, wheelhouse, again, "--embed-wheels", "--offline").code == 0
    assert again.read_bytes() == embedded.read_bytes()
    shown = run_cli("inspect", str(embedded), "--verify")
    assert shown.code == 0, shown.stderr
    assert f"environment Python {PY} on x86_64-manylinux_2_28: 2 locked packages, 2 files embedded (src/pylock.toml)" in shown.stdout
    assert "tinya 1.0, tinyb 1.0" in shown.stdout


def test_pull_env_installs_offline_from_the_bundle_and_run_uses_the_venv(embedded, tmp_path):
    dest = tmp_path / "deployed"
    res = run_cli("pull", str(embedded), "--to", str(dest), "--env")
    assert res.code == 0, res.stderr
    assert f"{dest / '.venv'}: installed 2 locked packages (from the bundle's embedded files, no network)" in res.stderr
    python = dest / ".venv" / "bin" / "python"
    shared = Path(os.readlink(dest / ".venv"))
    assert shared.parent == tmp_path / "bundler-home" / "envs" and len(shared.name) == 64
    out = subprocess.run([str(python), "-c", "import tinya, tinyb; print(tinya.VERSION, tinyb.VERSION)"], capture_output=True, text=True)
    assert out.stdout.strip() == "1.0 1.0"
    ran = run_cli("run", str(dest), "--check")
    assert ran.code == 0, ran.stderr
    assert "tinya 1.0 tinyb 1.0" in ran.stdout and f"ok: Api loaded from {dest} (check)" in ran.stdout
    again = run_cli("env", str(dest), "--json")
    assert again.code == 0 and json.loads(again.stdout) == {"venv": str(dest / ".venv"), "env": str(shared), "installed": False, "linked": False,
                                                              "packages": 2, "offline": True}
    assert "up to date" in run_cli("env", str(dest)).stderr


def test_a_second_bundle_with_the_same_lock_links_to_the_installed_environment(embedded, tmp_path):
    first, second = tmp_path / "v1", tmp_path / "v2"
    assert run_cli("pull", str(embedded), "--to", str(first), "--env").code == 0
    assert run_cli("pull", str(embedded), "--to", str(second)).code == 0
    started = time.monotonic()
    res = run_cli("env", str(second), "--json")
    took = time.monotonic() - started
    assert res.code == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["installed"] is False and got["linked"] is True and got["env"] == os.readlink(first / ".venv") == os.readlink(second / ".venv")
    assert took < 5
    ran = run_cli("run", str(second), "--check")
    assert ran.code == 0 and "tinya 1.0 tinyb 1.0" in ran.stdout, ran.stderr
    # an old bundle's own .venv (a directory, from before environments were shared) is replaced by the link
    (second / ".venv").unlink()
    (second / ".venv").mkdir()
    (second / ".venv" / "stale").write_text("x")
    res = run_cli("env", str(second))
    assert res.code == 0 and "linked to" in res.stderr and (second / ".venv").is_symlink(), res.stderr


def test_run_without_the_venv_says_how_to_make_it(embedded, tmp_path):
    dest = tmp_path / "deployed"
    assert run_cli("pull", str(embedded), "--to", str(dest)).code == 0
    ran = run_cli("run", str(dest), "--check")
    assert ran.code == 2
    assert "No module named 'tinya'" in ran.stderr and f"bundler env {dest}" in ran.stderr


def test_a_tampered_embedded_wheel_is_refused_naming_the_package(embedded, tmp_path, wheelhouse):
    dest = tmp_path / "deployed"
    assert run_cli("pull", str(embedded), "--to", str(dest)).code == 0
    make_wheel(tmp_path / "evil", "tinyb", "1.0", code="VERSION = 'evil'\n")
    (dest / "wheels" / "tinyb-1.0-py3-none-any.whl").write_bytes((tmp_path / "evil" / "tinyb-1.0-py3-none-any.whl").read_bytes())
    res = run_cli("env", str(dest))
    assert res.code == 1
    assert "tinyb 1.0:" in res.stderr and "does not match its sha256 in pylock.toml; nothing was installed" in res.stderr
    assert not (dest / ".venv").exists()
    assert [p.name for p in dest.iterdir() if p.name.startswith(".venv")] == []
    assert not list((tmp_path / "bundler-home" / "envs").iterdir())


def test_a_failed_install_leaves_no_venv_and_keeps_the_old_one(project, wheelhouse, tmp_path):
    # A wheel whose hash is right (it is what was locked) but which no installer accepts (a wheel
    # format from the future): uv resolves it from its metadata, then fails while installing.
    make_wheel(wheelhouse, "tinyb", "1.0", extra={"tinyb-1.0.dist-info/WHEEL": b"Wheel-Version: 9.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"})
    out = tmp_path / "broken.bundle.tar"
    assert build(project, wheelhouse, out, "--embed-wheels").code == 0
    dest = tmp_path / "deployed"
    assert run_cli("pull", str(out), "--to", str(dest)).code == 0
    (dest / ".venv").mkdir()
    (dest / ".venv" / "keep").write_text("the old environment")
    res = run_cli("env", str(dest))
    assert res.code == 1, res.stderr
    assert "installing the locked packages failed" in res.stderr and "Traceback" not in res.stderr
    assert (dest / ".venv" / "keep").read_text() == "the old environment"
    assert sorted(p.name for p in dest.iterdir() if p.name.startswith(".venv")) == [".venv"]


def test_a_killed_install_leaves_no_venv_and_the_next_run_completes(embedded, tmp_path):
    dest = tmp_path / "deployed"
    assert run_cli("pull", str(embedded), "--to", str(dest)).code == 0
    proc = subprocess.Popen([sys.executable, "-m", "bundler", "env", str(dest)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    envs = tmp_path / "bundler-home" / "envs"
    # a locked scratch name, not its `.new` one: killed inside that rename's microseconds, the
    # leftover is swept only once it is 5 s old (io/scratch.py), which this test does not wait for
    while not (envs.is_dir() and any(".partial-" in p.name and not p.name.endswith(".new") for p in envs.iterdir())):
        assert time.monotonic() < deadline and proc.poll() is None, "the install never started"
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (dest / ".venv").exists()
    res = run_cli("env", str(dest))
    assert res.code == 0, res.stderr
    assert "installed 2 locked packages" in res.stderr
    assert run_cli("run", str(dest), "--check").code == 0
    assert [p.name for p in envs.iterdir() if ".partial-" in p.name] == []  # the killed run's leftover was swept


def test_diff_lists_packages_added_removed_and_changed(project, wheelhouse, tmp_path):
    a = tmp_path / "a.bundle.tar"
    assert build(project, wheelhouse, a).code == 0
    make_wheel(wheelhouse, "tinyb", "1.1")
    make_wheel(wheelhouse, "tinyc", "2.0")
    (project / "pyproject.toml").write_text(f'[project]\nname = "envproj"\nrequires-python = ">={PY}"\ndependencies = ["tinyb", "tinyc"]\n')
    assert lock(project, wheelhouse, "--upgrade").code == 0
    b = tmp_path / "b.bundle.tar"
    assert build(project, wheelhouse, b).code == 0
    res = run_cli("diff", str(a), str(b))
    assert res.code == 1
    assert "- package tinya 1.0" in res.stdout and "+ package tinyc 2.0" in res.stdout and "~ package tinyb: 1.0 -> 1.1" in res.stdout
    d = json.loads(run_cli("diff", str(a), str(b), "--json").stdout)["packages"]
    assert d == {"added": {"tinyc": "2.0"}, "removed": {"tinya": "1.0"}, "changed": {"tinyb": ["1.0", "1.1"]}, "target": None}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda e: e["wheels"][0].update(path="../evil.whl"), "is not a package file name"),
        (lambda e: e.update(lock="../pylock.toml"), "unsafe path"),
        (lambda e: e.update(lock="other.toml"), "is not one of the sources"),
        (lambda e: e.update(python="3"), "is not MAJOR.MINOR"),
        (lambda e: e["packages"].update({"../x": "1"}), "environment package"),
        (lambda e: e.update(sha256="00"), "not a sha256"),
    ],
)
def test_a_hostile_environment_entry_is_refused(embedded, change, message):
    with tarfile.open(embedded) as tar:
        data = json.loads(tar.extractfile("bundle.yaml").read())
    change(data["environment"])
    with pytest.raises(UsageError, match=message):
        load_manifest(json.dumps(data).encode(), "bundle.yaml")


def test_installing_from_the_locked_urls_refuses_a_file_that_changed(project, wheelhouse, tmp_path):
    out = tmp_path / "plain.bundle.tar"
    assert build(project, wheelhouse, out).code == 0  # no --embed-wheels: the lock's URLs are used
    dest = tmp_path / "deployed"
    assert run_cli("pull", str(out), "--to", str(dest)).code == 0
    make_wheel(wheelhouse, "tinyb", "1.0", code="VERSION = 'swapped'\n")  # the "index" now serves other bytes
    res = run_cli("env", str(dest))
    assert res.code == 1
    assert "tinyb==1.0: the downloaded file does not match the hash in the lock" in res.stderr
    assert not (dest / ".venv").exists()
    make_wheel(wheelhouse, "tinyb", "1.0")  # the locked bytes again (the wheel is built byte for byte)
    res = run_cli("env", str(dest))
    assert res.code == 0, res.stderr
    assert "installed 2 locked packages (from the locked URLs)" in res.stderr


OTHER = "3.12" if PY != "3.12" else "3.13"


@pytest.mark.parametrize(("where", "origin"), [
    ("tool", "pyproject.toml [tool.bundler]"),
    ("bentofile", "bentofile.yaml"),
    ("python-version", ".python-version"),
])
def test_the_python_target_is_the_one_the_project_names_and_recorded(project, wheelhouse, tmp_path, where, origin):
    if where == "tool":
        (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text() + f'\n[tool.bundler]\npython = "{OTHER}"\n')
    elif where == "bentofile":
        (project / "bentofile.yaml").write_text(f"service: service:Api\ndocker:\n  python_version: '{OTHER}'\n")
    else:
        (project / ".python-version").write_text(f"{OTHER}.1\n")
    res = build(project, wheelhouse, tmp_path / "b.tar", "--json")
    assert res.code == 0, res.stderr
    m = json.loads(run_cli("inspect", str(tmp_path / "b.tar"), "--json").stdout)
    assert m["environment"]["python"] == OTHER
    assert m["settings"]["python"] == origin and m["schema"] == 4


def test_a_python_no_one_can_lock_for_is_refused(project, wheelhouse):
    res = lock(project, wheelhouse, "--python", "3.99")
    assert res.code == 2 and "3.99 is not a Python release bundler can lock for" in res.stderr
    assert not (project / "bundler.lock").exists()


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_an_embedded_wheel_that_is_not_a_regular_file_is_refused_at_once(embedded, tmp_path, kind):
    dest = tmp_path / "deployed"
    assert run_cli("pull", str(embedded), "--to", str(dest)).code == 0
    wheel = dest / "wheels" / "tinyb-1.0-py3-none-any.whl"
    wheel.unlink()
    if kind == "fifo":
        os.mkfifo(wheel)
    else:
        wheel.symlink_to("/dev/zero")
    res = run_cli("env", str(dest))  # would hang reading it
    assert res.code == 1 and "is not a regular file; nothing was installed" in res.stderr
    assert not (dest / ".venv").exists()


def test_env_waits_for_a_pull_into_the_same_place(embedded, tmp_path):
    """`bundler env D` and `bundler pull B --to D` take one lock: an install never runs while a
    pull replaces the directory (it used to end with no .venv, or one for another lock)."""
    import subprocess
    import time

    from bundler.io.scratch import exclusive

    dest = tmp_path / "deployed"
    assert run_cli("pull", str(embedded), "--to", str(dest)).code == 0
    with exclusive(dest.parent):  # what a pull into dest holds while it works
        proc = subprocess.Popen([sys.executable, "-m", "bundler", "env", str(dest), "--offline"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        assert proc.poll() is None  # waiting, not installing
        assert not (dest / ".venv").exists()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert (dest / ".venv").is_dir() and (dest / ".venv").is_symlink()


def test_embedding_a_package_locked_only_as_an_sdist_is_refused_naming_it(tmp_path):
    from bundler.env.lock import LockedFile, Package
    from bundler.errors import ProblemFound
    from bundler.env.wheels import locked_files

    sdist = LockedFile("tinyc-2.0.tar.gz", "0" * 64, 10, url="https://example.invalid/tinyc-2.0.tar.gz")
    with pytest.raises(ProblemFound, match="tinyc 2.0: only a source distribution is locked") as err:
        locked_files([Package("tinyc", "2.0", (), sdist)], tmp_path, offline=True)
    assert "--find-links" in err.value.hint and "without --embed-wheels" in err.value.hint


def test_a_file_locked_in_another_checkout_is_found_by_name_in_this_builds_find_links(tmp_path, wheelhouse):
    from bundler.env.lock import LockedFile, Package
    from bundler.errors import ProblemFound
    from bundler.env.wheels import locked_files

    wheel = wheelhouse / "tinyb-1.0-py3-none-any.whl"
    elsewhere = LockedFile(wheel.name, sha256(wheel), wheel.stat().st_size, url=f"file:///first/checkout/wheelhouse/{wheel.name}")
    ((f, path, _),) = locked_files([Package("tinyb", "1.0", (elsewhere,), None)], tmp_path, offline=True, find_links=[str(wheelhouse)])
    assert path.read_bytes() == wheel.read_bytes()
    other = tmp_path / "other"
    make_wheel(other, "tinyb", "1.0", code="VERSION = 'other'\n")  # same name, other bytes
    lying = LockedFile(wheel.name, "1" * 64, None, url=f"file:///first/checkout/wheelhouse/{wheel.name}")
    with pytest.raises(ProblemFound, match="does not match its sha256"):
        locked_files([Package("tinyb", "1.0", (lying,), None)], tmp_path, offline=True, find_links=[str(other)])


def test_embedding_from_an_index_with_credentials_authenticates_and_never_follows_a_redirect_with_them(tmp_path, wheelhouse, monkeypatch):
    import base64
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from bundler.env.lock import LockedFile, Package
    from bundler.errors import ProblemFound
    from bundler.env.wheels import locked_files

    wheel = wheelhouse / "tinyb-1.0-py3-none-any.whl"
    seen: list[tuple[str, str | None]] = []

    class Index(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            if self.path.startswith("/elsewhere/"):  # the other origin a redirect points at
                self.send_response(404)
                self.end_headers()
                return
            if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"user:s3cret").decode():
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="index"')
                self.end_headers()
                return
            if self.path.startswith("/moved/"):
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/elsewhere/{wheel.name}")
                self.end_headers()
                return
            data = wheel.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc of the developer's
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        locked = LockedFile(wheel.name, sha256(wheel), None, url=f"{base}/files/{wheel.name}")  # as uv writes it: no credentials
        with pytest.raises(ProblemFound, match="can't fetch"):
            locked_files([Package("tinyb", "1.0", (locked,), None)], tmp_path, offline=False)
        ((_, path, _),) = locked_files([Package("tinyb", "1.0", (locked,), None)], tmp_path, offline=False,
                                       index_urls=[f"http://user:s3cret@127.0.0.1:{server.server_address[1]}/simple"])
        assert path.read_bytes() == wheel.read_bytes()
        moved = LockedFile("tinyb-1.1-py3-none-any.whl", "2" * 64, None, url=f"{base}/moved/tinyb-1.1-py3-none-any.whl")
        monkeypatch.setenv("UV_INDEX_URL", f"http://user:s3cret@127.0.0.1:{server.server_address[1]}/simple")
        with pytest.raises(ProblemFound):
            locked_files([Package("tinyb", "1.1", (moved,), None)], tmp_path, offline=False)
        assert [auth for path, auth in seen if path.startswith("/elsewhere/")] == [None]  # the credentials stayed home
    finally:
        server.shutdown()


def test_the_python_of_the_services_image_is_the_target_unless_the_project_names_one(project, wheelhouse, tmp_path):
    (project / "service.py").write_text(
        "import bentoml\nimport tinya\n\nimage = bentoml.images.Image(python_version=" + repr(OTHER) + ").requirements_file('r.txt')\n\n"
        "@bentoml.service(image=image)\nclass Api:\n    pass\n"
    )
    res = build(project, wheelhouse, tmp_path / "b.tar", "--json")
    assert res.code == 0, res.stderr
    m = json.loads(run_cli("inspect", str(tmp_path / "b.tar"), "--json").stdout)
    assert m["environment"]["python"] == OTHER and m["settings"]["python"] == "service.py image python_version"
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text() + f'\n[tool.bundler]\npython = "{PY}"\n')
    res = build(project, wheelhouse, tmp_path / "c.tar", "--json")
    assert res.code == 0, res.stderr
    m = json.loads(run_cli("inspect", str(tmp_path / "c.tar"), "--json").stdout)
    assert m["environment"]["python"] == PY and m["settings"]["python"] == "pyproject.toml [tool.bundler]"


def test_outdated_packages_lists_what_a_fresh_resolution_would_move(project, wheelhouse):
    assert lock(project, wheelhouse).code == 0
    args = ("outdated", str(project / "service.py"), "--packages", "-f", str(wheelhouse), "--no-index", "--json")
    res = run_cli(*args)
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["packages"] == []
    before = (project / "pylock.toml").read_bytes()
    make_wheel(wheelhouse, "tinyb", "1.1")
    res = run_cli(*args)
    assert res.code == 1, res.stderr
    assert json.loads(res.stdout)["packages"] == ["~ tinyb 1.0 -> 1.1"]
    assert (project / "pylock.toml").read_bytes() == before  # nothing written


def test_gc_removes_a_shared_environment_once_no_pulled_bundle_links_to_it(embedded, tmp_path):
    first, second = tmp_path / "v1", tmp_path / "v2"
    assert run_cli("pull", str(embedded), "--to", str(first), "--env").code == 0
    assert run_cli("pull", str(embedded), "--to", str(second), "--env").code == 0
    shared = Path(os.readlink(first / ".venv"))
    shutil.rmtree(tmp_path / "bundler-home" / "pulled")  # pulled by an older bundler: no record...
    assert run_cli("env", str(second)).code == 0  # ...until `env` links it, which records the folder
    shutil.rmtree(first)
    res = run_cli("gc", "--json")
    assert res.code == 0 and json.loads(res.stdout)["freed"] == [], res.stdout  # v2 links to it (v1's record went with the folder)
    assert shared.is_dir()
    shutil.rmtree(second)
    res = run_cli("gc", "--dry-run")
    assert res.code == 0 and f"would remove env {shared.name}" in res.stdout and "would free" in res.stderr, res.stdout
    assert shared.is_dir()
    assert run_cli("gc").code == 0 and not shared.exists()
