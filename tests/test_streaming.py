"""AttributionStream and its background variant: sentences are encoded as they complete, and
the result equals attribute()."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

from rag_attrib import Attributor
from rag_attrib.streaming import AttributionStream, BackgroundAttributionStream
from rag_attrib.testing import FailingEmbedder, HashingEmbedder

SOURCES = ["The bridge opened in 1932. It spans the harbour.", "Tourists climb the arch."]
ANSWER = "The bridge opened in 1932. Visitors can climb its arch. It is grey."
# "It is grey." opens with a pronoun, so it is embedded alone and after the sentence before it
LAST_EMBEDDED = ["It is grey.", "Visitors can climb its arch. It is grey."]


def _tokens(text: str) -> list[str]:
    return [w + " " for w in text.split(" ")]


def test_stream_result_equals_one_shot_attribution() -> None:
    """Feeding tokens then finishing gives the same result as attributing the whole answer."""
    streamed = AttributionStream(Attributor(HashingEmbedder()), SOURCES)
    for token in _tokens(ANSWER):
        streamed.add(token)
    result = streamed.finish()
    direct = Attributor(HashingEmbedder()).attribute(streamed.text, SOURCES)
    assert result.answer_sentences == direct.answer_sentences
    assert result.sources == direct.sources


def test_only_the_last_sentence_is_left_to_encode() -> None:
    """Sources are encoded on open and each finished sentence during the stream."""
    embedder = HashingEmbedder()
    stream = AttributionStream(Attributor(embedder), SOURCES)
    assert embedder.texts_encoded == 3  # the source sentences
    added = sum(stream.add(t) for t in _tokens(ANSWER))
    assert added == 2  # "The bridge opened in 1932." is a cached source sentence
    before = embedder.texts_encoded
    stream.finish()
    assert embedder.texts_encoded - before == 2  # only "It is grey.", alone and in context


def test_finish_accepts_the_final_answer_and_rejects_non_text() -> None:
    """finish(answer) attributes the given text; add() needs str."""
    stream = AttributionStream(Attributor(HashingEmbedder()), SOURCES, prewarm=False)
    assert stream.finish("The bridge opened in 1932.").answer_sentences[0].supported
    with pytest.raises(TypeError, match="token must be str, got NoneType"):
        stream.add(None)  # type: ignore[arg-type]


def test_concurrent_streams_stay_apart() -> None:
    """Streams on one attributor in parallel threads keep their own answers."""
    attributor = Attributor(HashingEmbedder())

    def run(k: int) -> str:
        stream = AttributionStream(attributor, [f"Item {k} weighs {k} kg."])
        for token in _tokens(f"Item {k} weighs {k} kg. Done {k}."):
            stream.add(token)
        return stream.finish().answer

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(run, range(12))) == [
            f"Item {k} weighs {k} kg. Done {k}. " for k in range(12)
        ]


class RecordingEmbedder(HashingEmbedder):
    """A HashingEmbedder that keeps every batch; `gate` (when set) holds each encode until opened."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.gate = gate
        self.entered = threading.Event()

    def encode(self, texts):  # type: ignore[no-untyped-def]
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(5), "the test never opened the gate"
        self.batches.append(list(texts))
        return super().encode(texts)


@pytest.mark.parametrize(
    "text",
    [
        ANSWER,
        "Dr. Smith met Mr. Jones at 3 p.m. on Jan. 5. The fee was 3.5 per cent. They agreed.",
        "Steps:\n\n- Open the valve. Wait a minute.\n- Close it again.\n\nDone for today.",
        "Short. Also short. And a longer closing sentence here.",
    ],
)
def test_sentences_encoded_while_streaming_match_the_final_split(text):
    """The sentences encoded during the stream are exactly those of the whole answer, but the last."""
    embedder = RecordingEmbedder()
    stream = AttributionStream(Attributor(embedder), SOURCES, prewarm=False)
    for token in re.findall(r"\S+\s*|\s+", text):
        stream.add(token)
    encoded = [t for batch in embedder.batches for t in batch]
    expected = [s.text for s in stream.attributor.splitter(text)]
    assert encoded == expected[:-1]


def test_add_splits_only_the_open_sentence():
    """Each token re-splits only the text from the open sentence on: linear, not quadratic."""
    seen: list[int] = []
    attributor = Attributor(HashingEmbedder())
    split = attributor.splitter

    def counting(text: str):  # type: ignore[no-untyped-def]
        seen.append(len(text))
        return split(text)

    attributor.splitter = counting
    text = " ".join(f"Sentence number {k} talks about item {k} at length." for k in range(200))
    stream = AttributionStream(attributor, SOURCES, prewarm=False)
    tokens = _tokens(text)
    for token in tokens:
        stream.add(token)
    assert len(seen) == len(tokens)
    assert sum(seen) < 10 * len(text)  # re-splitting everything would be ~len(tokens)/2 times


def test_background_stream_equals_one_shot_and_leaves_only_the_last_sentence():
    """Warming on a worker: the result is attribute()'s, and finish() encodes one sentence."""
    embedder = RecordingEmbedder()
    stream = BackgroundAttributionStream(Attributor(embedder), SOURCES)
    for token in _tokens(ANSWER):
        stream.add(token)
        assert stream.wait(timeout=5)  # tokens slower than the encoder, as from a real LLM
    result = stream.finish()
    first, *during, last = embedder.batches
    assert first == [
        "The bridge opened in 1932.",
        "It spans the harbour.",
        "Tourists climb the arch.",
    ]
    assert during == [["Visitors can climb its arch."]]
    assert last == LAST_EMBEDDED
    direct = Attributor(HashingEmbedder()).attribute(stream.text, SOURCES)
    assert result.answer_sentences == direct.answer_sentences
    assert result.sources == direct.sources


async def test_background_add_never_waits_and_a_burst_is_encoded_once():
    """add() returns while the encoder is busy; afinish() waits without blocking the loop and
    leaves the queued text to one final batch."""
    gate = threading.Event()
    embedder = RecordingEmbedder(gate)
    stream = BackgroundAttributionStream(Attributor(embedder), SOURCES)
    assert embedder.entered.wait(5)  # the worker is encoding the sources
    for token in _tokens(ANSWER):
        stream.add(token)  # this would hang if add() waited for the worker
    assert not stream.wait(timeout=0.01)
    finishing = asyncio.create_task(stream.afinish())
    await asyncio.sleep(0.01)  # the loop keeps running while the worker is stuck
    assert not finishing.done()
    gate.set()
    result = await finishing
    assert result.answer == ANSWER + " "
    assert embedder.batches == [
        ["The bridge opened in 1932.", "It spans the harbour.", "Tourists climb the arch."],
        ["Visitors can climb its arch.", *LAST_EMBEDDED],
    ]


def test_background_close_drops_the_tokens_not_yet_encoded():
    """close() (an early break) stops the warming: queued text is never encoded."""
    gate = threading.Event()
    embedder = RecordingEmbedder(gate)
    stream = BackgroundAttributionStream(Attributor(embedder), SOURCES)
    assert embedder.entered.wait(5)  # the worker is encoding the sources
    for token in _tokens(ANSWER):
        stream.add(token)
    stream.close()
    gate.set()
    assert stream.wait(timeout=5)
    assert embedder.batches == [
        ["The bridge opened in 1932.", "It spans the harbour.", "Tourists climb the arch."]
    ]


def test_background_warming_failure_is_kept_not_raised():
    """A failing embedder stops the warming quietly; finish() then fails as attribute() does."""
    stream = BackgroundAttributionStream(Attributor(FailingEmbedder()), SOURCES)
    for token in _tokens(ANSWER):
        stream.add(token)
    assert stream.wait(timeout=5)
    assert isinstance(stream.error, RuntimeError)
    with pytest.raises(RuntimeError, match="embedder failed on purpose"):
        stream.finish()


def test_background_streams_on_threads_stay_apart():
    """Many background streams on one attributor keep their own answers and sources."""
    attributor = Attributor(HashingEmbedder())

    def run(k: int) -> tuple[str, str]:
        stream = BackgroundAttributionStream(attributor, [f"Item {k} weighs {k} kg."])
        for token in _tokens(f"Item {k} weighs {k} kg. Done {k}."):
            stream.add(token)
        result = stream.finish()
        return result.answer, result.answer_sentences[0].citations[0].text

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(run, range(12))) == [
            (f"Item {k} weighs {k} kg. Done {k}. ", f"Item {k} weighs {k} kg.") for k in range(12)
        ]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_background_stream_works_in_a_forked_child():
    """A child forked after the worker pool started still gets its streams warmed and finished."""
    import os

    warm = BackgroundAttributionStream(Attributor(HashingEmbedder()), SOURCES)
    warm.add("Started. ")
    warm.finish()  # the pool's threads exist now
    with warnings.catch_warnings():  # Python 3.12+ warns about forking a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: exit 0 only if a stream finishes within the timeout
        code = 1
        try:
            stream = BackgroundAttributionStream(Attributor(HashingEmbedder()), SOURCES)
            stream.add(ANSWER)
            code = 0 if stream.wait(timeout=5) and stream.finish().answer == ANSWER else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


class _Gate:
    """An embedder whose first `stuck` calls wait until `release` is set."""

    model_id = "gate"

    def __init__(self, stuck: int = 1) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.stuck = stuck
        self.inner = HashingEmbedder()

    def encode(self, texts):
        if self.stuck > 0:
            self.stuck -= 1
            self.entered.set()
            self.release.wait(30)
        return self.inner.encode(texts)


def _stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rag_attrib-stream")]


def test_shutdown_workers_cancels_queued_warming_and_joins_the_rest():
    """shutdown_workers: queued warming is cancelled (its stream still finishes), work under
    way is waited for, and afterwards no worker thread is left; a new stream starts afresh."""
    from rag_attrib.streaming import _pool, shutdown_workers

    assert shutdown_workers(timeout=5)
    gate = _Gate(stuck=1)
    attributor = Attributor(gate)
    blockers = [BackgroundAttributionStream(attributor, SOURCES)]
    assert gate.entered.wait(10)
    # fill every worker, then queue one more stream that cannot start
    size = _pool.get()._size
    others = [
        BackgroundAttributionStream(Attributor(_Gate(stuck=1)), SOURCES) for _ in range(size - 1)
    ]
    queued = BackgroundAttributionStream(Attributor(HashingEmbedder()), SOURCES)
    assert not shutdown_workers(timeout=0.2)  # the stuck calls are still running
    assert isinstance(queued.error, RuntimeError)  # cancelled: finish() attributes as usual
    assert queued.finish(ANSWER).answer_sentences
    gate.release.set()
    for stream in others:
        stream.attributor.embedder.embedder.release.set()
    for stream in [*blockers, *others]:
        assert stream.wait(10)
    deadline = time.monotonic() + 10
    while _stream_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _stream_threads() == []
    fresh = BackgroundAttributionStream(Attributor(HashingEmbedder()), SOURCES)
    fresh.add(ANSWER)
    assert fresh.finish().answer_sentences
    assert shutdown_workers(timeout=5) and _stream_threads() == []


def test_a_stuck_embedder_does_not_hold_up_interpreter_exit():
    """A program whose stream is stuck in the embedder still exits promptly and cleanly."""
    code = textwrap.dedent(
        """
        import threading
        from rag_attrib import Attributor
        from rag_attrib.streaming import BackgroundAttributionStream

        class Stuck:
            model_id = "stuck"
            def encode(self, texts):
                threading.Event().wait()  # never returns

        stream = BackgroundAttributionStream(Attributor(Stuck()), ["A source sentence."])
        stream.add("An answer. And more. ")
        print("done")
        """
    )
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "done" and "Traceback" not in out.stderr
    assert time.monotonic() - started < 60
