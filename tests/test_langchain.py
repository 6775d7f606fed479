"""LangChain integration: real langchain-core chains, retrievers and vector stores; only the LLM
is a stand-in (a chat model that answers from the context it is given)."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any

import pytest

pytest.importorskip("langchain_core")

from _fakes import RecordingEmbedder
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    BaseCallbackHandler,
    CallbackManagerForLLMRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.globals import get_llm_cache, set_llm_cache
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import (
    Runnable,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
)
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langchain_core.vectorstores import InMemoryVectorStore
from pydantic import PrivateAttr

from rag_attrib import AttributionResult, Attributor
from rag_attrib.convert import attribution_payload
from rag_attrib.errors import ConfigError
from rag_attrib.integrations.langchain import (
    AttributionCallbackHandler,
    MiniLMEmbeddings,
    attribution_callback,
    documents_to_sources,
    with_attribution,
)
from rag_attrib.testing import FailingEmbedder, HashingEmbedder

CITIES = [
    "Oslo",
    "Lima",
    "Cairo",
    "Quito",
    "Dakar",
    "Hanoi",
    "Perth",
    "Bergen",
    "Porto",
    "Turin",
    "Krakow",
    "Riga",
    "Tallinn",
    "Vilnius",
    "Minsk",
    "Kyiv",
    "Odessa",
    "Tbilisi",
    "Yerevan",
    "Baku",
    "Tashkent",
    "Almaty",
    "Bishkek",
    "Kabul",
    "Lahore",
    "Dhaka",
    "Colombo",
    "Yangon",
    "Manila",
    "Jakarta",
    "Surabaya",
    "Darwin",
    "Hobart",
    "Auckland",
    "Suva",
    "Apia",
    "Honolulu",
    "Anchorage",
    "Juneau",
    "Seattle",
    "Denver",
    "Austin",
    "Memphis",
    "Boston",
    "Halifax",
    "Quebec",
    "Havana",
    "Bogota",
    "Caracas",
    "Recife",
]
DOCS = [
    Document(
        id=f"doc-{city.lower()}",
        page_content=(
            f"The {city} harbour museum was founded in {1800 + 3 * i}. "
            f"Its collection holds {120 + 7 * i} ship models."
        ),
        metadata={"title": f"{city} harbour museum", "city": city},
    )
    for i, city in enumerate(CITIES)
]
_WORD = re.compile(r"\w+")


def question(city: str) -> str:
    return f"When was the {city} harbour museum founded?"


class EchoContextChatModel(BaseChatModel):
    """Answers with the context line sharing most words with the question (a tiny 'reader')."""

    delay: float = 0.0
    _calls: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "echo-context"

    @property
    def calls(self) -> int:
        return self._calls

    def _answer(self, messages: list[BaseMessage]) -> str:
        with self._lock:
            self._calls += 1
        system = next((str(m.content) for m in messages if m.type == "system"), "")
        human = next((str(m.content) for m in reversed(messages) if m.type == "human"), "")
        lines = [ln for ln in system.split("Context:", 1)[-1].splitlines() if ln.strip()]
        if not lines:
            return "I could not find that in the documents."
        asked = set(_WORD.findall(human.lower()))
        return max(lines, key=lambda ln: len(asked & set(_WORD.findall(ln.lower()))))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = AIMessage(content=self._answer(messages))
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self._answer(messages)
        await asyncio.sleep(self.delay * (len(text) % 5))  # uneven, so calls interleave
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for token in re.findall(r"\S+\s*", self._answer(messages)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
            if run_manager:
                run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for token in re.findall(r"\S+\s*", self._answer(messages)):
            await asyncio.sleep(self.delay)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
            if run_manager:
                await run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk


class StaticRetriever(BaseRetriever):
    """A retriever that returns the same documents for every query."""

    docs: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return list(self.docs)


class RecordingExporter:
    """Keeps every exported result with its context."""

    def __init__(self) -> None:
        self.calls: list[tuple[AttributionResult, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def export(self, result: AttributionResult, context: Any) -> None:
        with self._lock:
            self.calls.append((result, dict(context)))


class CapturingExporter(RecordingExporter):
    """Also reads the caller's context when a call starts, as the OpenTelemetry exporter does."""

    def capture(self) -> dict[str, Any]:
        return {"caller": CALLER.get()}


CALLER: ContextVar[str] = ContextVar("caller", default="nobody")


class BrokenExporter:
    def export(self, result: AttributionResult, context: Any) -> None:
        raise RuntimeError("exporter down")


PROMPT = ChatPromptTemplate.from_messages(
    [("system", "Answer from the context.\nContext:\n{context}"), ("human", "{question}")]
)


def format_docs(docs: list[Document]) -> str:
    return "\n".join(d.page_content for d in docs)


def rag_chain(retriever: Runnable[Any, Any], model: BaseChatModel) -> Runnable[Any, Any]:
    """The usual LCEL RAG chain: retriever | prompt | chat model."""
    return {"context": retriever | format_docs, "question": RunnablePassthrough()} | PROMPT | model


@pytest.fixture
def retriever(hashing_attributor: Attributor) -> Runnable[Any, Any]:
    store = InMemoryVectorStore(MiniLMEmbeddings(hashing_attributor))
    store.add_documents(DOCS)
    return store.as_retriever(search_kwargs={"k": 2})


@pytest.fixture
def model() -> EchoContextChatModel:
    return EchoContextChatModel()


@pytest.fixture
def chain(retriever: Runnable[Any, Any], model: EchoContextChatModel) -> Runnable[Any, Any]:
    return rag_chain(retriever, model)


@pytest.fixture
def llm_cache() -> Iterator[InMemoryCache]:
    previous = get_llm_cache()
    cache = InMemoryCache()
    set_llm_cache(cache)
    yield cache
    set_llm_cache(previous)


def cited_ids(payload: dict[str, Any]) -> set[str]:
    return {c["extras"]["source_id"] for c in payload["citations"]}


def retrieved_ids(retriever: Runnable[Any, Any], q: str) -> set[str]:
    return {str(d.id) for d in retriever.invoke(q)}


def check_own_citations(
    retriever: Runnable[Any, Any], q: str, answer: str, payload: dict[str, Any]
) -> None:
    """The payload is about this answer and cites only documents retrieved for this question."""
    assert payload["answer"] == answer
    assert payload["error"] is None
    cited = cited_ids(payload)
    assert cited, f"no citations for {q!r}"
    assert cited <= retrieved_ids(retriever, q)


# --- the callback handler ---------------------------------------------------------------


def test_handler_invoke_attaches_citations(chain, retriever, hashing_attributor):
    """invoke: the returned AIMessage carries the payload, which cites the right document."""
    handler = AttributionCallbackHandler(hashing_attributor)
    out = chain.invoke(question("Oslo"), config={"callbacks": [handler]})
    payload = out.response_metadata["attribution"]
    check_own_citations(retriever, question("Oslo"), out.content, payload)
    assert "doc-oslo" in cited_ids(payload)
    result = handler.last_result
    assert result is not None and result.question == question("Oslo")
    assert payload == attribution_payload(result)
    citation = payload["citations"][0]
    assert citation["type"] == "citation"
    assert out.content[citation["start_index"] : citation["end_index"]] in out.content
    source = next(s for s in result.sources if s.id == citation["extras"]["source_id"])
    extras = citation["extras"]
    assert source.text[extras["source_start"] : extras["source_end"]] == citation["cited_text"]
    assert source.metadata["title"].endswith("harbour museum")
    assert handler.active_runs == 0


async def test_handler_ainvoke(chain, retriever, hashing_attributor):
    """ainvoke: same as invoke, with the handler running off the event loop."""
    handler = AttributionCallbackHandler(hashing_attributor)
    out = await chain.ainvoke(question("Lima"), config={"callbacks": [handler]})
    check_own_citations(
        retriever, question("Lima"), out.content, out.response_metadata["attribution"]
    )
    assert "doc-lima" in cited_ids(out.response_metadata["attribution"])
    assert handler.active_runs == 0


def test_handler_batch_keyed_by_root_run_id(chain, retriever, hashing_attributor):
    """batch: each output gets its own citations, and results are keyed by root run id."""
    handler = AttributionCallbackHandler(hashing_attributor)
    cities = CITIES[:6]
    run_ids = [uuid.uuid4() for _ in cities]
    outs = chain.batch(
        [question(c) for c in cities],
        config=[{"callbacks": [handler], "run_id": rid} for rid in run_ids],
    )
    for city, rid, out in zip(cities, run_ids, outs, strict=True):
        check_own_citations(
            retriever, question(city), out.content, out.response_metadata["attribution"]
        )
        assert handler.results[rid].answer == out.content
        assert city in out.content
    assert len(handler.results) == len(cities)
    assert handler.active_runs == 0


async def test_handler_abatch_50_concurrent_calls_never_mix(retriever, hashing_attributor):
    """50 concurrent abatch calls, distinct questions and answers: each cites only its own docs."""
    model = EchoContextChatModel(delay=0.002)
    chain = rag_chain(retriever, model)
    handler = AttributionCallbackHandler(hashing_attributor)
    questions = [question(c) for c in CITIES]
    run_ids = [uuid.uuid4() for _ in CITIES]
    outs = await chain.abatch(
        questions, config=[{"callbacks": [handler], "run_id": rid} for rid in run_ids]
    )
    assert len({o.content for o in outs}) == len(CITIES)  # distinct answers
    for city, q, rid, out in zip(CITIES, questions, run_ids, outs, strict=True):
        payload = out.response_metadata["attribution"]
        check_own_citations(retriever, q, out.content, payload)
        assert f"doc-{city.lower()}" in cited_ids(payload)
        assert handler.results[rid].question == q
        assert handler.results[rid].answer == out.content
    assert handler.active_runs == 0


def test_handler_two_retrievers_deduplicates(retriever, model, hashing_attributor):
    """Multi-query: documents from both retrievers are cited, a document found twice once."""
    rewrite = RunnableLambda(lambda q: q.replace("founded", "ship models collection"))
    context = (
        RunnableParallel(a=retriever, b=rewrite | retriever)
        | RunnableLambda(lambda d: d["a"] + d["b"])
        | format_docs
    )
    chain = {"context": context, "question": RunnablePassthrough()} | PROMPT | model
    handler = AttributionCallbackHandler(hashing_attributor)
    q = question("Porto")
    out = chain.invoke(q, config={"callbacks": [handler]})
    ids_a = retrieved_ids(retriever, q)
    ids_b = retrieved_ids(retriever, rewrite.invoke(q))
    assert ids_a & ids_b, "the two queries should overlap for this test to mean anything"
    result = handler.last_result
    assert result is not None
    assert sorted(s.id for s in result.sources) == sorted(ids_a | ids_b)
    assert cited_ids(out.response_metadata["attribution"]) <= ids_a | ids_b


def test_same_handler_in_with_config_and_call_config(chain, hashing_attributor):
    """A handler given twice (with_config and call config) yields one result and one export."""
    exporter = RecordingExporter()
    handler = AttributionCallbackHandler(hashing_attributor, exporters=[exporter])
    run_id = uuid.uuid4()
    out = chain.with_config(callbacks=[handler]).invoke(
        question("Cairo"), config={"callbacks": [handler], "run_id": run_id}
    )
    assert list(handler.results) == [run_id]
    assert len(exporter.calls) == 1
    assert out.response_metadata["attribution"]["answer"] == out.content
    assert handler.active_runs == 0


def test_handler_exports_with_context(chain, hashing_attributor):
    """Exporters get the result and a context naming the framework and the root run id."""
    exporter = RecordingExporter()
    handler = AttributionCallbackHandler(hashing_attributor, exporters=[exporter])
    run_id = uuid.uuid4()
    chain.invoke(
        question("Quito"),
        config={
            "callbacks": [handler],
            "run_id": run_id,
            "tags": ["rag"],
            "metadata": {"user": "u1"},
        },
    )
    ((result, context),) = exporter.calls
    assert result is handler.results[run_id]
    assert context["framework"] == "langchain"
    assert context["run_id"] == str(run_id)
    assert "rag" in context["tags"] and context["metadata"]["user"] == "u1"


async def test_exporter_context_is_captured_when_the_call_starts(chain, hashing_attributor):
    """What an exporter captures at call start reaches it with the result (handler, wrapper)."""
    exporter = CapturingExporter()
    handler = AttributionCallbackHandler(hashing_attributor, exporters=[exporter])
    CALLER.set("handler-call")
    await chain.ainvoke(question("Oslo"), config={"callbacks": [handler]})
    CALLER.set("wrapper-call")
    cited = with_attribution(chain, hashing_attributor, exporters=[exporter])
    [c async for c in cited.astream(question("Lima"))]
    assert [ctx["caller"] for _, ctx in exporter.calls] == ["handler-call", "wrapper-call"]
    assert all(ctx["framework"] == "langchain" for _, ctx in exporter.calls)


def test_broken_exporter_is_reported_not_raised(chain, hashing_attributor, caplog):
    """An exporter that raises leaves the output intact and is named in the result's error."""
    handler = AttributionCallbackHandler(hashing_attributor, exporters=[BrokenExporter()])
    with caplog.at_level(logging.WARNING):
        out = chain.invoke(question("Dakar"), config={"callbacks": [handler]})
    assert "Dakar" in out.content
    result = handler.last_result
    assert result is not None and "exporter down" in (result.error or "")
    assert result.answer_sentences[0].citations  # the attribution itself is still there


def test_handler_results_are_bounded(chain, hashing_attributor):
    """Only the newest max_results results are kept; nothing else is retained."""
    handler = AttributionCallbackHandler(hashing_attributor, max_results=2)
    run_ids = [uuid.uuid4() for _ in range(4)]
    for city, rid in zip(CITIES[:4], run_ids, strict=True):
        chain.invoke(question(city), config={"callbacks": [handler], "run_id": rid})
    assert list(handler.results) == run_ids[-2:]
    assert handler.last_result is handler.results[run_ids[-1]]
    assert handler.active_runs == 0
    with pytest.raises(ConfigError, match="max_results"):
        AttributionCallbackHandler(hashing_attributor, max_results=0)


def test_failing_embedder_keeps_output_and_reports_error(retriever, hashing_attributor, caplog):
    """An embedder that raises: the chain's answer is unchanged, the error is on the result."""
    plain = rag_chain(retriever, EchoContextChatModel()).invoke(question("Hanoi"))
    handler = AttributionCallbackHandler(Attributor(FailingEmbedder()))
    with caplog.at_level(logging.WARNING, logger="rag_attrib"):
        out = rag_chain(retriever, EchoContextChatModel()).invoke(
            question("Hanoi"), config={"callbacks": [handler]}
        )
    assert out.content == plain.content
    result = handler.last_result
    assert result is not None and "embedder failed on purpose" in (result.error or "")
    assert "embedder failed on purpose" in out.response_metadata["attribution"]["error"]
    assert any("attribution failed" in r.getMessage() for r in caplog.records)


def test_zero_documents_keeps_output_and_reports_error(model, hashing_attributor):
    """A retriever that finds nothing: the answer is unchanged, the result says why."""
    empty = InMemoryVectorStore(MiniLMEmbeddings(hashing_attributor)).as_retriever()
    handler = AttributionCallbackHandler(hashing_attributor)
    out = rag_chain(empty, model).invoke(question("Perth"), config={"callbacks": [handler]})
    assert out.content == "I could not find that in the documents."
    result = handler.last_result
    assert result is not None and "no documents" in (result.error or "")
    assert result.sources == () and not any(s.supported for s in result.answer_sentences)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_handler_does_not_poison_llm_cache(mode, retriever, hashing_attributor, llm_cache):
    """Attaching to the returned message leaves the cache clean: later hits carry nothing stale."""
    model = EchoContextChatModel()
    chain = rag_chain(retriever, model)

    async def call(handler: BaseCallbackHandler | None) -> AIMessage:
        config = {"callbacks": [handler]} if handler else {}
        if mode == "sync":
            return chain.invoke(question("Bergen"), config=config)
        return await chain.ainvoke(question("Bergen"), config=config)

    first_handler = AttributionCallbackHandler(hashing_attributor)
    first = await call(first_handler)
    assert "attribution" in first.response_metadata
    hit = await call(None)
    assert model.calls == 1, "the second call should be a cache hit"
    assert "attribution" not in hit.response_metadata
    second_handler = AttributionCallbackHandler(hashing_attributor)
    second = await call(second_handler)
    assert model.calls == 1
    assert second is not first
    assert second.response_metadata["attribution"] == attribution_payload(
        second_handler.last_result
    )
    assert "attribution" not in (await call(None)).response_metadata
    assert first.response_metadata["attribution"] == attribution_payload(first_handler.last_result)


def test_handler_stream_full_and_early_break(chain, hashing_attributor):
    """A consumed stream is attributed; a stream closed early records nothing and leaks nothing."""
    handler = AttributionCallbackHandler(hashing_attributor)
    chunks = list(chain.stream(question("Turin"), config={"callbacks": [handler]}))
    text = "".join(str(c.content) for c in chunks)
    assert handler.last_result is not None and handler.last_result.answer == text

    early = AttributionCallbackHandler(hashing_attributor)
    stream = chain.stream(question("Riga"), config={"callbacks": [early]})
    next(stream)
    stream.close()
    gc.collect()
    assert early.results == {} and early.active_runs == 0


async def test_handler_astream_early_break(chain, hashing_attributor):
    """An async stream closed early records nothing and leaks nothing."""
    handler = AttributionCallbackHandler(hashing_attributor)
    stream = chain.astream(question("Riga"), config={"callbacks": [handler]})
    await stream.__anext__()
    await stream.aclose()
    await asyncio.sleep(0.05)
    assert handler.results == {} and handler.active_runs == 0


def test_attribution_callback_context_manager(chain, hashing_attributor):
    """Runs inside the with-block are attributed without passing callbacks; runs after are not."""
    with attribution_callback(hashing_attributor) as handler:
        out = chain.invoke(question("Krakow"))
    assert handler.last_result is not None and handler.last_result.answer == out.content
    assert "attribution" in out.response_metadata
    chain.invoke(question("Oslo"))
    assert len(handler.results) == 1


# --- with_attribution --------------------------------------------------------------------


def test_with_attribution_message_chain(chain, retriever, hashing_attributor, llm_cache):
    """A chat-model chain returns a copy carrying the attribution; the cache stays clean."""
    exporter = RecordingExporter()
    cited = with_attribution(chain, hashing_attributor, exporters=[exporter])
    out = cited.invoke(question("Tallinn"))
    assert isinstance(out, AIMessage)
    check_own_citations(
        retriever, question("Tallinn"), out.content, out.response_metadata["attribution"]
    )
    assert exporter.calls[0][1]["framework"] == "langchain"
    assert "attribution" not in chain.invoke(question("Tallinn")).response_metadata


def test_with_attribution_str_chain(chain, retriever, hashing_attributor):
    """A StrOutputParser chain returns {'answer': str, 'attribution': ...}."""
    out = with_attribution(chain | StrOutputParser(), hashing_attributor).invoke(
        question("Vilnius")
    )
    assert set(out) == {"answer", "attribution"} and type(out["answer"]) is str
    check_own_citations(retriever, question("Vilnius"), out["answer"], out["attribution"])


def test_with_attribution_dict_chain(retriever, model, hashing_attributor):
    """A dict-producing chain keeps its keys and gains 'attribution'."""
    chain = RunnableParallel(context=retriever, question=RunnablePassthrough()).assign(
        answer=(lambda d: {"context": format_docs(d["context"]), "question": d["question"]})
        | PROMPT
        | model
        | StrOutputParser()
    )
    out = with_attribution(chain, hashing_attributor).invoke(question("Minsk"))
    assert set(out) == {"context", "question", "answer", "attribution"}
    check_own_citations(retriever, question("Minsk"), out["answer"], out["attribution"])


async def test_with_attribution_ainvoke_batch_abatch(chain, retriever, hashing_attributor):
    """ainvoke, batch and abatch each attach the attribution of their own call."""
    cited = with_attribution(chain | StrOutputParser(), hashing_attributor)
    out = await cited.ainvoke(question("Kyiv"))
    check_own_citations(retriever, question("Kyiv"), out["answer"], out["attribution"])
    cities = CITIES[10:16]
    for city, out in zip(cities, cited.batch([question(c) for c in cities]), strict=True):
        check_own_citations(retriever, question(city), out["answer"], out["attribution"])
        assert city in out["answer"]
    cities = CITIES[20:40]
    outs = await cited.abatch([question(c) for c in cities])
    for city, out in zip(cities, outs, strict=True):
        check_own_citations(retriever, question(city), out["answer"], out["attribution"])
        assert f"doc-{city.lower()}" in cited_ids(out["attribution"])


def test_with_attribution_stream_ends_with_attribution_chunk(chain, retriever, hashing_attributor):
    """stream: chunks pass through, then an empty AIMessageChunk carries the attribution."""
    chunks = list(with_attribution(chain, hashing_attributor).stream(question("Odessa")))
    last = chunks[-1]
    assert isinstance(last, AIMessageChunk) and last.content == ""
    assert not any("attribution" in c.response_metadata for c in chunks[:-1])
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    check_own_citations(
        retriever, question("Odessa"), total.content, total.response_metadata["attribution"]
    )


async def test_with_attribution_astream_and_events(chain, retriever, hashing_attributor):
    """astream ends with the attribution chunk; astream_events shows an 'attribution' event."""
    cited = with_attribution(chain, hashing_attributor)
    chunks = [c async for c in cited.astream(question("Tbilisi"))]
    text = "".join(str(c.content) for c in chunks)
    check_own_citations(
        retriever, question("Tbilisi"), text, chunks[-1].response_metadata["attribution"]
    )
    events = [
        e
        async for e in cited.astream_events(question("Tbilisi"), version="v2")
        if e["event"] == "on_custom_event"
    ]
    assert [e["name"] for e in events] == ["attribution"]
    assert events[0]["data"]["answer"] == text


def test_with_attribution_stream_early_break_attaches_nothing(chain, hashing_attributor):
    """Breaking out of a stream early exports and attaches nothing."""
    exporter = RecordingExporter()
    stream = with_attribution(chain, hashing_attributor, exporters=[exporter]).stream(
        question("Yerevan")
    )
    first = next(stream)
    stream.close()
    assert "attribution" not in first.response_metadata
    assert exporter.calls == []


async def test_with_attribution_astream_early_break_attaches_nothing(chain, hashing_attributor):
    """Breaking out of an async stream early exports and attaches nothing."""
    exporter = RecordingExporter()
    cited = with_attribution(chain, hashing_attributor, exporters=[exporter])
    async for chunk in cited.astream(question("Baku")):
        assert "attribution" not in chunk.response_metadata
        break
    await asyncio.sleep(0.05)
    assert exporter.calls == []


def test_with_attribution_text_stream_and_tracer_runs(chain, hashing_attributor):
    """Text streams stay joinable; run-based tracers see the payload in run outputs."""
    cited = with_attribution(chain | StrOutputParser(), hashing_attributor)
    tracer = RunCollectorCallbackHandler()
    text = "".join(cited.stream(question("Almaty"), config={"callbacks": [tracer]}))
    assert "Almaty" in text
    (root,) = tracer.traced_runs
    (child,) = [r for r in root.child_runs if r.name == "attribution"]
    assert child.outputs["attribution"]["answer"] == text

    tracer = RunCollectorCallbackHandler()
    out = cited.invoke(question("Almaty"), config={"callbacks": [tracer]})
    (root,) = tracer.traced_runs
    assert root.name == "with_attribution"
    assert root.outputs["attribution"] == out["attribution"]


def test_with_attribution_failing_embedder_and_empty_retriever(retriever, hashing_attributor):
    """Engine failure or no documents: the answer is returned, the error is in the payload."""
    chain = rag_chain(retriever, EchoContextChatModel()) | StrOutputParser()
    out = with_attribution(chain, Attributor(FailingEmbedder())).invoke(question("Kabul"))
    assert "Kabul" in out["answer"]
    assert "embedder failed on purpose" in out["attribution"]["error"]

    empty = StaticRetriever(docs=[])
    chain = rag_chain(empty, EchoContextChatModel()) | StrOutputParser()
    out = with_attribution(chain, hashing_attributor).invoke(question("Kabul"))
    assert out["answer"] == "I could not find that in the documents."
    assert "no documents" in out["attribution"]["error"]


# --- streamed answers: each sentence is encoded as soon as it is complete -----------------

BRIDGE_DOCS = [
    Document(id="bridge", page_content="The bridge opened in 1932. It spans the harbour."),
    Document(id="arch", page_content="Tourists climb the arch. The arch is painted grey."),
]
BRIDGE_ANSWER = (
    "The bridge opened in 1932 after years of work. Visitors can climb its arch today. "
    "Its steel arch is painted grey. Nobody knows where the colour came from."
)
BRIDGE_SENTENCES = [
    "The bridge opened in 1932 after years of work.",
    "Visitors can climb its arch today.",
    "Its steel arch is painted grey.",
    "Nobody knows where the colour came from.",
]
# What is embedded while streaming: a sentence opening with a pronoun ("Its ...") also
# after the one before it.
BRIDGE_EMBEDDED_DURING = [*BRIDGE_SENTENCES[:3], f"{BRIDGE_SENTENCES[1]} {BRIDGE_SENTENCES[2]}"]
BRIDGE_SOURCE_SENTENCES = [
    "The bridge opened in 1932.",
    "It spans the harbour.",
    "Tourists climb the arch.",
    "The arch is painted grey.",
]
BRIDGE_QUESTION = "When did the harbour bridge open to visitors?"


class PacedChatModel(BaseChatModel):
    """Streams BRIDGE_ANSWER word by word, at the pace of a real LLM.

    From the second word of each sentence on it waits for `pace(previous sentence)`: at 20-100
    tokens a second, a real LLM leaves far more time than encoding one sentence takes. With
    `pace=None` the words come in one burst.
    """

    pace: Any = None

    @property
    def _llm_type(self) -> str:
        return "paced"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=BRIDGE_ANSWER))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for j, sentence in enumerate(BRIDGE_SENTENCES):
            words = sentence.split(" ")
            for i, word in enumerate(words):
                if j > 0 and i == 1 and self.pace is not None:
                    self.pace(BRIDGE_SENTENCES[j - 1])
                end = j == len(BRIDGE_SENTENCES) - 1 and i == len(words) - 1
                yield ChatGenerationChunk(
                    message=AIMessageChunk(content=word + ("" if end else " "))
                )


def bridge_chain(shape: str = "message", pace: Any = None) -> Runnable[Any, Any]:
    """retriever | prompt | a chat model streaming BRIDGE_ANSWER word by word, as `shape`."""
    chain = rag_chain(StaticRetriever(docs=BRIDGE_DOCS), PacedChatModel(pace=pace))
    if shape == "text":
        return chain | StrOutputParser()
    if shape == "dict":
        return RunnableParallel(answer=chain | StrOutputParser(), question=RunnablePassthrough())
    return chain


def assert_only_last_sentence_left(embedder: RecordingEmbedder) -> None:
    """The sources, then the finished answer sentences, were encoded during the stream; the
    final attribution encoded only the last sentence, and nothing was encoded twice."""
    first, *during, last = embedder.batches
    assert first == BRIDGE_SOURCE_SENTENCES
    assert last == BRIDGE_SENTENCES[-1:]
    assert sorted(t for batch in during for t in batch) == sorted(BRIDGE_EMBEDDED_DURING)


def without_timings(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "timings"}


def one_shot_payload() -> dict[str, Any]:
    """What the non-streaming path attaches for the same answer and documents."""
    out = with_attribution(bridge_chain(), Attributor(HashingEmbedder())).invoke(BRIDGE_QUESTION)
    return without_timings(out.response_metadata["attribution"])


@pytest.mark.parametrize("shape", ["message", "text", "dict"])
def test_with_attribution_stream_encodes_sentences_as_they_complete(shape):
    """stream(): only the last sentence is left when the stream ends; the result equals invoke's."""
    embedder = RecordingEmbedder()
    cited = with_attribution(bridge_chain(shape, embedder.wait_for), Attributor(embedder))
    chunks = list(cited.stream(BRIDGE_QUESTION))
    assert_only_last_sentence_left(embedder)
    if shape == "message":
        payload = chunks[-1].response_metadata["attribution"]
        assert "".join(str(c.content) for c in chunks) == BRIDGE_ANSWER
    elif shape == "dict":
        payload = chunks[-1]["attribution"]
    else:
        assert "".join(chunks) == BRIDGE_ANSWER  # text streams get no extra chunk
        return
    assert without_timings(payload) == one_shot_payload()


async def test_with_attribution_astream_encodes_sentences_as_they_complete():
    """astream(): the same, and the result equals the non-streaming one."""
    embedder = RecordingEmbedder()
    cited = with_attribution(bridge_chain(pace=embedder.wait_for), Attributor(embedder))
    chunks = [c async for c in cited.astream(BRIDGE_QUESTION)]
    assert_only_last_sentence_left(embedder)
    assert without_timings(chunks[-1].response_metadata["attribution"]) == one_shot_payload()


async def test_burst_stream_encodes_nothing_twice():
    """Tokens faster than the encoder: queued text is left to one final batch, never repeated."""
    embedder = RecordingEmbedder()
    cited = with_attribution(bridge_chain(), Attributor(embedder))
    chunks = [c async for c in cited.astream(BRIDGE_QUESTION)]
    encoded = [t for batch in embedder.batches for t in batch]
    assert sorted(encoded) == sorted(
        BRIDGE_SOURCE_SENTENCES + BRIDGE_EMBEDDED_DURING + BRIDGE_SENTENCES[3:]
    )
    assert without_timings(chunks[-1].response_metadata["attribution"]) == one_shot_payload()


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_handler_stream_encodes_sentences_as_they_complete(mode):
    """The callback handler encodes streamed sentences as they complete, too."""
    embedder = RecordingEmbedder()
    handler = AttributionCallbackHandler(Attributor(embedder))
    config = {"callbacks": [handler]}
    chain = bridge_chain(pace=embedder.wait_for)
    if mode == "sync":
        chunks = list(chain.stream(BRIDGE_QUESTION, config=config))
    else:
        chunks = [c async for c in chain.astream(BRIDGE_QUESTION, config=config)]
    assert "".join(str(c.content) for c in chunks) == BRIDGE_ANSWER
    assert_only_last_sentence_left(embedder)
    result = handler.last_result
    assert result is not None
    assert without_timings(attribution_payload(result)) == one_shot_payload()
    assert handler.active_runs == 0


def test_streams_on_threads_keep_their_own_answers(retriever, hashing_attributor):
    """Concurrent streams through one wrapper and one attributor never mix answers or sources."""
    cited = with_attribution(rag_chain(retriever, EchoContextChatModel()), hashing_attributor)

    def run(city: str) -> tuple[str, dict[str, Any]]:
        chunks = list(cited.stream(question(city)))
        text = "".join(str(c.content) for c in chunks)
        return text, chunks[-1].response_metadata["attribution"]

    cities = CITIES[:16]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, cities))
    for city, (text, payload) in zip(cities, results, strict=True):
        assert city in text
        check_own_citations(retriever, question(city), text, payload)
        assert f"doc-{city.lower()}" in cited_ids(payload)


def test_stream_warming_failure_keeps_the_stream_and_reports_error(caplog):
    """A broken embedder during the stream: chunks flow, the final chunk carries the error."""
    cited = with_attribution(bridge_chain(), Attributor(FailingEmbedder()))
    with caplog.at_level(logging.WARNING, logger="rag_attrib"):
        chunks = list(cited.stream(BRIDGE_QUESTION))
    assert "".join(str(c.content) for c in chunks) == BRIDGE_ANSWER
    assert "embedder failed on purpose" in chunks[-1].response_metadata["attribution"]["error"]


def test_document_ids_and_metadata(model, hashing_attributor):
    """Ids come from Document.id, else metadata['source'], else the position; repeats drop."""
    docs = [
        Document(id="d-1", page_content="The Lahore fort has a mirror palace."),
        Document(
            page_content="The Dhaka river port is the busiest.",
            metadata={"source": "ports.txt", "page": 3},
        ),
        Document(page_content="The Colombo lighthouse is a clock tower."),
        Document(id="d-1", page_content="The Lahore fort has a mirror palace."),
    ]
    sources = documents_to_sources(docs)
    assert [s.id for s in sources] == ["d-1", "ports.txt", "2"]
    assert sources[1].metadata == {"source": "ports.txt", "page": 3}
    chain = rag_chain(StaticRetriever(docs=docs), model) | StrOutputParser()
    out = with_attribution(chain, hashing_attributor).invoke("Where is the river port busiest?")
    citation = out["attribution"]["citations"][0]
    assert citation["extras"]["source_id"] == "ports.txt"
    assert citation["url"] == "ports.txt"


def test_generic_fake_chat_model_chain(retriever, hashing_attributor):
    """The example's setup: GenericFakeChatModel behind an unchanged chain and the handler."""
    answer = "The Hobart harbour museum was founded in 1896."
    model = GenericFakeChatModel(messages=iter([answer]))
    handler = AttributionCallbackHandler(hashing_attributor)
    out = rag_chain(retriever, model).invoke(question("Hobart"), config={"callbacks": [handler]})
    assert out.content == answer
    assert "doc-hobart" in cited_ids(out.response_metadata["attribution"])


def test_minilm_embeddings_over_any_embedder():
    """The Embeddings adapter returns unit-length float rows from the wrapped embedder."""
    emb = MiniLMEmbeddings(HashingEmbedder(dim=64))
    rows = emb.embed_documents(["one text", "another text"])
    assert len(rows) == 2 and len(rows[0]) == 64
    assert abs(sum(x * x for x in rows[0]) - 1.0) < 1e-5
    assert emb.embed_query("one text") == pytest.approx(rows[0])
    assert emb.embed_documents([]) == []


def test_missing_langchain_names_the_extra():
    """Without langchain-core the import fails with the pip install line."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'langchain_core':\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "try:\n"
        "    import rag_attrib.integrations.langchain\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc.name, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("MissingDependencyError langchain_core")
    assert "pip install 'rag-attrib[langchain]'" in out


@pytest.mark.slow
def test_real_model_cites_paraphrased_answer(real_attributor):
    """With the bundled model, a paraphrased answer's sentences cite the documents they restate."""
    docs = [
        Document(
            id="telescope",
            page_content=(
                "Hans Lipperhey applied for a patent on a telescope in 1608. "
                "Galileo built his own improved telescope a year later."
            ),
        ),
        Document(
            id="microscope",
            page_content=(
                "Antonie van Leeuwenhoek observed bacteria with single-lens microscopes. "
                "He reported his findings to the Royal Society in the 1670s."
            ),
        ),
        Document(
            id="printing",
            page_content=(
                "Johannes Gutenberg introduced movable-type printing in Europe around 1440. "
                "His press made books far cheaper to produce."
            ),
        ),
    ]
    store = InMemoryVectorStore(MiniLMEmbeddings(real_attributor))
    store.add_documents(docs)
    answer = (
        "A Dutch spectacle maker sought a telescope patent in 1608. "
        "Leeuwenhoek was the first to see bacteria through his lenses."
    )
    model = GenericFakeChatModel(messages=iter([answer]))
    chain = rag_chain(store.as_retriever(search_kwargs={"k": 3}), model)
    out = with_attribution(chain, real_attributor).invoke("Who made early optical instruments?")
    sentences = out.response_metadata["attribution"]["answer_sentences"]
    assert [s["citations"][0]["source_id"] for s in sentences] == ["telescope", "microscope"]


def test_public_names_and_paths_are_pinned():
    """The package keeps the names and import paths of the former single module, plus the new."""
    import inspect

    import rag_attrib.integrations.langchain as lc

    assert lc.__all__ == [
        "EVENT_NAME",
        "AttributedRunnable",
        "AttributionCallbackHandler",
        "MiniLMEmbeddings",
        "aadd_sources",
        "add_sources",
        "attribution_callback",
        "documents_to_sources",
        "with_attribution",
    ]
    assert lc.EVENT_NAME == "attribution"
    assert list(inspect.signature(lc.with_attribution).parameters) == [
        "chain",
        "attributor",
        "exporters",
        "name",
        "timeout",
        "attribution_chunk",
        "on_result",
        "repair_citations",
        "citation_numbering",
        "exact_support",
    ]
    assert list(inspect.signature(lc.AttributionCallbackHandler).parameters) == [
        "attributor",
        "exporters",
        "max_results",
        "attach",
        "timeout",
        "citation_numbering",
        "exact_support",
    ]
    assert list(inspect.signature(lc.add_sources).parameters) == ["documents", "config"]


def test_payload_checks_the_llms_own_markers(hashing_attributor):
    """An answer with [n] markers gets `citation_check` in its attribution: a marker on the
    wrong document is named, with the one that backs the claim."""
    docs = [
        Document(page_content="The Hobart harbour museum was founded in 1896.", id="doc-hobart"),
        Document(page_content="Bremen's river port handles the most cargo.", id="doc-bremen"),
    ]
    answer = "The Hobart harbour museum was founded in 1896 [2]."
    model = GenericFakeChatModel(messages=iter([answer]))
    chain = rag_chain(StaticRetriever(docs=docs), model)
    out = with_attribution(chain, hashing_attributor).invoke("When was the museum founded?")
    check = out.response_metadata["attribution"]["citation_check"]
    assert check["schema"] == "rag_attrib.citations/1"
    (marker,) = check["markers"]
    assert (marker["text"], marker["source_id"], marker["verdict"]) == (
        "[2]",
        "doc-bremen",
        "wrong_source",
    )
    assert marker["suggested_source_id"] == "doc-hobart"
    plain = GenericFakeChatModel(messages=iter(["The Hobart harbour museum was founded in 1896."]))
    out = with_attribution(rag_chain(StaticRetriever(docs=docs), plain), hashing_attributor).invoke(
        "When was the museum founded?"
    )
    assert "citation_check" not in out.response_metadata["attribution"]
