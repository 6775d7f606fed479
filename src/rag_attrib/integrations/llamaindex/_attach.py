"""Putting a result where LlamaIndex users read it, and telling LlamaIndex's tracers."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from llama_index.core.agent.workflow import AgentOutput
from llama_index.core.base.response.schema import Response
from llama_index.core.chat_engine.types import AgentChatResponse
from llama_index.core.instrumentation.events import BaseEvent
from llama_index_instrumentation import get_dispatcher  # what llama_index.core re-exports
from typing_extensions import override

from ..._types import JSONDict
from ...convert import attribution_payload
from ...repair import CitationRepair
from ...results import AttributionResult

__all__ = ["ATTRIBUTION_KEY", "AttributionEvent", "deliver", "payload"]

logger = logging.getLogger("rag_attrib.integrations.llamaindex")

ATTRIBUTION_KEY = "attribution"
"""The key this module adds to `response.metadata` (and to an `AgentOutput`)."""

_METADATA = "metadata"
_dispatcher = get_dispatcher("rag_attrib")


class AttributionEvent(BaseEvent):
    """Emitted on the query, chat, synthesize or agent span once its answer is attributed.

    Every LlamaIndex instrumentation event handler (tracing integrations included) receives
    it; `span_id` is that span, also for streams that finish after it closed.

    Args:
        attribution: the payload attached as `"attribution"`.
    """

    attribution: dict[str, Any]

    @classmethod
    @override
    def class_name(cls) -> str:
        """Return the event's name."""
        return "AttributionEvent"


def payload(result: AttributionResult, fix: CitationRepair | None = None) -> JSONDict:
    """`attribution_payload` with each citation's node `ref_doc_id` and metadata in `extras`."""
    out = attribution_payload(result, fix)
    sources = out["sources"]
    for citation in out["citations"]:
        extras = citation["extras"]
        index = extras["source_index"]
        meta = sources[index]["metadata"] if 0 <= index < len(sources) else {}
        extras["node_id"] = extras["source_id"]
        extras["ref_doc_id"] = meta.get("ref_doc_id")
        extras["metadata"] = dict(meta)
    return out


def _attach(target: object, value: JSONDict) -> None:
    if isinstance(target, AgentOutput):
        # A workflow event is dict-like: `output["attribution"]`, serialised with the event.
        target[ATTRIBUTION_KEY] = value
        return
    metadata = getattr(target, _METADATA, None)
    if metadata is None:
        # AgentChatResponse starts with None; StreamingAgentChatResponse has no such field,
        # but is a plain dataclass, so an ad-hoc attribute works.
        setattr(target, _METADATA, {ATTRIBUTION_KEY: value})
    elif isinstance(metadata, MutableMapping):
        metadata[ATTRIBUTION_KEY] = value
    else:
        logger.warning(
            "rag_attrib cannot attach an attribution to %s: its metadata is a %s",
            type(target).__name__,
            type(metadata).__name__,
        )


def _emit(value: JSONDict, span_id: str | None) -> None:
    try:
        _dispatcher.event(AttributionEvent(attribution=value, span_id=span_id))
    except Exception:
        logger.warning("rag_attrib could not dispatch its AttributionEvent", exc_info=True)


def _rewrite(target: object, old: str, fix: CitationRepair | None) -> None:
    """Put the repaired answer in `response.response` of a query or chat engine's finished
    response (only when it holds the text that was checked, `old`)."""
    if fix is None or not fix.changes:
        return
    if isinstance(target, (Response, AgentChatResponse)) and target.response == old:
        target.response = fix.text


def deliver(
    result: AttributionResult,
    target: object,
    span_id: str | None,
    fix: CitationRepair | None = None,
    *,
    stream: bool = False,
) -> JSONDict:
    """Attach `result`'s payload to `target` and emit it as an `AttributionEvent`; with `fix`
    (the repaired answer), also put it in a finished response's text (a stream was already
    read: its payload only says what would change)."""
    value = payload(result, fix)
    if not stream:
        _rewrite(target, result.answer, fix)
    _attach(target, value)
    _emit(value, span_id)
    return value
