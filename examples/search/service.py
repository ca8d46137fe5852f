"""Example service: BentoML's spelling and bundler's side by side, served by BentoML itself.

`bundler scan` reads both spellings identically. When BentoML serves a pulled bundle
(`bentoml serve DIR`), it resolves its own `HuggingFaceModel` to the commit the bundle pins;
bundler's descriptors resolve through bundler's runtime, verified against the same pins.
"""

import os

import bentoml
from bentoml.models import HuggingFaceModel

import bundler as bd
from app import settings
from app.settings import EMBED_MODEL


@bentoml.service(resources={"cpu": 1})
class Reranker:
    model = HuggingFaceModel(settings.ORG + "/rerank-tiny", revision="main", exclude=["*.bin"])

    @bentoml.api
    def files(self) -> list[str]:
        return sorted(os.listdir(self.model))  # BentoML's descriptor gives the local path


@bentoml.service(resources={"gpu": 1})
class Search:
    embedder = bd.HuggingFaceModel(EMBED_MODEL, revision="v1.0", include=settings.WEIGHTS)
    head = bd.StoreModel("intent-clf:latest")  # bundler's own store (BentoModel would name BentoML's)
    reranker = bentoml.depends(Reranker)

    def __init__(self) -> None:
        self.embed_path = self.embedder.resolve()
        self.head_path = self.head.resolve()

    @bentoml.api
    def models(self) -> dict[str, str]:
        return {"embedder": self.embed_path, "head": self.head_path}
