"""Converters from an `AttributionResult` to the citation shapes other tools use (stdlib only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._types import JSONDict
from .results import AttributionResult, Citation, SentenceAttribution, backing_citations

if TYPE_CHECKING:
    from .repair import CitationRepair

__all__ = [
    "attribution_payload",
    "citation_check",
    "to_anthropic_citations",
    "to_cohere_citations",
    "to_langchain_citations",
]


def source_name(source_id: str, position: int) -> str:
    """How a source is named to people: the id the user gave, or "source N" (1-based) when the
    id is only the position the engine filled in for a plain string ("0", "1", ...)."""
    if not source_id or source_id == str(position):
        return f"source {position + 1}"
    return source_id


def _source_meta(result: AttributionResult, c: Citation) -> dict[str, Any]:
    meta = result.sources[c.source_index].metadata if c.source_index < len(result.sources) else {}
    out: dict[str, Any] = {}
    for key in ("url", "title"):
        value = meta.get(key) if meta else None
        if isinstance(value, str):
            out[key] = value
    if "url" not in out and meta and isinstance(meta.get("source"), str):
        out["url"] = meta["source"]
    return out


def _pairs(result: AttributionResult) -> list[tuple[SentenceAttribution, Citation]]:
    return [(s, c) for s in result.answer_sentences for c in backing_citations(s)]


def to_langchain_citations(result: AttributionResult) -> list[JSONDict]:
    """LangChain v1 `Citation` annotations, one per (answer sentence, cited source sentence).

    `start_index`/`end_index` are offsets in the answer (as LangChain specifies); the cited
    source, its offsets and the scores are in `extras`.
    """
    out = []
    for s, c in _pairs(result):
        item: JSONDict = {
            "type": "citation",
            "cited_text": c.text,
            "start_index": s.start,
            "end_index": s.end,
            **_source_meta(result, c),
            "extras": {
                "source_id": c.source_id,
                "source_index": c.source_index,
                "sentence_index": c.sentence_index,
                "source_start": c.start,
                "source_end": c.end,
                "score": c.score,
                "similarity": c.similarity,
                "answer_sentence_index": s.index,
                **({"also_in": list(c.also_in)} if c.also_in else {}),
            },
        }
        out.append(item)
    return out


def to_anthropic_citations(result: AttributionResult) -> list[JSONDict]:
    """Anthropic-style `char_location` citations (source offsets), grouped by answer sentence."""
    return [
        {
            "text": s.text,
            "citations": [
                {
                    "type": "char_location",
                    "cited_text": c.text,
                    "document_index": c.source_index,
                    "document_title": _source_meta(result, c).get("title")
                    or source_name(c.source_id, c.source_index),
                    "start_char_index": c.start,
                    "end_char_index": c.end,
                }
                for c in backing_citations(s)
            ],
        }
        for s in result.answer_sentences
    ]


def to_cohere_citations(result: AttributionResult) -> list[JSONDict]:
    """Cohere-style `{start, end, text, sources}` spans over the answer."""
    return [
        {
            "start": s.start,
            "end": s.end,
            "text": s.text,
            "sources": [
                {"type": "document", "id": c.source_id, "document": {"snippet": c.text}}
                for c in backing_citations(s)
            ],
        }
        for s in result.answer_sentences
        if backing_citations(s)
    ]


def attribution_payload(
    result: AttributionResult, repair: CitationRepair | None = None
) -> JSONDict:
    """What the integrations attach: `result.to_dict()` (with `citation_check` when the answer
    cites its sources itself) plus LangChain-shaped `citations`; with `repair`, also
    `citation_repair`: `{"text": the answer with its markers repaired, "changes": [...]}`
    (offsets in `result.answer` and in that text)."""
    payload = result.to_dict()
    payload["citations"] = to_langchain_citations(result)
    if repair is not None:
        fixed = repair.to_dict()
        payload["citation_repair"] = {"text": fixed["text"], "changes": fixed["changes"]}
    return payload


def citation_check(result: AttributionResult) -> JSONDict | None:
    """The check of the answer's own markers as a dict; None when it has none. Never raises:
    a fault becomes the dict's `error`. A result that carries `citation_check` gives it."""
    from .citations import CITATIONS_SCHEMA, check_citations
    from .markers import parse_markers
    from .results import Source

    if result.citation_check is not None:
        return result.citation_check.to_dict()
    try:
        sources = [Source(s.id, s.text, s.metadata) for s in result.sources]
        if not parse_markers(result.answer, ids=[s.id for s in sources]):
            return None
        return check_citations(result.answer, sources, result=result).to_dict()
    except Exception as exc:
        return {"schema": CITATIONS_SCHEMA, "error": f"citation check failed: {exc}"}
