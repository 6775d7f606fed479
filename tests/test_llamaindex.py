"""LlamaIndex integration: real indexes, query and chat engines; only the LLM is a stand-in."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from _fakes import RecordingEmbedder
from _llamaindex import QUESTIONS, TOPICS, EchoContextLLM, Recorder, topic_documents
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.llms.types import (
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.base.response.schema import Response
from llama_index.core.chat_engine.types import AgentChatResponse, BaseChatEngine
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle
from pydantic import Field

from rag_attrib import AttributionResult, Attributor, engine
from rag_attrib.embedders import CachedEmbedder
from rag_attrib.integrations.llamaindex import (
    AttributionEvent,
    MiniLMEmbedding,
    attribute_response,
    instrument,
    uninstrument,
)
from rag_attrib.integrations.llamaindex.instrument import open_records
from rag_attrib.testing import FailingEmbedder, HashingEmbedder


class FixedLLM(CustomLLM):
    """Always gives the same answer (for the real-model quality check)."""

    answer: str

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self.answer)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text=self.answer, delta=self.answer)

        return gen()


class DropNodes(BaseNodePostprocessor):
    """Drops retrieved nodes whose text contains any of `words`."""

    words: list[str]

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        return [n for n in nodes if not any(w in n.node.get_content().lower() for w in self.words)]


class Broken:
    """An exporter that always raises."""

    def export(self, result: AttributionResult, context: Mapping[str, Any]) -> None:
        raise OSError("disk full")


class EventCollector(BaseEventHandler):
    """Collects AttributionEvents, as a tracing integration would."""

    events: list[AttributionEvent] = Field(default_factory=list)

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, AttributionEvent):
            self.events.append(event)


# `index` (the topic documents, module-scoped) and `recorder` come from conftest.py.


@pytest.fixture
def llm() -> EchoContextLLM:
    return EchoContextLLM()


def _chat_engine(index: VectorStoreIndex, llm: CustomLLM) -> BaseChatEngine:
    """A context chat engine with an in-process memory.

    The default `Memory` keeps history in aiosqlite, whose worker thread outlives each test's
    event loop and fails later ("Event loop is closed").
    """
    return index.as_chat_engine(
        chat_mode="context",
        llm=llm,
        similarity_top_k=2,
        memory=ChatMemoryBuffer.from_defaults(token_limit=4000),
    )


def _node_ids(response: Any) -> list[str]:
    return [n.node.node_id for n in response.source_nodes]


def _check_attribution(response: Any, topic: str) -> dict[str, Any]:
    """The attribution matches this response's answer and nodes, and cites the topic's node."""
    payload = response.metadata["attribution"]
    assert payload["error"] is None
    assert payload["answer"] == dict(TOPICS)[topic]  # what the echoing LLM said
    assert [s["id"] for s in payload["sources"]] == _node_ids(response)
    nodes = {n.node.node_id: n.node for n in response.source_nodes}
    assert payload["citations"], "the echoed answer must be cited"
    for citation in payload["citations"]:
        extras = citation["extras"]
        node = nodes[extras["source_id"]]
        assert node.text[extras["source_start"] : extras["source_end"]] == citation["cited_text"]
        assert extras["ref_doc_id"] == node.ref_doc_id
        assert extras["metadata"]["file_name"] == node.metadata["file_name"]
    top = payload["citations"][0]["extras"]
    assert top["metadata"]["file_name"] == f"{topic}.txt"
    assert "page_label" in top["metadata"]
    return payload


def test_query_attaches_cited_answer(
    index: VectorStoreIndex, llm: EchoContextLLM, recorder: Recorder
) -> None:
    """A query gets metadata["attribution"] citing its own top node, offsets into node text."""
    response = index.as_query_engine(llm=llm, similarity_top_k=2).query(QUESTIONS["penguins"])
    assert isinstance(response, Response)
    assert response.response == dict(TOPICS)["penguins"]
    _check_attribution(response, "penguins")
    # the node-id keys LlamaIndex puts in metadata are kept
    assert set(response.metadata) == {*_node_ids(response), "attribution"}
    assert len(recorder.calls) == 1
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


async def test_aquery_attaches_cited_answer(
    index: VectorStoreIndex, llm: EchoContextLLM, recorder: Recorder
) -> None:
    """aquery gets the same attribution."""
    response = await index.as_query_engine(llm=llm, similarity_top_k=2).aquery(QUESTIONS["honey"])
    _check_attribution(response, "honey")
    assert recorder.calls[0][1]["span_id"].startswith("RetrieverQueryEngine.aquery-")


def test_streaming_query_attaches_once_consumed(
    index: VectorStoreIndex, llm: EchoContextLLM, recorder: Recorder
) -> None:
    """A sync stream carries the attribution only after it is fully consumed."""
    engine = index.as_query_engine(llm=llm, similarity_top_k=2, streaming=True)
    response = engine.query(QUESTIONS["saturn"])
    assert "attribution" not in (response.metadata or {})
    text = "".join(response.response_gen)
    assert text == dict(TOPICS)["saturn"]
    payload = _check_attribution(response, "saturn")
    assert payload["answer"] == text
    assert recorder.calls[0][1]["streaming"] is True
    # get_response() after consumption carries the same metadata
    assert response.get_response().metadata["attribution"] is payload


def test_streaming_query_early_break_attaches_nothing(
    index: VectorStoreIndex, llm: EchoContextLLM, recorder: Recorder
) -> None:
    """A stream abandoned half-way is not attributed from a partial answer."""
    response = index.as_query_engine(llm=llm, streaming=True).query(QUESTIONS["chess"])
    gen = response.response_gen
    next(gen)
    gen.close()
    assert "attribution" not in (response.metadata or {})
    assert recorder.calls == []


async def test_async_streaming_query(
    index: VectorStoreIndex, llm: EchoContextLLM, recorder: Recorder
) -> None:
    """An async stream carries the attribution once consumed, by iteration or get_response()."""
    engine = index.as_query_engine(llm=llm, similarity_top_k=2, streaming=True)
    first = await engine.aquery(QUESTIONS["violin"])
    text = "".join([t async for t in first.async_response_gen()])
    assert text == dict(TOPICS)["violin"]
    _check_attribution(first, "violin")
    second = await engine.aquery(QUESTIONS["coffee"])
    final = await second.get_response()
    assert final.metadata["attribution"]["answer"] == dict(TOPICS)["coffee"]
    _check_attribution(second, "coffee")
    assert [c[1]["span_id"].split("-")[0] for c in recorder.calls] == [
        "RetrieverQueryEngine.aquery",
        "RetrieverQueryEngine.aquery",
    ]


def test_chat_and_stream_chat(
    index: VectorStoreIndex, llm: EchoContextLLM, recorder: Recorder
) -> None:
    """A context chat engine's chat and stream_chat both carry the attribution."""
    chat_engine = _chat_engine(index, llm)
    reply = chat_engine.chat(QUESTIONS["octopus"])
    assert isinstance(reply, AgentChatResponse)
    _check_attribution(reply, "octopus")
    streamed = chat_engine.stream_chat(QUESTIONS["glacier"])
    text = "".join(streamed.response_gen)
    assert text == dict(TOPICS)["glacier"]
    payload = _check_attribution(streamed, "glacier")
    assert payload["answer"] == text
    names = [c[1]["span_id"].split("-")[0] for c in recorder.calls]
    assert names == ["ContextChatEngine.chat", "ContextChatEngine.stream_chat"]
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


async def test_achat_and_astream_chat(
    index: VectorStoreIndex, llm: EchoContextLLM, recorder: Recorder
) -> None:
    """achat and astream_chat carry the attribution too."""
    chat_engine = _chat_engine(index, llm)
    reply = await chat_engine.achat(QUESTIONS["tides"])
    _check_attribution(reply, "tides")
    streamed = await chat_engine.astream_chat(QUESTIONS["diamond"])
    text = "".join([t async for t in streamed.async_response_gen()])
    assert text == dict(TOPICS)["diamond"]
    _check_attribution(streamed, "diamond")
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


async def test_twenty_concurrent_aqueries_keep_their_own_nodes(
    index: VectorStoreIndex, recorder: Recorder
) -> None:
    """20 interleaved aquery calls each cite only their own nodes; no state is left behind."""
    engine = index.as_query_engine(llm=EchoContextLLM(delay=0.003), similarity_top_k=2)
    topics = [topic for topic, _ in TOPICS]
    responses = await asyncio.gather(*(engine.aquery(QUESTIONS[t]) for t in topics))
    for topic, response in zip(topics, responses, strict=True):
        assert response.response == dict(TOPICS)[topic]
        payload = _check_attribution(response, topic)
        own = set(_node_ids(response))
        assert {c["extras"]["source_id"] for c in payload["citations"]} <= own
    # each export went out under its own query span
    assert len({c[1]["span_id"] for c in recorder.calls}) == 20
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


def test_threaded_queries_and_stream_chats_keep_their_own_nodes(
    index: VectorStoreIndex, llm: EchoContextLLM, recorder: Recorder
) -> None:
    """Queries and streaming chats from several threads at once do not mix answers and nodes."""
    engine = index.as_query_engine(llm=llm, similarity_top_k=2)

    def ask(topic: str) -> tuple[str, Any, Any]:
        chat_engine = _chat_engine(index, llm)
        streamed = chat_engine.stream_chat(QUESTIONS[topic])
        for _ in streamed.response_gen:
            pass
        return topic, engine.query(QUESTIONS[topic]), streamed

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(ask, [t for t, _ in TOPICS[:12]]))
    for topic, response, streamed in results:
        _check_attribution(response, topic)
        _check_attribution(streamed, topic)
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


def test_postprocessor_dropped_nodes_are_never_cited(
    index: VectorStoreIndex, llm: EchoContextLLM, recorder: Recorder
) -> None:
    """Citations refer only to nodes that reached the LLM, not to what the retriever returned."""
    question = "Why is copper used in household wiring and why do penguins not fly?"
    retrieved = index.as_retriever(similarity_top_k=3).retrieve(question)
    dropped = {n.node.node_id for n in retrieved if "copper" in n.node.get_content().lower()}
    assert dropped, "the retriever must return the copper node for this test to mean anything"
    engine = index.as_query_engine(
        llm=llm, similarity_top_k=3, node_postprocessors=[DropNodes(words=["copper"])]
    )
    response = engine.query(question)
    payload = response.metadata["attribution"]
    kept = set(_node_ids(response))
    assert kept and not kept & dropped
    assert {s["id"] for s in payload["sources"]} == kept
    assert all(c["extras"]["source_id"] in kept for c in payload["citations"])
    assert "copper" not in response.response.lower()


def test_engine_failure_leaves_response_intact_and_is_logged(
    index: VectorStoreIndex, llm: EchoContextLLM, caplog: pytest.LogCaptureFixture
) -> None:
    """An attribution failure is logged and reported; the answer and the stream are unharmed."""
    instrument(Attributor(FailingEmbedder()))
    try:
        with caplog.at_level(logging.WARNING, logger="rag_attrib.integrations"):
            response = index.as_query_engine(llm=llm).query(QUESTIONS["sahara"])
            streamed = index.as_query_engine(llm=llm, streaming=True).query(QUESTIONS["sahara"])
            text = "".join(streamed.response_gen)
    finally:
        uninstrument()
    assert response.response == dict(TOPICS)["sahara"] == text
    for r in (response, streamed):
        payload = r.metadata["attribution"]
        assert "embedder failed on purpose" in payload["error"]
        assert payload["citations"] == []
        assert set(_node_ids(r)) <= set(r.metadata)
    failures = [r for r in caplog.records if r.name.startswith("rag_attrib.integrations")]
    assert len(failures) == 2
    assert all(r.levelno == logging.WARNING and r.exc_info for r in failures)


def test_exporter_failure_is_reported_not_raised(
    index: VectorStoreIndex, llm: EchoContextLLM, hashing_attributor: Attributor
) -> None:
    """A failing exporter leaves the query working; its error is on the attribution."""
    instrument(hashing_attributor, exporters=[Broken()])
    try:
        response = index.as_query_engine(llm=llm).query(QUESTIONS["bamboo"])
    finally:
        uninstrument()
    payload = response.metadata["attribution"]
    assert "disk full" in payload["error"]
    assert payload["citations"], "the attribution itself still succeeded"


def test_export_runs_inside_the_query_span(
    index: VectorStoreIndex, llm: EchoContextLLM, recorder: Recorder
) -> None:
    """Non-streaming exports happen while the query's span is still active, with its id."""
    index.as_query_engine(llm=llm).query(QUESTIONS["pyramid"])
    _chat_engine(index, llm).chat(QUESTIONS["pyramid"])
    for result, context, active in recorder.calls:
        assert context["framework"] == "llamaindex"
        assert context["streaming"] is False
        assert active == context["span_id"]
        assert result.answer == dict(TOPICS)["pyramid"]


def test_attribution_event_reaches_other_handlers(
    index: VectorStoreIndex, llm: EchoContextLLM, recorder: Recorder
) -> None:
    """An AttributionEvent with the payload goes to every event handler, on the query span."""
    collector = EventCollector()
    root = get_dispatcher()
    root.add_event_handler(collector)
    try:
        response = index.as_query_engine(llm=llm).query(QUESTIONS["vaccine"])
        streamed = index.as_query_engine(llm=llm, streaming=True).query(QUESTIONS["marathon"])
        str(streamed)
    finally:
        root.event_handlers = [h for h in root.event_handlers if h is not collector]
    assert len(collector.events) == 2
    for event, r, (_, context, _) in zip(
        collector.events, (response, streamed), recorder.calls, strict=True
    ):
        assert event.class_name() == "AttributionEvent"
        assert event.attribution == r.metadata["attribution"]
        assert event.span_id == context["span_id"]
        assert event.model_dump()["class_name"] == "AttributionEvent"


def test_instrument_is_idempotent_and_uninstrument_removes_it(
    index: VectorStoreIndex, llm: EchoContextLLM, hashing_attributor: Attributor
) -> None:
    """Instrumenting twice registers once with the latest settings; uninstrument stops it."""
    root = get_dispatcher()
    spans_before, events_before = len(root.span_handlers), len(root.event_handlers)
    first, second = Recorder(), Recorder()
    try:
        instrument(hashing_attributor, exporters=[first])
        instrument(hashing_attributor, exporters=[second])
        assert len(root.span_handlers) == spans_before + 1
        assert len(root.event_handlers) == events_before + 1
        index.as_query_engine(llm=llm).query(QUESTIONS["telescope"])
        assert (len(first.calls), len(second.calls)) == (0, 1)
    finally:
        uninstrument()
    uninstrument()  # a second call is harmless
    assert (len(root.span_handlers), len(root.event_handlers)) == (spans_before, events_before)
    response = index.as_query_engine(llm=llm).query(QUESTIONS["telescope"])
    assert "attribution" not in response.metadata
    assert len(second.calls) == 1


async def test_attribute_response_without_instrumentation(
    index: VectorStoreIndex, llm: EchoContextLLM, hashing_attributor: Attributor
) -> None:
    """The explicit API attributes and attaches to query, chat and stream responses."""
    rec = Recorder()
    response = index.as_query_engine(llm=llm, similarity_top_k=2).query(QUESTIONS["volcano"])
    assert "attribution" not in response.metadata
    result = attribute_response(response, hashing_attributor, exporters=[rec])
    assert isinstance(result, AttributionResult)
    assert result.sources[0].metadata["file_name"] == "volcano.txt"
    _check_attribution(response, "volcano")
    assert rec.calls[0][1]["framework"] == "llamaindex"

    chat_engine = _chat_engine(index, llm)
    reply = await chat_engine.achat(QUESTIONS["eiffel"])
    attribute_response(reply, hashing_attributor)
    _check_attribution(reply, "eiffel")

    streamed = index.as_query_engine(llm=llm, streaming=True).query(QUESTIONS["tortoise"])
    attribute_response(streamed, hashing_attributor)  # consumes the stream
    assert streamed.metadata["attribution"]["answer"] == dict(TOPICS)["tortoise"]

    with pytest.raises(TypeError, match="must be a LlamaIndex Response"):
        attribute_response("just a string", hashing_attributor)  # type: ignore[arg-type]
    pending = await index.as_query_engine(llm=llm, streaming=True).aquery(QUESTIONS["honey"])
    with pytest.raises(ValueError, match="get_response"):
        attribute_response(pending, hashing_attributor)


def test_mini_lm_embedding_matches_its_embedder() -> None:
    """The LlamaIndex embedding adapter returns the wrapped embedder's vectors."""
    embedder = HashingEmbedder(dim=64)
    model = MiniLMEmbedding(embedder)
    assert model.model_name == "hashing-embedder"
    vector = model.get_text_embedding("Honey never spoils.")
    assert vector == pytest.approx(embedder.encode(["Honey never spoils."])[0].tolist())
    assert model.get_query_embedding("honey") == pytest.approx(
        embedder.encode(["honey"])[0].tolist()
    )
    batch = model.get_text_embedding_batch(["a b", "c d"])
    assert [len(v) for v in batch] == [64, 64]


def test_mini_lm_embedding_shares_the_attributors_embedder(
    hashing_attributor: Attributor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given an Attributor, or nothing (the shared default), it encodes with that embedder and
    cache: the model is not loaded a second time."""
    assert MiniLMEmbedding(hashing_attributor).embedder is hashing_attributor.embedder
    monkeypatch.setattr(engine, "_default", hashing_attributor)  # the default, already built
    model = MiniLMEmbedding()
    assert model.embedder is hashing_attributor.embedder
    cache = hashing_attributor.embedder
    assert isinstance(cache, CachedEmbedder)
    model.get_text_embedding("Honey never spoils.")
    hits = cache.hits
    hashing_attributor.attribute("Honey never spoils.", ["Bees make honey."])
    assert cache.hits == hits + 1  # the answer sentence retrieval already encoded


# --- streamed answers: each sentence is encoded as soon as it is complete -----------------

BRIDGE_TEXTS = [
    "The bridge opened in 1932. It spans the harbour.",
    "Tourists climb the arch. The arch is painted grey.",
]
BRIDGE_SOURCE_SENTENCES = [
    "The bridge opened in 1932.",
    "It spans the harbour.",
    "Tourists climb the arch.",
    "The arch is painted grey.",
]
BRIDGE_SENTENCES = [
    "The bridge opened in 1932 after years of work.",
    "Visitors can climb its arch today.",
    "Its steel arch is painted grey.",
    "Nobody knows where the colour came from.",
]
# What is embedded while streaming: a sentence opening with a pronoun ("Its ...") also
# after the one before it.
BRIDGE_EMBEDDED_DURING = [*BRIDGE_SENTENCES[:3], f"{BRIDGE_SENTENCES[1]} {BRIDGE_SENTENCES[2]}"]
BRIDGE_QUESTION = "When did the harbour bridge open to visitors?"


class PacedLLM(CustomLLM):
    """Gives the BRIDGE_SENTENCES answer, streamed word by word at the pace of a real LLM.

    From the second word of each sentence on it waits for `pace(previous sentence)`: at 20-100
    tokens a second, a real LLM leaves far more time than encoding one sentence takes.
    """

    pace: Any = None

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=" ".join(BRIDGE_SENTENCES))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        def gen() -> CompletionResponseGen:
            text = ""
            for j, sentence in enumerate(BRIDGE_SENTENCES):
                for i, word in enumerate(sentence.split(" ")):
                    if j > 0 and i == 1 and self.pace is not None:
                        self.pace(BRIDGE_SENTENCES[j - 1])
                    delta = word if not text else " " + word
                    text += delta
                    yield CompletionResponse(text=text, delta=delta)

        return gen()


@pytest.fixture(scope="module")
def bridge_index() -> VectorStoreIndex:
    return VectorStoreIndex.from_documents(
        [Document(text=t) for t in BRIDGE_TEXTS], embed_model=MiniLMEmbedding(HashingEmbedder())
    )


def _assert_only_last_sentence_left(embedder: RecordingEmbedder) -> None:
    """The nodes, then the finished answer sentences, were encoded during the stream; the
    final attribution encoded only the last sentence, and nothing was encoded twice."""
    first, *during, last = embedder.batches
    assert sorted(first) == sorted(BRIDGE_SOURCE_SENTENCES)
    assert last == BRIDGE_SENTENCES[-1:]
    assert sorted(t for batch in during for t in batch) == sorted(BRIDGE_EMBEDDED_DURING)


def _without_timings(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "timings"}


def _one_shot_payload(engine: Any, method: str) -> dict[str, Any]:
    """What the non-streaming path attaches for the same answer and nodes."""
    instrument(Attributor(HashingEmbedder()))
    try:
        response = getattr(engine, method)(BRIDGE_QUESTION)
    finally:
        uninstrument()
    return _without_timings(response.metadata["attribution"])


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_streaming_query_encodes_sentences_as_they_complete(
    bridge_index: VectorStoreIndex, mode: str
) -> None:
    """Streaming query: only the last sentence is left at the end; the result equals query()'s."""
    embedder = RecordingEmbedder()
    paced = PacedLLM(pace=embedder.wait_for)
    engine = bridge_index.as_query_engine(llm=paced, similarity_top_k=2, streaming=True)
    instrument(Attributor(embedder))
    try:
        if mode == "sync":
            response: Any = engine.query(BRIDGE_QUESTION)
            text = "".join(response.response_gen)
        else:
            response = await engine.aquery(BRIDGE_QUESTION)
            text = "".join([t async for t in response.async_response_gen()])
    finally:
        uninstrument()
    assert text == " ".join(BRIDGE_SENTENCES)
    _assert_only_last_sentence_left(embedder)
    plain = bridge_index.as_query_engine(llm=PacedLLM(), similarity_top_k=2)
    assert _without_timings(response.metadata["attribution"]) == _one_shot_payload(plain, "query")
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_streaming_chat_encodes_sentences_as_they_complete(
    bridge_index: VectorStoreIndex, mode: str
) -> None:
    """stream_chat / astream_chat: the same, fed from the chat's delta events."""
    embedder = RecordingEmbedder()
    instrument(Attributor(embedder))
    try:
        chat_engine = _chat_engine(bridge_index, PacedLLM(pace=embedder.wait_for))
        if mode == "sync":
            streamed: Any = chat_engine.stream_chat(BRIDGE_QUESTION)
            text = "".join(streamed.response_gen)
        else:
            streamed = await chat_engine.astream_chat(BRIDGE_QUESTION)
            text = "".join([t async for t in streamed.async_response_gen()])
    finally:
        uninstrument()
    assert text == " ".join(BRIDGE_SENTENCES)
    _assert_only_last_sentence_left(embedder)
    one_shot = _one_shot_payload(_chat_engine(bridge_index, PacedLLM()), "chat")
    assert _without_timings(streamed.metadata["attribution"]) == one_shot
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


@pytest.mark.slow
def test_real_model_cites_the_paraphrased_node(real_attributor: Attributor) -> None:
    """With MiniLM for retrieval and attribution, a paraphrased answer cites the right node."""
    index = VectorStoreIndex.from_documents(
        topic_documents(), embed_model=MiniLMEmbedding(real_attributor.embedder)
    )
    answer = "They are flightless birds found south of the equator."
    instrument(real_attributor)
    try:
        response = index.as_query_engine(llm=FixedLLM(answer=answer), similarity_top_k=3).query(
            QUESTIONS["penguins"]
        )
    finally:
        uninstrument()
    assert response.source_nodes[0].node.metadata["file_name"] == "penguins.txt"
    payload = response.metadata["attribution"]
    assert payload["answer_sentences"][0]["supported"] is True
    assert payload["citations"][0]["extras"]["metadata"]["file_name"] == "penguins.txt"


async def test_otel_export_lands_on_the_callers_trace(
    index: VectorStoreIndex, llm: EchoContextLLM, hashing_attributor: Attributor
) -> None:
    """With the OTel exporter, every mode's attribution lands on the trace of the caller's span."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from rag_attrib.export.otel import OTelExporter

    spans = InMemorySpanExporter()
    provider = TracerProvider()  # never installed globally
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("test")
    instrument(hashing_attributor, exporters=[OTelExporter(tracer=tracer)])
    expected: dict[int, str] = {}
    try:
        engine = index.as_query_engine(llm=llm)
        streaming = index.as_query_engine(llm=llm, streaming=True)
        chat = _chat_engine(index, llm)
        with tracer.start_as_current_span("query") as span:
            response = engine.query(QUESTIONS["copper"])
            expected[span.get_span_context().trace_id] = _node_ids(response)[0]
        with tracer.start_as_current_span("aquery") as span:
            response = await engine.aquery(QUESTIONS["honey"])
            expected[span.get_span_context().trace_id] = _node_ids(response)[0]
        with tracer.start_as_current_span("stream") as span:
            streamed = streaming.query(QUESTIONS["saturn"])
            "".join(streamed.response_gen)
            expected[span.get_span_context().trace_id] = _node_ids(streamed)[0]
        with tracer.start_as_current_span("stream_chat") as span:
            chatted = chat.stream_chat(QUESTIONS["octopus"])
            "".join(chatted.response_gen)
            expected[span.get_span_context().trace_id] = _node_ids(chatted)[0]
    finally:
        uninstrument()
    annotated = {
        s.context.trace_id: s.attributes["retrieval.documents.0.document.id"]
        for s in spans.get_finished_spans()
        if s.attributes and "retrieval.documents.0.document.id" in s.attributes
    }
    assert annotated == expected


def test_missing_llama_index_names_the_extra() -> None:
    """Without llama-index-core, importing the adapter says which extra to install."""
    code = (
        "import sys\n"
        "sys.modules['llama_index.core.base.base_query_engine'] = None\n"
        "try:\n"
        "    import rag_attrib.integrations.llamaindex\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.startswith("MissingDependencyError")
    assert "pip install 'rag-attrib[llamaindex]'" in out


def test_public_names_and_paths_are_pinned() -> None:
    """The package keeps the names and import paths of the former single module."""
    import inspect

    import rag_attrib.integrations.llamaindex as li

    assert li.__all__ == [
        "ATTRIBUTION_KEY",
        "AttributionEvent",
        "MiniLMEmbedding",
        "attribute_response",
        "instrument",
        "uninstrument",
    ]
    assert li.ATTRIBUTION_KEY == "attribution"
    assert list(inspect.signature(li.instrument).parameters) == [
        "attributor",
        "exporters",
        "timeout",
        "repair_citations",
        "citation_numbering",
        "exact_support",
    ]
    assert list(inspect.signature(li.attribute_response).parameters) == [
        "response",
        "attributor",
        "exporters",
        "question",
        "timeout",
        "repair_citations",
        "citation_numbering",
        "exact_support",
    ]


class CitingLLM(EchoContextLLM):
    """Answers with Source 1's first line but cites the last source, as a careless LLM would."""

    def _answer(self, prompt: str) -> str:
        found = re.findall(r"^Source (\d+):\n(.*)$", prompt, flags=re.MULTILINE)
        if not found:
            return "I do not know."
        # the prompt's worked example has its own "Source 1:"; the real sources come last
        found = found[max(k for k, (n, _) in enumerate(found) if n == "1") :]
        return f"{found[0][1].strip().rstrip('.')} [{found[-1][0]}]."


def test_citation_query_engine_markers_are_checked(
    index: VectorStoreIndex, recorder: Recorder
) -> None:
    """CitationQueryEngine: the answer's [n] follow its "Source n:" labels (1-based); a marker
    on the wrong node is named in citation_check with the node that backs the claim."""
    from llama_index.core.query_engine import CitationQueryEngine

    engine = CitationQueryEngine.from_args(index, llm=CitingLLM(), similarity_top_k=2)
    response = engine.query(QUESTIONS["penguins"])
    assert response.response.endswith("[2].")
    check = response.metadata["attribution"]["citation_check"]
    (marker,) = check["markers"]
    nodes = [n.node.node_id for n in response.source_nodes]
    assert check["numbering"] == "1-based"
    assert (marker["source_id"], marker["verdict"]) == (nodes[1], "wrong_source")
    assert marker["suggested_source_id"] == nodes[0]
