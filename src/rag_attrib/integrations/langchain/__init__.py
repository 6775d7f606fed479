"""LangChain integration: cited answers from an unchanged chain, LangGraph graph or agent.

Two faces over one engine:

- `AttributionCallbackHandler`: add it to `config={"callbacks": [...]}` of an existing chain,
  graph or agent. It collects the documents of one root invocation (its input, retrievers,
  tools, chain and node outputs, `add_sources`) and the answer it returned, attributes the
  answer when the root run ends, exports the result, and keeps it readable
  (`handler.last_result`, `handler.results[root_run_id]`). When the chain returns the chat
  model's own `AIMessage`, that message also gets `response_metadata["attribution"]`.
- `with_attribution(chain)`: a wrapper Runnable that returns a copy with the attribution
  attached, for any output shape and for streams.

`add_sources(docs)` hands documents in from inside a node or middleware where no run returns
them. The attribution attached is `rag_attrib.convert.attribution_payload(result)`: the result's
`to_dict()` plus LangChain v1 `Citation`-shaped `"citations"`; when the answer cites its
sources itself (`[n]` markers, a `CitedAnswer`'s source ids, Anthropic citation blocks) also
`"citation_check"`, and with `with_attribution(..., repair_citations=True)` the answer the
caller gets has its markers repaired (`"citation_repair"` lists the changes).

Install with `pip install 'rag-attrib[langchain]'`.
"""

from __future__ import annotations

from ...errors import MissingDependencyError

try:
    import langchain_core  # noqa: F401  (the first import names the extra when it is missing)
except ImportError:
    raise MissingDependencyError(
        "LangChain support needs langchain-core: pip install 'rag-attrib[langchain]'",
        name="langchain_core",
    ) from None

from ._read import documents_to_sources
from .embeddings import MiniLMEmbeddings
from .handler import EVENT_NAME, AttributionCallbackHandler, attribution_callback
from .runnable import AttributedRunnable, with_attribution
from .sources import aadd_sources, add_sources

__all__ = [
    "EVENT_NAME",
    "AttributedRunnable",
    "AttributionCallbackHandler",
    "MiniLMEmbeddings",
    "aadd_sources",
    "add_sources",
    "attribution_callback",
    "documents_to_sources",
    "with_attribution",
]
