"""``bundler run``: import a pulled bundle's service the way ``bentoml serve DIR`` does, after
checking every pinned file, and resolve every model it declares (``--check``), in this interpreter
or in the bundle's own ``.venv``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..errors import BundlerError, ProblemFound, UsageError
from ..model.layout import MANIFEST_NAME
from ..runtime import BundleContext, context


def load_service(root: str | os.PathLike[str], *, verify: bool = False, audit: Any = None) -> tuple[Any, dict[str, str]]:
    """Check every pinned file, then import and instantiate the bundle's entry service and
    resolve every model it declares.

    Returns the instance and {attribute: resolved path}. This is what ``bundler run --check`` does,
    and what ``bentoml serve DIR`` does: the import runs in ``src/`` (the working directory and
    the first entry of ``sys.path``), whatever the caller's working directory, so a service that
    reads ``requirements.txt`` or a template by a relative path at import finds it.
    ``audit`` (an ``audit.HubAudit``) records every Hub look-up the import and the instance make.
    """
    root = Path(root).resolve()
    ctx = context(root)
    ctx.check_models(full=verify)
    cwd = os.getcwd()
    os.chdir(root / "src")
    try:
        return _import_and_resolve(root, ctx, audit)
    finally:
        os.chdir(cwd)


def _import_and_resolve(root: Path, ctx: BundleContext, audit: Any = None) -> tuple[Any, dict[str, str]]:
    import importlib

    from ..descriptors import _Descriptor

    entry = ctx.manifest.entrypoint or ""
    cls_name = entry.rpartition(":")[2]
    service = ctx.manifest.entry_service
    if service is None:
        raise UsageError(f"{root / MANIFEST_NAME}: entry point {entry!r} names no service")
    ctx.require_runnable(service.name)
    os.environ["BUNDLER_BUNDLE"] = str(root)
    # The pull put every pinned file in place: BentoML's HuggingFaceModel (and huggingface_hub)
    # must read that cache, with no network, exactly as `bentoml serve DIR` would after a pull.
    os.environ.setdefault("BENTOML_HF_CACHE_DIR", str(ctx.cache))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if audit is not None:
        audit.install()  # after HF_HUB_OFFLINE: huggingface_hub reads it when first imported
    src = str(root / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    if ctx.manifest.environment:
        requirements = f"install the bundle's locked packages with `bundler env {root}`, then run it again"
    else:
        requirements = "install the bundle's requirements: " + (", ".join(ctx.manifest.requirements) or "none recorded")
    _set_arguments(ctx.manifest.given_arguments)
    try:
        module = importlib.import_module(service.module)
    except ImportError as e:
        raise UsageError(f"can't import {service.module} from {src}: {e}", hint=requirements) from None
    except Exception as e:  # the user's module failed while being imported: one line, not a traceback
        raise ProblemFound(f"importing {service.module} from {src} failed: {type(e).__name__}: {e}",
                           hint="the service's module raised while it was imported (in BUNDLE_DIR/src, as `bentoml serve DIR` does); run with --debug for the traceback") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise UsageError(f"{root / MANIFEST_NAME}: module {service.module} has no class `{cls_name}`", hint="rebuild the bundle")
    # ``@bentoml.service`` returns a Service object wrapping the class: load it the way
    # `bentoml serve DIR` does (the bento.yaml pins replace each HuggingFaceModel's revision),
    # then instantiate the class.
    if not isinstance(cls, type) and isinstance(getattr(cls, "inner", None), type):
        if hasattr(cls, "on_load_bento") and (root / "bento.yaml").is_file():
            from bentoml._internal.bento.bento import Bento

            cls.on_load_bento(Bento.from_path(str(root)))
        cls = cls.inner
    try:
        instance = cls()
    except ImportError as e:
        raise UsageError(f"{cls_name}() failed: {type(e).__name__}: {e}", hint=requirements) from None
    except BundlerError:
        raise
    except Exception as e:
        raise ProblemFound(f"{cls_name}() failed: {type(e).__name__}: {e}", hint="the service's __init__ raised; run it with --debug for the traceback") from None
    resolved = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, _Descriptor) or _is_bentoml_model(value):
                resolved[name] = str(value.resolve())
    return instance, resolved


def _set_arguments(arguments: dict[str, Any]) -> None:
    """Hand the bundle's build arguments to ``bentoml.use_arguments`` as BentoML's worker does."""
    if not arguments:
        return
    try:
        from bentoml._internal.utils.args import set_arguments
    except ImportError:
        return  # without bentoml, nothing in the service can read them
    set_arguments(dict(arguments))


def _is_bentoml_model(value: Any) -> bool:
    """BentoML's own model references (``bentoml.models.HuggingFaceModel``, ``BentoModel``)."""
    mod = type(value).__module__
    return mod.startswith("_bentoml_sdk.models") and hasattr(value, "resolve")


def report(bundle_dir: str | os.PathLike[str], check: bool, *, verify: bool = False, no_import: bool = False,
           audit: bool = False) -> None:
    """Load the service and print what ``bundler run`` prints: each resolved model, then ``ok``.
    ``no_import`` checks and resolves every model without importing the service; ``audit``
    lists every Hub look-up the service made and fails on one outside the pins."""
    if no_import:
        models = context(Path(bundle_dir).resolve()).check_models(full=verify)
        for label, path in models.items():
            print(f"{label}: {path}")
        print(f"ok: {len(models)} model(s) of {bundle_dir} present and {'re-hashed' if verify else 'unchanged'} (not imported)")
        return
    if audit:
        _report_audited(Path(bundle_dir), verify)
        return
    instance, resolved = load_service(bundle_dir, verify=verify)
    for attr, where in resolved.items():
        print(f"{attr}: {where}")
    print(f"ok: {type(instance).__name__} loaded from {bundle_dir}" + (" (check)" if check else ""))


def _report_audited(bundle_dir: Path, verify: bool) -> None:
    """``run --check --audit``: load with every Hub look-up recorded; a look-up outside the pins
    fails the check (exit 1) with its call site, also when it made the service fail to start."""
    from .audit import HubAudit

    hub_audit = HubAudit(bundle_dir.resolve() / "src")
    failed: BundlerError | None = None
    try:
        instance, resolved = load_service(bundle_dir, verify=verify, audit=hub_audit)
    except ProblemFound as e:  # the service failed; the audit may say why
        failed, instance, resolved = e, None, {}
    for lookup in hub_audit.lookups:
        print(f"hub: {lookup}")
    stray = hub_audit.outside(context(bundle_dir.resolve()).manifest.pins)
    if stray:
        raise ProblemFound(
            f"{len(stray)} Hub look-up(s) outside the bundle's pins:\n  " + "\n  ".join(str(s) for s in stray)
            + (f"\n  (and the service failed to start: {failed.message})" if failed else ""),
            hint="declare each model as a class attribute of the service (HuggingFaceModel) so the bundle pins it, then build and pull again",
        )
    if failed is not None:
        raise failed
    for attr, where in resolved.items():
        print(f"{attr}: {where}")
    print(f"ok: {type(instance).__name__} loaded from {bundle_dir} (audited: {len(hub_audit.lookups)} Hub look-up(s), all pinned)")


#: Run inside the bundle's own venv: the locked packages first, bundler's runtime (stdlib only)
#: appended last so that a locked `bundler` wins over ours.
_IN_VENV = """\
import sys
sys.path.append(sys.argv[1])
from bundler.errors import BundlerError
try:
    from bundler.ops.run import report
except ImportError:  # a locked bundler older than bundler.ops.run
    from bundler.runtime import report
try:
    report(sys.argv[2], sys.argv[3] == "1", verify=sys.argv[4] == "1", no_import=sys.argv[5] == "1", audit=sys.argv[6] == "1")
except BundlerError as e:
    print(f"error: {e}", file=sys.stderr)
    if e.hint:
        print(f"hint: {e.hint}", file=sys.stderr)
    sys.exit(e.exit_code)
"""


def run_in_venv(bundle_dir: str | os.PathLike[str], python: Path, check: bool, *, verify: bool = False, no_import: bool = False,
                audit: bool = False) -> int:
    """``bundler run`` in the bundle's ``.venv`` (made by ``bundler env``): a fresh interpreter
    that sees the locked packages, with bundler's own package reachable through a one-entry path."""
    import subprocess
    import tempfile

    import importlib.util

    from ..settings import environment

    with tempfile.TemporaryDirectory(prefix="bundler-run-") as shim:
        os.symlink(Path(__file__).resolve().parent, Path(shim) / "bundler")
        # Verifying store models needs blake3; a venv without it borrows the host's copy (last on
        # the path, so the venv's own wins).
        spec = importlib.util.find_spec("blake3")
        if spec is not None and spec.submodule_search_locations:
            os.symlink(list(spec.submodule_search_locations)[0], Path(shim) / "blake3")
        env = {k: v for k, v in environment().items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        flags = ["1" if f else "0" for f in (check, verify, no_import, audit)]
        return subprocess.run([str(python), "-c", _IN_VENV, shim, str(bundle_dir), *flags], env=env).returncode
