"""`LoggingExporter`: one structured `logging` record per attribution.

Named `log.py`, not `logging.py`, so `from rag_attrib.export import log` never reads as the
standard library module in user code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..results import AttributionResult
from .base import context_record, current_trace_ids

__all__ = ["LoggingExporter", "log_payload"]


class LoggingExporter:
    """Logs each attribution as one record with a structured `rag_attrib` extra.

    The record's message is a one-line summary; `record.rag_attrib` holds the details
    (see `log_payload`) for JSON formatters and structlog. It never configures logging.

    Args:
        logger: where to log; defaults to `logging.getLogger("rag_attrib.export.log")`.
        level: the record's level.
    """

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger if logger is not None else logging.getLogger(__name__)
        self.level = level

    def capture(self) -> dict[str, str]:
        """Return the caller's OpenTelemetry trace/span ids, if any (see `capture_context`)."""
        return current_trace_ids()

    def export(self, result: AttributionResult, context: Mapping[str, Any]) -> None:
        """Log one record for `result`."""
        if not self.logger.isEnabledFor(self.level):
            return
        payload = log_payload(result, context)
        self.logger.log(
            self.level,
            "rag_attrib attribution: %d answer sentences, %d unsupported, top source %s, "
            "coverage %.2f",
            payload["answer_sentence_count"],
            payload["unsupported_count"],
            payload["top_source"],
            payload["coverage"],
            extra={"rag_attrib": payload},
        )


def log_payload(result: AttributionResult, context: Mapping[str, Any]) -> dict[str, Any]:
    """Return the JSON-safe summary a log record carries.

    Returns:
        `answer_sentence_count`, `unsupported_count`, `unsupported` (answer sentence indexes),
        `coverage`, `top_source`, `sources` (`id`, `score`, `max_similarity` per chunk),
        `timings` (ms), `model`, `error` and `context` (the ids from `context`).
    """
    top = result.top_source
    return {
        "answer_sentence_count": len(result.answer_sentences),
        "unsupported_count": len(result.unsupported),
        "unsupported": [s.index for s in result.unsupported],
        "coverage": result.coverage,
        "top_source": top.id if top is not None else None,
        "sources": [
            {"id": s.id, "score": s.score, "max_similarity": s.max_similarity}
            for s in result.sources
        ],
        "timings": {k: float(v) for k, v in result.timings.items()},
        "model": result.model,
        "error": result.error,
        "context": context_record(context),
    }
