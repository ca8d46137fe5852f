"""What goes into a bundle: ignore files, BentoML build settings, credentials, the bundle name."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from bundler.ops.build import build

from .conftest import run_cli

SERVICE = "import bentoml\n\n\n@bentoml.service(name='Search-API')\nclass Search:\n    pass\n"


def project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "service.py").write_text(SERVICE)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "service.py"


def listing(svc: Path) -> dict:
    res = run_cli("build", str(svc), "--list-sources", "--json")
    assert res.code == 0, res.stderr
    out = json.loads(res.stdout)
    return {"files": out["files"], "left_out": {d["path"]: d["reason"] for d in out["left_out"]}, "always": out["always"]}


def packed(bundle: Path) -> list[str]:
    with tarfile.open(bundle) as t:
        return [m.name[4:] for m in t.getmembers() if m.name.startswith("src/")]


def test_nested_gitignore_with_negation_anchors_and_directories(tmp_path):
    svc = project(tmp_path / "p", {
        ".gitignore": "*.ckpt\ndata/\n/top.txt\n**/cache/**\n",
        "keep.py": "", "big.ckpt": "", "data/train.bin": "", "top.txt": "", "sub/top.txt": "",
        "sub/.gitignore": "!important.ckpt\n*.log\n", "sub/important.ckpt": "", "sub/other.ckpt": "", "sub/run.log": "",
        "a/cache/x.bin": "",
    })
    out = listing(svc)
    assert out["files"] == [".gitignore", "keep.py", "service.py", "sub/.gitignore", "sub/important.ckpt", "sub/top.txt"]
    assert out["left_out"]["big.ckpt"] == ".gitignore:1: *.ckpt"
    assert out["left_out"]["data/"] == ".gitignore:2: data/"
    assert out["left_out"]["top.txt"] == ".gitignore:3: /top.txt"
    assert out["left_out"]["a/cache/"] == ".gitignore:4: **/cache/**"
    assert out["left_out"]["sub/run.log"] == "sub/.gitignore:2: *.log"
    assert out["left_out"]["sub/other.ckpt"] == ".gitignore:1: *.ckpt"


@pytest.mark.parametrize("name", [".bundlerignore", ".bentoignore"])
def test_bundler_and_bento_ignore_files(tmp_path, name):
    svc = project(tmp_path / "p", {name: "notebooks/\n*.csv\n", "notebooks/a.ipynb": "", "x.csv": "", "app.py": ""})
    out = listing(svc)
    assert out["files"] == [name, "app.py", "service.py"]
    assert out["left_out"]["x.csv"] == f"{name}:2: *.csv"


def test_bentofile_include_and_exclude_select_sources_and_tool_bundler_wins(tmp_path):
    files = {"bentofile.yaml": "service: service:Search\ninclude: ['*.py', 'conf/*.yaml']\nexclude: ['test_*.py']\n",
             "app.py": "", "test_app.py": "", "conf/a.yaml": "", "README.md": ""}
    svc = project(tmp_path / "p", files)
    out = listing(svc)
    assert out["files"] == ["app.py", "conf/a.yaml", "service.py"]
    assert out["left_out"]["README.md"] == "not matched by include (bentofile.yaml)"
    assert out["left_out"]["test_app.py"] == "exclude pattern (bentofile.yaml)"
    (tmp_path / "p" / "pyproject.toml").write_text('[tool.bundler]\ninclude = ["*.py", "*.md"]\n')
    out = listing(svc)
    assert out["files"] == ["README.md", "app.py", "service.py"]  # include from [tool.bundler], exclude still the bentofile's
    assert out["left_out"]["conf/a.yaml"] == "not matched by include (pyproject.toml [tool.bundler])"


CREDENTIALS = [".env", ".env.production", ".netrc", ".pypirc", ".git-credentials", "tls/server.pem", "deploy.key",
               "keys/id_rsa", "keys/id_ed25519", ".aws/credentials", ".docker/config.json", "hf/huggingface/token"]


def test_credential_files_are_never_packed_whatever_the_rules_say(tmp_path):
    files = {c: "secret\n" for c in CREDENTIALS} | {".env.example": "HF_TOKEN=\n", "keys/id_rsa.pub": "ssh-rsa AAA\n"}
    svc = project(tmp_path / "p", files)
    (tmp_path / "p" / "pyproject.toml").write_text('[tool.bundler]\ninclude = ["**"]\n')
    res = run_cli("build", str(svc), "-o", str(tmp_path / "out.bundle.tar"))
    assert res.code == 0, res.stderr
    names = packed(tmp_path / "out.bundle.tar")
    assert not set(CREDENTIALS) & set(names)
    assert ".env.example" in names and "keys/id_rsa.pub" in names
    for c in CREDENTIALS:
        assert f"left out: {c} (a credential file: never packed)" in res.stderr


SECRETS = {
    "Hugging Face token": "TOKEN = 'hf_" + "a1B2c3D4e5" * 3 + "abcd'\n",
    "AWS access key id": "key = 'AKIA" + "ABCDEFGH12345678" + "'\n",
    "GitHub token": "gh = 'ghp_" + "A" * 36 + "'\n",
    "OpenAI API key": "openai = 'sk-proj-" + "x" * 48 + "'\n",
    "private key": "PEM = '''-----BEGIN RSA PRIVATE KEY-----\nMIIE\n'''\n",
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_a_secret_in_a_source_fails_the_build_naming_file_line_and_kind_never_the_value(tmp_path, kind):
    text = "# config\n\n" + SECRETS[kind]
    svc = project(tmp_path / "p", {"settings.py": text})
    res = run_cli("build", str(svc), "-o", str(tmp_path / "out.bundle.tar"))
    assert res.code == 1
    assert f"settings.py:3: {kind}" in res.stderr and "--allow-secret" in res.stderr
    secret = SECRETS[kind].split("'")[1] if kind != "private key" else "MIIE"
    assert secret not in res.stderr and secret not in res.stdout
    assert not (tmp_path / "out.bundle.tar").exists()
    res = run_cli("build", str(svc), "-o", str(tmp_path / "out.bundle.tar"), "--allow-secret", str(tmp_path / "p" / "settings.py"))
    assert res.code == 0, res.stderr
    assert "settings.py" in packed(tmp_path / "out.bundle.tar")


def test_a_secret_across_a_read_chunk_boundary_is_found(tmp_path):
    from bundler.io.hashing import CHUNK
    from bundler.project.secrets import hash_and_scan

    token = "hf_" + "Z9" * 17
    f = tmp_path / "big.txt"
    f.write_bytes(b"x" * (CHUNK - 10) + b"\n" + token.encode() + b"\n")
    size, digest, found = hash_and_scan(f, "big.txt")
    assert [(s.line, s.kind) for s in found] == [(2, "Hugging Face token")]
    assert size == f.stat().st_size


def test_an_ignored_lock_file_is_packed_all_the_same_and_said_so(tmp_path):
    svc = project(tmp_path / "p", {".gitignore": "bundler.lock\n"})
    res = run_cli("build", str(svc), "-o", str(tmp_path / "out.bundle.tar"))
    assert res.code == 0, res.stderr
    assert "bundler.lock" in packed(tmp_path / "out.bundle.tar")
    assert "note: bundler.lock is always packed (overrides .gitignore:1: bundler.lock)" in res.stderr


@pytest.mark.parametrize(
    "files,name,origin",
    [
        ({"pyproject.toml": '[project]\nname = "Proj"\n[tool.bundler]\nname = "Tool-Name"\n', "bentofile.yaml": "name: bento-name\n"}, "tool-name", "pyproject.toml [tool.bundler]"),
        ({"pyproject.toml": '[project]\nname = "Proj"\n', "bentofile.yaml": "name: Bento-Name\n"}, "bento-name", "bentofile.yaml"),
        ({"pyproject.toml": '[project]\nname = "Proj_X"\n'}, "proj_x", "pyproject.toml [project]"),
        ({}, "search-api", "the entry service `Search-API`"),
    ],
)
def test_the_bundle_name_comes_from_the_project_never_the_directory(tmp_path, files, name, origin):
    svc = project(tmp_path / "some-dir", files)
    result = build(svc, output=tmp_path / "out.bundle.tar")
    assert result.manifest.name == name
    assert result.manifest.data["settings"]["name"] == origin


def test_same_sources_in_differently_named_directories_give_the_same_bytes(tmp_path):
    a = project(tmp_path / "builds" / "x7f3" / "project", {"app.py": "X = 1\n"})
    b = project(tmp_path / "code" / "search", {"app.py": "X = 1\n"})
    ra = build(a, output=tmp_path / "a.bundle.tar")
    rb = build(b, output=tmp_path / "b.bundle.tar")
    assert ra.digest == rb.digest
    assert (tmp_path / "a.bundle.tar").read_bytes() == (tmp_path / "b.bundle.tar").read_bytes()


def test_a_file_name_no_bundle_can_carry_is_refused_at_build(tmp_path):
    svc = project(tmp_path / "p", {"we\\ird.py": ""})
    res = run_cli("build", str(svc), "-o", str(tmp_path / "out.bundle.tar"))
    assert res.code == 2 and "backslash" in res.stderr and "Traceback" not in res.stderr


# --- a cloned repository must not reach outside itself ------------------------------------------
def _settings_project(tmp_path, requirements_txt: str):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "service.py").write_text("import bentoml\n\n@bentoml.service\nclass S:\n    pass\n")
    (root / "bentofile.yaml").write_text(f"service: service:S\npython:\n  requirements_txt: {requirements_txt!r}\n")
    return root


@pytest.mark.parametrize("where", ["absolute", "parent", "symlink"])
def test_a_requirements_file_outside_the_project_is_refused_unread(tmp_path, where):
    secret = tmp_path / "netrc"
    secret.write_text("machine example.com password hunter2-secret\n")
    if where == "absolute":
        root = _settings_project(tmp_path, str(secret))
    elif where == "parent":
        root = _settings_project(tmp_path, "../netrc")
    else:
        root = _settings_project(tmp_path, "reqs.txt")
        (root / "reqs.txt").symlink_to(secret)
    res = run_cli("build", str(root / "service.py"), "-o", str(tmp_path / "b.bundle.tar"), "--no-env")
    assert res.code == 2 and "Traceback" not in res.stderr
    assert "python.requirements_txt" in res.stderr and "is outside the project" in res.stderr
    assert "hunter2" not in res.stderr + res.stdout
    assert not (tmp_path / "b.bundle.tar").exists()


@pytest.mark.parametrize("name", [".ENV", ".Env.production", ".AWS/credentials", ".Docker/config.json", ".NETRC", "Server.PEM"])
def test_credential_files_are_matched_without_case(name):
    from bundler.project.sources import is_credential

    assert is_credential(name) and is_credential(f"sub/{name}")
    assert not is_credential("server.pem.pub") and not is_credential(".ENV.example")


@pytest.mark.parametrize("escape", ["\\n", "\\t", "\\r"])
def test_a_token_right_after_an_escape_is_found(tmp_path, escape):
    from bundler.project.secrets import hash_and_scan

    token = "hf_" + "Q7" * 17
    f = tmp_path / "cells.ipynb"
    f.write_text('{"outputs": [{"text": "logged in' + escape + token + '\\n"}]}\n')
    assert [s.kind for s in hash_and_scan(f, "cells.ipynb")[2]] == ["Hugging Face token"]
    f.write_text('{"text": "nohf_' + "Q7" * 17 + '"}\n')  # glued to a word: not a token
    assert hash_and_scan(f, "cells.ipynb")[2] == []


def test_a_token_in_a_build_argument_fails_the_build_unless_allowed(tmp_path):
    svc = project(tmp_path / "p", {})
    (tmp_path / "p" / "service.py").write_text(
        "import bentoml\nimport pydantic\n\n\nclass A(pydantic.BaseModel):\n    hf_token: str = ''\n\n\n"
        "args = bentoml.use_arguments(A)\n\n\n@bentoml.service\nclass S:\n    pass\n"
    )
    token = "hf_" + "k3" * 17
    res = run_cli("build", str(svc), "-o", str(tmp_path / "out.bundle.tar"), "--arg", f"hf_token={token}")
    assert res.code == 1 and "build argument `hf_token` (from --arg): Hugging Face token" in res.stderr
    assert token not in res.stderr + res.stdout and not (tmp_path / "out.bundle.tar").exists()
    res = run_cli("build", str(svc), "-o", str(tmp_path / "out.bundle.tar"), "--arg", f"hf_token={token}", "--allow-secret", "hf_token")
    assert res.code == 0, res.stderr


def test_a_tree_a_thousand_directories_deep_is_walked(tmp_path):
    import os

    svc = project(tmp_path / "p", {})
    here = os.getcwd()
    os.chdir(tmp_path / "p")
    try:
        for _ in range(1000):  # deeper than Python's recursion limit
            os.mkdir("d")
            os.chdir("d")
        Path("deep.txt").write_text("x\n")
    finally:
        os.chdir(here)
    try:
        files = listing(svc)["files"]
        assert "d/" * 1000 + "deep.txt" in files
        res = run_cli("scan", str(tmp_path / "p"), "--json")
        assert res.code == 0, res.stderr
    finally:  # from the bottom up: pytest's own (recursive) clean-up would fail on it
        os.chdir(tmp_path / "p")
        for _ in range(1000):
            os.chdir("d")
        os.unlink("deep.txt")
        for _ in range(1000):
            os.chdir("..")
            os.rmdir("d")
        os.chdir(here)
