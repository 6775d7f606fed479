"""`instrument()`: handlers on LlamaIndex's root dispatcher that feed the tracker."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.chat_engine import (
    StreamChatDeltaReceivedEvent,
    StreamChatEndEvent,
)
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatInProgressEvent,
    LLMCompletionEndEvent,
    LLMCompletionInProgressEvent,
)
from llama_index.core.instrumentation.events.retrieval import RetrievalEndEvent
from llama_index.core.instrumentation.span import SimpleSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index_instrumentation import get_dispatcher  # what llama_index.core re-exports
from typing_extensions import override

from ...engine import Attributor
from ...export.base import Exporter
from ...markers import Numbering
from .._citations import check_options
from .._pipeline import check_timeout
from ._read import completion_reply
from ._tracker import Settings, Tracker

if TYPE_CHECKING:
    import inspect

__all__ = ["instrument", "uninstrument"]

logger = logging.getLogger("rag_attrib.integrations.llamaindex")


class _Handler(BaseSpanHandler[SimpleSpan], BaseEventHandler):
    """Feeds spans, retrievals, LLM outputs and chat streams to the tracker.

    One object registered twice on the root dispatcher: as a span handler (it keeps no spans
    of its own) and as an event handler.
    """

    _tracker: Tracker = PrivateAttr()

    def __init__(self, tracker: Tracker) -> None:
        super().__init__()
        self._tracker = tracker

    @property
    def tracker(self) -> Tracker:
        """The tracker this handler feeds."""
        return self._tracker

    @classmethod
    @override
    def class_name(cls) -> str:
        """Return the handler's name."""
        return "RagAttribHandler"

    @override
    def new_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SimpleSpan | None:
        # LlamaIndex swallows handler errors without a trace, so log them here.
        try:
            self._tracker.enter(id_, bound_args, instance, parent_span_id, tags)
        except Exception:
            logger.warning("rag_attrib span handler failed on span start", exc_info=True)
        return None

    @override
    def prepare_to_exit_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> SimpleSpan | None:
        try:
            self._tracker.exit(id_, result)
        except Exception:
            logger.warning("rag_attrib span handler failed on span exit", exc_info=True)
        return None

    @override
    def prepare_to_drop_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> SimpleSpan | None:
        try:
            self._tracker.drop(id_)
        except Exception:
            logger.warning("rag_attrib span handler failed on span drop", exc_info=True)
        return None

    @override
    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        tracker = self._tracker
        try:
            if isinstance(event, RetrievalEndEvent):
                tracker.retrieved(event.span_id, event.nodes)
            elif isinstance(event, LLMCompletionEndEvent):
                tracker.llm_said(event.span_id, event.response.text)
                tracker.llm_replied(event.span_id, completion_reply(event.response))
            elif isinstance(event, LLMChatEndEvent) and event.response is not None:
                tracker.llm_said(event.span_id, event.response.message.content)
                tracker.llm_replied(event.span_id, event.response)
            elif isinstance(event, (LLMChatInProgressEvent, LLMCompletionInProgressEvent)):
                tracker.llm_streamed(event.span_id, event.response.raw)
            elif isinstance(event, StreamChatDeltaReceivedEvent):
                tracker.stream_chat_delta(event.span_id, event.delta)
            elif isinstance(event, StreamChatEndEvent):
                tracker.stream_chat_end(event.span_id)
        except Exception:
            logger.warning(
                "rag_attrib event handler failed on %s", event.class_name(), exc_info=True
            )


_installed: _Handler | None = None
_install_lock = threading.Lock()


def instrument(
    attributor: Attributor | None = None,
    *,
    exporters: Iterable[Exporter] = (),
    timeout: float | None = None,
    repair_citations: bool = False,
    citation_numbering: Numbering = "auto",
    exact_support: bool = False,
) -> None:
    """Attribute every LlamaIndex query, chat, synthesizer and agent answer, process-wide.

    Registers a span handler and an event handler on the root instrumentation dispatcher,
    once: calling again only replaces the settings (for calls that start afterwards).
    Results land on `response.metadata["attribution"]` (for streams, once the stream is
    consumed) or an agent's `output["attribution"]`, go to `exporters`, and are emitted as an
    `AttributionEvent`. A call with nothing to cite gets that in `error`, and one WARNING per
    cause is logged. An answer that cites its nodes (`[1]` markers: with
    `CitationQueryEngine`, whose "Source n:" labels number them; or a structured
    `output_cls` with a list of source ids) also gets `attribution["citation_check"]`, a
    verdict per citation.

    Args:
        attributor: the `Attributor` to use; None uses a shared one with the bundled model.
        exporters: where to send each result (logs, files, traces).
        timeout: seconds one attribution may take; past it the answer is returned without
            citations and `error` says "timed out". None waits as long as it takes.
        repair_citations: put the answer with its markers repaired (a wrong marker names
            the node that backs its claim, a dangling one is dropped; nothing else changes)
            in `response.response` of query and chat engines' finished responses;
            `attribution["citation_repair"]` lists each change and `attribution["answer"]`
            stays the LLM's text. Streams are never rewritten (their text was already read):
            the payload says what would change.
        citation_numbering: how the answer's numbers (and a structured output's ids) name
            the nodes: "1-based", "0-based", "ids", or "auto" (read from the "Source n:"
            labels the LLM was shown, else guessed as `check_citations` does).
        exact_support: as for `check_citations`: each citation's `support` against only the
            nodes its sentence cites, at the cost of attributing each cited sentence again.

    Raises:
        ValueError: `timeout` is not None or a positive number; `ConfigError` (a ValueError)
            `citation_numbering` is not one of "auto", "1-based", "0-based", "ids".

    Example:
        >>> from rag_attrib.integrations.llamaindex import instrument
        >>> instrument()
        >>> response = index.as_query_engine().query("Who founded the company?")
        >>> response.metadata["attribution"]["citations"][0]["cited_text"]
    """
    global _installed
    settings = Settings(
        attributor,
        tuple(exporters),
        check_timeout(timeout),
        repair_citations,
        check_options(citation_numbering, exact_support),
    )
    with _install_lock:
        if _installed is None:
            handler = _Handler(Tracker())
            root = get_dispatcher()
            # First in line, so at span exit a tracer's span is still open when we export.
            root.span_handlers = [handler, *root.span_handlers]
            root.event_handlers = [*root.event_handlers, handler]
            _installed = handler
        _installed.tracker.settings = settings


def uninstrument() -> None:
    """Remove what `instrument()` registered (streams already started still finish)."""
    global _installed
    with _install_lock:
        if _installed is None:
            return
        root = get_dispatcher()
        root.span_handlers = [h for h in root.span_handlers if h is not _installed]
        root.event_handlers = [h for h in root.event_handlers if h is not _installed]
        _installed = None


def open_records() -> dict[str, int]:
    """Per-call records still held by the instrumentation (for tests: all zero when idle)."""
    with _install_lock:
        installed = _installed
    if installed is None:
        return {"units": 0, "spans": 0, "writers": 0}
    return installed.tracker.counts()
