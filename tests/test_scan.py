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


@pytest.mark.parametrize("case", CASES)
def test_scan_matches_golden_json(case):
    expected = json.loads((SCAN / case / "expected.json").read_text())
    assert scan(service_file(SCAN / case)).to_json() == expected


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
