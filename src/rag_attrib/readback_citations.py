"""Read back an attribution's `citation_check` (`AttributionResult.from_dict`), every field checked.

The same rule as `readback.py`: a record read from a file is refused with the bad field named,
so nothing downstream (the HTML view, the CLI) sees a wrong type or an offset out of range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .citations import CITATIONS_SCHEMA, VERDICTS, CitationReport, MarkerCheck, MissingCitation
from .markers import NUMBERINGS
from .results import Citation, Span
from .validate import (
    read_float,
    read_int,
    read_list,
    read_mapping,
    read_optional_str,
    read_str,
)

if TYPE_CHECKING:
    from .results import AttributionResult

__all__ = ["read_citation_check"]

_WHERE = "attribution.citation_check"


def read_citation_check(data: object, result: AttributionResult) -> CitationReport:
    """The `CitationReport` of a `to_dict()` record, checked against its attribution `result`.

    Raises:
        ValueError: a field is missing, of the wrong type or out of range (named).
    """
    item = read_mapping(data, _WHERE)
    if item.get("schema") != CITATIONS_SCHEMA:
        msg = f"{_WHERE}.schema must be {CITATIONS_SCHEMA!r}; got {item.get('schema')!r}"
        raise ValueError(msg)
    answer = read_str(_get(item, "answer", _WHERE), f"{_WHERE}.answer")
    if answer != result.answer:
        msg = f"{_WHERE}.answer differs from attribution.answer: the check is of another answer"
        raise ValueError(msg)
    numbering = read_str(_get(item, "numbering", _WHERE), f"{_WHERE}.numbering")
    if numbering not in NUMBERINGS:
        msg = f"{_WHERE}.numbering must be one of {NUMBERINGS}; got {numbering!r}"
        raise ValueError(msg)
    raw_ids = read_list(_get(item, "source_ids", _WHERE), f"{_WHERE}.source_ids")
    ids = tuple(read_str(x, f"{_WHERE}.source_ids[{k}]") for k, x in enumerate(raw_ids))
    n = len(result.answer_sentences)
    markers = tuple(
        _marker(x, f"{_WHERE}.markers[{k}]", len(ids), n)
        for k, x in enumerate(read_list(_get(item, "markers", _WHERE), f"{_WHERE}.markers"))
    )
    missing = tuple(
        _missing(x, f"{_WHERE}.missing[{k}]", len(ids), n)
        for k, x in enumerate(read_list(_get(item, "missing", _WHERE), f"{_WHERE}.missing"))
    )
    unsupported = read_list(item.get("unsupported") or [], f"{_WHERE}.unsupported")
    return CitationReport(
        answer=answer,
        markers=markers,
        missing=missing,
        unsupported=tuple(
            _span(x, f"{_WHERE}.unsupported[{k}]") for k, x in enumerate(unsupported)
        ),
        numbering=numbering,
        source_ids=ids,
        result=result,
        error=read_optional_str(item.get("error"), f"{_WHERE}.error"),
    )


def _get(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        msg = f"{where}.{key} is missing"
        raise ValueError(msg)
    return data[key]


def _offsets(
    item: Mapping[str, Any], where: str, a: str = "start", b: str = "end"
) -> tuple[int, int]:
    start = read_int(_get(item, a, where), f"{where}.{a}")
    return start, read_int(_get(item, b, where), f"{where}.{b}", low=start)


def _optional_int(value: object, where: str, high: int) -> int | None:
    return None if value is None else read_int(value, where, high=high)


def _optional_float(value: object, where: str) -> float:
    return math.nan if value is None else read_float(value, where)


def _span(value: object, where: str) -> Span:
    item = read_mapping(value, where)
    start, end = _offsets(item, where)
    return Span(read_str(_get(item, "text", where), f"{where}.text"), start, end)


def _optional_span(value: object, where: str) -> Span | None:
    return None if value is None else _span(value, where)


def _evidence(value: object, where: str, n_sources: int) -> Citation | None:
    if value is None:
        return None
    item = read_mapping(value, where)
    start, end = _offsets(item, where)
    return Citation(
        source_id=read_str(_get(item, "source_id", where), f"{where}.source_id"),
        source_index=read_int(
            _get(item, "source_index", where), f"{where}.source_index", high=n_sources - 1
        ),
        sentence_index=read_int(_get(item, "sentence_index", where), f"{where}.sentence_index"),
        text=read_str(_get(item, "text", where), f"{where}.text"),
        start=start,
        end=end,
        score=_optional_float(item.get("score"), f"{where}.score"),
        similarity=_optional_float(item.get("similarity"), f"{where}.similarity"),
    )


def _marker(value: object, where: str, n_sources: int, n_sentences: int) -> MarkerCheck:
    item = read_mapping(value, where)
    verdict = read_str(_get(item, "verdict", where), f"{where}.verdict")
    if verdict not in VERDICTS:
        msg = f"{where}.verdict must be one of {VERDICTS}; got {verdict!r}"
        raise ValueError(msg)
    start, end = _offsets(item, where)
    label_start, label_end = _offsets(item, where, "label_start", "label_end")
    top = n_sources - 1
    return MarkerCheck(
        text=read_str(_get(item, "text", where), f"{where}.text"),
        start=start,
        end=end,
        label=read_str(_get(item, "label", where), f"{where}.label"),
        label_start=label_start,
        label_end=label_end,
        style=read_str(_get(item, "style", where), f"{where}.style"),
        source_id=read_optional_str(item.get("source_id"), f"{where}.source_id"),
        source_index=_optional_int(item.get("source_index"), f"{where}.source_index", top),
        verdict=verdict,  # type: ignore[arg-type]  # checked against VERDICTS above
        suggested_source_id=read_optional_str(
            item.get("suggested_source_id"), f"{where}.suggested_source_id"
        ),
        suggested_source_index=_optional_int(
            item.get("suggested_source_index"), f"{where}.suggested_source_index", top
        ),
        evidence=_evidence(item.get("evidence"), f"{where}.evidence", n_sources),
        claim=_optional_span(item.get("claim"), f"{where}.claim"),
        sentence_index=_optional_int(
            item.get("sentence_index"), f"{where}.sentence_index", n_sentences - 1
        ),
        support=_optional_float(item.get("support"), f"{where}.support"),
        close=_optional_span(item.get("close"), f"{where}.close"),
    )


def _missing(value: object, where: str, n_sources: int, n_sentences: int) -> MissingCitation:
    item = read_mapping(value, where)
    start, end = _offsets(item, where)
    return MissingCitation(
        sentence_index=read_int(
            _get(item, "sentence_index", where), f"{where}.sentence_index", high=n_sentences - 1
        ),
        text=read_str(_get(item, "text", where), f"{where}.text"),
        start=start,
        end=end,
        suggested_source_id=read_optional_str(
            item.get("suggested_source_id"), f"{where}.suggested_source_id"
        ),
        suggested_source_index=_optional_int(
            item.get("suggested_source_index"), f"{where}.suggested_source_index", n_sources - 1
        ),
        evidence=_evidence(item.get("evidence"), f"{where}.evidence", n_sources),
    )
