"""The public surface is pinned; importing the package stays light."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

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


def test_sentence_fields_are_pinned() -> None:
    """SentenceAttribution's fields, in order (`claim` last, defaulting to True: records
    written before it existed read as claims)."""
    from dataclasses import MISSING, fields

    found = fields(rag_attrib.SentenceAttribution)
    assert [f.name for f in found] == [
        "index",
        "text",
        "start",
        "end",
        "citations",
        "supported",
        "support",
        "issues",
        "claim",
    ]
    assert found[-1].default is True and found[-2].default == () and found[-3].default is MISSING


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


def _keywords(function: Callable[..., Any]) -> dict[str, object]:
    import inspect

    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


CITATION_KEYWORDS = {"citation_numbering": "auto", "exact_support": False}


def test_integrations_take_the_citation_options() -> None:
    """Every integration entry point takes `citation_numbering=` and `exact_support=` (the
    options `check_citations` calls `numbering=` and `exact_support=`) as keywords beside
    `repair_citations=`, with check_citations' defaults; the handler checks but never repairs."""
    import pytest

    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from rag_attrib.integrations.langchain import (
        AttributedRunnable,
        AttributionCallbackHandler,
        attribution_callback,
        with_attribution,
    )
    from rag_attrib.integrations.llamaindex import attribute_response, instrument

    repairing = [with_attribution, AttributedRunnable.__init__, instrument, attribute_response]
    for function in repairing:
        keywords = _keywords(function)
        assert keywords["repair_citations"] is False, function
        assert {k: keywords.get(k) for k in CITATION_KEYWORDS} == CITATION_KEYWORDS, function
    for function in (AttributionCallbackHandler.__init__, attribution_callback):
        keywords = _keywords(function)
        assert "repair_citations" not in keywords, function
        assert {k: keywords.get(k) for k in CITATION_KEYWORDS} == CITATION_KEYWORDS, function
