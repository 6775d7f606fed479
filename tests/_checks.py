"""Plain helpers shared by the citation tests (imported by name: tests/ is on sys.path)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def lone_marker(attribution: Mapping[str, Any], *, claim: bool = False) -> tuple[Any, ...] | None:
    """(source_id, verdict[, claim text]) of the one marker of an attribution's citation check,
    None when it has no check. Odd citations never make an error, so none is allowed here."""
    assert attribution["error"] is None
    check = attribution.get("citation_check")
    if check is None:
        return None
    (marker,) = check["markers"]
    found: tuple[Any, ...] = (marker["source_id"], marker["verdict"])
    if claim:
        found += (marker["claim"]["text"] if marker["claim"] else None,)
    return found


def chat_engine(index: Any, llm: Any) -> Any:
    """A LlamaIndex context chat engine over `index` with an in-process memory: the default
    `Memory` keeps history in aiosqlite, whose worker thread outlives the test's event loop
    and fails in a later test ("Event loop is closed")."""
    from llama_index.core.chat_engine import ContextChatEngine
    from llama_index.core.memory import ChatMemoryBuffer

    return ContextChatEngine.from_defaults(
        retriever=index.as_retriever(similarity_top_k=3),
        llm=llm,
        memory=ChatMemoryBuffer.from_defaults(token_limit=4000),
    )
