"""Attributions in a real trace backend: Arize Phoenix, started by this module on 127.0.0.1.

A LangChain chain (traced by OpenInference's instrumentor) and a LlamaIndex query engine run
with rag_attrib's OTelExporter; the spans go over OTLP/HTTP to Phoenix, and Phoenix's client
reads back the per-document scores and sentence events on the right trace. Then
`rag-attrib batch --phoenix` re-attributes the stored traces and logs a groundedness
annotation on each, read back too. The same trace as an OTLP/JSON dump gives the same record.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

pytest.importorskip("phoenix.server")
pytest.importorskip("openinference.instrumentation.langchain")

from _echo_apps import DOCS
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rag_attrib.batch.phoenix import ANNOTATION_NAME, records_from_spans, spans_from_otlp_json
from rag_attrib.cli import main
from rag_attrib.export.otel import EVENT_NAME, OTelExporter

PROJECT = "rag-attrib-tests"
QUESTION = "When was the Eiffel Tower in Paris finished?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Phoenix server on 127.0.0.1 with a temporary SQLite working dir; stopped afterwards."""
    port, grpc = _free_port(), _free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(tmp_path_factory.mktemp("phoenix")),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = tmp_path_factory.mktemp("phoenix-log") / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "phoenix.server.main", "serve"], env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # minutes on a loaded 2-core machine
        while True:
            assert server.poll() is None, log.read_text(errors="replace")[-2000:]
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Phoenix did not start"
            time.sleep(1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


_TRACED: dict[str, dict] = {}


@pytest.fixture
def traced(phoenix: str, lc_chain, li_engine) -> dict:
    """Run one LangChain call and one LlamaIndex query (once per module), spans to Phoenix over
    OTLP and to memory; returns the two user spans' trace ids and the memory exporter."""
    if phoenix not in _TRACED:
        _TRACED[phoenix] = _trace_calls(phoenix, lc_chain, li_engine)
    return _TRACED[phoenix]


def _trace_calls(phoenix: str, lc_chain, li_engine) -> dict:
    from openinference.instrumentation.langchain import LangChainInstrumentor

    from rag_attrib import Attributor
    from rag_attrib.integrations.langchain import AttributionCallbackHandler
    from rag_attrib.integrations.llamaindex import instrument, uninstrument
    from rag_attrib.testing import HashingEmbedder

    provider = TracerProvider(resource=Resource.create({"openinference.project.name": PROJECT}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{phoenix}/v1/traces"))
    )
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests")
    attributor = Attributor(HashingEmbedder())
    exporter = OTelExporter(tracer)
    ids: dict = {}
    LangChainInstrumentor().instrument(tracer_provider=provider)
    try:
        handler = AttributionCallbackHandler(attributor, exporters=[exporter])
        with tracer.start_as_current_span("user.langchain") as span:
            lc_chain.invoke(QUESTION, config={"callbacks": [handler]})
        ids["langchain"] = format(span.get_span_context().trace_id, "032x")
    finally:
        LangChainInstrumentor().uninstrument()
    index, llm = li_engine
    instrument(attributor, exporters=[exporter])
    try:
        with tracer.start_as_current_span("user.llamaindex") as span:
            index.as_query_engine(llm=llm, similarity_top_k=2).query(QUESTION)
        ids["llamaindex"] = format(span.get_span_context().trace_id, "032x")
    finally:
        uninstrument()
    provider.force_flush()
    ids["memory"] = memory
    provider.shutdown()
    return ids


def _client(url: str):
    from phoenix.client import Client

    return Client(base_url=url)


def _spans(url: str, trace_id: str) -> list[dict]:
    """The trace's spans once Phoenix has stored all of them.

    Phoenix inserts spans asynchronously and the user's root span ends (and is exported) last,
    so wait for a root span and for two polls in a row to agree.
    """
    import httpx

    deadline = time.monotonic() + 60
    previous: list[dict] | None = None
    while True:
        try:
            spans = list(
                _client(url).spans.get_spans(
                    project_identifier=PROJECT, trace_ids=[trace_id], limit=1000
                )
            )
        except httpx.HTTPStatusError as exc:
            # the project exists only once its first span is stored: 404 until then
            if exc.response.status_code != 404 or time.monotonic() > deadline:
                raise
            spans = []
        has_root = any(s["name"].startswith("user.") for s in spans)
        settled = previous is not None and len(previous) == len(spans)
        if (has_root and settled) or time.monotonic() > deadline:
            return spans
        previous = spans
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["langchain", "llamaindex"])
def test_phoenix_holds_scores_and_sentence_events_on_the_call_trace(phoenix, traced, framework):
    """Phoenix's client reads the OpenInference document scores and one event per answer
    sentence from the user's call span, in that call's trace only."""
    spans = _spans(phoenix, traced[framework])
    (call,) = [s for s in spans if s["name"] == f"user.{framework}"]
    attributes = call["attributes"]
    ids = [attributes[f"retrieval.documents.{i}.document.id"] for i in range(2)]
    scores = [attributes[f"retrieval.documents.{i}.document.score"] for i in range(2)]
    assert ids[0] == "eiffel" and scores[0] > 0.5 > scores[1]
    assert attributes["rag_attrib.unsupported_count"] == 1
    events = [e for e in call["events"] if e["name"] == EVENT_NAME]
    assert [e["attributes"]["supported"] for e in events] == [True, False]
    assert events[0]["attributes"]["citation.source_ids"][0] == "eiffel"
    assert {s["context"]["trace_id"] for s in spans} == {traced[framework]}
    other = "llamaindex" if framework == "langchain" else "langchain"
    assert all(s["name"] != f"user.{other}" for s in spans)
    if framework == "langchain":  # OpenInference's own spans sit in the same trace
        kinds = {s["span_kind"] for s in spans}
        assert {"RETRIEVER", "LLM", "CHAIN"} <= kinds


@pytest.mark.slow
def test_batch_reads_phoenix_traces_and_logs_annotations(phoenix, traced, tmp_path, capsys):
    """`rag-attrib batch --phoenix URL --annotate` attributes the stored LangChain trace (the
    one with retriever documents and an LLM output) and Phoenix then holds a groundedness
    annotation on its root span."""
    out = tmp_path / "out"
    code = main(
        [
            "batch",
            "--phoenix",
            phoenix,
            "--project",
            PROJECT,
            "--out",
            str(out),
            "--model",
            "hashing",
            "--workers",
            "0",
            "--annotate",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "1 traces with documents and an answer" in err and "1 annotations logged" in err
    (record,) = [json.loads(x) for x in (tmp_path / "out.records.jsonl").read_text().splitlines()]
    assert record["trace_id"] == traced["langchain"]
    assert record["question"] == QUESTION
    # OpenInference's LangChain spans carry document contents, not LangChain's Document ids
    assert record["sources"][0]["text"] == DOCS["eiffel"]
    spans = _spans(phoenix, traced["langchain"])
    (root,) = [s for s in spans if s["name"] == "user.langchain"]
    assert record["id"] == root["context"]["span_id"]
    deadline = time.monotonic() + 60
    while True:
        annotations = _client(phoenix).spans.get_span_annotations(
            span_ids=[record["id"]], project_identifier=PROJECT
        )
        if annotations or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    (annotation,) = [a for a in annotations if a["name"] == ANNOTATION_NAME]
    assert annotation["result"]["label"] == "ungrounded"
    assert annotation["result"]["score"] == pytest.approx(0.5)
    assert "Bananas are purple robots" in annotation["result"]["explanation"]


@pytest.mark.slow
def test_otlp_json_dump_gives_the_same_record(phoenix, traced, tmp_path):
    """The LangChain trace written as OTLP/JSON (protobuf's JSON mapping, base64 ids) gives
    the record Phoenix's copy gives."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    memory = traced["memory"]
    mine = [
        s
        for s in memory.get_finished_spans()
        if format(s.context.trace_id, "032x") == traced["langchain"]
    ]
    dump = tmp_path / "spans.json"
    dump.write_text(json.dumps(MessageToDict(encode_spans(mine))), encoding="utf-8")
    (from_dump,) = records_from_spans(spans_from_otlp_json(dump))
    stored = [
        {
            "trace_id": s["context"]["trace_id"],
            "span_id": s["context"]["span_id"],
            "parent_id": s.get("parent_id"),
            "name": s["name"],
            "start_time": s["start_time"],
            "attributes": s["attributes"],
        }
        for s in _spans(phoenix, traced["langchain"])
    ]
    (from_phoenix,) = records_from_spans(stored)
    assert from_dump == from_phoenix
