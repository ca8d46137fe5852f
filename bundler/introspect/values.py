"""Evaluate constant expressions statically: literals, names, ``+``, f-strings, ``%`` and ``.format``.

Anything else is a ``DynamicValueError`` that names the file, the line and the expression as
written: bundler never guesses a value.
"""

from __future__ import annotations

import ast
import re
import string
from typing import Any

from ..errors import DynamicValueError, IntrospectionError
from .project import ClassSym, External, FunctionSym, ModuleSym, Opaque, Project, Scope, ValueSym

_HINT = "use a string literal or a constant defined in the project's own modules"
_MAX_LEN = 100_000  # a descriptor argument is an id or a pattern, never megabytes
_MAX_DEPTH = 60
_ENV = {"os.environ", "os.getenv", "os.environ.get", "os.getenvb", "os.environb"}
_SPEC_NUMBER = re.compile(r"\d+")
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)


class Evaluator:
    def __init__(self, project: Project) -> None:
        self.project = project

    def error(self, scope: Scope, node: ast.AST, reason: str) -> DynamicValueError:
        mod = scope.module
        return DynamicValueError(
            f"`{mod.segment(node)}` can't be known statically: {reason}",
            file=self.project.shown(mod),
            line=getattr(node, "lineno", None),
            hint=_HINT,
        )

    def eval(self, node: ast.expr, scope: Scope, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise self.error(scope, node, "nested too deeply (or defined in terms of itself)")
        try:
            value = self._eval(node, scope, depth + 1)
        except (TypeError, ValueError, KeyError, IndexError, OverflowError, ZeroDivisionError) as e:
            raise self.error(scope, node, f"evaluating it fails ({e})") from None
        if isinstance(value, str) and len(value) > _MAX_LEN:
            raise self.error(scope, node, "the value is unreasonably long")
        return value

    def _eval(self, node: ast.expr, scope: Scope, depth: int) -> Any:
        ev = self.eval
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (str, int, float, bool, type(None))):
                return node.value
            raise self.error(scope, node, "only strings, numbers, booleans and None are supported")
        if isinstance(node, (ast.List, ast.Tuple)):
            if any(isinstance(e, ast.Starred) for e in node.elts):
                raise self.error(scope, node, "starred items are not supported")
            items = [ev(e, scope, depth) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise self.error(scope, node, "`**` in a dict is not supported")
            return {ev(k, scope, depth): ev(v, scope, depth) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
        if isinstance(node, ast.JoinedStr):
            return "".join(str(ev(v, scope, depth)) for v in node.values)
        if isinstance(node, ast.FormattedValue):
            value = ev(node.value, scope, depth)
            if node.conversion == ord("r"):
                value = repr(value)
            elif node.conversion == ord("s"):
                value = str(value)
            elif node.conversion == ord("a"):
                value = ascii(value)
            spec = ev(node.format_spec, scope, depth) if node.format_spec is not None else ""
            _check_spec(spec)
            return format(value, spec)
        if isinstance(node, ast.BinOp):
            left, right = ev(node.left, scope, depth), ev(node.right, scope, depth)
            if isinstance(node.op, ast.Add) and _same_kind(left, right):
                return left + right
            if isinstance(node.op, ast.Mod) and isinstance(left, str):
                _check_percent(left)
                return left % right
            raise self.error(scope, node, "only `+` of strings or lists and `%` formatting are supported")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            value = ev(node.operand, scope, depth)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return -value
            raise self.error(scope, node, "unsupported operand")
        if isinstance(node, ast.Call):
            return self._call(node, scope, depth)
        if isinstance(node, (ast.Name, ast.Attribute)):
            return self._name(node, scope, depth)
        if isinstance(node, ast.Subscript):
            base = self.project.resolve_expr(node.value, scope, node.lineno)
            if isinstance(base, External) and base.qualname in _ENV:
                raise self.error(scope, node, "it reads an environment variable")
            raise self.error(scope, node, "subscripts are not supported")
        raise self.error(scope, node, "it is not a constant expression")

    def _call(self, node: ast.Call, scope: Scope, depth: int) -> Any:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("format", "join"):
            try:
                target = self.eval(func.value, scope, depth)
            except DynamicValueError:
                target = None
            if isinstance(target, str):
                if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
                    raise self.error(scope, node, "`*args`/`**kwargs` are not supported")
                args = [self.eval(a, scope, depth) for a in node.args]
                kwargs = {k.arg: self.eval(k.value, scope, depth) for k in node.keywords}
                if func.attr == "join":
                    if len(args) != 1 or kwargs or not all(isinstance(x, str) for x in args[0]):
                        raise self.error(scope, node, "join() takes one list of strings")
                    return target.join(args[0])
                _check_format(target)
                return target.format(*args, **kwargs)
        sym = self.project.resolve_expr(func, scope, node.lineno)
        if isinstance(sym, External) and sym.qualname in _ENV:
            raise self.error(scope, node, "it reads an environment variable")
        raise self.error(scope, node, "it calls a function, which bundler never runs")

    def _name(self, node: ast.Name | ast.Attribute, scope: Scope, depth: int) -> Any:
        sym = self.project.resolve_expr(node, scope, node.lineno)
        if sym is None:
            if isinstance(node, ast.Name):
                raise self.error(scope, node, f"the name `{node.id}` is not defined")
            raise self.error(scope, node, "the attribute can't be found")
        if isinstance(sym, ValueSym):
            return self.eval(sym.node, sym.scope, depth)
        if isinstance(sym, External):
            if sym.qualname in _ENV:
                raise self.error(scope, node, "it reads an environment variable")
            if sym.qualname.startswith("builtins."):
                raise self.error(scope, node, f"`{sym.qualname[9:]}` is a Python builtin, not a constant")
            raise self.error(
                scope,
                node,
                f"it comes from `{sym.qualname}`, outside the project (bundler reads only the project's own modules)",
            )
        if isinstance(sym, Opaque):
            raise self.error(scope, node, f"it is {sym.reason} in {self.project.shown(sym.module)}")
        if isinstance(sym, ModuleSym):
            raise self.error(scope, node, "it is a module, not a value")
        if isinstance(sym, ClassSym):
            raise self.error(scope, node, "it is a class, not a value")
        if isinstance(sym, FunctionSym):
            raise self.error(scope, node, f"it is a function (line {sym.node.lineno}), not a value")
        raise IntrospectionError("unexpected symbol")  # pragma: no cover - exhaustive above


def _same_kind(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return True
    if isinstance(a, list) and isinstance(b, list) or isinstance(a, tuple) and isinstance(b, tuple):
        return True
    num = (int, float)
    return isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool)


def _check_spec(spec: Any) -> None:
    # A width like ``{x:>999999999}`` would allocate gigabytes; real ids need nothing close.
    if not isinstance(spec, str) or any(int(n) > 1000 for n in _SPEC_NUMBER.findall(spec)):
        raise ValueError("format spec too wide")


def _check_format(template: str) -> None:
    for _, field, spec, _conv in string.Formatter().parse(template):
        if field is None:
            continue
        if "." in field or "[" in field:
            raise ValueError("attribute or index access in a format field")
        _check_spec(spec or "")
        if spec and "{" in spec:
            raise ValueError("nested format fields")


def _check_percent(template: str) -> None:
    for m in _PERCENT.finditer(template):
        width, precision, _conv = m.groups()
        if "*" in (width, precision):
            raise ValueError("`*` widths are not supported")
        for n in (width, precision):
            if n and int(n) > 1000:
                raise ValueError("format width too large")
