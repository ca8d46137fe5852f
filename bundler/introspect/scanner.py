"""Find services, their model descriptors and dependencies in a service file, without importing it."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..descriptors import normalise_patterns
from ..errors import DynamicValueError, IntrospectionError, UsageError
from .project import ClassSym, External, Opaque, Project, Scope, Symbol, ValueBinding
from .values import Evaluator

SERVICE = {"bundler.service", "bundler.services.service", "bentoml.service"}
DEPENDS = {"bundler.depends", "bundler.services.depends", "bentoml.depends"}
HUGGINGFACE = {
    "bundler.HuggingFaceModel",
    "bundler.models.HuggingFaceModel",
    "bundler.descriptors.HuggingFaceModel",
    "bentoml.models.HuggingFaceModel",
}
STORE = {
    "bundler.StoreModel",
    "bundler.models.StoreModel",
    "bundler.descriptors.StoreModel",
    "bentoml.models.BentoModel",
}
# A call whose last name is one of these but that can't be resolved is an error, not a skip.
_MARKER_NAMES = {"HuggingFaceModel", "StoreModel", "BentoModel", "depends"}

# Parameters in positional order; bentoml's HuggingFaceModel differs after `revision`, so only
# the first two may be positional there.
_HF_PARAMS = ("model_id", "revision", "include", "exclude")
_HF_IGNORED = {"endpoint"}
_STORE_PARAMS = ("tag",)


@dataclass(frozen=True)
class ModelRef:
    attribute: str
    kind: str  # "huggingface" | "store"
    id: str
    revision: str | None
    include: list[str] | None
    exclude: list[str] | None
    file: str
    line: int

    def to_json(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "kind": self.kind,
            "id": self.id,
            "revision": self.revision,
            "include": self.include,
            "exclude": self.exclude,
            "file": self.file,
            "line": self.line,
        }


@dataclass(frozen=True)
class Service:
    name: str
    cls: str
    file: str
    line: int
    resources: dict[str, Any] = field(default_factory=dict)
    depends: list[str] = field(default_factory=list)
    models: list[ModelRef] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class": self.cls,
            "file": self.file,
            "line": self.line,
            "resources": self.resources,
            "depends": self.depends,
            "models": [m.to_json() for m in self.models],
        }


@dataclass(frozen=True)
class ScanResult:
    root: Path  # the project directory that file paths are relative to
    services: list[Service]
    file: Path  # the scanned service file
    module: str  # its dotted module name, as Python would import it from ``root``

    def to_json(self) -> dict[str, Any]:
        return {"services": [s.to_json() for s in self.services]}

    def where(self, ref: ModelRef) -> str:
        """The reference's file as a user would type it (relative to the working directory)."""
        import os

        return os.path.relpath(self.root / ref.file)

    @property
    def models(self) -> list[ModelRef]:
        """Every model reference, once per (file, line), in service order."""
        seen: dict[tuple[str, int], ModelRef] = {}
        for s in self.services:
            for m in s.models:
                seen.setdefault((m.file, m.line), m)
        return list(seen.values())


def split_target(target: str) -> tuple[Path, str | None]:
    """``service.py:ClassName`` -> (path, class name); a plain path -> (path, None)."""
    head, sep, tail = target.rpartition(":")
    if sep and tail.isidentifier() and head and not Path(target).exists():
        return Path(head), tail
    return Path(target), None


def scan_files(paths: list[str | Path]) -> list[ScanResult]:
    """Scan many service files, parsing each module they share only once."""
    parsed: dict = {}
    return [scan(p, _parsed=parsed) for p in paths]


def scan(path: str | Path, service: str | None = None, *, _parsed: dict | None = None) -> ScanResult:
    """Scan one service file. ``service`` picks one service class by class or service name."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file", hint="pass the path of the service's .py file")
    if path.is_dir():
        raise UsageError(f"{path}: is a directory", hint="pass the service's .py file (optionally file.py:ClassName)")
    try:
        return _Scanner(path, _parsed).run(service)
    except RecursionError:
        raise IntrospectionError(f"{path}: the source is nested too deeply to analyse") from None


class _Scanner:
    def __init__(self, path: Path, parsed: dict | None) -> None:
        self.project = Project(path, parsed)
        self.module = self.project.load_service(path)
        self.values = Evaluator(self.project)

    def run(self, only: str | None) -> ScanResult:
        assert self.module.tree is not None and self.module.scope is not None
        services = []
        for node in self.module.tree.body:
            if isinstance(node, ast.ClassDef):
                svc = self._service(node, self.module.scope)
                if svc is not None:
                    services.append(svc)
        if only is not None:
            picked = [s for s in services if only in (s.cls, s.name)]
            if not picked:
                names = ", ".join(s.cls for s in services) or "none"
                raise UsageError(
                    f"{self.project.shown(self.module)}: no service named `{only}` (services found: {names})",
                    hint="use file.py:ClassName with a class decorated with @service",
                )
            services = picked
        assert self.module.path is not None
        return ScanResult(self.project.root, services, self.module.path, self.module.name)

    # -- helpers ---------------------------------------------------------------------------
    def _marker(self, func: ast.expr, scope: Scope, line: int) -> str | None:
        """The qualified name of bundler's/BentoML's object ``func`` refers to, else None."""
        last = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        try:
            sym = self.project.resolve_expr(func, scope, line)
        except IntrospectionError:
            if last in _MARKER_NAMES or last == "service":
                raise
            return None
        if isinstance(sym, Opaque) and last in _MARKER_NAMES:
            mod = scope.module
            raise DynamicValueError(
                f"`{mod.segment(func)}` can't be known statically: it is {sym.reason} in {self.project.shown(sym.module)}",
                file=self.project.shown(mod),
                line=line,
                hint="import it unconditionally from bundler or bentoml",
            )
        return sym.qualname if isinstance(sym, External) else None

    def _err(self, scope: Scope, node: ast.AST, message: str, hint: str | None = None) -> IntrospectionError:
        return IntrospectionError(message, file=self.project.shown(scope.module), line=getattr(node, "lineno", None), hint=hint)

    # -- services --------------------------------------------------------------------------
    def _service(self, node: ast.ClassDef, scope: Scope) -> Service | None:
        for dec in node.decorator_list:
            call = dec if isinstance(dec, ast.Call) else None
            if self._marker(call.func if call else dec, scope, node.lineno) not in SERVICE:
                continue
            options = self._keywords(call, scope, {"name", "resources"}) if call else {}
            name = options.get("name", node.name)
            resources = options.get("resources") or {}
            if not isinstance(name, str) or not name:
                raise self._err(scope, dec, "the service name must be a non-empty string")
            if not isinstance(resources, dict):
                raise self._err(scope, dec, "`resources` must be a dict")
            depends, models = self._members(ClassSym(scope, node))
            return Service(
                name=name,
                cls=node.name,
                file=self.project.relative(scope.module.path),
                line=node.lineno,
                resources=resources,
                depends=depends,
                models=models,
            )
        return None

    def _keywords(self, call: ast.Call, scope: Scope, wanted: set[str]) -> dict[str, Any]:
        out = {}
        for kw in call.keywords:
            if kw.arg is None:
                raise self.values.error(scope, kw.value, "`**` arguments are not supported")
            if kw.arg in wanted:
                out[kw.arg] = self.values.eval(kw.value, scope)
        return out

    def _members(self, cls: ClassSym) -> tuple[list[str], list[ModelRef]]:
        """Descriptors and dependencies of ``cls``, inherited ones included (MRO order)."""
        mro = self.project.linearize(cls, cls.node.lineno, cls.scope.module)
        found: dict[str, tuple[str, Any]] = {}
        for scope in reversed(mro):
            for attr, entry in self._own_members(scope).items():
                if entry is None:
                    found.pop(attr, None)
                else:
                    found[attr] = entry
        depends = [v for kind, v in found.values() if kind == "depends"]
        models = [v for kind, v in found.values() if kind == "model"]
        return depends, models

    def _own_members(self, scope: Scope) -> dict[str, tuple[str, Any] | None]:
        """attribute -> ("model", ModelRef) | ("depends", name) | None (plain attribute)."""
        out: dict[str, tuple[str, Any] | None] = {}
        for attr, bindings in scope.names.items():
            line, binding = bindings[-1]
            value = binding.node if isinstance(binding, ValueBinding) else None
            entry = None
            if isinstance(value, ast.Call):
                marker = self._marker(value.func, scope, line)
                try:
                    if marker in HUGGINGFACE or marker in STORE:
                        entry = ("model", self._model(attr, marker, value, scope))
                    elif marker in DEPENDS:
                        entry = ("depends", self._depends(value, scope))
                except IntrospectionError as e:
                    here = self.project.shown(scope.module)
                    if (e.file, e.line) != (here, value.lineno):
                        e.message += f" (needed by `{attr}` at {here}:{value.lineno})"
                    raise
            out[attr] = entry
        return dict(sorted(out.items(), key=lambda kv: scope.names[kv[0]][-1][0]))

    def _args(self, call: ast.Call, scope: Scope, params: tuple[str, ...], positional: int, ignored: set[str], what: str) -> dict[str, Any]:
        if any(isinstance(a, ast.Starred) for a in call.args):
            raise self.values.error(scope, call, "`*args` are not supported")
        if len(call.args) > positional:
            raise self._err(
                scope, call, f"{what}() takes at most {positional} positional arguments here", hint="pass the others by keyword"
            )
        bound: dict[str, ast.expr] = dict(zip(params, call.args))
        for kw in call.keywords:
            if kw.arg is None:
                raise self.values.error(scope, kw.value, "`**` arguments are not supported")
            if kw.arg in ignored:
                continue
            if kw.arg not in params:
                raise self._err(scope, kw.value, f"{what}() got an unexpected argument `{kw.arg}`")
            if kw.arg in bound:
                raise self._err(scope, kw.value, f"{what}() got `{kw.arg}` twice")
            bound[kw.arg] = kw.value
        return {k: self.values.eval(v, scope) for k, v in bound.items()}

    def _model(self, attr: str, marker: str, call: ast.Call, scope: Scope) -> ModelRef:
        file = self.project.relative(scope.module.path)
        if marker in HUGGINGFACE:
            positional = 4 if marker.startswith("bundler.") else 2
            a = self._args(call, scope, _HF_PARAMS, positional, _HF_IGNORED, "HuggingFaceModel")
            model_id = a.get("model_id")
            if not isinstance(model_id, str) or not model_id.strip():
                raise self._err(scope, call, "HuggingFaceModel needs a repository id string like 'org/name'")
            revision = a.get("revision")
            if revision is not None and (not isinstance(revision, str) or not revision):
                raise self._err(scope, call, f"revision must be a non-empty string, not {revision!r}")
            return ModelRef(
                attribute=attr,
                kind="huggingface",
                id=model_id,
                revision=revision,
                include=self._patterns(a.get("include"), "include", scope, call),
                exclude=self._patterns(a.get("exclude"), "exclude", scope, call),
                file=file,
                line=call.lineno,
            )
        a = self._args(call, scope, _STORE_PARAMS, 1, set(), marker.rsplit(".", 1)[-1])
        tag = a.get("tag")
        if not isinstance(tag, str) or not tag.strip():
            raise self._err(scope, call, "a store model needs a tag string like 'name:version'")
        return ModelRef(attr, "store", tag, None, None, None, file, call.lineno)

    def _patterns(self, value: Any, what: str, scope: Scope, call: ast.Call) -> list[str] | None:
        try:
            return normalise_patterns(value, f"`{what}`")
        except ValueError as e:
            raise self._err(scope, call, str(e)) from None

    def _depends(self, call: ast.Call, scope: Scope) -> str:
        target: ast.expr | None = call.args[0] if call.args else None
        for kw in call.keywords:
            if kw.arg == "on":
                target = kw.value
            elif kw.arg == "url" and target is None:
                url = self.values.eval(kw.value, scope)
                if isinstance(url, str):
                    return url
        if target is None:
            raise self._err(scope, call, "depends() needs a service class")
        sym: Symbol | None = self.project.resolve_expr(target, scope, call.lineno)
        if isinstance(sym, ClassSym):
            return sym.node.name
        if isinstance(sym, External) and not sym.qualname.startswith("builtins."):
            return sym.qualname
        raise self.values.error(scope, target, "depends() needs a class the project defines or imports")

