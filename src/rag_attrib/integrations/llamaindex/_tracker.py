"""Follows LlamaIndex spans to the call each belongs to, and attributes the call's answer.

A *unit* is the outermost call whose answer the user reads: a query or chat engine call, a
response synthesizer called on its own (a RAG workflow's last step), or an agent run. Spans
under a unit belong to it. Inside an agent, query engines, synthesizers and nested agents are
units of their own that hand their evidence nodes to the agent instead of attributing.
Records live while their spans are open; a streaming chat's record also waits for its
history writer, the only place its whole answer is known.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from llama_index.core.agent.workflow import (
    AgentOutput,
    AgentWorkflow,
    BaseWorkflowAgent,
    ToolCallResult,
)
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.llms.types import ChatResponse
from llama_index.core.base.response.schema import (
    AsyncStreamingResponse,
    PydanticResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.chat_engine.types import (
    AgentChatResponse,
    BaseChatEngine,
    StreamingAgentChatResponse,
)
from llama_index.core.response_synthesizers import BaseSynthesizer
from llama_index.core.schema import NodeWithScore
from llama_index.core.workflow import StopEvent

from ...engine import Attributor
from ...export.base import Exporter, capture_context
from .._anthropic_stream import StreamedCitations, chunk_annotations, is_block_delta
from .._citations import CheckOptions, repair
from .._pipeline import Job, Reporter, arun_job, export_context, run_job
from .._streams import Warmer
from . import _read
from ._attach import deliver
from ._stream import wrap_stream

if TYPE_CHECKING:
    import inspect

__all__ = ["Settings", "Tracker"]

logger = logging.getLogger("rag_attrib.integrations.llamaindex")

Kind = Literal["engine", "synth", "agent"]

_QUERY_METHODS = frozenset({"query", "aquery"})
_CHAT_METHODS = frozenset({"chat", "achat", "stream_chat", "astream_chat"})
_SYNTH_METHODS = frozenset({"synthesize", "asynthesize"})
_WRITER_METHODS = frozenset({"write_response_to_history", "awrite_response_to_history"})
_UUID_SUFFIX = 37  # span ids are "<Class>.<method>-<uuid4>"
# an LLM's streaming methods (and *_with_tools)
_STREAMS = ("stream_chat", "astream_chat", "stream_complete", "astream_complete")
_LATE_MAX = 256  # streams opened and never read leave at most this many late spans
# A streaming query's LLM span opens after the query's span closed, under no span: its reply
# is kept in the context reading the stream, which attributes it when the stream ends.
_STRAY_REPLY: ContextVar[ChatResponse | None] = ContextVar("rag_attrib_reply", default=None)


@dataclass(frozen=True, slots=True)
class Settings:
    """What `instrument()` was given; a call keeps the settings it started with."""

    attributor: Attributor | None = None
    exporters: tuple[Exporter, ...] = ()
    timeout: float | None = None
    repair_citations: bool = False
    citations: CheckOptions = field(default_factory=CheckOptions)


@dataclass(slots=True)
class _Unit:
    """One call being traced."""

    span_id: str
    name: str
    kind: Kind
    question: str | None
    tags: dict[str, Any]
    settings: Settings
    parent: _Unit | None = None  # the agent this call runs under, if any
    captured: dict[str, Any] | None = None
    llm_texts: list[str] = field(default_factory=list)  # what LLMs said under this call
    reply: ChatResponse | None = None  # the last LLM reply under it: its citations
    retrieved: set[str] = field(default_factory=set)  # node ids retrievers returned
    retrieved_nodes: list[NodeWithScore] = field(default_factory=list)  # the same, kept (agents)
    # node id -> how many of `llm_texts` were said when the node was handed on (to a
    # synthesizer, or back from a tool): only those LLM calls can have written it
    handed: dict[str, int] = field(default_factory=dict)
    nodes: list[NodeWithScore] = field(default_factory=list)  # evidence from inner calls
    attributed: bool = False
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
        return export_context(
            self.captured or {},
            "llamaindex",
            span_id=self.span_id,
            span_name=self.name,
            streaming=streaming,
            tags=dict(self.tags),
        )

    def lineage(self) -> list[_Unit]:
        """This unit and the agents it runs under."""
        out: list[_Unit] = []
        unit: _Unit | None = self
        while unit is not None:
            out.append(unit)
            unit = unit.parent
        return out


@dataclass(slots=True)
class _Writer:
    """A streaming chat's history writer: the one place its whole answer is known."""

    unit: _Unit
    response: StreamingAgentChatResponse
    warmer: Warmer


def _kind(instance: object, method: str) -> Kind | None:
    if isinstance(instance, BaseQueryEngine) and method in _QUERY_METHODS:
        return "engine"
    if isinstance(instance, BaseChatEngine) and method in _CHAT_METHODS:
        return "engine"
    if isinstance(instance, BaseSynthesizer) and method in _SYNTH_METHODS:
        return "synth"
    if isinstance(instance, (BaseWorkflowAgent, AgentWorkflow)) and method == "run":
        return "agent"
    return None


def _split_span_id(span_id: str) -> tuple[str, str]:
    """Return ("Class.method", "method") from a "<Class>.<method>-<uuid4>" span id."""
    name = span_id[:-_UUID_SUFFIX] if len(span_id) > _UUID_SUFFIX else span_id
    return name, name.rpartition(".")[2]


def _agent_output(result: object) -> AgentOutput | None:
    """The `AgentOutput` a step or a run ends with: inside its `StopEvent`, not a step's own."""
    answer = result.result if isinstance(result, StopEvent) else None
    return answer if isinstance(answer, AgentOutput) else None


def _with_streamed(reply: ChatResponse, notes: StreamedCitations) -> ChatResponse:
    """A copy of a streamed reply holding the citations its chunks gave, as a reply made at
    once holds them: Claude's text blocks with their citations as its `raw`, Chat Completions
    annotations in its `additional_kwargs`; else the reply itself."""
    update: dict[str, Any] = {}
    content = notes.content()
    if content is not None:
        update["raw"] = {"content": content}
    annotations = notes.annotations()
    if annotations and not reply.additional_kwargs.get("annotations"):
        update["additional_kwargs"] = {**reply.additional_kwargs, "annotations": annotations}
    return reply.model_copy(update=update) if update else reply


def _has_writer(response: StreamingAgentChatResponse) -> bool:
    return (
        response.write_response_to_history_thread is not None
        or response.awrite_response_to_history_task is not None
    )


class Tracker:
    """Maps spans to their units and attributes each unit's answer; state behind a lock."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.reporter = Reporter(logger)
        # Re-entrant: a finalizer (`_release`) may run on this thread while the lock is held.
        self._lock = threading.RLock()
        self._units: dict[str, _Unit] = {}
        self._span_unit: dict[str, str] = {}
        self._writers: dict[str, _Writer] = {}
        # An LLM stream's span closes when the stream is handed out; its end event (the whole
        # reply) comes later: the unit of such a closed span, until that event.
        self._late: OrderedDict[str, str] = OrderedDict()
        # Per LLM stream span: which text block each Claude citation backs, read off its chunks
        # (the reply that ends the stream no longer says); bounded like `_late`.
        self._streamed: OrderedDict[str, StreamedCitations] = OrderedDict()

    def counts(self) -> dict[str, int]:
        """Open records per map (for tests: all zero once calls and streams have finished)."""
        with self._lock:
            return {
                "units": len(self._units),
                "spans": len(self._span_unit),
                "writers": len(self._writers),
            }

    # -- spans -------------------------------------------------------------------------------

    def enter(
        self,
        span_id: str,
        bound_args: inspect.BoundArguments,
        instance: object,
        parent_id: str | None,
        tags: dict[str, Any] | None,
    ) -> None:
        name, method = _split_span_id(span_id)
        kind = _kind(instance, method)
        with self._lock:
            outer = self._unit_of(parent_id)
            if outer is not None and (kind is None or outer.kind != "agent"):
                self._span_unit[span_id] = outer.span_id
                if method in _WRITER_METHODS and isinstance(instance, StreamingAgentChatResponse):
                    self._writers[span_id] = _Writer(outer, instance, self._warmer(outer, instance))
                if method in _SYNTH_METHODS and isinstance(instance, BaseSynthesizer):
                    self._hand(outer, _read.given_nodes(bound_args))
                return
            if kind is None:
                return
            question = _read.question_of(bound_args)
            unit = _Unit(span_id, name, kind, question, dict(tags or {}), self.settings, outer)
            self._units[span_id] = unit
            self._span_unit[span_id] = span_id
            if kind == "synth":
                self._hand(unit, _read.given_nodes(bound_args))

    def exit(self, span_id: str, result: object) -> None:
        with self._lock:
            unit = self._unit_of(span_id)
        if unit is not None:
            try:
                if isinstance(result, ToolCallResult):  # an agent's tool call step
                    with self._lock:
                        self._hand(unit, _read.tool_nodes(result.tool_output))
                if unit.kind == "agent" and not unit.attributed:
                    # The step that ends the run returns the output before the run hands it
                    # to the caller: attach there.
                    output = _agent_output(result)
                    if output is not None:
                        self._finish_agent(unit, output)
                if span_id == unit.span_id:
                    self._on_result(unit, result)
            finally:
                if isinstance(result, StreamingAgentChatResponse) and _has_writer(result):
                    if span_id == unit.span_id:
                        unit.awaits_writer = True
                        # a writer that never runs (a cancelled task) must not leak the record
                        unit.finalizer = weakref.finalize(result, self._release, span_id)
        self._close(span_id)

    def drop(self, span_id: str) -> None:
        self._close(span_id)

    def _hand(self, unit: _Unit, nodes: Sequence[NodeWithScore]) -> None:
        """Note `nodes` handed on under `unit` (the lock held): LLM calls made from now on
        may quote them, never have written them."""
        for owner in unit.lineage():
            for nws in nodes:
                owner.handed.setdefault(nws.node.node_id, len(owner.llm_texts))

    def _unit_of(self, span_id: str | None) -> _Unit | None:
        unit_id = self._span_unit.get(span_id) if span_id else None
        return self._units.get(unit_id) if unit_id else None

    def _llm_unit(self, span_id: str | None, *, last: bool) -> _Unit | None:
        """The unit an LLM call's event belongs to (the lock held). A stream's span closed
        before its end events: its unit is kept in `_late`, dropped at the `last` event."""
        if not span_id:
            return None
        late = self._late.pop(span_id, None) if last else self._late.get(span_id)
        return self._unit_of(span_id) or self._units.get(late or "")

    def _close(self, span_id: str) -> None:
        with self._lock:
            writer = self._writers.pop(span_id, None)
            if writer is not None:
                writer.warmer.close()
            unit = self._unit_of(span_id)
            if unit is None or span_id != unit.span_id:
                self._span_unit.pop(span_id, None)
            if unit is not None and span_id != unit.span_id:
                if _split_span_id(span_id)[1].startswith(_STREAMS):
                    self._late[span_id] = unit.span_id
                    while len(self._late) > _LATE_MAX:
                        self._late.popitem(last=False)
            if unit is None:
                return
            if writer is not None:
                unit.writer_done = True
            if span_id == unit.span_id:
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

    # -- events ------------------------------------------------------------------------------

    def retrieved(self, span_id: str | None, nodes: Sequence[NodeWithScore]) -> None:
        """Note nodes a retriever returned: they are documents, never generated text."""
        with self._lock:
            unit = self._unit_of(span_id)
            for owner in unit.lineage() if unit is not None else ():
                owner.retrieved.update(n.node.node_id for n in nodes)
                if owner.kind == "agent":
                    owner.retrieved_nodes.extend(nodes)

    def llm_said(self, span_id: str | None, text: str | None) -> None:
        """Note what an LLM wrote under a unit: a node holding it was written by the pipeline
        (its reply, `llm_replied`, follows)."""
        if not text:
            return
        with self._lock:
            unit = self._llm_unit(span_id, last=False)
            for owner in unit.lineage() if unit is not None else ():
                owner.llm_texts.append(text)

    def llm_streamed(self, span_id: str | None, raw: object) -> None:
        """Read a streamed chunk's `raw` (a chat's or a completion's): an Anthropic block
        delta, or the annotations on a Chat Completions chunk (other chunks cost two tests)."""
        if span_id is None:
            return
        block = is_block_delta(raw)
        annotations = [] if block else chunk_annotations(raw)
        if not block and not annotations:
            return
        with self._lock:
            notes = self._streamed.get(span_id)
            if notes is None:
                notes = self._streamed[span_id] = StreamedCitations()
                while len(self._streamed) > _LATE_MAX:
                    self._streamed.popitem(last=False)
            if block:
                notes.feed(raw)
            else:
                notes.annotate(annotations)

    def llm_replied(self, span_id: str | None, reply: ChatResponse) -> None:
        """Keep an LLM's last reply under a unit: the answer's citations are on it (a
        completion comes as a chat reply, `_read.completion_reply`)."""
        with self._lock:
            notes = self._streamed.pop(span_id, None) if span_id else None
        if notes is not None:
            reply = _with_streamed(reply, notes)
        with self._lock:
            unit = self._llm_unit(span_id, last=True)
            if unit is None and span_id and _split_span_id(span_id)[1].startswith(_STREAMS):
                _STRAY_REPLY.set(reply)
            for owner in unit.lineage() if unit is not None else ():
                owner.reply = reply

    def stream_chat_delta(self, span_id: str | None, delta: str) -> None:
        """Feed a streaming chat's new text to its warmer."""
        with self._lock:
            writer = self._writers.get(span_id) if span_id else None
        if writer is not None:
            writer.warmer.add(delta)

    def stream_chat_end(self, span_id: str | None) -> None:
        """Attribute a streaming chat answer: its history writer has the full text now."""
        with self._lock:
            writer = self._writers.get(span_id) if span_id else None
        if writer is None:
            return
        writer.warmer.settle()  # the finished sentences are encoded: the last is left
        # The writer sets `is_done` only after this event, so a caller consuming the stream
        # finishes after the attribution is attached.
        unit, response = writer.unit, writer.response
        if unit.parent is not None:
            self._hand_up(unit, _read.response_nodes(response))
            return
        self._attribute(unit, response, response.response, _read.response_nodes(response), True)

    # -- attributing ---------------------------------------------------------------------------

    def _history(self, unit: _Unit) -> tuple[list[str], set[str], dict[str, int]]:
        """What tells the unit's evidence from text its pipeline wrote (see `_read.evidence`):
        its LLM texts, the node ids retrieved, when each node was handed on; a copy."""
        with self._lock:
            return list(unit.llm_texts), set(unit.retrieved), dict(unit.handed)

    def _warmer(self, unit: _Unit, response: object) -> Warmer:
        def sources() -> tuple[list[Any], str | None]:
            texts, retrieved, handed = self._history(unit)
            nodes = _read.response_nodes(response)
            found, _ = _read.cited(nodes, texts, retrieved, handed=handed)
            return found, unit.question

        warmer = Warmer(unit.settings.attributor, sources)
        warmer.open()  # the writer starts before the first token: encode the nodes meanwhile
        return warmer

    def _job(self, unit: _Unit, answer: str, nodes: Sequence[NodeWithScore], target: object) -> Job:
        texts, retrieved, handed = self._history(unit)
        with self._lock:
            reply = unit.reply
        given = _read.given_citations(target) or _read.reply_citations(reply, answer)
        return _read.job(
            answer,
            nodes,
            unit.question,
            llm_texts=texts,
            retrieved=retrieved,
            handed=handed,
            given=given,
            empty=_read.nothing_to_cite(target, len(retrieved)),
            shown=_read.tool_texts(target),
        )

    def _attribute(
        self, unit: _Unit, target: object, answer: str, nodes: Sequence[NodeWithScore], stream: bool
    ) -> None:
        settings = unit.settings
        job = self._job(unit, answer, nodes, target)
        context = unit.context(streaming=stream)
        result = run_job(
            settings.attributor,
            job,
            settings.exporters,
            context,
            timeout=settings.timeout,
            citations=settings.citations,
        )
        self.reporter.report(job.problem)
        fix = repair(result.citation_check) if settings.repair_citations else None
        deliver(result, target, unit.span_id, fix, stream=stream)

    async def _aattribute(
        self, unit: _Unit, target: object, answer: str, nodes: Sequence[NodeWithScore]
    ) -> None:
        settings = unit.settings
        job = self._job(unit, answer, nodes, target)
        context = unit.context(streaming=True)
        result = await arun_job(
            settings.attributor,
            job,
            settings.exporters,
            context,
            timeout=settings.timeout,
            citations=settings.citations,
        )
        self.reporter.report(job.problem)
        fix = repair(result.citation_check) if settings.repair_citations else None
        deliver(result, target, unit.span_id, fix, stream=True)

    def _finish_agent(self, unit: _Unit, output: AgentOutput) -> None:
        unit.attributed = True
        with self._lock:
            inner, retrieved = list(unit.nodes), list(unit.retrieved_nodes)
        # A tool that calls a retriever itself hands the agent text, not nodes: the retrieved
        # nodes whose text that tool output shows are what the agent read.
        nodes = [*_read.agent_nodes(output), *inner] or _read.shown_in_tools(retrieved, output)
        if unit.parent is not None:
            self._hand_up(unit, nodes)
            return
        unit.capture()
        self._attribute(unit, output, _read.answer_text(output), nodes, False)

    def _hand_up(self, unit: _Unit, nodes: Sequence[NodeWithScore]) -> None:
        """Give the agent above `unit` the evidence among `nodes`."""
        kept, _ = _read.evidence(nodes, *self._history(unit))
        if unit.parent is not None:
            with self._lock:
                unit.parent.nodes.extend(kept)

    def _on_result(self, unit: _Unit, result: object) -> None:
        if unit.kind == "agent":
            return  # attributed (or not an agent answer) in `exit`
        if unit.parent is not None:
            self._hand_up(unit, _read.response_nodes(result))
            return
        # Streams end later, maybe on another thread: keep the span's trace context now.
        unit.capture()
        if isinstance(result, (Response, PydanticResponse, AgentChatResponse)):
            # Runs in the span's own context, so tracers still see it as the active span.
            answer = _read.answer_text(result)
            self._attribute(unit, result, answer, _read.response_nodes(result), False)
        elif isinstance(result, (StreamingResponse, AsyncStreamingResponse)):
            self._wrap(unit, result)

    def _wrap(self, unit: _Unit, response: StreamingResponse | AsyncStreamingResponse) -> None:
        nodes = _read.response_nodes(response)

        def finish(answer: str, warmer: Warmer) -> None:
            self._adopt_reply(unit)
            warmer.settle()
            self._attribute(unit, response, answer, nodes, True)

        async def afinish(answer: str, warmer: Warmer) -> None:
            self._adopt_reply(unit)
            await warmer.asettle()
            await self._aattribute(unit, response, answer, nodes)

        wrap_stream(response, self._warmer(unit, response), finish, afinish)

    def _adopt_reply(self, unit: _Unit) -> None:
        """Give a streaming query the reply its stream's LLM left in this context."""
        reply = _STRAY_REPLY.get()
        if reply is not None:
            _STRAY_REPLY.set(None)
            with self._lock:
                unit.reply = reply
