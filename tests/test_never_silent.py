"""Property: a scan that exits 0 reports every model the file declares (pinned, undeclared at
serve time, or a note); never a silent miss."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundler.errors import BundlerError
from bundler.introspect import scan

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

HEADER = """import sys
import bentoml
import bundler
from bentoml.models import HuggingFaceModel as HF
from bundler import StoreModel

FLAG = {flag}
"""

# How a model may be declared: each a (module-level code, class-body code) template.
DECLARATIONS = [
    ("", "    m{i} = HF('acme/m{i}')\n"),
    ("", "    m{i} = bentoml.models.HuggingFaceModel('acme/m{i}')\n"),
    ("", "    m{i} = StoreModel('m{i}:v1')\n"),
    ("", "    m{i} = bentoml.models.BentoModel('m{i}:v1')\n"),
    ("", "    m{i} = bentoml.models.get('m{i}')\n"),
    ("M{i} = HF('acme/m{i}')\n", "    m{i} = M{i}\n"),
    ("M{i} = HF('acme/m{i}')\n", ""),  # declared, used by no service
    ("", "    def load{i}(self):\n        return HF('acme/m{i}')\n"),  # at serve time
    ("", "    ms{i} = [HF('acme/m{i}')]\n"),  # inside a container
    ("class Other{i}:\n    m{i} = HF('acme/m{i}')\n", ""),  # not a service
    ("if FLAG:\n    ID{i} = 'acme/m{i}'\nelse:\n    ID{i} = 'acme/m{i}'\n", "    m{i} = HF(ID{i})\n"),
    ("if sys.platform == 'x':\n    ID{i} = 'acme/m{i}'\nelse:\n    ID{i} = 'acme/m{i}'\n", "    m{i} = HF(ID{i})\n"),
]
DECORATORS = [
    "@bentoml.service",
    "@bundler.service(resources={{'gpu': 1}})",
    "@svc",  # bound below, possibly conditionally
]
BINDINGS = [
    "svc = bentoml.service\n",
    "if FLAG:\n    svc = bentoml.service\nelse:\n    svc = bundler.service\n",
    "if sys.platform == 'x':\n    svc = bentoml.service\nelse:\n    from elsewhere import svc\n",
]


def declared_ids(source: str) -> list[str]:
    """Every model id a descriptor or lookup call in the source names, by reading the text."""
    ids = re.findall(r"(?:HF|HuggingFaceModel|BentoModel|StoreModel|models\.get)\('(?:acme/)?(m\d+)", source)
    ids += re.findall(r"ID\d+ = 'acme/(m\d+)'", source)[::2]  # both branches bind the same id
    return sorted(set(ids))


@SETTINGS
@given(
    flag=st.booleans(),
    binding=st.sampled_from(BINDINGS),
    decorator=st.sampled_from(DECORATORS),
    picks=st.lists(st.integers(0, len(DECLARATIONS) - 1), min_size=1, max_size=4),
)
def test_exit_0_means_every_declared_model_is_reported(flag, binding, decorator, picks):
    module, body = HEADER.format(flag=flag) + binding, ""
    for i, k in enumerate(picks):
        top, inner = DECLARATIONS[k]
        module += top.format(i=i)
        body += inner.format(i=i)
    source = module + f"\n\n{decorator.format()}\nclass Service:\n    name = 'x'\n" + body
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "service.py"
        path.write_text(source)
        try:
            result = scan(path)
        except BundlerError as e:
            assert str(e) and e.line is not None, source  # an error always names its line
            return
    # reported: pinned, or `undeclared` (a load at serve time), or a note (no service uses it)
    reported = {m.id.split(":")[0].removeprefix("acme/") for m in result.models}
    reported |= {u["id"].split(":")[0].removeprefix("acme/") for s in result.services for u in s.undeclared if u["id"]}
    reported |= {m for note in result.notes for m in re.findall(r"\('(?:acme/)?(m\d+)", note)}
    assert sorted(reported) == declared_ids(source), source


def test_the_property_sees_a_silent_miss():
    # the checker itself: a source whose model is not reported must fail the comparison
    source = HEADER.format(flag=True) + "class X:\n    m0 = HF('acme/m0')\n"
    assert declared_ids(source) == ["m0"]
