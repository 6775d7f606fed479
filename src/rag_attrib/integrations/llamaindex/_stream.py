"""Streaming responses: attribute once the caller has read the whole stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any, cast

from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse

from .._streams import NO_CHUNK, Warmer, tap_aiter, tap_iter

__all__ = ["wrap_stream"]


class _Tap:
    """Collects the streamed answer, warms its encoding, and attributes it at the end."""

    def __init__(
        self,
        warmer: Warmer,
        finish: Callable[[str, Warmer], None],
        afinish: Callable[[str, Warmer], Awaitable[None]],
    ) -> None:
        self._parts: list[str] = []
        self._warmer = warmer
        self._finish = finish
        self._afinish = afinish

    def on_chunk(self, chunk: Any) -> None:
        if isinstance(chunk, str):
            self._parts.append(chunk)
            self._warmer.add(chunk)

    def on_stop(self) -> None:
        self._warmer.close()

    def finish(self) -> Any:
        self._finish("".join(self._parts), self._warmer)
        return NO_CHUNK

    async def afinish(self) -> Any:
        await self._afinish("".join(self._parts), self._warmer)
        return NO_CHUNK


def wrap_stream(
    response: StreamingResponse | AsyncStreamingResponse,
    warmer: Warmer,
    finish: Callable[[str, Warmer], None],
    afinish: Callable[[str, Warmer], Awaitable[None]],
) -> None:
    """Replace `response.response_gen` by a tee that calls `finish(answer, warmer)` at its end.

    Only a stream read to its end is attributed: an early break never reaches `finish`.
    """
    if response.response_gen is None or response.response_txt is not None:
        return
    tap = _Tap(warmer, finish, afinish)
    # The tees are generators; LlamaIndex only iterates `response_gen`.
    if isinstance(response, AsyncStreamingResponse):
        tee = tap_aiter(response.response_gen, tap)
        response.response_gen = cast("AsyncGenerator[str, None]", tee)
    else:
        response.response_gen = cast(
            "Generator[str, None, None]", tap_iter(response.response_gen, tap)
        )
