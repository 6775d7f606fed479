"""`MiniLMEmbeddings`: LangChain `Embeddings` over a rag_attrib embedder."""

from __future__ import annotations

from typing import cast

from langchain_core.embeddings import Embeddings
from typing_extensions import override

from ...embedders import Embedder
from ...engine import Attributor
from .._pipeline import shared_embedder

__all__ = ["MiniLMEmbeddings"]


class MiniLMEmbeddings(Embeddings):
    """LangChain `Embeddings` over a rag_attrib embedder, for vector stores that run offline.

    Args:
        attributor_or_embedder: an `Attributor` (its embedder and cache are shared), any
            `Embedder`, or None for the shared default (the bundled all-MiniLM-L6-v2).

    Example:
        >>> store = InMemoryVectorStore(MiniLMEmbeddings())
    """

    def __init__(self, attributor_or_embedder: Attributor | Embedder | None = None) -> None:
        self._given = attributor_or_embedder

    @property
    def embedder(self) -> Embedder:
        """The embedder in use (the default one is created on first access)."""
        return shared_embedder(self._given)

    @override
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed `texts`; rows have unit length."""
        if not texts:
            return []
        return cast("list[list[float]]", self.embedder.encode(texts).tolist())

    @override
    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        return self.embed_documents([text])[0]
