"""The exporter protocol, the no-op default, and a guard that keeps exporters from raising."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from ..results import AttributionResult

__all__ = ["Exporter", "NullExporter", "export_all"]

logger = logging.getLogger("rag_attrib.export")

_reported: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()


@runtime_checkable
class Exporter(Protocol):
    """Sends a finished attribution somewhere (logs, files, traces)."""

    def export(self, result: AttributionResult, context: Mapping[str, Any]) -> None:
        """Record `result`; `context` carries ids to join it to a trace (run_id, span_id...)."""
        ...


class NullExporter:
    """Does nothing; the default."""

    def export(self, result: AttributionResult, context: Mapping[str, Any]) -> None:
        """Ignore the result."""


def export_all(
    exporters: Iterable[Exporter],
    result: AttributionResult,
    context: Mapping[str, Any] | None = None,
) -> list[str]:
    """Call every exporter; a failure is logged once per (exporter, error type), never raised.

    Returns:
        One message per failed exporter, so callers can report them on the result.
    """
    errors = []
    for exporter in exporters:
        try:
            exporter.export(result, context or {})
        except Exception as exc:  # an exporter must never break the user's call
            kind = (type(exporter).__name__, type(exc).__name__)
            message = f"{kind[0]} failed: {kind[1]}: {exc}"
            errors.append(message)
            with _reported_lock:
                first = kind not in _reported
                _reported.add(kind)
            if first:
                logger.warning("rag_attrib exporter %s (further %s errors from it are not logged)",
                               message, kind[1], exc_info=exc)
    return errors
