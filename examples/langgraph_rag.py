"""Cited answers from LangGraph: the RAG tutorial graph and a LangChain v1 agent with a tool.

Run: HF_HUB_OFFLINE=1 .venv/bin/python examples/langgraph_rag.py

Both are written as LangChain's own tutorials write them; rag_attrib is added in one line
(a handler in the config, or `with_attribution(graph)`). The chat model is langchain-core's
GenericFakeChatModel replaying a written answer, because no real LLM runs offline; swap in
any chat model and nothing else changes.
"""

from __future__ import annotations

from typing import Any, TypedDict

from langchain.agents import create_agent
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_rag import ANSWER, DOCUMENTS, QUESTION  # the same documents and answer
from langgraph.graph import START, StateGraph

from rag_attrib import AttributionResult
from rag_attrib.integrations.langchain import (
    AttributionCallbackHandler,
    MiniLMEmbeddings,
    with_attribution,
)

PROMPT = ChatPromptTemplate.from_messages(
    [("human", "Answer from this context.\nQuestion: {question}\nContext: {context}\nAnswer:")]
)


class State(TypedDict):
    question: str
    context: list[Document]
    answer: str


class ToolCallingFake(GenericFakeChatModel):
    """GenericFakeChatModel that accepts tools (create_agent binds them)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def show(title: str, result: AttributionResult | None) -> None:
    assert result is not None
    print(f"\n{title}  (error: {result.error})")
    for s in result.answer_sentences:
        sources = ", ".join(f"{c.source_id}#{c.sentence_index}" for c in s.citations)
        if s.supported:
            cited = sources or "no citation above the score threshold"
        else:  # its citations are only its closest sources: they do not back it
            cited = f"UNSUPPORTED: {'; '.join(s.issues) or 'no source backs this'}"
            cited += f" (closest, does not support: {sources})" if sources else ""
        print(f"  [{s.index + 1}] {s.text}\n      -> {cited}")


def main() -> None:
    store = InMemoryVectorStore(MiniLMEmbeddings())  # bundled model, shared with attribution
    store.add_documents(DOCUMENTS)

    # 1. The LangGraph RAG tutorial: retrieve (similarity_search) then generate.
    llm = GenericFakeChatModel(messages=iter([ANSWER] * 2))

    def retrieve(state: State) -> dict[str, Any]:
        return {"context": store.similarity_search(state["question"], k=3)}

    def generate(state: State) -> dict[str, Any]:
        docs_content = "\n\n".join(doc.page_content for doc in state["context"])
        messages = PROMPT.invoke({"question": state["question"], "context": docs_content})
        return {"answer": llm.invoke(messages).content}

    builder = StateGraph(State).add_sequence([retrieve, generate])
    builder.add_edge(START, "retrieve")
    graph = builder.compile()

    handler = AttributionCallbackHandler()
    graph.invoke({"question": QUESTION}, config={"callbacks": [handler]})
    show("Tutorial graph, handler in the config:", handler.last_result)

    cited = with_attribution(graph)
    for step in cited.stream({"question": QUESTION}, stream_mode="updates"):
        print(f"  streamed update from node {next(iter(step))!r}")
    show(
        "Tutorial graph, with_attribution(graph).stream(stream_mode='updates'):", cited.last_result
    )

    # 2. An agent whose tool returns (text, documents): the documents ride in the artifact.
    @tool(response_format="content_and_artifact")
    def retrieve_context(query: str) -> tuple[str, list[Document]]:
        """Retrieve information to help answer a query."""
        docs = store.similarity_search(query, k=3)
        return "\n\n".join(d.page_content for d in docs), docs

    call = {"name": "retrieve_context", "args": {"query": QUESTION}, "id": "call-1"}
    model = ToolCallingFake(messages=iter([AIMessage("", tool_calls=[call]), AIMessage(ANSWER)]))
    agent = create_agent(model, tools=[retrieve_context])
    state = with_attribution(agent).invoke({"messages": [HumanMessage(QUESTION)]})
    first = state["attribution"]["citations"][0]
    print(f"\nAgent: {len(state['attribution']['citations'])} citations; the first:")
    print(f"  {first['cited_text']!r} from {first['extras']['source_id']}")


if __name__ == "__main__":
    main()
