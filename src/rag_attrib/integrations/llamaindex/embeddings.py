"""A LlamaIndex embedding model over rag_attrib's embedder, so retrieval runs offline."""

from __future__ import annotations

from typing import Any

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.embeddings import BaseEmbedding
from typing_extensions import override

from ...embedders import DEFAULT_MODEL, Embedder
from ...engine import Attributor
from .._pipeline import shared_embedder

__all__ = ["MiniLMEmbedding"]


class MiniLMEmbedding(BaseEmbedding):
    """A LlamaIndex embedding model over a rag_attrib embedder (MiniLM by default).

    Lets a `VectorStoreIndex` run offline on the model bundled with rag_attrib. With no
    argument it uses the shared default attributor's embedder, so retrieval and attribution
    load the model once and share one embedding cache.

    Args:
        embedder: an `Attributor` (its embedder and cache are shared), any `Embedder`, or None
            for the shared default (the bundled all-MiniLM-L6-v2, loaded on first use).
        **kwargs: `BaseEmbedding` options such as `embed_batch_size`.

    Example:
        >>> index = VectorStoreIndex.from_documents(docs, embed_model=MiniLMEmbedding())
    """

    _given: Attributor | Embedder | None = PrivateAttr()

    def __init__(self, embedder: Attributor | Embedder | None = None, **kwargs: Any) -> None:
        named = embedder.embedder if isinstance(embedder, Attributor) else embedder
        kwargs.setdefault("model_name", str(getattr(named, "model_id", None) or DEFAULT_MODEL))
        super().__init__(**kwargs)
        self._given = embedder

    @classmethod
    @override
    def class_name(cls) -> str:
        """Return the model's class name."""
        return "MiniLMEmbedding"

    @property
    def embedder(self) -> Embedder:
        """The embedder in use (the shared default is created on first access)."""
        return shared_embedder(self._given)

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = np.asarray(self.embedder.encode(texts), dtype=np.float32)
        return [[float(x) for x in row] for row in vectors]

    @override
    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]

    @override
    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    @override
    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text])[0]

    @override
    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)
