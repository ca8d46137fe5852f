"""Model sources are one concept: a fourth kind, written here and registered, goes through scan,
lock, build, inspect, pull and the serving check without any other change to bundler."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from bundler import kinds
from bundler.errors import ProblemFound, UsageError
from bundler.kinds import BadDescriptor, CallSpec, ModelKind
from bundler.model.pins import FileEntry, Pin, safe_name


class LocalDir(ModelKind):
    """A folder on the build host, named by its absolute path; pinned to the hash of its listing,
    carried in the bundle, landed into ``LANDED`` on the deploy host."""

    name = "local-dir"
    markers = frozenset({"localmodels.LocalDir"})
    id_keywords = ("path",)
    landed: Path

    def call_spec(self, marker: str) -> CallSpec:
        return CallSpec("LocalDir", ("path",))

    def ref_fields(self, args: dict[str, Any]) -> dict[str, Any]:
        path = args.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise BadDescriptor(f"LocalDir needs an absolute path, not {path!r}", hint="name the folder from /")
        return {"id": path}

    def pin(self, ref: Any, *, where: str | None, offline: bool, notes: list[str] | None) -> Pin:
        root = Path(ref.id)
        if not root.is_dir():
            raise UsageError(f"no folder {root}")
        files = tuple(FileEntry(p.relative_to(root).as_posix(), p.stat().st_size, "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest())
                      for p in sorted(root.rglob("*")) if p.is_file())
        listing = "".join(f"{f.path}\0{f.hash}\0" for f in files).encode()
        return Pin(source=self.name, id=ref.id, version=hashlib.sha256(listing).hexdigest()[:16], files=files)

    def check(self, p: Pin) -> None:
        if not p.id.startswith("/"):
            raise ValueError(f"bad folder {p.id!r}")
        safe_name(p.version, "version")

    def bundle_dir(self, p: Pin, schema: int) -> str:
        return f"local/{p.version}"

    def local_copy(self, p: Pin, *, offline: bool = False) -> tuple[Path, str]:
        return Path(p.id), p.id

    def land(self, p: Pin, src: Path) -> str | None:
        target = self.landed / str(p.version)
        if target.exists():
            return None
        shutil.copytree(src, target)
        return f"local:{p.version}"


@pytest.fixture
def local_dir_kind(tmp_path):
    kind = LocalDir()
    kind.landed = tmp_path / "landed"
    kinds.register(kind)
    yield kind
    kinds.unregister(kind.name)


SERVICE = '''\
import bentoml
from localmodels import LocalDir


@bentoml.service
class Echo:
    weights = LocalDir("{path}")
'''


def test_a_fourth_source_registered_from_outside_goes_from_scan_to_pull(local_dir_kind, tmp_path):
    from bundler.bundle.archive import verify
    from bundler.ops.build import build
    from bundler.env.lock import EnvOptions
    from bundler.introspect import scan
    from bundler.ops.pull import pull
    from bundler.runtime import BundleContext

    folder = tmp_path / "weights"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"alpha" * 100)
    (folder / "sub" / "b.json").write_bytes(b'{"b": 1}')
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "service.py").write_text(SERVICE.format(path=folder))

    scanned = scan(proj / "service.py")
    assert [(r.kind, r.id, r.line) for s in scanned.services for r in s.models] == [("local-dir", str(folder), 7)]

    result = build(proj / "service.py", env=EnvOptions(skip=True))
    (model,) = result.manifest.data["models"]
    version = model["version"]
    assert model["source"] == "local-dir" and model["path"] == f"local/{version}"
    assert (proj / "bundler.lock").read_text().count('source = "local-dir"') == 1
    assert verify(result.path)[1].ok

    pulled = pull(result.path, to=tmp_path / "deploy")
    assert pulled.store_imported == [f"local:{version}"]
    assert (local_dir_kind.landed / version / "sub" / "b.json").read_bytes() == b'{"b": 1}'
    assert (tmp_path / "deploy" / "local" / version / "a.bin").read_bytes() == b"alpha" * 100
    assert BundleContext(tmp_path / "deploy").check_models() == {str(folder): tmp_path / "deploy" / "local" / version}

    # A changed folder is a new pin; the old bundle's copy on the deploy host is refused.
    (tmp_path / "deploy" / "local" / version / "a.bin").write_bytes(b"omega" * 100)
    with pytest.raises(ProblemFound, match=f"model {folder} \\({version}\\): a.bin was modified"):
        BundleContext(tmp_path / "deploy").check_models()


def test_a_descriptor_the_kind_refuses_is_reported_at_the_call(local_dir_kind, tmp_path):
    from bundler.errors import IntrospectionError
    from bundler.introspect import scan

    (tmp_path / "service.py").write_text(SERVICE.format(path="relative/folder"))
    with pytest.raises(IntrospectionError) as e:
        scan(tmp_path / "service.py")
    assert (e.value.line, e.value.hint) == (7, "name the folder from /")
    assert "LocalDir needs an absolute path, not 'relative/folder'" in e.value.message


def test_a_bundle_naming_a_source_this_host_does_not_know_is_refused(tmp_path):
    from bundler.kinds import check_pin

    with pytest.raises(ValueError, match="unknown model source 'local-dir'"):
        check_pin(Pin(source="local-dir", id="/x", version="1"))


def test_two_kinds_cannot_share_a_name():
    class Impostor(LocalDir):
        name = "huggingface"

    with pytest.raises(ValueError, match="already registered"):
        kinds.register(Impostor())
    assert type(kinds.get("huggingface")).__name__ == "HuggingFace"


def test_each_kind_name_is_spelled_in_its_own_module_only():
    """A kind's name appears as a string in its own module and nowhere else in bundler (but for
    the Hugging Face cache's folder name, ``~/.cache/huggingface``, and boto3's service name ``s3``,
    which are not the kinds')."""
    root = Path(kinds.__file__).parent.parent
    for kind in kinds.all_kinds():
        if kind.name == "local-dir":
            continue
        spelled = {p.relative_to(root).as_posix() for p in root.rglob("*.py") if f'"{kind.name}"' in p.read_text()}
        if kind.name == "huggingface":
            assert 'or "~/.cache", "huggingface")' in (root / "settings.py").read_text()
            spelled.discard("settings.py")
        if kind.name == "s3":  # boto3's name of the S3 service, which is not the kind's
            assert '.client("s3",' in (root / "stores" / "s3.py").read_text()
            spelled.discard("stores/s3.py")
        assert sorted(spelled) == [f"kinds/{type(kind).__module__.rpartition('.')[2]}.py"], (kind.name, spelled)
