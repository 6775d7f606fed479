"""LangChain where users are: the LangGraph RAG tutorial, v1 agents with tools and middleware, a
Self-RAG graph, compression retrievers, overlapping splitter chunks and graph streams. All real
langchain-core / langgraph / langchain / langchain-classic objects; only the LLM is a fake that
reads its prompt and answers from it (two facts from two documents, then an invented sentence):
`ReaderChatModel`, in _langchain.py with the documents and the tutorial graph.
"""

from __future__ import annotations

import logging
import time
from typing import Any, TypedDict

import numpy as np
import pytest
from pydantic import BaseModel

pytest.importorskip("langgraph")
pytest.importorskip("langchain.agents")
pytest.importorskip("langchain_classic")
pytest.importorskip("langchain_community")
pytest.importorskip("langchain_text_splitters")

from _langchain import (
    DOCS,
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
from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    HumanInTheLoopMiddleware,
    ModelRequest,
    dynamic_prompt,
)
from langchain.agents.structured_output import ToolStrategy
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_classic.retrievers.document_compressors import EmbeddingsFilter, LLMChainExtractor
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnablePassthrough
from langchain_core.tools import tool
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_text_splitters import RecursiveCharacterTextSplitter
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command

from rag_attrib import AttributionResult, Attributor
from rag_attrib.integrations.langchain import (
    AttributionCallbackHandler,
    MiniLMEmbeddings,
    add_sources,
    with_attribution,
)
from rag_attrib.testing import HashingEmbedder


class Grader(BaseChatModel):
    """A Self-RAG grader: always says the answer is grounded."""

    @property
    def _llm_type(self) -> str:
        return "grader"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="yes"))])


# `attributor` and `store` (the Halden documents) come from conftest.py.


# --- the LangGraph RAG tutorial -----------------------------------------------------------------


def test_tutorial_graph_with_the_handler(store, attributor):
    """The tutorial graph, unchanged: the answer in state["answer"] cites the retrieved docs."""
    handler = AttributionCallbackHandler(attributor)
    state = tutorial_graph(store, ReaderChatModel()).invoke(
        {"question": QUESTION}, config={"callbacks": [handler]}
    )
    assert handler.last_result is not None and handler.last_result.answer == state["answer"]
    check(handler.last_result)


async def test_tutorial_graph_with_the_wrapper_async(store, attributor):
    """`with_attribution(graph).ainvoke` adds "attribution" to the final state."""
    state = await with_attribution(tutorial_graph(store, ReaderChatModel()), attributor).ainvoke(
        {"question": QUESTION}
    )
    assert state["attribution"]["citations"][0]["extras"]["source_id"] == "doc-bridge"
    assert state["answer"].endswith(INVENTED)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_graph_invoke_version_v2_gets_the_attribution_in_its_value(store, attributor, mode):
    """`invoke(..., version="v2")` returns LangGraph's `GraphOutput(value, interrupts)`: the
    state in `value` gets "attribution" (it came back without one), the wrapper's type kept."""
    graph = tutorial_graph(store, ReaderChatModel())
    plain = graph.invoke({"question": QUESTION})
    cited = with_attribution(graph, attributor)
    try:
        if mode == "sync":
            out = cited.invoke({"question": QUESTION}, version="v2")
        else:
            out = await cited.ainvoke({"question": QUESTION}, version="v2")
    except TypeError:
        pytest.skip("this langgraph has no version= on invoke")
    assert type(out).__name__ == "GraphOutput" and out.interrupts == ()
    state = out.value
    assert state["answer"] == plain["answer"]
    assert state["attribution"]["error"] is None
    assert state["attribution"]["answer"] == plain["answer"]
    check(cited.last_result)


@pytest.mark.parametrize("mode", ["values", "updates"])
def test_graph_stream_loops_as_the_docs_write_them(store, attributor, mode):
    """`stream_mode="values"/"updates"` loops read every chunk by key; no extra chunk breaks them."""
    seen: list[AttributionResult] = []
    cited = with_attribution(
        tutorial_graph(store, ReaderChatModel()), attributor, on_result=seen.append
    )
    answers = []
    for step in cited.stream({"question": QUESTION}, stream_mode=mode):
        state = step if mode == "values" else next(iter(step.values()))
        answers.append(state.get("answer"))
    assert answers[-1] is not None and answers[-1].endswith(INVENTED)
    check(cited.last_result)
    assert seen == [cited.last_result]


def test_agent_stream_values_loop_reads_the_last_message(store, attributor):
    """The agent docs' loop `event["messages"][-1]` works; the accessor has the attribution."""
    agent = create_agent(
        ReaderChatModel(tool_name="retrieve_context"), tools=[artifact_tool(store)]
    )
    cited = with_attribution(agent, attributor)
    last = None
    for event in cited.stream({"messages": [HumanMessage(QUESTION)]}, stream_mode="values"):
        last = event["messages"][-1]
    assert isinstance(last, AIMessage) and last.text.endswith(INVENTED)
    check(cited.last_result)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_agent_messages_stream_yields_token_metadata_pairs_unchanged(store, attributor, mode):
    """`stream_mode="messages"` (the agent docs' token loop `for token, metadata in ...`):
    every chunk stays a pair, no extra chunk breaks the unpacking, `last_result` has it."""
    agent = create_agent(
        ReaderChatModel(tool_name="retrieve_context"), tools=[artifact_tool(store)]
    )
    cited = with_attribution(agent, attributor)
    given = {"messages": [HumanMessage(QUESTION)]}
    if mode == "sync":
        chunks = list(cited.stream(given, stream_mode="messages"))
    else:
        chunks = [c async for c in cited.astream(given, stream_mode="messages")]
    texts = []
    for token, metadata in chunks:
        assert isinstance(metadata, dict)
        texts.append(token.text)
    assert texts[-1].endswith(INVENTED)
    check(cited.last_result)


def test_always_mode_ends_a_state_stream_with_the_attribution(store, attributor):
    """attribution_chunk="always" adds a last `{"attribution": ...}` chunk for loops that expect it."""
    cited = with_attribution(
        tutorial_graph(store, ReaderChatModel()), attributor, attribution_chunk="always"
    )
    chunks = list(cited.stream({"question": QUESTION}, stream_mode="values"))
    assert set(chunks[-1]) == {"attribution"} and "answer" in chunks[-2]


def agentic_rag_graph(store: InMemoryVectorStore) -> Any:
    """LangGraph's agentic RAG tutorial: a model that calls a retriever tool, a tools node, and
    a node that answers from the tool's text (the grading detour left out)."""

    @tool
    def retrieve_docs(query: str) -> str:
        """Search and return information about Halden."""
        docs = store.as_retriever(search_kwargs={"k": 3}).invoke(query)
        return "\n\n".join(doc.page_content for doc in docs)

    caller, answerer = ReaderChatModel(tool_name="retrieve_docs"), ReaderChatModel()

    def generate_query_or_respond(state: MessagesState) -> dict[str, Any]:
        return {"messages": [caller.bind_tools([retrieve_docs]).invoke(state["messages"])]}

    def generate_answer(state: MessagesState) -> dict[str, Any]:
        question, context = state["messages"][0].content, state["messages"][-1].content
        prompt = f"Answer the question.\nQuestion: {question}\nContext: {context}"
        return {"messages": [answerer.invoke([{"role": "user", "content": prompt}])]}

    builder = StateGraph(MessagesState)
    builder.add_node(generate_query_or_respond)
    builder.add_node("retrieve", ToolNode([retrieve_docs]))
    builder.add_node(generate_answer)
    builder.add_edge(START, "generate_query_or_respond")
    builder.add_conditional_edges(
        "generate_query_or_respond", tools_condition, {"tools": "retrieve", END: END}
    )
    builder.add_edge("retrieve", "generate_answer")
    builder.add_edge("generate_answer", END)
    return builder.compile()


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_typed_event_stream_of_the_agentic_rag_tutorial(store, attributor, mode):
    """The tutorial reads its run as `graph.stream_events(..., version="v3")` and prints
    `stream.messages` token by token. Through `with_attribution` that stream is the graph's
    own, read the same, and the run is attributed once it ends (it raised NotImplementedError)."""
    graph = agentic_rag_graph(store)
    if not hasattr(graph, "stream_events"):
        pytest.skip("this langgraph has no typed (v3) event stream")
    seen: list[AttributionResult] = []
    cited = with_attribution(graph, attributor, on_result=seen.append)
    inputs = {"messages": [{"role": "user", "content": QUESTION}]}

    async def read(runnable: Any) -> list[str]:
        if mode == "sync":
            stream = runnable.stream_events(inputs, version="v3")
            return ["".join(str(t) for t in m.text) for m in stream.messages]
        stream = await runnable.astream_events(inputs, version="v3")
        return ["".join([str(t) async for t in m.text]) async for m in stream.messages]

    plain = await read(graph)
    assert plain and plain[-1].endswith(INVENTED)
    assert await read(cited) == plain  # the user's stream, unchanged
    check(cited.last_result)
    assert seen == [cited.last_result]
    assert cited.last_result is not None and cited.last_result.answer == plain[-1]


# --- v1 agents: tools and middleware --------------------------------------------------------------


def test_agent_with_content_and_artifact_tool(store, attributor):
    """The documents in `ToolMessage.artifact` are cited; the final AI message is the answer."""
    agent = create_agent(
        ReaderChatModel(tool_name="retrieve_context"), tools=[artifact_tool(store)]
    )
    handler = AttributionCallbackHandler(attributor)
    state = agent.invoke({"messages": [HumanMessage(QUESTION)]}, config={"callbacks": [handler]})
    assert handler.last_result is not None
    assert handler.last_result.answer == state["messages"][-1].text
    check(handler.last_result)


def test_agent_with_a_tool_returning_documents_as_content(store, attributor):
    """A tool that returns Documents (LangChain writes them into the content) is cited too."""

    @tool
    def search_docs(query: str) -> list[Document]:
        """Search the documents."""
        return store.similarity_search(query, k=2)

    agent = create_agent(ReaderChatModel(tool_name="search_docs"), tools=[search_docs])
    state = with_attribution(agent, attributor).invoke({"messages": [HumanMessage(QUESTION)]})
    citations = state["attribution"]["citations"]
    assert {c["extras"]["source_id"] for c in citations} == {"doc-bridge", "doc-tower"}


def test_a_follow_up_turn_cites_the_documents_in_the_threads_history(store, attributor):
    """With a checkpointer, a follow-up the agent answers from the first turn's tool results
    cites those documents: the history holds them as the dicts the checkpointer stored (it
    said "nothing can be cited" and flagged every sentence)."""
    agent = create_agent(
        ReaderChatModel(tool_name="retrieve_context"),
        tools=[artifact_tool(store)],
        checkpointer=InMemorySaver(),
    )
    cited = with_attribution(agent, attributor)
    config: Any = {"configurable": {"thread_id": "thread-1"}}
    cited.invoke({"messages": [HumanMessage(QUESTION)]}, config)
    state = cited.invoke({"messages": [HumanMessage(QUESTION)]}, config)
    assert sum(isinstance(m, ToolMessage) for m in state["messages"]) == 1  # no second search
    check(cited.last_result)
    handler = AttributionCallbackHandler(attributor)
    agent.invoke({"messages": [HumanMessage(QUESTION)]}, {**config, "callbacks": [handler]})
    check(handler.last_result)


@pytest.mark.parametrize("face", ["invoke", "stream", "handler"])
def test_an_interrupted_run_is_attributed_when_resumed(store, attributor, caplog, face):
    """Human-in-the-loop (`HumanInTheLoopMiddleware`, a LangGraph interrupt) pauses the agent
    before its tool runs: nothing is attributed, attached or logged for the paused call (it
    said "no answer found" with a WARNING naming the wrong fix); the call that resumes it with
    `Command(resume=...)` is attributed, with the user's question from the thread's state."""
    agent = create_agent(
        ReaderChatModel(tool_name="retrieve_context"),
        tools=[artifact_tool(store)],
        checkpointer=InMemorySaver(),
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"retrieve_context": True})],
    )
    seen: list[AttributionResult] = []
    cited = with_attribution(agent, attributor, on_result=seen.append)
    handler = AttributionCallbackHandler(attributor)
    config: Any = {"configurable": {"thread_id": f"hitl-{face}"}}

    def call(given: Any) -> Any:
        if face == "invoke":
            return cited.invoke(given, config)
        if face == "stream":
            return list(cited.stream(given, config, stream_mode="updates"))[-1]
        return agent.invoke(given, {**config, "callbacks": [handler]})

    with caplog.at_level(logging.DEBUG, logger="rag_attrib"):
        paused = call({"messages": [HumanMessage(QUESTION)]})
    assert "__interrupt__" in paused and "attribution" not in paused
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert seen == [] and handler.last_result is None
    call(Command(resume={"decisions": [{"type": "approve"}]}))
    result = handler.last_result if face == "handler" else cited.last_result
    check(result)
    assert result is not None and result.question == QUESTION


class PlainAnswer(BaseModel):
    """Answer from the documents."""

    answer: str


@pytest.mark.parametrize("schema", [CitedAnswer, PlainAnswer])
def test_agent_with_a_response_format_attributes_its_structured_response(store, attributor, schema):
    """`create_agent(..., response_format=Schema)` ends with no AI text: its answer is in
    state["structured_response"] and is attributed there, a cited one's ids checked (it was
    "no answer found", nothing attributed, one WARNING)."""
    model = StructuredAnswerer(schema_name=schema.__name__)
    agent = create_agent(model, tools=[artifact_tool(store)], response_format=ToolStrategy(schema))
    state = with_attribution(agent, attributor).invoke({"messages": [HumanMessage(QUESTION)]})
    assert isinstance(state["structured_response"], schema)
    attribution = state["attribution"]
    assert attribution["error"] is None
    assert attribution["answer"] == state["structured_response"].answer
    handler = AttributionCallbackHandler(attributor)
    agent.invoke({"messages": [HumanMessage(QUESTION)]}, config={"callbacks": [handler]})
    check(handler.last_result)
    report = handler.last_result.citation_check if handler.last_result else None
    if schema is PlainAnswer:
        assert report is None and "citation_check" not in attribution
        return
    assert report is not None
    assert [(m.label, m.verdict) for m in report.markers] == [
        ("doc-bridge", "correct"),
        ("doc-ferry", "dangling"),
    ]


class ContextState(AgentState):
    context: list[Document]


def test_agent_with_before_model_middleware(store, attributor):
    """The tutorial's RetrieveDocumentsMiddleware: documents put in the state are cited."""

    class RetrieveDocumentsMiddleware(AgentMiddleware[ContextState]):
        state_schema = ContextState

        def before_model(self, state: ContextState, runtime: Any) -> dict[str, Any] | None:
            last_message = state["messages"][-1]
            retrieved_docs = store.similarity_search(str(last_message.text))
            docs_content = "\n\n".join(doc.page_content for doc in retrieved_docs)
            augmented = (
                f"{last_message.text}\n\nUse the following context to answer the query:\n"
                f"{docs_content}"
            )
            return {
                "messages": [last_message.model_copy(update={"content": augmented})],
                "context": retrieved_docs,
            }

    agent = create_agent(ReaderChatModel(), tools=[], middleware=[RetrieveDocumentsMiddleware()])
    handler = AttributionCallbackHandler(attributor)
    agent.invoke({"messages": [HumanMessage(QUESTION)]}, config={"callbacks": [handler]})
    check(handler.last_result)


def _dynamic_prompt_agent(store: InMemoryVectorStore, *, hand_in: bool) -> Any:
    @dynamic_prompt
    def prompt_with_context(request: ModelRequest) -> str:
        last_query = str(request.state["messages"][-1].text)
        retrieved_docs = store.similarity_search(last_query)
        if hand_in:
            add_sources(retrieved_docs)
        docs_content = "\n\n".join(doc.page_content for doc in retrieved_docs)
        return f"You are a helpful assistant. Use the following context:\n\n{docs_content}"

    return create_agent(ReaderChatModel(), tools=[], middleware=[prompt_with_context])


def test_agent_with_dynamic_prompt_and_add_sources(store, attributor):
    """Documents only a prompt shows are handed in with `add_sources` and cited."""
    agent = _dynamic_prompt_agent(store, hand_in=True)
    state = with_attribution(agent, attributor).invoke({"messages": [HumanMessage(QUESTION)]})
    assert state["attribution"]["error"] is None
    handler = AttributionCallbackHandler(attributor)
    agent.invoke({"messages": [HumanMessage(QUESTION)]}, config={"callbacks": [handler]})
    check(handler.last_result)


def test_nothing_to_cite_warns_once_naming_the_fix(store, attributor, caplog):
    """Without add_sources the prompt's documents are invisible: one WARNING per handler."""
    agent = _dynamic_prompt_agent(store, hand_in=False)
    handler = AttributionCallbackHandler(attributor)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            agent.invoke({"messages": [HumanMessage(QUESTION)]}, config={"callbacks": [handler]})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "add_sources(docs)" in warnings[0]
    assert handler.last_result is not None and "nothing can be cited" in (
        handler.last_result.error or ""
    )


def test_add_sources_outside_a_run_logs_and_returns(caplog):
    """Called outside any run it cannot reach a call: a WARNING, no exception."""
    with caplog.at_level(logging.WARNING):
        add_sources(DOCS[:1])
    assert any("outside a LangChain run" in r.getMessage() for r in caplog.records)
    with pytest.raises(TypeError, match="add_sources takes langchain_core Documents"):
        add_sources(["not a document"])  # type: ignore[list-item]


def test_add_sources_in_a_graph_node(attributor):
    """The README's LangGraph example: a node that formats documents into a string."""

    class State(TypedDict):
        question: str
        context: str
        answer: str

    def retrieve(state: State) -> dict[str, Any]:
        add_sources(DOCS)
        return {"context": "\n\n".join(d.page_content for d in DOCS)}

    def generate(state: State) -> dict[str, Any]:
        prompt = RAG_PROMPT.invoke({"question": state["question"], "context": state["context"]})
        return {"answer": ReaderChatModel().invoke(prompt).content}

    builder = StateGraph(State).add_sequence([retrieve, generate])
    builder.add_edge(START, "retrieve")
    handler = AttributionCallbackHandler(attributor)
    builder.compile().invoke({"question": QUESTION}, config={"callbacks": [handler]})
    check(handler.last_result)


# --- Self-RAG: the answer in state["generation"], a grader after it ------------------------------


class SelfRagState(TypedDict):
    question: str
    documents: list[Document]
    generation: str


def self_rag_graph(store: InMemoryVectorStore) -> Any:
    llm, grader = ReaderChatModel(), Grader()

    def retrieve(state: SelfRagState) -> dict[str, Any]:
        return {"documents": store.similarity_search(state["question"])}

    def grade_documents(state: SelfRagState) -> dict[str, Any]:
        # The grader drops the ferry document: it must not be cited.
        return {"documents": [d for d in state["documents"] if "Halden" in d.page_content]}

    def generate(state: SelfRagState) -> dict[str, Any]:
        context = "\n\n".join(d.page_content for d in state["documents"])
        prompt = RAG_PROMPT.invoke({"question": state["question"], "context": context})
        return {"generation": llm.invoke(prompt).content}

    def grade_generation(state: SelfRagState) -> str:
        verdict = grader.invoke(f"Is this grounded? {state['generation']}").content
        return "useful" if verdict == "yes" else "retry"

    builder = StateGraph(SelfRagState)
    for node in (retrieve, grade_documents, generate):
        builder.add_node(node.__name__, node)
    builder.add_edge(START, "retrieve")
    builder.add_edge("retrieve", "grade_documents")
    builder.add_edge("grade_documents", "generate")
    builder.add_conditional_edges(
        "generate", grade_generation, {"useful": END, "retry": "generate"}
    )
    return builder.compile()


def test_self_rag_answer_is_the_generation_not_the_grader(store, attributor):
    """state["generation"] is attributed, not the grader's "yes"; dropped documents are not cited."""
    handler = AttributionCallbackHandler(attributor)
    state = self_rag_graph(store).invoke({"question": QUESTION}, config={"callbacks": [handler]})
    result = handler.last_result
    assert result is not None and result.answer == state["generation"]
    check(result)
    assert {s.id for s in result.sources} == {"doc-bridge", "doc-tower"}


# --- compression retrievers ----------------------------------------------------------------------


def cosine(a: Any, b: Any) -> Any:
    return np.asarray(a) @ np.asarray(b).T  # MiniLMEmbeddings rows have unit length


def _compression_chain(retriever: Any) -> Any:
    def format_docs(docs: list[Document]) -> str:
        return "\n\n".join(d.page_content for d in docs)

    return (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | RAG_PROMPT
        | ReaderChatModel()
        | StrOutputParser()
    )


@pytest.mark.parametrize("compressor", ["embeddings_filter", "llm_extractor"])
def test_compression_retriever_cites_what_reached_the_llm(store, attributor, compressor):
    """The outer retriever's documents are cited, once each, with the ids they came from."""
    if compressor == "embeddings_filter":
        base = EmbeddingsFilter(
            embeddings=MiniLMEmbeddings(attributor),
            similarity_threshold=0.2,
            similarity_fn=cosine,  # its default needs langchain-community
        )
    else:
        base = LLMChainExtractor.from_llm(ReaderChatModel())
    retriever = ContextualCompressionRetriever(
        base_compressor=base, base_retriever=store.as_retriever(search_kwargs={"k": 3})
    )
    handler = AttributionCallbackHandler(attributor)
    _compression_chain(retriever).invoke(QUESTION, config={"callbacks": [handler]})
    check(handler.last_result)
    assert handler.last_result is not None
    assert "doc-ferry" not in {s.id for s in handler.last_result.sources}


# --- overlapping chunks ------------------------------------------------------------------------


def test_overlapping_chunks_cite_each_source_sentence_once(attributor):
    """RecursiveCharacterTextSplitter(chunk_overlap=...) chunks: a shared sentence is cited once."""
    text = " ".join(d.page_content for d in DOCS)
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=110, chunk_overlap=60, separators=[". "], keep_separator="end"
    )
    chunks = splitter.create_documents([text])
    for k, chunk in enumerate(chunks):
        chunk.id = f"chunk-{k}"
    assert len(chunks) >= 3
    store = InMemoryVectorStore(MiniLMEmbeddings(attributor))
    store.add_documents(chunks)
    handler = AttributionCallbackHandler(attributor)
    _compression_chain(store.as_retriever(search_kwargs={"k": len(chunks)})).invoke(
        QUESTION, config={"callbacks": [handler]}
    )
    result = handler.last_result
    assert result is not None and result.error is None
    for sentence in result.answer_sentences[:2]:
        texts = [c.text for c in sentence.citations]
        assert texts and len(texts) == len(set(texts))
        first = sentence.citations[0]
        holders = [c.id for c in chunks if first.text in c.page_content]
        assert first.source_id == holders[0] and list(first.also_in) == holders[1:]
    assert not result.answer_sentences[2].supported
    assert any(c.also_in for s in result.answer_sentences for c in s.citations)


# --- what the answer is, and faults ---------------------------------------------------------------


def test_empty_answer_while_the_output_holds_text_is_an_error(store, attributor):
    """A graph whose "answer" is empty but whose state holds text reports it in `error`."""

    def generate(state: RagState) -> dict[str, Any]:
        ReaderChatModel().invoke(RAG_PROMPT.invoke({"question": state["question"], "context": ""}))
        return {"answer": ""}

    builder = StateGraph(RagState).add_sequence(
        [("retrieve", lambda s: {"context": store.similarity_search(s["question"])}), generate]
    )
    builder.add_edge(START, "retrieve")
    state = with_attribution(builder.compile(), attributor).invoke({"question": QUESTION})
    assert state["answer"] == ""
    assert "the answer text is empty while the output holds text" in state["attribution"]["error"]


def test_timeout_returns_the_output_with_timed_out(store):
    """A slow encoder past `timeout=`: the graph's output is intact, the error says timed out."""

    class Slow(HashingEmbedder):
        def encode(self, texts: Any) -> Any:
            time.sleep(3.0)
            return super().encode(texts)

    cited = with_attribution(
        tutorial_graph(store, ReaderChatModel()), Attributor(Slow()), timeout=0.05
    )
    started = time.perf_counter()
    state = cited.invoke({"question": QUESTION})
    assert time.perf_counter() - started < 2.5
    assert state["answer"].endswith(INVENTED) and state["attribution"]["error"] == "timed out"


@pytest.mark.parametrize("mode", ["values", "updates", "messages"])
def test_handler_on_streamed_graphs_and_agents(store, attributor, mode):
    """The handler attributes a streamed graph and agent in every stream mode."""
    for runnable, given in (
        (tutorial_graph(store, ReaderChatModel()), {"question": QUESTION}),
        (
            create_agent(
                ReaderChatModel(tool_name="retrieve_context"), tools=[artifact_tool(store)]
            ),
            {"messages": [HumanMessage(QUESTION)]},
        ),
    ):
        handler = AttributionCallbackHandler(attributor)
        for _ in runnable.stream(given, stream_mode=mode, config={"callbacks": [handler]}):
            pass
        check(handler.last_result)


@pytest.mark.slow
def test_real_model_on_the_tutorial_graph_and_an_agent(real_attributor):
    """With MiniLM for retrieval and attribution: each fact cites its own document first, the
    invented sentence is flagged, in the tutorial graph and in an agent with a tool."""
    real_store = InMemoryVectorStore(MiniLMEmbeddings(real_attributor))
    real_store.add_documents(DOCS)
    handler = AttributionCallbackHandler(real_attributor)
    tutorial_graph(real_store, ReaderChatModel()).invoke(
        {"question": QUESTION}, config={"callbacks": [handler]}
    )
    check(handler.last_result)
    agent = create_agent(
        ReaderChatModel(tool_name="retrieve_context"), tools=[artifact_tool(real_store)]
    )
    cited = with_attribution(agent, real_attributor)
    cited.invoke({"messages": [HumanMessage(QUESTION)]})
    check(cited.last_result)
