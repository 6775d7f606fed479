"""`OTelExporter`: attributions as OpenTelemetry span attributes and events (API only).

Where it writes, in order of preference:

1. the span in `context["otel_span"]` (`OTEL_SPAN_KEY`), or else the current span of the
   `opentelemetry.context.Context` in `context["otel_context"]` (`OTEL_CONTEXT_KEY`), or else
   the current span of the thread running the exporter;
2. if that span is not recording (ended, or there is none) or already carries an attribution
   from this exporter, a new span `rag_attrib.attribution`, child of it (a root span if there
   is no span at all).

Integrations capture the caller's context at the start of a call with `OTelExporter.capture()`
(or `capture_context(exporters)`) because callbacks and stream ends can run on other threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ..errors import MissingDependencyError
from ..results import AttributionResult, Citation, SentenceAttribution, backing_citations
from .base import OTEL_CONTEXT_KEY, OTEL_SPAN_KEY

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import Span, Status, StatusCode, Tracer
except ImportError:
    raise MissingDependencyError(
        "OpenTelemetry export needs opentelemetry-api: pip install 'rag-attrib[otel]'",
        name="opentelemetry",
    ) from None

__all__ = ["EVENT_NAME", "SPAN_NAME", "OTelExporter"]

SPAN_NAME = "rag_attrib.attribution"
EVENT_NAME = "rag_attrib.answer_sentence"

# Bounds how many annotated span ids are remembered; old spans have long ended.
_CLAIMED_SPANS = 4096


class OTelExporter:
    """Records an attribution on the trace of the call that produced it.

    Span attributes (primitives, OpenInference-style document keys):
    `retrieval.documents.{i}.document.id` / `.document.score` (chunk share of the answer),
    `rag_attrib.answer_sentence_count`, `rag_attrib.unsupported_count`, `rag_attrib.coverage`,
    `rag_attrib.top_source`, `rag_attrib.model`, `rag_attrib.error`, `rag_attrib.timings.*`,
    and when the answer cites its sources itself `rag_attrib.own_citations.{correct,
    wrong_source, unsupported, dangling, missing}` (counts from `result.citation_check`).
    One event `rag_attrib.answer_sentence` per answer sentence: `index`, `text`, `supported`,
    `support`, `claim` and the top citations as parallel lists `citation.source_ids`,
    `citation.source_indexes`, `citation.sentence_indexes`, `citation.texts`,
    `citation.scores`, `citation.similarities`. An unsupported sentence cites nothing
    (`citation.*` lists are empty): its closest sources, which do not back it, are the same
    lists under `closest.*` (`closest.source_ids`, ...).

    Args:
        tracer: the tracer for new spans; defaults to `trace.get_tracer("rag_attrib")`, which
            follows whatever global provider the application sets (this never sets one).
        max_events: most sentence events per result; the rest are counted in
            `rag_attrib.dropped_sentence_events`.
        max_citations: most citations per sentence event.
        max_documents: most `retrieval.documents.*` entries (the SDK keeps 128 attributes per
            span by default, dropping the oldest).
        child_span: always write to a new child span instead of annotating the current one.
    """

    def __init__(
        self,
        tracer: Tracer | None = None,
        *,
        max_events: int = 64,
        max_citations: int = 3,
        max_documents: int = 50,
        child_span: bool = False,
    ) -> None:
        self.tracer = tracer if tracer is not None else trace.get_tracer("rag_attrib")
        self.max_events = max_events
        self.max_citations = max_citations
        self.max_documents = max_documents
        self.child_span = child_span
        self._claimed: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._lock = threading.Lock()

    def capture(self) -> dict[str, Any]:
        """Return the caller's OpenTelemetry context, to pass back in the export context.

        Returns:
            `{"otel_context": Context}`, plus `otel_trace_id` / `otel_span_id` (hex) when a
            span is active; prefixed so they never clash with a framework's own `span_id`.
        """
        current = otel_context.get_current()
        captured: dict[str, Any] = {OTEL_CONTEXT_KEY: current}
        span_context = trace.get_current_span(current).get_span_context()
        if span_context.is_valid:
            captured["otel_trace_id"] = trace.format_trace_id(span_context.trace_id)
            captured["otel_span_id"] = trace.format_span_id(span_context.span_id)
        return captured

    def export(self, result: AttributionResult, context: Mapping[str, Any]) -> None:
        """Write `result` on the target span (see the module docstring).

        Raises:
            TypeError: `context["otel_span"]` or `context["otel_context"]` has the wrong type.
        """
        parent_context = _parent_context(context)
        span = _parent_span(context, parent_context)
        if not self.child_span and span.is_recording() and self._claim(span):
            _record(span, result, self)
            return
        new = self.tracer.start_span(
            SPAN_NAME, context=trace.set_span_in_context(span, parent_context)
        )
        try:
            _record(new, result, self)
            if result.error:
                new.set_status(Status(StatusCode.ERROR, result.error))
        finally:
            new.end()

    def _claim(self, span: Span) -> bool:
        """True the first time this exporter annotates `span`; later results get a child."""
        span_context = span.get_span_context()
        key = (span_context.trace_id, span_context.span_id)
        with self._lock:
            if key in self._claimed:
                return False
            self._claimed[key] = None
            if len(self._claimed) > _CLAIMED_SPANS:
                self._claimed.popitem(last=False)
        return True


def _parent_context(context: Mapping[str, Any]) -> otel_context.Context | None:
    value = context.get(OTEL_CONTEXT_KEY)
    if value is None or isinstance(value, otel_context.Context):
        return value
    msg = (
        f"context[{OTEL_CONTEXT_KEY!r}] must be an opentelemetry.context.Context "
        f"(from context.get_current()), got {type(value).__name__}"
    )
    raise TypeError(msg)


def _parent_span(context: Mapping[str, Any], parent_context: otel_context.Context | None) -> Span:
    value = context.get(OTEL_SPAN_KEY)
    if value is None:
        return trace.get_current_span(parent_context)
    if isinstance(value, Span):
        return value
    msg = (
        f"context[{OTEL_SPAN_KEY!r}] must be an opentelemetry.trace.Span "
        f"(from trace.get_current_span()), got {type(value).__name__}"
    )
    raise TypeError(msg)


def _record(span: Span, result: AttributionResult, options: OTelExporter) -> None:
    # Documents first and the summary last: a full SDK span drops its oldest attributes.
    for i, source in enumerate(result.sources[: options.max_documents]):
        span.set_attribute(f"retrieval.documents.{i}.document.id", source.id)
        span.set_attribute(f"retrieval.documents.{i}.document.score", float(source.score))
    sentences = result.answer_sentences
    for sentence in sentences[: options.max_events]:
        span.add_event(EVENT_NAME, _sentence_attributes(sentence, options.max_citations))
    span.set_attributes(_summary_attributes(result, options.max_events))


def _summary_attributes(result: AttributionResult, max_events: int) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "rag_attrib.answer_sentence_count": len(result.answer_sentences),
        "rag_attrib.unsupported_count": len(result.unsupported),
        "rag_attrib.coverage": float(result.coverage),
        "rag_attrib.source_count": len(result.sources),
    }
    top = result.top_source
    # OpenTelemetry rejects None values, so absent facts are left out rather than nulled.
    if top is not None:
        attributes["rag_attrib.top_source"] = top.id
    if result.model is not None:
        attributes["rag_attrib.model"] = result.model
    if result.error is not None:
        attributes["rag_attrib.error"] = result.error
    dropped = len(result.answer_sentences) - max_events
    if dropped > 0:
        attributes["rag_attrib.dropped_sentence_events"] = dropped
    for name, ms in result.timings.items():
        attributes[f"rag_attrib.timings.{name}"] = float(ms)
    if result.citation_check is not None:  # the answer's own citations, as the LLM wrote them
        for verdict, count in result.citation_check.counts().items():
            attributes[f"rag_attrib.own_citations.{verdict}"] = count
    return attributes


def _sentence_attributes(sentence: SentenceAttribution, max_citations: int) -> dict[str, Any]:
    # an unsupported sentence's citations are its closest sources, which do not back it: they
    # go under "closest.*", never under "citation.*" (what a sentence cites)
    attributes: dict[str, Any] = {
        "index": sentence.index,
        "text": sentence.text,
        "supported": sentence.supported,
        "support": float(sentence.support),
        "claim": sentence.claim,
        **_citation_lists("citation", backing_citations(sentence)[:max_citations]),
    }
    if not sentence.supported:
        attributes.update(_citation_lists("closest", sentence.citations[:max_citations]))
    return attributes


def _citation_lists(prefix: str, citations: tuple[Citation, ...]) -> dict[str, Any]:
    return {
        f"{prefix}.source_ids": [c.source_id for c in citations],
        f"{prefix}.source_indexes": [c.source_index for c in citations],
        f"{prefix}.sentence_indexes": [c.sentence_index for c in citations],
        f"{prefix}.texts": [c.text for c in citations],
        f"{prefix}.scores": [float(c.score) for c in citations],
        f"{prefix}.similarities": [float(c.similarity) for c in citations],
    }
