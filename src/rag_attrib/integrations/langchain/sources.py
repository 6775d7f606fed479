"""`add_sources`: hand documents to the attribution from inside a node, tool or middleware."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from langchain_core.callbacks import adispatch_custom_event, dispatch_custom_event
from langchain_core.documents import Document
from langchain_core.runnables import RunnableConfig

from ._capture import SOURCES_EVENT

__all__ = ["aadd_sources", "add_sources"]

logger = logging.getLogger("rag_attrib.integrations.langchain")

_OUTSIDE = (
    "rag_attrib: add_sources() was called outside a LangChain run, so no call can cite these "
    "documents: call it inside a node, tool or runnable (pass its config on Python 3.10 async)"
)


def add_sources(documents: Iterable[Document], config: RunnableConfig | None = None) -> None:
    """Tell the attribution of the current call which documents the LLM sees.

    For documents no run returns: a `vector_store.similarity_search` inside `@dynamic_prompt`
    middleware, or documents a node formats into a prompt without putting them in the state.
    Both `with_attribution` and `AttributionCallbackHandler` receive them (as the custom event
    "rag_attrib.sources"); they are kept even when the prompt does not show them. Never raises.

    Args:
        documents: the `Document`s the LLM will see.
        config: the run's config; needed only where LangChain cannot find the current run
            (async code on Python 3.10).

    Raises:
        TypeError: an item is not a `Document` (a call outside a run is only logged).

    Example:
        >>> def retrieve(state):
        ...     docs = vector_store.similarity_search(state["question"])
        ...     add_sources(docs)
        ...     return {"context": "\\n\\n".join(d.page_content for d in docs)}
    """
    data = {"documents": _checked(documents)}
    try:
        dispatch_custom_event(SOURCES_EVENT, data, config=config)
    except Exception:  # outside a run: the user's code goes on
        logger.warning(_OUTSIDE, exc_info=True)


async def aadd_sources(documents: Iterable[Document], config: RunnableConfig | None = None) -> None:
    """`add_sources` for async nodes and middleware."""
    data = {"documents": _checked(documents)}
    try:
        await adispatch_custom_event(SOURCES_EVENT, data, config=config)
    except Exception:  # outside a run: the user's code goes on
        logger.warning(_OUTSIDE, exc_info=True)


def _checked(documents: Iterable[Document]) -> list[Document]:
    items = list(documents)
    bad = [type(d).__name__ for d in items if not isinstance(d, Document)]
    if bad:
        msg = f"add_sources takes langchain_core Documents; got {', '.join(sorted(set(bad)))}"
        raise TypeError(msg)
    return items
