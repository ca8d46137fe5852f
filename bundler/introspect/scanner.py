"""Find services, their model descriptors and dependencies in a service file, without importing it."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import kinds
from ..errors import DynamicValueError, IntrospectionError, UsageError
from .project import ClassSym, External, FunctionSym, Opaque, Project, Scope, Symbol, ValueBinding, ValueSym, last_name
from .values import Evaluator

SERVICE = {"bundler.service", "bundler.services.service", "bentoml.service"}
DEPENDS = {"bundler.depends", "bundler.services.depends", "bentoml.depends"}
# A call whose last name is one of these but that can't be resolved is an error, not a skip.
_MODEL_NAMES = {m.rsplit(".", 1)[-1] for k in kinds.all_kinds() for m in k.markers if m.rsplit(".", 1)[-1][:1].isupper()}
_MARKER_NAMES = _MODEL_NAMES | {"depends"}

# Loads that fetch a model at serve time without declaring it (warned as ``undeclared``).
# Each: (the position of the id among the positional arguments, or None; its keyword names).
_LOADERS: dict[str, tuple[int | None, tuple[str, ...]]] = {
    "huggingface_hub.hf_hub_download": (0, ("repo_id",)),
    "huggingface_hub.snapshot_download": (0, ("repo_id",)),
    "huggingface_hub.file_download.hf_hub_download": (0, ("repo_id",)),
    "huggingface_hub._snapshot_download.snapshot_download": (0, ("repo_id",)),
    "transformers.pipeline": (1, ("model",)),
    "transformers.pipelines.pipeline": (1, ("model",)),
    "sentence_transformers.SentenceTransformer": (0, ("model_name_or_path",)),
}
# The older per-framework loads, ``bentoml.transformers.load_model("tag")`` and the like.
_FRAMEWORK_LOAD = re.compile(r"^bentoml\.[a-z_][a-z0-9_]*\.load_model\Z")
_FRAMEWORK_LOAD_KW = ("tag", "bento_model")
_FROM_PRETRAINED_KW = ("pretrained_model_name_or_path", "pretrained_model_or_path", "model_id", "repo_id")



@dataclass(frozen=True)
class ModelRef:
    attribute: str
    kind: str  # the kind's name (``bundler.kinds``)
    id: str
    revision: str | None
    include: list[str] | None
    exclude: list[str] | None
    file: str
    line: int
    endpoint: str | None = None  # a Hub mirror or private endpoint the service names

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attribute": self.attribute,
            "kind": self.kind,
            "id": self.id,
            "revision": self.revision,
            "include": self.include,
            "exclude": self.exclude,
            "file": self.file,
            "line": self.line,
        }
        if self.endpoint:
            out["endpoint"] = self.endpoint
        return out


@dataclass(frozen=True)
class Service:
    name: str
    cls: str
    file: str
    line: int
    resources: dict[str, Any] = field(default_factory=dict)
    depends: list[str] = field(default_factory=list)
    models: list[ModelRef] = field(default_factory=list)
    undeclared: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class": self.cls,
            "file": self.file,
            "line": self.line,
            "resources": self.resources,
            "depends": self.depends,
            "models": [m.to_json() for m in self.models],
            "undeclared": self.undeclared,
        }


@dataclass(frozen=True)
class ScanResult:
    root: Path  # the project directory that file paths are relative to
    services: list[Service]
    file: Path  # the scanned service file
    module: str  # its dotted module name, as Python would import it from ``root``
    notes: list[str] = field(default_factory=list)  # what was not known and did not matter
    #: what ``use_arguments`` sees: every given build argument and every default known statically
    arguments: dict[str, Any] = field(default_factory=dict)
    #: ids of the descriptor calls reported (the AST is shared across scans of one project)
    accounted: frozenset[int] = field(default_factory=frozenset, repr=False, compare=False)
    #: where each argument came from: ``--arg``, the bentofile's ``args``, or ``default``
    argument_origins: dict[str, str] = field(default_factory=dict)
    #: ``python_version`` of a service's ``image=bentoml.images.Image(...)``, when known
    image_python: str | None = None

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
    """``service.py:ClassName`` or BentoML's ``service:ClassName`` (a module) -> (path, class);
    a plain path -> (path, None)."""
    head, sep, tail = target.rpartition(":")
    if sep and tail.isidentifier() and head and not Path(target).exists():
        path = Path(head)
        if not path.suffix and not path.exists():
            # BentoML's spelling names a module: ``service`` or ``pkg.service``
            as_file = Path(*head.split(".")).with_suffix(".py") if all(p.isidentifier() for p in head.split(".")) else path
            if as_file.is_file():
                return as_file, tail
        return path, tail
    return Path(target), None


def scan_files(paths: list[str | Path], arguments: dict[str, Any] | None = None) -> list[ScanResult]:
    """Scan many service files, parsing each module they share only once."""
    import gc

    parsed: dict = {}
    was_enabled = gc.isenabled()
    gc.disable()  # see scan()
    try:
        return [scan(p, arguments=arguments, _parsed=parsed) for p in paths]
    finally:
        if was_enabled:
            gc.enable()


def scan(
    path: str | Path,
    service: str | None = None,
    *,
    arguments: dict[str, Any] | None = None,
    project_arguments: bool = True,
    accounted_elsewhere: frozenset[int] = frozenset(),
    _parsed: dict | None = None,
) -> ScanResult:
    """Scan one service file. ``service`` picks one service class by class or service name.

    Build arguments for ``bentoml.use_arguments`` come, as BentoML takes them, from the
    bentofile's ``args`` (``bentofile.yaml`` or ``[tool.bentoml.build.args]``) overridden by
    ``arguments`` (``--arg KEY=VALUE``).
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file", hint="pass the path of the service's .py file")
    if path.is_dir():
        raise UsageError(f"{path}: is a directory", hint="pass the service's .py file (optionally file.py:ClassName)")
    import gc

    from ..project import bentofile

    given = dict(arguments or {})
    given_from = {k: "--arg" for k in given}
    settings = bentofile.find(path)
    if project_arguments:
        given = {**settings.args, **given}
        given_from = {**{k: settings.args_origin for k in settings.args}, **given_from}
    context = settings.path.parent if settings.path is not None and settings.service and "." in settings.service.partition(":")[0].removesuffix(".py") else None
    # Syntax trees are large graphs of small objects without cycles: the cyclic collector only
    # walks them again and again (up to half the time of a big scan), and frees nothing.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        scanner = _Scanner(path, _parsed, given, set(arguments or {}), given_from, context)
        scanner.accounted |= accounted_elsewhere
        return scanner.run(service)
    except RecursionError:
        raise IntrospectionError(f"{path}: the source is nested too deeply to analyse") from None
    finally:
        if was_enabled:
            gc.enable()


class _Scanner:
    def __init__(self, path: Path, parsed: dict | None, arguments: dict[str, Any], strict: set[str],
                 given_from: dict[str, str], context: Path | None = None) -> None:
        self.given_from = given_from
        self.project = Project(path, parsed, context)
        self.values = Evaluator(self.project, arguments, strict)
        self.module = self.project.load_service(path)
        self.notes: list[str] = []
        self.accounted: set[int] = set()  # ids of descriptor calls reported as a model
        self.image_python: str | None = None

    def run(self, only: str | None) -> ScanResult:
        assert self.module.tree is not None and self.module.scope is not None
        services = []
        for node in self.module.tree.body:
            if isinstance(node, ast.ClassDef):
                svc = self._service(node, self.module.scope)
                if svc is not None:
                    services.append(svc)
        self._never_silent(services)
        for module in list(self.project.modules()):
            self.values.find_namespaces(module)
        for key in self.values.check_given():
            self.notes.append(f"{self.project.shown(self.module)}: build argument `{key}` names no field of the service's arguments and is ignored")
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
        arguments, origins, notes = self.values.effective(self.given_from)
        self.notes.extend(notes)
        return ScanResult(
            self.project.root, services, self.module.path, self.module.name, self.notes, arguments,
            frozenset(self.accounted), origins, self.image_python,
        )

    # -- helpers ---------------------------------------------------------------------------
    def _marker(self, func: ast.expr, scope: Scope, line: int) -> str | None:
        """The qualified name of bundler's/BentoML's object ``func`` refers to, else None."""
        last = last_name(func)
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

    def _model_kind(self, qualname: str | None) -> kinds.ModelKind | None:
        return kinds.for_call(qualname)

    def _err(self, scope: Scope, node: ast.AST, message: str, hint: str | None = None) -> IntrospectionError:
        return IntrospectionError(message, file=self.project.shown(scope.module), line=getattr(node, "lineno", None), hint=hint)

    def _note(self, scope: Scope, node: ast.AST, text: str) -> None:
        self.notes.append(f"{self.project.shown(scope.module)}:{getattr(node, 'lineno', '?')}: {text}")

    # -- services --------------------------------------------------------------------------
    def _service(self, node: ast.ClassDef, scope: Scope) -> Service | None:
        for dec in node.decorator_list:
            call = dec if isinstance(dec, ast.Call) else None
            func = call.func if call else dec
            try:
                marker = self._marker(func, scope, node.lineno)
            except IntrospectionError as e:
                if last_name(func) == "service" and self._declares_models(node, scope):
                    raise self._err(
                        scope, dec, f"the decorator `{scope.module.segment(func)}` of `{node.name}` can't be resolved ({e.message}), and the class declares models",
                        hint="bind the decorator unconditionally (e.g. `service = bentoml.service`), or decide the `if` with a constant or --arg",
                    ) from None
                continue
            if marker not in SERVICE:
                if marker is None and last_name(func) == "service" and self._declares_models(node, scope):
                    sym = self.project.resolve_quietly(func, scope, node.lineno)
                    if sym is None or isinstance(sym, Opaque):
                        why = sym.reason if isinstance(sym, Opaque) else "it is not defined"
                        raise self._err(
                            scope, dec, f"the decorator `{scope.module.segment(func)}` of `{node.name}` can't be resolved ({why}), and the class declares models",
                            hint="bind the decorator unconditionally (e.g. `service = bentoml.service`), or decide the `if` with a constant or --arg",
                        )
                continue
            options = self._options(call, scope, node) if call else {}
            name = options.get("name", node.name)
            resources = options.get("resources") or {}
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

    def _soft(self, node: ast.expr, scope: Scope, what: str) -> Any:
        """A decorator value that is not about models: unknown is a note, never an error."""
        try:
            return self.values.eval(node, scope)
        except IntrospectionError as e:
            self._note(scope, node, f"{what} is not known statically and is recorded as unknown ({e.message})")
            return _UNKNOWN

    def _options(self, call: ast.Call, scope: Scope, cls: ast.ClassDef) -> dict[str, Any]:
        """``name`` and ``resources`` of ``@service(...)``; the rest (image, envs, traffic, ...)
        never blocks a scan."""
        raw: dict[str, Any] = {}
        for kw in call.keywords:
            if kw.arg is None:
                spread = self._soft(kw.value, scope, f"`**{scope.module.segment(kw.value)}`")
                if isinstance(spread, dict):
                    raw.update({k: (v, kw.value) for k, v in spread.items() if k in ("name", "resources")})
                continue
            if kw.arg == "image":
                self._image_python(kw.value, scope)
            if kw.arg == "name":
                raw["name"] = (self._soft(kw.value, scope, "the service name"), kw.value)
            elif kw.arg == "resources":
                raw["resources"] = (self._resources(kw.value, scope), kw.value)
        out: dict[str, Any] = {}
        if "name" in raw:
            name, node = raw["name"]
            if name is _UNKNOWN:
                self._note(scope, node, f"the service name falls back to the class name `{cls.name}`")
            elif not isinstance(name, str) or not name:
                raise self._err(scope, node, "the service name must be a non-empty string")
            else:
                out["name"] = name
        if "resources" in raw:
            resources, node = raw["resources"]
            if isinstance(resources, dict):
                out["resources"] = resources
            elif resources is not _UNKNOWN and resources is not None:
                raise self._err(scope, node, "`resources` must be a dict")
        return out

    def _image_python(self, node: ast.expr, scope: Scope) -> None:
        """``image=bentoml.images.Image(python_version="3.11")...``: the Python the image runs,
        which the environment lock targets unless the project names another."""
        if isinstance(node, ast.Name):  # `image = bentoml.images.Image(...)` above the class
            found = self.project.binding(scope, node.id, getattr(node, "lineno", None))
            if found is not None and isinstance(found[1], ValueBinding):
                node = found[1].node
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and last_name(sub.func) == "Image":
                for kw in sub.keywords:
                    if kw.arg == "python_version":
                        value = self._soft(kw.value, scope, "the image's python_version")
                        if isinstance(value, str) and self.image_python is None:
                            self.image_python = value

    def _resources(self, node: ast.expr, scope: Scope) -> Any:
        if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
            out = {}
            for k, v in zip(node.keys, node.values):
                key = self._soft(k, scope, "a resources key")  # type: ignore[arg-type]
                if key is _UNKNOWN:
                    continue
                value = self._soft(v, scope, f"resources[{key!r}]")
                out[key] = None if value is _UNKNOWN else value
            return out
        value = self._soft(node, scope, "`resources`")
        if isinstance(value, dict):
            return value
        return _UNKNOWN

    def _declares_models(self, node: ast.ClassDef, scope: Scope) -> bool:
        for stmt in node.body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                for call in ast.walk(stmt.value):
                    if isinstance(call, ast.Call) and self._looks_like_model(call, scope):
                        return True
        return False

    def _looks_like_model(self, call: ast.Call, scope: Scope) -> bool:
        if last_name(call.func) in _MODEL_NAMES:
            return True
        q = self.project.resolve_quietly(call.func, scope, call.lineno)
        return isinstance(q, External) and self._model_kind(q.qualname) is not None

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

    def _descriptor_call(self, value: ast.expr | None, scope: Scope, line: int) -> tuple[ast.Call, Scope] | None:
        """The call that a class attribute's value is, directly or through module-level names."""
        for _ in range(20):
            if isinstance(value, ast.Call):
                return value, scope
            if isinstance(value, (ast.Name, ast.Attribute)):
                sym = self.project.resolve_quietly(value, scope, line)
                if isinstance(sym, ValueSym):
                    value, scope, line = sym.node, sym.scope, sym.node.lineno
                    continue
            return None
        return None

    def _own_members(self, scope: Scope) -> dict[str, tuple[str, Any] | None]:
        """attribute -> ("model", ModelRef) | ("depends", name) | None (plain attribute)."""
        out: dict[str, tuple[str, Any] | None] = {}
        lines: dict[str, int] = {}
        for attr in scope.names:
            found = self.project.binding(scope, attr, None)
            if found is None:
                continue
            line, binding = found
            lines[attr] = line
            value = binding.node if isinstance(binding, ValueBinding) else None
            entry: tuple[str, Any] | None = None
            target = self._descriptor_call(value, scope, line)
            if target is not None:
                call, cscope = target
                try:
                    marker = self._marker(call.func, cscope, call.lineno)
                    kind = self._model_kind(marker)
                    if kind is not None and marker is not None:
                        entry = ("model", self._model(attr, marker, kind, call, cscope))
                        self.accounted.add(id(call))
                    elif marker in DEPENDS:
                        entry = ("depends", self._depends(call, cscope))
                except IntrospectionError as e:
                    here = self.project.shown(scope.module)
                    if (e.file, e.line) != (here, line):
                        e.message += f" (needed by `{attr}` at {here}:{line})"
                    raise
            out[attr] = entry
        return dict(sorted(out.items(), key=lambda kv: lines[kv[0]]))

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

    def _model(self, attr: str, marker: str, kind: kinds.ModelKind, call: ast.Call, scope: Scope) -> ModelRef:
        spec = kind.call_spec(marker)
        a = self._args(call, scope, spec.params, spec.positional, set(spec.ignored), spec.what)
        try:
            fields = kind.ref_fields(a)
        except kinds.BadDescriptor as e:
            raise self._err(scope, call, str(e), hint=e.hint) from None
        return ModelRef(attribute=attr, kind=kind.name, id=fields["id"], revision=fields.get("revision"),
                        include=fields.get("include"), exclude=fields.get("exclude"),
                        file=self.project.relative(scope.module.path), line=call.lineno, endpoint=fields.get("endpoint"))

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

    # -- never silent ----------------------------------------------------------------------
    def _never_silent(self, services: list[Service]) -> None:
        """Every descriptor, model look-up or model load the file makes is a reported model, an
        ``undeclared`` load of the services that reach it (at serve time: in a method, or in a
        module-level helper one calls), a note, or an error; the same rule for every loader."""
        assert self.module.tree is not None and self.module.scope is not None
        service_classes = {s.cls for s in services}
        declared = {s.cls: {m.id.lower().removesuffix(":latest") for m in s.models} for s in services}
        for call, owner, func in _calls_with_context(self.module.tree):
            if id(call) in self.accounted:
                continue
            scope = self.module.scope
            if owner is not None and func is None:
                scope = self.module.class_scope(owner)
            last = last_name(call.func)
            if last is None:
                continue
            if func is not None:
                self._serve_time(services, declared, call, owner, func)
                continue
            sym = self.project.resolve_quietly(call.func, scope, call.lineno)
            if isinstance(sym, External):
                if self._model_kind(sym.qualname) is None:
                    continue
            elif last not in _MODEL_NAMES or isinstance(sym, (ClassSym, FunctionSym, ValueSym)):
                continue  # not a model spelling, or the project's own look-alike
            what = f"`{self.module.segment(call)}`"
            if owner is not None and owner.name not in service_classes:
                where = f"is declared in class `{owner.name}`, which is not a service bundler recognises"
                hint = "decorate the class with @bentoml.service / @bundler.service, bound unconditionally"
            elif owner is not None:
                where = "is not a class attribute of its own (inside a container or expression)"
                hint = "give each model its own class attribute: `name = HuggingFaceModel(...)`"
            elif sym is None or isinstance(sym, Opaque):
                why = sym.reason if isinstance(sym, Opaque) else "it is not defined"
                where = f"can't be resolved ({why})"
                hint = "import it unconditionally from bundler or bentoml"
            else:
                self._note(scope, call, f"{what} declares a model at module level that no service uses: it is not pinned")
                continue
            raise IntrospectionError(
                f"{what} declares a model, but {where}", file=self.project.shown(self.module), line=call.lineno, hint=hint
            )
        for s in services:
            s.undeclared.sort(key=lambda u: (u["line"], u["call"]))

    def _serve_time(self, services: list[Service], declared: dict[str, set[str]], call: ast.Call,
                    owner: ast.ClassDef | None, func: ast.AST) -> None:
        """A call inside a function: when it loads a model, report it for every service that
        reaches it (its own methods, or a module-level helper they call)."""
        found = self._load(call, func)
        if found is None:
            return
        value, expr, loader = found
        entry: dict[str, Any] = {"id": value, "file": self.project.relative(self.module.path), "line": call.lineno, "call": loader}
        if value is None:
            entry["expression"] = expr
        reached = [s for s in services if s.cls == owner.name] if owner is not None else self._callers(services, func)
        if not reached:
            where = f"in class `{owner.name}`, which is not a service" if owner is not None else f"in `{getattr(func, 'name', 'lambda')}()`, which no service calls"
            self.notes.append(f"{self.project.shown(self.module)}:{call.lineno}: `{self.module.segment(call)}` loads a model {where}: it is not pinned")
            return
        for s in reached:
            if value is not None and value.lower().removesuffix(":latest") in declared.get(s.cls, set()):
                continue  # a serve-time look-up of a model the service declares: pinned already
            if entry not in s.undeclared:
                s.undeclared.append(dict(entry))

    def _callers(self, services: list[Service], func: ast.AST) -> list[Service]:
        """The services whose methods call the module-level function ``func`` by name."""
        name = getattr(func, "name", None)
        if name is None or self.module.tree is None or func not in self.module.tree.body:
            return []
        out: list[Service] = []
        for node in self.module.tree.body:
            if isinstance(node, ast.ClassDef) and any(s.cls == node.name for s in services):
                if any(isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id == name for c in ast.walk(node)):
                    out.extend(s for s in services if s.cls == node.name)
        return out

    # -- loads at serve time -----------------------------------------------------------------
    def _load(self, call: ast.Call, func: ast.AST) -> tuple[str | None, str, str] | None:
        """(the id, or None when only the serve time knows it; the id's expression; the loader's
        name) when ``call`` loads a model, else None."""
        arg, loader, spelled = self._loaded_arg(call, func)
        if loader is None:
            return None
        if arg is None:
            return (None, "no id given", loader) if spelled else None
        module_scope = self.module.scope
        assert module_scope is not None
        try:
            value = self.values.eval(arg, module_scope)
        except IntrospectionError:
            value = None
        expr = self.module.segment(arg)
        if isinstance(value, str):
            if spelled or _looks_like_repo(value):
                return value, expr, loader
            return None  # a local path
        if spelled or _is_parameter(arg, func):
            return None, expr, loader  # a request's or caller's value: reported as unknown
        return None  # not a literal: a path or a declared model's attribute

    def _loaded_arg(self, call: ast.Call, func: ast.AST) -> tuple[ast.expr | None, str | None, bool]:
        """(the argument naming the model, the loader's name or None, whether any value it is
        given names a model: bundler's and BentoML's spellings, unlike a loader that also takes paths)."""
        kw = {k.arg: k.value for k in call.keywords if k.arg}
        last = last_name(call.func)
        if last == "from_pretrained":
            return (call.args[0] if call.args else next((kw[k] for k in _FROM_PRETRAINED_KW if k in kw), None)), last, False
        qualname = self._qualname(call.func, func)
        if qualname is None:
            return None, None, False
        if self._model_kind(qualname) is not None or _FRAMEWORK_LOAD.match(qualname):
            # bundler's and BentoML's own spellings: whatever id they are given is a model
            kind = self._model_kind(qualname)
            names = kind.id_keywords if kind is not None else _FRAMEWORK_LOAD_KW
            arg = call.args[0] if call.args else next((kw[k] for k in names if k in kw), None)
            return arg, qualname.rpartition(".")[2], True
        if qualname not in _LOADERS:
            return None, None, False
        position, names = _LOADERS[qualname]
        arg = next((kw[n] for n in names if n in kw), None)
        if arg is None and position is not None and len(call.args) > position:
            arg = call.args[position]
        return arg, qualname.rpartition(".")[2], False

    def _qualname(self, node: ast.expr, func: ast.AST) -> str | None:
        """What a call's function is: through the module's names, or an import inside the
        function (``from transformers import pipeline`` in ``__init__``)."""
        assert self.module.scope is not None
        sym = self.project.resolve_quietly(node, self.module.scope, getattr(node, "lineno", None))
        if isinstance(sym, External):
            return sym.qualname
        if sym is not None:
            return None
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.insert(0, node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        local = _local_imports(func).get(node.id)
        return ".".join([local, *parts]) if local else None


def _local_imports(func: ast.AST) -> dict[str, str]:
    """Names that imports inside ``func`` bind: {local name: qualified name}."""
    out: dict[str, str] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
                else:
                    top = a.name.partition(".")[0]
                    out[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _is_parameter(arg: ast.expr, func: ast.AST) -> bool:
    """``arg`` is a parameter of ``func`` (a request's or a caller's value), not ``self``/``cls``."""
    if not isinstance(arg, ast.Name) or not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return False
    a = func.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)] + [p.arg for p in (a.vararg, a.kwarg) if p]
    return arg.id in names and arg.id not in ("self", "cls")


def undeclared_label(u: dict[str, Any]) -> str:
    """How a report names an undeclared load: its id, or the expression only serve time knows."""
    return str(u["id"]) if u.get("id") else f"<unknown: {u.get('expression', '?')}>"


_STORE_LOADERS = {"get", "load_model", "BentoModel", "StoreModel", "from_tag"}


def undeclared_text(u: dict[str, Any]) -> str:
    """The warning for one undeclared load, with the declaration that would pin it."""
    if not u.get("id"):
        return (f"a model is loaded by {u['call']}() from `{u.get('expression', '?')}`, known only at serve time: "
                "the bundle can't pin it; declare the models it may load as class attributes of the service")
    spelling = "bentoml.models.BentoModel" if u["call"] in _STORE_LOADERS else "HuggingFaceModel"
    return (f"model `{u['id']}` is loaded by {u['call']}() but not declared;"
            f" declare it as {spelling}({u['id']!r}) so the bundle pins it")


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


_UNKNOWN = _Unknown()
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?\Z")


def _looks_like_repo(value: str) -> bool:
    return bool(_REPO.match(value)) and not value.endswith((".py", ".json", ".bin", ".safetensors", ".pt", ".pth"))


def _calls_with_context(tree: ast.Module) -> list[tuple[ast.Call, ast.ClassDef | None, ast.AST | None]]:
    """Every call in the module with its top-level class (or None) and enclosing function.

    Iterative: a recursive generator pays for every level of nesting on every node it yields.
    """
    out: list[tuple[ast.Call, ast.ClassDef | None, ast.AST | None]] = []
    stack: list[tuple[ast.AST, ast.ClassDef | None, ast.AST | None]] = [(tree, None, None)]
    function_types = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
    while stack:
        node, owner, func = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                stack.append((child, child if owner is None and func is None else owner, func))
            elif isinstance(child, function_types):
                stack.append((child, owner, child if func is None else func))
            else:
                if isinstance(child, ast.Call):
                    out.append((child, owner, func))
                stack.append((child, owner, func))
    out.sort(key=lambda t: (t[0].lineno, t[0].col_offset))
    return out
