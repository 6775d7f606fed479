"""Delivering an attribution: into the call's config, onto the output, as a last stream
chunk, as the "attribution" custom event, and as a child run for run-based tracers."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    BaseCallbackHandler,
    BaseCallbackManager,
    CallbackManagerForChainRun,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import patch_config
from langchain_core.runnables.utils import AddableDict

from .._streams import NO_CHUNK
from ._read import ANSWER_KEYS, last_answer
from .handler import EVENT_NAME

logger = logging.getLogger("rag_attrib.integrations.langchain")

ChunkMode = Literal["auto", "always", "never"]
"""When a stream gets a last chunk carrying the attribution (see `with_attribution`)."""


def with_handler(config: RunnableConfig, handler: BaseCallbackHandler) -> RunnableConfig:
    """A copy of `config` whose callbacks also include `handler` (inherited by every child)."""
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        return patch_config(config, callbacks=manager)
    patched = patch_config(config)
    patched["callbacks"] = [*(callbacks or []), handler]
    return patched


def unwrapped(output: Any) -> tuple[Any, Callable[[Any], Any]]:
    """The output to read and attach to, and how to wrap it back: a LangGraph
    `invoke(..., version="v2")` returns `GraphOutput(value=state, interrupts=...)`, a frozen
    dataclass (matched by its fields: langgraph is no dependency here)."""
    fields = getattr(output, "__dataclass_fields__", None)
    if isinstance(fields, dict) and set(fields) == {"value", "interrupts"}:
        if not isinstance(output, type):
            return output.value, lambda value: dataclasses.replace(output, value=value)
    return output, lambda value: value


def attached(output: Any, payload: dict[str, Any]) -> Any:
    """A copy of `output` carrying `payload`, or None for shapes that cannot carry it."""
    if isinstance(output, AIMessage):
        metadata = {**output.response_metadata, EVENT_NAME: payload}
        return output.model_copy(update={"response_metadata": metadata})
    if isinstance(output, Mapping):
        return {**output, EVENT_NAME: payload}
    if isinstance(output, str):
        return {"answer": str(output), EVENT_NAME: payload}
    return None


def with_answer(output: Any, old: str, new: str) -> Any:
    """A copy of `output` whose answer text `old` reads `new` (the repaired answer), or
    `output` itself where the answer is not plain text held in one place: a str, a message
    whose content is a str, or the str or message under the answer key of a dict (a graph's
    state too: the last answering message of `messages`). Content block lists, structured
    outputs and anything else are returned unchanged."""
    if isinstance(output, str):
        return new if str(output) == old else output
    if isinstance(output, BaseMessage):
        if isinstance(output.content, str) and output.content == old:
            return output.model_copy(update={"content": new})
        return output
    if not isinstance(output, Mapping):
        return output
    for key in ANSWER_KEYS:
        item = output.get(key)
        if isinstance(item, (str, BaseMessage)):
            return {**output, key: with_answer(item, old, new)}
    messages = output.get("messages")
    answering = last_answer(messages) if isinstance(messages, list) else None
    if isinstance(messages, list) and answering is not None:
        k = next(k for k, m in enumerate(messages) if m is answering)
        changed = [*messages]
        changed[k] = with_answer(answering, old, new)
        return {**output, "messages": changed}
    return output


def final_chunk(total: Any, payload: dict[str, Any], mode: ChunkMode) -> Any:
    """The extra last chunk of a stream, or `NO_CHUNK`.

    "auto" adds one only where chunks add up with `+`: message chunks and `AddableDict`s.
    Text streams must stay joinable, whole messages do not add up (`AIMessage +
    AIMessageChunk` builds a prompt), and LangGraph state chunks are plain dicts that loops
    index by key: those get the custom event, `last_result` and the child run only.
    """
    if mode == "never":
        return NO_CHUNK
    if isinstance(total, BaseMessageChunk):
        empty: str | list[Any] = "" if isinstance(total.content, str) else []
        return AIMessageChunk(content=empty, response_metadata={EVENT_NAME: payload})
    if isinstance(total, AddableDict) or mode == "always":
        return AddableDict({EVENT_NAME: payload})
    return NO_CHUNK


def dispatch(payload: dict[str, Any], config: RunnableConfig) -> None:
    try:
        dispatch_custom_event(EVENT_NAME, payload, config=config)
    except Exception:  # a user's handler may raise; the chain's output matters more
        logger.warning("rag_attrib: dispatching the attribution event failed", exc_info=True)


async def adispatch(payload: dict[str, Any], config: RunnableConfig) -> None:
    try:
        await adispatch_custom_event(EVENT_NAME, payload, config=config)
    except Exception:  # a user's handler may raise; the chain's output matters more
        logger.warning("rag_attrib: dispatching the attribution event failed", exc_info=True)


def record_child_run(
    run_manager: CallbackManagerForChainRun, answer: str, payload: dict[str, Any]
) -> None:
    """A child run named "attribution" whose outputs hold the payload.

    Run-based tracers (LangSmith) ignore custom events and record run outputs only; outputs
    that cannot carry the payload (text streams) would otherwise leave no trace of it.
    """
    try:
        child = run_manager.get_child().on_chain_start(None, {"answer": answer}, name=EVENT_NAME)
        child.on_chain_end({EVENT_NAME: payload})
    except Exception:
        logger.warning("rag_attrib: recording the attribution run failed", exc_info=True)


async def arecord_child_run(
    run_manager: AsyncCallbackManagerForChainRun, answer: str, payload: dict[str, Any]
) -> None:
    try:
        child = await run_manager.get_child().on_chain_start(
            None, {"answer": answer}, name=EVENT_NAME
        )
        await child.on_chain_end({EVENT_NAME: payload})
    except Exception:
        logger.warning("rag_attrib: recording the attribution run failed", exc_info=True)
