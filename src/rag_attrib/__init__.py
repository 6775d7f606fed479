"""rag_attrib: which sources an answer came from, sentence by sentence.

Evidence attribution for RAG answers and summaries, from the texts alone: no extra LLM call.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .config import AttributionConfig
from .embedders import CachedEmbedder, Embedder, SentenceTransformerEmbedder
from .engine import Attributor, attribute
from .errors import (
    ConfigError,
    EmptyInputError,
    InputTooLargeError,
    MissingDependencyError,
    RagAttribError,
)
from .results import (
    AttributionResult,
    Citation,
    SentenceAttribution,
    Source,
    SourceAttribution,
    SourceSentence,
    Span,
)

if TYPE_CHECKING:
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
    "InputTooLargeError",
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


def __getattr__(name: str) -> Any:
    # NLTK takes ~1 s to import, so the splitter loads on first use (PEP 562).
    if name == "split_sentences":
        from .splitting import split_sentences

        return split_sentences
    msg = f"module 'rag_attrib' has no attribute {name!r}"
    raise AttributeError(msg)
