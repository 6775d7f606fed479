"""The citations an answer carries, checked against its attribution; imports no framework.

An answer cites its sources in one of three ways: markers in its text (`[1]`, `[^2]`,
`<cite id=...>`, "Source 3"), a list of source ids beside the text (a structured output such
as LangChain's `CitedAnswer(answer, citations)`), or provider citations on text blocks
(Anthropic's `{"type": "text", "text": ..., "citations": [{"document_index": 0, ...}]}`, or a
web-search citation naming a URL, matched to the source whose metadata holds it).
`check` turns each into a `CitationReport` built from the attribution already computed:
nothing is encoded again, and an answer that cites nothing costs one regex scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from ..citations import (
    CitationReport,
    MarkerCheck,
    MissingCitation,
    check_citations,
    check_readings,
)
from ..errors import ConfigError
from ..markers import NUMBERINGS, Marker, Numbering, parse_markers, resolve
from ..repair import CitationRepair, repair_report
from ..results import AttributionResult, SentenceAttribution, Source, Span
from ._given import CitedSpan, GivenCitations, Kind
from ._numbering import Labels, numbering_for
from ._urls import normalise_url, url_positions

if TYPE_CHECKING:
    from ..engine import Attributor

__all__ = ["CheckOptions", "check", "check_options", "repair"]


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """How an integration checks the answer's citations (see `check_citations`): `numbering`
    of written markers and structured ids ("auto": read from the prompt's labels), and
    `exact_support`. Build it with `check_options`, which validates."""

    numbering: Numbering = "auto"
    exact_support: bool = False


def check_options(numbering: str = "auto", exact_support: bool = False) -> CheckOptions:
    """`CheckOptions` from an integration's `citation_numbering=` and `exact_support=`.

    Raises:
        ConfigError: `numbering` is not one of "auto", "1-based", "0-based", "ids".
    """
    if numbering not in NUMBERINGS:
        msg = (
            f"citation_numbering must be one of {', '.join(map(repr, NUMBERINGS))}; "
            f"got {numbering!r}"
        )
        raise ConfigError(msg)
    return CheckOptions(cast("Numbering", numbering), bool(exact_support))


# --- checking -------------------------------------------------------------------------------


def _sources(result: AttributionResult) -> list[Source]:
    return [Source(s.id, s.text, s.metadata) for s in result.sources]


def check(
    result: AttributionResult,
    given: GivenCitations | None = None,
    prompt: str | None = None,
    options: CheckOptions | None = None,
    attributor: Attributor | None = None,
    labels: Labels | None = None,
) -> CitationReport | None:
    """The citation report of `result`'s answer, or None when it cites nothing.

    Markers written in the answer are checked when there are any; else `given` citations. The
    numbering is `options.numbering` unless "auto", else read from the prompt's labels
    (`numbering_for`); provider citations' indices are 0-based by definition, and their URLs
    need none. With `labels` (several tool outputs each labelling passages afresh: see
    `label_choices`) and "auto", a marker is read as a passage its label names that backs
    its claim (the latest output's, when none does), and the report's `error` names the
    markers that were ambiguous. `attributor` serves `options.exact_support` (None: the
    shared default). Raises on a fault (the caller records it).
    """
    options = options or CheckOptions()
    sources = _sources(result)
    ids = [s.id for s in sources]
    exact = options.exact_support
    markers = parse_markers(result.answer, ids=ids)
    if markers and labels is not None and options.numbering == "auto":
        return _check_labelled(result, sources, labels, markers, exact, attributor)
    if markers:
        numbering = options.numbering
        if numbering == "auto":
            numbering = numbering_for(sources, prompt)
        return check_citations(
            result.answer,
            sources,
            result=result,
            numbering=numbering,
            exact_support=exact,
            attributor=attributor,
        )
    if given is None or not given.spans:
        return None
    numbering = given.numbering
    if given.kind == "structured" and options.numbering != "auto":
        numbering = options.numbering
    if numbering == "auto":
        numbering = numbering_for(sources, prompt)
    return _check_given(result, sources, given, numbering, exact, attributor)


def _check_labelled(
    result: AttributionResult,
    sources: list[Source],
    labels: Labels,
    markers: Sequence[Marker],
    exact: bool,
    attributor: Attributor | None,
) -> CitationReport:
    """The markers checked by what their labels name (`Labels`); ambiguous ones said."""
    position = {s.id: k for k, s in reversed(list(enumerate(sources)))}

    def readings(marker: Marker) -> tuple[int, ...]:
        if marker.label.isdigit():
            return labels.names.get(str(int(marker.label)), ())
        k = position.get(marker.label)  # a marker naming a source by its id
        return () if k is None else (k,)

    report = check_readings(
        result.answer,
        sources,
        readings,
        numbering=labels.numbering,
        result=result,
        exact_support=exact,
        attributor=attributor,
    )
    ambiguous = labels.ambiguous(markers)
    if not ambiguous:
        return report
    written = ", ".join(f"[{x}]" for x in ambiguous)
    start = "1" if labels.numbering == "1-based" else "0"
    note = (
        f"ambiguous citation numbers {written}: {labels.texts} tool outputs each label their "
        f"passages from {start}, so each such marker was read as a passage so labelled that "
        "backs its claim (else as the latest output's)"
    )
    return replace(report, error="; ".join(e for e in (report.error, note) if e))


def _check_given(
    result: AttributionResult,
    sources: list[Source],
    given: GivenCitations,
    numbering: Numbering,
    exact_support: bool = False,
    attributor: Attributor | None = None,
) -> CitationReport:
    """Each given citation's verdict, from the same checks as written markers.

    The answer is rewritten with one `<cite id="k">claim</cite>` tag per claim (a sentence, for
    a citation of the whole answer), which `check_citations` reads; taking the tags out gives
    the answer back, so `result` applies as it is. A whole-answer citation is correct when its
    source backs some sentence.
    """
    answer = result.answer
    ids = [s.id for s in sources]
    positions, numbering = _positions(given.spans, result, sources, numbering)
    claims: dict[tuple[int, int], list[int]] = {}
    for x, k in zip(given.spans, positions, strict=True):
        if k is None:
            continue
        for a, b in _claims(result, x):
            claims.setdefault((a, b), [])
            if k not in claims[(a, b)]:
                claims[(a, b)].append(k)
    tagged = _tag(answer, claims)
    report = check_citations(
        tagged,
        sources,
        result=result,
        numbering="1-based",
        exact_support=exact_support,
        attributor=attributor,
    )
    by_source: dict[int, list[MarkerCheck]] = {}
    for m in report.markers:
        if m.source_index is not None:
            by_source.setdefault(m.source_index, []).append(m)
    markers = tuple(
        _verdict(
            x, k, ids, by_source.get(-1 if k is None else k, []), result, given.kind, len(answer)
        )
        for x, k in zip(given.spans, positions, strict=True)
    )
    return CitationReport(
        answer=answer,
        markers=markers,
        missing=_missing(result, report, whole=all(x.start is None for x in given.spans)),
        unsupported=tuple(Span(s.text, s.start, s.end) for s in result.unsupported),
        numbering=numbering,
        source_ids=tuple(ids),
        result=result,
        error=result.error,
    )


def _positions(
    spans: Sequence[CitedSpan],
    result: AttributionResult,
    sources: list[Source],
    numbering: Numbering,
) -> tuple[list[int | None], Numbering]:
    """The source position each given citation names (None: dangling), and the numbering
    its labels were read with; a URL names the source whose metadata holds it."""
    ids = [s.id for s in sources]
    labelled = [x for x in spans if not x.url]
    fake = [Marker(x.label, 0, 0, x.label, 0, 0, "bracket", None) for x in labelled]
    found, numbering = resolve(fake, ids, numbering)
    by_label = iter(found)
    pages = url_positions(sources) if len(labelled) < len(spans) else {}
    out = [
        _by_url(x, pages.get(normalise_url(x.label), []), result) if x.url else next(by_label)
        for x in spans
    ]
    return out, numbering


def _by_url(x: CitedSpan, candidates: list[int], result: AttributionResult) -> int | None:
    """Which of the sources holding a cited URL the citation means (chunks of one page share
    it): the one holding its quote, else the one the attribution ranks first for its claim."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    if x.quote and x.quote.strip():
        quote = " ".join(x.quote.split())
        held = [k for k in candidates if quote in " ".join(result.sources[k].text.split())]
        if held:
            return held[0]
    under = _sentences_under(result, x)
    # a supported sentence's citations first: an unsupported one's are only its closest sources
    for s in sorted(under, key=lambda s: not s.supported):
        for c in s.citations:
            if c.source_index in candidates:
                return c.source_index
    return candidates[0]


def _claims(result: AttributionResult, x: CitedSpan) -> list[tuple[int, int]]:
    """The spans of the answer a citation backs: its own, cut at sentence ends (a block of
    several sentences is checked sentence by sentence), or every sentence."""
    if x.start is not None and x.end is not None:
        a, b = max(0, x.start), min(len(result.answer), x.end)
        if a >= b or not result.answer[a:b].strip():
            return []
        parts = [
            (max(a, s.start), min(b, s.end))
            for s in result.answer_sentences
            if s.start < b and a < s.end and result.answer[max(a, s.start) : min(b, s.end)].strip()
        ]
        return parts or [(a, b)]
    return [(s.start, s.end) for s in result.answer_sentences if s.end > s.start]


def _sentences_under(result: AttributionResult, x: CitedSpan) -> list[SentenceAttribution]:
    """The answer sentences a citation's claims overlap."""
    claims = _claims(result, x)
    return [s for s in result.answer_sentences if any(s.start < b and a < s.end for a, b in claims)]


def _own(checks: list[MarkerCheck], result: AttributionResult, x: CitedSpan) -> list[MarkerCheck]:
    """The checks of the claims this citation backs (another citation of the same source
    elsewhere in the answer must not lend it its verdict)."""
    if x.start is None or x.end is None:
        return checks
    mine = {s.index for s in _sentences_under(result, x)}
    return [m for m in checks if m.sentence_index in mine]


def _tag(answer: str, claims: Mapping[tuple[int, int], list[int]]) -> str:
    """`answer` with `<cite id="k, ...">claim</cite>` around each claim (1-based positions);
    overlapping claims are skipped (tags must not nest)."""
    parts: list[str] = []
    pos = 0
    for (a, b), ks in sorted(claims.items()):
        if a < pos:
            continue
        label = ", ".join(str(k + 1) for k in ks)
        parts += [answer[pos:a], f'<cite id="{label}">', answer[a:b], "</cite>"]
        pos = b
    parts.append(answer[pos:])
    return "".join(parts)


_RANK = {"correct": 0, "wrong_source": 1, "unsupported": 2, "dangling": 3}


def _verdict(
    x: CitedSpan,
    k: int | None,
    ids: list[str],
    checks: list[MarkerCheck],
    result: AttributionResult,
    kind: Kind,
    end: int,
) -> MarkerCheck:
    """One given citation's verdict: the best over the claims it backs.

    It has no place in the answer text: `start == end` is the end of its claim (of the answer,
    for a whole-answer citation), `label` the id as given, `style` "structured" or "provider".
    """
    at = x.end if x.start is not None and x.end is not None else end
    checks = _own(checks, result, x)
    claim = None
    if x.start is not None and x.end is not None:
        claim = Span(result.answer[x.start : x.end], x.start, x.end)
    base: dict[str, Any] = {
        "text": x.label,
        "start": at,
        "end": at,
        "label": x.label,
        "label_start": at,
        "label_end": at,
        "style": kind,
    }
    if k is None:
        return MarkerCheck(**base, source_id=None, source_index=None, verdict="dangling")
    if not checks:  # a citation of an empty answer, or of a claim overlapping another
        return MarkerCheck(
            **base, source_id=ids[k], source_index=k, verdict="unsupported", claim=claim
        )
    best = min(checks, key=lambda m: (_RANK[m.verdict], -_finite(m.support)))
    sentence = best.sentence_index
    if claim is None and sentence is not None:
        s = result.answer_sentences[sentence]
        claim = Span(s.text, s.start, s.end)
    return MarkerCheck(
        **base,
        source_id=best.source_id,
        source_index=best.source_index,
        verdict=best.verdict,
        suggested_source_id=best.suggested_source_id,
        suggested_source_index=best.suggested_source_index,
        evidence=best.evidence,
        claim=claim,
        sentence_index=sentence,
        support=best.support,
    )


def _finite(x: float) -> float:
    return x if x == x else float("-inf")  # NaN ranks last


def _missing(
    result: AttributionResult, report: CitationReport, whole: bool
) -> tuple[MissingCitation, ...]:
    """Supported sentences no given citation backs: for a list that cites the whole answer,
    those none of its sources backs; for cited blocks, those no block covers."""
    if whole:
        done = {m.sentence_index for m in report.markers if m.verdict == "correct"}
    else:
        done = {m.sentence_index for m in report.markers}
    out = []
    for s in result.answer_sentences:
        if s.supported and s.citations and s.index not in done:
            top = s.citations[0]
            out.append(
                MissingCitation(
                    s.index, s.text, s.start, s.end, top.source_id, top.source_index, top
                )
            )
    return tuple(out)


# --- repairing ------------------------------------------------------------------------------


def repair(report: CitationReport | None) -> CitationRepair | None:
    """The answer with its written markers repaired (wrong ones replaced, dangling ones
    dropped; nothing else changes), or None when there is nothing to repair in its text
    (no report, or citations given beside the text)."""
    if report is None or not report.markers:
        return None
    if any(m.style in ("structured", "provider") for m in report.markers):
        return None
    return repair_report(report)
