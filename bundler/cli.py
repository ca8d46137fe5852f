"""The ``bundler`` command: thin typer commands over the library; errors rendered once, here."""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, Optional

import typer

from . import __version__
from .errors import BundlerError, UsageError
from .units import human_size

app = typer.Typer(
    name="bundler",
    help="Package ML model services into reproducible, deployable bundles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
_debug = False


def _version(value: bool) -> None:
    if value:
        print(f"bundler {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback on errors."),
) -> None:
    global _debug
    _debug = debug


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def render_error(e: BundlerError) -> None:
    print(f"error: {e}", file=sys.stderr)
    if e.hint:
        print(f"hint: {e.hint}", file=sys.stderr)


_ARG_HELP = "A build argument for bentoml.use_arguments, KEY=VALUE; repeatable (overrides bentofile `args`)."


def _arguments(items: list[str]) -> dict[str, str]:
    from .bentofile import parse_arg

    return dict(parse_arg(i) for i in items)


def print_findings(results: list[Any]) -> None:
    """Notes and undeclared-model warnings, on stderr (stdout stays data)."""
    for r in results:
        for note in r.notes:
            print(f"note: {note}", file=sys.stderr)
        for svc in r.services:
            for u in svc.undeclared:
                print(
                    f"warning: {os.path.relpath(r.root / u['file'])}:{u['line']}: model `{u['id']}` is loaded by {u['call']}() but not declared;"
                    f" declare it as HuggingFaceModel({u['id']!r}) so the bundle pins it",
                    file=sys.stderr,
                )


@app.command(short_help="Find services and their models statically (no import).")
def scan(
    target: str = typer.Argument(..., metavar="PATH", help="The service file (file.py[:Class], or module:Class), or a directory to scan every service file under it."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    arg: list[str] = typer.Option([], "--arg", metavar="KEY=VALUE", help=_ARG_HELP),
) -> None:
    """Find services and the models they declare, reading the source only (no import, no network).

    Given a directory, scans every service file under it (skipping what a build skips) and lists
    the files it refused and why; exit 2 when any was refused."""
    from pathlib import Path

    from .introspect import scan as do_scan, split_target

    arguments = _arguments(arg)
    if Path(target).is_dir():
        from .introspect.tree import scan_tree

        tree = scan_tree(Path(target), arguments)
        if as_json:
            emit_json(tree.to_json())
        else:
            from .render import scan_table

            for r in tree.results:
                scan_table(r)
            for f in tree.refused:
                print(f"refused: {f['error']}", file=sys.stderr)
            print(f"{len(tree.results)} service files scanned, {len(tree.refused)} refused", file=sys.stderr)
        print_findings(tree.results)
        if tree.refused:
            raise typer.Exit(2)
        return
    path, only = split_target(target)
    result = do_scan(path, only, arguments=arguments)
    if as_json:
        emit_json(result.to_json())
    else:
        from .render import scan_table

        scan_table(result)
    print_findings([result])


@app.command(short_help="Pin every model and write bundler.lock.")
def lock(
    target: str = typer.Argument(..., metavar="PATH", help="The service file (bundler.lock is written beside it)."),
    upgrade: bool = typer.Option(False, "--upgrade", "-U", help="Re-pin every model (moving revisions, store `latest`)."),
    upgrade_model: list[str] = typer.Option(
        [], "--upgrade-model", "-P", metavar="NAME", help="Re-pin only this model (repo id or store name); repeatable."
    ),
    check: bool = typer.Option(False, "--check", help="Change nothing; exit 1 listing what is stale (for CI)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    arg: list[str] = typer.Option([], "--arg", metavar="KEY=VALUE", help=_ARG_HELP),
) -> None:
    """Pin every model reference to an exact commit / store version and write bundler.lock."""
    from .lock import lock as do_lock, require_fresh

    result = do_lock(target, upgrade=upgrade or upgrade_model, check=check, arguments=_arguments(arg))
    if as_json:
        emit_json(result.to_json())
    elif check:
        if not result.stale:
            print(f"{result.path}: fresh ({len(result.pins)} models)")
    else:
        for p in result.pinned:
            print(f"pinned   {p.label} -> {p.short} ({len(p.files)} files)")
        for old, new in result.upgraded:
            print(f"upgraded {new.label}: {old.short} -> {new.short}")
        for p in result.removed:
            print(f"removed  {p.label}")
        state = "written" if result.written else "unchanged"
        print(f"{result.path}: {state} ({len(result.pins)} models, {len(result.kept)} kept)")
    require_fresh(result)


@app.command(short_help="Build a reproducible bundle archive.")
def build(
    target: str = typer.Argument(..., metavar="PATH", help="The service file, optionally file.py:ClassName (the entry)."),
    output: Optional[str] = typer.Option(
        None, "--output", "-o", metavar="OUT", help="Bundle path (default dist/NAME-VERSION.bundle.tar; .tar.gz compresses)."
    ),
    locked: bool = typer.Option(False, "--locked", help="Fail (exit 1) if bundler.lock is missing or stale; never re-pin."),
    offline: bool = typer.Option(False, "--offline", help="Never use the network; fail if anything needs pinning."),
    gzip: bool = typer.Option(False, "--gzip", help="Write a .bundle.tar.gz."),
    embed_hub: bool = typer.Option(
        False, "--embed-hub", help="Pack the Hub models' files too (from the local HF cache), for air-gapped hosts."
    ),
    as_json: bool = typer.Option(False, "--json", help='Print {"path", "digest", "name", "version"}.'),
    arg: list[str] = typer.Option([], "--arg", metavar="KEY=VALUE", help=_ARG_HELP),
    strict: bool = typer.Option(False, "--strict", help="Fail (exit 1) when a service loads a model it does not declare."),
    allow_secret: list[str] = typer.Option(
        [], "--allow-secret", metavar="PATH", help="Pack this reviewed source file although it looks like it holds a credential; repeatable."
    ),
    list_sources: bool = typer.Option(
        False, "--list-sources", help="Print the files a build would pack and why each other file is left out; build nothing."
    ),
) -> None:
    """Scan, pin (bundler.lock first), hash and pack a reproducible bundle."""
    from .build import build as do_build, list_sources as do_list

    if list_sources:
        selection = do_list(target, output)
        if as_json:
            emit_json(selection.to_json())
            return
        for rel, _ in selection.files:
            print(rel)
        for rel, why in selection.left_out:
            print(f"left out: {rel}  ({why})", file=sys.stderr)
        for rel, why in selection.kept_despite:
            print(f"always packed: {rel}  (overrides {why})", file=sys.stderr)
        return
    result = do_build(
        target, output, locked=locked, offline=offline, compress=True if gzip else None, embed_hub=embed_hub,
        arguments=_arguments(arg), strict=strict, allow_secrets=tuple(allow_secret),
    )
    print_findings([result.lock.scan])
    for rel in result.selection.credentials:
        print(f"left out: {rel} (a credential file: never packed)", file=sys.stderr)
    for rel, why in result.selection.kept_despite:
        print(f"note: {rel} is always packed (overrides {why})", file=sys.stderr)
    if as_json:
        emit_json(result.to_json())
        return
    m = result.manifest

    print(
        f"built {os.path.relpath(result.path)}\n"
        f"  name {m.name}  version {m.version}\n"
        f"  digest {result.digest}\n"
        f"  {len(m.sources)} source files, {len(m.pins)} models, {human_size(result.path.stat().st_size)}"
    )


@app.command(short_help="Show what a bundle holds; --verify re-hashes it.")
def inspect(
    bundle: str = typer.Argument(..., metavar="BUNDLE", help="A bundle archive, or oci://HOST/REPO:TAG."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest plus its digest as JSON."),
    verify: bool = typer.Option(False, "--verify", help="Re-hash every member; exit 1 on missing, extra or modified ones."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow plain HTTP to a non-loopback registry."),
    token: Optional[str] = typer.Option(None, "--token", envvar="BUNDLER_REGISTRY_TOKEN", help="Registry bearer token.", show_envvar=True),
) -> None:
    """Show what a bundle holds (reads only its manifest); --verify checks every byte."""
    from .archive import read_manifest, require_ok, verify as do_verify

    report = None
    if bundle.startswith("oci://"):  # the OCI client is imported only when it is needed
        from . import oci

        if verify:
            raise UsageError("--verify needs a local bundle", hint="`bundler pull oci://...` verifies every blob digest")
        manifest = oci.read_manifest(bundle, insecure=insecure, token=token)
    elif verify:
        manifest, report = do_verify(bundle)
    else:
        manifest = read_manifest(bundle)
    if as_json:
        data = manifest.to_json()
        if report is not None:
            data["verify"] = report.to_json()
        emit_json(data)
    else:
        from .render import inspect_table

        inspect_table(manifest, report)
    if report is not None:
        require_ok(bundle, report)


@app.command(short_help="Push a bundle to an OCI registry.")
def push(
    bundle: str = typer.Argument(..., metavar="BUNDLE", help="A bundle archive."),
    target: str = typer.Argument(..., metavar="oci://HOST[:PORT]/REPO[:TAG]", help="Where to push (tag defaults to latest)."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow plain HTTP to a non-loopback registry."),
    token: Optional[str] = typer.Option(None, "--token", envvar="BUNDLER_REGISTRY_TOKEN", help="Registry bearer token.", show_envvar=True),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Push a bundle to an OCI registry; blobs already there are not uploaded again."""
    from .oci import push as do_push

    result = do_push(bundle, target, insecure=insecure, token=token)
    if as_json:
        emit_json(result.to_json())
        return
    print(
        f"pushed {result.ref}: uploaded {human_size(result.uploaded)} in {result.blobs_uploaded} blobs, "
        f"skipped {human_size(result.skipped)} in {result.blobs_skipped} blobs already there",
        file=sys.stderr,
    )
    print(result.digest)


@app.command(short_help="Show what changed between two bundles.")
def diff(
    a: str = typer.Argument(..., metavar="A", help="The old bundle."),
    b: str = typer.Argument(..., metavar="B", help="The new bundle."),
    as_json: bool = typer.Option(False, "--json", help="Print the differences as JSON."),
) -> None:
    """What changed between two bundles; exit 0 when identical, 1 when they differ."""
    from .archive import read_manifest
    from .diff import diff as do_diff, render_text

    d = do_diff(read_manifest(a), read_manifest(b))
    if as_json:
        emit_json(d)
    else:
        print("\n".join(render_text(d)))
    if not d["identical"]:
        raise typer.Exit(1)


@app.command(short_help="Unpack a bundle, fetch and verify its models.")
def pull(
    bundle: str = typer.Argument(..., metavar="BUNDLE", help="A bundle archive, or oci://HOST/REPO:TAG (or @sha256:...)."),
    to: Optional[str] = typer.Option(
        None, "--to", metavar="DIR", help="Where to unpack (default: beside the bundle, named after it; ./NAME-VERSION for oci://)."
    ),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", metavar="DIR", help="Hugging Face cache (default: HF_HUB_CACHE / HF_HOME)."),
    jobs: int = typer.Option(8, "--jobs", "-j", min=1, max=64, help="Files downloaded at once."),
    verify_only: bool = typer.Option(False, "--verify-only", help="Download nothing; re-hash what is on this host."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow plain HTTP to a non-loopback registry."),
    token: Optional[str] = typer.Option(None, "--token", envvar="BUNDLER_REGISTRY_TOKEN", help="Registry bearer token.", show_envvar=True),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Make a bundle ready to serve: unpack it, fetch its pinned Hub files, verify every one.

    The directory is also a bento: `HF_HUB_OFFLINE=1 bentoml serve DIR` loads exactly the pins."""
    from .pull import pull as do_pull, require_ok
    from .render import PullProgress

    with PullProgress(enabled=not as_json) as progress:
        result = do_pull(
            bundle, to=to, cache_dir=cache_dir, jobs=jobs, verify_only=verify_only, progress=progress, insecure=insecure, token=token
        )
    if as_json:
        emit_json(result.to_json())
    else:
        data = result.to_json()
        state = "verified" if verify_only else ("unpacked" if result.unpacked else "already unpacked")
        print(
            f"{result.dest}: {state}; {data['downloaded']['files']} files downloaded "
            f"({human_size(data['downloaded']['bytes'])}), {data['cached']['files']} already cached"
            + (f", {len(result.store_imported)} store models imported" if result.store_imported else ""),
            file=sys.stderr,
        )
    require_ok(result)


@app.command(short_help="Load a pulled bundle's entry service (offline).")
def run(
    bundle_dir: str = typer.Argument(..., metavar="BUNDLE_DIR", help="An unpacked bundle (what `bundler pull` made)."),
    check: bool = typer.Option(False, "--check", help="Only prove it loads: import, instantiate, resolve, exit."),
) -> None:
    """Import the bundle's entry service, instantiate it and resolve its models offline.

    Serving itself is the framework's job (BentoML, a plain script): this proves that a worker
    started from the bundle will find every model.
    """
    from .runtime import load_service

    instance, resolved = load_service(bundle_dir)
    for attr, path in resolved.items():
        print(f"{attr}: {path}")
    print(f"ok: {type(instance).__name__} loaded from {bundle_dir}" + (" (check)" if check else ""))


models_app = typer.Typer(help="The local model store ($BUNDLER_HOME).", short_help="Manage the local model store.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("import")
def models_import(
    tag: str = typer.Argument(..., metavar="NAME[:VERSION]", help="Version defaults to a prefix of the content hash."),
    directory: str = typer.Argument(..., metavar="DIR", help="The directory holding the model's files."),
    as_json: bool = typer.Option(False, "--json", help="Print the stored model as JSON."),
) -> None:
    """Copy a model directory into the store, hashing every file."""
    from pathlib import Path

    from .store import Store

    model = Store().import_dir(tag, Path(directory))
    if as_json:
        emit_json(model.to_json())
    else:
        print(f"imported {model.tag} ({len(model.files)} files, {human_size(model.size)})")


@models_app.command("list")
def models_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """List stored models; `latest` marks the version that `name:latest` resolves to."""
    from .store import Store

    store = Store()
    models = store.list()
    if as_json:
        emit_json([{k: v for k, v in m.to_json().items() if k != "files"} for m in models])
        return
    latest = store.latest_versions()
    if not models:
        print(f"no models in {store.root}", file=sys.stderr)
    for m in models:
        mark = "  latest" if latest.get(m.name) == m.version else ""
        print(f"{m.tag:40} {len(m.files):5} files {human_size(m.size):>10}{mark}")


@models_app.command("show")
def models_show(tag: str = typer.Argument(..., metavar="NAME[:VERSION]")) -> None:
    """Print a stored model's manifest as JSON."""
    from .store import Store

    emit_json(Store().get(tag).to_json())


@models_app.command("delete")
def models_delete(tag: str = typer.Argument(..., metavar="NAME[:VERSION]")) -> None:
    """Delete a stored model version."""
    from .store import Store

    model = Store().delete(tag)
    print(f"deleted {model.tag}")


class Interrupted(BundlerError):
    exit_code = 130


def _interrupted(signum: int, frame: Any) -> None:
    # Raised as our own error so the CLI framework does not turn it into a bare "Aborted!".
    raise Interrupted(
        "interrupted; no output was half-written (temporary files are removed now, or by the next run)"
    )


def main() -> None:
    import signal

    signal.signal(signal.SIGINT, _interrupted)
    try:
        app()
    except BundlerError as e:
        if _debug:
            traceback.print_exc()
        render_error(e)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as e:
        # The machine said no (disk full, read-only, permission): one line, not a traceback.
        if _debug:
            traceback.print_exc()
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        import errno

        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            print("hint: free some space (or point the output, BUNDLER_HOME or the cache elsewhere) and run it again", file=sys.stderr)
        elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            print("hint: check the permissions of that path, or choose another", file=sys.stderr)
        sys.exit(1)
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
