"""Shapes of the current LangChain / LangGraph docs not pinned elsewhere: the agentic RAG
tutorial whole (a grader with `with_structured_output(GradeDocuments)` sends a bad search to
`rewrite_question`, and the graph searches again), `create_agent(...,
response_format=ProviderStrategy(CitedAnswer))` (the answer comes back as JSON text) and
`ToolStrategy(..., handle_errors=True)` retrying a bad structured answer, runtime
context (`context_schema`, a `ToolRuntime` tool, `invoke(..., context=...)`), and the
functional API (`@entrypoint` with `@task`s, a checkpointer). Real
graphs, agents and tools; only the chat models are fakes that read their prompts.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

pytest.importorskip("langgraph")
pytest.importorskip("langchain.agents")

from _langchain import (
    INVENTED,
    QUESTION,
    RAG_PROMPT,
    CitedAnswer,
    ReaderChatModel,
    ReplyingChatModel,
    StructuredAnswerer,
    artifact_tool,
    check,
)
from langchain.agents import create_agent
from langchain.agents.structured_output import ProviderStrategy, ToolStrategy
from langchain.tools import ToolRuntime
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langchain_core.vectorstores import InMemoryVectorStore
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.func import entrypoint, task
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from rag_attrib import Attributor
from rag_attrib.integrations.langchain import AttributionCallbackHandler, with_attribution

# `attributor` and `store` (the Halden documents) come from conftest.py.

# --- the agentic RAG tutorial, with its grading detour ------------------------------------------

GRADE_PROMPT = (
    "You are a grader assessing relevance of a retrieved document to a user question.\n"
    "Here is the retrieved document:\n\n<context>\n{context}\n</context>\n\n"
    "Here is the user question: {question}\n"
    "Give a binary score 'yes' or 'no' score to indicate whether the document is relevant."
)
REWRITE_PROMPT = (
    "Look at the input and try to reason about the underlying semantic intent / meaning.\n"
    "Here is the initial question:\n ------- \n{question}\n ------- \n"
    "Formulate an improved question:"
)
GENERATE_PROMPT = (
    "You are an assistant for question-answering tasks. Use the following pieces of "
    "retrieved context to answer the question.\nQuestion: {question} \nContext: {context}"
)
FIRST_QUERY = "Bergen ferry tickets"  # the model's first, poor search


class GradeDocuments(BaseModel):
    """Grade documents using a binary score for relevance check."""

    binary_score: str = Field(description="Relevance score: 'yes' if relevant, or 'no' if not")


class TutorialModel(ReplyingChatModel):
    """The tutorial's `response_model`: searches (first with a poor query, then with the
    rewritten question), rewrites the question, and answers from the context it is given."""

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        last = str(messages[-1].text)
        if "Formulate an improved question:" in last:
            message = AIMessage(content=QUESTION)
        elif isinstance(messages[-1], HumanMessage) and "Context:" not in last:
            query = FIRST_QUERY if len(messages) == 1 else last
            call = {
                "name": "retrieve_docs",
                "args": {"query": query},
                "id": f"call-{len(messages)}",
            }
            message = AIMessage(content="", tool_calls=[call])
        else:
            return ReaderChatModel().reply(messages)
        return message


class Grader(ReplyingChatModel):
    """Answers through the `GradeDocuments` tool (`with_structured_output` binds it): "yes"
    when the document it grades is about Halden."""

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        context = str(messages[-1].text).split("<context>")[1].split("</context>")[0]
        score = "yes" if "Halden" in context else "no"
        call = {"name": "GradeDocuments", "args": {"binary_score": score}, "id": "grade"}
        message = AIMessage(content="", tool_calls=[{**call, "type": "tool_call"}])
        return message


def agentic_rag(store: InMemoryVectorStore) -> Any:
    """The tutorial's graph: generate_query_or_respond -> retrieve -> grade_documents ->
    (rewrite_question -> generate_query_or_respond ...) or generate_answer."""
    response_model, grader_model = TutorialModel(), Grader()

    @tool
    def retrieve_docs(query: str) -> str:
        """Search and return information about Halden and Bergen."""
        docs = store.as_retriever(search_kwargs={"k": 3}).invoke(query)
        words = set(re.findall(r"[a-z]+", query.lower())) - {"the", "and", "when", "was", "did"}
        kept = [d for d in docs if words & set(re.findall(r"[a-z]+", d.page_content.lower()))]
        return "\n\n".join(d.page_content for d in kept)

    def generate_query_or_respond(state: MessagesState) -> dict[str, Any]:
        return {"messages": [response_model.bind_tools([retrieve_docs]).invoke(state["messages"])]}

    def grade_documents(state: MessagesState) -> Literal["generate_answer", "rewrite_question"]:
        question, context = state["messages"][0].content, state["messages"][-1].content
        prompt = GRADE_PROMPT.format(question=question, context=context)
        response = grader_model.with_structured_output(GradeDocuments).invoke(
            [{"role": "user", "content": prompt}]
        )
        assert isinstance(response, GradeDocuments)
        return "generate_answer" if response.binary_score == "yes" else "rewrite_question"

    def rewrite_question(state: MessagesState) -> dict[str, Any]:
        prompt = REWRITE_PROMPT.format(question=state["messages"][0].content)
        response = response_model.invoke([{"role": "user", "content": prompt}])
        return {"messages": [HumanMessage(content=response.content)]}

    def generate_answer(state: MessagesState) -> dict[str, Any]:
        question, context = state["messages"][0].content, state["messages"][-1].content
        prompt = GENERATE_PROMPT.format(question=question, context=context)
        return {"messages": [response_model.invoke([{"role": "user", "content": prompt}])]}

    workflow = StateGraph(MessagesState)
    workflow.add_node(generate_query_or_respond)
    workflow.add_node("retrieve", ToolNode([retrieve_docs]))
    workflow.add_node(rewrite_question)
    workflow.add_node(generate_answer)
    workflow.add_edge(START, "generate_query_or_respond")
    workflow.add_conditional_edges(
        "generate_query_or_respond", tools_condition, {"tools": "retrieve", END: END}
    )
    workflow.add_conditional_edges("retrieve", grade_documents)
    workflow.add_edge("generate_answer", END)
    workflow.add_edge("rewrite_question", "generate_query_or_respond")
    return workflow.compile()


@pytest.mark.parametrize("face", ["invoke", "ainvoke", "stream", "handler"])
def test_agentic_rag_with_a_rewritten_question_cites_the_second_search(
    store: InMemoryVectorStore, attributor: Attributor, face: str
) -> None:
    """The first search finds the ferry, the grader says "no", the question is rewritten and
    the second search finds the bridge and the tower: the answer cites those two; the ferry
    document (graded out, never shown to the answering model) is not cited, and neither the
    grader's verdict nor the rewritten question is taken for the answer."""
    graph = agentic_rag(store)
    cited = with_attribution(graph, attributor)
    handler = AttributionCallbackHandler(attributor)
    given = {"messages": [{"role": "user", "content": QUESTION}]}
    if face == "invoke":
        state, result = cited.invoke(given), cited.last_result
    elif face == "ainvoke":
        state, result = asyncio.run(cited.ainvoke(given)), cited.last_result
    elif face == "stream":
        chunks = list(cited.stream(given, stream_mode=["updates", "messages"]))
        assert all(isinstance(c, tuple) and len(c) == 2 for c in chunks)
        state, result = chunks[-1][1]["generate_answer"], cited.last_result
    else:
        state, result = graph.invoke(given, {"callbacks": [handler]}), handler.last_result
    searched = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    if face != "stream":  # an "updates" chunk holds only its node's messages
        assert len(searched) == 2 and "ferry" in str(searched[0].content)
        assert any(m.text == QUESTION for m in state["messages"][1:])  # the rewrite
    check(result)
    assert result is not None and {s.id for s in result.sources} == {"doc-bridge", "doc-tower"}
    assert result.question == QUESTION


# --- structured output through the provider (JSON text) ------------------------------------------


class JsonAnswerer(ReplyingChatModel):
    """Searches, then answers as a provider's native structured output does: the
    `CitedAnswer` as JSON text (citing doc-bridge, retrieved, and doc-ferry, not)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        assert kwargs.get("response_format", {}).get("type") == "json_schema"
        return self

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if not results:
            call = {"name": "retrieve_context", "args": {"query": QUESTION}, "id": "call-1"}
            return AIMessage("", tool_calls=[call])
        found = re.findall(r"Content: (.*)", str(results[-1].content))
        facts = sorted((f.split(". ")[0] + "." for f in found), key=lambda s: "tower" in s)
        data = {"answer": " ".join([*facts, INVENTED]), "citations": ["doc-bridge", "doc-ferry"]}
        return AIMessage(json.dumps(data))


@pytest.mark.parametrize("face", ["invoke", "stream", "handler"])
def test_provider_strategy_answer_is_read_from_the_structured_response(
    store: InMemoryVectorStore, attributor: Attributor, face: str
) -> None:
    """`ProviderStrategy(CitedAnswer)`: the last AI message is the JSON text, the parsed answer
    is in `structured_response`; its answer is attributed (never the JSON), and its cited ids
    are checked: doc-bridge correct, doc-ferry (not retrieved) dangling."""
    agent = create_agent(
        JsonAnswerer(), tools=[artifact_tool(store)], response_format=ProviderStrategy(CitedAnswer)
    )
    cited = with_attribution(agent, attributor)
    handler = AttributionCallbackHandler(attributor)
    given = {"messages": [HumanMessage(QUESTION)]}
    if face == "invoke":
        state = cited.invoke(given)
        assert isinstance(state["structured_response"], CitedAnswer)
        result = cited.last_result
    elif face == "stream":
        list(cited.stream(given, stream_mode=["messages", "updates"]))
        result = cited.last_result
    else:
        agent.invoke(given, {"callbacks": [handler]})
        result = handler.last_result
    check(result)
    assert result is not None and result.citation_check is not None
    verdicts = {m.label: m.verdict for m in result.citation_check.markers}
    assert verdicts == {"doc-bridge": "correct", "doc-ferry": "dangling"}


class RetryingAnswerer(StructuredAnswerer):
    """Gives the `CitedAnswer` tool bad arguments first; answers right after the error."""

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        errors = [m for m in messages if isinstance(m, ToolMessage) and "Error" in str(m.text)]
        if sum(isinstance(m, ToolMessage) for m in messages) == 1:
            call = {"name": "CitedAnswer", "args": {"answer": 5}, "id": "bad", "type": "tool_call"}
            message = AIMessage(content="", tool_calls=[call])
            return ChatResult(generations=[ChatGeneration(message=message)])
        return super()._generate([m for m in messages if m not in errors], stop, **kwargs)


def test_tool_strategy_retry_after_a_bad_structured_answer(
    store: InMemoryVectorStore, attributor: Attributor
) -> None:
    """`ToolStrategy(CitedAnswer, handle_errors=True)`: the parse error goes back to the model
    as a ToolMessage and it answers again; the answer attributed is the parsed one, its ids
    checked, and neither the error nor the "Returning structured response" message is cited."""
    agent = create_agent(
        RetryingAnswerer(),
        tools=[artifact_tool(store)],
        response_format=ToolStrategy(CitedAnswer, handle_errors=True),
    )
    cited = with_attribution(agent, attributor)
    state = cited.invoke({"messages": [HumanMessage(QUESTION)]})
    assert any("Error" in str(m.text) for m in state["messages"] if isinstance(m, ToolMessage))
    result = cited.last_result
    check(result)
    assert result is not None and result.citation_check is not None
    verdicts = {m.label: m.verdict for m in result.citation_check.markers}
    assert verdicts == {"doc-bridge": "correct", "doc-ferry": "dangling"}
    assert {s.id for s in result.sources} == {"doc-bridge", "doc-tower"}


# --- runtime context -----------------------------------------------------------------------------


@dataclass
class Context:
    user_id: str


@pytest.mark.parametrize("face", ["invoke", "stream", "astream_events", "handler"])
def test_runtime_context_reaches_the_tool_and_the_answer_is_cited(
    store: InMemoryVectorStore, attributor: Attributor, face: str
) -> None:
    """`create_agent(..., context_schema=Context)` called with `context=Context(...)`: the
    wrapper passes it on (the tool reads it from its `ToolRuntime`, and searches only the
    user's documents), and the answer cites them."""
    seen: list[str] = []

    @tool(response_format="content_and_artifact")
    def retrieve_context(query: str, runtime: ToolRuntime[Context]) -> tuple[str, list[Document]]:
        """Retrieve information to help answer a query."""
        seen.append(runtime.context.user_id)
        docs = store.similarity_search(query, k=2)
        return "\n\n".join(f"Content: {d.page_content}" for d in docs), docs

    agent = create_agent(
        ReaderChatModel(tool_name="retrieve_context"),
        tools=[retrieve_context],
        context_schema=Context,
    )
    cited = with_attribution(agent, attributor)
    handler = AttributionCallbackHandler(attributor)
    given = {"messages": [HumanMessage(QUESTION)]}
    context = Context(user_id="user-123")
    if face == "invoke":
        cited.invoke(given, context=context)
        result = cited.last_result
    elif face == "stream":
        list(cited.stream(given, context=context, stream_mode="updates"))
        result = cited.last_result
    elif face == "astream_events":

        async def events() -> list[str]:
            run = cited.astream_events(given, context=context, version="v2")
            return [e["name"] async for e in run if e["event"] == "on_custom_event"]

        assert asyncio.run(events()) == ["attribution"]
        result = cited.last_result
    else:
        agent.invoke(given, {"callbacks": [handler]}, context=context)
        result = handler.last_result
    assert seen == ["user-123"]
    check(result)


# --- the functional API ---------------------------------------------------------------------------


@pytest.mark.parametrize("face", ["invoke", "stream", "handler"])
def test_functional_api_entrypoint_with_tasks(
    store: InMemoryVectorStore, attributor: Attributor, face: str
) -> None:
    """`@entrypoint(checkpointer=...)` calling a retrieve `@task` and a generate `@task`: the
    answer it returns (a str) cites the documents the retrieve task returned."""
    llm = ReaderChatModel()

    @task
    def retrieve(question: str) -> list[Document]:
        return store.similarity_search(question, k=2)

    @task
    def generate(question: str, docs: list[Document]) -> str:
        context = "\n\n".join(d.page_content for d in docs)
        return str(llm.invoke(RAG_PROMPT.invoke({"question": question, "context": context})).text)

    @entrypoint(checkpointer=InMemorySaver())
    def workflow(question: str) -> str:
        return generate(question, retrieve(question).result()).result()

    cited = with_attribution(workflow, attributor)
    handler = AttributionCallbackHandler(attributor)
    config: Any = {"configurable": {"thread_id": f"functional-{face}"}}
    if face == "invoke":
        out = cited.invoke(QUESTION, config)
        assert set(out) == {"answer", "attribution"}  # a str output, as for any str chain
        result = cited.last_result
    elif face == "stream":
        chunks = list(cited.stream(QUESTION, config, stream_mode="updates"))
        assert set(chunks[-1]) == {"workflow"}  # the graph's own chunks, nothing added
        result = cited.last_result
    else:
        assert isinstance(workflow.invoke(QUESTION, {**config, "callbacks": [handler]}), str)
        result = handler.last_result
    check(result)
    assert result is not None and {s.id for s in result.sources} == {"doc-bridge", "doc-tower"}
