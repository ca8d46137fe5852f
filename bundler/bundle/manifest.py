"""``bundle.yaml``: the bundle's manifest, its YAML form and its canonical digest.

The digest is the blake3 of the canonical bytes of every manifest field except ``version``
(sorted-key compact JSON): it names the content, and the version, a label, defaults to its prefix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from operator import itemgetter
from typing import Any

from ..errors import UsageError
from ..model.jsontext import canonical_json, json_text
from ..model.plain import plain
from ..kinds import check_pin, get as kind
from ..model.layout import HUB_PREFIX, SOURCE_PREFIX, WHEEL_PREFIX
from ..model.pins import FileEntry, Pin, check_hash, key_of, safe_name, safe_path, safe_paths

#: 2: bundler's store models moved to ``store/`` so that ``models/`` is BentoML's model-store
#: layout (``bentoml serve DIR`` reads it); 3: ``environment`` (the locked Python packages,
#: embedded files under ``wheels/``); 4: ``argument_origins`` (every build argument is recorded,
#: defaults included, with where it came from); 5: an object store's ``version_id`` and ``etag``
#: on a model's files (S3 models); 6: ``sha256`` beside the git blob id of a Hub file the Hub
#: pins only by that SHA-1; 7: ``format`` on a carried model file (what its bytes are:
#: safetensors, pickle, ...). Older schemas are still read, and a build writes the oldest
#: schema that holds its content (``schema_for``), so older readers keep reading it.
SCHEMA = 7
VERSION_LENGTH = 12


def schema_for(data: dict[str, Any]) -> int:
    """The oldest schema that can hold ``data``."""
    models = data.get("models", [])
    if any("format" in f for m in models for f in m.get("files", [])):
        return 7
    if any("sha256" in f for m in models for f in m.get("files", [])):
        return 6
    if any("version_id" in f or "etag" in f for m in models for f in m.get("files", [])):
        return 5
    needs = "argument_origins" in data or "python" in (data.get("settings") or {})
    return 4 if needs or any("required_by" in m or "endpoint" in m for m in data.get("models", [])) else 3


#: The origin of an argument handed to ``use_arguments`` by nobody: the field's own default.
DEFAULT_ORIGIN = "default"


def pin_to_dict(p: Pin, *, embedded: bool = False, schema: int = SCHEMA) -> dict[str, Any]:
    """A model entry: the pin, where its files are in the bundle, whether they travel in it."""
    extra: dict[str, Any] = {}
    k = kind(p.source)
    if (where := k.bundle_dir(p, schema)) is not None and (embedded or not k.fetched):
        extra["path"] = where
    if embedded:
        extra["embedded"] = True
    return p.to_dict(extra)


def hub_model_dir(p: Pin) -> str:
    """Where a Hub model's files live inside a bundle built with ``--embed-hub``."""
    return f"{HUB_PREFIX}{p.id}/{p.commit}"


@dataclass(frozen=True)
class ServiceModel:
    """A descriptor a service declares: its attribute and the reference (a pin's key)."""

    attribute: str
    source: str
    id: str
    revision: str | None = None
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None

    @property
    def key(self) -> tuple:
        return key_of(self.source, self.id, self.revision, self.include, self.exclude)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"attribute": self.attribute, "source": self.source, "id": self.id}
        for key in ("revision", "include", "exclude"):
            if (value := getattr(self, key)) is not None:
                d[key] = list(value) if isinstance(value, tuple) else value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServiceModel:
        t = lambda v: tuple(v) if v is not None else None  # noqa: E731 - validated by _check_services
        return cls(d["attribute"], d["source"], d["id"], d.get("revision"), t(d.get("include")), t(d.get("exclude")))


@dataclass(frozen=True)
class ServiceEntry:
    """A service of the bundle: its name, class, module, file, resources, the services it
    depends on and the models it declares."""

    name: str
    cls: str
    module: str
    file: str
    models: tuple[ServiceModel, ...] = ()
    resources: dict[str, Any] = field(default_factory=dict)
    depends: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "class": self.cls, "module": self.module, "file": self.file, "resources": self.resources,
                "depends": list(self.depends), "models": [m.to_dict() for m in self.models]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServiceEntry:
        return cls(d["name"], d["class"], d["module"], d["file"], tuple(ServiceModel.from_dict(m) for m in d["models"]),
                   dict(d.get("resources") or {}), tuple(d.get("depends", [])))

    @property
    def keys(self) -> set[tuple]:
        """The keys of the pins this service's own models need."""
        return {m.key for m in self.models}


@dataclass(frozen=True)
class Environment:
    """The locked Python environment: its ``pylock.toml`` (path under ``src/`` and sha256), the
    target it was resolved for, every package's version and, when embedded, the files under ``wheels/``."""

    lock: str
    sha256: str
    python: str
    platform: str
    packages: dict[str, str]
    wheels: tuple[FileEntry, ...] = ()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Environment:  # validated by _check_environment
        return cls(d["lock"], d["sha256"], d["python"], d["platform"], dict(d["packages"]),
                   tuple(FileEntry(w["path"], w["size"], w["hash"]) for w in d.get("wheels", [])))

    @property
    def target(self) -> str:
        return f"Python {self.python} on {self.platform}"


@dataclass(frozen=True)
class Manifest:
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def schema(self) -> int:
        return self.data["schema"]

    def model_dir(self, p: Pin) -> str | None:
        """Where a model's files are in this bundle (None: a Hub model's, or a fetched kind's
        not embedded, are not packed)."""
        k = kind(p.source)
        if k.fetched and p.key not in self._embedded:
            return None
        return k.bundle_dir(p, self.schema)

    @cached_property
    def _embedded(self) -> set[tuple]:
        return {p.key for m, p in zip(self.data.get("models", []), self.pins) if m.get("embedded")}

    @property
    def version(self) -> str:
        return self.data["version"]

    @property
    def entrypoint(self) -> str | None:
        """``file.py:Class`` of the service the bundle runs (None in a bundle that records none)."""
        return self.data.get("entrypoint")

    @cached_property
    def services(self) -> list[ServiceEntry]:
        return [ServiceEntry.from_dict(s) for s in self.data.get("services", [])]

    @property
    def entry_service(self) -> ServiceEntry | None:
        """The service the entry point names."""
        cls = (self.entrypoint or "").rpartition(":")[2]
        return next((s for s in self.services if s.cls == cls), None)

    @property
    def requirements(self) -> list[str]:
        return list(self.data.get("requirements", []))

    @property
    def python(self) -> str | None:
        """``requires-python`` as the project gave it."""
        return self.data.get("python")

    @property
    def settings(self) -> dict[str, str]:
        """Each project setting the build used, and the file it came from."""
        return dict(self.data.get("settings") or {})

    @cached_property
    def digest(self) -> str:
        return digest_of(self.data)

    @cached_property
    def pins(self) -> list[Pin]:
        return [Pin.from_dict(m) for m in self.data.get("models", [])]

    @property
    def embedded_hub(self) -> list[Pin]:
        """The Hub models whose files travel inside the bundle (built with ``--embed-hub``)."""
        return [p for m, p in zip(self.data.get("models", []), self.pins) if m.get("embedded") and kind(p.source).hub]

    @property
    def sources_total(self) -> tuple[int, int]:
        """How many source files, and their bytes (from the raw entries: no object per file)."""
        src = self.data.get("sources", [])
        return len(src), sum(f["size"] for f in src)

    @cached_property
    def sources(self) -> list[FileEntry]:
        return [FileEntry(f["path"], int(f["size"]), f["hash"]) for f in self.data.get("sources", [])]

    def members(self, sources: bool = True) -> dict[str, FileEntry]:
        """Every archive member but the manifest (with ``sources``, or all but the sources), with
        its expected size and hash."""
        out = {SOURCE_PREFIX + f.path: f for f in self.sources} if sources else {}
        for p in self.pins:
            if (base := self.model_dir(p)) is not None:
                for f in p.files:
                    out[f"{base}/{f.path}"] = f
        for p in self.embedded_hub:
            base = hub_model_dir(p)
            for f in p.files:
                out[f"{base}/{f.path}"] = f
        for w in self.environment.wheels if self.environment else ():
            out[WHEEL_PREFIX + w.path] = w
        return out

    def expected_members(self) -> dict[str, tuple[int, str]]:
        """``members()`` as (size, hash) only: what a check of every byte needs, with the sources
        (the many) taken from their validated entries a column at a time."""
        src = self.data.get("sources", [])
        paths, sizes, hashes = (map(itemgetter(k), src) for k in ("path", "size", "hash"))
        out = dict(zip(map(SOURCE_PREFIX.__add__, paths), zip(sizes, hashes)))
        out.update((name, (f.size, f.hash)) for name, f in self.members(sources=False).items())
        return out

    @property
    def arguments(self) -> dict[str, Any]:
        """Every recorded build argument: what ``use_arguments`` sees, defaults included."""
        return dict(self.data.get("arguments") or {})

    @property
    def argument_origins(self) -> dict[str, str]:
        """Where each argument came from (``--arg``, the bentofile, ``default``); a bundle older
        than schema 4 recorded only given arguments."""
        given = self.data.get("argument_origins")
        return dict(given) if given is not None else {k: "given" for k in self.arguments}

    @property
    def given_arguments(self) -> dict[str, Any]:
        """The arguments to hand to ``use_arguments`` (and to write as bento.yaml's ``args``):
        the given ones. A default stays the field's own: handing it over would run the model's
        validators on it, which BentoML never does."""
        origins = self.argument_origins
        return {k: v for k, v in self.arguments.items() if origins.get(k) != DEFAULT_ORIGIN}

    @cached_property
    def environment(self) -> Environment | None:
        """The locked Python environment, when the bundle records one."""
        env = self.data.get("environment")
        return Environment.from_dict(env) if env is not None else None

    def to_yaml(self) -> bytes:
        """The ``bundle.yaml`` bytes: JSON text, which is YAML too (any YAML reader reads it),
        indented for reading, with each file entry on one line (``jsontext.json_text``):
        20,000 sources take milliseconds (a pure-Python YAML emitter took seconds, and ``indent``
        turns off the C encoder), and the bytes never depend on how PyYAML was installed."""
        return (json_text(self.data, 1) + "\n").encode("utf-8")

    def to_json(self) -> dict[str, Any]:
        return {**self.data, "digest": self.digest, "bundle_digest": self.digest}


_FILE_KEYS = {"path", "size", "hash"}
_BLAKE3 = re.compile(r"blake3:[0-9a-f]{64}\Z")
def digest_of(data: dict[str, Any]) -> str:
    from ..io.hashing import blake3_bytes

    content = {k: v for k, v in data.items() if k != "version"}
    return blake3_bytes(canonical_json(content).encode("utf-8"))


#: A manifest is small (names, pins, hashes); a bigger one is hostile or broken.
MAX_MANIFEST_BYTES = 64 << 20


def loads(raw: bytes, shown: str) -> Manifest:
    """Parse and strictly validate an untrusted ``bundle.yaml``: types, ranges, required and
    unknown fields, and every value that later becomes a path."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise UsageError(f"{shown}: the manifest is {len(raw)} bytes, over the {MAX_MANIFEST_BYTES >> 20} MiB limit")
    is_json = re.match(rb"\s*\{", raw) is not None  # what bundler writes: JSON text
    try:
        if is_json:  # read by the C parser
            data = json.loads(raw, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
        else:  # YAML (schema 1 bundles, hand-written manifests): libyaml's loader when present
            data = _load_yaml(raw)
    except ValueError as e:  # yaml.YAMLError is raised as one too (see _load_yaml)
        raise UsageError(f"{shown}: the manifest is not valid YAML or JSON: {_one_line(e)}") from None
    except RecursionError:
        raise UsageError(f"{shown}: the manifest is nested too deeply") from None
    if not isinstance(data, dict) or "schema" not in data:
        raise UsageError(f"{shown}: bundle.yaml is not a bundler manifest")
    if not is_json:
        _refuse_shared(data, shown)  # only YAML has aliases; JSON objects are never shared
    # A lone surrogate (an escape, or UTF-8 bytes json.loads lets through) would only fail later,
    # when a path or the digest is encoded. Only an escape or a 0xED byte can carry one.
    if not is_json or b"\\u" in raw or b"\xed" in raw:
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"{shown}: the manifest is not valid unicode (it holds a lone surrogate)") from None
        except (TypeError, ValueError, RecursionError):
            pass  # not JSON-shaped: the schema check names what is wrong
    schema = data["schema"]
    if type(schema) is not int or schema < 1:
        raise UsageError(f"{shown}: manifest schema {schema!r} is not a schema version")
    if schema > SCHEMA:
        raise UsageError(
            f"{shown}: manifest schema {schema!r} is newer than this bundler understands ({SCHEMA})",
            hint="upgrade bundler",
        )
    try:
        _check_schema(data)
        m = Manifest(data)
        _validate(m)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UsageError(f"{shown}: the manifest is malformed or unsafe: {e}") from None
    return m


def _load_yaml(raw: bytes) -> Any:
    """Imported only here: a bundle's own venv (``bundler run``) need not have PyYAML."""
    import yaml

    try:
        return yaml.load(raw, Loader=_loader())  # noqa: S506 - a safe loader without implicit types
    except yaml.YAMLError as e:
        raise ValueError(_one_line(e)) from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # in C; the loop below runs only when a key was dropped (called per object)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"the key {k!r} appears twice")
            seen.add(k)
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a manifest value")


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def _refuse_shared(data: Any, shown: str) -> None:
    """Refuse YAML aliases (bundler never writes them): a loaded alias is a container reached
    twice, and an alias bomb is cheap only until something walks it. Stops at the first repeat."""
    seen: set[int] = set()
    stack = [data]
    while stack:
        v = stack.pop()
        if isinstance(v, (dict, list)):
            if id(v) in seen:
                raise UsageError(f"{shown}: the manifest uses YAML aliases, which bundler never writes")
            seen.add(id(v))
            stack.extend(v.values() if isinstance(v, dict) else v)


_LOADER: Any = None


def _loader() -> Any:
    """A safe loader that keeps every scalar a bundler manifest can hold as str/int/bool/None.

    SafeLoader would turn ``2024-01-01`` into a date and accept ``!!binary`` and ``!!set``;
    none of those are manifest values, so they stay strings or are refused by the schema check.
    """
    global _LOADER
    if _LOADER is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class Loader(base):  # type: ignore[misc, valid-type]
            pass

        Loader.yaml_implicit_resolvers = {
            k: [(tag, rx) for tag, rx in v if tag.endswith((":int", ":bool", ":null", ":str"))]
            for k, v in base.yaml_implicit_resolvers.items()
        }
        for tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary", "tag:yaml.org,2002:set",
                    "tag:yaml.org,2002:float", "tag:yaml.org,2002:omap", "tag:yaml.org,2002:pairs"):
            Loader.add_constructor(tag, Loader.construct_undefined)
        _LOADER = Loader
    return _LOADER


def _str(v: Any, what: str) -> str:
    if type(v) is not str:
        raise TypeError(f"{what} must be a string, not {v!r}"[:200])
    return v


def _strs(v: Any, what: str) -> list[str]:
    if type(v) is not list:
        raise TypeError(f"{what} must be a list of strings")
    for x in v:
        _str(x, what)
    return v


def _keys(d: Any, what: str, required: set[str], optional: set[str]) -> dict[str, Any]:
    if type(d) is not dict:
        raise TypeError(f"{what} must be a mapping")
    for k in d:
        if type(k) is not str:
            raise TypeError(f"{what}: key {k!r} is not a string")
    missing = required - d.keys()
    if missing:
        raise KeyError(f"{what} has no `{sorted(missing)[0]}`")
    unknown = d.keys() - required - optional
    if unknown:
        raise ValueError(f"{what}: unknown field `{sorted(unknown)[0]}` for schema {SCHEMA}")
    return d


def _files(v: Any, what: str, optional: frozenset[str] = frozenset(), sources: bool = False) -> None:
    """A list of file entries; ``sources``: also a safe path and a blake3 hash each (one pass over
    what can be 20,000 entries)."""
    if type(v) is not list:
        raise TypeError(f"{what} must be a list")
    if sources and (plain := _plain_sources(v)) is not None:
        safe_paths(plain)
        return
    seen: set[str] = set()
    paths: list[str] = []
    for f in v:
        if type(f) is not dict or f.keys() != _FILE_KEYS:  # the common case costs one comparison
            _keys(f, what, {"path", "size", "hash"}, set(optional))
        path, size, hash_ = f["path"], f["size"], f["hash"]
        if type(path) is not str:
            _str(path, f"{what} path")
        if type(size) is not int or size < 0:
            raise ValueError(f"{what} {path!r}: size {size!r} is not a byte count")
        if type(hash_) is not str:
            _str(hash_, f"{what} {path!r} hash")
        if path in seen:
            raise ValueError(f"{what}: {path!r} is listed twice")
        seen.add(path)
        if sources:
            paths.append(path)
            if not _BLAKE3.match(hash_):
                raise ValueError(f"bad hash {hash_!r} for {path!r}")
    if sources:
        safe_paths(paths)


def _plain_sources(v: list[Any]) -> list[str] | None:
    """The paths of a source list that is what bundler writes (three fields of the right types,
    no path twice, blake3 hashes), checked a column at a time by C loops (``map``, ``set``, string
    methods; a Python loop over 20,000 entries costs several times more). The entry-by-entry
    loop runs instead (and names the bad entry) when this returns None."""
    if not v:
        return []
    if set(map(type, v)) != {dict} or set(map(len, v)) != {3}:
        return None
    try:
        paths, sizes, hashes = (list(map(itemgetter(k), v)) for k in ("path", "size", "hash"))
    except KeyError:
        return None
    if set(map(type, paths)) != {str} or set(map(type, sizes)) != {int} or min(sizes) < 0:
        return None
    if set(map(type, hashes)) != {str} or set(map(len, hashes)) != {71}:
        return None
    # Every hash is "blake3:" + 64 characters: the prefix's letters are at the same offsets of the
    # joined column; with the prefixes taken out, 64 per hash must be left (a tail holding
    # "blake3:" would lose 7 more) and all of them lowercase hex.
    joined = "".join(hashes)
    if not joined.isascii() or any(joined[i::71] != c * len(hashes) for i, c in enumerate("blake3:")):
        return None
    tails = joined.replace("blake3:", "")
    if len(tails) != 64 * len(hashes) or tails.encode("ascii").translate(None, b"0123456789abcdef"):
        return None
    if len(set(paths)) != len(paths):
        return None
    return paths


def _check_schema(d: dict[str, Any]) -> None:
    _keys(d, "the manifest", {"schema", "name", "version", "models", "sources"},
          {"entrypoint", "python", "requirements", "services", "arguments", "argument_origins", "settings", "environment"})
    safe_name(_str(d["name"], "name"), "bundle name")
    safe_name(_str(d["version"], "version"), "bundle version")
    if "entrypoint" in d:
        entry = _str(d["entrypoint"], "entrypoint")
        file, sep, cls = entry.rpartition(":")
        safe_path(file)
        if not sep or not cls.isidentifier():
            raise ValueError(f"entrypoint {entry!r} is not `file.py:Class`")
    if "python" in d:
        _str(d["python"], "python")
    _strs(d.get("requirements", []), "requirements")
    if "arguments" in d:
        if type(d["arguments"]) is not dict:
            raise TypeError("arguments must be a mapping")
        plain(d["arguments"], "arguments")
    if "argument_origins" in d:
        if d["schema"] < 4:
            raise ValueError("argument_origins needs manifest schema 4")
        origins = _keys(d["argument_origins"], "argument_origins", set(), set(d.get("arguments") or {}))
        for k, v in origins.items():
            _str(v, f"argument_origins {k}")
    if "settings" in d:
        _keys(d["settings"], "settings", set(), {"name", "service", "include", "exclude", "requirements"} | ({"python"} if d["schema"] >= 4 else set()))
        for k, v in d["settings"].items():
            _str(v, f"settings {k}")
    _check_services(d)
    if type(d["models"]) is not list:
        raise TypeError("models must be a list")
    for m in d["models"]:
        _check_model(m, d["schema"])
    _files(d["sources"], "sources", sources=True)
    if "environment" in d:
        _check_environment(d)


def _check_services(d: dict[str, Any]) -> None:
    services = d.get("services", [])
    if type(services) is not list:
        raise TypeError("services must be a list")
    for s in services:
        _keys(s, "a service", {"name", "class", "module", "file", "models"}, {"resources", "depends", "undeclared"})
        for k in ("resources", "undeclared"):
            if k in s:
                plain(s[k], f"service {k}")
        for k in ("name", "class", "module", "file"):
            _str(s[k], f"service {k}")
        _strs(s.get("depends", []), "service depends")
        if type(s["models"]) is not list:
            raise TypeError("service models must be a list")
        for m in s["models"]:
            _keys(m, "a service model", {"attribute", "source", "id"}, {"revision", "include", "exclude"})
    if "entrypoint" in d and services:
        cls = d["entrypoint"].rpartition(":")[2]
        if not any(s["class"] == cls for s in services):
            raise ValueError(f"entrypoint {d['entrypoint']!r} names no service of the bundle")


def _check_model(m: dict[str, Any], schema: int) -> None:
    """One entry of ``models``: its fields and their types (the pin's values: ``check_pin``)."""
    _keys(m, "a model", {"source", "id", "files"},
          {"revision", "include", "exclude", "commit", "hub_id", "required_by", "endpoint", "version", "path", "embedded"})
    _str(m["source"], "model source")
    _str(m["id"], "model id")
    for k in ("revision", "commit", "hub_id", "required_by", "endpoint", "version", "path"):
        if k in m:
            _str(m[k], f"model {k}")
    if ("required_by" in m or "endpoint" in m) and schema < 4:
        raise ValueError("required_by and endpoint need manifest schema 4")
    for k in ("include", "exclude"):
        if k in m:
            _strs(m[k], f"model {k}")
    if "embedded" in m and type(m["embedded"]) is not bool:
        raise TypeError("model embedded must be true or false")
    optional = {"xet"} | ({"version_id", "etag"} if schema >= 5 else set()) | ({"sha256"} if schema >= 6 else set())
    _files(m["files"], f"model {m['id']} files", frozenset(optional | ({"format"} if schema >= 7 else set())))
    from ..io.formats import FORMATS

    for f in m["files"]:
        if "format" in f and f["format"] not in FORMATS:
            raise ValueError(f"model {m['id']} file {f['path']!r}: unknown format {f['format']!r}")


def _check_environment(d: dict[str, Any]) -> None:
    from ..env.lock import FILE_RE, NAME_RE, SHA256_RE, check_target

    if d["schema"] < 3:
        raise ValueError("environment needs manifest schema 3")
    env = _keys(d["environment"], "environment", {"lock", "sha256", "python", "platform", "packages"}, {"wheels"})
    lock = safe_path(_str(env["lock"], "environment lock"))
    if lock not in {f["path"] for f in d["sources"]}:
        raise ValueError(f"environment lock {lock!r} is not one of the sources")
    if not SHA256_RE.match(_str(env["sha256"], "environment sha256")):
        raise ValueError("environment sha256 is not a sha256")
    check_target(env["python"], env["platform"])
    if type(env["packages"]) is not dict:
        raise TypeError("environment packages must be a mapping of name to version")
    for name, version in env["packages"].items():
        if not NAME_RE.match(name) or type(version) is not str or not version or "/" in version:
            raise ValueError(f"environment package {name!r} {version!r}"[:200])
    if "wheels" in env:
        _files(env["wheels"], "environment wheels")
        for w in env["wheels"]:
            if not FILE_RE.match(w["path"]) or ".." in w["path"]:
                raise ValueError(f"environment wheel {w['path']!r} is not a package file name"[:200])
            if not check_hash(w["hash"]).startswith("blake3:"):
                raise ValueError(f"environment wheel {w['path']!r}: hash is not blake3")


def _validate(m: Manifest) -> None:
    """Everything that later becomes a path or a file name must be safe: a bundle is untrusted."""
    # The sources were checked (safe paths, blake3 hashes) while their entries were read.
    for d, p in zip(m.data["models"], m.pins):
        check_pin(p)
        if kind(p.source).min_schema > m.schema:
            raise ValueError(f"model {p.id}: {p.source} models need manifest schema {kind(p.source).min_schema}")
        if (where := m.model_dir(p)) is not None and d.get("path") not in (None, where):
            raise ValueError(f"store model {p.id}: path does not match its name and version")
