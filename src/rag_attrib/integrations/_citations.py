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

import re
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
from ._urls import normalise_url, url_positions

if TYPE_CHECKING:
    from ..engine import Attributor

__all__ = [
    "CheckOptions",
    "Labels",
    "check",
    "check_options",
    "label_choices",
    "label_order",
    "labelled",
    "numbering_for",
    "repair",
]

# Labels that name a source in a prompt or in a source's own text: "Source 1:", "Source ID: 0",
# "Document 2", "Doc #3", "[4]" opening a line (LlamaIndex's CitationQueryEngine, LangChain's
# QA-with-citations how-to, most prompt templates).
_LABELLED = re.compile(
    r"\b(?:source|document|doc)(?:\s+id)?\s*[:#]?\s*(\d{1,3})\b|^[ \t]*\[(\d{1,3})\]",
    re.IGNORECASE | re.MULTILINE,
)


# The same labels read in text whose spaces are collapsed (a "[4]" no longer opens a line).
_LABEL = re.compile(
    r"\b(?:source|document|doc)(?:\s+id)?\s*[:#]?\s*(\d{1,3})\b|\[(\d{1,3})\]", re.IGNORECASE
)
# Spaces and a repr's "\\n", and the opening looked for, as `_pipeline.reached` reads them.
_SPACE = re.compile(r"(?:\s|\\[nrt])+")
_OPENING = 200


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


# --- numbering ------------------------------------------------------------------------------


def numbering_for(sources: Sequence[Source], prompt: str | None) -> Numbering:
    """How the answer's numbers name `sources`, read from the labels the LLM was shown.

    The prompt (or the sources' own texts: CitationQueryEngine writes "Source 1:" into each
    node) numbers n sources 0..n-1 -> "0-based", 1..n -> "1-based"; anything else -> "auto".
    """
    n = len(sources)
    if n == 0:
        return "auto"
    shown = "\n".join([prompt or "", *(s.text[:40] for s in sources)])
    numbers = {int(a or b) for a, b in _LABELLED.findall(shown)}
    if set(range(n)) <= numbers and max(numbers) == n - 1:
        return "0-based"
    if set(range(1, n + 1)) <= numbers and 0 not in numbers:
        return "1-based"
    return "auto"


def label_order(texts: Sequence[str], shown: str) -> list[int] | None:
    """The positions of `texts` in the order `shown` labels them, else None.

    A tool that returns "Source 1:\n<text>\n\nSource 2:\n<text>" (as CitationQueryEngine
    labels its chunks) defines what the answer's [n] name, whatever order its nodes came in.
    Each text is found in `shown` by its opening (spaces collapsed); its label is the last
    one between the text shown before it and its opening (metadata lines may sit between).
    None unless every text is shown under its own label and the labels count 1..n or 0..n-1:
    then `numbering_for` reads that numbering from `shown`. A text not shown, a passage with
    no label, labels repeated (two tool calls each counting from 1: see `label_choices`, which
    `shown` split by tool call should be read with first) all give None.
    """
    labels = _labels_in(texts, shown)
    if not texts or labels is None or len(labels) < len(texts):
        return None
    if _base(labels) is None:
        return None
    return sorted(labels, key=labels.__getitem__)


@dataclass(frozen=True, slots=True)
class Labels:
    """What the answer's numbers can name when several texts the LLM read each label their
    passages afresh (one search tool called twice, each output "Source 1:", "Source 2:").

    `names` maps a label ("1") to the positions of the sources shown under it, the latest
    text's first; `numbering` is how they count ("1-based" or "0-based"); `texts` how many
    texts label passages.
    """

    names: Mapping[str, tuple[int, ...]]
    numbering: Numbering
    texts: int

    def ambiguous(self, markers: Sequence[Marker]) -> list[str]:
        """The labels among `markers` that name more than one source, as written."""
        labels = (m.label for m in markers if m.label.isdigit())
        return [x for x in dict.fromkeys(labels) if len(self.names.get(str(int(x)), ())) > 1]


def label_choices(texts: Sequence[str], parts: Sequence[str]) -> tuple[list[int], Labels] | None:
    """Where no one numbering holds: the order to put `texts` in and what each label names,
    when each of `parts` (what each tool call showed the LLM, in call order) labels the texts
    it shows as `label_order` reads one text.

    Each part's labels must count from 1 (or each from 0), every text must be shown under a
    label in some part, and some label must name different texts in two parts (else one
    numbering holds: `label_order` over the parts joined). The order puts the latest part's
    passages first, by label, then those only earlier parts show; a label names the passage
    each part shows under it, the latest part's first. Else None.
    """
    if not texts or len(parts) < 2:
        return None
    found: list[dict[int, int]] = []
    for part in parts:
        labels = _labels_in(texts, part)
        if labels is None:
            return None
        if labels:
            found.append(labels)
    bases = {_base(labels) for labels in found}
    shown = {k for labels in found for k in labels}
    if len(found) < 2 or len(bases) != 1 or None in bases or len(shown) < len(texts):
        return None
    order: list[int] = []
    names: dict[str, list[int]] = {}
    for labels in reversed(found):
        order.extend(k for k in sorted(labels, key=labels.__getitem__) if k not in order)
    where = {k: i for i, k in enumerate(order)}
    for labels in reversed(found):
        for k, label in labels.items():
            names.setdefault(str(label), []).append(where[k])
    named = {label: tuple(dict.fromkeys(at)) for label, at in names.items()}
    if all(len(at) == 1 for at in named.values()):
        return None
    numbering: Numbering = "0-based" if bases == {0} else "1-based"
    return order, Labels(named, numbering, len(found))


def labelled(
    sources: Sequence[Source], shown: Sequence[str]
) -> tuple[list[Source], str | None, Labels | None]:
    """`sources` as the texts the answering LLM read them in number them: `shown` holds what
    each tool call showed it, in call order (nothing when it read the sources themselves).

    Returns the sources put in label order, the text to read their numbering from (`shown`
    joined) when one numbering holds (`label_order`), and what each label names when two
    outputs each count afresh (`label_choices`, read first); else the sources unchanged,
    None and None.
    """
    texts = [s.text for s in sources]
    choices = label_choices(texts, shown)
    if choices is not None:
        order, labels = choices
        return [sources[k] for k in order], None, labels
    joined = "\n".join(shown)
    order_found = label_order(texts, joined) if shown else None
    if order_found is None:
        return list(sources), None, None
    return [sources[k] for k in order_found], joined, None


def _labels_in(texts: Sequence[str], shown: str) -> dict[int, int] | None:
    """The label each of `texts` that `shown` shows is shown under (its position -> the
    number); None when one of them has no label of its own."""
    flat = _SPACE.sub(" ", shown)
    places: list[tuple[int, int, int]] = []  # (where its opening is, its length, position)
    for k, text in enumerate(texts):
        opening = _SPACE.sub(" ", text).strip()[:_OPENING]
        at = flat.find(opening) if opening else -1
        if at >= 0:
            places.append((at, len(opening), k))
    labels: dict[int, int] = {}
    after = 0
    for at, length, k in sorted(places):
        found = _LABEL.findall(flat, after, at) if after <= at else []
        if not found:
            return None
        labels[k] = int(found[-1][0] or found[-1][1])
        after = at + length
    return labels


def _base(labels: Mapping[int, int]) -> int | None:
    """1 when `labels` count 1..n, 0 when 0..n-1, else None."""
    numbers = sorted(labels.values())
    if numbers == list(range(1, len(numbers) + 1)):
        return 1
    return 0 if numbers == list(range(len(numbers))) else None


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
