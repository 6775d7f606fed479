"""LlamaIndex + Claude's server-side web search: citations read from the reply's `raw`.

llama-index-llms-anthropic (0.12.3) turns only `search_result_location` citations into
`CitationBlock`s; a `web_search_result_location` is left in `AnthropicChatResponse.citations`
(a flat list) and in `raw`, which `chat`/`achat` set to `dict(message)` of the Anthropic
`Message`: its `content` holds the SDK's text blocks with their citations, beside the
`server_tool_use` and `web_search_tool_result` blocks. Streamed, each chunk's `raw` is its
stream event (the last one, `message_delta`, holds no content). The LLM is the real `Anthropic`
class; only the HTTP server is a stand-in (an httpx mock transport answering with the
Messages API's JSON or its server-sent events: _claude.py). Engines, agent, tool and index are real.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("llama_index.llms.anthropic")  # with the anthropic SDK it needs

import anthropic
from _checks import chat_engine, lone_marker
from _claude import ANSWER, LEAD, MODEL, Server, answer_content, claude, web_citation
from _web_pages import BIRDS, CLAIMS, ELSEWHERE, MUSEUM, PAGES, PORT, QUESTION, pages_index
from llama_index.core import VectorStoreIndex
from llama_index.core.agent.workflow import AgentOutput, FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole, TextBlock
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.schema import NodeWithScore
from llama_index.core.tools import FunctionTool
from pydantic import Field

from rag_attrib.integrations._anthropic_stream import StreamedCitations
from rag_attrib.integrations._given import from_raw_message
from rag_attrib.integrations.llamaindex.instrument import open_records


@pytest.fixture
def index() -> VectorStoreIndex:
    """The app's own pages, each with its `url` in metadata."""
    return pages_index()


def verdicts(check: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [(m["label"], m["source_id"], m["verdict"]) for m in check["markers"]]


def expected(ids: dict[str, str]) -> list[tuple[str, str | None, str]]:
    return [
        (MUSEUM, ids[MUSEUM], "correct"),
        (BIRDS, ids[BIRDS], "wrong_source"),
        (ELSEWHERE, None, "dangling"),
    ]


def url_ids(nodes: Sequence[NodeWithScore]) -> dict[str, str]:
    return {n.node.metadata["url"]: n.node.node_id for n in nodes}


def test_the_reply_raw_is_the_anthropic_message():
    """What the real integration keeps: `raw` is `dict(message)`, its content the SDK's
    blocks; the web citation is in no CitationBlock, only in the flat `citations` list."""
    llm = claude(Server(answer_content()))
    reply = llm.chat([ChatMessage(role=MessageRole.USER, content=QUESTION)])
    assert isinstance(reply.raw, dict)
    kinds = [type(b).__name__ for b in reply.raw["content"]]
    assert kinds == ["TextBlock", "ServerToolUseBlock", "WebSearchToolResultBlock"] + [
        "TextBlock"
    ] * len(CLAIMS)
    assert [b.block_type for b in reply.message.blocks] == ["text"] * (1 + len(CLAIMS))
    assert [c["url"] for c in reply.citations] == [url for _, url in CLAIMS]
    assert reply.message.content == ANSWER


@pytest.mark.parametrize("mode", ["chat", "achat"])
async def test_a_chat_engine_checks_web_search_citations(instrumented, index, mode):
    """ContextChatEngine over the app's pages: each web citation backs its text block; a page
    the app holds is checked (correct, or wrong with the page that backs the claim), one
    only Claude's search returned is dangling."""
    engine = chat_engine(index, claude(Server(answer_content())))
    if mode == "achat":
        response = await engine.achat(QUESTION)
    else:
        response = engine.chat(QUESTION)
    assert response.response == ANSWER
    check = response.metadata["attribution"]["citation_check"]
    ids = url_ids(response.source_nodes)
    assert verdicts(check) == expected(ids)
    assert check["markers"][1]["suggested_source_id"] == ids[PORT]
    assert [m["claim"]["text"] if m["claim"] else None for m in check["markers"]] == [
        CLAIMS[0][0],
        CLAIMS[1][0],
        None,
    ]
    assert {m["style"] for m in check["markers"]} == {"provider"}
    assert response.metadata["attribution"]["error"] is None
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


def test_a_query_engine_checks_web_search_citations(instrumented, index):
    """A query engine's LLM call is a chat under `predict`: its reply's raw is read too."""
    engine = index.as_query_engine(llm=claude(Server(answer_content())), similarity_top_k=3)
    response = engine.query(QUESTION)
    check = response.metadata["attribution"]["citation_check"]
    assert verdicts(check) == expected(url_ids(response.source_nodes))


async def test_an_agent_checks_web_search_citations(instrumented, index):
    """FunctionAgent: Claude calls the app's `pages` tool (the app's retriever), then answers
    from its own web search; the citations are checked against the pages the tool returned,
    never against the search results (they carry no readable text)."""
    retriever = index.as_retriever(similarity_top_k=3)

    def pages(query: str) -> list[NodeWithScore]:
        """The app's pages about the query."""
        return retriever.retrieve(query)

    server = Server(answer_content(), tool_first=True)
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(fn=pages)], llm=claude(server), streaming=False
    )
    output = await agent.run(user_msg=QUESTION)
    assert isinstance(output, AgentOutput)
    assert str(output) == ANSWER
    assert len(server.requests) == 2
    attribution = output["attribution"]
    ids = {s["metadata"]["url"]: s["id"] for s in attribution["sources"]}
    assert set(ids) == set(PAGES)  # the search results became no sources
    assert verdicts(attribution["citation_check"]) == expected(ids)
    assert attribution["error"] is None
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


def test_search_results_are_no_sources(instrumented, index):
    """A page only Claude's search returned stays dangling even when every citation names
    one: a `web_search_tool_result` holds encrypted content, nothing to check a claim on."""
    content = answer_content([(CLAIMS[2][0], ELSEWHERE)])
    engine = chat_engine(index, claude(Server(content)))
    response = engine.chat(QUESTION)
    attribution = response.metadata["attribution"]
    assert ELSEWHERE not in {s["metadata"].get("url") for s in attribution["sources"]}
    assert verdicts(attribution["citation_check"]) == [(ELSEWHERE, None, "dangling")]


@pytest.mark.parametrize("mode", ["stream_chat", "astream_chat"])
async def test_a_streamed_chat_reads_its_citations_off_the_stream(instrumented, index, mode):
    """Streamed, the reply that ends the stream holds no content (`raw` is the closing
    `message_delta` event) and a flat `citations` list; the stream's block deltas said which
    text block each citation backs, and are read as the chunks pass."""
    engine = chat_engine(index, claude(Server(answer_content())))
    if mode == "astream_chat":
        response: Any = await engine.astream_chat(QUESTION)
        text = "".join([t async for t in response.async_response_gen()])
    else:
        response = engine.stream_chat(QUESTION)
        text = "".join(response.response_gen)
    assert text == "".join([LEAD, *(t for t, _ in CLAIMS)])
    attribution = response.metadata["attribution"]
    assert attribution["error"] is None
    check = attribution["citation_check"]
    ids = url_ids(response.source_nodes)
    assert verdicts(check) == expected(ids)
    assert [m["claim"]["text"] for m in check["markers"][:2]] == [CLAIMS[0][0], CLAIMS[1][0]]
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_a_streamed_query_reads_its_citations_off_the_stream(instrumented, index, mode):
    """A streaming query engine: its LLM streams under no span of the query, while the
    caller reads the response; the citations still reach the response's attribution."""
    llm = claude(Server(answer_content()))
    engine = index.as_query_engine(llm=llm, similarity_top_k=3, streaming=True)
    if mode == "astream":
        response: Any = await engine.aquery(QUESTION)
        text = "".join([t async for t in response.async_response_gen()])
    else:
        response = engine.query(QUESTION)
        text = "".join(response.response_gen)
    assert CLAIMS[0][0].strip() in text
    check = response.metadata["attribution"]["citation_check"]
    assert verdicts(check) == expected(url_ids(response.source_nodes))


async def test_a_streaming_agent_reads_its_citations_off_the_stream(instrumented, index):
    """FunctionAgent with `streaming=True` (its default): `astream_chat_with_tools`."""
    retriever = index.as_retriever(similarity_top_k=3)

    def pages(query: str) -> list[NodeWithScore]:
        """The app's pages about the query."""
        return retriever.retrieve(query)

    server = Server(answer_content(), tool_first=True)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(fn=pages)], llm=claude(server))
    output = await agent.run(user_msg=QUESTION)
    assert isinstance(output, AgentOutput)
    attribution = output["attribution"]
    ids = {s["metadata"]["url"]: s["id"] for s in attribution["sources"]}
    assert verdicts(attribution["citation_check"]) == expected(ids)
    assert attribution["error"] is None
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


def test_stream_notes_guess_nothing():
    """Junk chunks are ignored; each citation stays with the text block its stream gave it,
    whose text is what that block's deltas said."""
    notes = StreamedCitations()
    for raw in [
        None,
        "x",
        {"type": "content_block_delta"},
        {"type": "content_block_delta", "index": True, "delta": {"type": "text_delta"}},
        {"type": "content_block_delta", "index": 0, "delta": None},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta"}},
        {"type": "message_delta", "index": 0, "delta": {"type": "text_delta"}},
    ]:
        notes.feed(raw)
    assert notes.content() is None  # no citation came
    for k, text in [(2, "b"), (1, "a"), (2, "c")]:
        delta = {"type": "text_delta", "text": text}
        notes.feed({"type": "content_block_delta", "index": k, "delta": delta})
    note = {"type": "citations_delta", "citation": web_citation(MUSEUM)}
    notes.feed({"type": "content_block_delta", "index": 2, "delta": note})
    assert notes.content() == [
        {"type": "text", "text": "a", "citations": []},
        {"type": "text", "text": "bc", "citations": [web_citation(MUSEUM)]},
    ]


def test_sdk_objects_dicts_and_dumps_read_alike():
    """`dict(message)` (SDK blocks), the `Message` itself and `model_dump()` give the same
    citations; a mixed reply reads its search-result citation (by `source`) too."""
    search_result = {
        "type": "search_result_location",
        "source": PORT,
        "title": "Port news",
        "cited_text": PAGES[PORT][1],
        "search_result_index": 0,
        "start_block_index": 0,
        "end_block_index": 1,
    }
    content = answer_content()
    content[-1]["citations"].append(search_result)
    client = claude(Server(content))._client  # the SDK's own parsing of the API's JSON
    msg = client.messages.create(model=MODEL, max_tokens=10, messages=[])
    assert isinstance(msg, anthropic.types.Message)
    read = [from_raw_message(raw, ANSWER) for raw in (dict(msg), msg, msg.model_dump())]
    assert read[0] == read[1] == read[2]
    given = read[0]
    assert given is not None
    at = [ANSWER.index(t) for t, _ in CLAIMS]
    assert [(x.label, x.start, x.end) for x in given.spans] == [
        *((url, a, a + len(t)) for a, (t, url) in zip(at, CLAIMS, strict=True)),
        (PORT, at[2], at[2] + len(CLAIMS[2][0])),
    ]
    assert given.spans[0].quote == PAGES[MUSEUM][1]


def text_block(*citations: Any, text: str = CLAIMS[0][0]) -> dict[str, Any]:
    return {"type": "text", "text": text, "citations": list(citations)}


class _Exploding:
    @property
    def content(self) -> Any:
        raise RuntimeError("no content")


class _BadBlock:
    """A pydantic-looking block whose dump fails."""

    model_fields: dict[str, Any] = {"type": None}  # noqa: RUF012

    def model_dump(self) -> Any:
        raise ValueError("cannot dump")


# (raw, the one citation's verdict, or None: nothing is checked)
BAD_RAWS: list[tuple[Any, str | None]] = [
    (None, None),
    ("a string", None),
    ({"content": "not a list"}, None),
    ({"content": [None, 3, "x", {"type": "text"}, {"type": "text", "text": 5}]}, None),
    ({"content": [text_block()]}, None),  # no citations
    ({"content": [{**text_block(), "citations": "nope"}]}, None),
    # no URL, a blank one, a non-string one, an item of no shape
    (
        {
            "content": [
                text_block(
                    {"type": "web_search_result_location"},
                    {"type": "web_search_result_location", "url": "  "},
                    {"type": "web_search_result_location", "url": 7},
                    None,
                    "x",
                )
            ]
        },
        None,
    ),
    # a document index counts the request's documents, not the nodes: skipped
    ({"content": [text_block({"type": "char_location", "document_index": 0})]}, None),
    ({"content": [text_block(web_citation(MUSEUM), text="Not in the answer.")]}, None),
    (_Exploding(), None),
    ({"content": [_BadBlock(), text_block(web_citation(MUSEUM))]}, "correct"),
    # the control: a well-formed citation of the right page
    ({"content": [text_block(web_citation(MUSEUM))]}, "correct"),
    # a cited empty block: a citation of no text
    ({"content": [text_block(), text_block(web_citation(MUSEUM), text="")]}, "unsupported"),
]


class RawLLM(MockFunctionCallingLLM):
    """Answers the claim at once with the given `raw` beside it, as the Anthropic LLM would."""

    raw: Any = None
    answer: str = CLAIMS[0][0]
    extra: dict[str, Any] = Field(default_factory=dict)

    def _reply(self) -> ChatResponse:
        message = ChatMessage(role=MessageRole.ASSISTANT, blocks=[TextBlock(text=self.answer)])
        return ChatResponse(message=message, raw=self.raw, additional_kwargs=self.extra)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._reply()

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._reply()


@pytest.mark.parametrize(("raw", "verdict"), BAD_RAWS)
def test_malformed_raw_never_breaks_the_chat(instrumented, index, raw, verdict):
    """Odd `raw` shapes give a defined check (or none) and never an error; the answer stands."""
    llm = RawLLM(raw=raw, is_chat_model=True)
    engine = chat_engine(index, llm)
    response = engine.chat(QUESTION)
    assert response.response == CLAIMS[0][0]
    found = lone_marker(response.metadata["attribution"])
    ids = url_ids(response.source_nodes)
    assert found == (None if verdict is None else (ids[MUSEUM], verdict))


async def test_concurrent_streams_keep_their_own_citations(instrumented, index):
    """Two streamed chats at once: each answer's citations come from its own stream, and no
    stream record is left behind."""
    right = [(CLAIMS[0][0], MUSEUM), (CLAIMS[1][0], PORT), (CLAIMS[2][0], ELSEWHERE)]

    async def ask(content: list[dict[str, Any]]) -> Any:
        engine = chat_engine(index, claude(Server(content)))
        response = await engine.astream_chat(QUESTION)
        _ = [t async for t in response.async_response_gen()]
        return response

    first, second = await asyncio.gather(ask(answer_content()), ask(answer_content(right)))
    ids = url_ids(first.source_nodes)
    assert verdicts(first.metadata["attribution"]["citation_check"]) == expected(ids)
    assert verdicts(second.metadata["attribution"]["citation_check"]) == [
        (MUSEUM, ids[MUSEUM], "correct"),
        (PORT, ids[PORT], "correct"),
        (ELSEWHERE, None, "dangling"),
    ]
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}
    module = importlib.import_module("rag_attrib.integrations.llamaindex.instrument")
    assert not module._installed.tracker._streamed  # each stream's record went at its end


@pytest.mark.parametrize("streaming", [False, True])
async def test_web_search_alone_gives_no_sources(instrumented, streaming):
    """An agent with Claude's search and no tool of its own: nothing the app retrieved, so
    the error says so and every citation is dangling; the answer is untouched."""
    agent = FunctionAgent(tools=[], llm=claude(Server(answer_content())), streaming=streaming)
    output = await agent.run(user_msg=QUESTION)
    assert str(output).replace("\n", "") == "".join([LEAD, *(t for t, _ in CLAIMS)])
    attribution = output["attribution"]
    assert attribution["sources"] == []
    assert attribution["error"].startswith("no tool call in this agent run, so no node to cite")
    assert [m["verdict"] for m in attribution["citation_check"]["markers"]] == ["dangling"] * 3
