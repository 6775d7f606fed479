"""More LangChain shapes from the current docs: the summarisation tutorial ("stuff" with
`create_stuff_documents_chain`, and the LangGraph map-reduce graph with `Send` and a collapse
step), the v1 multi-agent "subagents" pattern (a `create_agent` supervisor whose tool invokes a
subagent that owns the retriever), and a `return_direct` tool. Real langchain-core / langgraph /
langchain / langchain-classic objects; only the LLMs are fakes that read their prompts.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal, TypedDict

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("langchain.agents")
pytest.importorskip("langchain_classic")

from langchain.agents import create_agent
from langchain.tools import ToolRuntime
from langchain_classic.chains.combine_documents import create_stuff_documents_chain
from langchain_classic.chains.combine_documents.reduce import acollapse_docs, split_list_of_docs
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_core.vectorstores import InMemoryVectorStore
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send
from test_langchain_shapes import DOCS, INVENTED, QUESTION

from rag_attrib import AttributionResult, Attributor
from rag_attrib.integrations.langchain import (
    AttributionCallbackHandler,
    MiniLMEmbeddings,
    with_attribution,
)
from rag_attrib.testing import HashingEmbedder

TEXTS = {d.page_content for d in DOCS}
# A document's first sentence: what the fakes below take as the fact worth repeating.
_FACT = re.compile(r"The [A-Z][a-z]+ [^.\n'\"\\]*\.")


@pytest.fixture
def attributor() -> Attributor:
    return Attributor(HashingEmbedder())


def cited_right(result: AttributionResult | None, ids: set[str] | None = None) -> dict[str, str]:
    """Every fact of the answer cites first the input document that holds it, the invented
    last sentence is unsupported, and every source is an input document (never an LLM's
    summary). Returns the sources' texts by id."""
    assert result is not None and result.error is None, result and result.error
    *facts, invented = result.answer_sentences
    assert facts and invented.text == INVENTED and not invented.supported
    texts = {s.id: s.text for s in result.sources}
    assert set(texts.values()) <= TEXTS, texts
    for sentence in facts:
        assert sentence.supported, sentence.text
        assert sentence.text in texts[sentence.citations[0].source_id]
    if ids is not None:
        assert set(texts) == ids
    return texts


class Summariser(BaseChatModel):
    """Summarises its prompt: the facts found in it (each document's first sentence), in
    order, then an invented sentence; streams word by word; counts words as tokens."""

    @property
    def _llm_type(self) -> str:
        return "summariser"

    def get_num_tokens(self, text: str) -> int:
        return len(text.split())

    def _summary(self, messages: list[BaseMessage]) -> str:
        prompt = "\n".join(str(m.text) for m in messages)
        return " ".join([*dict.fromkeys(_FACT.findall(prompt)), INVENTED])

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        message = AIMessage(content=self._summary(messages))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        for k, word in enumerate(self._summary(messages).split(" ")):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=(" " if k else "") + word))
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


# --- "stuff": create_stuff_documents_chain(llm, prompt).invoke({"context": docs}) ---------------

STUFF_PROMPT = ChatPromptTemplate.from_messages(
    [("system", "Write a concise summary of the following:\\n\\n{context}")]
)


def stuff_chain() -> Any:
    return create_stuff_documents_chain(Summariser(), STUFF_PROMPT)


@pytest.mark.parametrize("call", ["invoke", "stream", "ainvoke", "astream"])
async def test_stuff_summary_cites_the_documents_it_was_given(attributor, call):
    """The documents are the chain's input, returned by no run: they are the sources (it said
    "no retriever or tool returned documents"), with the handler and with the wrapper; the
    text stream is yielded unchanged."""
    given = {"context": DOCS}
    plain = stuff_chain().invoke(given)

    async def run(runnable: Any, config: Any = None) -> str:
        if call == "invoke":
            return runnable.invoke(given, config)
        if call == "ainvoke":
            return await runnable.ainvoke(given, config)
        if call == "stream":
            return "".join(runnable.stream(given, config))
        return "".join([chunk async for chunk in runnable.astream(given, config)])

    handler = AttributionCallbackHandler(attributor)
    assert await run(stuff_chain(), {"callbacks": [handler]}) == plain
    assert cited_right(handler.last_result, {d.id for d in DOCS if d.id})
    cited = with_attribution(stuff_chain(), attributor)
    out = await run(cited)
    if call in ("invoke", "ainvoke"):
        assert out["answer"] == plain and out["attribution"]["error"] is None
    else:
        assert out == plain  # a text stream gets no extra chunk
    cited_right(cited.last_result, {d.id for d in DOCS if d.id})


# --- map-reduce: the LangGraph graph of the summarisation tutorial ------------------------------

MAP_PROMPT = STUFF_PROMPT
REDUCE_PROMPT = ChatPromptTemplate(
    [
        (
            "human",
            "\nThe following is a set of summaries:\n{docs}\nTake these and distill it into a "
            "final, consolidated summary\nof the main themes.\n",
        )
    ]
)


class OverallState(TypedDict):
    contents: list[Any]
    summaries: Annotated[list[str], operator.add]
    collapsed_summaries: list[Document]
    final_summary: str


class SummaryState(TypedDict):
    content: str


def map_reduce_graph(*, token_max: int, run_async: bool = True) -> Any:
    """The tutorial's graph: `Send` each content to `generate_summary`, collect the summaries
    as Documents, collapse them while they are longer than `token_max` (its
    `split_list_of_docs` + `acollapse_docs`), then reduce them to `final_summary`. The
    tutorial's nodes are async; `run_async=False` writes them sync (no collapse step)."""
    llm = Summariser()

    def length_function(documents: list[Document]) -> int:
        return sum(llm.get_num_tokens(doc.page_content) for doc in documents)

    async def generate_summary(state: SummaryState) -> dict[str, Any]:
        prompt = MAP_PROMPT.invoke(state["content"])
        response = await llm.ainvoke(prompt)
        return {"summaries": [response.content]}

    def generate_summary_sync(state: SummaryState) -> dict[str, Any]:
        return {"summaries": [llm.invoke(MAP_PROMPT.invoke(state["content"])).content]}

    def map_summaries(state: OverallState) -> list[Send]:
        return [Send("generate_summary", {"content": text_of(c)}) for c in state["contents"]]

    def collect_summaries(state: OverallState) -> dict[str, Any]:
        return {"collapsed_summaries": [Document(summary) for summary in state["summaries"]]}

    async def _reduce(input: Any) -> str:
        prompt = REDUCE_PROMPT.invoke(input)
        response = await llm.ainvoke(prompt)
        return str(response.content)

    async def collapse_summaries(state: OverallState) -> dict[str, Any]:
        doc_lists = split_list_of_docs(state["collapsed_summaries"], length_function, token_max)
        results = []
        for doc_list in doc_lists:
            results.append(await acollapse_docs(doc_list, _reduce))
        return {"collapsed_summaries": results}

    def should_collapse(
        state: OverallState,
    ) -> Literal["collapse_summaries", "generate_final_summary"]:
        num_tokens = length_function(state["collapsed_summaries"])
        return "collapse_summaries" if num_tokens > token_max else "generate_final_summary"

    async def generate_final_summary(state: OverallState) -> dict[str, Any]:
        response = await _reduce(state["collapsed_summaries"])
        return {"final_summary": response}

    def generate_final_summary_sync(state: OverallState) -> dict[str, Any]:
        response = llm.invoke(REDUCE_PROMPT.invoke(state["collapsed_summaries"]))
        return {"final_summary": response.content}

    graph = StateGraph(OverallState)
    graph.add_node("generate_summary", generate_summary if run_async else generate_summary_sync)
    graph.add_node("collect_summaries", collect_summaries)
    graph.add_node("collapse_summaries", collapse_summaries)
    graph.add_node(
        "generate_final_summary",
        generate_final_summary if run_async else generate_final_summary_sync,
    )
    graph.add_conditional_edges(START, map_summaries, ["generate_summary"])
    graph.add_edge("generate_summary", "collect_summaries")
    graph.add_conditional_edges("collect_summaries", should_collapse)
    graph.add_conditional_edges("collapse_summaries", should_collapse)
    graph.add_edge("generate_final_summary", END)
    return graph.compile()


def text_of(content: str | Document) -> str:
    return content.page_content if isinstance(content, Document) else content


# Three one-fact summaries of 13-15 words: 42 words collapse into two under 36; 100 never.
COLLAPSE, NO_COLLAPSE = 36, 100
CONTENTS = {"contents": [d.page_content for d in DOCS]}  # as the tutorial passes them


def final_summary_sentences() -> list[str]:
    return [*(_FACT.findall(d.page_content)[0] for d in DOCS), INVENTED]


@pytest.mark.parametrize("token_max", [COLLAPSE, NO_COLLAPSE])
@pytest.mark.parametrize("call", ["ainvoke", "astream"])
async def test_map_reduce_summary_cites_the_input_texts_not_the_summaries(
    attributor, token_max, call
):
    """The final summary is attributed to the three texts the graph was given, each fact to
    its own, never to the map or collapse steps' summaries (which are Documents in the state
    and carry the invented sentence too: it read as supported); handler and wrapper, invoke
    and the tutorial's `astream` loop over "updates"."""
    seen_steps: list[list[str]] = []

    async def run(runnable: Any, config: Any = None) -> Any:
        config = {"recursion_limit": 10, **(config or {})}
        if call == "ainvoke":
            return await runnable.ainvoke(CONTENTS, config)
        steps = [step async for step in runnable.astream(CONTENTS, config)]
        seen_steps.append([key for step in steps for key in step])
        return steps

    handler = AttributionCallbackHandler(attributor)
    await run(map_reduce_graph(token_max=token_max), {"callbacks": [handler]})
    result = handler.last_result
    assert result is not None
    assert [s.text for s in result.answer_sentences] == final_summary_sentences()
    texts = cited_right(result, {"0", "1", "2"})
    assert [texts[k] for k in ("0", "1", "2")] == [d.page_content for d in DOCS]
    cited = with_attribution(map_reduce_graph(token_max=token_max), attributor)
    out = await run(cited)
    if call == "ainvoke":
        assert out["attribution"]["error"] is None
        assert out["attribution"]["answer"] == out["final_summary"]
    else:
        assert all("attribution" not in step for step in out)  # the loop's chunks, unchanged
        assert seen_steps[0] == seen_steps[1]
        assert ("collapse_summaries" in seen_steps[0]) == (token_max == COLLAPSE)
    cited_right(cited.last_result, {"0", "1", "2"})


@pytest.mark.parametrize("call", ["invoke", "stream"])
def test_map_reduce_with_sync_nodes_over_documents_keeps_their_ids(attributor, call):
    """The same graph with sync nodes, given the Documents themselves: their ids are cited."""
    given = {"contents": DOCS}
    graph = map_reduce_graph(token_max=NO_COLLAPSE, run_async=False)
    handler = AttributionCallbackHandler(attributor)
    config: Any = {"callbacks": [handler]}
    if call == "invoke":
        state = graph.invoke(given, config)
        assert state["final_summary"].endswith(INVENTED)
    else:
        assert list(graph.stream(given, config, stream_mode="values"))[-1]["final_summary"]
    cited_right(handler.last_result, {"doc-bridge", "doc-tower", "doc-ferry"})
    cited = with_attribution(graph, attributor)
    if call == "invoke":
        cited.invoke(given)
    else:
        list(cited.stream(given, stream_mode="updates"))
    cited_right(cited.last_result, {"doc-bridge", "doc-tower", "doc-ferry"})


def test_summaries_of_texts_nothing_hands_in_are_cited_with_a_note(attributor, caplog):
    """A graph that loads its texts itself (no run returns them, the input holds none) has
    only its own summaries to cite: they are cited, and `error` (logged once) says so."""

    class Loaded(OverallState):
        path: str

    inner = map_reduce_graph(token_max=NO_COLLAPSE, run_async=False)
    builder = StateGraph(Loaded)
    builder.add_node("load", lambda state: {"contents": [d.page_content for d in DOCS]})
    builder.add_node("summarise", inner)
    builder.add_edge(START, "load")
    builder.add_edge("load", "summarise")
    handler = AttributionCallbackHandler(attributor)
    with caplog.at_level(logging.WARNING, logger="rag_attrib"):
        for _ in range(2):
            builder.compile().invoke({"path": "docs/"}, {"callbacks": [handler]})
    result = handler.last_result
    assert result is not None and result.sources
    assert "only documents this call's LLMs wrote reached the answer" in (result.error or "")
    assert not {s.text for s in result.sources} & TEXTS
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "add_sources(docs)" in warnings[0].getMessage()


# --- subagents: a supervisor whose tool invokes a subagent that owns the retriever --------------


class Researcher(BaseChatModel):
    """An agent's model: first calls each tool in `calls` (one parallel turn, the last human
    message as the query), then answers with the facts its tool results hold and an invented
    sentence. `quote_first` writes the first document it read whole (as LLMs quote a short
    one) and only the first sentence of the others."""

    calls: tuple[str, ...] = ()
    quote_first: bool = False

    @property
    def _llm_type(self) -> str:
        return "researcher"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        turn = max(k for k, m in enumerate(messages) if isinstance(m, HumanMessage))
        asked = messages[turn]
        results = [m for m in messages[turn:] if isinstance(m, ToolMessage)]
        if self.calls and not results:
            query = str(asked.text).removeprefix("Question: ")
            calls = [
                {"name": name, "args": {"query": query}, "id": f"call-{k}", "type": "tool_call"}
                for k, name in enumerate(self.calls)
            ]
            message = AIMessage(content="", tool_calls=calls)
        else:
            read = "\n".join(str(m.text) for m in results) or str(asked.text)
            facts = list(dict.fromkeys(_FACT.findall(read)))
            if self.quote_first and facts:
                first = re.search(r"Content: (.*)", read)
                facts[0] = first.group(1) if first else facts[0]
            message = AIMessage(content=" ".join([*facts, INVENTED]))
        return ChatResult(generations=[ChatGeneration(message=message)])


@pytest.fixture
def store(attributor: Attributor) -> InMemoryVectorStore:
    vector_store = InMemoryVectorStore(MiniLMEmbeddings(attributor))
    vector_store.add_documents(DOCS)
    return vector_store


def subagent(store: InMemoryVectorStore, *, quote_first: bool = False, k: int = 2) -> Any:
    @tool(response_format="content_and_artifact")
    def retrieve_context(query: str) -> tuple[str, list[Document]]:
        """Retrieve information to help answer a query."""
        docs = store.similarity_search(query, k=k)
        text = "\n\n".join(f"Source: {d.metadata}\nContent: {d.page_content}" for d in docs)
        return text, docs

    model = Researcher(calls=("retrieve_context",), quote_first=quote_first)
    return create_agent(model, tools=[retrieve_context])


def supervisor(research: Any, *, name: str = "research") -> Any:
    return create_agent(Researcher(calls=(name,)), tools=[research])


def research_tool(sub: Any) -> Any:
    """The docs' "tool per agent": the subagent's last message is the tool's result."""

    @tool("research", description="Research a question in the Halden documents.")
    def call_research(query: str) -> str:
        result = sub.invoke({"messages": [{"role": "user", "content": query}]})
        return str(result["messages"][-1].content)

    return call_research


def research_tool_async(sub: Any) -> Any:
    @tool("research", description="Research a question in the Halden documents.")
    async def call_research(query: str) -> str:
        result = await sub.ainvoke({"messages": [{"role": "user", "content": query}]})
        return str(result["messages"][-1].content)

    return call_research


def research_tool_command(sub: Any) -> Any:
    """The docs' "subagent outputs" variant: the tool returns a `Command` updating the
    supervisor's messages with the subagent's reply (`ToolRuntime` gives the call id)."""

    @tool("research", description="Research a question in the Halden documents.")
    def call_research(query: str, runtime: ToolRuntime) -> Command:
        result = sub.invoke({"messages": [{"role": "user", "content": query}]})
        reply = ToolMessage(
            content=result["messages"][-1].content, tool_call_id=runtime.tool_call_id
        )
        return Command(update={"messages": [reply]})

    return call_research


CHAT = {"messages": [HumanMessage(QUESTION)]}
HALDEN = {"doc-bridge", "doc-tower"}


@pytest.mark.parametrize("shape", ["tool", "command"])
@pytest.mark.parametrize("call", ["invoke", "stream", "ainvoke", "astream"])
async def test_supervisor_answer_cites_what_its_subagent_retrieved(store, attributor, shape, call):
    """The supervisor's answer, written from the subagent's reply, cites the documents the
    subagent's retriever tool returned; the subagent's own answer is never the one
    attributed. Handler and wrapper; invoke, "values" stream, and async."""
    make = research_tool if shape == "tool" else research_tool_command
    if call.startswith("a") and shape == "tool":
        make = research_tool_async

    async def run(runnable: Any, config: Any = None) -> Any:
        if call == "invoke":
            return runnable.invoke(CHAT, config)
        if call == "ainvoke":
            return await runnable.ainvoke(CHAT, config)
        if call == "stream":
            return list(runnable.stream(CHAT, config, stream_mode="values"))[-1]
        return [c async for c in runnable.astream(CHAT, config, stream_mode="values")][-1]

    handler = AttributionCallbackHandler(attributor)
    state = await run(supervisor(make(subagent(store))), {"callbacks": [handler]})
    result = handler.last_result
    assert result is not None and result.answer == state["messages"][-1].text
    assert sum(isinstance(m, ToolMessage) for m in state["messages"]) == 1
    cited_right(result, HALDEN)
    cited = with_attribution(supervisor(make(subagent(store))), attributor)
    await run(cited)
    cited_right(cited.last_result, HALDEN)


def test_a_subagent_that_quotes_one_document_whole_still_cites_both(store, attributor):
    """The subagent's reply quotes the bridge document whole and only a sentence of the tower
    one: the supervisor's prompt shows one document, but its answer rests on what the subagent
    read, so both are cited (the tower fact cited the bridge document)."""
    sup = supervisor(research_tool(subagent(store, quote_first=True)))
    handler = AttributionCallbackHandler(attributor)
    state = sup.invoke(CHAT, {"callbacks": [handler]})
    reply = next(m for m in state["messages"] if isinstance(m, ToolMessage)).text
    assert [d.page_content in reply for d in DOCS[:2]].count(True) == 1
    cited_right(handler.last_result, HALDEN)
    cited = with_attribution(sup, attributor)
    cited.invoke(CHAT)
    cited_right(cited.last_result, HALDEN)


def test_a_single_dispatch_tool_with_parallel_subagent_calls(attributor):
    """The docs' single `task(agent_name, ...)` tool, called for two subagents in one turn
    (run on parallel threads): the answer cites the documents of both."""
    stores = {}
    for name, docs in (("halden", DOCS[:2]), ("bergen", DOCS[2:])):
        stores[name] = InMemoryVectorStore(MiniLMEmbeddings(attributor))
        stores[name].add_documents(docs)
    agents = {name: subagent(s, k=2) for name, s in stores.items()}

    def task_tool(agent_name: str) -> Any:
        @tool(f"task_{agent_name}", description=f"Hand a task to the {agent_name} subagent.")
        def task(query: str) -> str:
            result = agents[agent_name].invoke({"messages": [{"role": "user", "content": query}]})
            return str(result["messages"][-1].content)

        return task

    sup = create_agent(
        Researcher(calls=("task_halden", "task_bergen")),
        tools=[task_tool("halden"), task_tool("bergen")],
    )
    handler = AttributionCallbackHandler(attributor)
    state = sup.invoke(CHAT, {"callbacks": [handler]})
    assert sum(isinstance(m, ToolMessage) for m in state["messages"]) == 2
    cited_right(handler.last_result, {"doc-bridge", "doc-tower", "doc-ferry"})
    assert len(handler.last_result.answer_sentences) == 4  # type: ignore[union-attr]


ONE_EACH = {
    "doc-bridge": "When did the Halden bridge open?",
    "doc-tower": "When was the Halden tower painted red?",
    "doc-ferry": "How often does the Bergen ferry sail?",
}


@pytest.mark.parametrize("mode", ["abatch", "gather", "threads", "wrapper_batch"])
async def test_concurrent_supervisor_runs_never_mix(store, attributor, mode):
    """Three questions at once, each answered from the one document its subagent retrieved:
    one handler (abatch, gather, threads) or the wrapper's batch; each result cites only its
    own document."""
    sup = supervisor(research_tool(subagent(store, k=1)))
    handler = AttributionCallbackHandler(attributor)
    config: Any = {"callbacks": [handler]}
    inputs = [{"messages": [HumanMessage(q)]} for q in ONE_EACH.values()]
    results: list[AttributionResult | None] = []
    if mode == "abatch":
        await sup.abatch(inputs, config)
    elif mode == "gather":
        await asyncio.gather(*(sup.ainvoke(i, config) for i in inputs))
    elif mode == "threads":
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda i: sup.invoke(i, config), inputs))
    else:
        cited = with_attribution(sup, attributor, on_result=results.append)
        cited.batch(inputs)
    if mode != "wrapper_batch":
        results = list(handler.results.values())
        assert handler.active_runs == 0
    assert len(results) == 3
    by_doc = {}
    for result in results:
        assert result is not None
        texts = cited_right(result)
        assert len(texts) == 1
        by_doc[next(iter(texts))] = result.question
    assert by_doc == ONE_EACH


def test_a_return_direct_subagent_tool_answers_with_its_reply(store, attributor, caplog):
    """`@tool(return_direct=True)`: the agent stops on the tool's result, which is the
    answer (it was "no answer found", with a WARNING naming the wrong fix); the subagent's
    retrieved documents are cited."""
    sub = subagent(store)

    @tool("research", return_direct=True)
    def call_research(query: str) -> str:
        """Research a question in the Halden documents; the reply goes to the user."""
        result = sub.invoke({"messages": [{"role": "user", "content": query}]})
        return str(result["messages"][-1].content)

    sup = supervisor(call_research)
    handler = AttributionCallbackHandler(attributor)
    with caplog.at_level(logging.WARNING, logger="rag_attrib"):
        state = sup.invoke(CHAT, {"callbacks": [handler]})
    assert isinstance(state["messages"][-1], ToolMessage)
    result = handler.last_result
    assert result is not None and result.answer == state["messages"][-1].text
    cited_right(result, HALDEN)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    out = with_attribution(sup, attributor).invoke(CHAT)
    assert out["attribution"]["answer"] == state["messages"][-1].text
    assert out["attribution"]["error"] is None


def test_a_return_direct_retriever_tool_in_a_follow_up_turn(store, attributor):
    """A `return_direct` retrieval tool in a thread's second turn: its result is this turn's
    answer (the thread's history ends with the first turn's)."""
    from langgraph.checkpoint.memory import InMemorySaver

    @tool(return_direct=True)
    def lookup(query: str) -> str:
        """Look the question up and show the passages."""
        return " ".join(d.page_content for d in store.similarity_search(query, k=1))

    agent = create_agent(
        Researcher(calls=("lookup",)), tools=[lookup], checkpointer=InMemorySaver()
    )
    cited = with_attribution(agent, attributor)
    config: Any = {"configurable": {"thread_id": "direct"}}
    cited.invoke({"messages": [HumanMessage(ONE_EACH["doc-bridge"])]}, config)
    state = cited.invoke({"messages": [HumanMessage(ONE_EACH["doc-ferry"])]}, config)
    assert state["attribution"]["answer"] == state["messages"][-1].text
    assert "ferry" in state["attribution"]["answer"]


class Quoting(BaseChatModel):
    """Answers with the first fact its prompt shows, copied word for word."""

    @property
    def _llm_type(self) -> str:
        return "quoting"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        prompt = "\n".join(str(m.text) for m in messages)
        message = AIMessage(content=_FACT.findall(prompt)[0])
        return ChatResult(generations=[ChatGeneration(message=message)])


def test_an_answer_copied_from_a_document_still_cites_it(store, attributor):
    """The LangGraph RAG tutorial's graph (retrieval in a node) answering with a sentence of
    a document, word for word: that document is evidence, not text the LLM wrote."""
    from test_langchain_shapes import tutorial_graph

    handler = AttributionCallbackHandler(attributor)
    state = tutorial_graph(store, Quoting()).invoke(
        {"question": ONE_EACH["doc-bridge"]}, {"callbacks": [handler]}
    )
    result = handler.last_result
    assert result is not None and result.error is None
    assert state["answer"] in DOCS[0].page_content
    assert result.answer_sentences[0].citations[0].source_id == "doc-bridge"


class OneFact(Researcher):
    """`Researcher` whose answer is its first fact alone, copied from a document."""

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        result = super()._generate(messages, stop, run_manager, **kw)
        message = result.generations[0].message
        if isinstance(message, AIMessage) and not message.tool_calls:
            first = _FACT.findall(message.text)[0]
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=first))])
        return result


def test_a_tool_that_puts_documents_into_the_state_with_a_command(store, attributor):
    """A `ToolRuntime` tool returning `Command(update={"context": docs, "messages": [...]})`
    (the docs' way for a tool to update state): its documents are the tool's, and an answer
    copied from one of them cites it (the document, seen only in the final state, was taken
    for one the LLM wrote, and dropped)."""
    from langchain.agents import AgentState

    class ContextState(AgentState):
        context: list[Document]

    @tool
    def retrieve(query: str, runtime: ToolRuntime) -> Command:
        """Retrieve passages and keep them in the agent's state."""
        docs = store.similarity_search(query, k=2)
        text = "\n\n".join(d.page_content for d in docs)
        reply = ToolMessage(text, tool_call_id=runtime.tool_call_id)
        return Command(update={"context": docs, "messages": [reply]})

    agent = create_agent(OneFact(calls=("retrieve",)), tools=[retrieve], state_schema=ContextState)
    handler = AttributionCallbackHandler(attributor)
    state = agent.invoke(CHAT, {"callbacks": [handler]})
    assert len(state["context"]) == 2
    result = handler.last_result
    assert result is not None and result.error is None
    assert {s.id for s in result.sources} == HALDEN
    (sentence,) = result.answer_sentences
    cited = next(d for d in DOCS if sentence.text in d.page_content)
    assert sentence.supported and sentence.citations[0].source_id == cited.id


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_supervisor_streamed_with_subagent_tokens_and_namespaces(store, attributor, mode):
    """`stream_mode=["updates", "messages"], subgraphs=True` (the docs' way to watch the
    subagents work): the wrapper yields the graph's own chunks, subagent tokens included, and
    the supervisor's answer is the one attributed."""
    from test_langgraph_streams import skeleton

    async def read(runnable: Any) -> list[Any]:
        kwargs: Any = {"stream_mode": ["updates", "messages"], "subgraphs": True}
        if mode == "sync":
            return list(runnable.stream(CHAT, **kwargs))
        return [chunk async for chunk in runnable.astream(CHAT, **kwargs)]

    make = research_tool if mode == "sync" else research_tool_async
    plain = await read(supervisor(make(subagent(store))))
    cited = with_attribution(supervisor(make(subagent(store))), attributor)
    wrapped = await read(cited)
    assert [skeleton(c) for c in wrapped] == [skeleton(c) for c in plain]
    assert any(namespace for namespace, *_ in plain)  # the subagent's own chunks are there
    result = cited.last_result
    cited_right(result, HALDEN)
    answers = [c[2][0].text for c in plain if c[1] == "messages" and not c[0]]
    assert result is not None and result.answer == answers[-1]


@pytest.mark.slow
async def test_real_model_on_the_map_reduce_graph_and_a_supervisor(real_attributor):
    """With MiniLM for retrieval and attribution: the map-reduce summary cites the three input
    texts, the supervisor's answer the subagent's documents; the invention is flagged."""
    handler = AttributionCallbackHandler(real_attributor)
    await map_reduce_graph(token_max=COLLAPSE).ainvoke(CONTENTS, {"callbacks": [handler]})
    cited_right(handler.last_result, {"0", "1", "2"})
    real_store = InMemoryVectorStore(MiniLMEmbeddings(real_attributor))
    real_store.add_documents(DOCS)
    cited = with_attribution(supervisor(research_tool(subagent(real_store))), real_attributor)
    cited.invoke(CHAT)
    cited_right(cited.last_result, HALDEN)
