"""Every environment variable bundler reads, in one place (huggingface_hub's ``constants.py``
habit). Each is read when asked, not at import: a test, or a library caller, may change the
environment between two calls. The only other module that touches ``os.environ`` is
``ops/run.py``, which sets the serving process's own (``BUNDLER_BUNDLE``, ``HF_HUB_OFFLINE``).
"""

from __future__ import annotations

import os
from pathlib import Path

_TRUE = ("1", "true", "yes", "on")


def get(name: str) -> str | None:
    """A variable's value, None when unset or empty."""
    return os.environ.get(name) or None


def flag(name: str) -> bool:
    return (os.environ.get(name) or "").strip().lower() in _TRUE


def environment() -> dict[str, str]:
    """A copy of the whole environment, for a child process to start from."""
    return dict(os.environ)


# -- bundler's own ------------------------------------------------------------------------------
def bundler_home() -> Path:
    """``$BUNDLER_HOME``, else ``$XDG_DATA_HOME/bundler``, else ``~/.local/share/bundler``."""
    if env := get("BUNDLER_HOME"):
        return Path(env).expanduser()
    return Path(get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")) / "bundler"


def bundle_dir() -> str | None:
    """``BUNDLER_BUNDLE``: the unpacked bundle a service runs from."""
    return get("BUNDLER_BUNDLE")


def registry_token() -> str | None:
    return get("BUNDLER_REGISTRY_TOKEN")


def require_signature() -> str | None:
    """``BUNDLER_REQUIRE_SIGNATURE=PUB.pem``: a host that pulls only bundles signed by that key."""
    return get("BUNDLER_REQUIRE_SIGNATURE")


def require_identity() -> tuple[str, str] | None:
    """``BUNDLER_REQUIRE_IDENTITY=ID`` with ``BUNDLER_REQUIRE_ISSUER=URL``: a host that pulls only
    bundles signed keylessly (Sigstore) by that identity, as that OIDC issuer vouched."""
    identity, issuer = get("BUNDLER_REQUIRE_IDENTITY"), get("BUNDLER_REQUIRE_ISSUER")
    if bool(identity) != bool(issuer):
        from .errors import UsageError

        raise UsageError("BUNDLER_REQUIRE_IDENTITY and BUNDLER_REQUIRE_ISSUER go together",
                         hint="e.g. BUNDLER_REQUIRE_ISSUER=https://token.actions.githubusercontent.com")
    return (identity, issuer) if identity and issuer else None


def sigstore_offline() -> bool:
    """``BUNDLER_SIGSTORE_OFFLINE=1``: check keyless signatures with the Sigstore trust root this
    host has (no TUF refresh), as ``--sigstore-offline`` does."""
    return flag("BUNDLER_SIGSTORE_OFFLINE")


def no_xet() -> bool:
    return bool(get("BUNDLER_NO_XET"))


def source_date_epoch() -> str | None:
    return os.environ.get("SOURCE_DATE_EPOCH")


# -- Hugging Face -------------------------------------------------------------------------------
def hf_endpoint() -> str | None:
    # huggingface_hub reads HF_ENDPOINT once, when it is first imported; read it at call time
    return get("HF_ENDPOINT")


def use_hf_endpoint(url: str) -> None:
    """This process's Hub mirror (``pull --hub-endpoint``), as if ``HF_ENDPOINT`` named it."""
    os.environ["HF_ENDPOINT"] = url.rstrip("/")


def hf_offline() -> bool:
    return flag("HF_HUB_OFFLINE")


def hf_disable_symlinks() -> bool:
    return flag("HF_HUB_DISABLE_SYMLINKS")


def hf_cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--cache-dir``, else ``BENTOML_HF_CACHE_DIR`` (where BentoML's HuggingFaceModel looks),
    else ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if explicit:
        return Path(explicit).expanduser()
    for var in ("BENTOML_HF_CACHE_DIR", "HF_HUB_CACHE"):
        if env := get(var):
            return Path(env).expanduser()
    home = get("HF_HOME") or os.path.join(get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


# -- BentoML, registries, indexes, terminals ----------------------------------------------------
def bentoml_home() -> Path:
    return Path(get("BENTOML_HOME") or Path.home() / "bentoml").expanduser()


def docker_config_dir() -> Path:
    return Path(get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker"))


def pip_index_settings() -> tuple[str | None, list[str], list[str]]:
    """pip's index settings where uv's own are unset (uv reads its own itself): (index URL,
    extra index URLs, find-links)."""
    index = get("PIP_INDEX_URL") if not (get("UV_INDEX_URL") or get("UV_DEFAULT_INDEX")) else None
    extra = (get("PIP_EXTRA_INDEX_URL") or "").split() if not get("UV_EXTRA_INDEX_URL") else []
    links = (get("PIP_FIND_LINKS") or "").split() if not get("UV_FIND_LINKS") else []
    return index, extra, links


def index_urls() -> list[str]:
    """Every index URL uv and pip read from the environment (they may carry credentials)."""
    out: list[str] = []
    for var in ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "PIP_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX", "PIP_EXTRA_INDEX_URL"):
        out += (get(var) or "").split()
    return out


def color() -> bool:
    """Colour on a terminal unless ``NO_COLOR`` or ``TERM=dumb``."""
    return not get("NO_COLOR") and get("TERM") != "dumb"
