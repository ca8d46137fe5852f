"""Evaluate expressions statically: a small abstract interpreter over pure, known values.

Literals, names, containers (with ``*``/``**``), ``+``/``%``, f-strings, pure ``str`` methods,
subscripts and slices, comparisons and boolean tests, a few pure builtins, and BentoML's build
arguments (``bentoml.use_arguments``). Anything else is a ``DynamicValueError`` naming the file,
the line and the expression as written: bundler never guesses a value.
"""

from __future__ import annotations

import ast
import json
import operator
import re
import string
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import BundlerError, DynamicValueError, IntrospectionError, UsageError
from ..model.plain import NotPlain, plain
from .project import ClassSym, External, FunctionSym, Module, ModuleSym, Opaque, Project, Scope, ValueSym, last_name

_HINT = "use a string literal or a constant defined in the project's own modules"
_ARG_HINT = "give it at build time: --arg NAME=VALUE (or `args:` in bentofile.yaml)"
_MAX_LEN = 100_000  # a descriptor argument is an id or a pattern, never megabytes
_MAX_ITEMS = 10_000
_MAX_DEPTH = 60
_ENV = {"os.environ", "os.getenv", "os.environ.get", "os.getenvb", "os.environb"}
_SPEC_NUMBER = re.compile(r"\d+")
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)

USE_ARGUMENTS = {"bentoml.use_arguments", "bentoml._internal.utils.args.use_arguments"}
FALSE_CONSTANTS = {"typing.TYPE_CHECKING", "typing_extensions.TYPE_CHECKING"}

# Pure methods of known values, with the number of positional arguments they accept. Adding a
# pattern is one line here and one fixture.
_STR_METHODS: dict[str, tuple[int, int]] = {
    "lower": (0, 0), "upper": (0, 0), "casefold": (0, 0), "title": (0, 0), "capitalize": (0, 0),
    "strip": (0, 1), "lstrip": (0, 1), "rstrip": (0, 1), "replace": (2, 3),
    "removeprefix": (1, 1), "removesuffix": (1, 1), "split": (0, 2), "rsplit": (0, 2),
    "partition": (1, 1), "rpartition": (1, 1), "startswith": (1, 3), "endswith": (1, 3),
    "join": (1, 1), "format": (0, 99), "zfill": (1, 1), "isdigit": (0, 0), "count": (1, 3),
    "find": (1, 3),
}
_DICT_METHODS = {"get": (1, 2), "keys": (0, 0), "values": (0, 0), "items": (0, 0)}
_PURE_BUILTINS: dict[str, Callable[..., Any]] = {
    "str": str, "int": int, "float": float, "bool": bool, "len": len, "list": list, "tuple": tuple,
    "dict": dict, "sorted": sorted, "min": min, "max": max, "abs": abs, "any": any, "all": all,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
# Spellings of "a field with a default" in argument classes: pydantic, dataclasses, attrs.
_FIELD_FUNCS = {"pydantic.Field", "pydantic.fields.Field", "dataclasses.field", "attr.ib", "attrs.field", "attr.field"}


@dataclass
class Arguments:
    """The value of ``bentoml.use_arguments(Cls)``: field defaults, overridden by build arguments."""

    cls: ClassSym | None
    fields: dict[str, tuple[ast.expr | None, Any, Scope]]  # name -> (annotation, default node|_REQUIRED, scope)
    line: int
    used: dict[str, Any] = field(default_factory=dict)


_REQUIRED = object()


class Evaluator:
    def __init__(self, project: Project, arguments: dict[str, Any] | None = None, strict: set[str] | None = None) -> None:
        self.project = project
        project.evaluator = self
        #: build arguments as given (``--arg KEY=VALUE``, bentofile ``args:``), strings or values
        self.given: dict[str, Any] = dict(arguments or {})
        #: the keys the user typed (``--arg``): an unknown one is an error, not a note
        self.strict: set[str] = set(self.given) if strict is None else strict
        #: every ``use_arguments`` namespace met, to check that each given key names a field
        self.namespaces: list[Arguments] = []
        self._args_cache: dict[int, Arguments] = {}

    def error(self, scope: Scope, node: ast.AST, reason: str, hint: str = _HINT) -> DynamicValueError:
        mod = scope.module
        return DynamicValueError(
            f"`{mod.segment(node)}` can't be known statically: {reason}",
            file=self.project.shown(mod),
            line=getattr(node, "lineno", None),
            hint=hint,
        )

    def eval(self, node: ast.expr, scope: Scope, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise self.error(scope, node, "nested too deeply (or defined in terms of itself)")
        try:
            value = self._eval(node, scope, depth + 1)
        except (TypeError, ValueError, KeyError, IndexError, OverflowError, ZeroDivisionError, AttributeError) as e:
            raise self.error(scope, node, f"evaluating it fails ({e})") from None
        if isinstance(value, (str, list, tuple, dict)) and len(value) > (_MAX_LEN if isinstance(value, str) else _MAX_ITEMS):
            raise self.error(scope, node, "the value is unreasonably long")
        return value

    def truth(self, node: ast.expr, scope: Scope) -> bool:
        """The truth of an ``if`` test, or DynamicValueError when it can't be known."""
        value = self.eval(node, scope)
        if isinstance(value, Arguments):
            return True
        return bool(value)

    def _eval(self, node: ast.expr, scope: Scope, depth: int) -> Any:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise self.error(scope, node, "it is not a constant expression")
        return method(node, scope, depth)

    # -- one method per node kind ---------------------------------------------------------------
    def _Constant(self, node: ast.Constant, scope: Scope, depth: int) -> Any:
        if isinstance(node.value, (str, int, float, bool, type(None))):
            return node.value
        raise self.error(scope, node, "only strings, numbers, booleans and None are supported")

    def _items(self, elts: list[ast.expr], scope: Scope, depth: int) -> list[Any]:
        out: list[Any] = []
        for e in elts:
            if isinstance(e, ast.Starred):
                inner = self.eval(e.value, scope, depth)
                if not isinstance(inner, (list, tuple, str)):
                    raise self.error(scope, e, "only lists, tuples and strings can be unpacked")
                out.extend(inner)
            else:
                out.append(self.eval(e, scope, depth))
        return out

    def _List(self, node: ast.List, scope: Scope, depth: int) -> Any:
        return self._items(node.elts, scope, depth)

    def _Tuple(self, node: ast.Tuple, scope: Scope, depth: int) -> Any:
        return tuple(self._items(node.elts, scope, depth))

    def _Dict(self, node: ast.Dict, scope: Scope, depth: int) -> Any:
        out: dict[Any, Any] = {}
        for k, v in zip(node.keys, node.values):
            if k is None:
                inner = self.eval(v, scope, depth)
                if not isinstance(inner, dict):
                    raise self.error(scope, v, "`**` needs a dict")
                out.update(inner)
            else:
                key = self.eval(k, scope, depth)
                if isinstance(key, (list, dict)):
                    raise self.error(scope, k, "a dict key must be a string or number")
                out[key] = self.eval(v, scope, depth)
        return out

    def _JoinedStr(self, node: ast.JoinedStr, scope: Scope, depth: int) -> Any:
        return "".join(str(self.eval(v, scope, depth)) for v in node.values)

    def _FormattedValue(self, node: ast.FormattedValue, scope: Scope, depth: int) -> Any:
        value = self.eval(node.value, scope, depth)
        if isinstance(value, Arguments):
            raise self.error(scope, node, "it formats the arguments object")
        if node.conversion == ord("r"):
            value = repr(value)
        elif node.conversion == ord("s"):
            value = str(value)
        elif node.conversion == ord("a"):
            value = ascii(value)
        spec = self.eval(node.format_spec, scope, depth) if node.format_spec is not None else ""
        _check_spec(spec)
        return format(value, spec)

    def _BinOp(self, node: ast.BinOp, scope: Scope, depth: int) -> Any:
        left, right = self.eval(node.left, scope, depth), self.eval(node.right, scope, depth)
        if isinstance(node.op, ast.Add) and _same_kind(left, right):
            return left + right
        if isinstance(node.op, ast.Mod) and isinstance(left, str):
            _check_percent(left)
            return left % right
        if isinstance(node.op, ast.BitOr) and isinstance(left, dict) and isinstance(right, dict):
            return left | right
        if _numbers(left, right) and isinstance(node.op, (ast.Sub, ast.Mult, ast.FloorDiv, ast.Div)):
            if isinstance(node.op, ast.Mult) and abs(right) > 10**6:
                raise ValueError("multiplier too large")
            return {ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv, ast.Div: operator.truediv}[type(node.op)](left, right)
        raise self.error(scope, node, "only `+` of strings or lists, `%` formatting, `|` of dicts and arithmetic of numbers are supported")

    def _UnaryOp(self, node: ast.UnaryOp, scope: Scope, depth: int) -> Any:
        value = self.eval(node.operand, scope, depth)
        if isinstance(node.op, ast.Not):
            return not value
        if isinstance(node.op, ast.USub) and isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
        raise self.error(scope, node, "unsupported operand")

    def _BoolOp(self, node: ast.BoolOp, scope: Scope, depth: int) -> Any:
        # Short-circuit as Python does: an unknown operand after the deciding one is never needed.
        value: Any = None
        for v in node.values:
            value = self.eval(v, scope, depth)
            if isinstance(node.op, ast.And) and not value or isinstance(node.op, ast.Or) and value:
                return value
        return value

    def _Compare(self, node: ast.Compare, scope: Scope, depth: int) -> Any:
        left = self.eval(node.left, scope, depth)
        for op, comp in zip(node.ops, node.comparators):
            right = self.eval(comp, scope, depth)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def _IfExp(self, node: ast.IfExp, scope: Scope, depth: int) -> Any:
        return self.eval(node.body if self.eval(node.test, scope, depth) else node.orelse, scope, depth)

    def _Subscript(self, node: ast.Subscript, scope: Scope, depth: int) -> Any:
        base = self.project.resolve_expr(node.value, scope, node.lineno)
        if isinstance(base, External) and base.qualname in _ENV:
            raise self.error(scope, node, "it reads an environment variable")
        value = self.eval(node.value, scope, depth)
        if isinstance(node.slice, ast.Slice):
            s = node.slice
            parts = [self.eval(p, scope, depth) if p is not None else None for p in (s.lower, s.upper, s.step)]
            if not isinstance(value, (str, list, tuple)) or not all(p is None or type(p) is int for p in parts):
                raise self.error(scope, node, "only strings, lists and tuples sliced by numbers are supported")
            return value[slice(*parts)]
        key = self.eval(node.slice, scope, depth)
        if isinstance(value, dict):
            return value[key]
        if isinstance(value, (str, list, tuple)) and type(key) is int:
            return value[key]
        raise self.error(scope, node, "only dicts, and strings, lists and tuples indexed by numbers, are supported")

    def _Lambda(self, node: ast.Lambda, scope: Scope, depth: int) -> Any:
        raise self.error(scope, node, "it is a function, not a value")

    def _Call(self, node: ast.Call, scope: Scope, depth: int) -> Any:
        func = node.func
        if isinstance(func, ast.Attribute):
            sym = self.project.resolve_quietly(func, scope, node.lineno)
            if sym is None or isinstance(sym, ValueSym):
                # a method of a value: ``MODEL_ID.lower()``, ``CONFIG.get("model")``
                target = self.eval(func.value, scope, depth)
                return self._method(node, target, func.attr, scope, depth)
        sym = self.project.resolve_expr(func, scope, node.lineno)
        if isinstance(sym, External):
            if sym.qualname in _ENV:
                raise self.error(scope, node, "it reads an environment variable", hint=_ENV_HINT)
            if sym.qualname in USE_ARGUMENTS:
                return self.arguments(node, scope)
            name = sym.qualname.removeprefix("builtins.")
            if sym.qualname.startswith("builtins.") and name in _PURE_BUILTINS:
                args, kwargs = self._call_args(node, scope, depth)
                if kwargs and name not in ("sorted", "dict", "min", "max"):
                    raise self.error(scope, node, f"{name}() with keywords is not supported")
                if any(isinstance(a, Arguments) for a in args):
                    raise self.error(scope, node, "it passes the arguments object")
                return _PURE_BUILTINS[name](*args, **kwargs)
        raise self.error(scope, node, "it calls a function, which bundler never runs")

    def _call_args(self, node: ast.Call, scope: Scope, depth: int) -> tuple[list[Any], dict[str, Any]]:
        args = self._items(node.args, scope, depth)
        kwargs: dict[str, Any] = {}
        for k in node.keywords:
            if k.arg is None:
                inner = self.eval(k.value, scope, depth)
                if not isinstance(inner, dict) or not all(isinstance(x, str) for x in inner):
                    raise self.error(scope, k.value, "`**` needs a dict with string keys")
                kwargs.update(inner)
            else:
                kwargs[k.arg] = self.eval(k.value, scope, depth)
        return args, kwargs

    def _method(self, node: ast.Call, target: Any, name: str, scope: Scope, depth: int) -> Any:
        table = _STR_METHODS if isinstance(target, str) else _DICT_METHODS if isinstance(target, dict) else None
        if table is None or name not in table:
            kind = type(target).__name__ if not isinstance(target, Arguments) else "arguments"
            raise self.error(scope, node, f"`.{name}()` of a {kind} is not one of the pure methods bundler evaluates")
        args, kwargs = self._call_args(node, scope, depth)
        low, high = table[name]
        if not low <= len(args) <= high or (kwargs and name not in ("format", "split", "rsplit")):
            raise self.error(scope, node, f"`.{name}()` takes {low}..{high} positional arguments here")
        if name == "format":
            _check_format(target)
        if name == "join" and not all(isinstance(x, str) for x in args[0]):
            raise self.error(scope, node, "join() takes a list of strings")
        if name == "replace" and len(target) * max(1, len(str(args[1]))) > _MAX_LEN * 10:
            raise ValueError("result too long")
        result = getattr(target, name)(*args, **kwargs)
        return list(result) if name in ("keys", "values", "items") else result

    def _Name(self, node: ast.Name, scope: Scope, depth: int) -> Any:
        return self._name(node, scope, depth)

    def _Attribute(self, node: ast.Attribute, scope: Scope, depth: int) -> Any:
        sym = self.project.resolve_quietly(node, scope, node.lineno)
        if sym is None:
            base = self.project.resolve_quietly(node.value, scope, node.lineno)
            if isinstance(base, ValueSym):
                value = self.eval(node.value, scope, depth)
                if isinstance(value, Arguments):
                    return self.argument(value, node.attr, node, scope)
                raise self.error(scope, node, f"`.{node.attr}` of a {type(value).__name__} is not a constant")
        return self._name(node, scope, depth)

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
                raise self.error(scope, node, "it reads an environment variable", hint=_ENV_HINT)
            if sym.qualname in FALSE_CONSTANTS:
                return False
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

    # -- build arguments ----------------------------------------------------------------------------
    def arguments(self, call: ast.Call, scope: Scope) -> Arguments:
        """``bentoml.use_arguments(Cls)``: the fields of ``Cls`` (and its project bases)."""
        key = id(call)
        if key in self._args_cache:
            return self._args_cache[key]
        target = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "model"), None)
        fields: dict[str, tuple[ast.expr | None, Any, Scope]] = {}
        cls = None
        if target is not None and not (isinstance(target, ast.Constant) and target.value is None):
            sym = self.project.resolve_expr(target, scope, call.lineno)
            if not isinstance(sym, ClassSym):
                raise self.error(scope, target, "use_arguments() needs a class the project defines")
            cls = sym
            for cscope in reversed(self.project.linearize(sym, call.lineno, scope.module)):
                fields.update(_fields(cscope, self.project))
        ns = Arguments(cls, fields, call.lineno)
        self._args_cache[key] = ns
        self.namespaces.append(ns)
        return ns

    def argument(self, ns: Arguments, name: str, node: ast.AST, scope: Scope) -> Any:
        if ns.cls is None:  # use_arguments() without a class: only what is given
            if name not in self.given:
                raise self.error(scope, node, f"the build argument `{name}` is not given", hint=_ARG_HINT)
            ns.used[name] = self.given[name]
            return self.given[name]
        if name not in ns.fields:
            if _is_method(ns.cls, name):
                raise self.error(scope, node, f"`{name}` is computed by code of `{ns.cls.node.name}`, which bundler never runs")
            raise self.error(scope, node, f"`{ns.cls.node.name}` has no field `{name}`")
        annotation, default, fscope = ns.fields[name]
        if name in self.given:
            value = convert_argument(self.given[name], annotation, name, fscope)
            ns.used[name] = value
            return value
        if default is _REQUIRED:
            raise self.error(scope, node, f"the build argument `{name}` has no default", hint=_ARG_HINT)
        if isinstance(default, _Factory):
            return default.make(self, fscope)
        return self.eval(default, fscope)

    def find_namespaces(self, module: Module) -> None:
        """Meet every ``use_arguments(Cls)`` call of ``module``, also those no descriptor reads:
        a field the service reads only in ``__init__`` is a build argument all the same."""
        if module.tree is None or module.scope is None or "use_arguments" not in module.source:
            return
        for node in ast.walk(module.tree):
            if not (isinstance(node, ast.Call) and last_name(node.func) == "use_arguments"):
                continue
            sym = self.project.resolve_quietly(node.func, module.scope, node.lineno)
            if isinstance(sym, External) and sym.qualname in USE_ARGUMENTS:
                try:
                    self.arguments(node, module.scope)
                except BundlerError:
                    continue  # a class defined inside a function: its fields stay unknown

    def effective(self, given_from: dict[str, str]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
        """What ``use_arguments`` will see, as ``(values, origins, notes)``.

        Every given argument (converted to its field's type, as BentoML's pydantic model does)
        with ``given_from[key]`` as its origin, and every field default known statically with the
        origin ``default``. A default only code can compute is left to the service (the bundle
        carries that code); a required field nobody gives is a note: the service cannot start."""
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        notes: list[str] = []
        for key, value in self.given.items():
            field_of = next((ns.fields[key] for ns in self.namespaces if ns.cls is not None and key in ns.fields), None)
            if field_of is not None:
                value = convert_argument(value, field_of[0], key, field_of[2])
            origins[key] = given_from.get(key, "--arg")
            values[key] = checked_argument(key, value, origins[key])
        for ns in self.namespaces:
            if ns.cls is None:
                continue
            for name, (_annotation, default, fscope) in ns.fields.items():
                if name in values:
                    continue
                if default is _REQUIRED:
                    notes.append(f"build argument `{name}` of `{ns.cls.node.name}` has no default and is not given: "
                                 f"the service fails to start without it (--arg {name}=VALUE)")
                    continue
                try:
                    value = default.make(self, fscope) if isinstance(default, _Factory) else self.eval(default, fscope)
                    values[name] = plain(value)
                except (BundlerError, NotPlain):
                    continue
                origins[name] = "default"
        order = sorted(values)
        return {k: values[k] for k in order}, {k: origins[k] for k in order}, notes

    def check_given(self) -> list[str]:
        """Every ``--arg`` must name a field of an argument class the service uses; returns the
        other given keys that name none (from a bentofile: BentoML's pydantic ignores them)."""
        if not self.given:
            return []
        known: set[str] = set()
        for ns in self.namespaces:
            if ns.cls is None:
                return []  # a free namespace takes any key
            known |= set(ns.fields)
        unknown = sorted((set(self.given) - known) & self.strict)
        if unknown:
            where = ", ".join(sorted({ns.cls.node.name for ns in self.namespaces if ns.cls})) or "no use_arguments() class"
            raise UsageError(
                f"unknown build argument `{unknown[0]}`" + (f" (fields of {where}: {', '.join(sorted(known))})" if known else f": the service declares {where}"),
                hint="check the name against the service's arguments class",
            )
        return sorted(set(self.given) - known)


_ENV_HINT = "bundler never reads the build machine's environment: use a constant, or a build argument (--arg NAME=VALUE)"


@dataclass(frozen=True)
class _Factory:
    node: ast.expr  # ``list``, ``dict`` or ``lambda: <expr>``

    def make(self, ev: Evaluator, scope: Scope) -> Any:
        if isinstance(self.node, ast.Lambda):
            return ev.eval(self.node.body, scope)
        sym = ev.project.resolve_expr(self.node, scope, getattr(self.node, "lineno", None))
        if isinstance(sym, External) and sym.qualname in ("builtins.list", "builtins.dict", "builtins.tuple", "builtins.set"):
            return {"builtins.list": [], "builtins.dict": {}, "builtins.tuple": (), "builtins.set": []}[sym.qualname]
        raise ev.error(scope, self.node, "the default factory is code bundler never runs")


def _is_method(cls: ClassSym, name: str) -> bool:
    return any(
        isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == name for s in cls.node.body
    )


def _fields(scope: Scope, project: Project) -> dict[str, tuple[ast.expr | None, Any, Scope]]:
    """Fields declared in one class body: annotated names and plain assignments."""
    assert scope.cls is not None
    out: dict[str, tuple[ast.expr | None, Any, Scope]] = {}
    for stmt in scope.cls.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            name, annotation, value = stmt.target.id, stmt.annotation, stmt.value
            if _is_classvar(annotation):
                continue
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name, annotation, value = stmt.targets[0].id, None, stmt.value
        else:
            continue
        if name.startswith("_") or name == "model_config":
            continue
        out[name] = (annotation, _default(value, scope, project), scope)
    return out


def _is_classvar(annotation: ast.expr) -> bool:
    base = annotation.value if isinstance(annotation, ast.Subscript) else annotation
    return isinstance(base, (ast.Name, ast.Attribute)) and (getattr(base, "id", None) or getattr(base, "attr", None)) == "ClassVar"


def _default(value: ast.expr | None, scope: Scope, project: Project) -> Any:
    if value is None:
        return _REQUIRED
    if isinstance(value, ast.Call):
        fn = _qualname(value.func, scope, project)
        if fn in _FIELD_FUNCS:
            kw = {k.arg: k.value for k in value.keywords if k.arg}
            if "default" in kw:
                return _REQUIRED if _is_ellipsis(kw["default"]) else kw["default"]
            if "default_factory" in kw:
                return _Factory(kw["default_factory"])
            if "factory" in kw:
                return _Factory(kw["factory"])
            if value.args and fn.startswith("pydantic"):
                return _REQUIRED if _is_ellipsis(value.args[0]) else value.args[0]
            return _REQUIRED
    return _REQUIRED if _is_ellipsis(value) else value


def _is_ellipsis(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


def _qualname(func: ast.expr, scope: Scope, project: Project) -> str | None:
    sym = project.resolve_quietly(func, scope, getattr(func, "lineno", None))
    return sym.qualname if isinstance(sym, External) else None


def checked_argument(name: str, value: Any, origin: str = "--arg") -> Any:
    """A given build argument as plain data, or exit 2 naming it: a build never records a value
    that its own reader (or BentoML's JSON) refuses."""
    try:
        return plain(value, f"build argument `{name}` (from {origin})")
    except NotPlain as e:
        raise UsageError(str(e),
                         hint="give a string, a finite number, a boolean, or a list or mapping of those") from None


def convert_argument(value: Any, annotation: ast.expr | None, name: str, scope: Scope) -> Any:
    """A build argument given as text, converted to the field's annotated type as BentoML would."""
    if not isinstance(value, str):
        return value  # from bentofile.yaml: already typed
    kind = _kind(annotation)
    try:
        if kind == "str" or kind is None:
            return value
        if kind == "bool":
            low = value.strip().lower()
            if low in ("1", "true", "yes", "y", "on"):
                return True
            if low in ("0", "false", "no", "n", "off"):
                return False
            raise ValueError("not a boolean")
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind in ("list", "dict"):
            try:
                parsed = json.loads(value)
            except RecursionError:
                raise ValueError("nested too deeply") from None
            except json.JSONDecodeError:
                if kind == "list":
                    return [x.strip() for x in value.split(",") if x.strip()]
                raise
            if kind == "list" and not isinstance(parsed, list) or kind == "dict" and not isinstance(parsed, dict):
                raise ValueError(f"not a {kind}")
            return parsed
    except ValueError as e:
        raise UsageError(
            f"build argument `{name}`: {value!r} is not a valid {kind} ({e})",
            hint=f"give --arg {name}=<{kind}>",
        ) from None
    return value


def _kind(annotation: ast.expr | None) -> str | None:
    """The base type of an annotation: ``str | None`` -> str, ``list[str]`` -> list."""
    if annotation is None:
        return None
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        kinds = [k for k in (_kind(annotation.left), _kind(annotation.right)) if k not in ("None", None)]
        return kinds[0] if len(kinds) == 1 else None
    if isinstance(annotation, ast.Subscript):
        base = last_name(annotation.value)
        if base == "Optional":
            return _kind(annotation.slice)
        if base in ("Annotated",) and isinstance(annotation.slice, ast.Tuple):
            return _kind(annotation.slice.elts[0])
        return {"list": "list", "List": "list", "Sequence": "list", "tuple": "list", "Tuple": "list",
                "dict": "dict", "Dict": "dict", "Mapping": "dict", "Literal": "str"}.get(base or "")
    if isinstance(annotation, ast.Constant) and annotation.value is None:
        return "None"
    name = last_name(annotation)
    return {"str": "str", "int": "int", "float": "float", "bool": "bool", "list": "list", "dict": "dict",
            "List": "list", "Dict": "dict", "None": "None"}.get(name or "")


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _same_kind(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return True
    if isinstance(a, list) and isinstance(b, list) or isinstance(a, tuple) and isinstance(b, tuple):
        return True
    return _numbers(a, b)


def _check_spec(spec: Any) -> None:
    # A width like ``{x:>999999999}`` would allocate gigabytes; real ids need nothing close.
    if not isinstance(spec, str) or any(int(n) > 1000 for n in _SPEC_NUMBER.findall(spec)):
        raise ValueError("format spec too wide")


def _check_format(template: str) -> None:
    for _, field_name, spec, _conv in string.Formatter().parse(template):
        if field_name is None:
            continue
        if "." in field_name or "[" in field_name:
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
