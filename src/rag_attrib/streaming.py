"""Attribute a streamed answer while it is generated, so little is left when it ends."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future

from .engine import Attributor, SourceLike, to_sources
from .results import AttributionResult, Source
from .workers import LazyPool

__all__ = ["AttributionStream", "BackgroundAttributionStream", "shutdown_workers"]

logger = logging.getLogger(__name__)


class AttributionStream:
    """Feed an answer token by token; each finished sentence is encoded as soon as it is complete.

    The sources are encoded when the stream opens (usually while the LLM is still thinking) and
    every completed answer sentence goes into the attributor's embedding cache, so `finish()`
    only has to encode the last sentence and score the matrix.

    Thread-safe: tokens may arrive on one thread and `finish()` be called on another.

    Args:
        attributor: the attributor whose cache is warmed and which computes the result.
        sources: as for `Attributor.attribute`.
        question: as for `Attributor.attribute`.
        prewarm: encode the sources right away.

    Example:
        >>> stream = AttributionStream(attributor, sources)
        >>> for token in llm_tokens:
        ...     stream.add(token)
        >>> result = stream.finish()
    """

    def __init__(
        self,
        attributor: Attributor,
        sources: Sequence[SourceLike],
        question: str | None = None,
        *,
        prewarm: bool = True,
    ) -> None:
        self.attributor = attributor
        self.sources: list[Source] = to_sources(sources)
        self._given = sources  # attribute() reports what cleaning the sources dropped
        self.question = question
        self._text = ""
        self._base = 0  # where the first sentence that may still grow starts
        self._previous: str | None = None  # the last finished sentence (pronoun context)
        self._lock = threading.Lock()
        if prewarm:
            self.attributor.prewarm(self.sources)

    @property
    def text(self) -> str:
        """The answer received so far."""
        with self._lock:
            return self._text

    def add(self, token: str) -> int:
        """Append a piece of the answer; encode any sentences it completed.

        Returns:
            How many new sentences were encoded.
        """
        if not isinstance(token, str):
            msg = f"token must be str, got {type(token).__name__}"
            raise TypeError(msg)
        with self._lock:
            self._text += token
            base = self._base
            # Only the text from the open sentence on is split again: splitting the whole
            # answer on every token is quadratic in its length.
            tail = self._text[base:]
        spans = self.attributor.splitter(tail)
        # the last span may still grow; every span before it is final
        done = spans[:-1]
        if not done:
            return 0
        with self._lock:
            previous = self._previous
        self.attributor.prewarm_answer([s.text for s in done], self.question, previous=previous)
        with self._lock:
            self._base = max(self._base, base + spans[-1].start)
            self._previous = done[-1].text
        return len(done)

    def finish(self, answer: str | None = None) -> AttributionResult:
        """Attribute the whole answer (by default, the text received).

        Args:
            answer: the final answer, when the caller has it assembled already.
        """
        return self.attributor.attribute(
            self.text if answer is None else answer, self._given, question=self.question
        )


# the threads shared by every background stream (as many as cores, at most 4)
_pool = LazyPool(lambda: max(1, min(4, os.cpu_count() or 1)), "rag_attrib-stream")


def shutdown_workers(timeout: float | None = None) -> bool:
    """Stop the threads that warm background streams.

    Warming not started yet is cancelled (those streams attribute the usual way when they
    finish); warming under way is waited for up to `timeout` seconds (None: until done). At
    interpreter exit this runs with `timeout=0`, and a stuck embedder call never holds up the
    exit (the threads are daemons). A stream opened afterwards starts fresh threads.

    Returns:
        True if no worker thread is left running.
    """
    pool = _pool.take()
    return True if pool is None else pool.shutdown(timeout)


def _done_future() -> Future[None]:
    future: Future[None] = Future()
    future.set_result(None)
    return future


class BackgroundAttributionStream:
    """An `AttributionStream` whose encoding runs on worker threads: `add()` never waits.

    For integrations that sit between an LLM and its reader: the first token reaches the reader
    without waiting for the sources to be encoded, and an event loop is never blocked by the
    model. Opening the stream and every `add()` run in order on a shared pool of threads;
    tokens that arrive while the worker is busy are added together (the result is the same,
    since `AttributionStream` only ever looks at the text received). `finish()` stops the
    warming, waits for the encoding under way, and leaves what had not started to the final
    `attribute()`, which encodes it in one batch: when tokens came slower than sentences are
    encoded (the usual case), only the last sentence is left; when they came in a burst,
    nothing is encoded twice and no call is wasted.

    A failure while warming (a broken embedder, bad sources) is kept in `error`, logged at
    debug level, and stops the warming; `finish()` then attributes the usual way, raising
    whatever `Attributor.attribute` raises.

    Args:
        attributor: the attributor whose cache is warmed and which computes the result.
        sources: as for `Attributor.attribute`.
        question: as for `Attributor.attribute`.

    Example:
        >>> stream = BackgroundAttributionStream(attributor, sources)
        >>> for token in llm_tokens:
        ...     stream.add(token)
        ...     print(token, end="")
        >>> result = stream.finish()
    """

    def __init__(
        self,
        attributor: Attributor,
        sources: Sequence[SourceLike],
        question: str | None = None,
    ) -> None:
        self.attributor = attributor
        self.sources = sources
        self.question = question
        self.error: Exception | None = None
        self._stream: AttributionStream | None = None
        self._text = ""
        self._pending: list[str] = []
        self._closed = False
        self._idle: Future[None] | None = None  # set while a drain is queued or running
        # reentrant: a cancelled drain's callback may run inside _schedule, which holds it
        self._lock = threading.RLock()
        with self._lock:
            self._schedule()  # opening encodes the sources

    @property
    def text(self) -> str:
        """The answer received so far."""
        with self._lock:
            return self._text

    def add(self, token: str) -> None:
        """Append a piece of the answer; returns at once.

        Raises:
            TypeError: `token` is not a str.
        """
        if not isinstance(token, str):
            msg = f"token must be str, got {type(token).__name__}"
            raise TypeError(msg)
        with self._lock:
            self._text += token
            if self._closed:
                return
            self._pending.append(token)
            self._schedule()

    def close(self) -> None:
        """Stop warming: tokens not processed yet are not encoded (work under way finishes).

        Call `wait()` afterwards and then attribute: that is what `finish()` does.
        """
        with self._lock:
            self._closed = True
            self._pending.clear()

    def idle(self) -> Future[None]:
        """A future done once every token added so far is processed (`asyncio.wrap_future` it)."""
        with self._lock:
            return self._idle if self._idle is not None else _done_future()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every token added so far is processed.

        Returns:
            False if `timeout` seconds passed first.
        """
        try:
            self.idle().result(timeout)
        except TimeoutError:
            return False
        return True

    def finish(self, answer: str | None = None) -> AttributionResult:
        """Stop warming, then attribute the whole answer (by default, the text received).

        Args:
            answer: the final answer, when the caller has it assembled already.
        """
        self.close()
        self.wait()
        return self._attribute(answer)

    async def afinish(self, answer: str | None = None) -> AttributionResult:
        """`finish` without blocking the event loop."""
        self.close()
        await asyncio.wrap_future(self.idle())
        return await asyncio.to_thread(self._attribute, answer)

    def _attribute(self, answer: str | None) -> AttributionResult:
        return self.attributor.attribute(
            self.text if answer is None else answer, self.sources, question=self.question
        )

    def _schedule(self) -> None:
        """Queue a drain unless one is queued or running (call with the lock held)."""
        if self._idle is not None:
            return
        self._idle = Future()
        try:
            job = _pool.get().submit(self._drain)
        except RuntimeError as exc:  # the workers (or the interpreter) are shutting down
            self._stop(exc)
            return
        job.add_done_callback(self._cancelled)

    def _cancelled(self, job: Future[None]) -> None:
        """A drain cancelled before it ran (`shutdown_workers`) stops the warming."""
        if job.cancelled():
            with self._lock:
                self._stop(RuntimeError("the stream workers were shut down"))

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch = "".join(self._pending)
                self._pending.clear()
                if self._closed or (self._stream is not None and not batch):
                    self._stop(None)
                    return
            try:
                if self._stream is None:
                    self._stream = AttributionStream(self.attributor, self.sources, self.question)
                if batch:
                    self._stream.add(batch)
            except Exception as exc:  # the caller's answer matters more; finish() reports it
                logger.debug("rag_attrib: warming a streamed answer failed", exc_info=True)
                with self._lock:
                    self._stop(exc)
                return

    def _stop(self, error: Exception | None) -> None:
        """Mark the drain finished (call with the lock held)."""
        if error is not None:
            self.error = error
            self._closed = True
            self._pending.clear()
        idle, self._idle = self._idle, None
        if idle is not None:
            idle.set_result(None)
