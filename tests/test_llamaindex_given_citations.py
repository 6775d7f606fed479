"""LlamaIndex: citations an LLM gives beside its text, checked under `instrument()`.

`CitationBlock`s among a chat reply's blocks (llama-index-llms-anthropic builds them from
Claude's `search_result_location` citations of the `CitableBlock`s a tool returned) and OpenAI
`url_citation` annotations. Real FunctionAgent, FunctionTool, ContextChatEngine and
VectorStoreIndex; only the LLM is a stand-in, building its reply's blocks the way
llama-index-llms-anthropic 0.12.3 does: a text block, then the `CitationBlock`s of its
citations (`_get_blocks_and_tool_calls_and_thinking`); streamed, each text block is appended
when it ends, after its citations (`stream_chat`'s `gen`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from _checks import chat_engine, lone_marker
from _web_pages import (
    BIRDS,
    CLAIMS,
    ELSEWHERE,
    MUSEUM,
    PAGES,
    PORT,
    QUESTION,
    pages_index,
    url_annotations,
)
from llama_index.core.agent.workflow import AgentOutput, FunctionAgent
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CitableBlock,
    CitationBlock,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool
from pydantic import Field

from rag_attrib.integrations._given import chat_completion_annotations, from_reply
from rag_attrib.integrations.llamaindex.instrument import open_records

LEAD = "I searched three pages."  # uncited: a citation placed on it is judged unsupported
EXPECTED = [
    (MUSEUM, MUSEUM, "correct"),
    (BIRDS, BIRDS, "wrong_source"),
    (ELSEWHERE, None, "dangling"),
]


def citation(source: str, k: int) -> CitationBlock:
    """A CitationBlock as llama-index-llms-anthropic builds it from a search_result_location."""
    title, text = PAGES.get(source, ("Elsewhere", "Penguins are birds."))
    return CitationBlock(
        cited_content=TextBlock(text=text),
        source=source,
        title=title,
        additional_location_info={
            "start_block_index": 0,
            "end_block_index": 1,
            "search_result_index": k,
        },
    )


def reply_blocks(claims: Sequence[tuple[str, str]] = CLAIMS) -> list[Any]:
    """The reply's blocks built at once: a text block, then its citations."""
    blocks: list[Any] = [TextBlock(text=LEAD)]
    for k, (text, source) in enumerate(claims):
        blocks += [TextBlock(text=text), citation(source, k)]
    return blocks


def streamed_blocks(blocks: Sequence[Any]) -> list[Any]:
    """The same reply streamed: a text block lands after the citations that arrived in it."""
    out: list[Any] = []
    for block in blocks:
        if isinstance(block, CitationBlock):
            out.insert(len(out) - 1, block)  # before the text block it belongs to
        else:
            out.append(block)
    return out


def search(query: str) -> list[CitableBlock]:
    """Search the web: each page as a CitableBlock, cited by its source."""
    return [
        CitableBlock(source=url, title=title, content=[TextBlock(text=text)])
        for url, (title, text) in PAGES.items()
    ]


class ClaudeLike(MockFunctionCallingLLM):
    """Calls `search` first; once it has the results, answers with `answer` blocks: a reply
    built at once from `chat` (no delta), or streamed from `stream_chat` (delta set, blocks in
    the streamed order)."""

    answer: list[Any] = Field(default_factory=list)
    search_first: bool = True  # False: answer straight away (a chat engine has no tools)
    raw: Any = None  # the provider's response, as `ChatResponse.raw`
    extra: dict[str, Any] = Field(default_factory=dict)  # `ChatResponse.additional_kwargs`

    def _message(self, messages: Sequence[ChatMessage]) -> ChatMessage:
        if self.search_first and not any(m.role == MessageRole.TOOL for m in messages):
            call = ToolCallBlock(tool_call_id="t1", tool_name="search", tool_kwargs={"query": "x"})
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=list(self.answer))

    def _reply(self, messages: Sequence[ChatMessage]) -> ChatResponse:
        message = self._message(messages)
        return ChatResponse(message=message, raw=self.raw, additional_kwargs=self.extra)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._reply(messages)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._reply(messages)

    def _chunks(self, messages: Sequence[ChatMessage]) -> list[ChatResponse]:
        message = self._message(messages)
        blocks = streamed_blocks(message.blocks)
        done = ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks)
        texts = [b.text for b in blocks if isinstance(b, TextBlock)]
        return [ChatResponse(message=done, delta=t) for t in texts] or [
            ChatResponse(message=done, delta="")
        ]

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Iterator[ChatResponse]:
        chunks = self._chunks(messages)

        def gen() -> Iterator[ChatResponse]:
            yield from chunks

        return gen()

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> AsyncIterator[ChatResponse]:
        chunks = self._chunks(messages)

        async def gen() -> AsyncIterator[ChatResponse]:
            for chunk in chunks:
                yield chunk

        return gen()


def verdicts(check: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [(m["label"], m["source_id"], m["verdict"]) for m in check["markers"]]


def expect_engine_verdicts(check: dict[str, Any], nodes: list[Any]) -> dict[str, str]:
    """An engine's check of CLAIMS: right, wrong and dangling; node id by URL."""
    ids = {n.node.metadata["url"]: n.node.node_id for n in nodes}
    assert verdicts(check) == [
        (MUSEUM, ids[MUSEUM], "correct"),
        (BIRDS, ids[BIRDS], "wrong_source"),
        (ELSEWHERE, None, "dangling"),
    ]
    return ids


async def run_agent(answer: list[Any], streaming: bool) -> AgentOutput:
    tool = FunctionTool.from_defaults(fn=search)
    agent = FunctionAgent(tools=[tool], llm=ClaudeLike(answer=answer), streaming=streaming)
    output = await agent.run(user_msg=QUESTION)
    assert isinstance(output, AgentOutput)
    return output


@pytest.mark.parametrize("streaming", [False, True])
async def test_agent_citation_blocks_get_verdicts(instrumented, streaming):
    """FunctionAgent + a tool returning CitableBlocks: each CitationBlock backs the text block
    beside it (before it when built at once, after it when streamed), its source is the page
    the tool returned under that name; a wrong page gets the page that backs its claim, a
    source no tool returned is dangling."""
    output = await run_agent(reply_blocks(), streaming)
    answer = str(output)
    assert answer == "\n".join([LEAD, *(t for t, _ in CLAIMS)])  # ChatMessage.content
    check = output["attribution"]["citation_check"]
    assert verdicts(check) == EXPECTED
    assert check["markers"][1]["suggested_source_id"] == PORT
    # a dangling citation has no claim to show
    assert [m["claim"]["text"] if m["claim"] else None for m in check["markers"]] == [
        CLAIMS[0][0],
        CLAIMS[1][0],
        None,
    ]
    assert {m["style"] for m in check["markers"]} == {"provider"}
    assert output["attribution"]["error"] is None
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


async def test_the_block_order_decides_the_claim(instrumented):
    """A reply built at once in the streamed layout puts the museum's citation after the
    uncited lead sentence: it backs that sentence, which the museum does not support."""
    output = await run_agent(streamed_blocks(reply_blocks(CLAIMS[:1])), streaming=False)
    (marker,) = output["attribution"]["citation_check"]["markers"]
    assert (marker["claim"]["text"], marker["verdict"]) == (LEAD, "unsupported")


@pytest.mark.parametrize("streaming", [False, True])
def test_a_chat_engine_reply_with_citation_blocks(instrumented, streaming):
    """ContextChatEngine over a real index: the LLM cites nodes by the `url` in their
    metadata; the reply's citations reach the chat response's attribution, for a streamed
    answer too (its text blocks joined with nothing, not with newlines)."""
    index = pages_index()
    llm = ClaudeLike(answer=reply_blocks(), search_first=False, is_chat_model=True)
    engine = chat_engine(index, llm)
    if streaming:
        response: Any = engine.stream_chat(QUESTION)
        assert "".join(response.response_gen) == "".join([LEAD, *(t for t, _ in CLAIMS)])
    else:
        response = engine.chat(QUESTION)
    check = response.metadata["attribution"]["citation_check"]
    ids = expect_engine_verdicts(check, response.source_nodes)
    assert check["markers"][1]["suggested_source_id"] == ids[PORT]
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


@pytest.mark.parametrize("mode", ["query", "stream", "astream"])
async def test_a_query_engine_reply_with_citation_blocks(instrumented, mode):
    """A query engine over a real index, its answer built at once or streamed (sync and
    async): the reply's CitationBlocks are checked against the retrieved nodes. A streamed
    query's LLM runs while the caller reads the stream, under no span of the query."""
    index = pages_index()
    llm = ClaudeLike(answer=reply_blocks(), search_first=False, is_chat_model=True)
    engine = index.as_query_engine(llm=llm, similarity_top_k=3, streaming=mode != "query")
    if mode == "astream":
        response: Any = await engine.aquery(QUESTION)
        text = "".join([t async for t in response.async_response_gen()])
    else:
        response = engine.query(QUESTION)
        text = response.response if mode == "query" else "".join(response.response_gen)
    assert CLAIMS[0][0].strip() in text
    check = response.metadata["attribution"]["citation_check"]
    expect_engine_verdicts(check, response.source_nodes)
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


@pytest.mark.parametrize("api", ["chat-completions", "responses"])
def test_openai_url_citations_of_a_chat_engine_reply(instrumented, api):
    """OpenAI's LLMs in LlamaIndex: llama-index-llms-openai 0.8.3's `OpenAI` drops a Chat
    Completions reply's annotations from the message but keeps the reply as `raw`
    (`choices[0].message.annotations`, nested); `OpenAIResponses` puts the Responses API's
    flat ones in the reply's `additional_kwargs["annotations"]`. Both are read."""
    text = "".join([LEAD, *(t for t, _ in CLAIMS)])
    notes = url_annotations(text, nest=api == "chat-completions")
    message = {"role": "assistant", "content": text, "annotations": notes}
    raw = {"choices": [{"index": 0, "message": message}]} if api == "chat-completions" else None
    extra = {"annotations": notes} if api == "responses" else {}
    index = pages_index()
    llm = ClaudeLike(
        answer=[TextBlock(text=text)], search_first=False, is_chat_model=True, raw=raw, extra=extra
    )
    engine = chat_engine(index, llm)
    response = engine.chat(QUESTION)
    check = response.metadata["attribution"]["citation_check"]
    expect_engine_verdicts(check, response.source_nodes)
    assert [m["claim"]["text"] for m in check["markers"][:2]] == [CLAIMS[0][0], CLAIMS[1][0]]


class OpenAIStreamer(ClaudeLike):
    """`OpenAI.stream_chat` (llama-index-llms-openai 0.8.3): each chunk's `raw` is the SDK's
    ChatCompletionChunk; the annotations (nested, offsets in the whole reply) come on the last
    chunk's delta, with no text, as OpenAI's search models send them."""

    text: str = ""

    def _chunks(self, messages: Sequence[ChatMessage]) -> list[ChatResponse]:
        chunk = pytest.importorskip("openai.types.chat").ChatCompletionChunk
        pieces = [LEAD, *(t for t, _ in CLAIMS)]
        deltas = [{"content": p} for p in pieces]
        deltas.append({"content": None, "annotations": url_annotations(self.text, nest=True)})
        out, said = [], ""
        for delta in deltas:
            said += delta["content"] or ""
            raw = chunk.model_validate(
                {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "gpt-4o-search-preview",
                    "choices": [{"index": 0, "delta": {"role": "assistant", **delta}}],
                }
            )
            message = ChatMessage(role=MessageRole.ASSISTANT, blocks=[TextBlock(text=said)])
            out.append(ChatResponse(message=message, delta=delta["content"] or "", raw=raw))
        return out


@pytest.mark.parametrize("mode", ["stream_chat", "astream_chat"])
async def test_a_streamed_chat_completions_reply_has_its_url_citations_read(instrumented, mode):
    """A chat engine streaming OpenAI's Chat Completions: the `url_citation`s on the chunks'
    deltas (not in the reply that ends the stream) are checked (they were not read)."""
    text = "".join([LEAD, *(t for t, _ in CLAIMS)])
    index = pages_index()
    llm = OpenAIStreamer(search_first=False, is_chat_model=True, text=text)
    engine = chat_engine(index, llm)
    if mode == "stream_chat":
        response: Any = engine.stream_chat(QUESTION)
        assert "".join(response.response_gen) == text
    else:
        response = await engine.astream_chat(QUESTION)
        assert "".join([t async for t in response.async_response_gen()]) == text
    check = response.metadata["attribution"]["citation_check"]
    expect_engine_verdicts(check, response.source_nodes)
    assert [m["claim"]["text"] for m in check["markers"][:2]] == [CLAIMS[0][0], CLAIMS[1][0]]
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


def test_the_openai_sdk_response_object_is_read():
    """`raw` is the OpenAI SDK's ChatCompletion object, read by its attributes."""
    completion = pytest.importorskip("openai.types.chat").ChatCompletion
    text = "".join(t for t, _ in CLAIMS)
    raw = completion.model_validate(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-search-preview",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": text,
                        "annotations": url_annotations(text, nest=True),
                    },
                }
            ],
        }
    )
    given = from_reply([TextBlock(text=text)], text, annotations=chat_completion_annotations(raw))
    assert given is not None
    assert [(x.label, x.start, x.end) for x in given.spans] == [
        (url, text.index(t), text.index(t) + len(t)) for t, url in CLAIMS
    ]


BAD_CITATIONS: list[tuple[list[Any], Any]] = [
    # an empty source names nothing: skipped, so nothing is checked
    ([TextBlock(text=CLAIMS[0][0]), citation(MUSEUM, 0).model_copy(update={"source": ""})], None),
    # a blank source likewise
    ([TextBlock(text=CLAIMS[0][0]), citation(MUSEUM, 0).model_copy(update={"source": "  "})], None),
    # a citation before any text (built at once): it backs the text after it
    ([citation(MUSEUM, 0), TextBlock(text=CLAIMS[0][0])], "correct"),
    # a citation and no text at all: not this answer's reply
    ([citation(MUSEUM, 0)], None),
    # an empty text block cited: a citation of no text
    ([TextBlock(text=CLAIMS[0][0]), TextBlock(text=""), citation(MUSEUM, 0)], "unsupported"),
    # an odd location dict and a non-text cited content are not needed to read it
    (
        [
            TextBlock(text=CLAIMS[0][0]),
            citation(MUSEUM, 0).model_copy(update={"additional_location_info": {}, "title": ""}),
        ],
        "correct",
    ),
]


@pytest.mark.parametrize(("blocks", "expected"), BAD_CITATIONS)
async def test_malformed_citation_blocks_never_break_the_agent(instrumented, blocks, expected):
    """Odd CitationBlocks give a defined check (or none), never an error; the answer stands."""
    output = await run_agent(blocks, streaming=False)
    found = lone_marker(output["attribution"])
    assert found == (None if expected is None else (MUSEUM, expected))


@pytest.mark.parametrize(
    "blocks",
    [
        None,
        "text",
        [None, 3, "x", {"block_type": "citation"}],
        [{"block_type": "text", "text": 5}, {"block_type": "citation", "source": 7}],
        [{"block_type": "text", "text": "a"}, {"block_type": "citation", "source": ["u"]}],
    ],
)
def test_malformed_reply_shapes_read_as_nothing(blocks):
    """Not a list, items of no block shape, wrong types: no citations, no exception."""
    assert from_reply(blocks, "a b c") is None


def test_a_reply_not_in_the_answer_is_not_read():
    """A reply none of whose text is in the answer (an earlier LLM call) gives nothing."""
    assert from_reply(reply_blocks(), "Something else entirely.") is None


def test_a_block_not_found_in_the_answer_backs_the_whole_answer():
    blocks = [TextBlock(text="Lead."), TextBlock(text="Gone."), citation(MUSEUM, 0)]
    given = from_reply(blocks, "Lead. Another text.")
    assert given is not None
    (span,) = given.spans
    assert (span.label, span.start, span.end) == (MUSEUM, None, None)
