"""The shape ARCHITECTURE.md describes, checked: no import circles, no long functions."""

from __future__ import annotations

import ast
from pathlib import Path

import bundler

PACKAGE = Path(bundler.__file__).parent
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.with_suffix("").relative_to(PACKAGE.parent).parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the bundler modules it imports, at the top or inside a function."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        package = m if f.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                subs = {f"{target}.{a.name}" for a in node.names} & mods.keys()
                edges[m] |= subs if node.module is None and subs else ({target} & mods.keys()) | subs
            elif isinstance(node, ast.Import):
                edges[m] |= {a.name for a in node.names} & mods.keys()
        edges[m].discard(m)
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_package_has_no_import_circles():
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_a_circle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(edges) == [["a", "b", "c"]]


def test_the_import_graph_sees_lazy_and_relative_imports():
    edges = import_graph()
    assert "bundler.hub.api" in edges["bundler.kinds.huggingface"]  # inside a method, `from ..hub import api as hub`
    assert "bundler.kinds.base" in edges["bundler.kinds"]


#: The floors, lowest first (ARCHITECTURE.md): a module imports from its own floor and below.
FLOORS = [
    {"errors", "settings", "notes", "units", "model"},
    {"io"},
    {"oci.client"},  # the registry client: model sources use it; the bundle's OCI layout is higher
    {"hub"},
    {"stores"},
    {"env"},
    {"project"},
    {"kinds"},
    {"bundle"},
    {"introspect"},
    {"runtime", "descriptors", "services", "models", ""},  # "": the package's __init__ (the public API)
    {"oci"},
    {"ops"},
    {"cli", "__main__"},
]


def floor(module: str) -> int:
    inner = module.partition(".")[2]  # "oci.client": a module with a floor of its own, else its folder's
    part = inner if any(inner in names for names in FLOORS) else inner.split(".")[0]
    return next(i for i, names in enumerate(FLOORS) if part in names)


def test_a_lower_floor_never_imports_a_higher_one():
    upward = sorted(f"{a} -> {b}" for a, targets in import_graph().items() for b in targets if floor(b) > floor(a))
    assert upward == []


def test_every_module_has_a_floor():
    for module in import_graph():
        floor(module)  # StopIteration names a module no floor holds


def test_no_function_is_longer_than_sixty_lines():
    long = []
    for f in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long.append(f"{f.relative_to(PACKAGE)}:{node.lineno} {node.name} ({size} lines)")
    assert long == []
