"""The command line as a whole: version, help, start-up weight."""

from __future__ import annotations

import subprocess
import sys

import bundler

from .conftest import run_cli

COMMANDS = ["scan", "lock", "build", "inspect", "push", "diff", "pull", "sign", "verify", "sbom", "outdated", "run", "env", "gc", "models"]


def test_version():
    res = run_cli("--version")
    assert res.code == 0 and res.stdout.strip() == f"bundler {bundler.__version__}"


def test_help_lists_every_command_with_one_line():
    res = run_cli("--help")
    assert res.code == 0
    lines = res.stdout.split("Commands:")[1].strip().splitlines()
    assert [line.split()[0] for line in lines] == COMMANDS
    assert all("..." not in line for line in lines)  # nothing cut off


def test_no_arguments_shows_help_and_usage_errors_exit_2():
    assert "Commands:" in run_cli().stdout + run_cli().stderr
    res = run_cli("nope")
    assert res.code == 2 and "No such command" in res.stderr


def _loaded(argv: list[str], names: tuple[str, ...]) -> tuple[str, list[str]]:
    """Run ``main()`` with ``argv`` in a fresh interpreter: its stdout and which of ``names`` it imported."""
    from .conftest import ROOT

    code = (
        f"import sys\nsys.argv = ['bundler', *{argv!r}]\n"
        "from bundler.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('LOADED=' + ','.join(m for m in {names!r} if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    last = (out.stderr.strip().splitlines() or [""])[-1]
    assert last.startswith("LOADED="), out.stderr
    return out.stdout, [m for m in last.removeprefix("LOADED=").split(",") if m]


def test_scan_does_not_import_heavy_libraries():
    _, loaded = _loaded(["scan", "examples/search/service.py", "--json"], ("huggingface_hub", "yaml", "blake3", "rich", "pydantic"))
    assert loaded == []


def _help(app, name: str) -> str:
    import typer.main

    group = typer.main.get_command(app)
    ctx = group.make_context("bundler", [name, "--help"], resilient_parsing=True)
    sub = group.get_command(ctx, name)
    return sub.get_help(sub.make_context(name, [], parent=ctx, resilient_parsing=True))


def test_a_start_builds_only_the_command_it_runs():
    import typer.main

    from bundler.cli.app import _app_for, app

    for argv in ([], ["--help"], ["--debug"], ["inspct", "b.tar"]):  # typer's own listing and suggestions
        assert _app_for(argv) is app
    for name in COMMANDS:
        one = _app_for(["--debug", name, "x", "--json"])
        names = [c.name or c.callback.__name__ for c in one.registered_commands] + [g.name for g in one.registered_groups]
        assert names == [name], names
        assert _help(one, name) == _help(app, name)  # the same command, not a second definition
    assert len(app.registered_commands) == len(COMMANDS) - 1  # the whole app is left as it was
    # The command is found as the first word that is not an option: no global option takes a value.
    assert all(p.is_flag for p in typer.main.get_command(app).params)


def test_each_command_runs_through_main():
    for name in COMMANDS:
        res = run_cli("--debug", name, "--help")
        assert res.code == 0 and f" bundler {name} " in res.stdout, (name, res.stderr)
    res = run_cli("inspect", "missing.tar")
    assert res.code != 0 and "missing.tar" in res.stderr and "Traceback" not in res.stderr


def test_inspect_loads_no_more_than_it_needs(tmp_path):
    (tmp_path / "service.py").write_text("import bundler\n\n\n@bundler.service\nclass Svc:\n    pass\n")
    bundle = tmp_path / "b.tar"
    assert run_cli("build", str(tmp_path / "service.py"), "--offline", "-o", str(bundle)).code == 0
    stdout, loaded = _loaded(["inspect", str(bundle)], ("hashlib", "huggingface_hub", "yaml", "rich", "pydantic", "logging"))
    assert "Svc" in stdout
    assert loaded == []  # OpenSSL's hashlib alone is 5 ms of a start


def test_json_failures_are_one_object_on_stdout(tmp_path):
    import json

    res = run_cli("inspect", str(tmp_path / "missing.bundle.tar"), "--json")
    assert res.code == 2 and "Traceback" not in res.stderr
    out = json.loads(res.stdout)  # one object, nothing else on stdout
    assert out["exit"] == 2 and "missing.bundle.tar" in out["error"] and "error: " in res.stderr
    assert set(out) == {"error", "hint", "exit", "file", "line"}
    svc = tmp_path / "service.py"
    svc.write_text("import bentoml\n\n@bentoml.service\nclass S:\n    m = bentoml.models.HuggingFaceModel(3)\n")
    res = run_cli("scan", str(svc), "--json")
    out = json.loads(res.stdout)
    assert res.code == 2 and out["exit"] == 2 and out["line"] == 5 and out["file"].endswith("service.py")
    res = run_cli("inspect", str(tmp_path / "missing.bundle.tar"))
    assert res.stdout == ""  # without --json, stdout stays empty


def test_the_environment_is_read_in_one_module():
    """settings.py reads every variable; ops/run.py only sets the serving process's own."""
    import re
    from pathlib import Path

    package = Path(bundler.__file__).parent
    readers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                     if re.search(r"(?<![\"'`])os\.(?:environ\b|getenv\()(?![\"'`])", p.read_text()))  # code, not a name in a string
    assert readers == ["ops/run.py", "settings.py"]
