"""Tests for the OpenTelemetry exporter, with the real SDK and an in-memory span exporter.

The SDK provider is local to each test (its tracer is passed in); the global tracer provider
is never set.
"""

from __future__ import annotations

import logging
import threading

import pytest

pytest.importorskip("opentelemetry.sdk")

from _echo_apps import DOCS, UNSUPPORTED
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

from rag_attrib import AttributionResult, Source
from rag_attrib.export import capture_context
from rag_attrib.export.otel import EVENT_NAME, SPAN_NAME, OTelExporter

SOURCES = [
    Source("paris", "The Eiffel Tower stands in Paris, France. It is made of iron."),
    Source("year", "Construction of the Eiffel Tower was finished in 1889. It was the tallest."),
    Source("other", "Photosynthesis converts light to chemical energy."),
]
ANSWER = "The Eiffel Tower is in Paris. It was finished in 1889. Bananas are purple robots."


@pytest.fixture
def spans():
    """A local SDK provider and its in-memory exporter: (tracer, memory)."""
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider.get_tracer("tests"), memory
    provider.shutdown()


@pytest.fixture
def result(hashing_attributor) -> AttributionResult:
    return hashing_attributor.attribute(ANSWER, SOURCES)


def _by_name(memory: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in memory.get_finished_spans() if s.name == name]


def _assert_otel_types(attributes) -> None:
    """Every value is a primitive or a homogeneous list of one primitive type."""
    for key, value in attributes.items():
        if isinstance(value, (tuple, list)):
            assert len({type(v) for v in value}) <= 1, key
            assert all(isinstance(v, (str, bool, int, float)) for v in value), key
        else:
            assert isinstance(value, (str, bool, int, float)), key


def assert_attribution_on(span: ReadableSpan, result: AttributionResult) -> None:
    """The span carries `result`'s document scores, summary and one event per sentence."""
    attrs = span.attributes
    for i, source in enumerate(result.sources):
        assert attrs[f"retrieval.documents.{i}.document.id"] == source.id
        assert attrs[f"retrieval.documents.{i}.document.score"] == pytest.approx(source.score)
    assert f"retrieval.documents.{len(result.sources)}.document.id" not in attrs
    assert attrs["rag_attrib.answer_sentence_count"] == len(result.answer_sentences)
    assert attrs["rag_attrib.unsupported_count"] == len(result.unsupported)
    assert attrs["rag_attrib.coverage"] == pytest.approx(result.coverage)
    assert attrs["rag_attrib.top_source"] == result.top_source.id
    assert attrs["rag_attrib.model"] == result.model
    _assert_otel_types(attrs)
    events = [e for e in span.events if e.name == EVENT_NAME]
    assert [e.attributes["index"] for e in events] == [s.index for s in result.answer_sentences]
    for event, sentence in zip(events, result.answer_sentences, strict=True):
        ea = event.attributes
        assert ea["text"] == sentence.text
        assert ea["supported"] is sentence.supported
        assert ea["support"] == pytest.approx(sentence.support)
        top = sentence.citations[:3]
        # a sentence cites only when supported; an unsupported one's are its closest sources
        prefix = "citation" if sentence.supported else "closest"
        assert list(ea[f"{prefix}.source_ids"]) == [c.source_id for c in top]
        assert list(ea[f"{prefix}.scores"]) == pytest.approx([c.score for c in top])
        assert list(ea[f"{prefix}.texts"]) == [c.text for c in top]
        assert list(ea[f"{prefix}.sentence_indexes"]) == [c.sentence_index for c in top]
        if sentence.supported:
            assert not any(key.startswith("closest.") for key in ea)
        else:
            assert all(ea[f"citation.{k}"] == () for k in ("source_ids", "scores", "texts"))
        _assert_otel_types(ea)


# --- the exporter on its own -----------------------------------------------------------------


def test_annotates_the_current_recording_span(spans, result):
    """Inside a span, the attribution lands on that span: no extra span is made."""
    tracer, memory = spans
    with tracer.start_as_current_span("rag.call"):
        OTelExporter(tracer).export(result, {})
    (span,) = memory.get_finished_spans()
    assert span.name == "rag.call"
    assert_attribution_on(span, result)
    assert result.answer_sentences[2].supported is False  # the events cover an unsupported one
    assert span.events[2].attributes["citation.source_ids"] == ()
    assert span.events[2].attributes["closest.source_ids"]  # its nearest sources, labelled so


def test_the_answers_own_citations_are_counted_on_the_span(spans, hashing_attributor):
    """A result carrying `citation_check` puts its verdict counts on the span; one without
    puts no such key."""
    from rag_attrib.integrations._pipeline import Job, run_job

    tracer, memory = spans
    answer = "The Eiffel Tower stands in Paris [2]. It was finished in 1889 [2] [9]."
    cited = run_job(hashing_attributor, Job(answer, SOURCES), [], {})
    assert cited.citation_check is not None
    with tracer.start_as_current_span("cited"):
        OTelExporter(tracer).export(cited, {})
    with tracer.start_as_current_span("plain"):
        OTelExporter(tracer).export(hashing_attributor.attribute(ANSWER, SOURCES), {})
    cited_span, plain_span = memory.get_finished_spans()
    counts = cited.citation_check.counts()
    assert counts["dangling"] == 1 and counts["wrong_source"] + counts["correct"] == 2
    for verdict, count in counts.items():
        assert cited_span.attributes[f"rag_attrib.own_citations.{verdict}"] == count
    assert not any(k.startswith("rag_attrib.own_citations") for k in plain_span.attributes)


def test_without_a_span_makes_a_root_attribution_span(spans, result):
    """With no current span, a `rag_attrib.attribution` root span carries the result."""
    tracer, memory = spans
    OTelExporter(tracer).export(result, {})
    (span,) = memory.get_finished_spans()
    assert span.name == SPAN_NAME
    assert span.parent is None
    assert_attribution_on(span, result)


def test_ended_span_in_context_gets_a_child(spans, result):
    """An `otel_span` that already ended gets a child span in the same trace."""
    tracer, memory = spans
    with tracer.start_as_current_span("rag.call") as call:
        pass
    OTelExporter(tracer).export(result, {"otel_span": call})
    (child,) = _by_name(memory, SPAN_NAME)
    assert child.context.trace_id == call.get_span_context().trace_id
    assert child.parent.span_id == call.get_span_context().span_id
    assert_attribution_on(child, result)
    assert not _by_name(memory, "rag.call")[0].events


def test_otel_span_in_context_wins_over_the_current_span(spans, result):
    """A live `otel_span` passed in the context is annotated, not the thread's current span."""
    tracer, memory = spans
    with tracer.start_as_current_span("captured") as captured:
        with tracer.start_as_current_span("unrelated"):
            OTelExporter(tracer).export(result, {"otel_span": captured})
    assert_attribution_on(_by_name(memory, "captured")[0], result)
    assert not _by_name(memory, "unrelated")[0].events


def test_captured_context_joins_the_trace_from_another_thread(spans, result):
    """capture() in the caller's thread; export on a plain thread lands on the caller's span."""
    tracer, memory = spans
    exporter = OTelExporter(tracer)
    with tracer.start_as_current_span("rag.call") as call:
        context = {"run_id": "r1", **capture_context([exporter])}
        assert context["otel_trace_id"] == trace.format_trace_id(call.get_span_context().trace_id)
        worker = threading.Thread(target=exporter.export, args=(result, context))
        worker.start()
        worker.join()
    (span,) = memory.get_finished_spans()
    assert span.name == "rag.call"
    assert_attribution_on(span, result)


def test_context_record_turns_the_otel_span_into_ids(spans):
    """For logs and JSONL, `otel_span` becomes hex `otel_trace_id` / `otel_span_id`."""
    from rag_attrib.export import context_record

    tracer, _ = spans
    with tracer.start_as_current_span("rag.call") as call:
        record = context_record({"otel_span": call, "span_id": "llama-span"})
    ctx = call.get_span_context()
    assert record == {
        "span_id": "llama-span",
        "otel_trace_id": trace.format_trace_id(ctx.trace_id),
        "otel_span_id": trace.format_span_id(ctx.span_id),
    }


def test_plain_thread_without_captured_context_loses_the_trace(spans, result):
    """Why capture() exists: a plain thread starts with an empty OTel context."""
    tracer, memory = spans
    exporter = OTelExporter(tracer)
    with tracer.start_as_current_span("rag.call") as call:
        worker = threading.Thread(target=exporter.export, args=(result, {}))
        worker.start()
        worker.join()
    (orphan,) = _by_name(memory, SPAN_NAME)
    assert orphan.parent is None
    assert orphan.context.trace_id != call.get_span_context().trace_id


def test_otel_context_key_parents_a_new_span_after_the_call_ended(spans, result):
    """A captured `otel_context` whose span has ended parents a child in the same trace."""
    tracer, memory = spans
    exporter = OTelExporter(tracer)
    with tracer.start_as_current_span("rag.call") as call:
        captured = exporter.capture()
    exporter.export(result, captured)
    (child,) = _by_name(memory, SPAN_NAME)
    assert child.parent.span_id == call.get_span_context().span_id
    assert child.context.trace_id == call.get_span_context().trace_id


def test_second_result_on_the_same_span_goes_to_a_child(spans, hashing_attributor, result):
    """Two results under one span never mix: the second gets its own child span."""
    tracer, memory = spans
    other = hashing_attributor.attribute("Photosynthesis converts light.", SOURCES)
    exporter = OTelExporter(tracer)
    with tracer.start_as_current_span("batch") as batch:
        exporter.export(result, {})
        exporter.export(other, {})
    assert_attribution_on(_by_name(memory, "batch")[0], result)
    (child,) = _by_name(memory, SPAN_NAME)
    assert child.parent.span_id == batch.get_span_context().span_id
    assert_attribution_on(child, other)


def test_child_span_option_always_makes_a_child(spans, result):
    """child_span=True leaves the current span untouched."""
    tracer, memory = spans
    with tracer.start_as_current_span("rag.call"):
        OTelExporter(tracer, child_span=True).export(result, {})
    assert not _by_name(memory, "rag.call")[0].attributes
    assert_attribution_on(_by_name(memory, SPAN_NAME)[0], result)


def test_limits_on_events_citations_and_documents(spans, hashing_attributor):
    """max_events, max_citations and max_documents cap what is written, and drops are counted."""
    tracer, memory = spans
    res = hashing_attributor.attribute(
        "The Eiffel Tower is in Paris. It was finished in 1889. It is made of iron.",
        SOURCES,
    )
    OTelExporter(tracer, max_events=2, max_citations=1, max_documents=1).export(res, {})
    (span,) = memory.get_finished_spans()
    assert len(span.events) == 2
    assert span.attributes["rag_attrib.dropped_sentence_events"] == 1
    assert all(len(e.attributes["citation.scores"]) <= 1 for e in span.events)
    assert "retrieval.documents.0.document.id" in span.attributes
    assert "retrieval.documents.1.document.id" not in span.attributes


def test_error_result_marks_only_its_own_span(spans, result):
    """A result with an error sets `rag_attrib.error`, and ERROR status on its own span only."""
    tracer, memory = spans
    failed = result.with_error("embedder exploded")
    OTelExporter(tracer).export(failed, {})
    with tracer.start_as_current_span("user.call"):
        OTelExporter(tracer).export(failed, {})
    own, user = _by_name(memory, SPAN_NAME)[0], _by_name(memory, "user.call")[0]
    assert own.attributes["rag_attrib.error"] == "embedder exploded"
    assert own.status.status_code is StatusCode.ERROR
    assert user.attributes["rag_attrib.error"] == "embedder exploded"
    assert user.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("key", ["otel_span", "otel_context"])
def test_wrong_type_in_context_is_a_clear_error(spans, result, key):
    """A wrong object under the OTel keys raises TypeError naming the expected type."""
    tracer, _ = spans
    with pytest.raises(TypeError, match=key):
        OTelExporter(tracer).export(result, {key: "not a span"})


def test_default_tracer_follows_the_global_api_without_setting_it(result):
    """With no tracer, the API's global (here no-op) tracer is used and no provider is set."""
    before = trace.get_tracer_provider()
    OTelExporter().export(result, {})
    assert trace.get_tracer_provider() is before


# --- acceptance: the integrations put attributions on the caller's trace ---------------------

# The apps (`lc_chain`, `li_engine` in conftest.py) answer with the first sentence they were
# given, then UNSUPPORTED (_echo_apps.py).


def _assert_call_trace(memory, call_name: str, question_words: str) -> tuple:
    """The user's call span carries the attribution, whose sources and events are in its trace."""
    (call,) = _by_name(memory, call_name)
    attrs = call.attributes
    assert attrs["rag_attrib.answer_sentence_count"] == 2
    assert attrs["rag_attrib.unsupported_count"] == 1
    ids = [attrs[f"retrieval.documents.{i}.document.id"] for i in range(2)]
    scores = [attrs[f"retrieval.documents.{i}.document.score"] for i in range(2)]
    assert attrs["rag_attrib.top_source"] == ids[scores.index(max(scores))]
    assert scores[0] > 0.5 > scores[1]  # the echoed chunk carries the answer
    events = [e for e in call.events if e.name == EVENT_NAME]
    assert [e.attributes["supported"] for e in events] == [True, False]
    assert events[0].attributes["citation.source_ids"][0] == ids[0]
    assert question_words in events[0].attributes["citation.texts"][0]
    assert events[1].attributes["citation.source_ids"] == ()
    # the unsupported sentence's nearest source is there, labelled as closest, not as cited
    assert events[1].attributes["closest.source_ids"][0] in ids
    assert "closest.source_ids" not in events[0].attributes
    for span in memory.get_finished_spans():
        assert span.context.trace_id == call.context.trace_id
        _assert_otel_types(span.attributes)
    return call, ids


def test_langchain_handler_puts_attribution_on_the_call_span(spans, lc_chain, hashing_attributor):
    """A chain run with the handler inside a span: document scores and sentence events land on
    that span, in its trace; the chain's output is unchanged."""
    from rag_attrib.integrations.langchain import AttributionCallbackHandler

    tracer, memory = spans
    plain = lc_chain.invoke("When was the Eiffel Tower in Paris finished?")
    handler = AttributionCallbackHandler(hashing_attributor, exporters=[OTelExporter(tracer)])
    with tracer.start_as_current_span("user.rag_call"):
        out = lc_chain.invoke(
            "When was the Eiffel Tower in Paris finished?", config={"callbacks": [handler]}
        )
    assert out == plain
    _, ids = _assert_call_trace(memory, "user.rag_call", "Eiffel Tower")
    assert ids[0] == "eiffel"
    assert handler.last_result is not None and handler.last_result.error is None
    assert len(memory.get_finished_spans()) == 1  # annotated in place, no extra span


async def test_langchain_ainvoke_puts_attribution_on_the_call_span(
    spans, lc_chain, hashing_attributor
):
    """Same with `ainvoke`: the sync handler runs on an executor thread with the span's context."""
    from rag_attrib.integrations.langchain import AttributionCallbackHandler

    tracer, memory = spans
    handler = AttributionCallbackHandler(hashing_attributor, exporters=[OTelExporter(tracer)])
    with tracer.start_as_current_span("user.rag_call"):
        await lc_chain.ainvoke("What does the Louvre house?", config={"callbacks": [handler]})
    _, ids = _assert_call_trace(memory, "user.rag_call", "Louvre")
    assert ids[0] == "louvre"


def test_langchain_batch_under_one_span_never_mixes(spans, lc_chain, hashing_attributor):
    """A batch inside one span: each call's attribution stays whole, on the span or a child."""
    from rag_attrib.integrations.langchain import AttributionCallbackHandler

    tracer, memory = spans
    handler = AttributionCallbackHandler(hashing_attributor, exporters=[OTelExporter(tracer)])
    questions = ["Eiffel Tower Paris?", "Louvre museum?", "Photosynthesis in plants?"]
    with tracer.start_as_current_span("user.batch") as batch:
        lc_chain.batch(questions, config={"callbacks": [handler]})
    annotated = [*_by_name(memory, "user.batch"), *_by_name(memory, SPAN_NAME)]
    assert len(annotated) == 3
    top_docs = set()
    for span in annotated:
        assert span.context.trace_id == batch.get_span_context().trace_id
        events = [e for e in span.events if e.name == EVENT_NAME]
        assert len(events) == 2  # one call's sentences, never two calls' on one span
        first = span.attributes["retrieval.documents.0.document.id"]
        assert events[0].attributes["citation.source_ids"][0] == first
        top_docs.add(first)
    assert top_docs == {"eiffel", "louvre", "photo"}


def test_langchain_with_attribution_joins_trace_and_jsonl(
    spans, lc_chain, hashing_attributor, tmp_path
):
    """`with_attribution` with OTel and JSONL: same trace, and the JSONL line names its trace."""
    from rag_attrib.export import JSONLExporter, read_jsonl_line
    from rag_attrib.integrations.langchain import with_attribution

    tracer, memory = spans
    otel = OTelExporter(tracer)
    with JSONLExporter(tmp_path / "a.jsonl") as jsonl:
        chain = with_attribution(lc_chain, hashing_attributor, exporters=[otel, jsonl])
        with tracer.start_as_current_span("user.rag_call"):
            out = chain.invoke("When was the Eiffel Tower in Paris finished?")
    assert out["attribution"]["answer"] == out["answer"]
    _assert_call_trace(memory, "user.rag_call", "Eiffel Tower")
    (line,) = (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()
    result, context = read_jsonl_line(line)
    assert context["framework"] == "langchain" and context["run_id"]
    assert result.answer == out["answer"]


def test_langchain_jsonl_alone_names_the_trace(spans, lc_chain, hashing_attributor):
    """Without OTelExporter, a JSONL line still carries the OTel ids of the caller's span and
    LangChain's root run id."""
    import io

    from rag_attrib.export import JSONLExporter, read_jsonl_line
    from rag_attrib.integrations.langchain import AttributionCallbackHandler

    tracer, _ = spans
    stream = io.StringIO()
    handler = AttributionCallbackHandler(hashing_attributor, exporters=[JSONLExporter(stream)])
    with tracer.start_as_current_span("user.rag_call") as call:
        lc_chain.invoke("Louvre museum?", config={"callbacks": [handler]})
    (line,) = stream.getvalue().splitlines()
    _, context = read_jsonl_line(line)
    assert context["otel_trace_id"] == trace.format_trace_id(call.get_span_context().trace_id)
    assert context["otel_span_id"] == trace.format_span_id(call.get_span_context().span_id)
    assert context["run_id"] == str(next(iter(handler.results)))


def test_langchain_failing_exporter_keeps_output_and_is_logged_once(
    spans, lc_chain, hashing_attributor, caplog
):
    """An exporter that raises: same chain output, other exporters still run, one log record."""
    from rag_attrib.export.base import reset_reported_errors
    from rag_attrib.integrations.langchain import AttributionCallbackHandler

    class BrokenExporterError(RuntimeError):
        pass

    class Broken:
        def export(self, result, context):
            raise BrokenExporterError("collector is down")

    reset_reported_errors()
    tracer, memory = spans
    question = "When was the Eiffel Tower in Paris finished?"
    plain = lc_chain.invoke(question)
    handler = AttributionCallbackHandler(
        hashing_attributor, exporters=[Broken(), OTelExporter(tracer)]
    )
    with caplog.at_level(logging.WARNING):
        outs = [lc_chain.invoke(question, config={"callbacks": [handler]}) for _ in range(2)]
    assert outs == [plain, plain]
    assert len(_by_name(memory, SPAN_NAME)) == 2  # the OTel exporter after it still ran
    reports = [r for r in caplog.records if "BrokenExporterError" in r.getMessage()]
    assert len(reports) == 1
    assert "BrokenExporterError" in (handler.last_result.error or "")
    reset_reported_errors()


# --- LlamaIndex ------------------------------------------------------------------------------


@pytest.fixture
def instrumented(hashing_attributor, spans):
    """`instrument()` with an OTel exporter on the local tracer; removed afterwards."""
    from rag_attrib.integrations.llamaindex import instrument, uninstrument

    tracer, memory = spans
    instrument(hashing_attributor, exporters=[OTelExporter(tracer)])
    yield tracer, memory
    uninstrument()


def test_llamaindex_query_puts_attribution_on_the_call_span(li_engine, instrumented):
    """A query with `instrument()` inside a span: scores and events land on that span."""
    index, llm = li_engine
    tracer, memory = instrumented
    engine = index.as_query_engine(llm=llm, similarity_top_k=2)
    with tracer.start_as_current_span("user.query"):
        response = engine.query("When was the Eiffel Tower in Paris finished?")
    assert response.metadata["attribution"]["sources"][0]["id"] == "eiffel"
    _, ids = _assert_call_trace(memory, "user.query", "Eiffel Tower")
    assert ids == [n.node.node_id for n in response.source_nodes]


async def test_llamaindex_concurrent_aqueries_stay_on_their_own_trace(li_engine, instrumented):
    """Three `aquery` calls under three spans, gathered: each trace gets its own attribution."""
    import asyncio

    index, llm = li_engine
    tracer, memory = instrumented
    engine = index.as_query_engine(llm=llm, similarity_top_k=2)

    async def ask(name, question):
        with tracer.start_as_current_span(name):
            return await engine.aquery(question)

    await asyncio.gather(
        ask("q.eiffel", "Eiffel Tower in Paris?"),
        ask("q.louvre", "Louvre museum?"),
        ask("q.photo", "Photosynthesis in plants?"),
    )
    for doc_id in DOCS:
        (span,) = _by_name(memory, f"q.{doc_id}")
        assert span.attributes["retrieval.documents.0.document.id"] == doc_id
        assert span.attributes["rag_attrib.top_source"] == doc_id
        assert len(span.events) == 2
    assert not _by_name(memory, SPAN_NAME)


def test_llamaindex_stream_consumed_inside_the_span(li_engine, instrumented):
    """A streaming query consumed inside the span is attributed on that span."""
    index, llm = li_engine
    tracer, memory = instrumented
    engine = index.as_query_engine(llm=llm, similarity_top_k=2, streaming=True)
    with tracer.start_as_current_span("user.query"):
        response = engine.query("When was the Eiffel Tower in Paris finished?")
        text = "".join(response.response_gen)
    assert text.endswith(UNSUPPORTED)
    _assert_call_trace(memory, "user.query", "Eiffel Tower")


def test_llamaindex_jsonl_line_names_the_trace(li_engine, hashing_attributor, spans, tmp_path):
    """With OTel and JSONL exporters, the JSONL line carries the OTel trace and span ids of the
    call, and LlamaIndex's own span id, so it can be joined to the trace."""
    from rag_attrib.export import JSONLExporter, read_jsonl_line
    from rag_attrib.integrations.llamaindex import instrument, uninstrument

    index, llm = li_engine
    tracer, _ = spans
    engine = index.as_query_engine(llm=llm, similarity_top_k=2)
    with JSONLExporter(tmp_path / "li.jsonl") as jsonl:
        instrument(hashing_attributor, exporters=[OTelExporter(tracer), jsonl])
        try:
            with tracer.start_as_current_span("user.query") as call:
                response = engine.query("When was the Eiffel Tower in Paris finished?")
        finally:
            uninstrument()
    (line,) = (tmp_path / "li.jsonl").read_text(encoding="utf-8").splitlines()
    result, context = read_jsonl_line(line)
    ctx = call.get_span_context()
    assert context["otel_trace_id"] == trace.format_trace_id(ctx.trace_id)
    assert context["otel_span_id"] == trace.format_span_id(ctx.span_id)
    assert context["framework"] == "llamaindex"
    assert "query" in context["span_id"]  # LlamaIndex's "<Class>.query-<uuid>"
    assert result.answer == response.response


def test_llamaindex_failing_exporter_keeps_response_and_is_logged_once(
    li_engine, hashing_attributor, spans, caplog
):
    """With `instrument()`, a raising exporter changes no answer and is logged once."""
    from rag_attrib.export.base import reset_reported_errors
    from rag_attrib.integrations.llamaindex import instrument, uninstrument

    class LlamaBrokenExporterError(RuntimeError):
        pass

    class Broken:
        def export(self, result, context):
            raise LlamaBrokenExporterError("collector is down")

    index, llm = li_engine
    tracer, memory = spans
    engine = index.as_query_engine(llm=llm, similarity_top_k=2)
    question = "When was the Eiffel Tower in Paris finished?"
    plain = engine.query(question)
    reset_reported_errors()
    instrument(hashing_attributor, exporters=[Broken(), OTelExporter(tracer)])
    try:
        with caplog.at_level(logging.WARNING):
            answers = [engine.query(question) for _ in range(2)]
    finally:
        uninstrument()
        reset_reported_errors()
    assert [a.response for a in answers] == [plain.response] * 2
    assert [n.node.node_id for n in answers[0].source_nodes] == [
        n.node.node_id for n in plain.source_nodes
    ]
    assert len(_by_name(memory, SPAN_NAME)) == 2
    reports = [r for r in caplog.records if "LlamaBrokenExporterError" in r.getMessage()]
    assert len(reports) == 1
    assert "LlamaBrokenExporterError" in answers[1].metadata["attribution"]["error"]


def test_llamaindex_stream_consumed_after_the_span_joins_its_trace(li_engine, instrumented):
    """A stream consumed after the caller's span ended still lands in the caller's trace."""
    index, llm = li_engine
    tracer, memory = instrumented
    engine = index.as_query_engine(llm=llm, similarity_top_k=2, streaming=True)
    with tracer.start_as_current_span("user.query") as call:
        response = engine.query("When was the Eiffel Tower in Paris finished?")
    "".join(response.response_gen)
    (attribution,) = _by_name(memory, SPAN_NAME)
    assert attribution.context.trace_id == call.get_span_context().trace_id
    assert attribution.parent.span_id == call.get_span_context().span_id


def test_langchain_stream_consumed_after_the_span_joins_its_trace(
    spans, lc_chain, hashing_attributor
):
    """A chain stream consumed after the caller's span ended still lands in the caller's trace."""
    from rag_attrib.integrations.langchain import AttributionCallbackHandler

    tracer, memory = spans
    handler = AttributionCallbackHandler(hashing_attributor, exporters=[OTelExporter(tracer)])
    with tracer.start_as_current_span("user.rag_call") as call:
        stream = lc_chain.stream("Eiffel Tower in Paris?", config={"callbacks": [handler]})
        first = next(stream)
    assert first + "".join(stream) == handler.last_result.answer
    (attribution,) = _by_name(memory, SPAN_NAME)
    assert attribution.context.trace_id == call.get_span_context().trace_id
    assert attribution.parent.span_id == call.get_span_context().span_id
