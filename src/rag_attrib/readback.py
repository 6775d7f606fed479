"""Rebuild an `AttributionResult` from JSON, checking every field (`AttributionResult.from_dict`).

Attribution logs are the files people render, and their texts come from the web and from
LLMs: a value of the wrong type or out of range is refused here, with its field named, so
nothing downstream (the HTML view, the CLI table) ever sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .readback_citations import read_citation_check
from .results import (
    SCHEMA,
    Citation,
    SentenceAttribution,
    SourceAttribution,
    SourceSentence,
    matrix_from_citations,
)
from .validate import (
    clean_metadata,
    read_bool,
    read_float,
    read_int,
    read_list,
    read_mapping,
    read_optional_str,
    read_str,
)

if TYPE_CHECKING:
    from .results import AttributionResult

__all__ = ["read_result"]


def read_result(cls: type[AttributionResult], data: object) -> AttributionResult:
    """Build `cls` from a `to_dict()` mapping; `ValueError` names the first bad field."""
    if not isinstance(data, Mapping):
        msg = f"expected a rag_attrib to_dict() object; got {type(data).__name__}"
        raise ValueError(msg)
    schema = data.get("schema")
    if schema != SCHEMA:
        msg = f"expected schema {SCHEMA!r}, got {schema!r}: is this a rag_attrib to_dict()?"
        raise ValueError(msg)
    answer = read_str(_get(data, "answer", "attribution"), "attribution.answer")
    sources = tuple(
        _source(item, f"attribution.sources[{i}]")
        for i, item in enumerate(read_list(_get(data, "sources"), "attribution.sources"))
    )
    raw_sentences = read_list(_get(data, "answer_sentences"), "attribution.answer_sentences")
    sentences = tuple(
        _sentence(item, f"attribution.answer_sentences[{i}]", answer, sources)
        for i, item in enumerate(raw_sentences)
    )
    shape = (len(sentences), sum(len(s.sentences) for s in sources))
    raw = data.get("similarity")
    if raw:
        similarity = _matrix(raw, shape)
    else:
        similarity = matrix_from_citations(sentences, sources, shape)
    config = data.get("config") or {}
    timings = read_mapping(data.get("timings") or {}, "attribution.timings")
    result = cls(
        answer=answer,
        answer_sentences=sentences,
        sources=sources,
        similarity=similarity,
        question=read_optional_str(data.get("question"), "attribution.question"),
        config=clean_metadata(read_mapping(config, "attribution.config"))[0],
        model=read_optional_str(data.get("model"), "attribution.model"),
        timings={str(k): read_float(v, f"attribution.timings[{k!r}]") for k, v in timings.items()},
        error=read_optional_str(data.get("error"), "attribution.error"),
    )
    check = data.get("citation_check")
    if check is None:
        return result
    return replace(result, citation_check=read_citation_check(check, result))


def _get(data: Mapping[str, Any], key: str, where: str = "attribution") -> Any:
    if key not in data:
        msg = f"{where}.{key} is missing"
        raise ValueError(msg)
    return data[key]


def _offsets(item: Mapping[str, Any], where: str) -> tuple[int, int]:
    # No upper bound: a hand-edited file with stale offsets still renders (the view searches
    # for the sentence), and slicing past the end of a str is safe.
    start = read_int(_get(item, "start", where), f"{where}.start")
    end = read_int(_get(item, "end", where), f"{where}.end", low=start)
    return start, end


def _source(value: object, where: str) -> SourceAttribution:
    item = read_mapping(value, where)
    text = read_str(_get(item, "text", where), f"{where}.text")
    sentences = []
    for k, raw in enumerate(read_list(_get(item, "sentences", where), f"{where}.sentences")):
        at = f"{where}.sentences[{k}]"
        x = read_mapping(raw, at)
        start, end = _offsets(x, at)
        sentences.append(
            SourceSentence(
                index=read_int(_get(x, "index", at), f"{at}.index"),
                text=read_str(_get(x, "text", at), f"{at}.text"),
                start=start,
                end=end,
                score=read_float(_get(x, "score", at), f"{at}.score"),
            )
        )
    metadata = item.get("metadata") or {}
    return SourceAttribution(
        id=read_str(_get(item, "id", where), f"{where}.id"),
        index=read_int(_get(item, "index", where), f"{where}.index"),
        text=text,
        score=read_float(_get(item, "score", where), f"{where}.score"),
        max_similarity=read_float(_get(item, "max_similarity", where), f"{where}.max_similarity"),
        sentences=tuple(sentences),
        metadata=clean_metadata(read_mapping(metadata, f"{where}.metadata"))[0],
    )


def _sentence(
    value: object, where: str, answer: str, sources: tuple[SourceAttribution, ...]
) -> SentenceAttribution:
    item = read_mapping(value, where)
    start, end = _offsets(item, where)
    citations = []
    for k, raw in enumerate(read_list(_get(item, "citations", where), f"{where}.citations")):
        citations.append(_citation(raw, f"{where}.citations[{k}]", sources))
    issues = read_list(item.get("issues") or [], f"{where}.issues")
    return SentenceAttribution(
        index=read_int(_get(item, "index", where), f"{where}.index"),
        text=read_str(_get(item, "text", where), f"{where}.text"),
        start=start,
        end=end,
        citations=tuple(citations),
        supported=read_bool(_get(item, "supported", where), f"{where}.supported"),
        support=read_float(_get(item, "support", where), f"{where}.support"),
        issues=tuple(read_str(x, f"{where}.issues[{k}]") for k, x in enumerate(issues)),
        # records written before `claim` existed checked every sentence
        claim=read_bool(item.get("claim", True), f"{where}.claim"),
    )


def _citation(value: object, where: str, sources: tuple[SourceAttribution, ...]) -> Citation:
    item = read_mapping(value, where)
    if not sources:
        msg = f"{where} cites a source, but the record has none"
        raise ValueError(msg)
    c = read_int(_get(item, "source_index", where), f"{where}.source_index", high=len(sources) - 1)
    source = sources[c]
    if not source.sentences:
        msg = f"{where}.source_index {c} names a source with no sentences"
        raise ValueError(msg)
    high = len(source.sentences) - 1
    k = read_int(_get(item, "sentence_index", where), f"{where}.sentence_index", high=high)
    start, end = _offsets(item, where)
    return Citation(
        source_id=read_str(_get(item, "source_id", where), f"{where}.source_id"),
        source_index=c,
        sentence_index=k,
        text=read_str(_get(item, "text", where), f"{where}.text"),
        start=start,
        end=end,
        score=read_float(_get(item, "score", where), f"{where}.score"),
        similarity=read_float(_get(item, "similarity", where), f"{where}.similarity"),
        also_in=tuple(
            read_str(x, f"{where}.also_in[{j}]")
            for j, x in enumerate(read_list(item.get("also_in", []), f"{where}.also_in"))
        ),
    )


def _matrix(raw: object, shape: tuple[int, int]) -> Any:
    """The dense matrix of `to_dict(matrix=True)`; None entries (unknown) become NaN."""
    rows = read_list(raw, "attribution.similarity")
    if len(rows) != shape[0]:
        msg = f"attribution.similarity has {len(rows)} rows; expected {shape[0]}"
        raise ValueError(msg)
    out = np.full(shape, np.nan, dtype=np.float32)
    for i, row in enumerate(rows):
        where = f"attribution.similarity[{i}]"
        values = read_list(row, where)
        if len(values) != shape[1]:
            msg = f"{where} has {len(values)} values; expected {shape[1]}"
            raise ValueError(msg)
        for j, x in enumerate(values):
            if x is not None:
                out[i, j] = read_float(x, f"{where}[{j}]")
    return out
