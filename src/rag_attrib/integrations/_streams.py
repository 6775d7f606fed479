"""Streams, for every integration: one tee for sync and async, and the answer warmer.

`tap_iter` / `tap_aiter` pass a stream's chunks through unchanged and tell a `StreamTap` what
happened (as langchain-core's `tap_output_iter` / `tap_output_aiter` do for its tracers): every
chunk, the end (which may add one last chunk), or an early stop. A tap's fault never reaches
the consumer. `Warmer` encodes the answer sentence by sentence while it streams.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from ..engine import Attributor
from ..results import Source
from ..streaming import BackgroundAttributionStream
from ._pipeline import warm_attributor

__all__ = ["NO_CHUNK", "StreamTap", "Warmer", "tap_aiter", "tap_iter"]

logger = logging.getLogger("rag_attrib.integrations")

T = TypeVar("T")

NO_CHUNK: Any = object()
"""What `StreamTap.finish` returns when the stream gets no extra last chunk."""


class StreamTap(Protocol):
    """What a tee tells about a stream. Only `finish`/`afinish` may be slow."""

    def on_chunk(self, chunk: Any) -> None:
        """A chunk is about to reach the consumer."""

    def on_stop(self) -> None:
        """The stream stopped early: a break, an error or a cancellation. Nothing is attributed."""

    def finish(self) -> Any:
        """The stream is exhausted: attribute; return one more chunk, or `NO_CHUNK`."""

    async def afinish(self) -> Any:
        """`finish` for async streams."""


def tap_iter(chunks: Iterable[T], tap: StreamTap) -> Iterator[T]:
    """Yield `chunks` unchanged, telling `tap`; then the chunk `tap.finish()` returns, if any.

    An early break closes this generator at a `yield`, so `finish` never sees a partial answer.
    """
    live = True
    try:
        for chunk in chunks:
            live = live and _fed(tap, chunk)
            yield chunk
    except BaseException:
        _stopped(tap)
        raise
    final = _finished(tap.finish) if live else NO_CHUNK
    if final is not NO_CHUNK:
        yield final


async def tap_aiter(chunks: AsyncIterable[T], tap: StreamTap) -> AsyncIterator[T]:
    """`tap_iter` for async streams (`tap.afinish()` is awaited)."""
    live = True
    try:
        async for chunk in chunks:
            live = live and _fed(tap, chunk)
            yield chunk
    except BaseException:
        _stopped(tap)
        raise
    final = NO_CHUNK
    if live:
        try:
            final = await tap.afinish()
        except Exception:  # never break the user's stream
            logger.exception("rag_attrib: finishing a streamed answer failed; the stream is intact")
    if final is not NO_CHUNK:
        yield final


def _fed(tap: StreamTap, chunk: Any) -> bool:
    """Give `tap` the chunk; False (and the tap told to stop) when it failed."""
    try:
        tap.on_chunk(chunk)
    except Exception:
        logger.exception("rag_attrib: following a stream failed; the stream is intact")
        _stopped(tap)
        return False
    return True


def _stopped(tap: StreamTap) -> None:
    try:
        tap.on_stop()
    except Exception:
        logger.debug("rag_attrib: stopping a stream tap failed", exc_info=True)


def _finished(finish: Callable[[], Any]) -> Any:
    try:
        return finish()
    except Exception:  # never break the user's stream
        logger.exception("rag_attrib: finishing a streamed answer failed; the stream is intact")
        return NO_CHUNK


class Warmer:
    """Encodes a streamed answer sentence by sentence while it streams, off the caller's thread.

    Once the sources are known and answer text arrives, it opens a
    `BackgroundAttributionStream` (which encodes the sources) and feeds it the new text. The
    final result is still computed from the complete answer, so it equals the non-streaming one:
    the warm embedding cache only leaves the last sentence to encode. Never raises.

    Args:
        attributor: the integration's attributor; None means the shared default, used only once
            it exists (building it loads a model, which would stall the stream).
        sources: returns the sources known so far and the question (called until it has some).
    """

    def __init__(
        self,
        attributor: Attributor | None,
        sources: Callable[[], tuple[Sequence[Source], str | None]],
    ) -> None:
        self._attributor = attributor
        self._sources = sources
        self.stream: BackgroundAttributionStream | None = None
        self._off = False

    def open(self) -> None:
        """Start encoding the sources now (e.g. while the LLM starts), if they are known."""
        self._guard(lambda: None)

    def add(self, token: str) -> None:
        """Feed the next piece of the answer."""
        if isinstance(token, str) and token:
            self._guard(lambda: self._feed(token))

    def follow(self, text: str | None) -> None:
        """Feed whatever the answer so far, `text`, adds to what was fed."""
        if text:
            self._guard(lambda: self._follow(text))

    def _guard(self, step: Callable[[], None]) -> None:
        if self._off:
            return
        try:
            if self.stream is None:
                self.stream = self._open()
            if self.stream is not None:
                step()
        except Exception:  # warming is an optimisation: never break the user's stream
            logger.debug("rag_attrib: warming a streamed answer failed", exc_info=True)
            self.close()

    def _feed(self, token: str) -> None:
        if self.stream is not None:
            self.stream.add(token)

    def _follow(self, text: str) -> None:
        fed = self.stream.text if self.stream is not None else ""
        if len(text) == len(fed):
            return
        if not text.startswith(fed):  # the output rewrote its answer: stop guessing
            self.close()
            return
        self._feed(text[len(fed) :])

    def _open(self) -> BackgroundAttributionStream | None:
        attributor = warm_attributor(self._attributor)
        if attributor is None:
            self._off = True
            return None
        sources, question = self._sources()
        if not sources:  # not known yet: try again with the next text
            return None
        return BackgroundAttributionStream(attributor, sources, question)

    def close(self) -> None:
        """Stop warming (the end of the stream, an early stop or a failure)."""
        self._off = True
        if self.stream is not None:
            self.stream.close()

    def settle(self, timeout: float | None = None) -> None:
        """Stop warming and wait (at most `timeout` s) for the encoding under way.

        What had not started is left to the final attribution, which encodes it in one batch.
        """
        self.close()
        if self.stream is not None:
            self.stream.wait(timeout)

    async def asettle(self, timeout: float | None = None) -> None:
        """`settle` without blocking the event loop."""
        self.close()
        if self.stream is not None:
            idle = asyncio.wrap_future(self.stream.idle())
            try:
                await asyncio.wait_for(asyncio.shield(idle), timeout)
            except (TimeoutError, asyncio.TimeoutError):
                pass  # the final attribution's own budget reports the timeout
