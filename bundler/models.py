"""Model descriptors for service authors (``from bundler.models import HuggingFaceModel``)."""

from __future__ import annotations

from typing import Any, ContextManager

from .descriptors import HuggingFaceModel, OCIModel, S3Model, StoreModel

__all__ = ["HuggingFaceModel", "OCIModel", "S3Model", "StoreModel", "create"]


def create(tag: str) -> ContextManager[Any]:
    """Context manager for training code: write files into ``model.path``; on a clean exit they
    are imported into the local store (``model.model`` is then the stored model), on an exception
    nothing is left behind::

        with bundler.models.create("intent-clf") as model:
            save(model.path / "weights.safetensors")
    """
    from .stores.local import Store

    return Store().create(tag)
