"""rag_attrib: which sources an answer came from, sentence by sentence.

Evidence attribution for RAG answers and summaries, from the texts alone: no extra LLM call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .citations import CitationReport, check_citations
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
from .repair import CitationRepair, repair_citations
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

__version__: str  # read from the installed metadata on first access (PEP 562, below)

__all__ = [
    "AttributionConfig",
    "AttributionResult",
    "Attributor",
    "CachedEmbedder",
    "Citation",
    "CitationRepair",
    "CitationReport",
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
    "check_citations",
    "repair_citations",
    "split_sentences",
]


def __getattr__(name: str) -> Any:
    # Loaded on first use (PEP 562), to keep `import rag_attrib` quick.
    if name == "split_sentences":
        from .splitting import split_sentences

        return split_sentences
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("rag-attrib")
        except PackageNotFoundError:  # running from a source tree that was never installed
            found = "0.0.0"
        globals()["__version__"] = found
        return found
    msg = f"module 'rag_attrib' has no attribute {name!r}"
    raise AttributeError(msg)
