"""The framework-free integration core: attribute without raising, budgets, export, streams."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from rag_attrib import Attributor, Source, engine
from rag_attrib._types import FloatMatrix
from rag_attrib.integrations._pipeline import (
    TIMED_OUT,
    Job,
    Reporter,
    aattribute_job,
    arun_job,
    attribute_job,
    check_timeout,
    export_context,
    export_result,
    failed_result,
    join_errors,
    prompts_behind,
    reached,
    run_job,
    warm_attributor,
    written_by,
)
from rag_attrib.integrations._streams import NO_CHUNK, Warmer, tap_aiter, tap_iter
from rag_attrib.integrations._threads import History, Threads
from rag_attrib.testing import FailingEmbedder, HashingEmbedder

SOURCES = [
    Source("a", "The bridge opened in 1932. It carries six lanes."),
    Source("b", "The tower was painted red in 1950."),
]
ANSWER = "The bridge opened in 1932. The tower was painted red in 1950."


class SlowEmbedder(HashingEmbedder):
    """A hashing embedder that sleeps before every encode and counts finished encodes."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.finished = 0

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        time.sleep(self.delay)
        out = super().encode(texts)
        self.finished += 1
        return out


class TextRecorder(HashingEmbedder):
    """A hashing embedder that keeps every text it encoded."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        self.texts.extend(texts)
        return super().encode(texts)


class Recorder:
    """An exporter that keeps what it got."""

    def __init__(self) -> None:
        self.got: list[tuple[Any, dict[str, Any]]] = []

    def export(self, result: Any, context: Any) -> None:
        self.got.append((result, dict(context)))


class Broken:
    def export(self, result: Any, context: Any) -> None:
        raise OSError("disk full")


def test_attribute_job_cites_and_keeps_the_problem_in_error():
    """A job's problem (nothing to cite, ...) ends in `error` next to the engine's result."""
    result = attribute_job(Attributor(HashingEmbedder()), Job(ANSWER, SOURCES, None, "why"))
    assert [s.citations[0].source_id for s in result.answer_sentences] == ["a", "b"]
    assert result.error == "why"


def test_engine_failure_is_a_result_not_an_exception(caplog):
    """A failing embedder gives a result with `error`, logged once at WARNING."""
    with caplog.at_level(logging.WARNING):
        result = attribute_job(Attributor(FailingEmbedder()), Job(ANSWER, SOURCES, "q?", "p"))
    assert result.error == "p; attribution failed: RuntimeError: embedder failed on purpose"
    assert result.answer == ANSWER and result.question == "q?" and not result.answer_sentences
    assert sum("attribution failed" in r.message for r in caplog.records) == 1


def test_timeout_returns_in_time_and_reports_timed_out(caplog):
    """Past its budget the call returns `error="timed out"` long before the slow encoder ends."""
    slow = Attributor(SlowEmbedder(2.0))
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        result = attribute_job(slow, Job(ANSWER, SOURCES), timeout=0.05)
    assert time.perf_counter() - started < 1.5
    assert result.error == TIMED_OUT and not result.answer_sentences
    assert any("timeout" in r.message for r in caplog.records)
    budget = [t for t in threading.enumerate() if t.name.startswith("rag_attrib-budget")]
    assert budget and all(t.daemon for t in budget)  # a stuck encoder never blocks exit


def test_timed_out_job_exports_only_the_timed_out_result():
    """Exporters see one result per call: the timed-out one, never a late real one."""
    recorder = Recorder()
    slow = SlowEmbedder(0.3)
    result = run_job(Attributor(slow), Job(ANSWER, SOURCES), [recorder], {}, timeout=0.02)
    time.sleep(0.5)  # the worker's encode finishes meanwhile; its result is dropped
    assert [r.error for r, _ in recorder.got] == [TIMED_OUT] and result.error == TIMED_OUT


def test_queued_job_never_starts_after_its_call_timed_out():
    """A job still queued when its budget ends is cancelled: its encoder never runs."""
    started, release = threading.Semaphore(0), threading.Event()

    class Blocking(HashingEmbedder):
        def encode(self, texts: Sequence[str]) -> FloatMatrix:
            started.release()
            release.wait(10)
            return super().encode(texts)

    busy = [
        threading.Thread(
            target=attribute_job,
            args=(Attributor(Blocking()), Job(ANSWER, SOURCES)),
            kwargs={"timeout": 30},  # long: a blocker queued behind a leftover must not cancel
        )
        for _ in range(4)  # the budget pool's size: every worker is held
    ]
    for t in busy:
        t.start()
    for _ in busy:
        started.acquire(timeout=5)
    late = SlowEmbedder(0.0)
    try:
        result = attribute_job(Attributor(late), Job(ANSWER, SOURCES), timeout=0.05)
    finally:
        release.set()
        for t in busy:
            t.join()
    time.sleep(0.3)  # the freed workers would have picked the late job up by now
    assert result.error == TIMED_OUT and late.calls == 0


async def test_async_timeout_and_success():
    """`aattribute_job` keeps the loop free, honours the budget, and equals the sync result."""
    fast = Attributor(HashingEmbedder())
    result = await aattribute_job(fast, Job(ANSWER, SOURCES), timeout=5)
    assert (
        result.to_dict()["answer_sentences"]
        == (attribute_job(fast, Job(ANSWER, SOURCES)).to_dict()["answer_sentences"])
    )
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    timed = await aattribute_job(Attributor(SlowEmbedder(0.5)), Job(ANSWER, SOURCES), timeout=0.1)
    ticker.cancel()
    assert timed.error == TIMED_OUT and ticks >= 1


@pytest.mark.parametrize("bad", [0, -1, "1", True, float("nan")])
def test_check_timeout_rejects_what_is_not_a_positive_number(bad):
    """A timeout that is not a positive number raises a ValueError naming what is accepted."""
    with pytest.raises(ValueError, match="timeout must be None or a number of seconds > 0"):
        check_timeout(bad)


def test_check_timeout_accepts_none_numbers_and_inf():
    """None and inf mean no limit; numbers become floats."""
    assert check_timeout(None) is None and check_timeout(float("inf")) is None
    assert check_timeout(2) == 2.0


def test_export_keeps_an_exporter_failure_next_to_an_existing_error():
    """Exporter failures are appended to the error the result already had."""
    recorder = Recorder()
    result = failed_result("x", None, "no sources")
    context = export_context({"otel": 1}, "langchain", run_id="r1")
    out = export_result([Broken(), recorder], result, context)
    assert out.error == "no sources; Broken failed: OSError: disk full"
    assert recorder.got[0][1] == {"otel": 1, "framework": "langchain", "run_id": "r1"}
    assert join_errors(None, "") is None


async def test_arun_job_exports():
    """The async pipeline exports the result it returns."""
    recorder = Recorder()
    result = await arun_job(Attributor(HashingEmbedder()), Job(ANSWER, SOURCES), [recorder], {})
    assert recorder.got[0][0] is result and result.error is None


def test_reporter_logs_each_cause_once(caplog):
    """One WARNING per cause per reporter, however many calls had it."""
    reporter, other = Reporter(), Reporter()
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            reporter.report("nothing to cite: pass sources=")
            reporter.report(None)
        reporter.report("no answer")
        other.report("no answer")
    assert [r.message.split(" (")[0] for r in caplog.records] == [
        "rag_attrib: nothing to cite: pass sources=",
        "rag_attrib: no answer",
        "rag_attrib: no answer",
    ]


def test_reached_reads_a_prompt_that_shows_documents_as_their_repr():
    """A prompt filled with `[Document(...)]` shows a text's newlines as "\\n": it still
    reached that prompt; a text the prompt does not show did not."""
    texts = ["The bridge opened in 1932.\nIt carries six lanes.", "The ferry sails twice."]
    shown = f"Summaries:\n[Document(metadata={{}}, page_content={texts[0]!r})]"
    assert reached(texts, shown) == [True, False]


def test_prompts_behind_follows_llm_outputs_back_to_what_they_read():
    """A reduce prompt shows a collapse step's output, whose prompt shows two map outputs:
    those three prompts are behind it, not an unrelated LLM's, nor one whose short output
    ("Yes.") the reduce prompt happens to hold."""
    collapsed = "Bridge from 1932, six lanes; tower red since 1950."
    runs = [
        ("The bridge opened in 1932 and carries six lanes.", "Summarise: bridge text"),
        ("The tower was painted red in 1950.", "Summarise: tower text"),
        ("Penguins deliver the mail on Tuesdays.", "Summarise: penguin text"),
        ("Yes.", "Grade: bridge text"),
        (
            collapsed,
            "Collapse: The bridge opened in 1932 and carries six lanes.\n"
            "The tower was painted red in 1950.",
        ),
    ]
    final = f"Reduce: {collapsed} Yes."
    behind = prompts_behind(final, runs)
    assert behind[0] == final
    assert behind[1:] == [runs[4][1], runs[0][1], runs[1][1]]


def test_reached_reads_a_prompt_that_shows_texts_as_xml():
    """LangChain's SummarizationMiddleware shows messages as XML ("&" as "&amp;"): a text with
    "&", "<" or quotes still reached that prompt."""
    texts = ['Tom & Jerry\'s "bridge" <opened> in 1932.', "The ferry sails twice."]
    shown = '<message type="tool">Tom &amp; Jerry\'s "bridge" &lt;opened&gt; in 1932.</message>'
    assert reached(texts, shown) == [True, False]


BRIDGE = "The bridge opened in 1932. It carries six lanes."
TOWER = "The tower was painted red in 1950."
SUMMARY = "So far: the bridge opened in 1932 and the tower was painted red in 1950."


def _threads(**bounds: int) -> Threads[str]:
    return Threads(lambda text: text, lambda text: text, **bounds)


def test_threads_remember_what_an_llm_output_rests_on():
    """A thread keeps its documents and, for an LLM output whose prompt showed some, which:
    a later prompt showing that output is behind them (`prompts_behind` reads the pair), and
    an output of a summary of it too. Another thread, or none, has nothing."""
    threads = _threads()
    threads.remember("t1", [BRIDGE, TOWER], [(SUMMARY, f"Summarise:\n{BRIDGE}\n{TOWER}")])
    again = "Shorter: the bridge is from 1932, the tower red since 1950."
    threads.remember("t1", [], [(again, f"Summarise: {SUMMARY}"), ("Yes.", f"Grade: {BRIDGE}")])
    history = threads.history("t1")
    assert history.documents == (BRIDGE, TOWER)
    assert len(history.runs) == 2  # "Yes." is too short to tell where a text came from
    shown = "\n".join(prompts_behind(f"Answer from: {again}", history.runs))
    assert reached([BRIDGE, TOWER, "The ferry sails."], shown) == [True, True, False]
    assert threads.history("t2") == History() and threads.history(None) == History()
    threads.remember(None, [BRIDGE], [])
    assert len(threads) == 1


def test_threads_are_bounded():
    """The least recently used thread goes first; a thread keeps its newest documents (one
    found again counts as new) and its newest LLM outputs."""
    threads = _threads(max_threads=2, max_documents=2, max_runs=1)
    threads.remember("a", [BRIDGE], [])
    threads.remember("b", [TOWER], [])
    threads.history("a")  # used: "b" is now the oldest
    threads.remember("c", [TOWER], [])
    assert len(threads) == 2 and threads.history("b") == History()
    threads.remember("a", [TOWER, "The ferry sails.", BRIDGE], [])
    assert threads.history("a").documents == ("The ferry sails.", BRIDGE)
    threads.remember("a", [], [(SUMMARY, BRIDGE), (SUMMARY + " Later.", BRIDGE)])
    assert [probe for probe, _ in threads.history("a").runs] == [SUMMARY + " Later."]


def test_written_by_needs_an_llm_text_long_enough_to_tell():
    """A document holding an LLM's output (20+ characters) was written by it; "Yes." tells
    nothing."""
    assert written_by("Summary: The bridge opened in 1932.", ["The bridge opened in 1932."])
    assert not written_by("Yes. The bridge opened in 1932.", ["Yes."])


def test_warm_attributor_never_loads_the_default(monkeypatch):
    """The given attributor is used; else the default only if it is loaded already."""
    given = Attributor(HashingEmbedder())
    assert warm_attributor(given) is given
    monkeypatch.setattr(engine, "_default", None)
    assert warm_attributor(None) is None
    monkeypatch.setattr(engine, "_default", given)
    assert warm_attributor(None) is given


class Tap:
    def __init__(self, final: Any = NO_CHUNK, fail: str = "") -> None:
        self.chunks: list[Any] = []
        self.stopped = 0
        self.finished = 0
        self.final = final
        self.fail = fail

    def on_chunk(self, chunk: Any) -> None:
        if self.fail == "chunk":
            raise RuntimeError("tap failed")
        self.chunks.append(chunk)

    def on_stop(self) -> None:
        self.stopped += 1

    def finish(self) -> Any:
        self.finished += 1
        if self.fail == "finish":
            raise RuntimeError("finish failed")
        return self.final

    async def afinish(self) -> Any:
        return self.finish()


async def _agen(items: list[Any]):
    for item in items:
        yield item


async def _collect(tap: Tap, items: list[Any], stop_after: int | None = None) -> list[Any]:
    out = []
    stream = tap_aiter(_agen(items), tap)
    async for chunk in stream:
        out.append(chunk)
        if stop_after is not None and len(out) == stop_after:
            await stream.aclose()
            break
    return out


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_tee_passes_chunks_and_adds_the_final_one(mode):
    """Chunks pass unchanged, the tap sees each, and its final chunk comes last."""
    tap = Tap(final="!")
    if mode == "sync":
        out = list(tap_iter(["a", "b"], tap))
    else:
        out = asyncio.run(_collect(tap, ["a", "b"]))
    assert out == ["a", "b", "!"] and tap.chunks == ["a", "b"] and tap.finished == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_tee_early_stop_never_finishes(mode):
    """A consumer that stops early gets no final chunk; the tap is told to stop."""
    tap = Tap(final="!")
    if mode == "sync":
        stream = tap_iter(["a", "b", "c"], tap)
        out = [next(stream)]
        stream.close()
    else:
        out = asyncio.run(_collect(tap, ["a", "b", "c"], stop_after=1))
    assert out == ["a"] and tap.stopped == 1 and tap.finished == 0


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("fail", ["chunk", "finish"])
def test_tee_tap_faults_never_reach_the_consumer(mode, fail, caplog):
    """A failing tap leaves the stream whole, logs the fault, and adds no chunk."""
    tap = Tap(final="!", fail=fail)
    if mode == "sync":
        out = list(tap_iter(["a", "b"], tap))
    else:
        out = asyncio.run(_collect(tap, ["a", "b"]))
    assert out == ["a", "b"]
    assert tap.finished == (1 if fail == "finish" else 0)
    assert any(r.levelno == logging.ERROR for r in caplog.records)


def test_tee_source_error_propagates_and_stops_the_tap():
    """An error from the user's own stream reaches the user unchanged."""
    tap = Tap()

    def broken():
        yield "a"
        raise KeyError("user bug")

    with pytest.raises(KeyError):
        list(tap_iter(broken(), tap))
    assert tap.stopped == 1 and tap.finished == 0


def test_warmer_encodes_finished_sentences_while_the_answer_grows():
    """`follow` feeds only the new text; a rewritten answer stops the warming."""
    embedder = TextRecorder()
    attributor = Attributor(embedder)
    known: list[Source] = []
    warmer = Warmer(attributor, lambda: (known, None))
    warmer.follow("The bridge")
    assert warmer.stream is None  # no sources yet: try again later
    known.extend(SOURCES)
    warmer.follow("The bridge opened in 1932. The")
    warmer.follow("The bridge opened in 1932. The tower")
    assert warmer.stream is not None and warmer.stream.wait(5)
    warmer.settle()
    assert (
        warmer.stream is not None and warmer.stream.text == "The bridge opened in 1932. The tower"
    )
    assert "The bridge opened in 1932." in embedder.texts
    assert "The tower" not in embedder.texts  # the open sentence waits
    warmer2 = Warmer(attributor, lambda: (SOURCES, None))
    warmer2.follow("Alpha.")
    warmer2.follow("Beta.")  # not a continuation
    assert warmer2.stream is not None and warmer2.stream.text == "Alpha."


def test_warmer_without_a_loaded_default_does_nothing(monkeypatch):
    """With no attributor and no loaded default, the warmer stays off (no model load)."""
    monkeypatch.setattr(engine, "_default", None)
    warmer = Warmer(None, lambda: (SOURCES, None))
    warmer.open()
    warmer.add("The bridge opened in 1932. ")
    warmer.settle(0.1)
    assert warmer.stream is None and engine._default is None
