"""Check the citations an LLM wrote itself against the attribution's evidence.

`check_citations` parses the markers (`markers.py`), attributes the answer with them taken out
(or reads a result the caller already has), and gives each marker a verdict from that result:
the same `supported` verdict and `citations` as everything else, so it improves with them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ._types import JSONDict
from .markers import Marker, Numbering, clean_text, parse_markers, resolve, to_original
from .results import AttributionResult, Citation, SentenceAttribution, Span

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
# A cited source the attribution did not list (the list is cut at top_k sentences) still backs
# a supported claim when its best strength reaches ALSO_SUPPORTS_STRENGTH or this fraction of
# the best source's: a multi-hop claim cites a second source that holds only part of it.
# Chosen on HotpotQA train (corrupted markers, benchmarks/markers.py --side train): flagging
# below 0.25 and half the best kept correct markers flagged near 2% (0.35 flagged 15%).
ALSO_SUPPORTS_STRENGTH = 0.25
ALSO_SUPPORTS_RATIO = 0.5


@dataclass(frozen=True, slots=True)
class MarkerCheck:
    """One cited reference and its verdict.

    `text`/`start`/`end`: the written marker in the answer; `label` the reference as written
    and `label_start`/`label_end` its place; `source_id`/`source_index` the source it names
    (None when dangling); `verdict` one of "correct", "wrong_source", "unsupported",
    "dangling"; `suggested_source_id` the source that does back the claim (wrong_source) and
    `evidence` its best sentence (for a correct marker, the cited source's); `claim` the text
    the marker covers and `sentence_index` the answer sentence of `report.result` holding it;
    `support` how strongly the cited source backs that sentence: the sentence's `support` when
    it is the attribution's own best source, else its strength (NaN when unknown).
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
    from .engine import default_attributor, to_sources

    if not isinstance(answer, str):
        msg = f"answer must be str, got {type(answer).__name__}"
        raise TypeError(msg)
    resolved = to_sources(sources)
    ids = [s.id for s in resolved]
    parsed = parse_markers(answer, ids=ids)
    positions, used = resolve(parsed, ids, numbering)
    clean, edits = clean_text(answer, parsed)
    if result is None:
        result = (attributor or default_attributor()).attribute(clean, resolved, question)
    elif result.answer not in (answer, clean):
        msg = (
            "result= must be the attribution of this answer (with or without its markers); "
            "leave it out to attribute the answer here"
        )
        raise ValueError(msg)
    mapped = _sentences_as_written(result, answer, clean, edits)
    return _report(answer, parsed, positions, used, ids, result, mapped)


def _sentences_as_written(
    result: AttributionResult, answer: str, clean: str, edits: list[tuple[int, int, str]]
) -> list[tuple[int, int]]:
    """Each result sentence's (start, end) in `answer` as written."""
    if result.answer == answer:
        return [(s.start, s.end) for s in result.answer_sentences]
    return [
        (to_original(s.start, edits), to_original(s.end, edits, end=True))
        for s in result.answer_sentences
    ]


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
    strength = _source_strength(result)
    where = [_sentence_of(m.claim, spans) for m in parsed]
    # sources already cited for each sentence by some marker: a suggestion avoids them
    cited_by: dict[int, set[int]] = {}
    for i, k in zip(where, positions, strict=True):
        if i is not None and k is not None:
            cited_by.setdefault(i, set()).add(k)

    checks = []
    for m, i, k in zip(parsed, where, positions, strict=True):
        source_id = ids[k] if k is not None else None
        base: dict[str, Any] = {
            "text": m.text,
            "start": m.start,
            "end": m.end,
            "label": m.label,
            "label_start": m.label_start,
            "label_end": m.label_end,
            "style": m.style,
            "source_id": source_id,
            "source_index": k,
            "claim": m.claim,
            "sentence_index": i,
            "close": m.close,
        }
        if k is None:
            checks.append(MarkerCheck(**base, verdict="dangling", **_suggest(sentences, i, set())))
            continue
        if i is None:
            checks.append(MarkerCheck(**base, verdict="unsupported"))
            continue
        s = sentences[i]
        own = float(strength[i, k]) if strength.size else math.nan
        backers = [c.source_index for c in s.citations]
        best = s.citations[0].similarity if s.citations else math.nan
        if backers and k == backers[0]:
            support = s.support
        else:
            support = own
        evidence = next((c for c in s.citations if c.source_index == k), None)
        if not s.supported:
            verdict: Verdict = "unsupported"
        elif k in backers or own >= ALSO_SUPPORTS_STRENGTH or own >= ALSO_SUPPORTS_RATIO * best:
            verdict = "correct"
        else:
            verdict = "wrong_source"
        extra: dict[str, Any] = {"evidence": evidence}
        if verdict == "wrong_source":
            extra = _suggest(sentences, i, cited_by.get(i, set()) - {k})
        elif verdict == "correct" and evidence is None:
            extra["evidence"] = _best_in(result, i, k)
        checks.append(MarkerCheck(**base, verdict=verdict, support=support, **extra))

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


def _suggest(
    sentences: Sequence[SentenceAttribution], i: int | None, taken: set[int]
) -> dict[str, Any]:
    """The best source backing sentence `i`, preferring one no other marker cites already."""
    if i is None or not sentences[i].supported or not sentences[i].citations:
        return {}
    citations = sentences[i].citations
    pick = next((c for c in citations if c.source_index not in taken), citations[0])
    return {
        "suggested_source_id": pick.source_id,
        "suggested_source_index": pick.source_index,
        "evidence": pick,
    }


def _source_strength(result: AttributionResult) -> np.ndarray:
    """res[i][k] = the best strength of answer sentence i over source k's sentences (NaN:
    unknown, e.g. a trimmed record)."""
    matrix = np.asarray(result.similarity, dtype=np.float32)
    m = len(result.answer_sentences)
    out = np.full((m, len(result.sources)), np.nan, dtype=np.float32)
    if matrix.shape != (m, sum(len(s.sentences) for s in result.sources)):
        return out
    offset = 0
    for k, source in enumerate(result.sources):
        n = len(source.sentences)
        if n:
            block = matrix[:, offset : offset + n]
            with np.errstate(invalid="ignore"):
                out[:, k] = np.nanmax(np.where(np.isnan(block), -np.inf, block), axis=1)
            out[:, k][np.isinf(out[:, k])] = np.nan
        offset += n
    return out


def _best_in(result: AttributionResult, i: int, k: int) -> Citation | None:
    """Source k's best sentence for answer sentence i, as a `Citation`."""
    source = result.sources[k]
    if not source.sentences:
        return None
    offset = sum(len(s.sentences) for s in result.sources[:k])
    row = np.asarray(result.similarity[i, offset : offset + len(source.sentences)])
    if row.size == 0 or np.all(np.isnan(row)):
        return None
    j = int(np.nanargmax(row))
    sentence = source.sentences[j]
    return Citation(
        source.id,
        k,
        j,
        sentence.text,
        sentence.start,
        sentence.end,
        math.nan,
        float(row[j]),
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
    from dataclasses import replace

    return replace(m, support=math.nan)
