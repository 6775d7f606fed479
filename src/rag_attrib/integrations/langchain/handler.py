"""`AttributionCallbackHandler`: attribute every invocation of an unchanged chain or graph."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from uuid import UUID

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration
from langchain_core.tracers.context import register_configure_hook
from typing_extensions import override

from ...convert import attribution_payload
from ...engine import Attributor
from ...errors import ConfigError
from ...export.base import Exporter, capture_context
from ...markers import Numbering
from ...results import AttributionResult, Source
from .._citations import check_options
from .._pipeline import Reporter, check_timeout, export_context, run_job
from .._streams import Warmer
from ._capture import Capture, Collector, build_job, remember, thread_documents
from ._read import question_of, thread_of, token_text

__all__ = ["EVENT_NAME", "AttributionCallbackHandler", "attribution_callback", "run_context"]

logger = logging.getLogger("rag_attrib.integrations.langchain")

EVENT_NAME = "attribution"
"""Name of the custom event (`on_custom_event` in `astream_events`) and of the metadata key."""


def run_context(
    captured: Mapping[str, Any], run_id: UUID, name: str | None, tags: Any, metadata: Any
) -> dict[str, Any]:
    """The export context of a LangChain run: what exporters captured, plus the run's ids."""
    return export_context(
        captured,
        "langchain",
        run_id=str(run_id),
        run_name=name,
        tags=list(tags or []),
        metadata=dict(metadata or {}),
    )


@dataclass(slots=True)
class _Root:
    """A root run being tracked: its capture, its descendants, and what its start reported."""

    capture: Capture
    inputs: Any
    name: str | None
    tags: list[str]
    metadata: dict[str, Any]
    captured: dict[str, Any]  # exporters' view of the caller's context (e.g. the OTel span)
    runs: list[UUID] = field(default_factory=list)
    warmers: dict[UUID, Warmer] = field(default_factory=dict)  # by LLM run

    def close_warmers(self) -> None:
        for warmer in self.warmers.values():
            warmer.close()


class AttributionCallbackHandler(Collector):
    """Attribute the answer of each chain or graph invocation it sees to its documents.

    Add it to the config of an unchanged chain, graph or agent. Runs are grouped by their root
    run (the invocation). When the root run ends, the answer it returned (see the README for
    where it is looked for) is attributed to the documents it was given or its runs produced
    (retrievers, tools, chain and node outputs, `add_sources`) that reached the answering
    LLM. State is kept behind a lock and released when the root ends, so one handler may serve
    concurrent `batch`/`abatch` calls and threads. A call with nothing to cite or no answer logs one
    WARNING per handler and cause, and carries it in the result's `error`.

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
        citation_numbering, exact_support: how the answer's own citations are checked, as
            for `with_attribution` (the handler checks them, it never repairs them).

    Raises:
        ConfigError: `max_results` is below 1, or `citation_numbering` is not one of
            "auto", "1-based", "0-based", "ids".
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
        citation_numbering: Numbering = "auto",
        exact_support: bool = False,
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
        self.citation_options = check_options(citation_numbering, exact_support)
        self._reporter = Reporter(logger)
        self._root_of: dict[UUID, UUID] = {}
        self._roots: dict[UUID, _Root] = {}
        self._results: OrderedDict[UUID, AttributionResult] = OrderedDict()
        self._last: AttributionResult | None = None
        self._threads = thread_documents()

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
    def _enter(self, run_id: UUID, parent_run_id: UUID | None) -> Capture | None:
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
    def _lookup(self, run_id: UUID) -> Capture | None:
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
    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Start tracking a root run, or register a chain inside one."""
        parent_run_id = kwargs.get("parent_run_id")
        with self._lock:
            if run_id in self._root_of:  # the same handler attached twice: events repeat
                return
            if parent_run_id is not None and parent_run_id in self._root_of:
                capture = self._enter(run_id, parent_run_id)
                if capture is not None:
                    capture.start(run_id, parent_run_id, "chain")
                return
            # No parent, or one this handler never saw (attached to a sub-chain): a root.
            name = kwargs.get("name") or (serialized or {}).get("name")
            key = self._thread(name, kwargs.get("metadata"))
            self._roots[run_id] = _Root(
                Capture(thread=key, history=self._threads.history(key)),
                inputs,
                name,
                list(kwargs.get("tags") or []),
                dict(kwargs.get("metadata") or {}),
                capture_context(self.exporters),
            )
            self._root_of[run_id] = run_id
            self._roots[run_id].capture.start(run_id, None, "chain")

    def _thread(self, name: str | None, metadata: Any) -> Hashable | None:
        """The key of the conversation thread a root run continues: one handler may serve two
        graphs whose thread ids repeat, so the graph's run name is part of it."""
        thread = thread_of(metadata)
        return None if thread is None else (name, thread)

    @override
    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Encode each answer sentence as soon as the streamed tokens complete it."""
        text = token_text(token)
        if not text:
            return
        with self._lock:
            root_id = self._root_of.get(run_id)
            root = self._roots.get(root_id) if root_id else None
            if root is None or root.capture.within(run_id, ("retriever", "tool")):
                return
            warmer = root.warmers.get(run_id)
            if warmer is None:
                warmer = Warmer(self.attributor, lambda: self._sources(root))
                root.warmers[run_id] = warmer
        warmer.add(text)

    def _sources(self, root: _Root) -> tuple[list[Source], str | None]:
        with self._lock:
            return root.capture.sources(root.inputs), question_of(root.inputs)

    @override
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Drop a failed root run: there is no answer to attribute."""
        super().on_chain_error(error, run_id=run_id, **kwargs)
        root = self._release(run_id)
        if root is not None:
            root.close_warmers()

    @override
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """At the end of a root run: attribute, export, keep, and attach."""
        super().on_chain_end(outputs, run_id=run_id, **kwargs)
        root = self._release(run_id)
        if root is None:
            return
        try:
            self._finish(run_id, root, outputs, kwargs.get("inputs"))
        except Exception:  # never raise into the chain
            logger.exception("rag_attrib: attributing run %s failed", run_id)

    def _finish(self, run_id: UUID, root: _Root, outputs: Any, inputs: Any) -> None:
        capture = root.capture
        root.close_warmers()  # text not encoded yet goes into the final attribution's batch
        if capture.open_llms or capture.generation is None or capture.interrupted:
            # An LLM that has not finished means the stream was closed early: the output is
            # partial, so nothing is attributed. No LLM at all: nothing to attribute. An
            # interrupted graph answers in the call that resumes it.
            logger.debug("rag_attrib: run %s ended without a finished LLM answer", run_id)
            return
        for warmer in root.warmers.values():  # streamed sentences: only the last one is left
            warmer.settle(self.timeout)
        given = inputs if inputs is not None else root.inputs  # a stream's come at its end
        job = build_job(capture, outputs, question_of(given), given)
        remember(self._threads, capture, given, job.answer)
        self._reporter.report(job.problem)
        context = run_context(root.captured, run_id, root.name, root.tags, root.metadata)
        result = run_job(
            self.attributor,
            job,
            self.exporters,
            context,
            timeout=self.timeout,
            citations=self.citation_options,
        )
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
    citation_numbering: Numbering = "auto",
    exact_support: bool = False,
) -> Iterator[AttributionCallbackHandler]:
    """Attribute every chain run inside the `with` block (like `get_usage_metadata_callback`).

    Args:
        attributor, exporters, max_results, attach, timeout, citation_numbering,
            exact_support: as for `AttributionCallbackHandler`.

    Returns:
        A context manager yielding the handler; read `handler.results` after the calls.

    Example:
        >>> with attribution_callback() as handler:
        ...     chain.invoke("Who built the first telescope?")
        >>> handler.last_result.answer_sentences[0].citations
    """
    handler = AttributionCallbackHandler(
        attributor,
        exporters=exporters,
        max_results=max_results,
        attach=attach,
        timeout=timeout,
        citation_numbering=citation_numbering,
        exact_support=exact_support,
    )
    token = _handler_var.set(handler)
    try:
        yield handler
    finally:
        _handler_var.reset(token)
