"""Model descriptors for service authors (``from bundler.models import HuggingFaceModel``)."""

from __future__ import annotations

from .descriptors import HuggingFaceModel, StoreModel

__all__ = ["HuggingFaceModel", "StoreModel"]
