"""The command line as a whole: version, help, start-up weight."""

from __future__ import annotations

import subprocess
import sys

import bundler

from .conftest import run_cli

COMMANDS = ["scan", "lock", "build", "inspect", "push", "diff", "pull", "run", "env", "models"]


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


def test_scan_does_not_import_heavy_libraries():
    code = (
        "import sys\nsys.argv = ['bundler', 'scan', 'examples/search/service.py', '--json']\n"
        "from bundler.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('huggingface_hub', 'yaml', 'blake3', 'rich', 'pydantic') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    from .conftest import ROOT

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stderr.strip().splitlines()[-1] == "HEAVY="
