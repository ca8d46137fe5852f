"""BentoML's build settings, read the way BentoML reads them: ``bentofile.yaml``, else
``[tool.bentoml.build]`` in ``pyproject.toml``, in the build context (the service's directory,
or a directory above it up to the project root).

Only what matters to a bundle: ``service``, ``name``, ``include``/``exclude``, ``args`` (build
arguments for ``bentoml.use_arguments``) and the Python requirements.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

BENTOFILE = "bentofile.yaml"
_MAX_BYTES = 4 << 20


@dataclass(frozen=True)
class BentoBuild:
    path: Path | None  # the file the settings came from; None when there is none
    service: str | None = None
    name: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    args: dict[str, Any] = field(default_factory=dict)
    packages: tuple[str, ...] = ()
    requirements_txt: str | None = None
    python_version: str | None = None  # ``python.version``, else ``docker.python_version``

    @property
    def args_origin(self) -> str:
        """Where ``args`` came from, as ``inspect`` shows it."""
        if self.path is None:
            return "--arg"
        return self.path.name if self.path.name == BENTOFILE else f"{self.path.name} [tool.bentoml.build.args]"


def find(service_file: Path, root: Path | None = None) -> BentoBuild:
    """The BentoML build settings nearest the service, up to ``root`` (inclusive)."""
    here = Path(service_file).resolve().parent
    stop = Path(root).resolve() if root is not None else None
    for d in (here, *here.parents):
        if (d / BENTOFILE).is_file():
            return _from_yaml(d / BENTOFILE)
        if (d / "pyproject.toml").is_file():
            found = _from_pyproject(d / "pyproject.toml")
            if found is not None:
                return found
        if d == stop or (d / ".git").exists() or stop is None and (d / "pyproject.toml").is_file():
            break
    return BentoBuild(None)


def _read(path: Path) -> bytes:
    from ..io.safe_read import read_regular

    return read_regular(path, _MAX_BYTES)


def _from_yaml(path: Path) -> BentoBuild:
    import yaml

    try:
        data = yaml.safe_load(_read(path)) or {}
    except yaml.YAMLError as e:
        raise UsageError(f"{path}: not valid YAML: {' '.join(str(e).split())}", hint="fix bentofile.yaml") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: bentofile.yaml must be a mapping")
    return _settings(path, data)


def _from_pyproject(path: Path) -> BentoBuild | None:
    try:
        data = tomllib.loads(_read(path).decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: not valid TOML: {e}", hint="fix pyproject.toml") from None
    except RecursionError:
        raise UsageError(f"{path}: nested too deeply") from None
    tool = data.get("tool")
    bento = tool.get("bentoml") if isinstance(tool, dict) else None
    build = bento.get("build") if isinstance(bento, dict) else None
    if not isinstance(build, dict):
        return None
    return _settings(path, build)


def _settings(path: Path, data: dict[str, Any]) -> BentoBuild:
    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{path}: `{key}` must be a list of strings")
        return tuple(value)

    def text(value: Any, key: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise UsageError(f"{path}: `{key}` must be a string")
        return value

    args = data.get("args") or {}
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise UsageError(f"{path}: `args` must be a mapping of argument names to values")
    python = data.get("python") or {}
    if not isinstance(python, dict):
        raise UsageError(f"{path}: `python` must be a mapping")
    docker = data.get("docker") or {}
    if not isinstance(docker, dict):
        raise UsageError(f"{path}: `docker` must be a mapping")
    version = python.get("version") or docker.get("python_version")
    if version is not None and not isinstance(version, (str, float)):
        raise UsageError(f"{path}: the Python version must be a string like \"3.11\"")
    packages = python.get("packages") or []
    if not isinstance(packages, list) or not all(isinstance(p, str) for p in packages):
        raise UsageError(f"{path}: `python.packages` must be a list of strings")
    return BentoBuild(
        path=path,
        service=text(data.get("service"), "service"),
        name=text(data.get("name"), "name"),
        include=strings("include"),
        exclude=strings("exclude"),
        args=dict(args),
        packages=tuple(packages),
        requirements_txt=text(python.get("requirements_txt"), "python.requirements_txt"),
        python_version=str(version) if version is not None else None,
    )


def parse_arg(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` from ``--arg``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise UsageError(f"--arg {text!r}: expected KEY=VALUE", hint="e.g. --arg model_id=org/name")
    return key, value
