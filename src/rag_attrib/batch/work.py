"""One worker's job, the same on every engine: build an Attributor, turn records into rows.

The embedding cache is off: the default int8 encoder quantises each batch with one scale, so
a sentence's vector moves (up to ~0.016 measured) with what else is in its batch. Encoding
each record on its own makes its result depend on that record only, whichever engine,
worker or order ran it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from ..engine import Attributor
from ..results import AttributionResult, backing_citations
from .records import BadRecord, Record

__all__ = [
    "HASHING_MODEL",
    "RESULT_COLUMNS",
    "SENTENCE_COLUMNS",
    "attribute_rows",
    "make_attributor",
    "result_row",
    "sentence_rows",
]

HASHING_MODEL = "hashing"

RESULT_COLUMNS = ("id", "error", "sentences", "unsupported", "coverage", "top_source")
"""Columns of the per-record table, before `attribution` (the full result, or null)."""

SENTENCE_COLUMNS = (
    "id",
    "sentence",
    "text",
    "supported",
    "claim",
    "support",
    "top_source",
    "top_score",
)
"""Columns of the flat per-sentence table."""


def make_attributor(model: str | None = None, threads: int | None = None) -> Attributor:
    """The Attributor a batch worker uses: no embedding cache, `threads` encoder threads.

    Args:
        model: None for the bundled model (int8 on ONNX Runtime, as `Attributor()`), "hashing"
            for the test embedder, else a sentence-transformers name or path.
        threads: the encoder's threads (int8 ONNX Runtime: runs at once, one thread each;
            torch: intra-op threads); None leaves the library default (all cores).
    """
    if model == HASHING_MODEL:
        from ..testing import HashingEmbedder

        return Attributor(HashingEmbedder(), cache_size=0)
    if model is None:
        from ..onnx_backend import OnnxEmbedder, onnx_available

        if onnx_available():
            embedder = OnnxEmbedder(quantize=True, threads=threads, fallback=True)
            return Attributor(embedder, cache_size=0)
    if threads is not None:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        import torch

        torch.set_num_threads(threads)
    from ..embedders import SentenceTransformerEmbedder

    return Attributor(SentenceTransformerEmbedder(model), cache_size=0)


def attribute_rows(
    attributor: Attributor, items: Iterable[Record | BadRecord]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Attribute records: (one result row per record, the answer sentence rows).

    A bad record, or one the engine fails on, gives a row with `error` set and no attribution.
    """
    results: list[dict[str, Any]] = []
    sentences: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, BadRecord):
            results.append(error_row(item.id, item.reason))
            continue
        try:
            # as the integrations and `explain` do: the LLM's markers are no words of its claims
            result = attributor.attribute(item.answer, item.sources, item.question)
        except Exception as exc:  # one record must not end the run
            results.append(error_row(item.id, f"attribution failed: {type(exc).__name__}: {exc}"))
            continue
        results.append(result_row(item.id, result))
        sentences.extend(sentence_rows(item.id, result))
    return results, sentences


def result_row(record_id: str, result: AttributionResult) -> dict[str, Any]:
    """The per-record row; `attribution` is `result.to_dict()`."""
    top = result.top_source
    return {
        "id": record_id,
        "error": None,
        "sentences": len(result.answer_sentences),
        "unsupported": len(result.unsupported),
        "coverage": float(result.coverage),
        "top_source": top.id if top is not None else None,
        "attribution": result.to_dict(),
    }


def error_row(record_id: str, reason: str) -> dict[str, Any]:
    """The row of a record that was not attributed."""
    return {
        "id": record_id,
        "error": reason,
        "sentences": 0,
        "unsupported": 0,
        "coverage": None,
        "top_source": None,
        "attribution": None,
    }


def sentence_rows(record_id: str, result: AttributionResult) -> list[dict[str, Any]]:
    """One row per answer sentence: verdict, support, and the source of its best citation.

    An unsupported sentence cites nothing: its closest sources do not back it, so its
    `top_source`/`top_score` are None (they stay in the record's `attribution`)."""
    rows = []
    for s in result.answer_sentences:
        cited = backing_citations(s)
        top = cited[0] if cited else None
        rows.append(
            {
                "id": record_id,
                "sentence": s.index,
                "text": s.text,
                "supported": s.supported,
                "claim": s.claim,
                "support": float(s.support),
                "top_source": top.source_id if top is not None else None,
                "top_score": float(top.score) if top is not None else None,
            }
        )
    return rows


def sentence_rows_of(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The sentence rows of a stored result row (whose attribution may be a JSON string)."""
    attribution = row.get("attribution")
    if attribution is None:
        return []
    if isinstance(attribution, str):
        attribution = json.loads(attribution)
    return sentence_rows(row["id"], AttributionResult.from_dict(attribution))
