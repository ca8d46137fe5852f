"""The ``@service`` decorator and ``depends``: markers read by the scanner and by the runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar, overload

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    resources: dict[str, Any] = field(default_factory=dict)


@overload
def service(cls: T) -> T: ...
@overload
def service(*, name: str | None = None, resources: dict[str, Any] | None = None, **options: Any) -> Callable[[T], T]: ...


def service(cls: Any = None, *, name: str | None = None, resources: dict[str, Any] | None = None, **options: Any) -> Any:
    """Mark a class as a service; usable bare (``@service``) or called (``@service(resources=...)``).

    Unknown options are accepted so that BentoML-style decorators keep working unchanged.
    """

    def mark(klass: T) -> T:
        klass.__bundler_service__ = ServiceConfig(name or klass.__name__, dict(resources or {}))  # type: ignore[attr-defined]
        return klass

    return mark(cls) if cls is not None else mark


class Dependency:
    """A class attribute that yields one lazily created instance of another service."""

    def __init__(self, on: type | None = None, *, url: str | None = None, **_options: Any) -> None:
        if on is None and url is None:
            raise TypeError("depends() needs a service class or url=")
        self.on = on
        self.url = url
        self.attribute: str | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None or self.on is None:
            return self
        cache = instance.__dict__.setdefault("__bundler_dependencies__", {})
        if self.attribute not in cache:
            cache[self.attribute] = self.on()
        return cache[self.attribute]


def depends(on: type | None = None, *, url: str | None = None, **options: Any) -> Any:
    """Declare that a service uses another service (``other = depends(OtherService)``)."""
    return Dependency(on, url=url, **options)
