"""`with_attribution(chain)`: a wrapper Runnable that returns the output with its attribution."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.runnables import ConfigurableFieldSpec, Runnable, RunnableConfig, ensure_config
from typing_extensions import override

from ...convert import attribution_payload
from ...engine import Attributor
from ...export.base import Exporter, capture_context
from ...markers import Numbering
from ...repair import CitationRepair
from ...results import AttributionResult, Source
from .._citations import check_options, repair
from .._pipeline import Job, Reporter, arun_job, check_timeout, run_job
from .._streams import NO_CHUNK, Warmer, tap_aiter, tap_iter
from ._capture import CaptureHandler, thread_documents
from ._deliver import (
    ChunkMode,
    adispatch,
    arecord_child_run,
    attached,
    dispatch,
    final_chunk,
    record_child_run,
    unwrapped,
    with_answer,
    with_handler,
)
from ._events import EventsHandler
from ._read import GraphStream, add_chunks, answer_of, combine, question_of, thread_of
from .handler import run_context

__all__ = ["AttributedRunnable", "ChunkMode", "with_attribution"]

logger = logging.getLogger("rag_attrib.integrations.langchain")

_ATTACH_FAILED = "rag_attrib: attaching the attribution failed; the chain output is unchanged"
_CHUNK_MODES = ("auto", "always", "never")


class AttributedRunnable(Runnable[Any, Any]):
    """Runs `bound` and returns its output with the attribution attached (see `with_attribution`).

    Args:
        bound: the chain, graph or agent to run.
        attributor, exporters, name, timeout, attribution_chunk, on_result,
            repair_citations, citation_numbering, exact_support: see `with_attribution`.
    """

    def __init__(
        self,
        bound: Runnable[Any, Any],
        attributor: Attributor | None = None,
        *,
        exporters: Iterable[Exporter] = (),
        name: str | None = None,
        timeout: float | None = None,
        attribution_chunk: ChunkMode = "auto",
        on_result: Callable[[AttributionResult], None] | None = None,
        repair_citations: bool = False,
        citation_numbering: Numbering = "auto",
        exact_support: bool = False,
    ) -> None:
        if attribution_chunk not in _CHUNK_MODES:
            msg = f"attribution_chunk must be one of {_CHUNK_MODES}; got {attribution_chunk!r}"
            raise ValueError(msg)
        self.bound = bound
        self.attributor = attributor
        self.exporters: tuple[Exporter, ...] = tuple(exporters)
        self.name = name or "with_attribution"
        self.timeout = check_timeout(timeout)
        self.attribution_chunk: ChunkMode = attribution_chunk
        self.on_result = on_result
        self.repair_citations = bool(repair_citations)
        self.citation_options = check_options(citation_numbering, exact_support)
        self._reporter = Reporter(logger)
        self._lock = threading.Lock()
        self._last: AttributionResult | None = None
        self._threads = thread_documents()  # what each conversation thread's calls found

    @property
    def last_result(self) -> AttributionResult | None:
        """The most recently finished call's result (also for streams that carry no chunk)."""
        with self._lock:
            return self._last

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

    # -- shared steps

    def _job(self, output: Any, handler: CaptureHandler, inputs: Any) -> Job:
        job = handler.job(output, question_of(inputs), inputs)
        handler.remember(self._threads, inputs, job.answer)
        self._reporter.report(job.problem)
        return job

    def _context(
        self,
        run_manager: CallbackManagerForChainRun | AsyncCallbackManagerForChainRun,
        captured: Mapping[str, Any],
    ) -> dict[str, Any]:
        return run_context(
            captured, run_manager.run_id, self.name, run_manager.tags, run_manager.metadata
        )

    def _attribute(self, job: Job, context: Mapping[str, Any]) -> AttributionResult:
        """Attribute, check the answer's citations and export, with this wrapper's settings."""
        return run_job(
            self.attributor,
            job,
            self.exporters,
            context,
            timeout=self.timeout,
            citations=self.citation_options,
        )

    async def _aattribute(self, job: Job, context: Mapping[str, Any]) -> AttributionResult:
        return await arun_job(
            self.attributor,
            job,
            self.exporters,
            context,
            timeout=self.timeout,
            citations=self.citation_options,
        )

    def _repair(self, result: AttributionResult) -> CitationRepair | None:
        """The answer with its markers repaired, when asked for and there are markers."""
        return repair(result.citation_check) if self.repair_citations else None

    def _done(self, result: AttributionResult, fix: CitationRepair | None) -> dict[str, Any]:
        """Keep the result, hand it to `on_result`, and return its payload."""
        with self._lock:
            self._last = result
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:  # the user's callback must not break their own chain
                logger.warning("rag_attrib: the on_result callback raised", exc_info=True)
        return attribution_payload(result, fix)

    def _shown(self, output: Any, answer: str, fix: CitationRepair | None) -> Any:
        """The output the caller gets: with the repaired answer when a marker changed."""
        if fix is None or not fix.changes:
            return output
        return with_answer(output, answer, fix.text)

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
        handler = CaptureHandler(thread_of(config), self._threads)
        output = self.bound.invoke(input_, with_handler(config, handler), **kwargs)
        if handler.capture.interrupted:  # paused: the call that resumes it answers
            return output
        try:
            value, wrap = unwrapped(output)
            job = self._job(value, handler, input_)
            context = self._context(run_manager, captured)
            result = self._attribute(job, context)
            fix = self._repair(result)
            payload = self._done(result, fix)
            dispatch(payload, config)
            carried = attached(self._shown(value, job.answer, fix), payload)
            if carried is None:
                record_child_run(run_manager, job.answer, payload)
        except Exception:  # never break the user's call
            logger.exception(_ATTACH_FAILED)
            return output
        return output if carried is None else wrap(carried)

    async def _ainvoke(
        self,
        input_: Any,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        captured = capture_context(self.exporters)
        handler = CaptureHandler(thread_of(config), self._threads)
        output = await self.bound.ainvoke(input_, with_handler(config, handler), **kwargs)
        if handler.capture.interrupted:  # paused: the call that resumes it answers
            return output
        try:
            value, wrap = unwrapped(output)
            job = self._job(value, handler, input_)
            context = self._context(run_manager, captured)
            result = await self._aattribute(job, context)
            fix = self._repair(result)
            payload = self._done(result, fix)
            await adispatch(payload, config)
            carried = attached(self._shown(value, job.answer, fix), payload)
            if carried is None:
                await arecord_child_run(run_manager, job.answer, payload)
        except Exception:  # never break the user's call
            logger.exception(_ATTACH_FAILED)
            return output
        return output if carried is None else wrap(carried)

    # -- typed event streams

    @override
    def stream_events(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        version: Literal["v1", "v2", "v3"] = "v2",
        **kwargs: Any,
    ) -> Any:
        """As the bound Runnable's; `version="v3"` (LangGraph's typed stream, as in its
        agentic RAG tutorial) returns the bound graph's own stream object, unchanged, and the
        run is attributed when it ends: read `last_result` or pass `on_result=`."""
        if version != "v3":
            return super().stream_events(input, config, version=version, **kwargs)
        return self.bound.stream_events(input, self._events_config(config), version="v3", **kwargs)

    @override
    def astream_events(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        version: Literal["v1", "v2", "v3"] = "v2",
        **kwargs: Any,
    ) -> Any:
        """Async `stream_events`; v1/v2 streams also carry the "attribution" custom event."""
        if version != "v3":
            return super().astream_events(input, config, version=version, **kwargs)
        return self.bound.astream_events(input, self._events_config(config), version="v3", **kwargs)

    def _events_config(self, config: RunnableConfig | None) -> RunnableConfig:
        handler = EventsHandler(
            self.attributor,
            exporters=self.exporters,
            timeout=self.timeout,
            citation_options=self.citation_options,
            reporter=self._reporter,
            deliver=lambda result: self._done(result, self._repair(result)),
            threads=self._threads,
        )
        return with_handler(ensure_config(config), handler)

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
        """Stream the chain's chunks unchanged, then (where chunks add up) one carrying the
        attribution.

        Message streams end with an empty `AIMessageChunk`, `AddableDict` streams with
        `{"attribution": ...}` (both merge with `+`). Text streams and LangGraph streams (any
        `stream_mode` or list of modes, `subgraphs=True`, `version="v2"`) get no extra chunk,
        so loops such as `event["messages"][-1]` keep working: read `last_result`, pass
        `on_result=`, or listen for the "attribution" custom event. A graph's answer is read
        from the state it ends with, as `invoke` returns it. An early break attaches nothing.
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
        call = _StreamCall(self, run_manager, config, kwargs)
        yield from tap_iter(self.bound.transform(call.read(inputs), call.config, **kwargs), call)

    async def _atransform(
        self,
        inputs: AsyncIterator[Any],
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        call = _StreamCall(self, run_manager, config, kwargs)
        chunks = self.bound.atransform(call.aread(inputs), call.config, **kwargs)
        async for chunk in tap_aiter(chunks, call):
            yield chunk


class _StreamCall:
    """One streamed call of an `AttributedRunnable`: follows its chunks, attributes at the end.

    A LangGraph stream (of a graph, or a call naming `stream_mode`, `subgraphs` or `version`)
    is read as `invoke` reads the graph: its answer is in the final state the graph run
    returns, whatever the chunks carry (a mode list's `(mode, chunk)` tuples, subgraph
    namespaces, `StreamPart` dicts, "custom" data, token pairs); the chunks only feed the
    warmer. Such a stream gets a last chunk only with `attribution_chunk="always"`, in the
    stream's shape (`("custom", {"attribution": ...})` for a list of modes).
    """

    def __init__(
        self,
        owner: AttributedRunnable,
        run_manager: CallbackManagerForChainRun | AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        kwargs: Mapping[str, Any],
    ) -> None:
        self.owner = owner
        self.run_manager = run_manager
        self.captured = capture_context(owner.exporters)
        self.handler = CaptureHandler(thread_of(config), owner._threads)
        self.config = with_handler(config, self.handler)
        self.user_config = config
        self.inputs: list[Any] = []
        self.total: Any = None  # the chunks added up; for a graph stream its last own state
        self.graph = GraphStream.of(kwargs, getattr(owner.bound, "stream_mode", None))
        self.warmer = Warmer(owner.attributor, self._sources)

    def read(self, inputs: Iterator[Any]) -> Iterator[Any]:
        for item in inputs:
            self.inputs.append(item)
            yield item

    async def aread(self, inputs: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for item in inputs:
            self.inputs.append(item)
            yield item

    def _sources(self) -> tuple[list[Source], str | None]:
        inputs = combine(self.inputs)
        sources, query = self.handler.sources(inputs)
        return sources, question_of(inputs) or query

    def on_chunk(self, chunk: Any) -> None:
        if self.graph is None:
            self.total = add_chunks(self.total, chunk)
        else:
            state = self.graph.state(chunk)
            if state is None:
                return
            self.total = state
        self.warmer.follow(answer_of(self.total))

    def on_stop(self) -> None:
        self.warmer.close()

    def _prepare(self) -> tuple[Job, dict[str, Any]]:
        output = self.total if self.graph is None else self.handler.final_output(self.total)
        job = self.owner._job(output, self.handler, combine(self.inputs))
        return job, self.owner._context(self.run_manager, self.captured)

    def _final(self, payload: dict[str, Any]) -> Any:
        if self.graph is None:
            return final_chunk(self.total, payload, self.owner.attribution_chunk)
        final = final_chunk(None, payload, self.owner.attribution_chunk)  # never added up
        return final if final is NO_CHUNK else self.graph.shaped(final)

    def finish(self) -> Any:
        if self.handler.capture.interrupted:  # paused: the call that resumes it answers
            return NO_CHUNK
        owner = self.owner
        self.warmer.settle(owner.timeout)
        job, context = self._prepare()
        result = owner._attribute(job, context)
        payload = owner._done(result, owner._repair(result))  # the stream is never rewritten
        dispatch(payload, self.user_config)
        final = self._final(payload)
        if final is NO_CHUNK and isinstance(self.run_manager, CallbackManagerForChainRun):
            record_child_run(self.run_manager, job.answer, payload)
        return final

    async def afinish(self) -> Any:
        if self.handler.capture.interrupted:  # paused: the call that resumes it answers
            return NO_CHUNK
        owner = self.owner
        await self.warmer.asettle(owner.timeout)
        job, context = self._prepare()
        result = await owner._aattribute(job, context)
        payload = owner._done(result, owner._repair(result))  # the stream is never rewritten
        await adispatch(payload, self.user_config)
        final = self._final(payload)
        if final is NO_CHUNK and isinstance(self.run_manager, AsyncCallbackManagerForChainRun):
            await arecord_child_run(self.run_manager, job.answer, payload)
        return final


def with_attribution(
    chain: Runnable[Any, Any],
    attributor: Attributor | None = None,
    *,
    exporters: Iterable[Exporter] = (),
    name: str | None = None,
    timeout: float | None = None,
    attribution_chunk: ChunkMode = "auto",
    on_result: Callable[[AttributionResult], None] | None = None,
    repair_citations: bool = False,
    citation_numbering: Numbering = "auto",
    exact_support: bool = False,
) -> AttributedRunnable:
    """Wrap `chain` (an LCEL chain, a LangGraph graph, an agent) so every call is attributed.

    Each call gets its own capture handler, so `batch`, `abatch`, threads and `asyncio.gather`
    never mix documents. The output is copied, never mutated:

    - `AIMessage` -> `response_metadata["attribution"]`
    - `dict` (a graph's final state too) -> `out["attribution"]`
    - `str` -> `{"answer": out, "attribution": ...}`
    - streams: see `AttributedRunnable.stream` and `attribution_chunk`.

    Every call also dispatches the custom event "attribution" (seen by `astream_events` and
    custom handlers), calls `on_result`, sets `last_result`, and the wrapper run's outputs
    (or, where the output cannot carry it, a child run named "attribution") hold the payload
    for run-based tracers. Streams encode the documents and each answer sentence as soon as it
    is complete (on a worker thread); the result is the one `invoke` gives.

    When the answer cites its sources itself (`[1]` markers, `[^2]`, `<cite id=...>`, "Source
    3"; a structured output's source ids such as `CitedAnswer(answer, citations)`; Anthropic
    citation blocks, web-search citations naming the URL of a document a tool returned), the
    attribution also holds `citation_check`: a verdict per citation
    (`rag_attrib.CitationReport`), from the same attribution. The prompt's labels ("Source 1:",
    "Source ID: 0") say whether numbers count from 0 or 1, unless `citation_numbering` does.

    Args:
        chain: the Runnable to wrap (e.g. `retriever | prompt | model | parser`, a graph).
        attributor: the `Attributor`; None uses a shared one over the bundled model.
        exporters: exporters that receive each result.
        name: the wrapper run's name in traces (default "with_attribution").
        timeout: seconds an attribution may take; past it the call returns the chain's
            output with an attribution whose `error` is "timed out". None: no limit.
        attribution_chunk: "auto" ends a stream with an attribution chunk only where chunks
            add up (message chunks, `AddableDict`); "always" also ends text and graph
            streams with `AddableDict({"attribution": ...})` (the loop must expect it), in the
            graph stream's shape (`("custom", {...})` for a list of modes, `((), {...})` with
            `subgraphs=True`); "never" adds none.
        on_result: called with each call's `AttributionResult` (errors in it are logged).
        repair_citations: return the answer with its written markers repaired: a wrong marker
            names the source that backs its claim, a dangling one is dropped. Only the marker
            characters change; the attribution (its offsets, `answer`) stays the LLM's text,
            and `attribution["citation_repair"]` lists each change. Rewritten: a str output,
            a message whose content is a str, the answer under a dict's key or a graph
            state's last answering message. Never rewritten: streams (already sent; the
            payload still says what would change), content-block lists, structured outputs.
        citation_numbering: how the answer's numbers (written markers, a structured output's
            ids) name the sources: "1-based", "0-based", "ids", or "auto" (read from the
            prompt's labels, else guessed as `check_citations` does). Provider citations
            (`document_index`, URLs) need none.
        exact_support: as for `check_citations`: each citation's `support` against only the
            sources its sentence cites, at the cost of attributing each cited sentence again.

    Returns:
        A Runnable.

    Raises:
        ValueError: a bad `timeout` or `attribution_chunk`; `ConfigError` (a ValueError) a
            bad `citation_numbering`.

    Example:
        >>> cited = with_attribution(rag_chain)
        >>> out = cited.invoke("When did the fire start?")
        >>> out["attribution"]["citations"][0]["cited_text"]
    """
    return AttributedRunnable(
        chain,
        attributor,
        exporters=exporters,
        name=name,
        timeout=timeout,
        attribution_chunk=attribution_chunk,
        on_result=on_result,
        repair_citations=repair_citations,
        citation_numbering=citation_numbering,
        exact_support=exact_support,
    )
