"""LlamaIndex: the citations of a `complete()` / `stream_complete()` reply, under `instrument()`.

An app that builds its own prompt completes it (the LlamaIndex docs' RAG `CustomQueryEngine`
calls `llm.complete(prompt)`). A completion keeps its provider citations where a chat reply
keeps them: llama-index-llms-openai (0.8.3) completes by chatting
(`chat_to_completion_decorator(self._chat)`), so `OpenAI`'s `raw` is the Chat Completions
response and `OpenAIResponses`' annotations are in `additional_kwargs`;
llama-index-llms-anthropic (0.12.3) completes through its own `chat` / `stream_chat`, whose
`raw` (or stream events) it keeps. Claude is the real `Anthropic` class against a stand-in
HTTP server; OpenAI's LLMs, which this environment cannot install beside its openai SDK, are a
small stand-in that completes as they do, with the SDK's own response types and LlamaIndex's
own converters. Engines, index and retriever are real.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("llama_index.llms.anthropic")

from _checks import lone_marker
from _claude import ANSWER, LEAD, Server, answer_content, claude, web_citation
from _web_pages import BIRDS, CLAIMS, ELSEWHERE, MUSEUM, QUESTION, pages_index, url_annotations
from llama_index.core import VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.generic_utils import (
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    DocumentBlock,
    LLMMetadata,
    MessageRole,
    TextBlock,
)
from llama_index.core.base.response.schema import (
    AsyncStreamingResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.llms import LLM, CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore
from pydantic import Field

from rag_attrib.integrations._anthropic_stream import StreamedCitations
from rag_attrib.integrations.llamaindex._read import completion_reply, reply_citations
from rag_attrib.integrations.llamaindex.instrument import open_records


@pytest.fixture
def index() -> VectorStoreIndex:
    """The app's own pages, each with its `url` in metadata (`instrumented` is conftest's)."""
    return pages_index()


STREAMED = "".join([LEAD, *(t for t, _ in CLAIMS)])  # a stream's deltas joined


class PagesEngine(CustomQueryEngine):
    """The LlamaIndex docs' RAG query engine: retrieve, write the nodes into a prompt,
    complete it (streamed: a response over the completion's deltas). Keeps each completion it
    read (`replies`), as the LLM returned it."""

    retriever: BaseRetriever
    llm: LLM
    streaming: bool = False
    replies: list[Any] = Field(default_factory=list)

    def _prompt(self, nodes: Sequence[NodeWithScore], question: str) -> str:
        context = "\n".join(n.node.get_content() for n in nodes)
        return f"Context:\n{context}\nAnswer the question: {question}"

    def _deltas(self, stream: Iterator[CompletionResponse]) -> Iterator[str]:
        for reply in stream:
            self.replies.append(reply)
            yield reply.delta or ""

    async def _adeltas(self, stream: AsyncIterator[CompletionResponse]) -> AsyncIterator[str]:
        async for reply in stream:
            self.replies.append(reply)
            yield reply.delta or ""

    def custom_query(self, query_str: str) -> Any:
        nodes = self.retriever.retrieve(query_str)
        prompt = self._prompt(nodes, query_str)
        if self.streaming:
            stream = self._deltas(self.llm.stream_complete(prompt))
            return StreamingResponse(response_gen=stream, source_nodes=nodes)
        reply = self.llm.complete(prompt)
        self.replies.append(reply)
        return Response(reply.text, source_nodes=nodes)

    async def acustom_query(self, query_str: str) -> Any:
        nodes = await self.retriever.aretrieve(query_str)
        prompt = self._prompt(nodes, query_str)
        if self.streaming:
            stream = self._adeltas(await self.llm.astream_complete(prompt))
            return AsyncStreamingResponse(response_gen=stream, source_nodes=nodes)
        reply = await self.llm.acomplete(prompt)
        self.replies.append(reply)
        return Response(reply.text, source_nodes=nodes)


def ask(index: VectorStoreIndex, llm: LLM, streaming: bool) -> PagesEngine:
    return PagesEngine(
        retriever=index.as_retriever(similarity_top_k=3), llm=llm, streaming=streaming
    )


async def run(engine: PagesEngine, mode: str) -> tuple[Any, str]:
    """The engine's response and the answer text its caller read."""
    if mode.startswith("a"):
        response: Any = await engine.aquery(QUESTION)
        if mode == "astream":
            return response, "".join([t async for t in response.async_response_gen()])
        return response, response.response
    response = engine.query(QUESTION)
    if mode == "stream":
        return response, "".join(response.response_gen)
    return response, response.response


def verdicts(response: Any) -> list[tuple[str, str | None, str]]:
    check = response.metadata["attribution"]["citation_check"]
    return [(m["label"], m["source_id"], m["verdict"]) for m in check["markers"]]


def expected(response: Any) -> list[tuple[str, str | None, str]]:
    ids = {n.node.metadata["url"]: n.node.node_id for n in response.source_nodes}
    return [
        (MUSEUM, ids[MUSEUM], "correct"),
        (BIRDS, ids[BIRDS], "wrong_source"),
        (ELSEWHERE, None, "dangling"),
    ]


MODES = ["complete", "acomplete", "stream", "astream"]


@pytest.mark.parametrize("mode", MODES)
async def test_claude_completions_are_checked(instrumented, index, mode):
    """Claude's web-search citations in a completion, made at once or streamed, sync and
    async: each backs its text block of the answer. (Read before too, from the chat call the
    Anthropic LLM makes inside `complete`; the completion read now must agree with it.) The
    completion's flat `citations` list (`AnthropicCompletionResponse.citations`) holds the
    same citations without their blocks: it names no page the check missed."""
    engine = ask(index, claude(Server(answer_content())), streaming=mode.endswith("stream"))
    response, text = await run(engine, mode)
    assert text == (STREAMED if mode.endswith("stream") else ANSWER)
    assert verdicts(response) == expected(response)
    assert response.metadata["attribution"]["error"] is None
    flat = [c["url"] for c in engine.replies[-1].citations]
    assert flat == [label for label, _, _ in verdicts(response)]
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


def chat_completion(text: str, annotations: list[dict[str, Any]]) -> Any:
    """The openai SDK's ChatCompletion of `text`, its annotations nested in the message."""
    completion = pytest.importorskip("openai.types.chat").ChatCompletion
    choice = {
        "index": 0,
        "finish_reason": "stop",
        "message": {"role": "assistant", "content": text, "annotations": annotations},
    }
    return completion.model_validate(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-search-preview",
            "choices": [choice],
        }
    )


def chat_completion_chunk(delta: dict[str, Any]) -> Any:
    """The openai SDK's ChatCompletionChunk with `delta` (extra fields kept, as the SDK keeps
    a streamed delta's `annotations`, which `ChoiceDelta` does not declare)."""
    chunk = pytest.importorskip("openai.types.chat").ChatCompletionChunk
    choice = {"index": 0, "finish_reason": None, "delta": delta}
    return chunk.model_validate(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "gpt-4o-search-preview",
            "choices": [choice],
        }
    )


def response_annotations(text: str) -> list[Any]:
    """The Responses API's flat `url_citation`s as the openai SDK's objects."""
    citation = pytest.importorskip("openai.types.responses").response_output_text
    return [
        citation.AnnotationURLCitation.model_validate(x) for x in url_annotations(text, nest=False)
    ]


class OpenAILike(CustomLLM):
    """Completes by chatting, as llama-index-llms-openai 0.8.3 does: `complete` is
    `chat_to_completion_decorator(self._chat)` and `stream_complete`
    `stream_chat_to_completion_decorator(self._stream_chat)` (`OpenAI` and `OpenAIResponses`
    alike, for chat models). `api="chat-completions"`: the reply's `raw` is the ChatCompletion
    (`OpenAI._chat`); `"responses"`: the annotations are in the reply's `additional_kwargs`
    (`OpenAIResponses._parse_response_output`; streamed, each chunk carries those added so
    far). Only the server's side is made up here."""

    api: str = "chat-completions"
    text: str = STREAMED

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, model_name="gpt-4o-search-preview")

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        reply = ChatMessage(role=MessageRole.ASSISTANT, blocks=[TextBlock(text=self.text)])
        if self.api == "chat-completions":
            raw = chat_completion(self.text, url_annotations(self.text, nest=True))
            return ChatResponse(message=reply, raw=raw)
        extra = {"built_in_tool_calls": [], "annotations": response_annotations(self.text)}
        return ChatResponse(message=reply, additional_kwargs=extra)

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Iterator[Any]:
        pieces = [LEAD, *(t for t, _ in CLAIMS)]
        if self.api == "chat-completions":
            return self._stream_chat_completions(pieces)
        notes = response_annotations(self.text)

        def gen() -> Iterator[ChatResponse]:
            said = ""
            for k, piece in enumerate(pieces):
                said += piece
                reply = ChatMessage(role=MessageRole.ASSISTANT, blocks=[TextBlock(text=said)])
                extra = {"annotations": notes[:k]} if k else {}
                yield ChatResponse(message=reply, delta=piece, additional_kwargs=extra)

        return gen()

    def _stream_chat_completions(self, pieces: list[str]) -> Iterator[ChatResponse]:
        """`OpenAI._stream_chat`: a reply per chunk, its `raw` the ChatCompletionChunk; the
        annotations come on a last chunk with no text (offsets in the whole reply)."""
        notes = url_annotations(self.text, nest=True)
        said = ""
        deltas = [{"content": p} for p in pieces] + [{"content": None, "annotations": notes}]
        for delta in deltas:
            said += delta["content"] or ""
            reply = ChatMessage(role=MessageRole.ASSISTANT, blocks=[TextBlock(text=said)])
            raw = chat_completion_chunk({"role": "assistant", **delta})
            yield ChatResponse(message=reply, delta=delta["content"] or "", raw=raw)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        return chat_to_completion_decorator(self._chat)(prompt, **kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        return stream_chat_to_completion_decorator(self._stream_chat)(prompt, **kwargs)


@pytest.mark.parametrize(
    ("api", "mode"),
    [
        ("chat-completions", "complete"),
        ("chat-completions", "acomplete"),
        ("chat-completions", "stream"),
        ("chat-completions", "astream"),
        ("responses", "complete"),
        ("responses", "stream"),
        ("responses", "astream"),
    ],
)
async def test_openai_completions_are_checked(instrumented, index, api, mode):
    """OpenAI's `url_citation`s in a completion: Chat Completions' nested ones in its `raw`
    (streamed: on the chunks' `delta`, here a last chunk with no text; they were not read),
    the Responses API's flat ones in its `additional_kwargs` (streamed too: the last chunk
    carries them all). Each backs its claim's offsets in the answer."""
    engine = ask(index, OpenAILike(api=api), streaming=mode.endswith("stream"))
    response, text = await run(engine, mode)
    assert text == STREAMED
    assert verdicts(response) == expected(response)
    claims = [
        m["claim"]["text"]
        for m in response.metadata["attribution"]["citation_check"]["markers"][:2]
    ]
    assert claims == [CLAIMS[0][0], CLAIMS[1][0]]
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


class Exploding:
    """A `raw` whose fields fail when read."""

    @property
    def content(self) -> Any:
        raise RuntimeError("no content")

    @property
    def choices(self) -> Any:
        raise RuntimeError("no choices")


def claim_raw(citation: dict[str, Any]) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": CLAIMS[0][0], "citations": [citation]}]}


def nested(start: Any, end: Any) -> list[dict[str, Any]]:
    fields = {"url": MUSEUM, "start_index": start, "end_index": end}
    return [{"type": "url_citation", "url_citation": fields}]


# (raw, additional_kwargs, the one citation's verdict, or None: nothing is checked)
BAD_COMPLETIONS: list[tuple[Any, Any, str | None]] = [
    (None, {}, None),
    ("a string", {}, None),
    (Exploding(), {}, None),
    ({"content": "not a list"}, {}, None),
    ({"choices": "x"}, {}, None),
    ({"choices": []}, {}, None),
    ({"choices": [{"message": None}]}, {}, None),
    ({"choices": [{"message": {"annotations": "nope"}}]}, {}, None),
    ({"choices": [{"message": {"annotations": [None, 3, {"type": "url_citation"}]}}]}, {}, None),
    (None, {"annotations": "x"}, None),
    (None, {"annotations": [None, {"type": "url_citation", "url": " "}]}, None),
    (None, "not a dict", None),  # built without validation
    # a citation naming a request document: counts the request's documents, not the nodes
    (claim_raw({"type": "char_location", "document_index": 0, "cited_text": "x"}), {}, None),
    # Claude's citation of text the answer does not hold: not this answer's reply
    (
        {"content": [{"type": "text", "text": "Else.", "citations": [web_citation(MUSEUM)]}]},
        {},
        None,
    ),
    # the controls: well-formed citations of the right page
    (claim_raw(web_citation(MUSEUM)), {}, "correct"),
    ({"choices": [{"message": {"annotations": nested(0, len(CLAIMS[0][0]))}}]}, {}, "correct"),
    # offsets that do not fit, or are no ints: the citation backs the whole text
    ({"choices": [{"message": {"annotations": nested(-5, 10_000)}}]}, {}, "correct"),
    ({"choices": [{"message": {"annotations": nested("0", None)}}]}, {}, "correct"),
    (None, {"annotations": [{"type": "url_citation", "url": MUSEUM}]}, "correct"),
]


class RawCompletion(CustomLLM):
    """Completes with the claim and the given `raw` / `additional_kwargs` beside it."""

    raw: Any = None
    extra: Any = Field(default_factory=dict)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        return CompletionResponse.model_construct(
            text=CLAIMS[0][0], raw=self.raw, additional_kwargs=self.extra, delta=None
        )

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError


@pytest.mark.parametrize(("raw", "extra", "verdict"), BAD_COMPLETIONS)
def test_malformed_completions_never_break_the_query(
    instrumented, index, caplog, raw, extra, verdict
):
    """Odd `raw` and `additional_kwargs` give a defined check (or none), never an error or a
    logged warning; the answer stands."""
    engine = ask(index, RawCompletion(raw=raw, extra=extra), streaming=False)
    with caplog.at_level(logging.WARNING, logger="rag_attrib"):
        response = engine.query(QUESTION)
    assert response.response == CLAIMS[0][0]
    assert [r for r in caplog.records if r.name.startswith("rag_attrib")] == []
    ids = {n.node.metadata["url"]: n.node.node_id for n in response.source_nodes}
    found = lone_marker(response.metadata["attribution"])
    assert found == (None if verdict is None else (ids[MUSEUM], verdict))


async def test_documents_are_sent_without_citations(instrumented, index):
    """Why no document citation (`char_location`, `page_location`, `content_block_location`)
    reaches a LlamaIndex reply: llama-index-llms-anthropic 0.12.3 sends a `DocumentBlock` as a
    base64 PDF with no `citations` setting (`_to_anthropic_document_block`), and Claude cites
    only documents whose citations are enabled. If a later version enables them, this fails:
    their `document_index` then counts the request's documents, to be mapped to sources."""
    server = Server([{"type": "text", "text": CLAIMS[0][0]}])
    agent = FunctionAgent(tools=[], llm=claude(server), streaming=False)
    pdf = DocumentBlock(data=b"%PDF-1.4 The Hobart harbour museum was founded in 1896.")
    user = ChatMessage(role=MessageRole.USER, blocks=[pdf, TextBlock(text=QUESTION)])
    output = await agent.run(user_msg=user)
    (sent,) = [
        b for m in server.requests[0]["messages"] for b in m["content"] if b["type"] == "document"
    ]
    assert sent["source"]["media_type"] == "application/pdf"
    assert "citations" not in sent
    assert "citation_check" not in output["attribution"]


def test_a_streamed_completion_holds_its_events(index):
    """What the real integration streams as completions: each chunk's `raw` is the Anthropic
    stream event (a `citations_delta` or `text_delta` with its block `index`), the last one
    the closing `message_delta`, which holds no content."""
    llm = claude(Server(answer_content()))
    chunks = list(llm.stream_complete(QUESTION))
    kinds = [c.raw["type"] for c in chunks]
    assert kinds[-1] == "message_delta"
    assert "content" not in chunks[-1].raw
    deltas = [c.raw["delta"].type for c in chunks if c.raw["type"] == "content_block_delta"]
    assert deltas.count("citations_delta") == len(CLAIMS)
    assert "".join(c.delta or "" for c in chunks) == STREAMED


def test_a_claude_completion_alone_holds_its_citations():
    """A Claude completion read as a chat reply gives every citation in place, without the
    chat call inside it: `raw` made at once, the stream's events when streamed."""
    llm = claude(Server(answer_content()))
    at = [ANSWER.index(t) for t, _ in CLAIMS]
    given = reply_citations(completion_reply(llm.complete(QUESTION)), ANSWER)
    assert given is not None
    assert [(x.label, x.start, x.end) for x in given.spans] == [
        (url, a, a + len(t)) for a, (t, url) in zip(at, CLAIMS, strict=True)
    ]
    notes = StreamedCitations()
    chunks = list(llm.stream_complete(QUESTION))
    for chunk in chunks:
        notes.feed(chunk.raw)
    given = reply_citations(completion_reply(chunks[-1]), STREAMED)
    assert given is None  # the last chunk alone holds no citation
    assert notes.content() == [
        {"type": "text", "text": LEAD, "citations": []},
        *({"type": "text", "text": t, "citations": [web_citation(u)]} for t, u in CLAIMS),
    ]
