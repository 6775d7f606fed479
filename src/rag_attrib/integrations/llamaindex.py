"""LlamaIndex integration: cited answers on `response.metadata["attribution"]`.

Two ways in:

- `instrument()` registers once on LlamaIndex's root instrumentation dispatcher, so every
  query engine (`query`, `aquery`, streaming or not) and chat engine (`chat`, `achat`,
  `stream_chat`, `astream_chat`) gets its answer attributed to `response.source_nodes`, the
  nodes that reached the LLM after postprocessors. `uninstrument()` removes it.
- `attribute_response(response)` does the same for one response you already have.

Streaming query and chat responses encode their nodes and each finished answer sentence on a
worker thread while the answer streams, so when it ends only the last sentence is left to
encode; the result is the one a non-streaming call gives.

The attached value is `rag_attrib.convert.attribution_payload(result)`: `result.to_dict()`
plus LangChain-shaped `"citations"`. Source ids are node ids, offsets index the node text
(`node.get_content(MetadataMode.NONE)`), and each citation's `extras` also carry the node's
`ref_doc_id` and metadata (`file_name`, `page_label`, ...). Note that `Response.metadata`
otherwise maps node ids to node metadata: `"attribution"` is the one key this module adds.

Install with `pip install 'rag-attrib[llamaindex]'`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Generator, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from typing_extensions import override

from ..convert import attribution_payload
from ..embedders import Embedder, default_embedder
from ..engine import Attributor, default_attributor, loaded_default_attributor
from ..errors import MissingDependencyError
from ..export.base import Exporter, capture_context, export_all
from ..results import AttributionResult, Source
from ..streaming import BackgroundAttributionStream

try:
    from llama_index.core.base.base_query_engine import BaseQueryEngine
    from llama_index.core.base.response.schema import (
        AsyncStreamingResponse,
        PydanticResponse,
        Response,
        StreamingResponse,
    )
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.chat_engine.types import (
        AgentChatResponse,
        BaseChatEngine,
        StreamingAgentChatResponse,
    )
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.events import BaseEvent
    from llama_index.core.instrumentation.events.chat_engine import (
        StreamChatDeltaReceivedEvent,
        StreamChatEndEvent,
    )
    from llama_index.core.instrumentation.span import SimpleSpan, active_span_id
    from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
    from llama_index_instrumentation import get_dispatcher  # what llama_index.core re-exports
except ImportError:
    raise MissingDependencyError(
        "LlamaIndex support needs llama-index-core: pip install 'rag-attrib[llamaindex]'",
        name="llama_index.core",
    ) from None

if TYPE_CHECKING:
    import inspect

    from .._types import JSONDict

__all__ = [
    "ATTRIBUTION_KEY",
    "AttributionEvent",
    "MiniLMEmbedding",
    "attribute_response",
    "instrument",
    "uninstrument",
]

logger = logging.getLogger(__name__)

ATTRIBUTION_KEY = "attribution"
"""The key this module adds to `response.metadata`."""

_QUERY_METHODS = frozenset({"query", "aquery"})
_CHAT_METHODS = frozenset({"chat", "achat", "stream_chat", "astream_chat"})
_WRITER_METHODS = frozenset({"write_response_to_history", "awrite_response_to_history"})
_UUID_SUFFIX = 37  # span ids are "<Class>.<method>-<uuid4>"
_METADATA = "metadata"

_dispatcher = get_dispatcher("rag_attrib")


class AttributionEvent(BaseEvent):
    """Emitted on the query or chat span once its answer is attributed.

    Every LlamaIndex instrumentation event handler (tracing integrations included) receives
    it; `span_id` is the query or chat span, also for streams that finish after it closed.

    Args:
        attribution: the payload attached to `response.metadata["attribution"]`.
    """

    attribution: dict[str, Any]

    @classmethod
    @override
    def class_name(cls) -> str:
        """Return the event's name."""
        return "AttributionEvent"


class MiniLMEmbedding(BaseEmbedding):
    """A LlamaIndex embedding model over a rag_attrib `Embedder` (MiniLM by default).

    Lets a `VectorStoreIndex` run offline on the model bundled with rag_attrib; pass
    `attributor.embedder` to share one loaded model between retrieval and attribution.

    Args:
        embedder: any `Embedder`; None uses the bundled all-MiniLM-L6-v2.
        **kwargs: `BaseEmbedding` options such as `embed_batch_size`.

    Example:
        >>> index = VectorStoreIndex.from_documents(docs, embed_model=MiniLMEmbedding())
    """

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder | None = None, **kwargs: Any) -> None:
        chosen: Embedder = embedder if embedder is not None else default_embedder()
        kwargs.setdefault("model_name", str(getattr(chosen, "model_id", type(chosen).__name__)))
        super().__init__(**kwargs)
        self._embedder = chosen

    @classmethod
    @override
    def class_name(cls) -> str:
        """Return the model's class name."""
        return "MiniLMEmbedding"

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self._embedder.encode(list(texts))
        return [[float(x) for x in row] for row in np.asarray(vectors, dtype=np.float32)]

    @override
    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]

    @override
    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    @override
    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text])[0]

    @override
    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)


@dataclass(frozen=True, slots=True)
class _Settings:
    attributor: Attributor | None = None
    exporters: tuple[Exporter, ...] = ()


@dataclass(slots=True)
class _Unit:
    """One query or chat call being traced (the outermost query/chat span)."""

    span_id: str
    name: str
    question: str | None
    tags: dict[str, Any]
    settings: _Settings
    captured: dict[str, Any] | None = None
    finalizer: weakref.finalize[Any, Any] | None = None
    closed: bool = False
    awaits_writer: bool = False
    writer_done: bool = False

    def capture(self) -> None:
        """Keep what exporters need from the current (the span's own) context, once."""
        if self.captured is None:
            self.captured = capture_context(self.settings.exporters)

    def context(self, *, streaming: bool) -> dict[str, Any]:
        self.capture()
        return {
            **(self.captured or {}),
            "framework": "llamaindex",
            "span_id": self.span_id,
            "span_name": self.name,
            "streaming": streaming,
            "tags": dict(self.tags),
        }


def _sources(nodes: Iterable[NodeWithScore]) -> list[Source]:
    out = []
    for nws in nodes:
        node = nws.node
        metadata: dict[str, Any] = dict(node.metadata or {})
        metadata["ref_doc_id"] = node.ref_doc_id
        metadata["retrieval_score"] = nws.score
        text = node.get_content(metadata_mode=MetadataMode.NONE)
        out.append(Source(id=node.node_id, text=text, metadata=metadata))
    return out


def _open_stream(
    nodes: Sequence[NodeWithScore], question: str | None, settings: _Settings
) -> BackgroundAttributionStream | None:
    """A stream that encodes the nodes now and each answer sentence as it completes.

    It only warms the attributor's cache: the final result is computed by `_run` as for a
    non-streaming answer, so it is the same, and only the last sentence is left to encode.
    None when there is nothing to warm, or when the default attributor does not exist yet
    (building it loads a model, which would stall the stream).
    """
    attributor = settings.attributor or loaded_default_attributor()
    if attributor is None or not nodes:
        return None
    try:
        return BackgroundAttributionStream(attributor, _sources(nodes), question)
    except Exception:  # warming is an optimisation: never break the user's stream
        logger.debug("rag_attrib could not open a warming stream", exc_info=True)
        return None


def _empty_result(answer: str, question: str | None, error: str) -> AttributionResult:
    return AttributionResult(
        answer=answer,
        answer_sentences=(),
        sources=(),
        similarity=np.zeros((0, 0), dtype=np.float32),
        question=question,
        error=error,
    )


def _payload(result: AttributionResult) -> JSONDict:
    """`attribution_payload` with each citation's node `ref_doc_id` and metadata in `extras`."""
    payload = attribution_payload(result)
    sources = payload["sources"]
    for citation in payload["citations"]:
        extras = citation["extras"]
        index = extras["source_index"]
        meta = sources[index]["metadata"] if 0 <= index < len(sources) else {}
        extras["node_id"] = extras["source_id"]
        extras["ref_doc_id"] = meta.get("ref_doc_id")
        extras["metadata"] = dict(meta)
    return payload


def _finish(
    result: AttributionResult, settings: _Settings, context: dict[str, Any]
) -> tuple[AttributionResult, JSONDict]:
    errors = export_all(settings.exporters, result, context)
    if errors and result.error is None:
        result = result.with_error("; ".join(errors))
    return result, _payload(result)


def _failed(
    answer: str, question: str | None, context: dict[str, Any], exc: Exception
) -> AttributionResult:
    logger.warning(
        "rag_attrib could not attribute the answer of LlamaIndex span %s; "
        "the response is returned without citations",
        context.get("span_id"),
        exc_info=exc,
    )
    return _empty_result(answer, question, f"attribution failed: {type(exc).__name__}: {exc}")


def _run(
    answer: str,
    nodes: Sequence[NodeWithScore],
    question: str | None,
    settings: _Settings,
    context: dict[str, Any],
) -> tuple[AttributionResult, JSONDict]:
    try:
        attributor = settings.attributor or default_attributor()
        result = attributor.attribute(answer, _sources(nodes), question)
    except Exception as exc:  # attribution must never break the user's query
        result = _failed(answer, question, context, exc)
    return _finish(result, settings, context)


async def _arun(
    answer: str,
    nodes: Sequence[NodeWithScore],
    question: str | None,
    settings: _Settings,
    context: dict[str, Any],
) -> tuple[AttributionResult, JSONDict]:
    try:
        attributor = settings.attributor or default_attributor()
        result = await attributor.aattribute(answer, _sources(nodes), question)
    except Exception as exc:  # attribution must never break the user's query
        result = _failed(answer, question, context, exc)
    return _finish(result, settings, context)


def _attach(response: object, payload: JSONDict) -> None:
    metadata = getattr(response, _METADATA, None)
    if metadata is None:
        # AgentChatResponse starts with None; StreamingAgentChatResponse has no such field,
        # but is a plain dataclass, so an ad-hoc attribute works.
        setattr(response, _METADATA, {ATTRIBUTION_KEY: payload})
    elif isinstance(metadata, MutableMapping):
        metadata[ATTRIBUTION_KEY] = payload
    else:
        logger.warning(
            "rag_attrib cannot attach an attribution to %s: its metadata is a %s",
            type(response).__name__,
            type(metadata).__name__,
        )


def _emit(payload: JSONDict, span_id: str | None) -> None:
    try:
        _dispatcher.event(AttributionEvent(attribution=payload, span_id=span_id))
    except Exception:
        logger.warning("rag_attrib could not dispatch its AttributionEvent", exc_info=True)


def _answer_text(response: Response | PydanticResponse | AgentChatResponse) -> str:
    if isinstance(response, PydanticResponse):
        return response.response.model_dump_json() if response.response is not None else ""
    return response.response or ""


def _question(bound_args: inspect.BoundArguments) -> str | None:
    arguments = bound_args.arguments
    value = arguments.get("str_or_query_bundle", arguments.get("message"))
    if isinstance(value, QueryBundle):
        return value.query_str
    return value if isinstance(value, str) else None


def _is_unit(instance: object, method: str) -> bool:
    return (isinstance(instance, BaseQueryEngine) and method in _QUERY_METHODS) or (
        isinstance(instance, BaseChatEngine) and method in _CHAT_METHODS
    )


def _split_span_id(span_id: str) -> tuple[str, str]:
    """Return ("Class.method", "method") from a "<Class>.<method>-<uuid4>" span id."""
    name = span_id[:-_UUID_SUFFIX] if len(span_id) > _UUID_SUFFIX else span_id
    return name, name.rpartition(".")[2]


def _has_writer(response: StreamingAgentChatResponse) -> bool:
    return (
        response.write_response_to_history_thread is not None
        or response.awrite_response_to_history_task is not None
    )


@dataclass(slots=True)
class _Writer:
    """A streaming chat's history writer: the one place its whole answer is known."""

    unit: _Unit
    response: StreamingAgentChatResponse
    stream: BackgroundAttributionStream | None


class _Tracker:
    """Maps spans to their query/chat call and attaches attributions; all state behind a lock.

    Only the outermost query or chat span of a call is attributed (a chat engine's inner
    query engine returns nothing to the caller). Records live while their spans are open;
    a streaming chat's record also waits for its history writer, the only place the full
    answer is known.
    """

    def __init__(self) -> None:
        self.settings = _Settings()
        # Re-entrant: a finalizer (`_release`) may run on this thread while the lock is held.
        self._lock = threading.RLock()
        self._units: dict[str, _Unit] = {}
        self._span_unit: dict[str, str] = {}
        self._writers: dict[str, _Writer] = {}

    def counts(self) -> dict[str, int]:
        """Open records per map (for tests: all zero once calls and streams have finished)."""
        with self._lock:
            return {
                "units": len(self._units),
                "spans": len(self._span_unit),
                "writers": len(self._writers),
            }

    def enter(
        self,
        span_id: str,
        bound_args: inspect.BoundArguments,
        instance: object,
        parent_id: str | None,
        tags: dict[str, Any] | None,
    ) -> None:
        name, method = _split_span_id(span_id)
        with self._lock:
            unit_id = self._span_unit.get(parent_id) if parent_id else None
            unit = self._units.get(unit_id) if unit_id else None
            if unit_id is not None and unit is not None:
                self._span_unit[span_id] = unit_id
                if method in _WRITER_METHODS and isinstance(instance, StreamingAgentChatResponse):
                    # the writer starts before the first token: encode the nodes meanwhile
                    stream = _open_stream(instance.source_nodes, unit.question, unit.settings)
                    self._writers[span_id] = _Writer(unit, instance, stream)
                return
        if not _is_unit(instance, method):
            return
        unit = _Unit(span_id, name, _question(bound_args), dict(tags or {}), self.settings)
        with self._lock:
            self._units[span_id] = unit
            self._span_unit[span_id] = span_id

    def exit(self, span_id: str, result: object) -> None:
        with self._lock:
            unit_id = self._span_unit.get(span_id)
            unit = self._units.get(unit_id) if unit_id else None
        if unit is not None and unit_id == span_id:
            try:
                self._on_result(unit, result)
            finally:
                if isinstance(result, StreamingAgentChatResponse) and _has_writer(result):
                    unit.awaits_writer = True
                    # a writer that never runs (a cancelled task) must not leak the record
                    unit.finalizer = weakref.finalize(result, self._release, span_id)
        self._close(span_id, unit_id)

    def drop(self, span_id: str) -> None:
        with self._lock:
            unit_id = self._span_unit.get(span_id)
        self._close(span_id, unit_id)

    def _close(self, span_id: str, unit_id: str | None) -> None:
        with self._lock:
            writer = self._writers.pop(span_id, None)
            if writer is not None and writer.stream is not None:
                writer.stream.close()
            unit = self._units.get(unit_id) if unit_id else None
            if unit is None or span_id != unit_id:
                self._span_unit.pop(span_id, None)
            if unit is None:
                return
            if writer is not None:
                unit.writer_done = True
            if span_id == unit_id:
                unit.closed = True
            if unit.closed and (unit.writer_done or not unit.awaits_writer):
                self._pop_unit(unit.span_id)

    def _pop_unit(self, unit_id: str) -> None:
        unit = self._units.pop(unit_id, None)
        self._span_unit.pop(unit_id, None)
        if unit is not None and unit.finalizer is not None:
            unit.finalizer.detach()

    def _release(self, unit_id: str) -> None:
        with self._lock:
            self._pop_unit(unit_id)

    def _on_result(self, unit: _Unit, result: object) -> None:
        # Streams end later, maybe on another thread: keep the span's trace context now.
        unit.capture()
        if isinstance(result, (Response, PydanticResponse, AgentChatResponse)):
            # Runs in the span's own context, so tracers still see it as the active span.
            context = unit.context(streaming=False)
            _, payload = _run(
                _answer_text(result), result.source_nodes, unit.question, unit.settings, context
            )
            _attach(result, payload)
            _emit(payload, unit.span_id)
        elif isinstance(result, StreamingResponse):
            _wrap_stream(result, unit)
        elif isinstance(result, AsyncStreamingResponse):
            _wrap_async_stream(result, unit)

    def stream_chat_delta(self, span_id: str | None, delta: str) -> None:
        """Feed a streaming chat's new text to its warming stream."""
        with self._lock:
            entry = self._writers.get(span_id) if span_id else None
        if entry is not None and entry.stream is not None and isinstance(delta, str):
            entry.stream.add(delta)

    def stream_chat_end(self, span_id: str | None) -> None:
        """Attribute a streaming chat answer: its history writer has the full text now."""
        with self._lock:
            entry = self._writers.get(span_id) if span_id else None
        if entry is None:
            return
        unit, response = entry.unit, entry.response
        if entry.stream is not None:  # the finished sentences are encoded: the last is left
            entry.stream.close()
            entry.stream.wait()
        # The writer sets `is_done` only after this event, so a caller consuming the stream
        # finishes after the attribution is attached.
        _, payload = _run(
            response.response,
            response.source_nodes,
            unit.question,
            unit.settings,
            unit.context(streaming=True),
        )
        _attach(response, payload)
        _emit(payload, unit.span_id)


def _wrap_stream(response: StreamingResponse, unit: _Unit) -> None:
    inner = response.response_gen
    if inner is None or response.response_txt is not None:
        return
    # opened now, so the nodes are encoded while the LLM starts
    stream = _open_stream(response.source_nodes, unit.question, unit.settings)

    def tokens() -> Generator[str, None, None]:
        parts: list[str] = []
        try:
            for token in inner:
                parts.append(token)
                if stream is not None and isinstance(token, str):
                    stream.add(token)
                yield token
        except BaseException:
            if stream is not None:
                stream.close()
            raise
        # only a fully consumed stream is attributed: an early break never gets here
        try:
            if stream is not None:
                stream.close()
                stream.wait()
            _, payload = _run(
                "".join(parts),
                response.source_nodes,
                unit.question,
                unit.settings,
                unit.context(streaming=True),
            )
            _attach(response, payload)
            _emit(payload, unit.span_id)
        except Exception:
            logger.warning("rag_attrib failed to finish a streamed answer", exc_info=True)

    response.response_gen = tokens()


def _wrap_async_stream(response: AsyncStreamingResponse, unit: _Unit) -> None:
    inner = response.response_gen
    if inner is None or response.response_txt is not None:
        return
    stream = _open_stream(response.source_nodes, unit.question, unit.settings)

    async def tokens() -> AsyncGenerator[str, None]:
        parts: list[str] = []
        try:
            async for token in inner:
                parts.append(token)
                if stream is not None and isinstance(token, str):
                    stream.add(token)  # returns at once: the encoding runs on a worker thread
                yield token
        except BaseException:
            if stream is not None:
                stream.close()
            raise
        try:
            if stream is not None:
                stream.close()
                await asyncio.wrap_future(stream.idle())
            _, payload = await _arun(
                "".join(parts),
                response.source_nodes,
                unit.question,
                unit.settings,
                unit.context(streaming=True),
            )
            _attach(response, payload)
            _emit(payload, unit.span_id)
        except Exception:
            logger.warning("rag_attrib failed to finish a streamed answer", exc_info=True)

    response.response_gen = tokens()


class _SpanHandler(BaseSpanHandler[SimpleSpan]):
    """Feeds span starts and ends to the tracker; keeps no spans of its own."""

    _tracker: _Tracker = PrivateAttr()

    def __init__(self, tracker: _Tracker) -> None:
        super().__init__()
        self._tracker = tracker

    @classmethod
    @override
    def class_name(cls) -> str:
        """Return the handler's name."""
        return "RagAttribSpanHandler"

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


class _EventHandler(BaseEventHandler):
    """Feeds streaming chats' deltas to their warming streams; finishes them at the end."""

    _tracker: _Tracker = PrivateAttr()

    def __init__(self, tracker: _Tracker) -> None:
        super().__init__()
        self._tracker = tracker

    @classmethod
    @override
    def class_name(cls) -> str:
        """Return the handler's name."""
        return "RagAttribEventHandler"

    @override
    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        try:
            if isinstance(event, StreamChatDeltaReceivedEvent):
                self._tracker.stream_chat_delta(event.span_id, event.delta)
            elif isinstance(event, StreamChatEndEvent):
                self._tracker.stream_chat_end(event.span_id)
        except Exception:
            logger.warning("rag_attrib event handler failed on a chat stream", exc_info=True)


@dataclass(slots=True)
class _Installed:
    tracker: _Tracker
    span_handler: _SpanHandler
    event_handler: _EventHandler = field(repr=False)


_installed: _Installed | None = None
_install_lock = threading.Lock()


def instrument(
    attributor: Attributor | None = None,
    *,
    exporters: Iterable[Exporter] = (),
) -> None:
    """Attribute every LlamaIndex query and chat answer, process-wide.

    Registers a span handler and an event handler on the root instrumentation dispatcher,
    once: calling again only replaces the settings (for calls that start afterwards).
    Results land on `response.metadata["attribution"]` (for streams, once the stream is
    consumed), go to `exporters`, and are emitted as an `AttributionEvent`.

    Args:
        attributor: the `Attributor` to use; None uses a shared one with the bundled model.
        exporters: where to send each result (logs, files, traces).

    Example:
        >>> from rag_attrib.integrations.llamaindex import instrument
        >>> instrument()
        >>> response = index.as_query_engine().query("Who founded the company?")
        >>> response.metadata["attribution"]["citations"][0]["cited_text"]
    """
    global _installed
    settings = _Settings(attributor, tuple(exporters))
    with _install_lock:
        if _installed is None:
            tracker = _Tracker()
            installed = _Installed(tracker, _SpanHandler(tracker), _EventHandler(tracker))
            root = get_dispatcher()
            # First in line, so at span exit a tracer's span is still open when we export.
            root.span_handlers = [installed.span_handler, *root.span_handlers]
            root.event_handlers = [*root.event_handlers, installed.event_handler]
            _installed = installed
        _installed.tracker.settings = settings


def uninstrument() -> None:
    """Remove what `instrument()` registered (streams already started still finish)."""
    global _installed
    with _install_lock:
        if _installed is None:
            return
        root = get_dispatcher()
        root.span_handlers = [h for h in root.span_handlers if h is not _installed.span_handler]
        root.event_handlers = [h for h in root.event_handlers if h is not _installed.event_handler]
        _installed = None


def _open_records() -> dict[str, int]:
    """Per-request records still held by the instrumentation (for tests)."""
    with _install_lock:
        installed = _installed
    if installed is None:
        return {"units": 0, "spans": 0, "writers": 0}
    return installed.tracker.counts()


_AnyResponse = (
    Response
    | PydanticResponse
    | StreamingResponse
    | AsyncStreamingResponse
    | AgentChatResponse
    | StreamingAgentChatResponse
)


def attribute_response(
    response: _AnyResponse,
    attributor: Attributor | None = None,
    *,
    exporters: Iterable[Exporter] = (),
    question: str | None = None,
) -> AttributionResult:
    """Attribute one query or chat response and attach the result to it.

    For users who do not want `instrument()`. A sync stream (`StreamingResponse`,
    `StreamingAgentChatResponse`) that was not consumed yet is consumed first.

    Args:
        response: what a query or chat engine returned.
        attributor: the `Attributor` to use; None uses a shared one with the bundled model.
        exporters: where to send the result.
        question: the user's question; sharpens very short answers.

    Returns:
        The `AttributionResult`, also attached as `response.metadata["attribution"]`
        (as a payload dict). An engine failure is logged and reported in `result.error`.

    Raises:
        TypeError: `response` is not a LlamaIndex query or chat response.
        ValueError: an async stream was not consumed yet (`await response.get_response()`).

    Example:
        >>> response = query_engine.query("Who founded the company?")
        >>> result = attribute_response(response)
        >>> result.answer_sentences[0].citations[0].source_id  # a node id
    """
    answer = _stream_text(response)
    settings = _Settings(attributor, tuple(exporters))
    span_id = active_span_id.get()
    context: dict[str, Any] = {
        **capture_context(settings.exporters),
        "framework": "llamaindex",
        "span_id": span_id,
        "streaming": False,
    }
    result, payload = _run(answer, response.source_nodes, question, settings, context)
    _attach(response, payload)
    _emit(payload, span_id)
    return result


def _stream_text(response: object) -> str:
    if isinstance(response, (Response, PydanticResponse, AgentChatResponse)):
        return _answer_text(response)
    if isinstance(response, StreamingResponse):
        return response.response_txt if response.response_txt is not None else str(response)
    if isinstance(response, StreamingAgentChatResponse):
        if not response.is_done:
            if response.achat_stream is not None:
                msg = "the async chat stream has not been consumed: consume it first"
                raise ValueError(msg)
            for _ in response.response_gen:
                pass
        return response.response
    if isinstance(response, AsyncStreamingResponse):
        if response.response_txt is None:
            msg = (
                "the AsyncStreamingResponse has not been consumed: "
                "await response.get_response() first"
            )
            raise ValueError(msg)
        return response.response_txt
    msg = (
        "response must be a LlamaIndex Response, PydanticResponse, StreamingResponse, "
        f"AsyncStreamingResponse, AgentChatResponse or StreamingAgentChatResponse; "
        f"got {type(response).__name__}"
    )
    raise TypeError(msg)
