"""Property: whatever source the scanner reads, only bundler's own errors come out."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundler.errors import BundlerError
from bundler.introspect import scan

from .conftest import FIXTURES

SOURCES = [p.read_text() for p in sorted((FIXTURES / "scan").glob("*/service.py"))]
TOKENS = [
    "(", ")", "[", "]", "{", "}", ",", ":", "\n", "    ", "'", '"', "f'{", "}'", "%", "%s", "*", "**", "+",
    ".", "=", "import bundler", "from bundler import *", "from . import x", "from .. import y",
    "HuggingFaceModel(", "StoreModel(", "depends(", "@service", "class A(A):", "os.environ['X']",
    "{0.__class__}", "'{:>99999999}'.format(1)", "'%*d' % (9, 1)", "\x00", "\ufeff", "lambda: 0",
    "global X", "del X", "X += 'a'", "for X in Y:", "if X:", "try:", "except:", "with a as X:",
]

SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def _scan_text(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "service.py"
        path.write_bytes(data)
        try:
            scan(path)
        except BundlerError as e:
            assert str(e)  # a message, never empty


@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_bundler_errors(data):
    _scan_text(data)


@SETTINGS
@given(
    st.sampled_from(SOURCES),
    st.lists(
        st.tuples(st.integers(0, 4000), st.integers(0, 40), st.sampled_from(TOKENS)),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_services_raise_only_bundler_errors(source, edits):
    for pos, cut, token in edits:
        pos %= len(source) + 1
        source = source[:pos] + token + source[pos + cut :]
    _scan_text(source.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=30))
def test_token_soup_raises_only_bundler_errors(tokens):
    header = "import bundler\nfrom bundler import HuggingFaceModel, service\n@service\nclass S:\n    m = HuggingFaceModel("
    _scan_text((header + "".join(tokens) + ")\n").encode("utf-8", "surrogatepass"))
