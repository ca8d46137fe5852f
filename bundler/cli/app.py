"""The ``bundler`` command: thin typer commands over the library; errors rendered once, here."""

from __future__ import annotations

import copy
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any, Optional, Sequence

import typer

from .. import __version__
from ..errors import BundlerError, UsageError
from ..units import human_size

if TYPE_CHECKING:
    from ..ops.signing import Signer, Trust

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


_emitted = False  # a command printed its JSON answer already: a failure after it adds none


def emit_json(data: Any) -> None:
    global _emitted
    from ..model.jsontext import json_text

    sys.stdout.write(json_text(data) + "\n")
    _emitted = True


def render_error(e: BundlerError) -> None:
    from .render import shown  # a message can quote a hostile bundle's names

    print(shown(f"error: {e}", lines=True), file=sys.stderr)
    if e.hint:
        print(shown(f"hint: {e.hint}"), file=sys.stderr)
    _json_failure(str(e), e.hint, e.exit_code, file=e.file, line=e.line)


def _json_failure(error: str, hint: str | None, code: int, *, file: str | None = None, line: int | None = None) -> None:
    """With --json, a failure is one JSON object on stdout too (CI parses it, not stderr)."""
    if _emitted or "--json" not in sys.argv[1:sys.argv.index("--") if "--" in sys.argv else None]:
        return
    emit_json({"error": error, "hint": hint, "exit": code, "file": file, "line": line})


_ARG_HELP = "A build argument for bentoml.use_arguments, KEY=VALUE; repeatable (overrides bentofile `args`)."


def _arguments(items: list[str]) -> dict[str, str]:
    from ..project.bentofile import parse_arg

    return dict(parse_arg(i) for i in items)


_REQUIRE_HELP = ("Refuse a bundle not signed (BUNDLE.sig) by --key or by --identity/--issuer, before writing anything; BUNDLER_REQUIRE_SIGNATURE=PUB.pem "
                 "(or BUNDLER_REQUIRE_IDENTITY and BUNDLER_REQUIRE_ISSUER) does it on every pull.")
_IDENTITY_OPT = typer.Option(None, "--identity", metavar="ID", help="Accept a keyless (Sigstore) signature by this identity: an email, or a CI workflow's URI.")
_ISSUER_OPT = typer.Option(None, "--issuer", metavar="URL", help="The OIDC issuer that vouched for --identity (e.g. https://token.actions.githubusercontent.com).")
_OFFLINE_TRUST_OPT = typer.Option(
    False, "--sigstore-offline", help="Check a keyless signature with the Sigstore trust root this host has (no refresh); BUNDLER_SIGSTORE_OFFLINE=1 does it too."
)
_STAGING_OPT = typer.Option(False, "--staging", help="Sigstore's staging instance, not production (for testing keyless signing).")
_SIGSTORE_CONFIG_OPT = typer.Option(
    None, "--sigstore-config", metavar="FILE", help="A private Sigstore instance: its client trust config (JSON: trusted root and signing config)."
)
_IDENTITY_TOKEN_OPT = typer.Option(
    None, "--identity-token", envvar="SIGSTORE_ID_TOKEN", metavar="JWT", help="The OIDC token --keyless signs as (default: the CI job's ambient one, else a browser login)."
)


def _trust(key: str | None, identity: str | None, issuer: str | None, *, offline: bool = False, staging: bool = False, config: str | None = None) -> Trust | None:
    """Whom a check accepts: a public key, or a Sigstore identity; None when neither is given."""
    from pathlib import Path

    if not identity and (offline or staging or config):
        raise UsageError("--sigstore-offline, --staging and --sigstore-config are for a keyless signature", hint="add --identity ID --issuer URL")

    if key is not None and (identity or issuer):
        raise UsageError("--key and --identity are two ways to trust a signer: give one", hint="--key PUB.pem for a key signature, --identity ID --issuer URL for a keyless one")
    if key is not None:
        from ..ops.signing import KeyTrust

        return KeyTrust(Path(key))
    if bool(identity) != bool(issuer):
        raise UsageError("--identity and --issuer go together", hint="e.g. --identity ci@example.com --issuer https://accounts.google.com")
    if not identity or not issuer:
        return None
    from ..ops.keyless import IdentityTrust
    from ..settings import sigstore_offline

    return IdentityTrust(identity, issuer, staging=staging, offline=offline or sigstore_offline(), config=Path(config) if config else None)


def _signer(key: str | None, keyless: bool, identity_token: str | None = None, *, staging: bool = False, config: str | None = None) -> Signer:
    """Who signs: a private key, or (``keyless``) this OIDC identity through Sigstore."""
    from pathlib import Path

    if keyless == (key is not None):
        raise UsageError("sign with --key PRIVATE.pem or --keyless (a Sigstore identity): one of them", hint="bundler sign BUNDLE --key PRIVATE.pem")
    if key is not None:
        if staging or config:  # not the token: SIGSTORE_ID_TOKEN may be set in a CI job that signs with a key
            raise UsageError("--staging and --sigstore-config are for --keyless", hint="sign with --key PRIVATE.pem or --keyless")
        from ..ops.signing import KeySigner

        return KeySigner(Path(key))
    from ..ops.keyless import KeylessSigner

    return KeylessSigner(identity_token, staging=staging, config=Path(config) if config else None, interactive=sys.stdin.isatty())


def _signed_by(required: bool, trust: Trust | None) -> Trust | None:
    if required and trust is None:
        raise UsageError("--require-signature needs --key PUB.pem or --identity ID --issuer URL",
                         hint="or set BUNDLER_REQUIRE_SIGNATURE=PUB.pem (or BUNDLER_REQUIRE_IDENTITY and BUNDLER_REQUIRE_ISSUER)")
    if trust is not None and not required:
        raise UsageError("--key, --identity and --issuer name whom --require-signature trusts", hint="add --require-signature")
    return trust


def pull_summary(result: Any, verify_only: bool) -> str:
    """What a pull did, one count per way a file got here: a README-only change says it
    downloaded nothing."""
    data = result.to_json()
    state = "verified" if verify_only else ("unpacked" if result.unpacked else "already unpacked")
    got = data["downloaded"]
    parts = [f"{got['files']} files downloaded ({human_size(got['bytes'])})" if got["files"] else "nothing downloaded"]
    parts.append(f"{data['cached']['files']} already cached")
    if result.embedded:
        parts.append(f"{len(result.embedded)} placed from the bundle ({human_size(data['embedded']['bytes'])})")
    if result.linked:
        parts.append(f"{len(result.linked)} linked from another spelling of their repository")
    if result.store_imported:
        parts.append(f"{len(result.store_imported)} store models imported")
    return f"{state}; " + ", ".join(parts)


def _service_target(target: str | None) -> str:
    """A service file as given, or, for no PATH or a directory, the service the project there
    names (``[tool.bundler] service``, bentofile ``service``, ``[tool.bentoml.build] service``)."""
    from pathlib import Path

    if target is not None and not Path(target).is_dir():
        return target
    from ..project.sources import named_target

    return named_target(Path(target or "."))


_TARGET_HELP = "The service file, optionally file.py:ClassName (the entry); none, or a directory: the service the project names."


def print_findings(results: list[Any]) -> None:
    """Notes and undeclared-model warnings, on stderr (stdout stays data)."""
    from ..introspect.scanner import undeclared_text

    for r in results:
        for note in r.notes:
            print(f"note: {note}", file=sys.stderr)
        for svc in r.services:
            for u in svc.undeclared:
                print(f"warning: {os.path.relpath(r.root / u['file'])}:{u['line']}: {undeclared_text(u)}", file=sys.stderr)


@app.command(short_help="Find services and their models statically (no import).")
def scan(
    target: Optional[str] = typer.Argument(None, metavar="[PATH]", help="The service file (file.py[:Class], or module:Class), or a directory to scan every service file under it; none, or `.` in a project that names its service: that service."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    arg: list[str] = typer.Option([], "--arg", metavar="KEY=VALUE", help=_ARG_HELP),
) -> None:
    """Find services and the models they declare, reading the source only (no import, no network).

    Given a directory, scans every service file under it (skipping what a build skips) and lists
    the files it refused and why; exit 2 when any was refused."""
    from pathlib import Path

    from ..introspect import scan as do_scan, split_target

    arguments = _arguments(arg)
    if target is None or target == ".":
        from ..errors import UsageError

        try:
            target = _service_target(target)
        except UsageError:
            if target is None:
                raise
    if Path(target).is_dir():
        from ..introspect.tree import scan_tree

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


_PYTHON_OPT = typer.Option(None, "--python", metavar="X.Y", help="Target Python of the environment lock (default: the one the project names: [tool.bundler] python, the bentofile's or the service image's python_version, .python-version; else the lock's; else the lowest `requires-python` allows, else this Python).")
_PLATFORM_OPT = typer.Option(None, "--platform", metavar="PLATFORM", help="Target platform of the environment lock (default x86_64-manylinux_2_28; e.g. aarch64-manylinux_2_28; kept from the lock).")
_INDEX_OPT = typer.Option(None, "--index-url", metavar="URL", help="Package index (default: UV_INDEX_URL, PIP_INDEX_URL, else PyPI).")
_LINKS_OPT = typer.Option([], "--find-links", "-f", metavar="DIR|URL", help="Also look for packages here; repeatable.")
_NO_INDEX_OPT = typer.Option(False, "--no-index", help="Use only --find-links, no index.")
_NO_ENV_OPT = typer.Option(False, "--no-env", help="Leave the Python environment out: no pylock.toml resolution or check.")
_NO_PICKLE_OPT = typer.Option(False, "--no-pickle", help="Refuse pickle-format weights (*.bin, *.pt, ...: they run code when loaded); as [tool.bundler] weights = \"no-pickle\".")
_NO_DEPS_OPT = typer.Option(False, "--no-deps", help="Don't pin the repositories the models load by themselves (an adapter's base model, remote code); warned.")


def _env_options(python: Optional[str], platform: Optional[str], index_url: Optional[str], find_links: list[str],
                 no_index: bool, no_env: bool, upgrade_package: Sequence[str] = ()) -> Any:
    from ..env.lock import EnvOptions

    return EnvOptions(python=python, platform=platform, index_url=index_url, find_links=tuple(find_links),
                      no_index=no_index, upgrade_packages=tuple(upgrade_package), skip=no_env)


def print_env(env: Any, check: bool = False) -> None:
    if env is None or env.pin is None and not env.changes:
        return
    if env.pin is None:
        print("pylock.toml: removed (the project has no requirements)")
    elif env.resolved:
        print(f"pylock.toml: resolved {len(env.packages)} packages for Python {env.pin.python} on {env.pin.platform}")
        for change in env.changes:
            print(f"  {change}")
    elif not check:
        print(f"pylock.toml: fresh ({len(env.packages)} packages, Python {env.pin.python} on {env.pin.platform})")


@app.command(short_help="Pin models and Python packages; write the lock files.")
def lock(
    target: Optional[str] = typer.Argument(None, metavar="[PATH]", help="The service file (bundler.lock is written beside it); none, or a directory: the service the project names."),
    upgrade: bool = typer.Option(False, "--upgrade", "-U", help="Re-pin every model (moving revisions, store `latest`)."),
    upgrade_model: list[str] = typer.Option(
        [], "--upgrade-model", "-P", metavar="NAME", help="Re-pin only this model (repo id or store name); repeatable."
    ),
    check: bool = typer.Option(False, "--check", help="Change nothing; exit 1 listing what is stale (for CI)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    arg: list[str] = typer.Option([], "--arg", metavar="KEY=VALUE", help=_ARG_HELP),
    upgrade_package: list[str] = typer.Option([], "--upgrade-package", metavar="NAME", help="Re-resolve only this Python package; repeatable."),
    python: Optional[str] = _PYTHON_OPT,
    platform: Optional[str] = _PLATFORM_OPT,
    index_url: Optional[str] = _INDEX_OPT,
    find_links: list[str] = _LINKS_OPT,
    no_index: bool = _NO_INDEX_OPT,
    no_env: bool = _NO_ENV_OPT,
    no_deps: bool = _NO_DEPS_OPT,
    no_pickle: bool = _NO_PICKLE_OPT,
) -> None:
    """Pin every model reference to an exact commit / store version and write bundler.lock.

    The project's Python requirements ([project] dependencies, else the bentofile's or
    requirements.txt) are resolved by uv for the target host into pylock.toml beside it, every
    package at one version with its files' hashes. A fresh lock is kept as it is, with no network."""
    from ..ops.lock import lock as do_lock, require_fresh

    env = _env_options(python, platform, index_url, find_links, no_index, no_env, upgrade_package)
    result = do_lock(_service_target(target), upgrade=upgrade or upgrade_model, check=check, arguments=_arguments(arg), env=env,
                     deps=not no_deps, no_pickle=no_pickle)
    for note in result.notes:
        print(f"warning: {note}", file=sys.stderr)
    if as_json:
        emit_json(result.to_json())
    elif check:
        if not result.stale:
            print(f"{result.path}: fresh ({len(result.pins)} models)")
            print_env(result.env, check=True)
    else:
        for p in result.pinned:
            print(f"pinned   {p.label} -> {p.short} ({len(p.files)} files)")
        for old, new in result.upgraded:
            print(f"upgraded {new.label}: {old.short} -> {new.short}")
        for p in result.removed:
            print(f"removed  {p.label}")
        state = "written" if result.written else "unchanged"
        print(f"{result.path}: {state} ({len(result.pins)} models, {len(result.kept)} kept)")
        print_env(result.env)
    require_fresh(result)


def _compression(gzip: bool, zstd: bool) -> bool | str | None:
    if gzip and zstd:
        raise UsageError("--gzip and --zstd: choose one compression")
    return "zstd" if zstd else True if gzip else None  # None: by the output's name


@app.command(short_help="Build a reproducible bundle archive.")
def build(
    target: Optional[str] = typer.Argument(None, metavar="[PATH]", help=_TARGET_HELP),
    output: Optional[str] = typer.Option(
        None, "--output", "-o", metavar="OUT", help="Bundle path (default dist/NAME-VERSION.bundle.tar; .tar.gz or .tar.zst compresses)."
    ),
    locked: bool = typer.Option(False, "--locked", help="Fail (exit 1) if bundler.lock is missing or stale; never re-pin."),
    offline: bool = typer.Option(False, "--offline", help="Never use the network; fail if anything needs pinning."),
    gzip: bool = typer.Option(False, "--gzip", help="Write a .bundle.tar.gz."),
    zstd: bool = typer.Option(False, "--zstd", help="Write a .bundle.tar.zst (zstd on every core; the zstd extra)."),
    embed_hub: bool = typer.Option(
        False, "--embed-hub", help="Pack the Hub models' files too (from the local HF cache), for air-gapped hosts."
    ),
    embed_s3: bool = typer.Option(
        False, "--embed-s3", help="Pack the S3 models' objects too (fetched at build, verified): the deploy host needs no S3 access."
    ),
    as_json: bool = typer.Option(False, "--json", help='Print {"path", "digest", "name", "version"}.'),
    arg: list[str] = typer.Option([], "--arg", metavar="KEY=VALUE", help=_ARG_HELP),
    strict: bool = typer.Option(False, "--strict", help="Fail (exit 1) when a service loads a model it does not declare."),
    allow_secret: list[str] = typer.Option(
        [], "--allow-secret", metavar="PATH|ARG", help="Pack this reviewed source file (or record this build argument) although it looks like it holds a credential; repeatable."
    ),
    list_sources: bool = typer.Option(
        False, "--list-sources", help="Print the files a build would pack and why each other file is left out; build nothing."
    ),
    embed_wheels: bool = typer.Option(
        False, "--embed-wheels", help="Pack every locked Python package file under wheels/ (hash-checked), for air-gapped hosts."
    ),
    python: Optional[str] = _PYTHON_OPT,
    platform: Optional[str] = _PLATFORM_OPT,
    index_url: Optional[str] = _INDEX_OPT,
    find_links: list[str] = _LINKS_OPT,
    no_index: bool = _NO_INDEX_OPT,
    no_env: bool = _NO_ENV_OPT,
    no_deps: bool = _NO_DEPS_OPT,
    no_pickle: bool = _NO_PICKLE_OPT,
    provenance: bool = typer.Option(False, "--provenance", help="Also write BUNDLE.intoto.jsonl: an SLSA v1 provenance statement (signed with --key)."),
    key: Optional[str] = typer.Option(None, "--key", metavar="PRIVATE.pem", help="Sign the provenance with this EC private key (PEM)."),
) -> None:
    """Scan, pin (bundler.lock first), hash and pack a reproducible bundle."""
    from ..ops.build import build as do_build, list_sources as do_list

    if key and not provenance:
        raise UsageError("--key signs the provenance: give --provenance too", hint="to sign the bundle itself: bundler sign BUNDLE --key KEY")
    target = _service_target(target)
    if list_sources:
        _print_selection(do_list(target, output), as_json)
        return
    result = do_build(
        target, output, locked=locked, offline=offline, compress=_compression(gzip, zstd), embed_hub=embed_hub, embed_s3=embed_s3,
        arguments=_arguments(arg), strict=strict, allow_secrets=tuple(allow_secret), embed_wheels=embed_wheels,
        env=_env_options(python, platform, index_url, find_links, no_index, no_env), deps=not no_deps, no_pickle=no_pickle,
    )
    _print_build_notes(result)
    written = _provenance(result.path, key) if provenance else None
    if as_json:
        emit_json({**result.to_json(), **({"provenance": str(written)} if written else {})})
        return
    _print_built(result)
    if written is not None:
        print(f"  provenance {os.path.relpath(written)}" + (" (signed)" if key else ""))


def _provenance(bundle: Any, key: str | None) -> Any:
    from pathlib import Path

    from ..ops.provenance import write

    return write(bundle, Path(key) if key else None)


def _print_built(result: Any) -> None:
    m = result.manifest
    print(
        f"built {os.path.relpath(result.path)}\n"
        f"  name {m.name}  version {m.version}\n"
        f"  digest {result.digest}\n"
        f"  {m.sources_total[0]} source files{f' ({result.unchanged} unchanged since the last build, not read again)' if result.unchanged else ''},"
        f" {len(m.pins)} models, {human_size(result.path.stat().st_size)}"
        + (f"\n  {env.target}: {len(env.packages)} locked packages"
           + (f", {len(env.wheels)} files embedded" if env.wheels else "") if (env := m.environment) else "")
    )


def _print_build_notes(result: Any) -> None:
    """What the scan, the lock and the source selection found worth saying, on stderr."""
    print_findings([result.lock.scan])
    for note in result.lock.notes:
        print(f"warning: {note}", file=sys.stderr)
    for rel in result.selection.credentials:
        print(f"left out: {rel} (a credential file: never packed)", file=sys.stderr)
    for rel, why in result.selection.kept_despite:
        print(f"note: {rel} is always packed (overrides {why})", file=sys.stderr)


def _print_selection(selection: Any, as_json: bool) -> None:
    """``build --list-sources``: the files on stdout, what is left out (and why) on stderr."""
    if as_json:
        emit_json(selection.to_json())
        return
    for rel, _ in selection.files:
        print(rel)
    for rel, why in selection.left_out:
        print(f"left out: {rel}  ({why})", file=sys.stderr)
    for rel, why in selection.kept_despite:
        print(f"always packed: {rel}  (overrides {why})", file=sys.stderr)


@app.command(short_help="Show what a bundle holds; --verify re-hashes it.")
def inspect(
    bundle: str = typer.Argument(..., metavar="BUNDLE", help="A bundle archive, or oci://HOST/REPO:TAG."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest plus its digest as JSON."),
    verify: bool = typer.Option(False, "--verify", help="Re-hash every member; exit 1 on missing, extra or modified ones."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow plain HTTP to a non-loopback registry."),
    token: Optional[str] = typer.Option(None, "--token", envvar="BUNDLER_REGISTRY_TOKEN", help="Registry bearer token.", show_envvar=True),
) -> None:
    """Show what a bundle holds (reads only its manifest); --verify checks every byte."""
    from ..bundle.archive import read_manifest, require_ok, verify as do_verify

    report = None
    referrers = None
    if bundle.startswith("oci://"):  # the OCI client is imported only when it is needed
        from ..oci import registry as oci
        from ..ops.oci_signing import referrers_of

        if verify:
            raise UsageError("--verify needs a local bundle", hint="`bundler pull oci://...` verifies every blob digest")
        manifest = oci.read_manifest(bundle, insecure=insecure, token=token)
        referrers = referrers_of(bundle, insecure=insecure, token=token)
    elif verify:
        manifest, report = do_verify(bundle)
    else:
        manifest = read_manifest(bundle)
    if as_json:
        data = manifest.to_json()
        if report is not None:
            data["verify"] = report.to_json()
        if referrers:  # a pushed bundle's signatures (none: the same JSON as the archive's)
            data["referrers"] = referrers
        emit_json(data)
    else:
        from .render import inspect_table

        inspect_table(manifest, report)
        for r in referrers or []:
            print(f"referrer  {r['digest']}  {r['artifactType']}")
    if report is not None:
        require_ok(bundle, report)


@app.command(short_help="Push a bundle to an OCI registry.")
def push(
    bundle: str = typer.Argument(..., metavar="BUNDLE", help="A bundle archive."),
    target: str = typer.Argument(..., metavar="oci://HOST[:PORT]/REPO[:TAG]", help="Where to push (tag defaults to latest)."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow plain HTTP to a non-loopback registry."),
    token: Optional[str] = typer.Option(None, "--token", envvar="BUNDLER_REGISTRY_TOKEN", help="Registry bearer token.", show_envvar=True),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    tag: list[str] = typer.Option([], "--tag", metavar="TAG", help="Another tag for the same manifest (one upload); repeatable."),
    image: bool = typer.Option(
        False, "--image", help="Push a mountable OCI image (a Kubernetes image volume): the pulled bundle under bundle/ and its Hub files as a Hugging Face cache under hub/, one layer per model file."
    ),
    modelpack: bool = typer.Option(False, "--modelpack", help="Push one model of the bundle as a CNCF ModelPack artifact (reproducible), not the bundle."),
    model: Optional[str] = typer.Option(None, "--model", metavar="ATTR_OR_ID", help="With --modelpack: which model (default: the bundle's only one)."),
    sign: bool = typer.Option(False, "--sign", help="Also sign it (every member's sha256, OMS format) and attach the signature as an OCI referrer."),
    key: Optional[str] = typer.Option(None, "--key", metavar="PRIVATE.pem", help="The EC private key --sign signs with (PEM)."),
    keyless: bool = typer.Option(False, "--keyless", help="--sign as your OIDC identity through Sigstore, not with a key (the `keyless` extra; the network)."),
    identity_token: Optional[str] = _IDENTITY_TOKEN_OPT,
) -> None:
    """Push a bundle to an OCI registry; blobs already there are not uploaded again."""
    from pathlib import Path

    from ..oci.registry import check_tag, push as do_push

    _check_push_options(sign, key is not None or keyless, modelpack, image, model)
    doc = None
    if sign:  # signed before anything is uploaded: a bad key or a damaged bundle pushes nothing
        from ..bundle.archive import read_manifest
        from ..ops.signing import member_digests, signature_doc

        signer = _signer(key, keyless, identity_token)
        signer.check()
        doc = signature_doc(read_manifest(Path(bundle)).name, member_digests(Path(bundle)), signer)
    tags = [check_tag(t) for t in tag]
    if modelpack:
        from ..ops.modelpack import push_modelpack

        result = push_modelpack(bundle, target, model=model, insecure=insecure, token=token, tags=tags)
    elif image:
        from ..ops.image import push_image

        result = push_image(bundle, target, insecure=insecure, token=token, tags=tags)
    else:
        result = do_push(bundle, target, insecure=insecure, token=token, tags=tags)
    signature = None
    if doc is not None:
        from ..oci.registry import Registry
        from ..ops.oci_signing import attach

        signature = attach(Registry(result.ref.host, insecure=insecure, token=token), result.ref, doc)
    if as_json:
        emit_json({**result.to_json(), **({"signature": signature} if signature else {})})
        return
    if signature:
        print(f"signed: the signature is referrer {signature}", file=sys.stderr)
    print(
        f"pushed {result.ref}: uploaded {human_size(result.uploaded)} in {result.blobs_uploaded} blobs, "
        f"skipped {human_size(result.skipped)} in {result.blobs_skipped} blobs already there"
        + (f"; also tagged {', '.join(result.tags)}" if result.tags else ""),
        file=sys.stderr,
    )
    print(result.digest)


def _use_hub_endpoint(url: str) -> None:
    from ..model.pins import ENDPOINT
    from ..settings import use_hf_endpoint

    if not ENDPOINT.match(url):
        raise UsageError("--hub-endpoint must be an http(s) URL without credentials",
                         hint="give the mirror's URL; its token comes from HF_TOKEN or `hf auth login`")
    use_hf_endpoint(url)  # read at call time: this pull's host mirror


def _pull_modelpack(target: str, foreign: Any, *, insecure: bool, token: str | None, as_json: bool) -> None:
    """``pull oci://…`` of an artifact that is not a bundle: a ModelPack one lands in the store."""
    from ..ops.modelpack import is_modelpack, pull_modelpack

    if not is_modelpack(foreign.manifest):
        raise foreign
    tag, path = pull_modelpack(target, insecure=insecure, token=token)
    if as_json:
        emit_json({"modelpack": target, "store_model": tag, "path": str(path)})
    else:
        print(f"{target}: a ModelPack artifact; landed in the model store as {tag} ({path})", file=sys.stderr)


def _check_push_options(sign: bool, signer: bool, modelpack: bool, image: bool, model: str | None) -> None:
    if sign != signer:
        raise UsageError("--sign and --key (or --keyless) go together", hint="bundler push BUNDLE oci://… --sign --key PRIVATE.pem")
    if modelpack and (image or sign):
        raise UsageError("--modelpack pushes one model, not the bundle: without --image or --sign")
    if model is not None and not modelpack:
        raise UsageError("--model names the model --modelpack pushes")


@app.command(short_help="Show what changed between two bundles.")
def diff(
    a: str = typer.Argument(..., metavar="A", help="The old bundle."),
    b: str = typer.Argument(..., metavar="B", help="The new bundle."),
    as_json: bool = typer.Option(False, "--json", help="Print the differences as JSON."),
) -> None:
    """What changed between two bundles; exit 0 when identical, 1 when they differ."""
    from ..bundle.archive import read_manifest
    from ..ops.diff import diff as do_diff, render_text

    d = do_diff(read_manifest(a), read_manifest(b))
    if as_json:
        emit_json(d)
    else:
        from .render import shown

        print("\n".join(shown(line) for line in render_text(d)))
    if not d["identical"]:
        raise typer.Exit(1)


@app.command(short_help="Unpack a bundle, fetch and verify its models.")
def pull(
    bundle: str = typer.Argument(..., metavar="BUNDLE", help="A bundle archive, oci://HOST/REPO:TAG (or @sha256:...), or a directory a pull unpacked (checked and completed in place)."),
    to: Optional[str] = typer.Option(
        None, "--to", metavar="DIR", help="Where to unpack (default: beside the bundle, named after it; ./NAME-VERSION for oci://)."
    ),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", metavar="DIR", help="Hugging Face cache (default: HF_HUB_CACHE / HF_HOME)."),
    jobs: int = typer.Option(8, "--jobs", "-j", min=1, max=64, help="Files downloaded at once."),
    verify_only: bool = typer.Option(False, "--verify-only", help="Download nothing; re-hash what is on this host."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow plain HTTP to a non-loopback registry."),
    token: Optional[str] = typer.Option(None, "--token", envvar="BUNDLER_REGISTRY_TOKEN", help="Registry bearer token.", show_envvar=True),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    env: bool = typer.Option(False, "--env", help="Also install the locked Python packages into DIR/.venv (see `bundler env`)."),
    service: Optional[str] = typer.Option(None, "--service", metavar="NAME", help="Only the models of this service and of the services it depends on."),
    model: Optional[str] = typer.Option(None, "--model", metavar="ATTR_OR_ID", help="Only this model (a service attribute or a model id)."),
    require_signature: bool = typer.Option(False, "--require-signature", help=_REQUIRE_HELP),
    key: Optional[str] = typer.Option(None, "--key", metavar="PUB.pem", help="The public key a required signature must match."),
    identity: Optional[str] = _IDENTITY_OPT,
    issuer: Optional[str] = _ISSUER_OPT,
    sigstore_offline: bool = _OFFLINE_TRUST_OPT,
    no_pickle: bool = typer.Option(False, "--no-pickle", help="Refuse a Hub file that is pickle by its content (whatever its name), before it enters the cache."),
    hub_endpoint: Optional[str] = typer.Option(
        None, "--hub-endpoint", metavar="URL", help="Fetch Hub files from this mirror (as HF_ENDPOINT does), over the endpoint a pin records; commits and hashes are checked the same."
    ),
) -> None:
    """Make a bundle ready to serve: unpack it, fetch its pinned Hub files, verify every one.

    The directory is also a bento: `HF_HUB_OFFLINE=1 bentoml serve DIR` loads exactly the pins.
    A CNCF ModelPack artifact (oci://) lands in the local model store instead, as NAME:VERSION
    from its config, every layer checked against its digest."""
    from ..oci.registry import ForeignArtifact
    from ..ops.pull import pull as do_pull, require_ok
    from .render import PullProgress

    if hub_endpoint is not None:
        _use_hub_endpoint(hub_endpoint)
    try:
        with PullProgress(enabled=not as_json) as progress:
            result = do_pull(
                bundle, to=to, cache_dir=cache_dir, jobs=jobs, verify_only=verify_only, progress=progress, insecure=insecure, token=token,
                service=service, model=model, signed_by=_signed_by(require_signature, _trust(key, identity, issuer, offline=sigstore_offline)), no_pickle=no_pickle,
            )
    except ForeignArtifact as e:
        if to is not None or verify_only:
            raise
        _pull_modelpack(bundle, e, insecure=insecure, token=token, as_json=as_json)
        return
    installed = None
    if env and not result.failures:
        from ..ops.venv import ensure_env

        installed = ensure_env(result.dest)
    if as_json:
        emit_json({**result.to_json(), "environment": installed.to_json() if installed else None})
    else:
        print(f"{result.dest}: {pull_summary(result, verify_only)}", file=sys.stderr)
        if service or model:
            print(f"{result.dest}: runnable services: {', '.join(result.services) or 'none complete'}", file=sys.stderr)
        if installed:
            _print_env_install(installed, False)
    require_ok(result)


@app.command(short_help="Sign a bundle (OpenSSF model-signing format; a key or keyless).")
def sign(
    bundle: str = typer.Argument(..., metavar="BUNDLE|oci://…", help="A bundle archive, or a pushed bundle."),
    key: Optional[str] = typer.Option(None, "--key", metavar="PRIVATE.pem", help="An elliptic-curve private key (P-256, P-384, P-521), PEM."),
    keyless: bool = typer.Option(
        False, "--keyless", help="Sign as your OIDC identity through Sigstore (Fulcio certificate, Rekor log entry), with no key to keep; needs the network and the `keyless` extra."
    ),
    identity_token: Optional[str] = _IDENTITY_TOKEN_OPT,
    staging: bool = _STAGING_OPT,
    sigstore_config: Optional[str] = _SIGSTORE_CONFIG_OPT,
    output: Optional[str] = typer.Option(None, "--output", "-o", metavar="SIG", help="Where to write the signature (default BUNDLE.sig)."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow plain HTTP to a non-loopback registry."),
    token: Optional[str] = typer.Option(None, "--token", envvar="BUNDLER_REGISTRY_TOKEN", help="Registry bearer token.", show_envvar=True),
) -> None:
    """Sign every member of BUNDLE (its sha256, named by its path) in the OpenSSF Model Signing
    format v1.0: `model_signing verify key DIR --signature SIG --public_key PUB.pem` (or `verify
    sigstore … --identity ID --identity_provider URL` for --keyless) accepts it on the directory
    `tar xf BUNDLE -C DIR` gives. The bundle is checked against its manifest in the same read. A
    pushed bundle (oci://) is signed in the registry: the signature is attached to its manifest as
    an OCI 1.1 referrer (the tag schema's sha256-<hex> tag where the registry has no referrers API);
    no weight bytes are read. Needs the `sign` extra (cryptography), and `keyless` for --keyless."""
    from pathlib import Path

    from ..ops.signing import sign as do_sign

    signer = _signer(key, keyless, identity_token, staging=staging, config=sigstore_config)
    if bundle.startswith("oci://"):
        from ..ops.oci_signing import sign_pushed

        if output is not None:
            raise UsageError("-o names a signature file; a pushed bundle's signature is attached in the registry")
        print(sign_pushed(bundle, signer, insecure=insecure, token=token))
        return

    target = do_sign(Path(bundle), signer, Path(output) if output else None)
    print(target)


@app.command(short_help="Check a bundle's signature and every byte of it.")
def verify(
    bundle: str = typer.Argument(..., metavar="BUNDLE|DIR|oci://…", help="A bundle archive, a directory a pull made (with --signature), or a pushed bundle (its referrers)."),
    key: Optional[str] = typer.Option(None, "--key", metavar="PUB.pem", help="The signer's public key, PEM."),
    identity: Optional[str] = _IDENTITY_OPT,
    issuer: Optional[str] = _ISSUER_OPT,
    sigstore_offline: bool = _OFFLINE_TRUST_OPT,
    staging: bool = _STAGING_OPT,
    sigstore_config: Optional[str] = _SIGSTORE_CONFIG_OPT,
    signature: Optional[str] = typer.Option(None, "--signature", metavar="SIG", help="The signature (default BUNDLE.sig)."),
    rebuild: Optional[str] = typer.Option(
        None, "--rebuild", metavar="SRC_DIR", help="Rebuild the bundle from this checkout (offline, its own lock, the bundle's arguments) and compare digests."
    ),
) -> None:
    """Exit 0 when the signature was made with KEY (or, keyless, by --identity as --issuer
    vouched, checked against Sigstore's trust root) and every member of BUNDLE is what it signed,
    and (--rebuild) when the checkout builds to the same digest; exit 1 naming the key or identity
    that does not match, the first file that differs, or what the rebuild changed."""
    from pathlib import Path

    trust = _trust(key, identity, issuer, offline=sigstore_offline, staging=staging, config=sigstore_config)
    if trust is None and rebuild is None:
        raise UsageError("give --key or --identity/--issuer (check the signature), --rebuild SRC_DIR (build it again), or both")
    if trust is not None and bundle.startswith("oci://"):
        from ..ops.oci_signing import verify_pushed

        count = verify_pushed(bundle, trust)
        print(f"verified: {count} files signed by {trust.label} (bundle.yaml and every file layer; the pull checks each member against them)", file=sys.stderr)
    elif trust is not None:
        from ..ops.signing import verify as do_verify

        count = do_verify(Path(bundle), trust, Path(signature) if signature else None)
        print(f"verified: {count} files signed by {trust.label}", file=sys.stderr)
    if rebuild is not None:
        from ..ops.provenance import rebuild as do_rebuild

        result = do_rebuild(Path(bundle), Path(rebuild))
        print(f"rebuilt: {rebuild} builds to {result.rebuilt}, the bundle's digest", file=sys.stderr)


@app.command(short_help="Print a CycloneDX 1.6 SBOM of a bundle (byte-stable).")
def sbom(
    target: str = typer.Argument(..., metavar="BUNDLE|DIR|oci://…", help="A bundle archive, a pulled directory, or a pushed bundle."),
) -> None:
    """A CycloneDX 1.6 JSON SBOM on stdout: each model (machine-learning-model, with a
    pkg:huggingface purl at its commit) and its files' hashes, every locked Python package
    (pkg:pypi) with its file's sha256, every source with its BLAKE3. The same bundle gives the same
    bytes (no random serial number; the time is SOURCE_DATE_EPOCH or 1980-01-01). Needs the `sbom`
    extra (cyclonedx-python-lib)."""
    from ..ops.sbom import sbom as do_sbom

    sys.stdout.write(do_sbom(target))


@app.command(short_help="Show which pins moved since the lock (exit 1 when any did).")
def outdated(
    target: Optional[str] = typer.Argument(None, metavar="[PATH]", help=_TARGET_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    packages: bool = typer.Option(False, "--packages", help="Also resolve the locked Python requirements afresh (uv, the index) and list the packages that would move."),
    index_url: Optional[str] = _INDEX_OPT,
    find_links: list[str] = _LINKS_OPT,
    no_index: bool = _NO_INDEX_OPT,
) -> None:
    """For each pin of bundler.lock: the revision it was locked from, where that revision points
    now (a Hub branch or tag, a store's `latest`) and which files that changes; with --packages,
    the locked Python packages a fresh resolution would move. Writes nothing. Exit 0 when nothing
    moved, 1 when something did (for a scheduled CI job); a revision that is a commit cannot move."""
    from ..ops.outdated import outdated as do_outdated

    env = _env_options(None, None, index_url, find_links, no_index, False) if packages else None
    result = do_outdated(_service_target(target), env)
    if as_json:
        emit_json(result.to_json())
    else:
        for m in result.models:
            d = m.to_json()
            if not m.moved:
                print(f"current  {m.pin.label} ({str(d['pinned'])[:12]})")
                continue
            print(f"moved    {m.pin.label}: {str(d['pinned'])[:12]} -> {str(d['current'])[:12]}")
            for line in [f"    + {p}" for p in m.added] + [f"    - {p}" for p in m.removed] + [f"    ~ {p}" for p in m.changed]:
                print(line)
        for line in result.packages or []:
            print(f"package  {line}")
        print(f"{result.lock}: {len(result.moved)} of {len(result.models)} pins moved"
              + (f", {len(result.packages)} package(s) would move" if result.packages is not None else ""), file=sys.stderr)
    if result.any_moved:
        raise typer.Exit(1)


@app.command(short_help="Load a pulled bundle's entry service (offline).")
def run(
    bundle_dir: str = typer.Argument(..., metavar="BUNDLE_DIR", help="An unpacked bundle (what `bundler pull` made)."),
    check: bool = typer.Option(False, "--check", help="Only prove it loads: import, instantiate, resolve, exit."),
    verify: bool = typer.Option(False, "--verify", help="Re-hash every byte of every pinned file first (default: trust a file whose stamp from its last full hash still holds)."),
    no_import: bool = typer.Option(False, "--no-import", help="Check and resolve every model without importing the service (no torch loaded)."),
    audit: bool = typer.Option(False, "--audit", help="Record every Hub look-up the import and instance make (offline); one outside the pins fails (exit 1), with its call site."),
) -> None:
    """Check every pinned model file, then import the bundle's entry service, instantiate it and
    resolve its models offline, from any working directory (the import runs in BUNDLE_DIR/src,
    as `bentoml serve DIR` does).

    Every pinned file of every model, whichever descriptor declares it, must be present and
    unchanged first: by default a file whose size, mtime, ctime and inode still match the stamp
    its last full hash (a pull) left is trusted, any write breaks the stamp and the file is
    re-hashed; --verify re-hashes everything. A missing or modified file is exit 1, naming the
    model and the file: run `bundler pull` again.

    Serving itself is the framework's job (BentoML, a plain script): this proves that a worker
    started from the bundle will find every model. When `bundler env` made BUNDLE_DIR/.venv, it
    runs in that interpreter, with exactly the locked packages.
    """
    from pathlib import Path

    from ..ops.venv import venv_python
    from ..ops.run import report, run_in_venv

    python = venv_python(Path(bundle_dir))
    if python is not None and Path(sys.prefix).resolve() != python.parent.parent.resolve():
        raise typer.Exit(run_in_venv(bundle_dir, python, check, verify=verify, no_import=no_import, audit=audit))
    report(bundle_dir, check, verify=verify, no_import=no_import, audit=audit)


@app.command("env", short_help="Install a pulled bundle's locked Python packages into DIR/.venv.")
def env_cmd(
    bundle_dir: str = typer.Argument(..., metavar="BUNDLE_DIR", help="An unpacked bundle (what `bundler pull` made)."),
    offline: bool = typer.Option(False, "--offline", help="No network: only the bundle's embedded files or uv's cache."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create BUNDLE_DIR/.venv with exactly the locked packages (uv, every hash enforced).

    From the bundle's embedded files (`build --embed-wheels`) with no network, else from the
    locked URLs. Environments are shared: BUNDLE_DIR/.venv links to $BUNDLER_HOME/envs/<key>
    (the lock's sha256, Python and platform), so a bundle whose lock another one installed
    already is linked, not installed. `bundler run DIR` then runs inside it."""
    from ..ops.venv import ensure_env

    _print_env_install(ensure_env(bundle_dir, offline=offline), as_json)


@app.command("gc", short_help="Free what no pulled bundle on this host uses.")
def gc_cmd(
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be removed and how much it frees; remove nothing."),
    as_json: bool = typer.Option(False, "--json", help='Print {"dry_run", "live", "freed": [{"what", "name", "path", "bytes"}], "bytes"}.'),
) -> None:
    """Free what no pulled bundle on this host uses: shared environments ($BUNDLER_HOME/envs), cached
    S3 and OCI models, and the store models and Hub revisions a pull placed (never what you put
    there yourself). A pulled bundle is in use while its folder holds its bundle.yaml. Also the
    build source caches ($BUNDLER_HOME/cache/sources) of projects whose folder is gone."""
    from ..ops.gc import gc

    result = gc(dry_run=dry_run)
    if as_json:
        emit_json(result.to_json())
        return
    verb = "would remove" if dry_run else "removed"
    for f in result.freed:
        print(f"{verb} {f.what} {f.name} ({human_size(f.bytes)})" + (f": {f.path}" if f.what != "record" else ": its folder is gone"))
    print(f"{'would free' if dry_run else 'freed'} {human_size(result.total)}; {len(result.live)} pulled bundle(s) in use", file=sys.stderr)


def _print_env_install(result: Any, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_json())
    elif result.installed:
        how = "from the bundle's embedded files, no network" if result.offline else "from the locked URLs"
        print(f"{result.venv}: installed {result.packages} locked packages ({how}) in {result.env}", file=sys.stderr)
    elif result.linked:
        print(f"{result.venv}: linked to {result.env}, which holds this lock's {result.packages} packages already; nothing installed",
              file=sys.stderr)
    else:
        print(f"{result.venv}: up to date ({result.packages} locked packages); nothing to do", file=sys.stderr)


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

    from ..stores.local import Store

    model = Store().import_dir(tag, Path(directory))
    if as_json:
        emit_json(model.to_json())
    else:
        print(f"imported {model.tag} ({len(model.files)} files, {human_size(model.size)})")


@models_app.command("list")
def models_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """List stored models; `latest` marks the version that `name:latest` resolves to."""
    from ..stores.local import Store

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
    from ..stores.local import Store

    emit_json(Store().get(tag).to_json())


@models_app.command("delete")
def models_delete(tag: str = typer.Argument(..., metavar="NAME[:VERSION]")) -> None:
    """Delete a stored model version."""
    from ..stores.local import Store

    model = Store().delete(tag)
    print(f"deleted {model.tag}")


class Interrupted(BaseException):
    """Ctrl-C, raised in the main thread wherever it is. Not a KeyboardInterrupt, which the CLI
    framework turns into a bare "Aborted!" (exit 1); not an Exception either, so no ``except
    Exception`` on the way (a fallback, a per-file report) takes it for a failure. One such was
    ``Thread.start()``'s own: interrupted while a hash thread started, it dropped the thread from
    threading's books, and its bootstrap printed a KeyError above the message."""

    exit_code = 130
    message = "interrupted; no output was half-written (temporary files are removed now, or by the next run)"


def _interrupted(signum: int, frame: Any) -> None:
    raise Interrupted()


def _app_for(argv: list[str]) -> typer.Typer:
    """The app with only the command ``argv`` names registered: typer builds every registered
    command's parameters (type hints, signatures) before it parses, 10-15 ms of each start for
    commands that will not run. Anything else (no command, as in ``bundler --help``, or an
    unknown one) gets the whole app, so listings, suggestions and errors are typer's own.
    The command is the first word that is not an option: no option of ``_main`` takes a value
    (a test checks it; one that did would need skipping here)."""
    from typer.main import get_command_name  # loaded by typer already

    name = next((a for a in argv if not a.startswith("-")), None)
    cmds = [c for c in app.registered_commands if (c.name or get_command_name(getattr(c.callback, "__name__", ""))) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if name is None or not (cmds or groups):
        return app
    one = copy.copy(app)
    one.registered_commands, one.registered_groups = cmds, groups
    return one


def main() -> None:
    import signal

    signal.signal(signal.SIGINT, _interrupted)
    from ..notes import print_notes_on_stderr

    print_notes_on_stderr()
    try:
        _app_for(sys.argv[1:])()
    except BundlerError as e:
        if _debug:
            traceback.print_exc()
        render_error(e)
        sys.exit(e.exit_code)
    except Interrupted as e:
        if _debug:
            traceback.print_exc()
        print(f"error: {e.message}", file=sys.stderr)
        _json_failure(e.message, None, e.exit_code)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        _json_failure("interrupted", None, 130)
        sys.exit(130)
    except OSError as e:
        # The machine said no (disk full, read-only, permission): one line, not a traceback.
        if _debug:
            traceback.print_exc()
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        import errno

        hint = None
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = "free some space (or point the output, BUNDLER_HOME or the cache elsewhere) and run it again"
        elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "check the permissions of that path, or choose another"
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        _json_failure(f"{where}{e.strerror or e}", hint, 1)
        sys.exit(1)
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        _json_failure("out of memory", None, 1)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
