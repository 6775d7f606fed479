"""LangChain: documents with no text (page_content "" or blanks) are never sources. Beside a
document with text they are left out and the answer is cited as usual; when only such
documents reach the answer, `error` says nothing can be cited and why. Real LCEL chains,
retrievers, `create_agent` and tools; only the chat model is a stand-in that reads its prompt.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("langchain.agents")

from _langchain import DOCS, QUESTION, RAG_PROMPT, ReaderChatModel, check
from langchain.agents import create_agent
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough
from langchain_core.tools import tool

from rag_attrib.integrations._pipeline import NO_TEXT
from rag_attrib.integrations.langchain import AttributionCallbackHandler, with_attribution

BLANKS = [
    Document(id="empty", page_content="", metadata={"source": "scan.pdf"}),
    Document(id="spaces", page_content=" \n\t ", metadata={"source": "figure.png"}),
]


class Retriever(BaseRetriever):
    """Returns `docs` for every query."""

    docs: list[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return list(self.docs)


def rag_chain(docs: list[Document]) -> Any:
    """retriever | format | prompt | model | parser, over a retriever returning `docs`."""
    context = Retriever(docs=docs) | (lambda ds: "\n\n".join(d.page_content for d in ds))
    return (
        {"context": context, "question": RunnablePassthrough()}
        | RAG_PROMPT
        | ReaderChatModel()
        | StrOutputParser()
    )


def blank_agent() -> Any:
    """A `create_agent` whose search tool returns only documents with no text."""

    @tool(response_format="content_and_artifact")
    def search(query: str) -> tuple[str, list[Document]]:
        """Search the notes."""
        return "Scanned pages (no text layer).", list(BLANKS)

    return create_agent(ReaderChatModel(tool_name="search"), [search])


@pytest.mark.parametrize("face", ["handler", "with_attribution"])
def test_an_empty_document_beside_real_ones_is_left_out(attributor, face):
    """A retriever returning empty documents among real ones: only the real ones are sources,
    the answer is cited as usual and the error stays None."""
    docs = [BLANKS[0], *DOCS[:2], BLANKS[1]]
    if face == "handler":
        handler = AttributionCallbackHandler(attributor)
        rag_chain(docs).invoke(QUESTION, config={"callbacks": [handler]})
        result = handler.last_result
    else:
        wrapped = with_attribution(rag_chain(docs), attributor)
        wrapped.invoke(QUESTION)
        result = wrapped.last_result
    assert result is not None
    assert [s.id for s in result.sources] == ["doc-bridge", "doc-tower"]
    check(result)


@pytest.mark.parametrize("mode", ["invoke", "stream"])
@pytest.mark.parametrize("face", ["handler", "with_attribution"])
def test_a_tool_returning_only_empty_documents_says_nothing_can_be_cited(attributor, face, mode):
    """An agent whose tool returns only documents with no text: no source, and the error says
    these documents hold no text (not that no tool returned any); the agent's answer is intact."""
    agent = blank_agent()
    inputs = {"messages": [("user", QUESTION)]}
    if face == "handler":
        handler = AttributionCallbackHandler(attributor)
        config: Any = {"callbacks": [handler]}
        out = (
            agent.invoke(inputs, config) if mode == "invoke" else list(agent.stream(inputs, config))
        )
        result = handler.last_result
    else:
        wrapped = with_attribution(agent, attributor)
        out = wrapped.invoke(inputs) if mode == "invoke" else list(wrapped.stream(inputs))
        result = wrapped.last_result
    assert out
    assert result is not None and result.answer.endswith(
        "Penguins deliver the mail every Tuesday morning."
    )
    assert result.sources == ()
    assert result.error == NO_TEXT.format(n=2)


def test_empty_documents_beside_a_tools_real_one_are_left_out(attributor):
    """A tool returning an empty document and a real one: the real one is cited."""

    @tool(response_format="content_and_artifact")
    def search(query: str) -> tuple[str, list[Document]]:
        """Search the notes."""
        docs = [BLANKS[0], DOCS[0], DOCS[1]]
        return "\n\n".join(d.page_content for d in docs), docs

    wrapped = with_attribution(
        create_agent(ReaderChatModel(tool_name="search"), [search]), attributor
    )
    wrapped.invoke({"messages": [("user", QUESTION)]})
    result = wrapped.last_result
    assert result is not None
    assert [s.id for s in result.sources] == ["doc-bridge", "doc-tower"]
    check(result)
