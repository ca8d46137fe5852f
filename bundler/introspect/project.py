"""The project's own modules: locate, parse once, record what each top-level name is bound to.

Recording (this module) is separate from evaluating (``values.py``) and from finding services
(``scanner.py``): a name that can't be known stays an explicit ``Opaque`` with its location.
"""

from __future__ import annotations

import ast
import re
import builtins
import os
import sys
import tokenize
import warnings
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from ..errors import IntrospectionError, UsageError


# --- what a name can be bound to -------------------------------------------------------------
@dataclass(frozen=True)
class ImportBinding:
    module: str  # absolute dotted module name
    attr: str | None = None  # ``from module import attr``


@dataclass(frozen=True)
class ValueBinding:
    node: ast.expr


@dataclass(frozen=True)
class ClassBinding:
    node: ast.ClassDef


@dataclass(frozen=True)
class FunctionBinding:
    node: ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class OpaqueBinding:
    reason: str


@dataclass(frozen=True)
class CondBinding:
    """A binding under module- or class-level ``if`` statements: in force only when every
    ``(test, expected truth)`` holds. Decided when looked up, by evaluating the tests."""

    tests: tuple[tuple[ast.expr, bool], ...]
    inner: "Binding"
    reason: str  # why it is unknown when a test can't be decided


Binding = ImportBinding | ValueBinding | ClassBinding | FunctionBinding | OpaqueBinding | CondBinding


# --- what a resolved name is ----------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Scope:
    """Names bound at the top level of a module or a class body, each with the lines binding it."""

    module: Module
    names: dict[str, list[tuple[int, Binding]]]
    stars: list[tuple[int, str]]  # ``from m import *``, with line
    cls: ast.ClassDef | None = None

    def binding(self, name: str, before: int | None) -> tuple[int, Binding] | None:
        """The binding in force for ``name`` at line ``before`` (the last one when None)."""
        found = None
        for line, b in self.names.get(name, ()):
            if before is not None and line >= before:
                break
            found = (line, b)
        return found


@dataclass(frozen=True, eq=False)
class External:
    """A name from outside the project (``bundler.HuggingFaceModel``, ``os.environ``)."""

    qualname: str


@dataclass(frozen=True, eq=False)
class ModuleSym:
    module: Module


@dataclass(frozen=True, eq=False)
class ValueSym:
    scope: Scope
    node: ast.expr


@dataclass(frozen=True, eq=False)
class ClassSym:
    scope: Scope  # the scope the class statement is in
    node: ast.ClassDef


@dataclass(frozen=True, eq=False)
class FunctionSym:
    """A function the project defines: known, and never a bundler object."""

    scope: Scope
    node: ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True, eq=False)
class Opaque:
    """A name whose binding depends on how the code runs (conditional, loop, unpacking)."""

    module: Module
    line: int
    reason: str


Symbol = External | ModuleSym | ValueSym | ClassSym | FunctionSym | Opaque


@dataclass(eq=False)
class Module:
    name: str
    path: Path | None  # None for a namespace package directory
    source: str = ""
    tree: ast.Module | None = None
    is_package: bool = False
    scope: Scope | None = None
    _class_scopes: dict[int, Scope] = field(default_factory=dict)
    _lines: list[str] | None = None

    def class_scope(self, node: ast.ClassDef) -> Scope:
        key = id(node)
        if key not in self._class_scopes:
            names, stars = _collect(node.body, self)
            self._class_scopes[key] = Scope(self, names, stars, node)
        return self._class_scopes[key]

    def segment(self, node: ast.AST) -> str:
        text = self._segment(node) if self.source else None
        if text is None:
            text = ast.unparse(node)
        text = " ".join(text.split())
        return text if len(text) <= 120 else text[:117] + "..."


    def _segment(self, node: ast.AST) -> str | None:
        """``ast.get_source_segment``, with the lines split once: 3.11's splits the whole source
        on every call, a character at a time (seconds for a file with a 1 MB line)."""
        if self._lines is None:
            self._lines = _LINE.findall(self.source)
        try:
            l0, l1 = node.lineno - 1, node.end_lineno - 1  # type: ignore[attr-defined]
            c0, c1 = node.col_offset, node.end_col_offset  # type: ignore[attr-defined]
        except AttributeError:
            return None
        if l1 is None or c1 is None or not 0 <= l0 <= l1 < len(self._lines):
            return None
        first = self._lines[l0].encode("utf-8")  # offsets are UTF-8 byte offsets
        if l0 == l1:
            return first[c0:c1].decode("utf-8", "replace")
        last = self._lines[l1].encode("utf-8")[:c1].decode("utf-8", "replace")
        return first[c0:].decode("utf-8", "replace") + "".join(self._lines[l0 + 1 : l1]) + last


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


#: How many names, imports or base classes deep bundler follows a definition.
_MAX_CHAIN = 50


# --- recording bindings ---------------------------------------------------------------------
_COMPOUND: tuple[type[ast.stmt], ...] = (ast.If, ast.Try, ast.With, ast.For, ast.While, ast.AsyncFor, ast.AsyncWith, ast.Match)
if hasattr(ast, "TryStar"):
    _COMPOUND = (*_COMPOUND, ast.TryStar)


def _absolute(module: Module, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    parts = module.name.split(".")
    if not module.is_package:
        parts = parts[:-1]
    if level - 1 > len(parts) or (level - 1 == len(parts) and not name):
        raise IntrospectionError(
            "relative import goes beyond the top-level package", file=module.path, line=None
        )
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _collect(body: list[ast.stmt], module: Module) -> tuple[dict, list]:
    binder = _Binder(module)
    binder.visit(body, None)
    return binder.names, binder.stars


class _Binder:
    """The names a module (or class body) binds at its top level, and how: one ``visit_<Node>``
    per statement type (griffe's visitor shape). A binding under an ``if`` keeps the tests that
    lead to it; one inside another block is opaque, with the reason."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.names: dict[str, list[tuple[int, Binding]]] = {}
        self.stars: list[tuple[int, str]] = []
        self.tests: tuple[tuple[ast.expr, bool], ...] = ()
        self.if_reason = ""
        self.conditional: str | None = None  # why a binding here is opaque (inside a loop, a with, ...)

    def visit(self, stmts: list[ast.stmt], conditional: str | None) -> None:
        outer, self.conditional = self.conditional, conditional
        try:
            for s in stmts:
                getattr(self, f"visit_{type(s).__name__}", self.generic_visit)(s)
        finally:
            self.conditional = outer

    def bind(self, name: str, line: int, b: Binding) -> None:
        if self.tests:
            b = CondBinding(self.tests, b, self.if_reason)
        self.names.setdefault(name, []).append((line, b))

    def targets(self, t: ast.expr, line: int, reason: str) -> None:
        for n in ast.walk(t):
            if isinstance(n, ast.Name):
                self.bind(n.id, line, OpaqueBinding(reason))

    def generic_visit(self, s: ast.stmt) -> None:
        if isinstance(s, _COMPOUND):
            self._block(s)
        # other statements bind nothing a descriptor could use

    def visit_Import(self, s: ast.Import) -> None:
        for a in s.names:
            if a.asname:
                self.bind(a.asname, s.lineno, ImportBinding(a.name))
            else:
                top = a.name.split(".")[0]
                self.bind(top, s.lineno, ImportBinding(top))

    def visit_ImportFrom(self, s: ast.ImportFrom) -> None:
        try:
            mod = _absolute(self.module, s.level, s.module)
        except IntrospectionError as e:
            e.line = s.lineno
            raise
        for a in s.names:
            if a.name == "*":
                self.stars.append((s.lineno, mod))
            else:
                self.bind(a.asname or a.name, s.lineno, ImportBinding(mod, a.name))

    def visit_ClassDef(self, s: ast.ClassDef) -> None:
        self.bind(s.name, s.lineno, ClassBinding(s) if not self.conditional else OpaqueBinding(self.conditional))

    def visit_FunctionDef(self, s: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.bind(s.name, s.lineno, FunctionBinding(s) if not self.conditional else OpaqueBinding(self.conditional))

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Assign(self, s: ast.Assign | ast.AnnAssign) -> None:
        if s.value is None:
            return
        line = s.lineno
        for t in s.targets if isinstance(s, ast.Assign) else [s.target]:
            if self.conditional:
                self.targets(t, line, self.conditional)
            elif isinstance(t, ast.Name):
                self.bind(t.id, line, ValueBinding(s.value))
            elif isinstance(t, (ast.Tuple, ast.List)) and isinstance(s.value, (ast.Tuple, ast.List)) and len(
                t.elts
            ) == len(s.value.elts) and all(isinstance(e, ast.Name) for e in t.elts):
                for elt, v in zip(t.elts, s.value.elts):
                    assert isinstance(elt, ast.Name)
                    self.bind(elt.id, line, ValueBinding(v))
            else:
                self.targets(t, line, "assigned by unpacking at line %d" % line)

    visit_AnnAssign = visit_Assign

    def visit_AugAssign(self, s: ast.AugAssign) -> None:
        self.targets(s.target, s.lineno, "modified in place at line %d" % s.lineno)

    def visit_Delete(self, s: ast.Delete) -> None:
        for t in s.targets:
            self.targets(t, s.lineno, "deleted at line %d" % s.lineno)

    def visit_If(self, s: ast.If) -> None:
        if self.conditional:
            self._block(s)
            return
        saved = (self.tests, self.if_reason)
        self.if_reason = self.if_reason or "assigned under an `if` at line %d" % s.lineno
        self.tests = (*saved[0], (s.test, True))
        self.visit(s.body, None)
        self.tests = (*saved[0], (s.test, False))
        self.visit(s.orelse, None)
        self.tests, self.if_reason = saved

    def _block(self, s: ast.stmt) -> None:
        """A loop, ``with``, ``try`` (or an ``if`` inside one): what it binds is opaque."""
        why = {
            ast.If: "assigned under an `if` at line %d",
            ast.For: "a loop variable or assigned in a loop at line %d",
            ast.AsyncFor: "a loop variable or assigned in a loop at line %d",
            ast.While: "assigned in a loop at line %d",
        }.get(type(s), "assigned inside a block at line %d") % s.lineno
        if isinstance(s, (ast.For, ast.AsyncFor)):
            self.targets(s.target, s.lineno, why)
        if isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                if item.optional_vars is not None:
                    self.targets(item.optional_vars, s.lineno, why)
        for block in _blocks(s):
            self.visit(block, why)


def _blocks(s: ast.stmt) -> list[list[ast.stmt]]:
    out: list[list[ast.stmt]] = []
    for attr in ("body", "orelse", "finalbody"):
        block = getattr(s, attr, None)
        if block:
            out.append(block)
    for h in getattr(s, "handlers", ()) or ():
        out.append(h.body)
    for c in getattr(s, "cases", ()) or ():
        out.append(c.body)
    return out


# --- the project ---------------------------------------------------------------------------
def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def read_source(path: Path, shown: str) -> str:
    """Decode a Python file as Python does (PEP 263 cookie, BOM), with a clear error otherwise."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{shown}: no such file", hint="check the path") from None
    except IsADirectoryError:
        raise UsageError(f"{shown}: is a directory", hint="pass the service's .py file") from None
    except OSError as e:
        raise UsageError(f"{shown}: can't read: {e.strerror}") from None
    try:
        encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as e:
        line = getattr(e, "lineno", None)
        if isinstance(e, UnicodeDecodeError):
            line = data[: e.start].count(b"\n") + 1
        raise IntrospectionError(
            f"can't decode the file: {e}", file=shown, line=line, hint="save it as UTF-8"
        ) from None


def parse(source: str, shown: str) -> ast.Module:
    try:
        with warnings.catch_warnings():
            # Python's own warnings about the user's code (invalid escapes) are not ours to print.
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(source, filename=shown)
            # What only the compiler refuses (a __future__ import after other code, `return`
            # outside a function, a nonlocal at module level) fails Python's import all the same.
            compile(tree, shown, "exec", dont_inherit=True)
            return tree
    except SyntaxError as e:
        raise IntrospectionError(
            f"syntax error: {e.msg}", file=shown, line=e.lineno, hint="fix the syntax; bundler reads the file as Python 3.11"
        ) from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as e:
        why = str(e) or type(e).__name__
        if isinstance(e, RecursionError):
            why = "an expression is nested too deeply for Python's parser"
        elif isinstance(e, MemoryError):
            why = f"Python's parser ran out of memory on it ({len(source) >> 20} MiB of source)"
        raise IntrospectionError(f"can't parse the file: {why}", file=shown, line=None, hint="split the expression") from None


class Project:
    """The service file's project: the directories its imports are resolved in.

    Imports resolve relative to the service file's directory and, when that directory is a
    package, the directory above its top-level package: the ``sys.path`` Python would use.
    """

    def __init__(self, service_file: Path, parsed: dict[Path, tuple[str, ast.Module]] | None = None,
                 context: Path | None = None) -> None:
        # ``parsed`` is shared across projects when many services are scanned in one go:
        # parsing dominates the cost, and a module parses the same whoever imports it.
        self._parsed = parsed if parsed is not None else {}
        service_file = service_file.resolve()
        here = service_file.parent
        top = here
        while (top / "__init__.py").is_file() and top.parent != top:
            top = top.parent
        # BentoML imports the service from its build context (the bentofile's directory), with
        # that directory first on sys.path: `service: src.service:Svc` there makes `src` a
        # package root whatever __init__.py files exist, and `from src.x import y` resolves.
        if context is not None:
            context = context.resolve()
            inner = here.relative_to(context).parts if here.is_relative_to(context) else None
            if inner and all(p.isidentifier() for p in inner) and context != top:
                top = context
        self.root = top  # the directory holding the service's top-level package (or the file)
        self.paths = [here] if top == here else [here, top]
        self._by_path: dict[Path, Module] = {}
        self._decided: dict[int, bool | None] = {}
        self._looking: set[tuple[int, str, int | None]] = set()  # lookups under way: a repeat is a circle
        self._linearizing: set[int] = set()
        self.evaluator: Any = None  # set by the Evaluator: ``if`` tests are decided with it
        self._by_name: dict[str, Module] = {}
        rel = service_file.relative_to(top).with_suffix("")
        parts = list(rel.parts)
        self.service_module_name = ".".join(parts[:-1] + [parts[-1]] if parts[-1] != "__init__" else parts[:-1])

    def relative(self, path: Path | None) -> str:
        if path is None:
            return ""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def load(self, path: Path, name: str) -> Module:
        path = path.resolve()
        if path in self._by_path:
            return self._by_path[path]
        shown = _display(path)
        mod = Module(name=name, path=path, is_package=path.name == "__init__.py")
        if path not in self._parsed:
            source = read_source(path, shown)
            self._parsed[path] = (source, parse(source, shown))
        mod.source, mod.tree = self._parsed[path]
        self._by_path[path] = mod
        self._by_name.setdefault(name, mod)
        names, stars = _collect(mod.tree.body, mod)
        mod.scope = Scope(mod, names, stars)
        return mod

    def modules(self) -> list[Module]:
        """Every module of the project loaded so far (the service's first)."""
        return list(self._by_path.values())

    def load_service(self, path: Path) -> Module:
        return self.load(path, self.service_module_name)

    def shown(self, module: Module) -> str:
        return _display(module.path) if module.path else module.name

    # -- module lookup ---------------------------------------------------------------------
    def _find(self, name: str) -> tuple[Path | None, bool]:
        """(file, is namespace dir) for a dotted name in the project, or (None, False)."""
        rel = Path(*name.split("."))
        for base in self.paths:
            for cand in (base / rel.with_suffix(".py") if rel.name else None, base / rel / "__init__.py"):
                if cand is not None and cand.is_file():
                    return cand, False
        for base in self.paths:
            if (base / rel).is_dir():
                return None, True
        return None, False

    def _owns(self, name: str) -> bool:
        top = name.split(".")[0]
        return any((b / f"{top}.py").is_file() or (b / top / "__init__.py").is_file() for b in self.paths)

    def module(self, name: str, line: int | None = None, where: Module | None = None) -> Symbol:
        if name in self._by_name:
            return ModuleSym(self._by_name[name])
        top = name.split(".")[0]
        if top in ("bundler", "bentoml") or not name:
            return External(name)
        path, namespace = self._find(name)
        if path is not None:
            return ModuleSym(self.load(path, name))
        if namespace and name.split(".")[0] not in sys.stdlib_module_names:
            mod = Module(name=name, path=None, is_package=True)
            mod.scope = Scope(mod, {}, [])
            self._by_name[name] = mod
            return ModuleSym(mod)
        if self._owns(name):
            raise IntrospectionError(
                f"can't find module `{name}` in the project",
                file=self.shown(where) if where else None,
                line=line,
                hint=f"looked in {', '.join(_display(p) for p in self.paths)}",
            )
        return External(name)

    # -- name lookup -------------------------------------------------------------------------
    def lookup(self, scope: Scope, name: str, before: int | None, depth: int = 0) -> Symbol | None:
        """What ``name`` means in ``scope`` at line ``before`` (class bodies fall back to globals)."""
        key = (id(scope), name, before)
        if key in self._looking:
            raise IntrospectionError(f"`{name}` is defined in a circular way", file=self.shown(scope.module), line=before)
        if depth > _MAX_CHAIN:
            raise IntrospectionError(
                f"`{name}` is reached through a chain of more than {_MAX_CHAIN} names and imports, further than bundler follows",
                file=self.shown(scope.module), line=before, hint="import the value from the module that defines it",
            )
        self._looking.add(key)
        try:
            return self._lookup(scope, name, before, depth)
        finally:
            self._looking.discard(key)

    def _lookup(self, scope: Scope, name: str, before: int | None, depth: int) -> Symbol | None:
        found = self.binding(scope, name, before)
        if found is not None:
            return self._symbol(scope, found[0], found[1], depth)
        for line, star in reversed(scope.stars):
            if before is not None and line >= before:
                continue
            sym = self.module(star, line, scope.module)
            if isinstance(sym, ModuleSym) and sym.module.scope is not None:
                inner = self.lookup(sym.module.scope, name, None, depth + 1)
                if inner is not None:
                    return inner
        if scope.cls is not None:
            mscope = scope.module.scope
            assert mscope is not None
            return self.lookup(mscope, name, scope.cls.lineno, depth + 1)
        if hasattr(builtins, name):
            return External(f"builtins.{name}")
        return None

    def binding(self, scope: Scope, name: str, before: int | None) -> tuple[int, Binding] | None:
        """The binding in force for ``name`` at line ``before``: the last one whose ``if`` tests
        hold; an ``if`` whose test can't be decided makes the name Opaque."""
        candidates = [(line, b) for line, b in scope.names.get(name, ()) if before is None or line < before]
        for line, b in reversed(candidates):
            if not isinstance(b, CondBinding):
                return line, b
            verdict = self.decide(scope, b.tests)
            if verdict is None:
                return line, OpaqueBinding(b.reason)
            if verdict:
                return line, b.inner
        return None

    def decide(self, scope: Scope, tests: tuple[tuple[ast.expr, bool], ...]) -> bool | None:
        """True when every test has its expected truth, False when one has not, None if unknown."""
        from ..errors import DynamicValueError

        for test, expected in tests:
            key = id(test)
            if key not in self._decided:
                self._decided[key] = None  # a test that depends on itself is unknown
                try:
                    self._decided[key] = self.evaluator.truth(test, scope) if self.evaluator else None
                except (DynamicValueError, IntrospectionError):
                    self._decided[key] = None
            truth = self._decided[key]
            if truth is None:
                return None
            if truth != expected:
                return False
        return True

    def _symbol(self, scope: Scope, line: int, b: Binding, depth: int) -> Symbol | None:
        if isinstance(b, ValueBinding):
            if isinstance(b.node, (ast.Name, ast.Attribute)) and depth < 40:
                # ``service = bentoml.service``, ``HF = models.HuggingFaceModel``: an alias
                target = self._resolve_at(b.node, scope, line, depth + 1)
                if isinstance(target, (External, ClassSym, FunctionSym, ModuleSym, Opaque)):
                    return target
            return ValueSym(scope, b.node)
        if isinstance(b, ClassBinding):
            return ClassSym(scope, b.node)
        if isinstance(b, FunctionBinding):
            return FunctionSym(scope, b.node)
        if isinstance(b, OpaqueBinding):
            return Opaque(scope.module, line, b.reason)
        assert isinstance(b, ImportBinding), b
        if b.attr is None:
            return self.module(b.module, line, scope.module)
        return self.attribute(self.module(b.module, line, scope.module), b.attr, line, scope.module, depth + 1)

    def attribute(self, sym: Symbol | None, attr: str, line: int | None, where: Module, depth: int = 0) -> Symbol | None:
        if isinstance(sym, External):
            return External(f"{sym.qualname}.{attr}")
        if isinstance(sym, ModuleSym):
            mod = sym.module
            inner = self.lookup(mod.scope, attr, None, depth + 1) if mod.scope is not None else None
            if inner is not None:
                return inner
            return self.module(f"{mod.name}.{attr}", line, where)
        if isinstance(sym, ClassSym):
            for cls_scope in self.linearize(sym, line, where):
                found = self.binding(cls_scope, attr, None)
                if found is not None:
                    return self._symbol(cls_scope, found[0], found[1], depth + 1)
            return None
        if isinstance(sym, Opaque):
            return sym
        return None

    def linearize(self, sym: ClassSym, line: int | None, where: Module, _depth: int = 0) -> list[Scope]:
        """The class and its project base classes in method resolution order (C3)."""
        if id(sym.node) in self._linearizing:
            raise IntrospectionError(
                f"class `{sym.node.name}` inherits from itself", file=self.shown(sym.scope.module), line=sym.node.lineno
            )
        if _depth > _MAX_CHAIN:
            raise IntrospectionError(
                f"class `{sym.node.name}` has more than {_MAX_CHAIN} levels of base classes, more than bundler follows",
                file=self.shown(sym.scope.module), line=sym.node.lineno,
            )
        self._linearizing.add(id(sym.node))
        try:
            return self._linearize(sym, line, where, _depth)
        finally:
            self._linearizing.discard(id(sym.node))

    def _linearize(self, sym: ClassSym, line: int | None, where: Module, _depth: int) -> list[Scope]:
        own = sym.scope.module.class_scope(sym.node)
        seqs: list[list[Scope]] = []
        bases: list[Scope] = []
        for base in sym.node.bases:
            bsym = self.resolve_expr(base, sym.scope, sym.node.lineno)
            if isinstance(bsym, ClassSym):
                seq = self.linearize(bsym, base.lineno, sym.scope.module, _depth + 1)
                seqs.append(seq)
                bases.append(seq[0])
        seqs.append(bases)
        out = [own]
        seqs = [list(s) for s in seqs if s]
        while seqs:
            for s in seqs:
                head = s[0]
                if not any(head in t[1:] for t in seqs):
                    break
            else:
                raise IntrospectionError(
                    f"class `{sym.node.name}` has an inconsistent base class order",
                    file=self.shown(sym.scope.module),
                    line=sym.node.lineno,
                )
            out.append(head)
            seqs = [[x for x in t if x is not head] for t in seqs]
            seqs = [t for t in seqs if t]
        return out

    def resolve_expr(self, node: ast.expr, scope: Scope, before: int | None) -> Symbol | None:
        """Resolve a dotted name expression (``a``, ``a.b.c``); anything else is None."""
        return self._resolve_at(node, scope, before, 0)

    def resolve_quietly(self, node: ast.expr, scope: Scope, before: int | None) -> Symbol | None:
        """``resolve_expr``, with None where it would raise (an unresolvable project import)."""
        try:
            return self._resolve_at(node, scope, before, 0)
        except IntrospectionError:
            return None

    def _resolve_at(self, node: ast.expr, scope: Scope, before: int | None, depth: int) -> Symbol | None:
        if isinstance(node, ast.Name):
            return self.lookup(scope, node.id, before, depth)
        if isinstance(node, ast.Attribute):
            base = self._resolve_at(node.value, scope, before, depth)
            if base is None:
                return None
            return self.attribute(base, node.attr, node.lineno, scope.module, depth)
        return None


def last_name(node: ast.expr) -> str | None:
    """The last name of a dotted expression: ``HuggingFaceModel`` of ``bentoml.models.HuggingFaceModel``."""
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
