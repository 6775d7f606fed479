"""LangChain helpers shared by test_langchain_shapes.py, test_langgraph_streams.py and
test_langchain_more_shapes.py: the Halden documents, the fake chat models that read their
prompts, the LangGraph RAG tutorial's graph and the check of a cited answer.

Import it after `pytest.importorskip("langgraph")` and `pytest.importorskip("langchain.agents")`:
it imports them at the top. The `store` fixture over DOCS is in conftest.py.
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_core.vectorstores import InMemoryVectorStore
from langgraph.graph import START, StateGraph
from pydantic import BaseModel

from rag_attrib import AttributionResult
from rag_attrib.convert import to_langchain_citations

DOCS = [
    Document(
        id="doc-bridge",
        page_content="The Halden bridge opened in 1932. It carries six lanes of traffic.",
        metadata={"source": "bridge.txt"},
    ),
    Document(
        id="doc-tower",
        page_content="The Halden tower was painted red in 1950. Its lift climbs ninety metres.",
        metadata={"source": "tower.txt"},
    ),
    Document(
        id="doc-ferry",
        page_content="The Bergen ferry sails twice a day. Tickets cost forty crowns.",
        metadata={"source": "ferry.txt"},
    ),
]
QUESTION = "When did the Halden bridge open and when was the Halden tower painted red?"
INVENTED = "Penguins deliver the mail every Tuesday morning."
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_STOP = {"the", "a", "and", "when", "was", "did", "of", "it", "its", "is", "to", "in"}
RAG_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "human",
            "You are an assistant for question-answering tasks. Use the following pieces of "
            "retrieved context to answer the question.\nQuestion: {question}\n"
            "Context: {context}\nAnswer:",
        )
    ]
)


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower())) - _STOP


class ReplyingChatModel(BaseChatModel):
    """The LLM stand-in's frame: accepts tools and answers each call with `reply(messages)`;
    the fakes differ only in their reply."""

    @property
    def _llm_type(self) -> str:
        return type(self).__name__

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        raise NotImplementedError

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: Any = None,  # async runs pass it by position
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.reply(messages))])


class ReaderChatModel(ReplyingChatModel):
    """Reads its prompt: answers with the two context sentences closest to the question plus an
    invented one; asks for `tool_name` first when set; extracts for LLMChainExtractor."""

    tool_name: str | None = None

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        text = "\n".join(str(m.text) for m in messages)
        question = self._question(messages)
        if self.tool_name and not any(isinstance(m, ToolMessage) for m in messages):
            call = {"name": self.tool_name, "args": {"query": question}, "id": "call-1"}
            message = AIMessage(content="", tool_calls=[call])
        elif "Extracted relevant parts:" in text:
            context = text.split(">>>")[1]
            kept = [s for s in _SENTENCE.split(context) if len(words(s) & words(question)) >= 2]
            message = AIMessage(content=" ".join(kept) or "NO_OUTPUT")
        else:
            candidates = {
                s.strip()
                for s in _SENTENCE.split(text)
                if s.strip().endswith(".") and s.strip() not in question
            }
            best = sorted(candidates, key=lambda s: (-len(words(s) & words(question)), s))[:2]
            best.sort(key=lambda s: "tower" in s)  # the bridge first, then the tower
            message = AIMessage(content=" ".join([*best, INVENTED]))
        return message

    @staticmethod
    def _question(messages: list[BaseMessage]) -> str:
        for m in reversed(messages):
            if isinstance(m, HumanMessage):
                found = re.search(r"Question: (.*)", str(m.text))
                return found.group(1) if found else str(m.text).split("\n")[0]
        return ""


# --- checks, the tutorial graph, tools -------------------------------------------------------


def check(
    result: AttributionResult | None, *, cited: tuple[str, str] = ("doc-bridge", "doc-tower")
):
    """The answer read: each fact cites its own document first, the invention is flagged."""
    assert result is not None and result.error is None, result and result.error
    sentences = result.answer_sentences
    assert [s.text for s in sentences][-1] == INVENTED
    assert [s.citations[0].source_id for s in sentences[:2]] == list(cited)
    assert not sentences[2].supported
    # its closest sources are shown, but never exported as citations that back it
    exported = to_langchain_citations(result)
    assert all(c["extras"]["answer_sentence_index"] != 2 for c in exported)
    ids = [s.id for s in result.sources]
    assert len(ids) == len(set(ids))
    for s in sentences:
        keys = [(c.source_id, c.sentence_index) for c in s.citations]
        assert len(keys) == len(set(keys))


class RagState(TypedDict):
    question: str
    context: list[Document]
    answer: str


def tutorial_graph(store: InMemoryVectorStore, llm: BaseChatModel) -> Any:
    """The LangGraph RAG tutorial's graph: retrieve from `store`, then answer with `llm`."""

    def retrieve(state: RagState) -> dict[str, Any]:
        return {"context": store.similarity_search(state["question"])}

    def generate(state: RagState) -> dict[str, Any]:
        docs_content = "\n\n".join(doc.page_content for doc in state["context"])
        messages = RAG_PROMPT.invoke({"question": state["question"], "context": docs_content})
        return {"answer": llm.invoke(messages).content}

    builder = StateGraph(RagState).add_sequence([retrieve, generate])
    builder.add_edge(START, "retrieve")
    return builder.compile()


def artifact_tool(store: InMemoryVectorStore) -> Any:
    """A `content_and_artifact` retriever tool: the documents' text, and the documents."""

    @tool(response_format="content_and_artifact")
    def retrieve_context(query: str) -> tuple[str, list[Document]]:
        """Retrieve information to help answer a query."""
        docs = store.similarity_search(query, k=2)
        text = "\n\n".join(f"Source: {d.metadata}\nContent: {d.page_content}" for d in docs)
        return text, docs

    return retrieve_context


# --- structured answers ---------------------------------------------------------------------


class CitedAnswer(BaseModel):
    """Answer from the documents and give the ids of those used."""

    answer: str
    citations: list[str]


class StructuredAnswerer(BaseChatModel):
    """Calls the retrieval tool, then answers through the `response_format` schema's tool
    (as `ToolStrategy` binds it): a sentence of each document, an invented one, and cites
    doc-bridge (retrieved) and doc-ferry (not)."""

    schema_name: str = "CitedAnswer"

    @property
    def _llm_type(self) -> str:
        return "structured-answerer"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, **kwargs: Any) -> ChatResult:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if not results:
            call = {"name": "retrieve_context", "args": {"query": QUESTION}, "id": "call-1"}
        else:
            found = re.findall(r"Content: (.*)", str(results[-1].content))
            facts = [f.split(". ")[0] + "." for f in found]  # each document's first sentence
            facts.sort(key=lambda s: "tower" in s)
            args: dict[str, Any] = {"answer": " ".join([*facts, INVENTED])}
            if self.schema_name == "CitedAnswer":
                args["citations"] = ["doc-bridge", "doc-ferry"]
            call = {"name": self.schema_name, "args": args, "id": "call-2"}
        message = AIMessage(content="", tool_calls=[{**call, "type": "tool_call"}])
        return ChatResult(generations=[ChatGeneration(message=message)])
