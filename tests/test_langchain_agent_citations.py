"""LangChain: an agent whose search tool returns web pages, and whose answer cites them by URL
(Anthropic web-search citations, OpenAI `url_citation` annotations, LangChain v1 `Citation`s);
and the citation options (`citation_numbering=`, `exact_support=`) of `with_attribution` and the
handler. Real `create_agent`, tools, LCEL chains; only the chat model is a stand-in, answering
with the content blocks each provider returns.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("langchain.agents")

from _checks import lone_marker
from langchain.agents import create_agent
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnablePassthrough
from langchain_core.tools import tool

from rag_attrib import Source, check_citations
from rag_attrib.errors import ConfigError
from rag_attrib.integrations.langchain import (
    AttributionCallbackHandler,
    attribution_callback,
    with_attribution,
)

MUSEUM = "https://www.hobart-museum.example/history/"
PORT = "https://news.example.com/bremen-port"
BIRDS = "https://birds.example.org/penguins"
PAGES = [
    Document(
        id="museum",
        page_content="The Hobart harbour museum was founded in 1896.",
        metadata={"url": MUSEUM, "title": "Museum history"},
    ),
    Document(
        id="port",
        page_content="Bremen's river port handles the most cargo.",
        metadata={"url": PORT, "title": "Port news"},
    ),
    Document(
        id="birds",
        page_content="Penguins live in the southern hemisphere and cannot fly.",
        metadata={"url": BIRDS, "title": "Penguins"},
    ),
]
QUESTION = "Tell me about the museum, the port and penguins."
CLAIMS = [
    "The Hobart harbour museum was founded in 1896.",
    " Bremen's river port handles the most cargo.",
    " Penguins cannot fly.",
]
ANSWER = "".join(CLAIMS)
# As the model writes them: the right page (another scheme, no trailing slash, a fragment),
# the wrong page (OpenAI adds utm_source), and a page the tool never returned.
CITED = [
    "http://www.hobart-museum.example/history#founded",
    BIRDS + "?utm_source=openai",
    "https://elsewhere.example/penguins",
]
EXPECTED = [
    (CITED[0], "museum", "correct"),
    (CITED[1], "birds", "wrong_source"),
    (CITED[2], None, "dangling"),
]


def anthropic_content() -> list[dict[str, Any]]:
    """Claude's answer after web search: `web_search_result_location` citations per block."""

    def note(url: str) -> dict[str, Any]:
        return {
            "type": "web_search_result_location",
            "url": url,
            "title": "a page",
            "cited_text": "...",
            "encrypted_index": "Eo8BCioIAhgB",
        }

    return [
        {"type": "text", "text": claim, "citations": [note(url)]}
        for claim, url in zip(CLAIMS, CITED, strict=True)
    ]


def openai_content() -> list[dict[str, Any]]:
    """An OpenAI Responses answer: one text block, `url_citation` annotations whose
    `start_index`/`end_index` mark each claim in the block's text."""
    notes = []
    at = 0
    for claim, url in zip(CLAIMS, CITED, strict=True):
        notes.append(
            {
                "type": "url_citation",
                "url": url,
                "title": "a page",
                "start_index": at,
                "end_index": at + len(claim),
            }
        )
        at += len(claim)
    return [{"type": "text", "text": ANSWER, "annotations": notes, "id": "msg_1"}]


def v1(content: list[dict[str, Any]], provider: str) -> list[Any]:
    """The same answer as LangChain v1 standard blocks, by langchain-core's own translator."""
    blocks = AIMessage(content=content, response_metadata={"model_provider": provider})
    return list(blocks.content_blocks)


SHAPES = {
    "anthropic": lambda: anthropic_content(),
    "openai": lambda: openai_content(),
    "anthropic-v1": lambda: v1(anthropic_content(), "anthropic"),
    "openai-v1": lambda: v1(openai_content(), "openai"),
}


@tool(response_format="content_and_artifact")
def web_search(query: str) -> tuple[str, list[Document]]:
    """Search the web."""
    text = "\n\n".join(f"{d.metadata['url']}\n{d.page_content}" for d in PAGES)
    return text, PAGES


class WebCiter(BaseChatModel):
    """Asks for `web_search` first; once it has the results, answers with cited blocks."""

    shape: str = "anthropic"
    content: Any = None  # answer with these blocks instead of the shape's

    @property
    def _llm_type(self) -> str:
        return "web-citer"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, **kwargs: Any) -> ChatResult:
        if not any(isinstance(m, ToolMessage) for m in messages):
            call = {"name": "web_search", "args": {"query": QUESTION}, "id": "call-1"}
            message = AIMessage(content="", tool_calls=[call])
        else:
            message = AIMessage(content=self.content or SHAPES[self.shape]())
        return ChatResult(generations=[ChatGeneration(message=message)])


def verdicts(check: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [(m["label"], m["source_id"], m["verdict"]) for m in check["markers"]]


# `attributor` (the hashing attributor) comes from conftest.py.


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_agent_url_citations_get_verdicts(attributor, shape):
    """create_agent + a search tool returning pages with a `url`: each URL the answer cites is
    matched to the page the tool returned; a wrong page gets the page that backs its claim,
    and a URL no tool returned is dangling. The agent's state is returned as it was."""
    agent = create_agent(WebCiter(shape=shape), tools=[web_search])
    state = with_attribution(agent, attributor).invoke({"messages": [HumanMessage(QUESTION)]})
    answer = state["messages"][-1]
    assert answer.text == ANSWER and answer.content == SHAPES[shape]()
    check = state["attribution"]["citation_check"]
    assert verdicts(check) == EXPECTED
    assert check["markers"][1]["suggested_source_id"] == "port"
    assert check["markers"][1]["claim"]["text"] == CLAIMS[1]
    assert {m["style"] for m in check["markers"]} == {"provider"}


def test_the_handler_checks_url_citations_of_an_unchanged_agent(attributor):
    """The callback handler on an unchanged agent gives the same verdicts."""
    agent = create_agent(WebCiter(shape="openai"), tools=[web_search])
    handler = AttributionCallbackHandler(attributor)
    agent.invoke({"messages": [HumanMessage(QUESTION)]}, config={"callbacks": [handler]})
    report = handler.last_result.citation_check if handler.last_result else None
    assert report is not None
    assert [(m.label, m.source_id, m.verdict) for m in report.markers] == EXPECTED


def test_a_streamed_agent_is_checked_and_never_broken(attributor):
    """`stream_mode="values"` loops keep reading the last message; the result has the check."""
    cited = with_attribution(create_agent(WebCiter(), tools=[web_search]), attributor)
    states = list(cited.stream({"messages": [HumanMessage(QUESTION)]}, stream_mode="values"))
    assert states[-1]["messages"][-1].text == ANSWER
    report = cited.last_result.citation_check if cited.last_result else None
    assert report is not None
    assert [(m.label, m.verdict) for m in report.markers] == [(u, v) for u, _, v in EXPECTED]


def test_an_inline_link_citation_checks_its_sentence(attributor):
    """OpenAI's annotation often marks only the inline link after the claim: the verdict is
    that of the sentence holding it."""
    link = f"([hobart-museum.example]({MUSEUM}?utm_source=openai))"
    text = f"The Hobart harbour museum was founded in 1896 {link}."
    start = text.index(link)
    note = {
        "type": "url_citation",
        "url": MUSEUM,
        "start_index": start,
        "end_index": start + len(link),
    }
    content = [{"type": "text", "text": text, "annotations": [note]}]
    agent = create_agent(WebCiter(content=content), tools=[web_search])
    state = with_attribution(agent, attributor).invoke({"messages": [HumanMessage(QUESTION)]})
    check = state["attribution"]["citation_check"]
    assert verdicts(check) == [(MUSEUM, "museum", "correct")]
    assert check["markers"][0]["claim"]["text"] == link


OUT_OF_RANGE = {"type": "citation", "url": MUSEUM, "start_index": 500, "end_index": 900}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([{"type": "text", "text": ANSWER, "annotations": [{"type": "url_citation"}]}], None),
        ([{"type": "text", "text": ANSWER, "annotations": "oops"}], None),
        (
            [{"type": "text", "text": ANSWER, "citations": [{"url": None, "start_index": "x"}]}],
            None,
        ),
        (
            [
                {"type": "text", "text": "", "citations": [{"url": MUSEUM}]},
                {"type": "text", "text": ANSWER},
            ],
            ("unsupported", ""),  # a citation of no text
        ),
        (
            [{"type": "text", "text": ANSWER, "annotations": [OUT_OF_RANGE]}],
            # offsets outside the block: the whole block is the claim, judged sentence by
            # sentence; its first sentence is the museum's
            ("correct", ANSWER),
        ),
    ],
)
def test_malformed_url_citations_never_break_the_agent(attributor, content, expected):
    """Bad annotations give a defined check (or none, with no error); the agent's answer is
    untouched."""
    agent = create_agent(WebCiter(content=content), tools=[web_search])
    state = with_attribution(agent, attributor).invoke({"messages": [HumanMessage(QUESTION)]})
    assert state["messages"][-1].content == content
    found = lone_marker(state["attribution"], claim=True)
    assert found == (None if expected is None else ("museum", *expected))


# --- the citation options ------------------------------------------------------------------

MARKED = "The Hobart harbour museum was founded in 1896 [1]. Bremen's river port handles the most cargo [1]."
PROMPT = ChatPromptTemplate.from_messages(
    [("system", "Answer and cite sources as [n].\n\n{context}"), ("human", "{question}")]
)


def numbered(docs: list[Document]) -> str:
    return "\n\n".join(f"Source {i + 1}:\n{d.page_content}" for i, d in enumerate(docs))


class PagesRetriever(BaseRetriever):
    """Returns the three pages for every query."""

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return list(PAGES)


def chain(answer: str = MARKED) -> Runnable[Any, Any]:
    """retriever | "Source n:" labels | prompt | model | parser, answering `answer`."""
    context = PagesRetriever() | numbered
    model = GenericFakeChatModel(messages=iter([answer]))
    return (
        {"context": context, "question": RunnablePassthrough()} | PROMPT | model | StrOutputParser()
    )


def marker_verdicts(check: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [(m["text"], m["source_id"], m["verdict"]) for m in check["markers"]]


def test_citation_numbering_overrides_the_prompts_labels(attributor):
    """The prompt labels sources from 1; `citation_numbering="0-based"` reads [1] as the
    second source instead, in with_attribution and in the handler."""
    by_prompt = with_attribution(chain(), attributor).invoke(QUESTION)
    assert by_prompt["attribution"]["citation_check"]["numbering"] == "1-based"
    assert marker_verdicts(by_prompt["attribution"]["citation_check"]) == [
        ("[1]", "museum", "correct"),
        ("[1]", "museum", "wrong_source"),
    ]
    zero = with_attribution(chain(), attributor, citation_numbering="0-based").invoke(QUESTION)
    check = zero["attribution"]["citation_check"]
    assert check["numbering"] == "0-based"
    assert marker_verdicts(check) == [("[1]", "port", "wrong_source"), ("[1]", "port", "correct")]
    with attribution_callback(attributor, citation_numbering="0-based") as handler:
        chain().invoke(QUESTION)
    report = handler.last_result.citation_check if handler.last_result else None
    assert report is not None and [m.source_id for m in report.markers] == ["port", "port"]


async def test_exact_support_is_passed_through(attributor):
    """`exact_support=True` gives each marker the support `check_citations` computes with it
    (sync and async); the default reads it from the result. The second sentence mixes two
    sources' words and cites one: against that one alone its words weigh differently."""
    mixed = MARKED.replace("Bremen's river port handles", "The Hobart museum handles")
    exact = with_attribution(chain(mixed), attributor, exact_support=True)
    out = exact.invoke(QUESTION)
    aout = await with_attribution(chain(mixed), attributor, exact_support=True).ainvoke(QUESTION)
    default = with_attribution(chain(mixed), attributor).invoke(QUESTION)
    result = exact.last_result
    assert result is not None
    sources = [Source(s.id, s.text) for s in result.sources]
    direct = check_citations(
        mixed, sources, result=result, attributor=attributor, exact_support=True
    )
    supports = [m["support"] for m in out["attribution"]["citation_check"]["markers"]]
    assert supports == pytest.approx([m.support for m in direct.markers])
    assert [m["support"] for m in aout["attribution"]["citation_check"]["markers"]] == supports
    assert [m["support"] for m in default["attribution"]["citation_check"]["markers"]] != supports
    handler = AttributionCallbackHandler(attributor, exact_support=True)
    chain(mixed).invoke(QUESTION, config={"callbacks": [handler]})
    report = handler.last_result.citation_check if handler.last_result else None
    assert report is not None and [m.support for m in report.markers] == pytest.approx(supports)


@pytest.mark.parametrize("bad", ["zero-based", "1", None])
def test_a_bad_numbering_is_refused_with_the_choices(attributor, bad):
    with pytest.raises(ConfigError, match="citation_numbering must be one of 'auto', '1-based'"):
        with_attribution(chain(), attributor, citation_numbering=bad)
    with pytest.raises(ConfigError, match="citation_numbering must be one of"):
        AttributionCallbackHandler(attributor, citation_numbering=bad)
