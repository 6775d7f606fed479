"""Tests for the logging and JSONL exporters and the `export_all` guard."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from rag_attrib import AttributionResult, Source
from rag_attrib.export import (
    JSONLExporter,
    LoggingExporter,
    NullExporter,
    capture_context,
    context_record,
    export_all,
    read_jsonl_line,
)
from rag_attrib.export.base import reset_reported_errors

SOURCES = [
    Source("paris", "The Eiffel Tower stands in Paris, France. It is made of iron."),
    Source("year", "Construction of the Eiffel Tower was finished in 1889. It was the tallest."),
    Source("other", "Photosynthesis converts light to chemical energy."),
]
ANSWER = "The Eiffel Tower is in Paris. It was finished in 1889. Bananas are purple robots."


@pytest.fixture
def result(hashing_attributor) -> AttributionResult:
    return hashing_attributor.attribute(ANSWER, SOURCES)


@pytest.fixture(autouse=True)
def _fresh_reported_errors():
    reset_reported_errors()
    yield
    reset_reported_errors()


def _assert_same(a: AttributionResult, b: AttributionResult) -> None:
    assert a == b
    # records carry no dense matrix (to_dict(matrix=False)): the cited cells are known
    known = ~np.isnan(a.similarity)
    assert known.any() and np.allclose(a.similarity[known], b.similarity[known])


# --- LoggingExporter -------------------------------------------------------------------------


def test_logging_exporter_emits_one_structured_record(result, caplog):
    """One INFO record per result, whose `rag_attrib` extra matches the result."""
    run_id = uuid.uuid4()
    with caplog.at_level(logging.INFO, logger="rag_attrib.export.log"):
        LoggingExporter().export(result, {"run_id": run_id, "opaque": object()})
    records = [r for r in caplog.records if r.name == "rag_attrib.export.log"]
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.INFO
    payload = record.rag_attrib
    assert payload["answer_sentence_count"] == 3
    assert payload["unsupported_count"] == len(result.unsupported) == 1
    assert payload["unsupported"] == [2]
    assert payload["top_source"] == "paris"
    assert [(s["id"], s["score"]) for s in payload["sources"]] == [
        (s.id, s.score) for s in result.sources
    ]
    assert set(payload["timings"]) >= {"total_ms", "encode_ms"}
    assert payload["context"] == {"run_id": str(run_id)}
    assert "3 answer sentences, 1 unsupported, top source paris" in record.getMessage()
    json.dumps(payload)  # JSON formatters must be able to write it


def test_logging_exporter_honours_logger_and_level_and_configures_nothing(result, caplog):
    """A custom logger and level are used; handlers and levels are never touched."""
    logger = logging.getLogger("tests.export.custom")
    root_handlers = list(logging.getLogger().handlers)
    exporter = LoggingExporter(logger, level=logging.DEBUG)
    with caplog.at_level(logging.INFO, logger="tests.export.custom"):
        exporter.export(result, {})  # DEBUG is below INFO: nothing
    assert not [r for r in caplog.records if r.name == "tests.export.custom"]
    with caplog.at_level(logging.DEBUG, logger="tests.export.custom"):
        exporter.export(result, {})
    assert [r.levelno for r in caplog.records if r.name == "tests.export.custom"] == [logging.DEBUG]
    assert logging.getLogger().handlers == root_handlers
    assert logger.handlers == []


# --- JSONLExporter ---------------------------------------------------------------------------


def test_jsonl_path_lines_round_trip(result, tmp_path):
    """Each line holds a UTC timestamp, the context ids and a `to_dict()` that round-trips."""
    path = tmp_path / "out.jsonl"
    run_id = uuid.uuid4()
    before = datetime.now(timezone.utc)
    with JSONLExporter(path) as exporter:
        exporter.export(result, {"run_id": run_id, "nested": {"tags": ["a", "b"]}})
        exporter.export(result.with_error("boom"), {"run_id": "second"})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert set(first) == {"timestamp", "context", "attribution"}
    stamp = datetime.fromisoformat(first["timestamp"])
    assert stamp.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(timezone.utc)
    assert first["context"] == {"run_id": str(run_id), "nested": {"tags": ["a", "b"]}}
    _assert_same(AttributionResult.from_dict(first["attribution"]), result)
    again, context = read_jsonl_line(lines[1])
    assert again.error == "boom"
    assert context["run_id"] == "second"
    assert context["timestamp"] == json.loads(lines[1])["timestamp"]


def test_jsonl_appends_to_existing_file(result, tmp_path):
    """A path is opened in append mode: earlier lines survive a new exporter."""
    path = tmp_path / "out.jsonl"
    for _ in range(2):
        with JSONLExporter(path) as exporter:
            exporter.export(result, {})
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2


def _hammer(exporter: JSONLExporter, attributor, n_threads: int, per_thread: int) -> None:
    barrier = threading.Barrier(n_threads)

    def work(t: int) -> None:
        barrier.wait()
        for k in range(per_thread):
            # A long, thread-specific answer makes lines big enough to interleave if unguarded.
            answer = f"Thread {t} item {k} says the Eiffel Tower is in Paris. " + "Filler. " * 60
            res = attributor.attribute(answer, SOURCES)
            exporter.export(res, {"thread": t, "item": k})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _check_lines(text: str, n_threads: int, per_thread: int) -> None:
    assert text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == n_threads * per_thread
    seen = set()
    for line in lines:
        res, context = read_jsonl_line(line)  # raises on a torn or merged line
        again = AttributionResult.from_dict(res.to_dict())
        assert again == res
        t, k = context["thread"], context["item"]
        assert res.answer.startswith(f"Thread {t} item {k} says")  # context matches its result
        seen.add((t, k))
    assert seen == {(t, k) for t in range(n_threads) for k in range(per_thread)}


def test_jsonl_eight_threads_on_a_path_write_whole_lines(hashing_attributor, tmp_path):
    """8 threads through one path exporter: only whole lines, each round-trips."""
    path = tmp_path / "concurrent.jsonl"
    with JSONLExporter(path) as exporter:
        _hammer(exporter, hashing_attributor, 8, 6)
    _check_lines(path.read_text(encoding="utf-8"), 8, 6)


class _ChunkyStream(io.StringIO):
    """A stream whose write() goes out in small pieces and yields between them, as a pipe or
    socket wrapper may: unguarded concurrent writers would interleave their lines."""

    def write(self, s: str) -> int:
        for k in range(0, len(s), 256):
            super().write(s[k : k + 256])
            time.sleep(0)
        return len(s)


def test_jsonl_eight_threads_on_a_stream_write_whole_lines(hashing_attributor):
    """8 threads through one stream exporter: only whole lines, each round-trips."""
    stream = _ChunkyStream()
    exporter = JSONLExporter(stream)
    _hammer(exporter, hashing_attributor, 8, 6)
    exporter.close()
    assert not stream.closed  # the caller owns the stream
    _check_lines(stream.getvalue(), 8, 6)


def test_jsonl_closed_exporter_fails_through_export_all(result, tmp_path, caplog):
    """Writing after close() is an error that export_all reports instead of raising."""
    exporter = JSONLExporter(tmp_path / "x.jsonl")
    exporter.close()
    exporter.close()  # idempotent
    errors = export_all([exporter], result, {})
    assert len(errors) == 1
    assert "JSONLExporter failed: ValueError" in errors[0]


def test_read_jsonl_line_rejects_other_json():
    """A line that is not an attribution record raises ValueError with a clear message."""
    with pytest.raises(ValueError, match="not a rag_attrib JSONL record"):
        read_jsonl_line('{"hello": 1}')
    with pytest.raises(ValueError):
        read_jsonl_line("{torn")


# --- export_all, capture_context, context_record ---------------------------------------------


class _Boom(RuntimeError):
    pass


class _Exploding:
    def __init__(self, exc: type[Exception] = _Boom) -> None:
        self.exc = exc
        self.calls = 0

    def export(self, result, context):
        self.calls += 1
        raise self.exc("exporter broke")


def _warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "rag_attrib.export"]


def test_failing_exporter_does_not_affect_others_and_is_logged_once(result, tmp_path, caplog):
    """A raising exporter leaves the others' output intact and is logged once per error kind."""
    path = tmp_path / "ok.jsonl"
    exploding = _Exploding()
    with JSONLExporter(path) as jsonl, caplog.at_level(logging.WARNING, "rag_attrib.export"):
        first = export_all([exploding, jsonl, NullExporter()], result, {"n": 1})
        second = export_all([exploding, jsonl], result, {"n": 2})
    assert exploding.calls == 2
    assert first == second == ["_Exploding failed: _Boom: exporter broke"]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["context"]["n"] for line in lines] == [1, 2]
    logged = _warnings(caplog)
    assert len(logged) == 1
    assert "_Exploding failed: _Boom" in logged[0].getMessage()
    assert logged[0].exc_info is not None


def test_new_error_kind_is_logged_and_reset_forgets(result, caplog):
    """Another error type from the same exporter is logged; after a reset the first is again."""
    with caplog.at_level(logging.WARNING, "rag_attrib.export"):
        export_all([_Exploding(_Boom)], result)
        export_all([_Exploding(KeyError)], result)
        export_all([_Exploding(_Boom)], result)
        assert len(_warnings(caplog)) == 2
        reset_reported_errors()
        export_all([_Exploding(_Boom)], result)
    assert len(_warnings(caplog)) == 3


def test_capture_context_merges_and_survives_a_broken_capture():
    """capture() results are merged; one that raises is skipped."""

    class Captures(NullExporter):
        def capture(self):
            return {"trace_id": "abc"}

    class BrokenCapture(NullExporter):
        def capture(self):
            raise RuntimeError("nope")

    assert capture_context([NullExporter(), BrokenCapture(), Captures()]) == {"trace_id": "abc"}


def test_context_record_keeps_ids_and_drops_objects():
    """UUIDs become strings, non-finite floats None, and unknown objects are left out."""
    rid = uuid.uuid4()
    record = context_record(
        {
            "run_id": rid,
            "x": float("nan"),
            "obj": object(),
            "l": [1, object(), "a"],
            "otel_context": {"k": "v"},
        }
    )
    assert record == {"run_id": str(rid), "x": None, "l": [1, "a"]}


def test_export_loads_without_opentelemetry_and_otel_names_the_extra():
    """`rag_attrib.export` never imports OpenTelemetry; without it, the OTel exporter's import
    error names the pip install line."""
    code = (
        "import sys, rag_attrib.export, rag_attrib.export.log, rag_attrib.export.jsonl\n"
        "import io\n"
        "assert rag_attrib.export.JSONLExporter(io.StringIO()).capture() == {}\n"
        "assert 'opentelemetry' not in sys.modules, 'opentelemetry was imported'\n"
        "sys.modules['opentelemetry'] = None  # as if it were not installed\n"
        "from rag_attrib.errors import MissingDependencyError\n"
        "try:\n"
        "    from rag_attrib.export import OTelExporter\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, timeout=60, capture_output=True, text=True
    ).stdout
    assert "pip install 'rag-attrib[otel]'" in out
