"""Check the citations an LLM wrote itself against the attribution's evidence.

`check_citations` parses the markers (`markers.py`), attributes the answer with them taken out
(or reads a result the caller already has), and gives each marker a verdict from that result:
the same `supported` verdict and `citations` as everything else, so it improves with them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import _citation_rules as rules
from ._types import JSONDict
from .markers import (
    Marker,
    Numbering,
    clean_text,
    parse_markers,
    resolve,
    sentences_as_written,
)
from .results import AttributionResult, Citation, Source, Span

if TYPE_CHECKING:
    from .engine import Attributor, SourceLike

__all__ = [
    "CITATIONS_SCHEMA",
    "VERDICTS",
    "CitationReport",
    "MarkerCheck",
    "MissingCitation",
    "check_citations",
]

CITATIONS_SCHEMA = "rag_attrib.citations/1"
Verdict = Literal["correct", "wrong_source", "unsupported", "dangling"]
VERDICTS: tuple[str, ...] = ("correct", "wrong_source", "unsupported", "dangling")


@dataclass(frozen=True, slots=True)
class MarkerCheck:
    """One cited reference and its verdict.

    `text`/`start`/`end`: the written marker in the answer; `label` the reference as written
    and `label_start`/`label_end` its place; `source_id`/`source_index` the source it names
    (None when dangling); `verdict` one of "correct", "wrong_source", "unsupported",
    "dangling"; `suggested_source_id` the source that does back the claim (wrong_source) and
    `evidence` its best sentence (for a correct marker, the cited source's); `claim` the text
    the marker covers and `sentence_index` the answer sentence of `report.result` holding it;
    `support` how strongly the cited source backs that sentence, on the verdict's scale: the
    sentence's support scaled by the source's strength relative to the strongest source's, or
    with `exact_support=True` the sentence's support against only the sources its markers
    cite (NaN when unknown or dangling).
    """

    text: str
    start: int
    end: int
    label: str
    label_start: int
    label_end: int
    style: str
    source_id: str | None
    source_index: int | None
    verdict: Verdict
    suggested_source_id: str | None = None
    suggested_source_index: int | None = None
    evidence: Citation | None = None
    claim: Span | None = None
    sentence_index: int | None = None
    support: float = math.nan
    close: Span | None = None


@dataclass(frozen=True, slots=True)
class MissingCitation:
    """A supported answer sentence no marker covers; offsets are in the answer as written."""

    sentence_index: int
    text: str
    start: int
    end: int
    suggested_source_id: str | None
    suggested_source_index: int | None
    evidence: Citation | None


@dataclass(frozen=True, slots=True)
class CitationReport:
    """What `check_citations` found: a verdict per marker and the missing citations.

    `unsupported` holds the answer sentences (as written) no source backs; `numbering` the
    numbering the markers were read with; `source_ids` the sources in order; `result` the
    attribution the verdicts came from (of `answer` or of the answer without its markers).
    """

    answer: str
    markers: tuple[MarkerCheck, ...]
    missing: tuple[MissingCitation, ...]
    unsupported: tuple[Span, ...]
    numbering: str
    source_ids: tuple[str, ...]
    result: AttributionResult | None = field(default=None, compare=False, repr=False)
    error: str | None = None

    @property
    def wrong(self) -> tuple[MarkerCheck, ...]:
        """Markers that are not correct (wrong source, unsupported claim, or dangling)."""
        return tuple(m for m in self.markers if m.verdict != "correct")

    @property
    def ok(self) -> bool:
        """True when every marker is correct and no supported sentence lacks one."""
        return not self.wrong and not self.missing

    def counts(self) -> dict[str, int]:
        """How many markers got each verdict, plus "missing"."""
        out = {v: 0 for v in VERDICTS}
        for m in self.markers:
            out[m.verdict] += 1
        out["missing"] = len(self.missing)
        return out

    def to_dict(self) -> JSONDict:
        """A JSON-safe dict with `"schema": "rag_attrib.citations/1"` (the result is not
        included; store `report.result.to_dict()` beside it when needed)."""
        return {
            "schema": CITATIONS_SCHEMA,
            "answer": self.answer,
            "numbering": self.numbering,
            "source_ids": list(self.source_ids),
            "error": self.error,
            "counts": self.counts(),
            "markers": [_marker_dict(m) for m in self.markers],
            "missing": [
                {
                    "sentence_index": x.sentence_index,
                    "text": x.text,
                    "start": x.start,
                    "end": x.end,
                    "suggested_source_id": x.suggested_source_id,
                    "suggested_source_index": x.suggested_source_index,
                    "evidence": _citation_dict(x.evidence),
                }
                for x in self.missing
            ],
            "unsupported": [_span_dict(s) for s in self.unsupported],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CitationReport:
        """Rebuild a report from `to_dict()` output (without its `result`).

        Raises:
            ValueError: the dict is not a rag_attrib citation report of a known schema.
        """
        schema = data.get("schema")
        if schema != CITATIONS_SCHEMA:
            msg = (
                f"expected schema {CITATIONS_SCHEMA!r}, got {schema!r}: "
                "is this a CitationReport.to_dict()?"
            )
            raise ValueError(msg)
        markers = tuple(
            MarkerCheck(
                **{k: v for k, v in m.items() if k not in ("evidence", "claim", "close")},
                evidence=_citation(m.get("evidence")),
                claim=_span(m.get("claim")),
                close=_span(m.get("close")),
            )
            for m in data["markers"]
        )
        markers = tuple(m if m.support is not None else _replace_support(m) for m in markers)
        missing = tuple(
            MissingCitation(
                **{k: v for k, v in x.items() if k != "evidence"},
                evidence=_citation(x.get("evidence")),
            )
            for x in data["missing"]
        )
        return cls(
            answer=data["answer"],
            markers=markers,
            missing=missing,
            unsupported=tuple(Span(**s) for s in data.get("unsupported") or ()),
            numbering=data["numbering"],
            source_ids=tuple(data["source_ids"]),
            error=data.get("error"),
        )


def check_citations(
    answer: str,
    sources: Sequence[SourceLike],
    *,
    question: str | None = None,
    attributor: Attributor | None = None,
    result: AttributionResult | None = None,
    numbering: Numbering = "auto",
    exact_support: bool = False,
) -> CitationReport:
    """Check every citation marker of `answer` against what the sources support.

    Args:
        answer: the generated answer, with its markers (`[1]`, `[^2]`, `<cite id="3">`, ...).
        sources: the sources the markers refer to, in the order the LLM saw them.
        question: passed to `attribute`.
        attributor: the `Attributor` to use; None uses the shared default.
        result: an attribution of `answer` (or of `answer` without its markers) already at
            hand; then nothing is attributed again.
        numbering: how numbers name sources: "1-based" or "0-based" positions, "ids" (labels
            are source ids), or "auto" (see `markers.resolve`).
        exact_support: make each marker's `support` the claim's support against only the
            sources its sentence cites, by attributing each marked sentence again with
            `attributor` (the shared default when None) and its own verdict: about one more
            `attribute()` per marked sentence, from the embedding cache. False (the default)
            reads it from the result: the sentence's support scaled by the cited source's
            strength relative to the strongest source's. Verdicts are the same either way.

    Returns:
        A `CitationReport`. Markers naming no source are "dangling"; a marker covering no
        text (an answer that is only markers) is "unsupported".

    Raises:
        TypeError: `answer` or a source is not text.
        ConfigError: `numbering` is not one of the four.

    Example:
        >>> report = check_citations("Paris is France's capital [2].",
        ...                          ["Berlin is Germany's capital.", "Paris is the capital."])
        >>> report.markers[0].verdict
        'correct'
    """
    resolved, parsed, result, mapped = _prepare(answer, sources, question, attributor, result)
    ids = [s.id for s in resolved]
    positions, used = resolve(parsed, ids, numbering)
    report = _report(answer, parsed, positions, used, ids, result, mapped)
    return _rescored(report, result, resolved, exact_support, attributor)


def check_readings(
    answer: str,
    sources: Sequence[SourceLike],
    readings: Callable[[Marker], Sequence[int]],
    *,
    numbering: str,
    question: str | None = None,
    attributor: Attributor | None = None,
    result: AttributionResult | None = None,
    exact_support: bool = False,
) -> CitationReport:
    """`check_citations` for markers whose label may name one of several sources.

    Two tool outputs that each label their passages from 1 leave "[1]" naming either first
    passage: the answer can only mean one that backs its claim. Each marker is read as the
    first of `readings(marker)` (source positions, the likeliest first) that it cites
    correctly, else as the first; with none it is dangling. `numbering` is what the report
    says the labels counted with. Arguments as for `check_citations`.
    """
    resolved, parsed, result, mapped = _prepare(answer, sources, question, attributor, result)
    ids = [s.id for s in resolved]
    options = [list(dict.fromkeys(readings(m))) for m in parsed]
    positions: list[int | None] = [o[0] if o else None for o in options]
    report = _report(answer, parsed, positions, numbering, ids, result, mapped)
    for j, others in enumerate(options):
        for k in others[1:]:
            if report.markers[j].verdict == "correct":
                break
            trial = [*positions[:j], k, *positions[j + 1 :]]
            tried = _report(answer, parsed, trial, numbering, ids, result, mapped)
            if tried.markers[j].verdict == "correct":
                positions, report = trial, tried
    return _rescored(report, result, resolved, exact_support, attributor)


def _prepare(
    answer: str,
    sources: Sequence[SourceLike],
    question: str | None,
    attributor: Attributor | None,
    result: AttributionResult | None,
) -> tuple[list[Source], list[Marker], AttributionResult, list[tuple[int, int]]]:
    """The sources, the answer's markers, its attribution (made here unless given) and the
    span of each of its sentences in `answer` as written."""
    from .engine import default_attributor, to_sources

    if not isinstance(answer, str):
        msg = f"answer must be str, got {type(answer).__name__}"
        raise TypeError(msg)
    resolved = to_sources(sources)
    parsed = parse_markers(answer, ids=[s.id for s in resolved])
    clean, edits = clean_text(answer, parsed)
    if result is None:
        attributor = attributor or default_attributor()
        result = attributor.attribute(clean, resolved, question)
    elif result.answer not in (answer, clean):
        msg = (
            "result= must be the attribution of this answer (with or without its markers); "
            "leave it out to attribute the answer here"
        )
        raise ValueError(msg)
    return resolved, parsed, result, sentences_as_written(result, answer, edits)


def _rescored(
    report: CitationReport,
    result: AttributionResult,
    sources: list[Source],
    exact_support: bool,
    attributor: Attributor | None,
) -> CitationReport:
    if not exact_support:
        return report
    from .engine import default_attributor

    attributor = attributor or default_attributor()
    return replace(report, markers=rules.rescore(report.markers, result, sources, attributor))


def _report(
    answer: str,
    parsed: list[Marker],
    positions: list[int | None],
    numbering: str,
    ids: list[str],
    result: AttributionResult,
    spans: list[tuple[int, int]],
) -> CitationReport:
    sentences = result.answer_sentences
    strength = rules.source_strength(result)
    where = [_sentence_of(m.claim, spans) for m in parsed]
    # per sentence: the sources its markers name, and how many references they write (a
    # dangling one too: the writer meant one more source)
    cited_by: dict[int, set[int]] = {}
    labels: dict[int, set[str]] = {}
    for m, i, k in zip(parsed, where, positions, strict=True):
        if i is not None:
            labels.setdefault(i, set()).add(m.label)
            if k is not None:
                cited_by.setdefault(i, set()).add(k)

    checks = []
    for m, i, k in zip(parsed, where, positions, strict=True):
        check = MarkerCheck(
            text=m.text,
            start=m.start,
            end=m.end,
            label=m.label,
            label_start=m.label_start,
            label_end=m.label_end,
            style=m.style,
            source_id=ids[k] if k is not None else None,
            source_index=k,
            verdict="dangling" if k is None else "unsupported",
            claim=m.claim,
            sentence_index=i,
            close=m.close,
        )
        if i is not None:
            check = _judge(check, result, strength[i], cited_by.get(i, set()), len(labels[i]))
        checks.append(check)

    covered = {i for i in where if i is not None}
    missing = []
    unsupported = []
    for s, (a, b) in zip(sentences, spans, strict=True):
        if not s.supported:
            unsupported.append(Span(answer[a:b], a, b))
        elif s.index not in covered and s.citations:
            top = s.citations[0]
            missing.append(
                MissingCitation(s.index, answer[a:b], a, b, top.source_id, top.source_index, top)
            )
    return CitationReport(
        answer=answer,
        markers=tuple(checks),
        missing=tuple(missing),
        unsupported=tuple(unsupported),
        numbering=numbering,
        source_ids=tuple(ids),
        result=result,
        error=result.error,
    )


def _judge(
    check: MarkerCheck, result: AttributionResult, row: np.ndarray, cited: set[int], n: int
) -> MarkerCheck:
    """The verdict of a marker in sentence `check.sentence_index` whose sentence cites `cited`
    (n references written): see `_citation_rules`."""
    i, k = check.sentence_index, check.source_index
    assert i is not None
    s = result.answer_sentences[i]
    if k is None:
        verdict: Verdict = "dangling"
        suggestion = rules.suggest(result, i, row, cited, n)
        support = math.nan
    else:
        support = rules.cited_support(s, row, k)
        backed = rules.backs(row, k, n)
        if backed and rules.passed_over(result, i, k, row, cited):
            backed = False  # one of the n strongest, but in place of the page the writer meant
        if backed is None:  # no strengths (a trimmed record): the attribution's citations
            backed = any(c.source_index == k for c in s.citations)
        elif not backed and s.supported:  # another hop of the claim, or its words restated
            partner = next((j for j in rules.ranked(row) if j in cited and j != k), None)
            backed = (
                partner is not None
                and bool(rules.backs(row, partner, 1))
                and rules.bridged(result, i, k, partner)
            ) or rules.answers(result, i, k)
        if not s.supported:
            verdict, suggestion = "unsupported", None
        elif backed:
            verdict, suggestion = "correct", None
        else:
            verdict, suggestion = "wrong_source", rules.suggest(result, i, row, cited, n)
    shown = suggestion if suggestion is not None else k
    return replace(
        check,
        verdict=verdict,
        support=support,
        suggested_source_id=result.sources[suggestion].id if suggestion is not None else None,
        suggested_source_index=suggestion,
        evidence=rules.evidence(result, i, shown) if shown is not None else None,
    )


def _sentence_of(claim: Span | None, spans: Sequence[tuple[int, int]]) -> int | None:
    """The answer sentence holding the end of `claim` (else the one overlapping it most)."""
    if claim is None:
        return None
    last = claim.end - 1
    for i, (a, b) in enumerate(spans):
        if a <= last < b:
            return i
    overlap = [(min(b, claim.end) - max(a, claim.start), i) for i, (a, b) in enumerate(spans)]
    best = max(overlap, default=(0, None))
    return best[1] if best[0] > 0 else None


def _f(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _span_dict(s: Span | None) -> JSONDict | None:
    return None if s is None else {"text": s.text, "start": s.start, "end": s.end}


def _span(d: Mapping[str, Any] | None) -> Span | None:
    return None if d is None else Span(d["text"], d["start"], d["end"])


def _citation_dict(c: Citation | None) -> JSONDict | None:
    if c is None:
        return None
    return {
        "source_id": c.source_id,
        "source_index": c.source_index,
        "sentence_index": c.sentence_index,
        "text": c.text,
        "start": c.start,
        "end": c.end,
        "score": _f(c.score),
        "similarity": _f(c.similarity),
    }


def _citation(d: Mapping[str, Any] | None) -> Citation | None:
    if d is None:
        return None
    values = dict(d)
    for key in ("score", "similarity"):
        if values.get(key) is None:
            values[key] = math.nan
    return Citation(**values)


def _marker_dict(m: MarkerCheck) -> JSONDict:
    return {
        "text": m.text,
        "start": m.start,
        "end": m.end,
        "label": m.label,
        "label_start": m.label_start,
        "label_end": m.label_end,
        "style": m.style,
        "source_id": m.source_id,
        "source_index": m.source_index,
        "verdict": m.verdict,
        "suggested_source_id": m.suggested_source_id,
        "suggested_source_index": m.suggested_source_index,
        "evidence": _citation_dict(m.evidence),
        "claim": _span_dict(m.claim),
        "sentence_index": m.sentence_index,
        "support": _f(m.support),
        "close": _span_dict(m.close),
    }


def _replace_support(m: MarkerCheck) -> MarkerCheck:
    return replace(m, support=math.nan)
