"""Example service: BentoML's spelling and bundler's, scanned identically."""

import bentoml
from bentoml.models import HuggingFaceModel

import bundler as bd
from app import settings
from app.settings import EMBED_MODEL


@bd.service(resources={"cpu": 1})
class Reranker:
    model = HuggingFaceModel(settings.ORG + "/rerank-tiny", revision="main", exclude=["*.bin"])

    def __init__(self) -> None:
        self.path = self.model.resolve()


@bentoml.service(resources={"gpu": 1})
class Search:
    embedder = bd.HuggingFaceModel(EMBED_MODEL, revision="v1.0", include=settings.WEIGHTS)
    head = bd.StoreModel("intent-clf:latest")  # bundler's own store (BentoModel would name BentoML's)
    reranker = bentoml.depends(Reranker)

    def __init__(self) -> None:
        self.embed_path = self.embedder.resolve()
        self.head_path = self.head.resolve()
