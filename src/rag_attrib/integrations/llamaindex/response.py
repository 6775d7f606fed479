"""`attribute_response()`: attribute one response or agent output you already have."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from llama_index.core.agent.workflow import AgentOutput
from llama_index.core.base.response.schema import (
    AsyncStreamingResponse,
    PydanticResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.chat_engine.types import AgentChatResponse, StreamingAgentChatResponse
from llama_index.core.instrumentation.span import active_span_id

from ...engine import Attributor
from ...export.base import Exporter, capture_context
from ...markers import Numbering
from ...results import AttributionResult
from .._citations import check_options, repair
from .._pipeline import Reporter, check_timeout, export_context, run_job
from . import _read
from ._attach import deliver

__all__ = ["attribute_response"]

_reporter = Reporter(logging.getLogger("rag_attrib.integrations.llamaindex"))

_AnyResponse = (
    Response
    | PydanticResponse
    | StreamingResponse
    | AsyncStreamingResponse
    | AgentChatResponse
    | StreamingAgentChatResponse
    | AgentOutput
)


def attribute_response(
    response: _AnyResponse,
    attributor: Attributor | None = None,
    *,
    exporters: Iterable[Exporter] = (),
    question: str | None = None,
    timeout: float | None = None,
    repair_citations: bool = False,
    citation_numbering: Numbering = "auto",
    exact_support: bool = False,
) -> AttributionResult:
    """Attribute one query, chat or agent response and attach the result to it.

    For users who do not want `instrument()`. A sync stream (`StreamingResponse`,
    `StreamingAgentChatResponse`) that was not consumed yet is consumed first. An agent's
    `AgentOutput` is attributed to the nodes its tool calls of that run returned (with none,
    `error` says whether it called no tool or its tools returned text only); a structured
    `output_cls` answer that cites source ids is attributed and its ids checked.

    Args:
        response: what a query or chat engine returned, or what `await agent.run(...)` did.
        attributor: the `Attributor` to use; None uses a shared one with the bundled model.
        exporters: where to send the result.
        question: the user's question; sharpens very short answers.
        timeout: seconds the attribution may take (None: no limit).
        repair_citations: as for `instrument`: a `Response` / `AgentChatResponse` gets its
            answer with the markers repaired in `.response`; streams are not rewritten.
        citation_numbering, exact_support: how the answer's own citations are checked, as
            for `instrument`.

    Returns:
        The `AttributionResult`, also attached as `response.metadata["attribution"]`
        (`output["attribution"]` for an agent output) as a payload dict. An engine failure,
        a timeout or a response with no nodes to cite is logged and reported in `error`.

    Raises:
        TypeError: `response` is not a LlamaIndex response or agent output.
        ValueError: an async stream was not consumed yet (`await response.get_response()`),
            a bad `timeout`, or (`ConfigError`) a bad `citation_numbering`.

    Example:
        >>> response = query_engine.query("Who founded the company?")
        >>> result = attribute_response(response)
        >>> result.answer_sentences[0].citations[0].source_id  # a node id
    """
    options = check_options(citation_numbering, exact_support)
    limit = check_timeout(timeout)
    answer = _final_text(response)
    nodes = (
        _read.agent_nodes(response)
        if isinstance(response, AgentOutput)
        else _read.response_nodes(response)
    )
    given = _read.given_citations(response)
    job = _read.job(
        answer,
        nodes,
        question,
        given=given,
        empty=_read.nothing_to_cite(response),
        shown=_read.tool_texts(response),
    )
    exporters = tuple(exporters)
    span_id = active_span_id.get()
    context = export_context(
        capture_context(exporters), "llamaindex", span_id=span_id, streaming=False
    )
    result = run_job(attributor, job, exporters, context, timeout=limit, citations=options)
    _reporter.report(job.problem)
    fix = repair(result.citation_check) if repair_citations else None
    deliver(result, response, span_id, fix)  # only finished responses' text is rewritten
    return result


def _final_text(response: object) -> str:
    """The whole answer; a sync stream not read yet is read first."""
    if isinstance(response, (Response, PydanticResponse, AgentChatResponse, AgentOutput)):
        return _read.answer_text(response)
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
        "AsyncStreamingResponse, AgentChatResponse, StreamingAgentChatResponse or an agent's "
        f"AgentOutput; got {type(response).__name__}"
    )
    raise TypeError(msg)
