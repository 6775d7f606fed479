"""LangGraph stream shapes the LangGraph and LangChain streaming docs use: a list of modes
(`(mode, chunk)` pairs), "custom" data from `get_stream_writer()`, `subgraphs=True`
(`(namespace, chunk)`, `(namespace, mode, chunk)`), `version="v2"` (`StreamPart` dicts), and a
run resumed after `interrupt()`. Through `with_attribution` and through the handler, the loop
gets exactly the graph's own chunks, and the answer the graph ends with is attributed to the
documents its run used. Real graphs and agents; only the LLM is a fake that reads its prompt
(`ReaderChatModel`, in _langchain.py)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("langchain.agents")

from _langchain import (
    INVENTED,
    QUESTION,
    RAG_PROMPT,
    CitedAnswer,
    RagState,
    ReaderChatModel,
    StructuredAnswerer,
    artifact_tool,
    check,
    tutorial_graph,
)
from langchain.agents import create_agent
from langchain.agents.structured_output import ToolStrategy
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.vectorstores import InMemoryVectorStore
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph
from langgraph.pregel import Pregel
from langgraph.types import Command, interrupt

from rag_attrib import AttributionResult, Attributor
from rag_attrib.integrations.langchain import (
    AttributionCallbackHandler,
    with_attribution,
)

ASKED = {"question": QUESTION}
CHAT = {"messages": [HumanMessage(QUESTION)]}
_TASK_ID = re.compile(r":[0-9a-f-]{36}")
CLAIM = "The Halden bridge closed in 1999."  # "custom" progress text that is not the answer


# `attributor` and `store` (the Halden documents) come from conftest.py.


def skeleton(chunk: Any) -> Any:
    """A chunk's shape and text, without the ids and metadata that differ between runs."""
    if isinstance(chunk, tuple):
        return tuple(skeleton(item) for item in chunk)
    if isinstance(chunk, BaseMessage):
        return (type(chunk).__name__, chunk.text)
    if isinstance(chunk, dict) and {"type", "ns", "data"} <= set(chunk):  # a StreamPart
        return ("part", chunk["type"], len(chunk["ns"]), skeleton(chunk["data"]))
    if isinstance(chunk, dict):
        return ("dict", tuple(sorted(chunk)))
    if isinstance(chunk, str):
        return _TASK_ID.sub("", chunk)  # a namespace's "node:<task id>"
    return chunk if isinstance(chunk, (int, float, bool, type(None))) else type(chunk)


def answer(state: RagState, llm: ReaderChatModel) -> dict[str, Any]:
    context = "\n\n".join(doc.page_content for doc in state["context"])
    messages = RAG_PROMPT.invoke({"question": state["question"], "context": context})
    return {"answer": llm.invoke(messages).content}


def writer_graph(store: InMemoryVectorStore) -> Any:
    """The RAG tutorial graph whose nodes report progress with `get_stream_writer()`: a dict,
    then a sentence (the docs' `writer("...")`), which is not the answer."""
    llm = ReaderChatModel()

    def retrieve(state: RagState) -> dict[str, Any]:
        writer = get_stream_writer()
        writer({"progress": "searching"})
        writer(CLAIM)
        return {"context": store.similarity_search(state["question"])}

    def generate(state: RagState) -> dict[str, Any]:
        out = answer(state, llm)
        get_stream_writer()({"answer": CLAIM})
        return out

    builder = StateGraph(RagState).add_sequence([retrieve, generate])
    builder.add_edge(START, "retrieve")
    return builder.compile()


def subgraph_graph(store: InMemoryVectorStore, *, checkpointer: Any = None) -> Any:
    """The retriever runs inside a subgraph node ("research"), which pauses for review when
    given a checkpointer; the parent graph answers."""
    llm = ReaderChatModel()

    def retrieve(state: RagState) -> dict[str, Any]:
        return {"context": store.as_retriever().invoke(state["question"])}

    def review(state: RagState) -> dict[str, Any]:
        interrupt({"documents": len(state["context"])})
        return {}

    inner = StateGraph(RagState).add_sequence([retrieve, review] if checkpointer else [retrieve])
    inner.add_edge(START, "retrieve")
    builder = StateGraph(RagState)
    builder.add_node("research", inner.compile())
    builder.add_node("generate", lambda state: answer(state, llm))
    builder.add_edge(START, "research")
    builder.add_edge("research", "generate")
    return builder.compile(checkpointer=checkpointer)


def review_graph(store: InMemoryVectorStore) -> Any:
    """Retrieve, pause for a human (`interrupt()`), answer: the resumed run retrieves nothing,
    its documents are in the checkpointed state."""
    llm = ReaderChatModel()

    def retrieve(state: RagState) -> dict[str, Any]:
        return {"context": store.similarity_search(state["question"])}

    def review(state: RagState) -> dict[str, Any]:
        interrupt({"documents": len(state["context"])})
        return {}

    def generate(state: RagState) -> dict[str, Any]:
        return answer(state, llm)

    builder = StateGraph(RagState).add_sequence([retrieve, review, generate])
    builder.add_edge(START, "retrieve")
    return builder.compile(checkpointer=InMemorySaver())


def agent(store: InMemoryVectorStore) -> Any:
    return create_agent(ReaderChatModel(tool_name="retrieve_context"), tools=[artifact_tool(store)])


class _Answerer(StructuredAnswerer):
    """`StructuredAnswerer` that also runs under `astream` (which passes the run manager)."""

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        return super()._generate(messages, stop, **kw)


def structured_agent(store: InMemoryVectorStore) -> Any:
    """An agent whose answer is `state["structured_response"]`, a `CitedAnswer`: its last AI
    message holds no text, only the schema's tool call."""
    return create_agent(
        _Answerer(), tools=[artifact_tool(store)], response_format=ToolStrategy(CitedAnswer)
    )


async def both_faces(
    build: Callable[[], Any], given: Any, attributor: Attributor, mode: str, **kwargs: Any
) -> tuple[list[Any], list[Any], list[Any], AttributionResult | None, AttributionResult | None]:
    """The chunks of the graph's own stream, of the wrapper's and of a run with the handler;
    the wrapper's result (checked to be the one `on_result` got) and the handler's."""

    async def read(runnable: Any, config: Any = None) -> list[Any]:
        if mode == "sync":
            return list(runnable.stream(given, config, **kwargs))
        return [chunk async for chunk in runnable.astream(given, config, **kwargs)]

    seen: list[AttributionResult] = []
    cited = with_attribution(build(), attributor, on_result=seen.append)
    handler = AttributionCallbackHandler(attributor)
    plain = await read(build())
    wrapped = await read(cited)
    handled = await read(build(), {"callbacks": [handler]})
    assert seen == [cited.last_result]
    return plain, wrapped, handled, cited.last_result, handler.last_result


def same_chunks(plain: list[Any], *others: list[Any]) -> None:
    assert plain
    for chunks in others:
        assert [skeleton(c) for c in chunks] == [skeleton(c) for c in plain]


FACES = ["sync", "async"]


# --- a list of modes: (mode, chunk) pairs ----------------------------------------------------------


@pytest.mark.parametrize("mode", FACES)
@pytest.mark.parametrize("graph", ["tutorial", "agent"])
async def test_a_list_of_modes_streams_mode_chunk_pairs_unchanged(store, attributor, mode, graph):
    """`stream_mode=["updates", "messages"]` (the docs' `for mode, chunk in ...` loop): every
    chunk is the graph's own `(mode, chunk)` pair, none added; the answer is attributed."""
    if graph == "tutorial":
        build, given = (lambda: tutorial_graph(store, ReaderChatModel())), ASKED
    else:
        build, given = (lambda: agent(store)), CHAT
    modes = ["updates", "messages"]
    plain, wrapped, handled, result, by_handler = await both_faces(
        build, given, attributor, mode, stream_mode=modes
    )
    same_chunks(plain, wrapped, handled)
    assert {m for m, _ in wrapped} == set(modes)
    check(result)
    check(by_handler)


@pytest.mark.parametrize("mode", FACES)
@pytest.mark.parametrize("modes", [["values", "custom"], "custom"])
async def test_custom_data_from_get_stream_writer_is_not_the_answer(store, attributor, mode, modes):
    """A node's `get_stream_writer()` data reaches the loop unchanged, as `("custom", data)`
    beside "values" or alone; the answer attributed is the graph's, never that data (a
    "custom"-only stream attributed the last text written, or a dict's "answer")."""
    plain, wrapped, handled, result, by_handler = await both_faces(
        lambda: writer_graph(store), ASKED, attributor, mode, stream_mode=modes
    )
    same_chunks(plain, wrapped, handled)
    custom = [c for m, c in wrapped] if isinstance(modes, list) else wrapped
    assert {"progress": "searching"} in custom and CLAIM in custom
    check(result)
    check(by_handler)
    assert result is not None and result.answer.endswith(INVENTED)


# --- subgraphs=True: (namespace, chunk) and (namespace, mode, chunk) ------------------------------


@pytest.mark.parametrize("mode", FACES)
@pytest.mark.parametrize("modes", ["updates", ["values", "messages"]])
async def test_subgraph_streams_with_the_retriever_in_a_subgraph(store, attributor, mode, modes):
    """`subgraphs=True` yields `(namespace, chunk)`, or `(namespace, mode, chunk)` for a list
    of modes, the subgraph's chunks too; the documents its retriever found are cited."""
    plain, wrapped, handled, result, by_handler = await both_faces(
        lambda: subgraph_graph(store), ASKED, attributor, mode, stream_mode=modes, subgraphs=True
    )
    same_chunks(plain, wrapped, handled)
    size = 3 if isinstance(modes, list) else 2
    assert all(isinstance(c, tuple) and len(c) == size for c in wrapped)
    assert any(c[0] for c in wrapped) and any(not c[0] for c in wrapped)  # inner and outer
    check(result)
    check(by_handler)


# --- version="v2": StreamPart dicts --------------------------------------------------------------


def _parts() -> None:
    if "version" not in inspect.signature(Pregel.stream).parameters:
        pytest.skip("this langgraph has no version= on stream")


@pytest.mark.parametrize("mode", FACES)
@pytest.mark.parametrize(
    "options",
    [
        {"stream_mode": "values"},
        {"stream_mode": ["updates", "messages"]},
        {"stream_mode": "updates", "subgraphs": True},
    ],
)
async def test_version_v2_stream_parts_pass_unchanged(store, attributor, mode, options):
    """`version="v2"` yields `{"type", "ns", "data", ...}` dicts (the graph's state in a
    "values" part's data, its interrupts beside it), unchanged and none added."""
    _parts()
    plain, wrapped, handled, result, by_handler = await both_faces(
        lambda: subgraph_graph(store), ASKED, attributor, mode, version="v2", **options
    )
    same_chunks(plain, wrapped, handled)
    assert all(isinstance(c, dict) and {"type", "ns", "data"} <= set(c) for c in wrapped)
    check(result)
    check(by_handler)


# --- the answer is the final state's, in every shape ---------------------------------------------


@pytest.mark.parametrize("mode", FACES)
@pytest.mark.parametrize(
    "options",
    [
        {"stream_mode": "messages"},
        {"stream_mode": "updates"},
        {"stream_mode": ["updates", "messages"]},
        {"stream_mode": "updates", "subgraphs": True},
        {"stream_mode": "values", "version": "v2"},
        {"stream_mode": ["updates", "messages"], "version": "v2"},
    ],
    ids=lambda options: "-".join(str(v) for v in options.values()),
)
async def test_a_structured_answer_streamed_in_any_shape(store, attributor, mode, options):
    """An agent with `response_format=CitedAnswer` answers in `state["structured_response"]`;
    streamed in any shape, that answer is attributed and its source ids checked, as `invoke`
    does (token and mode-list streams said "no answer found"; "updates" and "v2" parts left
    the ids unchecked)."""
    if "version" in options:
        _parts()
    plain, wrapped, handled, result, by_handler = await both_faces(
        lambda: structured_agent(store), CHAT, attributor, mode, **options
    )
    same_chunks(plain, wrapped, handled)
    for got in (result, by_handler):
        assert got is not None and got.error is None, got and got.error
        assert got.answer.endswith(INVENTED) and got.question == QUESTION
        assert got.citation_check is not None
        assert [(m.label, m.verdict) for m in got.citation_check.markers] == [
            ("doc-bridge", "correct"),
            ("doc-ferry", "dangling"),
        ]


# --- a run resumed after interrupt() ------------------------------------------------------------


@pytest.mark.parametrize("mode", FACES)
@pytest.mark.parametrize(
    ("graph", "options"),
    [
        ("review", {"stream_mode": ["updates", "messages"]}),
        ("review", {"stream_mode": "values", "version": "v2"}),
        ("subgraph", {"stream_mode": "updates", "subgraphs": True}),
        ("subgraph", {"stream_mode": ["values", "custom"], "subgraphs": True}),
    ],
)
async def test_a_streamed_run_resumed_after_interrupt(store, attributor, mode, graph, options):
    """Streamed, a run paused by `interrupt()` (in the graph, or in a subgraph) attributes
    nothing; the stream that resumes it with `Command(resume=...)` retrieves nothing, and its
    answer is attributed to the documents of the state it ends with, the question read from
    that state. Both streams are the graph's own chunks."""
    if "version" in options:
        _parts()

    def build() -> Any:
        if graph == "review":
            return review_graph(store)
        return subgraph_graph(store, checkpointer=InMemorySaver())

    async def turns(runnable: Any, config: Any, done: Callable[[], Any] | None) -> list[list[Any]]:
        out = []
        for given in (ASKED, Command(resume=True)):
            if mode == "sync":
                out.append(list(runnable.stream(given, config, **options)))
            else:
                out.append([c async for c in runnable.astream(given, config, **options)])
            if done is not None:  # nothing is attributed while paused
                assert (done() is None) == (given is ASKED)
        return out

    seen: list[AttributionResult] = []
    handler = AttributionCallbackHandler(attributor)
    cited = with_attribution(build(), attributor, on_result=seen.append)
    plain = await turns(build(), {"configurable": {"thread_id": "plain"}}, None)
    wrapped = await turns(cited, {"configurable": {"thread_id": "w"}}, lambda: cited.last_result)
    config = {"configurable": {"thread_id": "h"}, "callbacks": [handler]}
    handled = await turns(build(), config, lambda: handler.last_result)
    for k in (0, 1):
        same_chunks(plain[k], wrapped[k], handled[k])
    assert "Interrupt(" in str(plain[0][-1])  # "__interrupt__", or a v2 part's "interrupts"
    assert seen == [cited.last_result]
    for got in (cited.last_result, handler.last_result):
        check(got)
        assert got is not None and got.question == QUESTION


@pytest.mark.parametrize(
    ("options", "last"),
    [
        ({"stream_mode": ["updates", "messages"]}, lambda c: c[0] == "custom" and c[1]),
        ({"stream_mode": "updates", "subgraphs": True}, lambda c: c[0] == () and c[1]),
        (
            {"stream_mode": ["values", "messages"], "subgraphs": True},
            lambda c: c[:2] == ((), "custom") and c[2],
        ),
    ],
    ids=["modes", "subgraphs", "modes-subgraphs"],
)
def test_always_mode_ends_a_graph_stream_with_a_chunk_of_its_shape(
    store, attributor, options, last
):
    """`attribution_chunk="always"` ends a tuple-shaped graph stream with a chunk its loop
    unpacks like the others, from the graph itself (`("custom", {"attribution": ...})` in a
    list of modes): the graph's chunks before it unchanged (langchain-core raised ValueError
    adding the bare `{"attribution": ...}` to the tuples, which broke the user's loop)."""
    graph = subgraph_graph(store)
    cited = with_attribution(graph, attributor, attribution_chunk="always")
    chunks = list(cited.stream(ASKED, **options))
    plain = list(graph.stream(ASKED, **options))
    same_chunks(plain, chunks[:-1])
    data = last(chunks[-1])
    assert len(chunks[-1]) == len(chunks[0]) and set(data) == {"attribution"}
    assert data["attribution"]["answer"].endswith(INVENTED)
    check(cited.last_result)
