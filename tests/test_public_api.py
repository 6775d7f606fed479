"""The public surface is pinned; importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import rag_attrib

EXPECTED_ALL = [
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


def test_all_is_pinned_and_sorted() -> None:
    """__all__ is exactly the documented surface, sorted, and every name resolves."""
    assert rag_attrib.__all__ == EXPECTED_ALL
    assert sorted(rag_attrib.__all__) == rag_attrib.__all__
    for name in rag_attrib.__all__:
        assert hasattr(rag_attrib, name), name


def test_result_fields_are_pinned() -> None:
    """AttributionResult's fields, in order (`citation_check` last, optional: the integrations
    set it when the answer cites its sources itself)."""
    from dataclasses import fields

    assert [f.name for f in fields(rag_attrib.AttributionResult)] == [
        "answer",
        "answer_sentences",
        "sources",
        "similarity",
        "question",
        "config",
        "model",
        "timings",
        "error",
        "citation_check",
    ]


def test_version_comes_from_metadata() -> None:
    """__version__ is the installed distribution's version."""
    from importlib.metadata import version

    assert rag_attrib.__version__ == version("rag-attrib")


def test_import_does_not_load_heavy_dependencies() -> None:
    """import rag_attrib loads no torch, sentence-transformers or framework."""
    heavy = [
        "nltk",
        "torch",
        "sentence_transformers",
        "transformers",
        "langchain_core",
        "llama_index",
        "opentelemetry",
        "plotly",
    ]
    code = f"import sys, rag_attrib; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_package_is_typed() -> None:
    """py.typed ships with the package."""
    from importlib.resources import files

    assert files("rag_attrib").joinpath("py.typed").is_file()


def test_errors_hierarchy() -> None:
    """Every error derives from RagAttribError and the matching builtin."""
    assert issubclass(rag_attrib.ConfigError, (rag_attrib.RagAttribError, ValueError))
    assert issubclass(rag_attrib.MissingDependencyError, ImportError)
    assert issubclass(rag_attrib.EmptyInputError, rag_attrib.RagAttribError)
