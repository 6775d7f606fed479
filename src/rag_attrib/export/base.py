"""The exporter protocol, the no-op default, and a guard that keeps exporters from raising.

Integrations call `capture_context(exporters)` when a call starts (in the caller's thread and
context), merge the result with their own ids (run_id, span_id...), and pass that mapping to
`export_all` when the attribution is ready, possibly on another thread.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from ..results import AttributionResult

__all__ = [
    "OTEL_CONTEXT_KEY",
    "OTEL_SPAN_KEY",
    "Exporter",
    "NullExporter",
    "capture_context",
    "context_record",
    "current_trace_ids",
    "export_all",
    "reset_reported_errors",
]

logger = logging.getLogger("rag_attrib.export")

OTEL_SPAN_KEY = "otel_span"
"""Context key for an `opentelemetry.trace.Span` the attribution belongs to."""

OTEL_CONTEXT_KEY = "otel_context"
"""Context key for an `opentelemetry.context.Context` captured when the call started."""

_reported: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()


@runtime_checkable
class Exporter(Protocol):
    """Sends a finished attribution somewhere (logs, files, traces).

    An exporter may also define `capture() -> Mapping[str, Any]`, called by integrations when
    a call starts; what it returns comes back in `context` (see `capture_context`).
    """

    def export(self, result: AttributionResult, context: Mapping[str, Any]) -> None:
        """Record `result`; `context` carries ids to join it to a trace (run_id, span_id...)."""
        ...


class NullExporter:
    """Does nothing; the default."""

    def export(self, result: AttributionResult, context: Mapping[str, Any]) -> None:
        """Ignore the result."""


def capture_context(exporters: Iterable[object]) -> dict[str, Any]:
    """Collect what exporters need from the caller's context, at the start of a call.

    The attribution is often computed later or on another thread (a callback thread, the end of
    a stream), where the caller's trace context is gone; `OTelExporter.capture()` keeps it.

    Returns:
        The merged `capture()` mappings of the exporters that define one; never raises.
    """
    captured: dict[str, Any] = {}
    for exporter in exporters:
        capture = getattr(exporter, "capture", None)
        if capture is None:
            continue
        try:
            captured.update(capture())
        except Exception:  # capturing must never break the user's call either
            logger.debug(
                "rag_attrib exporter %s capture() failed", type(exporter).__name__, exc_info=True
            )
    return captured


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
                logger.warning(
                    "rag_attrib exporter %s (further %s errors from it are not logged)",
                    message,
                    kind[1],
                    exc_info=exc,
                )
    return errors


def reset_reported_errors() -> None:
    """Forget which exporter failures were logged, so the next one is logged again (tests)."""
    with _reported_lock:
        _reported.clear()


def context_record(context: Mapping[str, Any]) -> dict[str, Any]:
    """Return the JSON-safe part of an export context, for logs and JSONL.

    Primitives, UUIDs (as strings) and nested mappings/lists of them are kept; the live
    OpenTelemetry span under `otel_span` becomes `otel_trace_id` / `otel_span_id` (hex, as
    OTLP writes them); other objects (`otel_context`, framework objects) are left out.
    """
    record: dict[str, Any] = {}
    for key, value in context.items():
        if key in (OTEL_SPAN_KEY, OTEL_CONTEXT_KEY):
            continue
        clean = _jsonable(value)
        if clean is not _SKIP:
            record[str(key)] = clean
    for key, value in _span_ids(context.get(OTEL_SPAN_KEY)).items():
        record.setdefault(key, value)
    return record


def current_trace_ids() -> dict[str, str]:
    """Return the current OpenTelemetry span's `otel_trace_id` / `otel_span_id` (hex).

    Only when the application already imported OpenTelemetry: this never imports it, so
    exporters without the `[otel]` extra can still join their records to traces.

    Returns:
        The two ids, or `{}` when OpenTelemetry is not loaded or no span is active.
    """
    otel_trace = sys.modules.get("opentelemetry.trace")
    if otel_trace is None:
        return {}
    return _span_ids(otel_trace.get_current_span())


_SKIP = object()


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        items = {str(k): _jsonable(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v is not _SKIP}
    if isinstance(value, (list, tuple)):
        return [v for v in map(_jsonable, value) if v is not _SKIP]
    return _SKIP


def _span_ids(span: Any) -> dict[str, str]:
    # Duck-typed so this module never imports OpenTelemetry.
    get_span_context = getattr(span, "get_span_context", None)
    if get_span_context is None:
        return {}
    span_context = get_span_context()
    trace_id, span_id = getattr(span_context, "trace_id", 0), getattr(span_context, "span_id", 0)
    if not (isinstance(trace_id, int) and isinstance(span_id, int) and trace_id and span_id):
        return {}
    return {"otel_trace_id": f"{trace_id:032x}", "otel_span_id": f"{span_id:016x}"}
