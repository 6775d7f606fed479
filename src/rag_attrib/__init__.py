"""rag_attrib: which sources an answer came from, sentence by sentence.

Evidence attribution for RAG answers and summaries, from the texts alone: no extra LLM call.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .config import AttributionConfig
from .embedders import CachedEmbedder, Embedder, SentenceTransformerEmbedder
from .engine import Attributor, attribute
from .errors import ConfigError, EmptyInputError, MissingDependencyError, RagAttribError
from .results import (
    AttributionResult,
    Citation,
    SentenceAttribution,
    Source,
    SourceAttribution,
    SourceSentence,
    Span,
)
from .splitting import split_sentences

try:
    __version__ = version("rag-attrib")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "AttributionConfig",
    "AttributionResult",
    "Attributor",
    "CachedEmbedder",
    "Citation",
    "ConfigError",
    "Embedder",
    "EmptyInputError",
    "MissingDependencyError",
    "RagAttribError",
    "SentenceAttribution",
    "SentenceTransformerEmbedder",
    "Source",
    "SourceAttribution",
    "SourceSentence",
    "Span",
    "__version__",
    "attribute",
    "split_sentences",
]
