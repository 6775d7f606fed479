"""Reading LlamaIndex objects: answers, questions, and the document nodes behind an answer."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.agent.workflow import AgentOutput, ToolCallResult
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CitableBlock,
    CompletionResponse,
    MessageRole,
    TextBlock,
)
from llama_index.core.base.response.schema import PydanticResponse
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle, TextNode

from ...results import Source
from ...validate import metadata_dict
from .._given import (
    GivenCitations,
    chat_completion_annotations,
    from_raw_message,
    from_reply,
    from_structured,
)
from .._numbering import labelled
from .._pipeline import Job, join_errors, reached, with_text, written_by

if TYPE_CHECKING:
    import inspect

__all__ = [
    "NO_NODES",
    "NO_NODES_KEPT",
    "NO_TOOL_CALL",
    "NO_TOOL_NODES",
    "agent_nodes",
    "answer_text",
    "cited",
    "completion_reply",
    "evidence",
    "given_citations",
    "given_nodes",
    "job",
    "node_sources",
    "nothing_to_cite",
    "question_of",
    "reply_citations",
    "response_nodes",
    "shown_in_tools",
    "tool_nodes",
    "tool_texts",
]

# SubQuestionQueryEngine._construct_node: the one generated node shape LlamaIndex documents.
_SUB_ANSWER = re.compile(r"\ASub question: .*\nResponse: ", re.DOTALL)

NO_NODES = (
    "no source nodes: the response has no source_nodes and its tool outputs hold none, "
    "so nothing can be cited (a CustomQueryEngine must return a Response with source_nodes)"
)
NO_NODES_KEPT = (
    "no source nodes: the retrievers returned {n} but none reached the response's "
    "source_nodes (node postprocessors, such as a similarity cutoff or a reranker, dropped "
    "them all, or a custom engine returned none), so nothing can be cited"
)
NO_TOOL_CALL = (
    "no tool call in this agent run, so no node to cite: the answer came from the LLM alone "
    "(its chat history, or a search its provider ran); nodes that earlier runs' tools "
    "returned are not reused"
)
NO_TOOL_NODES = (
    "the agent's tools returned no nodes in this run ({tools}: text, media or nothing), so "
    "nothing can be cited; a tool that returns a Response or nodes (QueryEngineTool, "
    "RetrieverTool) can be, and under instrument() so can the retrieved nodes whose text a "
    "tool returned"
)


def node_sources(nodes: Iterable[NodeWithScore]) -> list[Source]:
    """One `Source` per distinct node (first occurrence kept), id = node id, text = content."""
    seen: set[str] = set()
    out: list[Source] = []
    for nws in nodes:
        node = nws.node
        if node.node_id in seen:
            continue
        seen.add(node.node_id)
        metadata: dict[str, Any] = metadata_dict(node.metadata)
        metadata["ref_doc_id"] = node.ref_doc_id
        metadata["retrieval_score"] = nws.score
        text = node.get_content(metadata_mode=MetadataMode.NONE)
        out.append(Source(id=node.node_id, text=text, metadata=metadata))
    return out


def _cited_answer(response: object) -> tuple[str, GivenCitations] | None:
    """The answer and source ids of a structured output that cites (`output_cls=CitedAnswer`):
    a `PydanticResponse`'s model, an agent output's `structured_response` dict."""
    if isinstance(response, PydanticResponse):
        return from_structured(response.response)
    if isinstance(response, AgentOutput) and response.structured_response is not None:
        return from_structured(response.structured_response)
    return None


def answer_text(response: object) -> str:
    """The text the user reads: a response's `response`, an agent output's message; for a
    structured output that cites its sources, its answer field (what the ids back)."""
    structured = _cited_answer(response)
    if structured is not None:
        return structured[0]
    if isinstance(response, AgentOutput):
        return _message_text(response.response)
    if isinstance(response, PydanticResponse):
        return response.response.model_dump_json() if response.response is not None else ""
    text = getattr(response, "response", None)
    return text if isinstance(text, str) else ""


def given_citations(response: object) -> GivenCitations | None:
    """The source ids a structured response gives beside its answer (`output_cls=CitedAnswer`
    on a query engine or an agent)."""
    structured = _cited_answer(response)
    return structured[1] if structured is not None else None


def reply_citations(reply: ChatResponse | None, answer: str) -> GivenCitations | None:
    """The citations of the LLM reply behind `answer` (a chat reply, or a completion read as
    one: `completion_reply`).

    Read, first found: the provider message kept as `raw` (llama-index-llms-anthropic's
    `chat`/`achat` keep `dict(message)`, whose text blocks carry every Claude citation, web
    search ones too, of which the reply's blocks show only `search_result_location`);
    `CitationBlock`s among the reply's blocks (a streamed Anthropic reply's `raw` is its last
    stream event, which holds none; the tracker gives it, when it can, a `raw` rebuilt from the
    stream's events); `url_citation` annotations (OpenAIResponses keeps
    them in `additional_kwargs`, OpenAI's Chat Completions only in `raw`). A streamed reply
    (`delta` set) holds each block's citations before its text.
    """
    if reply is None:
        return None
    given = from_raw_message(reply.raw, answer)
    if given is not None:
        return given
    annotations = reply.additional_kwargs.get("annotations")
    if annotations is None:
        annotations = chat_completion_annotations(reply.raw)
    blocks = reply.message.blocks
    return from_reply(blocks, answer, streamed=reply.delta is not None, annotations=annotations)


def completion_reply(response: CompletionResponse) -> ChatResponse:
    """A completion read as a chat reply, where `reply_citations` finds its citations: its
    text one text block; its `raw`, `additional_kwargs` and `delta` kept.

    A completion keeps them as a chat reply does: llama-index-llms-openai (0.8.3) completes by
    chatting (`chat_to_completion_decorator(self._chat)`; `chat_response_to_completion_response`
    keeps `raw` and merges the reply's `additional_kwargs`), llama-index-llms-anthropic
    (0.12.3) by its own `chat`/`stream_chat` (`_completion_response_from_chat_response` keeps
    `raw`). Odd fields read as absent.
    """
    text = response.text if isinstance(response.text, str) else ""
    extra = response.additional_kwargs
    delta = response.delta if isinstance(response.delta, str) else None
    return ChatResponse(
        message=ChatMessage(role=MessageRole.ASSISTANT, blocks=[TextBlock(text=text)]),
        raw=response.raw,
        additional_kwargs=dict(extra) if isinstance(extra, Mapping) else {},
        delta=delta,
    )


def _message_text(message: ChatMessage) -> str:
    return message.content or ""


def question_of(bound_args: inspect.BoundArguments) -> str | None:
    """The user's question among a query, chat, synthesize or workflow-run call's arguments."""
    arguments = bound_args.arguments
    for key in ("str_or_query_bundle", "message", "query"):
        value = arguments.get(key)
        if isinstance(value, QueryBundle):
            return value.query_str
        if isinstance(value, str):
            return value
    start = arguments.get("start_event")
    message = getattr(start, "user_msg", None) if start is not None else None
    if isinstance(message, ChatMessage):
        return _message_text(message) or None
    return message if isinstance(message, str) else None


def _nodes_in(value: object) -> list[NodeWithScore]:
    """Nodes a tool returned: a response's `source_nodes`, a retriever's node list, or what a
    FunctionTool returns itself: a node or a `NodeWithScore`, alone or in a list."""
    nodes = getattr(value, "source_nodes", None)
    if nodes is None:
        nodes = value if isinstance(value, (list, tuple)) else [value]
    return [
        n if isinstance(n, NodeWithScore) else NodeWithScore(node=n)
        for n in nodes or ()
        if isinstance(n, (NodeWithScore, BaseNode))
    ]


def response_nodes(response: object) -> list[NodeWithScore]:
    """`source_nodes`, else the nodes of the response's tool outputs (`sources[*].raw_output`).

    `condense_question` chat's `astream_chat` leaves `source_nodes` empty although its query
    engine's tool output holds them.
    """
    nodes = _nodes_in(response)
    if nodes:
        return nodes
    return [n for output in getattr(response, "sources", None) or () for n in tool_nodes(output)]


def tool_nodes(output: object) -> list[NodeWithScore]:
    """The nodes a tool output holds: its raw output's (`_nodes_in`), and a node per
    `CitableBlock`."""
    return _nodes_in(getattr(output, "raw_output", None)) + _citable_nodes(output)


def given_nodes(bound_args: inspect.BoundArguments) -> list[NodeWithScore]:
    """The nodes a synthesize call was given."""
    return _nodes_in(bound_args.arguments.get("nodes"))


def _citable_nodes(output: object) -> list[NodeWithScore]:
    """A node per `CitableBlock` a tool returned: the passage an LLM with built-in citations
    cites by its `source` (id = source, "#n" added when one source gives several)."""
    out: list[NodeWithScore] = []
    seen: dict[str, int] = {}
    for block in getattr(output, "blocks", None) or ():
        if not isinstance(block, CitableBlock):
            continue
        text = "\n".join(b.text for b in block.content if isinstance(b, TextBlock))
        seen[block.source] = seen.get(block.source, 0) + 1
        n = seen[block.source]
        node_id = block.source if n == 1 else f"{block.source}#{n}"
        metadata = {"source": block.source, "title": block.title}
        out.append(NodeWithScore(node=TextNode(id_=node_id, text=text, metadata=metadata)))
    return out


def agent_nodes(output: AgentOutput) -> list[NodeWithScore]:
    """The nodes the agent's tool calls of this run returned (`ToolCallResult.tool_output`)."""
    nodes = [
        n
        for call in output.tool_calls
        if isinstance(call, ToolCallResult)  # the agent appends its run's results here
        for n in tool_nodes(call.tool_output)
    ]
    return nodes + _nodes_in(output.raw)  # a return_direct tool's raw output


def nothing_to_cite(response: object, retrieved: int = 0) -> str:
    """Why `response` has no node to cite: for an agent output, that its run called no tool,
    or that its tools returned text only; else that its `retrieved` nodes were all dropped
    before the LLM (`NO_NODES_KEPT`), or `NO_NODES`."""
    if not isinstance(response, AgentOutput):
        return NO_NODES_KEPT.format(n=retrieved) if retrieved else NO_NODES
    tools = sorted({c.tool_name for c in response.tool_calls if isinstance(c, ToolCallResult)})
    return NO_TOOL_NODES.format(tools=", ".join(tools)) if tools else NO_TOOL_CALL


def shown_in_tools(nodes: Sequence[NodeWithScore], output: AgentOutput) -> list[NodeWithScore]:
    """The `nodes` whose text one of the run's tool outputs shows (`ToolOutput.content`)."""
    shown = "\n".join(tool_texts(output))
    texts = [n.node.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
    seen: set[str] = set()
    out = []
    for nws, found in zip(nodes, reached(texts, shown), strict=True):
        if found and nws.node.node_id not in seen:
            seen.add(nws.node.node_id)
            out.append(nws)
    return out


def _generated(
    nws: NodeWithScore,
    llm_texts: Sequence[str],
    retrieved: Collection[str],
    handed: Mapping[str, int],
) -> bool:
    """A node the pipeline wrote: no document behind it, not retrieved, the words of an LLM
    call made before the node was handed on (`handed`: how many of `llm_texts` were said
    then). A later call quoting the node (an extractive summary, an answer repeating a tool's
    node) says nothing about where it came from."""
    node = nws.node
    if node.ref_doc_id is not None or node.node_id in retrieved:
        return False
    text = node.get_content(metadata_mode=MetadataMode.NONE)
    if _SUB_ANSWER.match(text):
        return True
    said = llm_texts[: handed[node.node_id]] if node.node_id in handed else llm_texts
    return written_by(text, said)


def evidence(
    nodes: Sequence[NodeWithScore],
    llm_texts: Sequence[str] = (),
    retrieved: Collection[str] = (),
    handed: Mapping[str, int] | None = None,
) -> tuple[list[NodeWithScore], str | None]:
    """The nodes that may be cited, and a note when only generated ones were left.

    Generated nodes (sub-question answers, LLM summaries) are dropped when any other node
    exists: an answer copied from a sub-answer must cite the documents under it. `handed`
    maps a node id to how many of `llm_texts` were said before the node was handed on (to a
    synthesizer, or back from a tool): only those can have written it.
    """
    handed = handed or {}
    kept = [n for n in nodes if not _generated(n, llm_texts, retrieved, handed)]
    if kept or not nodes:
        return kept, None
    note = (
        f"only nodes the pipeline generated reached the answer ({len(nodes)}, e.g. "
        "sub-question answers); they are cited in place of documents"
    )
    return list(nodes), note


def cited(
    nodes: Sequence[NodeWithScore],
    llm_texts: Sequence[str] = (),
    retrieved: Collection[str] = (),
    empty: str = NO_NODES,
    handed: Mapping[str, int] | None = None,
) -> tuple[list[Source], str | None]:
    """The sources to cite among `nodes`, and the problem to report (None when all is well;
    `empty` when there is no node; `NO_TEXT` when no node holds text: image nodes, empty
    ones). A node with no text is never a source."""
    kept, note = evidence(nodes, llm_texts, retrieved, handed)
    sources, blank = with_text(node_sources(kept))
    return sources, join_errors(note, blank) if kept else empty


def job(
    answer: str,
    nodes: Sequence[NodeWithScore],
    question: str | None,
    *,
    llm_texts: Sequence[str] = (),
    retrieved: Collection[str] = (),
    handed: Mapping[str, int] | None = None,
    given: GivenCitations | None = None,
    empty: str = NO_NODES,
    shown: Sequence[str] = (),
) -> Job:
    """What to attribute: the answer against the evidence among `nodes`, and any problem
    (`empty` when there is no node: see `nothing_to_cite`).

    `shown`: the texts the answering LLM read the nodes in, when not the nodes themselves
    (an agent's tool outputs: `tool_texts`). Where they label each node ("Source 1:", as
    CitationQueryEngine does), the nodes are put in label order and their labels number the
    answer's markers; where two outputs each count from 1, a marker reads as a node its
    label names (`label_choices`).
    """
    sources, problem = cited(nodes, llm_texts, retrieved, empty, handed)
    sources, prompt, labels = labelled(sources, shown)
    return Job(answer, sources, question, problem, given, prompt, labels)


def tool_texts(output: object) -> list[str]:
    """What each of an agent run's tool calls showed its LLM (`ToolOutput.content`), in call
    order; nothing for another response."""
    calls = output.tool_calls if isinstance(output, AgentOutput) else ()
    return [c.tool_output.content for c in calls if isinstance(c, ToolCallResult)]
