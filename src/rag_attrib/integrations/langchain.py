"""LangChain integration: cited answers from an unchanged LCEL chain.

Two faces over one engine:

- `AttributionCallbackHandler`: add it to `config={"callbacks": [...]}` of an existing chain.
  It collects the documents of every retriever run and the final LLM answer of one root
  invocation, attributes the answer when the root run ends, exports the result, and keeps it
  readable (`handler.last_result`, `handler.results[root_run_id]`). When the chain returns the
  chat model's own `AIMessage`, that message also gets `response_metadata["attribution"]`.
- `with_attribution(chain)`: a wrapper Runnable that returns a copy with the attribution
  attached, for any output shape and for streams.

The attribution attached is `rag_attrib.convert.attribution_payload(result)`: the result's
`to_dict()` plus LangChain v1 `Citation`-shaped `"citations"`.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast
from uuid import UUID

from ..convert import attribution_payload
from ..embedders import Embedder
from ..engine import Attributor, default_attributor
from ..errors import ConfigError, MissingDependencyError
from ..export.base import Exporter, capture_context
from ..results import AttributionResult, Source
from ..streaming import BackgroundAttributionStream
from ._pipeline import (
    Job,
    Reporter,
    arun_job,
    check_timeout,
    export_context,
    run_job,
    warm_attributor,
)
from ._streams import NO_CHUNK, Warmer, tap_aiter, tap_iter

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForChainRun,
        BaseCallbackHandler,
        BaseCallbackManager,
        CallbackManagerForChainRun,
        adispatch_custom_event,
        dispatch_custom_event,
    )
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, BaseMessageChunk
    from langchain_core.outputs import ChatGeneration, LLMResult
    from langchain_core.runnables import ConfigurableFieldSpec, Runnable, RunnableConfig
    from langchain_core.runnables.config import patch_config
    from langchain_core.runnables.utils import AddableDict
    from langchain_core.tracers.context import register_configure_hook
    from typing_extensions import override
except ImportError:
    raise MissingDependencyError(
        "LangChain support needs langchain-core: pip install 'rag-attrib[langchain]'",
        name="langchain_core",
    ) from None

__all__ = [
    "AttributedRunnable",
    "AttributionCallbackHandler",
    "MiniLMEmbeddings",
    "attribution_callback",
    "documents_to_sources",
    "with_attribution",
]

logger = logging.getLogger(__name__)

EVENT_NAME = "attribution"
"""Name of the custom event (`on_custom_event` in `astream_events`) and of the metadata key."""

_ANSWER_KEYS = ("answer", "output", "result", "text", "content", "response")
_QUESTION_KEYS = ("question", "input", "query")
_ATTACH_FAILED = "rag_attrib: attaching the attribution failed; the chain output is unchanged"


# --- documents, answers, questions -------------------------------------------------------


def documents_to_sources(documents: Iterable[Document]) -> list[Source]:
    """Convert LangChain documents to `Source`s, dropping repeats (same id and same text).

    The id is `Document.id`, else `metadata["source"]`, else the position in the result;
    `Document.metadata` is carried into `Source.metadata`.

    Returns:
        One `Source` per distinct document, in the order given.
    """
    seen: set[tuple[str | None, str]] = set()
    out: list[Source] = []
    for doc in documents:
        meta = dict(doc.metadata or {})
        given = doc.id if doc.id else meta.get("source")
        key = (None if given is None else str(given), doc.page_content)
        if key in seen:
            continue
        seen.add(key)
        out.append(
            Source(
                id=key[0] if key[0] is not None else str(len(out)),
                text=doc.page_content,
                metadata=meta,
            )
        )
    return out


def _text_of(value: Any) -> str | None:
    """The answer text in a chain output: a str, a message, or such a value under a known key."""
    if isinstance(value, str):
        return str(value)  # drops str subclasses such as langchain's TextAccessor
    if isinstance(value, BaseMessage):
        return str(value.text)
    if isinstance(value, Mapping):
        for key in _ANSWER_KEYS:
            item = value.get(key)
            if isinstance(item, (str, BaseMessage)):
                return _text_of(item)
    return None


def _question_of(value: Any) -> str | None:
    """The user's question in a chain input, if it has an obvious one."""
    if isinstance(value, str):
        return str(value) if value.strip() else None
    if isinstance(value, Mapping):
        for key in _QUESTION_KEYS:
            item = value.get(key)
            if isinstance(item, str) and item.strip():
                return str(item)
    return None


def _token_text(token: Any) -> str:
    """The text of a streamed token: a str, or the text blocks of a content list."""
    if isinstance(token, str):
        return str(token)
    if isinstance(token, list):
        return "".join(
            str(b) if isinstance(b, str) else str(b.get("text") or "")
            for b in token
            if isinstance(b, str) or (isinstance(b, Mapping) and b.get("type") == "text")
        )
    return ""


def _add(total: Any, chunk: Any) -> Any:
    """Aggregate stream chunks the way LangChain does (`+`, else keep the last one)."""
    if total is None:
        return chunk
    try:
        return total + chunk
    except TypeError:
        return chunk


# --- capture: what the runs of one call produced ------------------------------------------


@dataclass(slots=True)
class _Capture:
    """Retriever documents and LLM answers seen under one call (mutated under a lock)."""

    retrievals: dict[UUID, int] = field(default_factory=dict)  # retriever run -> start order
    documents: list[tuple[int, int, Document]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    open_llms: set[UUID] = field(default_factory=set)
    generation: Any = None  # the last finished LLM generation (Generation or ChatGeneration)

    def retriever_started(self, run_id: UUID, query: str) -> None:
        self.retrievals.setdefault(run_id, len(self.retrievals))
        if isinstance(query, str) and query.strip():
            self.queries.append(query)

    def retriever_ended(self, run_id: UUID, documents: Sequence[Document]) -> None:
        order = self.retrievals.setdefault(run_id, len(self.retrievals))
        self.documents.extend((order, k, doc) for k, doc in enumerate(documents))

    def llm_started(self, run_id: UUID) -> None:
        self.open_llms.add(run_id)

    def llm_ended(self, run_id: UUID, response: LLMResult) -> None:
        self.open_llms.discard(run_id)
        if response.generations and response.generations[0]:
            self.generation = response.generations[0][0]

    def llm_failed(self, run_id: UUID) -> None:
        self.open_llms.discard(run_id)

    def sources(self) -> list[Source]:
        # Parallel retrievers finish in any order; sort by start order to keep ids stable.
        ordered = sorted(self.documents, key=lambda item: (item[0], item[1]))
        return documents_to_sources(doc for _, _, doc in ordered)

    @property
    def llm_text(self) -> str | None:
        text = getattr(self.generation, "text", None)
        return str(text) if isinstance(text, str) else None


_NO_ANSWER = (
    "no answer found: the chain output has no text and no LLM finished; return the answer "
    "as a str, a message, or under an 'answer' key"
)
_NO_RETRIEVER = (
    "no retriever ran in this call; nothing to cite: use a retriever, or return Documents "
    "from a tool or a node"
)
_NO_DOCUMENTS = (
    "the retrievers returned no documents; nothing to cite: check the retriever's query and index"
)


def _job(answer: str | None, capture: _Capture, question: str | None) -> Job:
    question = question or (capture.queries[0] if capture.queries else None)
    sources = capture.sources()
    problem = None
    if answer is None:
        problem = _NO_ANSWER
    elif not capture.retrievals:
        problem = _NO_RETRIEVER
    elif not sources:
        problem = _NO_DOCUMENTS
    return Job(answer or "", sources, question, problem)


def _context(
    captured: Mapping[str, Any], run_id: UUID, name: str | None, tags: Any, metadata: Any
) -> dict[str, Any]:
    """The export context: what exporters captured at the call's start, plus the run's ids."""
    return export_context(
        captured,
        "langchain",
        run_id=str(run_id),
        run_name=name,
        tags=list(tags or []),
        metadata=dict(metadata or {}),
    )


# --- the callback handlers -------------------------------------------------------------------


class _Collector(BaseCallbackHandler):
    """Feeds retriever and LLM events into the `_Capture` that each run belongs to.

    Subclasses say which capture a run belongs to: `_enter` when the run starts, `_lookup`
    afterwards. Both are called with `self._lock` held.
    """

    raise_error: bool = False

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def _enter(self, run_id: UUID, parent_run_id: UUID | None) -> _Capture | None:
        raise NotImplementedError

    def _lookup(self, run_id: UUID) -> _Capture | None:
        raise NotImplementedError

    @override
    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Note a retriever run and its query."""
        with self._lock:
            capture = self._enter(run_id, parent_run_id)
            if capture is not None:
                capture.retriever_started(run_id, query)

    @override
    def on_retriever_end(
        self,
        documents: Sequence[Document],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Keep the retrieved documents."""
        with self._lock:
            capture = self._lookup(run_id)
            if capture is not None:
                capture.retriever_ended(run_id, documents)

    @override
    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Note an open chat model run."""
        self._llm_started(run_id, parent_run_id)

    @override
    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Note an open completion-model run."""
        self._llm_started(run_id, parent_run_id)

    def _llm_started(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        with self._lock:
            capture = self._enter(run_id, parent_run_id)
            if capture is not None:
                capture.llm_started(run_id)

    @override
    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Keep the generation: the last one to finish is the answer."""
        with self._lock:
            capture = self._lookup(run_id)
            if capture is not None:
                capture.llm_ended(run_id, response)

    @override
    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Forget a failed LLM run."""
        with self._lock:
            capture = self._lookup(run_id)
            if capture is not None:
                capture.llm_failed(run_id)

    @override
    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Register a tool run, so retrievers inside tools find their call."""
        with self._lock:
            self._enter(run_id, parent_run_id)


@dataclass(slots=True)
class _Root:
    """A root run being tracked: its capture, its descendants, and what its start reported."""

    capture: _Capture
    inputs: Any
    name: str | None
    tags: list[str]
    metadata: dict[str, Any]
    captured: dict[str, Any]  # exporters' view of the caller's context (e.g. the OTel span)
    runs: list[UUID] = field(default_factory=list)
    streams: dict[UUID, BackgroundAttributionStream] = field(default_factory=dict)  # by LLM run

    def close_streams(self) -> None:
        for stream in self.streams.values():
            stream.close()


class AttributionCallbackHandler(_Collector):
    """Attribute the answer of each chain invocation it sees to the retrieved documents.

    Add it to the config of an unchanged chain. Runs are grouped by their root run (the
    invocation): retriever documents and the last finished LLM answer in that tree are
    attributed when the root run ends. State is kept behind a lock and released when the root
    ends, so one handler may serve concurrent `batch`/`abatch` calls and threads.

    Where the chain returns the chat model's own `AIMessage`, that message gets
    `response_metadata["attribution"]`; the LLM cache's copy is left without it. Other outputs
    (parsers, dicts, streams) are not changed: read `results`, or use `with_attribution`.
    When the LLM streams tokens, each answer sentence is encoded as soon as it is complete.

    Args:
        attributor: the `Attributor` to use; None uses a shared one over the bundled model.
        exporters: exporters that receive each result, with a context carrying
            `framework="langchain"` and the root `run_id`.
        max_results: how many results `results` keeps (oldest dropped first).
        attach: attach `response_metadata["attribution"]` to returned `AIMessage`s.
        timeout: seconds an attribution may take; past it the result has
            `error="timed out"` (the chain's output is untouched). None: no limit.

    Raises:
        ConfigError: `max_results` is below 1.
        ValueError: `timeout` is not None or a positive number.

    Example:
        >>> handler = AttributionCallbackHandler()
        >>> message = chain.invoke(question, config={"callbacks": [handler]})
        >>> message.response_metadata["attribution"]["citations"]
    """

    def __init__(
        self,
        attributor: Attributor | None = None,
        *,
        exporters: Iterable[Exporter] = (),
        max_results: int = 1000,
        attach: bool = True,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        if max_results < 1:
            msg = f"max_results must be >= 1; got {max_results}"
            raise ConfigError(msg)
        self.attributor = attributor
        self.exporters: tuple[Exporter, ...] = tuple(exporters)
        self.max_results = max_results
        self.attach = attach
        self.timeout = check_timeout(timeout)
        self._reporter = Reporter(logger)
        self._root_of: dict[UUID, UUID] = {}
        self._roots: dict[UUID, _Root] = {}
        self._results: OrderedDict[UUID, AttributionResult] = OrderedDict()
        self._last: AttributionResult | None = None

    @property
    def results(self) -> Mapping[UUID, AttributionResult]:
        """A read-only snapshot of the kept results, by root run id, oldest first."""
        with self._lock:
            return MappingProxyType(dict(self._results))

    @property
    def last_result(self) -> AttributionResult | None:
        """The most recently finished result, or None."""
        with self._lock:
            return self._last

    @property
    def active_runs(self) -> int:
        """Root runs started but not yet finished (0 when idle: nothing is retained)."""
        with self._lock:
            return len(self._roots)

    # -- run bookkeeping (called with the lock held)

    @override
    def _enter(self, run_id: UUID, parent_run_id: UUID | None) -> _Capture | None:
        """Register a run under its parent's root; None when the parent is not tracked."""
        root_id = self._root_of.get(parent_run_id) if parent_run_id else None
        root = self._roots.get(root_id) if root_id else None
        if root is None or root_id is None:
            return None
        if run_id not in self._root_of:
            self._root_of[run_id] = root_id
            root.runs.append(run_id)
        return root.capture

    @override
    def _lookup(self, run_id: UUID) -> _Capture | None:
        root_id = self._root_of.get(run_id)
        root = self._roots.get(root_id) if root_id else None
        return root.capture if root else None

    def _release(self, run_id: UUID) -> _Root | None:
        """Stop tracking root `run_id` and its descendants; None if it is not a tracked root."""
        with self._lock:
            root = self._roots.pop(run_id, None)
            if root is None:
                return None
            for child in root.runs:
                self._root_of.pop(child, None)
            self._root_of.pop(run_id, None)
            return root

    # -- chain hooks

    @override
    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start tracking a root run, or register a chain inside one."""
        with self._lock:
            if run_id in self._root_of:  # the same handler attached twice: events repeat
                return
            if parent_run_id is not None and parent_run_id in self._root_of:
                self._enter(run_id, parent_run_id)
                return
            # No parent, or one this handler never saw (attached to a sub-chain): a root.
            name = kwargs.get("name") or (serialized or {}).get("name")
            self._roots[run_id] = _Root(
                _Capture(),
                inputs,
                name,
                list(tags or []),
                dict(metadata or {}),
                capture_context(self.exporters),
            )
            self._root_of[run_id] = run_id

    @override
    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: Any = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Encode each answer sentence as soon as the streamed tokens complete it."""
        text = _token_text(token)
        if not text:
            return
        with self._lock:
            root_id = self._root_of.get(run_id)
            root = self._roots.get(root_id) if root_id else None
            if root is None:
                return
            stream = root.streams.get(run_id) or self._open_stream(root)
            if stream is None:
                return
            root.streams[run_id] = stream
        stream.add(text)

    def _open_stream(self, root: _Root) -> BackgroundAttributionStream | None:
        """A warming stream over the root's documents (call with the lock held)."""
        # Building the default attributor loads a model: never stall a token for it.
        attributor = warm_attributor(self.attributor)
        sources = root.capture.sources()
        if attributor is None or not sources:
            return None
        queries = root.capture.queries
        question = _question_of(root.inputs) or (queries[0] if queries else None)
        return BackgroundAttributionStream(attributor, sources, question)

    @override
    def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Drop a failed root run: there is no answer to attribute."""
        root = self._release(run_id)
        if root is not None:
            root.close_streams()

    @override
    def on_chain_end(
        self,
        outputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """At the end of a root run: attribute, export, keep, and attach."""
        root = self._release(run_id)
        if root is None:
            return
        try:
            self._finish(run_id, root, outputs, kwargs.get("inputs"))
        except Exception:  # never raise into the chain
            logger.exception("rag_attrib: attributing run %s failed", run_id)

    def _finish(self, run_id: UUID, root: _Root, outputs: Any, inputs: Any) -> None:
        capture = root.capture
        root.close_streams()  # text not encoded yet goes into the final attribution's batch
        if capture.open_llms or capture.generation is None:
            # An LLM that has not finished means the stream was closed early: the output is
            # partial, so nothing is attributed. No LLM at all: nothing to attribute.
            logger.debug("rag_attrib: run %s ended without a finished LLM answer", run_id)
            return
        for stream in root.streams.values():  # streamed sentences: only the last one is left
            stream.wait()
        answer = _text_of(outputs) or capture.llm_text
        question = _question_of(inputs) or _question_of(root.inputs)
        job = _job(answer, capture, question)
        self._reporter.report(job.problem)
        context = _context(root.captured, run_id, root.name, root.tags, root.metadata)
        result = run_job(self.attributor, job, self.exporters, context, timeout=self.timeout)
        with self._lock:
            self._results[run_id] = result
            while len(self._results) > self.max_results:
                self._results.popitem(last=False)
            self._last = result
        if self.attach:
            _attach_to_generation(outputs, capture.generation, result)


def _attach_to_generation(outputs: Any, generation: Any, result: AttributionResult) -> None:
    """Set `response_metadata["attribution"]` on the chain's returned chat model message.

    Only when `outputs` is the very message of the last LLM generation: any other object may be
    shared with code we cannot see. That message is also held by the LLM cache (InMemoryCache
    keeps the generation by reference and a cache hit hands the same generation out again), so
    the generation is first pointed at an unannotated copy: the caller keeps its object, and
    later cache hits see a message without this call's citations.
    """
    if not isinstance(outputs, AIMessage) or not isinstance(generation, ChatGeneration):
        return
    if generation.message is not outputs:
        return
    generation.message = outputs.model_copy()
    # A new dict, not an in-place update: the copy above shares the old one.
    outputs.response_metadata = {
        **outputs.response_metadata,
        EVENT_NAME: attribution_payload(result),
    }


_handler_var: ContextVar[AttributionCallbackHandler | None] = ContextVar(
    "rag_attrib_attribution_callback", default=None
)
register_configure_hook(_handler_var, inheritable=True)


@contextmanager
def attribution_callback(
    attributor: Attributor | None = None,
    *,
    exporters: Iterable[Exporter] = (),
    max_results: int = 1000,
    attach: bool = True,
    timeout: float | None = None,
) -> Iterator[AttributionCallbackHandler]:
    """Attribute every chain run inside the `with` block (like `get_usage_metadata_callback`).

    Args:
        attributor, exporters, max_results, attach, timeout: as for
            `AttributionCallbackHandler`.

    Returns:
        A context manager yielding the handler; read `handler.results` after the calls.

    Example:
        >>> with attribution_callback() as handler:
        ...     chain.invoke("Who built the first telescope?")
        >>> handler.last_result.answer_sentences[0].citations
    """
    handler = AttributionCallbackHandler(
        attributor, exporters=exporters, max_results=max_results, attach=attach, timeout=timeout
    )
    token = _handler_var.set(handler)
    try:
        yield handler
    finally:
        _handler_var.reset(token)


# --- the wrapper Runnable -----------------------------------------------------------------


class _CaptureHandler(_Collector):
    """Collects one call's retriever documents and LLM answers: no correlation needed."""

    run_inline: bool = True  # cheap appends; no need for an executor hop in async runs

    def __init__(self) -> None:
        super().__init__()
        self.capture = _Capture()

    def sources(self) -> tuple[list[Source], str | None]:
        """The documents captured so far, and the first retriever query."""
        with self._lock:
            queries = self.capture.queries
            return self.capture.sources(), (queries[0] if queries else None)

    @override
    def _enter(self, run_id: UUID, parent_run_id: UUID | None) -> _Capture | None:
        return self.capture

    @override
    def _lookup(self, run_id: UUID) -> _Capture | None:
        return self.capture


def _with_handler(config: RunnableConfig, handler: BaseCallbackHandler) -> RunnableConfig:
    """A copy of `config` whose callbacks also include `handler` (inherited by every child)."""
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        return patch_config(config, callbacks=manager)
    patched = patch_config(config)
    patched["callbacks"] = [*(callbacks or []), handler]
    return patched


def _combine(inputs: list[Any]) -> Any:
    total = None
    for item in inputs:
        total = _add(total, item)
    return total


class AttributedRunnable(Runnable[Any, Any]):
    """Runs `bound` and returns its output with the attribution attached (see `with_attribution`).

    Args:
        bound: the chain to run.
        attributor: the `Attributor`; None uses a shared one over the bundled model.
        exporters: exporters that receive each result (context: `framework`, wrapper `run_id`).
        name: the wrapper run's name in traces.
        timeout: seconds an attribution may take (see `with_attribution`).
    """

    def __init__(
        self,
        bound: Runnable[Any, Any],
        attributor: Attributor | None = None,
        *,
        exporters: Iterable[Exporter] = (),
        name: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.bound = bound
        self.attributor = attributor
        self.exporters: tuple[Exporter, ...] = tuple(exporters)
        self.name = name or "with_attribution"
        self.timeout = check_timeout(timeout)
        self._reporter = Reporter(logger)

    @property
    @override
    def InputType(self) -> Any:
        return self.bound.InputType

    @override
    def get_input_schema(self, config: RunnableConfig | None = None) -> Any:
        return self.bound.get_input_schema(config)

    @property
    @override
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        return self.bound.config_specs

    # -- invoke

    @override
    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Run the chain and return its output with the attribution attached."""
        return self._call_with_config(self._invoke, input, config, **kwargs)

    @override
    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Async `invoke`."""
        return await self._acall_with_config(self._ainvoke, input, config, **kwargs)

    def _invoke(
        self,
        input_: Any,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        captured = capture_context(self.exporters)
        handler = _CaptureHandler()
        output = self.bound.invoke(input_, _with_handler(config, handler), **kwargs)
        try:
            job = self._job(output, handler, input_)
            context = self._context(run_manager, captured)
            result = run_job(self.attributor, job, self.exporters, context, timeout=self.timeout)
            payload = attribution_payload(result)
            _dispatch(payload, config)
            attached = _attached(output, payload)
            if attached is None:
                _record_child_run(run_manager, job.answer, payload)
        except Exception:  # never break the user's call
            logger.exception(_ATTACH_FAILED)
            return output
        return output if attached is None else attached

    async def _ainvoke(
        self,
        input_: Any,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        captured = capture_context(self.exporters)
        handler = _CaptureHandler()
        output = await self.bound.ainvoke(input_, _with_handler(config, handler), **kwargs)
        try:
            job = self._job(output, handler, input_)
            context = self._context(run_manager, captured)
            result = await arun_job(
                self.attributor, job, self.exporters, context, timeout=self.timeout
            )
            payload = attribution_payload(result)
            await _adispatch(payload, config)
            attached = _attached(output, payload)
            if attached is None:
                await _arecord_child_run(run_manager, job.answer, payload)
        except Exception:  # never break the user's call
            logger.exception(_ATTACH_FAILED)
            return output
        return output if attached is None else attached

    def _job(self, output: Any, handler: _CaptureHandler, inputs: Any) -> Job:
        job = _job(
            _text_of(output) or handler.capture.llm_text, handler.capture, _question_of(inputs)
        )
        self._reporter.report(job.problem)
        return job

    def _context(
        self,
        run_manager: CallbackManagerForChainRun | AsyncCallbackManagerForChainRun,
        captured: Mapping[str, Any],
    ) -> dict[str, Any]:
        return _context(
            captured, run_manager.run_id, self.name, run_manager.tags, run_manager.metadata
        )

    # -- streams

    @override
    def transform(
        self, input: Iterator[Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        """`stream` over a stream of inputs (when the wrapper follows another streaming step)."""
        yield from self._transform_stream_with_config(input, self._transform, config, **kwargs)

    @override
    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        """Stream the chain's chunks unchanged, then one chunk carrying the attribution.

        Message streams end with an empty `AIMessageChunk`, dict streams with
        `{"attribution": ...}` (both merge with `+`); text streams get no extra chunk. An early
        break attaches nothing. While chunks flow, the documents and each finished answer
        sentence are encoded on a worker thread, so only the last sentence is left at the end.
        """
        yield from self.transform(iter([input]), config, **kwargs)

    @override
    async def atransform(
        self, input: AsyncIterator[Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Async `transform`."""
        async for chunk in self._atransform_stream_with_config(
            input, self._atransform, config, **kwargs
        ):
            yield chunk

    @override
    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Async `stream`."""

        async def single() -> AsyncIterator[Any]:
            yield input

        async for chunk in self.atransform(single(), config, **kwargs):
            yield chunk

    def _transform(
        self,
        inputs: Iterator[Any],
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Iterator[Any]:
        tap = _StreamCall(self, run_manager, config)
        chunks = self.bound.transform(_tap(inputs, tap.inputs), tap.config, **kwargs)
        yield from tap_iter(chunks, tap)

    async def _atransform(
        self,
        inputs: AsyncIterator[Any],
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        tap = _StreamCall(self, run_manager, config)
        chunks = self.bound.atransform(_atap(inputs, tap.inputs), tap.config, **kwargs)
        async for chunk in tap_aiter(chunks, tap):
            yield chunk


class _StreamCall:
    """One streamed call of an `AttributedRunnable`: follows its chunks, attributes at the end."""

    def __init__(
        self,
        owner: AttributedRunnable,
        run_manager: CallbackManagerForChainRun | AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> None:
        self.owner = owner
        self.run_manager = run_manager
        self.captured = capture_context(owner.exporters)
        self.handler = _CaptureHandler()
        self.config = _with_handler(config, self.handler)
        self.user_config = config
        self.inputs: list[Any] = []
        self.total: Any = None
        self.warmer = Warmer(owner.attributor, self._sources)

    def _sources(self) -> tuple[list[Source], str | None]:
        sources, query = self.handler.sources()
        return sources, _question_of(_combine(self.inputs)) or query

    def on_chunk(self, chunk: Any) -> None:
        self.total = _add(self.total, chunk)
        self.warmer.follow(_text_of(self.total))

    def on_stop(self) -> None:
        self.warmer.close()

    def _prepare(self) -> tuple[Job, dict[str, Any]]:
        job = self.owner._job(self.total, self.handler, _combine(self.inputs))
        return job, self.owner._context(self.run_manager, self.captured)

    def finish(self) -> Any:
        owner = self.owner
        self.warmer.settle(owner.timeout)
        job, context = self._prepare()
        result = run_job(owner.attributor, job, owner.exporters, context, timeout=owner.timeout)
        payload = attribution_payload(result)
        _dispatch(payload, self.user_config)
        final = _final_chunk(self.total, payload)
        if final is None:
            if isinstance(self.run_manager, CallbackManagerForChainRun):
                _record_child_run(self.run_manager, job.answer, payload)
            return NO_CHUNK
        return final

    async def afinish(self) -> Any:
        owner = self.owner
        await self.warmer.asettle(owner.timeout)
        job, context = self._prepare()
        result = await arun_job(
            owner.attributor, job, owner.exporters, context, timeout=owner.timeout
        )
        payload = attribution_payload(result)
        await _adispatch(payload, self.user_config)
        final = _final_chunk(self.total, payload)
        if final is None:
            if isinstance(self.run_manager, AsyncCallbackManagerForChainRun):
                await _arecord_child_run(self.run_manager, job.answer, payload)
            return NO_CHUNK
        return final


def _tap(inputs: Iterator[Any], seen: list[Any]) -> Iterator[Any]:
    for item in inputs:
        seen.append(item)
        yield item


async def _atap(inputs: AsyncIterator[Any], seen: list[Any]) -> AsyncIterator[Any]:
    async for item in inputs:
        seen.append(item)
        yield item


def _attached(output: Any, payload: dict[str, Any]) -> Any:
    """A copy of `output` carrying `payload`, or None for shapes that cannot carry it."""
    if isinstance(output, AIMessage):
        metadata = {**output.response_metadata, EVENT_NAME: payload}
        return output.model_copy(update={"response_metadata": metadata})
    if isinstance(output, Mapping):
        return {**output, EVENT_NAME: payload}
    if isinstance(output, str):
        return {"answer": str(output), EVENT_NAME: payload}
    return None


def _final_chunk(total: Any, payload: dict[str, Any]) -> Any:
    """The extra last chunk of a stream, or None where one would not merge with `+`."""
    if isinstance(total, BaseMessageChunk):
        empty: str | list[Any] = "" if isinstance(total.content, str) else []
        return AIMessageChunk(content=empty, response_metadata={EVENT_NAME: payload})
    if isinstance(total, Mapping):
        return AddableDict({EVENT_NAME: payload})
    # Text streams must stay joinable, and whole-message streams do not add up (`AIMessage +
    # AIMessageChunk` builds a prompt): those get the custom event and the child run only.
    return None


def _dispatch(payload: dict[str, Any], config: RunnableConfig) -> None:
    try:
        dispatch_custom_event(EVENT_NAME, payload, config=config)
    except Exception:  # a user's handler may raise; the chain's output matters more
        logger.warning("rag_attrib: dispatching the attribution event failed", exc_info=True)


async def _adispatch(payload: dict[str, Any], config: RunnableConfig) -> None:
    try:
        await adispatch_custom_event(EVENT_NAME, payload, config=config)
    except Exception:  # a user's handler may raise; the chain's output matters more
        logger.warning("rag_attrib: dispatching the attribution event failed", exc_info=True)


def _record_child_run(
    run_manager: CallbackManagerForChainRun, answer: str, payload: dict[str, Any]
) -> None:
    """A child run named "attribution" whose outputs hold the payload.

    Run-based tracers (LangSmith) ignore custom events and record run outputs only; outputs
    that cannot carry the payload (text streams) would otherwise leave no trace of it.
    """
    try:
        child = run_manager.get_child().on_chain_start(None, {"answer": answer}, name=EVENT_NAME)
        child.on_chain_end({EVENT_NAME: payload})
    except Exception:
        logger.warning("rag_attrib: recording the attribution run failed", exc_info=True)


async def _arecord_child_run(
    run_manager: AsyncCallbackManagerForChainRun, answer: str, payload: dict[str, Any]
) -> None:
    try:
        child = await run_manager.get_child().on_chain_start(
            None, {"answer": answer}, name=EVENT_NAME
        )
        await child.on_chain_end({EVENT_NAME: payload})
    except Exception:
        logger.warning("rag_attrib: recording the attribution run failed", exc_info=True)


def with_attribution(
    chain: Runnable[Any, Any],
    attributor: Attributor | None = None,
    *,
    exporters: Iterable[Exporter] = (),
    name: str | None = None,
    timeout: float | None = None,
) -> AttributedRunnable:
    """Wrap `chain` so every call returns its output with the attribution attached.

    Each call gets its own capture handler, so `batch`, `abatch`, threads and `asyncio.gather`
    never mix documents. The output is copied, never mutated:

    - `AIMessage` -> `response_metadata["attribution"]`
    - `dict` -> `out["attribution"]`
    - `str` -> `{"answer": out, "attribution": ...}`
    - message streams end with `AIMessageChunk(content="", response_metadata={"attribution":
      ...})`, dict streams with `{"attribution": ...}`; text streams are unchanged.

    Every call also dispatches the custom event "attribution" (seen by `astream_events` and
    custom handlers), and the wrapper run's outputs (or, for text streams, a child run named
    "attribution") hold the payload for run-based tracers. Streams encode the documents and
    each answer sentence as soon as it is complete (on a worker thread), so the attribution
    follows the last chunk after one sentence's encoding; the result is the one `invoke` gives.

    Args:
        chain: the Runnable to wrap (e.g. `retriever | prompt | model | parser`).
        attributor: the `Attributor`; None uses a shared one over the bundled model.
        exporters: exporters that receive each result.
        name: the wrapper run's name in traces (default "with_attribution").
        timeout: seconds an attribution may take; past it the call returns the chain's
            output with an attribution whose `error` is "timed out". None: no limit.

    Returns:
        A Runnable.

    Example:
        >>> cited = with_attribution(rag_chain)
        >>> out = cited.invoke("When did the fire start?")
        >>> out["attribution"]["citations"][0]["cited_text"]
    """
    return AttributedRunnable(chain, attributor, exporters=exporters, name=name, timeout=timeout)


# --- embeddings ----------------------------------------------------------------------------


class MiniLMEmbeddings(Embeddings):
    """LangChain `Embeddings` over a rag_attrib embedder, for vector stores that run offline.

    Args:
        attributor_or_embedder: an `Attributor` (its embedder and cache are shared), any
            `Embedder`, or None for the shared default (the bundled all-MiniLM-L6-v2).

    Example:
        >>> store = InMemoryVectorStore(MiniLMEmbeddings())
    """

    def __init__(self, attributor_or_embedder: Attributor | Embedder | None = None) -> None:
        self._given = attributor_or_embedder

    @property
    def embedder(self) -> Embedder:
        """The embedder in use (the default one is created on first access)."""
        given = self._given
        if given is None:
            return default_attributor().embedder
        if isinstance(given, Attributor):
            return given.embedder
        return given

    @override
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed `texts`; rows have unit length."""
        if not texts:
            return []
        return cast("list[list[float]]", self.embedder.encode(texts).tolist())

    @override
    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        return self.embed_documents([text])[0]
