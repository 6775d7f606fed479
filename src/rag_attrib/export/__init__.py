"""Exporters that record attributions next to traces: logging, JSONL, OpenTelemetry."""

from __future__ import annotations

from .base import Exporter, NullExporter, export_all

__all__ = ["Exporter", "NullExporter", "export_all"]
