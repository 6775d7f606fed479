"""LlamaIndex integration: cited answers on what your engine, workflow or agent returns.

Two ways in:

- `instrument()` registers once on LlamaIndex's root instrumentation dispatcher. Then every
  query engine (`query`, `aquery`, streaming or not), chat engine (`chat`, `achat`,
  `stream_chat`, `astream_chat`), response synthesizer called on its own (as in a RAG
  workflow) and agent (`FunctionAgent`, `ReActAgent`, `AgentWorkflow`) gets its answer
  attributed to the document nodes that reached the LLM. `uninstrument()` removes it.
- `attribute_response(response)` does the same for one response or agent output you have.

Where it lands: `response.metadata["attribution"]` on responses (for streams, once consumed);
`output["attribution"]` on an agent's `AgentOutput` (a workflow event is dict-like).

The attached value is `rag_attrib.convert.attribution_payload(result)`: `result.to_dict()`
plus LangChain-shaped `"citations"`. Source ids are node ids, offsets index the node text
(`node.get_content(MetadataMode.NONE)`), and each citation's `extras` also carry the node's
`ref_doc_id` and metadata (`file_name`, `page_label`, ...). Note that `Response.metadata`
otherwise maps node ids to node metadata: `"attribution"` is the one key this module adds.
An answer that cites its nodes (`CitationQueryEngine`'s `[n]`, an `output_cls` with source
ids, on a query engine or an agent) also gets `"citation_check"` in it;
`instrument(repair_citations=True)` puts the answer with its markers repaired in
`response.response` (never in a stream).

Only evidence is cited: nodes the pipeline wrote itself (a `SubQuestionQueryEngine`'s
"Sub question: ...\\nResponse: ..." nodes, anything with no `ref_doc_id` that holds the text of
an LLM call in the same call) give way to the document nodes retrieved under them.

Install with `pip install 'rag-attrib[llamaindex]'`.
"""

from __future__ import annotations

from ...errors import MissingDependencyError

try:
    from ._attach import ATTRIBUTION_KEY, AttributionEvent
    from .embeddings import MiniLMEmbedding
    from .instrument import instrument, uninstrument
    from .response import attribute_response
except ImportError as exc:
    if not (exc.name or "").startswith("llama_index"):
        raise
    raise MissingDependencyError(
        "LlamaIndex support needs llama-index-core: pip install 'rag-attrib[llamaindex]'",
        name="llama_index.core",
    ) from None

__all__ = [
    "ATTRIBUTION_KEY",
    "AttributionEvent",
    "MiniLMEmbedding",
    "attribute_response",
    "instrument",
    "uninstrument",
]
