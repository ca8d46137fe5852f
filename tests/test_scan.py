"""Static introspection: each pattern a fixture project with golden JSON in fixtures/scan/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bundler.errors import BundlerError, DynamicValueError, IntrospectionError, UsageError
from bundler.introspect import scan, split_target

from .conftest import FIXTURES, run_cli

SCAN = FIXTURES / "scan"
ERRORS = FIXTURES / "scan-errors"


def service_file(case: Path) -> Path:
    found = sorted(case.glob("service.py")) or sorted(case.glob("*/service.py"))
    return found[0]


CASES = sorted(p.name for p in SCAN.iterdir() if p.is_dir())
ERROR_CASES = sorted(p.name for p in ERRORS.iterdir() if p.is_dir())


def case_arguments(case: Path) -> dict | None:
    """``--arg`` values a case is scanned with (``args.json``), on top of its bentofile's."""
    f = case / "args.json"
    return json.loads(f.read_text()) if f.is_file() else None


@pytest.mark.parametrize("case", CASES)
def test_scan_matches_golden_json(case, monkeypatch):
    monkeypatch.chdir(SCAN / case)  # notes name files as the user would type them: from here
    expected = json.loads((SCAN / case / "expected.json").read_text())
    result = scan(service_file(SCAN / case), arguments=case_arguments(SCAN / case))
    assert result.to_json() == expected
    notes = SCAN / case / "notes.txt"  # what the scan says but does not refuse
    if notes.is_file():
        assert result.notes == notes.read_text().splitlines()


def test_bentoml_spelling_scans_identically_to_bundler_spelling():
    a = scan(service_file(SCAN / "bundler_basic")).to_json()
    b = scan(service_file(SCAN / "bentoml_spelling")).to_json()
    # the same but for the store: BentoModel names BentoML's model store, StoreModel bundler's
    assert [m["kind"] for m in a["services"][0]["models"]] == ["huggingface", "store"]
    assert [m["kind"] for m in b["services"][0]["models"]] == ["huggingface", "bentoml-store"]
    b["services"][0]["models"][1]["kind"] = "store"
    assert a == b


def test_cli_json_is_the_golden_json():
    res = run_cli("scan", str(service_file(SCAN / "aliases")), "--json")
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout) == json.loads((SCAN / "aliases" / "expected.json").read_text())
    assert res.stderr == ""


def test_cli_table_lists_services_and_models():
    res = run_cli("scan", str(service_file(SCAN / "selection")))
    assert res.code == 0, res.stderr
    for text in ("Embedder", "Gateway", "acme/embed", "gateway-rules:1", "depends on: Embedder", "gpu=2"):
        assert text in res.stdout


def test_file_colon_class_picks_one_service():
    res = run_cli("scan", f"{service_file(SCAN / 'selection')}:Gateway", "--json")
    assert res.code == 0, res.stderr
    services = json.loads(res.stdout)["services"]
    assert [s["name"] for s in services] == ["Gateway"]
    assert services[0]["depends"] == ["Embedder", "http://ranker.internal:3000"]


def test_unknown_class_is_a_usage_error_listing_services():
    res = run_cli("scan", f"{service_file(SCAN / 'selection')}:Nope")
    assert res.code == 2
    assert "no service named `Nope` (services found: Embedder, Gateway)" in res.stderr
    assert "Traceback" not in res.stderr


def test_split_target():
    assert split_target("svc.py:Search") == (Path("svc.py"), "Search")
    assert split_target("svc.py") == (Path("svc.py"), None)
    assert split_target("dir/svc.py:not an identifier") == (Path("dir/svc.py:not an identifier"), None)


def test_scan_never_imports_or_executes_the_service(tmp_path, monkeypatch):
    project = tmp_path / "proj"
    shutil.copytree(SCAN / "side_effects", project)
    monkeypatch.chdir(project)
    result = scan(project / "service.py")
    assert [m.id for m in result.models] == ["acme/side-effects"]
    assert not (project / "IMPORTED_SERVICE").exists()
    assert not (project / "IMPORTED_HELPERS").exists()
    # Through the CLI too, in a fresh process where torch is not installed.
    res = run_cli("scan", "service.py", "--json", cwd=project)
    assert res.code == 0, res.stderr
    assert sorted(p.name for p in project.iterdir()) == ["expected.json", "helpers.py", "service.py"]


def test_inherited_descriptors_keep_their_own_location():
    svc = scan(service_file(SCAN / "inheritance")).services[0]
    where = {m.attribute: (m.file, m.line) for m in svc.models}
    assert where == {
        "extra": ("app/base.py", 11),
        "tokenizer": ("app/base.py", 5),
        "encoder": ("service.py", 6),
        "own": ("service.py", 12),
    }


@pytest.mark.parametrize("case", ERROR_CASES)
def test_bad_input_is_one_clear_line_and_exit_2(case):
    expected = (ERRORS / case / "expected.txt").read_text().strip()
    res = run_cli("scan", "service.py", cwd=ERRORS / case)
    assert res.code == 2
    assert res.stdout == ""
    assert res.stderr.splitlines()[0] == expected
    assert "Traceback" not in res.stderr


def test_dynamic_value_error_names_file_line_and_expression():
    with pytest.raises(DynamicValueError) as info:
        scan(ERRORS / "env_var" / "service.py")
    e = info.value
    assert e.file.endswith("service.py") and e.line == 8
    assert '`os.environ["MODEL_ID"]`' in e.message
    assert e.exit_code == 2


def test_missing_file_and_directory_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        scan(tmp_path / "nope.py")
    with pytest.raises(UsageError, match="is a directory"):
        scan(tmp_path)
    res = run_cli("scan", str(tmp_path / "nope.py"))
    assert res.code == 2 and "no such file" in res.stderr and "Traceback" not in res.stderr


def test_debug_flag_shows_the_traceback():
    res = run_cli("--debug", "scan", "service.py", cwd=ERRORS / "env_var")
    assert res.code == 2
    assert "Traceback" in res.stderr
    assert "reads an environment variable" in res.stderr


def test_encoding_cookie_is_honoured(tmp_path):
    src = '# -*- coding: latin-1 -*-\nfrom bundler import HuggingFaceModel, service\n\n@service\nclass S:\n    m = HuggingFaceModel("acme/caf\xe9")\n'
    (tmp_path / "service.py").write_bytes(src.encode("latin-1"))
    assert scan(tmp_path / "service.py").models[0].id == "acme/caf\xe9"


def test_format_width_bomb_is_refused_not_evaluated(tmp_path):
    (tmp_path / "service.py").write_text(
        'from bundler import HuggingFaceModel, service\n\n@service\nclass S:\n'
        '    m = HuggingFaceModel(f"{1:>999999999}")\n'
    )
    with pytest.raises(DynamicValueError, match="format spec too wide"):
        scan(tmp_path / "service.py")


def test_circular_constants_are_an_error(tmp_path):
    (tmp_path / "a.py").write_text("from b import X\n")
    (tmp_path / "b.py").write_text("from a import X\n")
    (tmp_path / "service.py").write_text(
        "from a import X\nfrom bundler import HuggingFaceModel, service\n\n@service\nclass S:\n    m = HuggingFaceModel(X)\n"
    )
    with pytest.raises(IntrospectionError, match="circular"):
        scan(tmp_path / "service.py")


def test_no_services_gives_an_empty_list(tmp_path):
    (tmp_path / "service.py").write_text("x = 1\n")
    assert scan(tmp_path / "service.py").to_json() == {"services": []}
    res = run_cli("scan", str(tmp_path / "service.py"), "--json")
    assert res.code == 0 and json.loads(res.stdout) == {"services": []}


def test_every_error_is_a_bundler_error():
    for case in ERROR_CASES:
        with pytest.raises(BundlerError):
            scan(ERRORS / case / "service.py")


def test_arg_overrides_bentofile_and_default_converting_to_the_field_type(tmp_path):
    svc = service_file(SCAN / "arguments_pydantic")
    res = run_cli("scan", str(svc), "--json", "--arg", "repo=Other/Model-Z", "--arg", "gpus=8", "--arg", "skip=a.bin, b.bin")
    assert res.code == 0, res.stderr
    s = json.loads(res.stdout)["services"][0]
    assert (s["name"], s["resources"]) == ("model-z", {"gpu": 8})
    assert (s["models"][0]["id"], s["models"][0]["exclude"]) == ("other/model-z", ["a.bin", "b.bin"])


@pytest.mark.parametrize(
    "arg,message",
    [
        ("gpus=many", "build argument `gpus`: 'many' is not a valid int"),
        ("nope=1", "unknown build argument `nope`"),
        ("use_proxy=maybe", "build argument `use_proxy`: 'maybe' is not a valid bool"),
        ("=x", "expected KEY=VALUE"),
    ],
)
def test_bad_build_arguments_are_usage_errors(arg, message):
    res = run_cli("scan", str(service_file(SCAN / "arguments_pydantic")), "--arg", arg)
    assert res.code == 2 and message in res.stderr and "Traceback" not in res.stderr


def test_an_argument_can_switch_the_decorator_to_one_bundler_does_not_know():
    # use_proxy=true binds `service` to an outside decorator: the models must not vanish silently
    res = run_cli("scan", str(service_file(SCAN / "arguments_pydantic")), "--arg", "use_proxy=true")
    assert res.code == 2
    assert "declares a model, but is declared in class `Chat`, which is not a service bundler recognises" in res.stderr


def test_unknown_decorator_values_are_notes_not_errors():
    res = run_cli("scan", str(service_file(SCAN / "soft_decorator")), "--json")
    assert res.code == 0, res.stderr
    notes = [line for line in res.stderr.splitlines() if line.startswith("note: ")]
    assert any("resources['gpu'] is not known statically" in n for n in notes)
    assert any("falls back to the class name `Soft`" in n for n in notes)
    assert json.loads(res.stdout)["services"][0]["name"] == "Soft"


def test_unknown_bentofile_arguments_are_notes(tmp_path):
    res = run_cli("scan", str(service_file(SCAN / "arguments_pyproject")))
    assert res.code == 0, res.stderr
    assert "build argument `unused_key` names no field" in res.stderr


def test_undeclared_loads_are_warnings_on_stderr():
    res = run_cli("scan", str(service_file(SCAN / "undeclared_loads")))
    assert res.code == 0, res.stderr
    warned = [line for line in res.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 4 and "model `acme/side-model` is loaded by from_pretrained() but not declared" in warned[0]
    assert "undeclared: acme/classifier loaded by pipeline()" in res.stdout


def test_bentoml_module_spelling_of_the_target(tmp_path, monkeypatch):
    monkeypatch.chdir(SCAN / "selection")
    res = run_cli("scan", "service:Gateway", "--json", cwd=SCAN / "selection")
    assert res.code == 0, res.stderr
    assert [s["class"] for s in json.loads(res.stdout)["services"]] == ["Gateway"]


def test_scan_dir_reports_every_service_file_and_each_refusal(tmp_path):
    shutil.copytree(SCAN / "conditional_known", tmp_path / "repo" / "good")
    shutil.copytree(SCAN / "string_methods", tmp_path / "repo" / "also_good")
    shutil.copytree(ERRORS / "wrong_type", tmp_path / "repo" / "bad")
    (tmp_path / "repo" / "notes.py").write_text("print('not a service')\n")
    res = run_cli("scan", str(tmp_path / "repo"), "--json")
    assert res.code == 2
    out = json.loads(res.stdout)
    assert sorted((s["file"], s["name"]) for s in out["services"]) == [("also_good/service.py", "coder"), ("good/service.py", "Chat")]
    assert [(r["file"], r["line"]) for r in out["refused"]] == [("bad/service.py", 6)]
    assert "`include` must be a string or a list of strings" in out["refused"][0]["error"]
    res = run_cli("scan", str(tmp_path / "repo" / "good"))
    assert res.code == 0 and "1 service files scanned, 0 refused" in res.stderr


def test_source_segments_are_what_ast_gives():
    import ast

    from bundler.introspect.project import Module

    for path in sorted(FIXTURES.glob("scan*/*/*.py")):
        try:
            source = path.read_text()
            tree = ast.parse(source)
        except (UnicodeDecodeError, SyntaxError):
            continue  # the fixtures of unreadable files
        tree = ast.parse(source)
        mod = Module("m", path, source, tree)
        for node in ast.walk(tree):
            if hasattr(node, "end_col_offset"):
                assert mod._segment(node) == ast.get_source_segment(source, node), (path, ast.dump(node)[:80])


def test_an_error_in_a_file_with_a_two_megabyte_line_comes_at_once(tmp_path):
    # 3.11's get_source_segment re-split the whole file a character at a time per call: ~50 s here
    line = "X = [" + ", ".join(['"abc"'] * 300_000) + "]\n"
    (tmp_path / "service.py").write_text(
        "import os\nimport bentoml\n" + line
        + "@bentoml.service\nclass S:\n    m = bentoml.models.HuggingFaceModel(os.environ['M'])\n"
    )
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "bundler", "scan", str(tmp_path / "service.py")],
                         capture_output=True, text=True, timeout=20)  # seconds, not the ~50 it took
    assert res.returncode == 2 and "service.py:6: `os.environ['M']` can't be known statically" in res.stderr


def test_a_long_import_chain_is_not_called_circular(tmp_path):
    for i in range(60):
        (tmp_path / f"m{i}.py").write_text(f"from m{i + 1} import MODEL\n" if i < 59 else "MODEL = 'acme/x'\n")
    (tmp_path / "service.py").write_text(
        "import bentoml\nfrom m0 import MODEL\n\n@bentoml.service\nclass S:\n    m = bentoml.models.HuggingFaceModel(MODEL)\n"
    )
    res = run_cli("scan", str(tmp_path / "service.py"))
    assert res.code == 2 and "circular" not in res.stderr
    assert "through a chain of more than 50 names and imports" in res.stderr


def test_a_deep_class_chain_does_not_inherit_from_itself(tmp_path):
    classes = "class C0:\n    m = bentoml.models.HuggingFaceModel('acme/x')\n" + "".join(
        f"class C{i}(C{i - 1}):\n    pass\n" for i in range(1, 60))
    (tmp_path / "service.py").write_text(f"import bentoml\n{classes}\n@bentoml.service\nclass S(C59):\n    pass\n")
    res = run_cli("scan", str(tmp_path / "service.py"))
    assert res.code == 2 and "inherits from itself" not in res.stderr
    assert "more than 50 levels of base classes" in res.stderr
