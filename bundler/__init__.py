"""bundler: package ML model services into reproducible, deployable bundles.

What service authors import. Importing it stays light (no huggingface_hub, yaml, blake3 or rich):
a service module is imported on every worker start.
"""

from __future__ import annotations

from .descriptors import HuggingFaceModel, OCIModel, S3Model, StoreModel
from .services import depends, service

__version__ = "0.1.0"

__all__ = ["HuggingFaceModel", "OCIModel", "S3Model", "StoreModel", "depends", "service", "__version__"]
