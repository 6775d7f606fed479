"""Exporters that record attributions next to traces: logging, JSONL, OpenTelemetry.

`OTelExporter` is imported on first use, so `rag_attrib.export` works without
`opentelemetry-api` installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import (
    OTEL_CONTEXT_KEY,
    OTEL_SPAN_KEY,
    Exporter,
    NullExporter,
    capture_context,
    context_record,
    export_all,
)
from .jsonl import JSONLExporter, read_jsonl_line
from .log import LoggingExporter

if TYPE_CHECKING:
    from .otel import OTelExporter

__all__ = [
    "OTEL_CONTEXT_KEY",
    "OTEL_SPAN_KEY",
    "Exporter",
    "JSONLExporter",
    "LoggingExporter",
    "NullExporter",
    "OTelExporter",
    "capture_context",
    "context_record",
    "export_all",
    "read_jsonl_line",
]


def __getattr__(name: str) -> Any:
    if name == "OTelExporter":
        from .otel import OTelExporter

        return OTelExporter
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
