"""The citations an answer carries, checked against its attribution; imports no framework.

An answer cites its sources in one of three ways: markers in its text (`[1]`, `[^2]`,
`<cite id=...>`, "Source 3"), a list of source ids beside the text (a structured output such
as LangChain's `CitedAnswer(answer, citations)`), or provider citations on text blocks
(Anthropic's `{"type": "text", "text": ..., "citations": [{"document_index": 0, ...}]}`).
`check` turns each into a `CitationReport` built from the attribution already computed:
nothing is encoded again, and an answer that cites nothing costs one regex scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..citations import CitationReport, MarkerCheck, MissingCitation, check_citations
from ..markers import Marker, Numbering, parse_markers, resolve
from ..repair import CitationRepair, repair_report
from ..results import AttributionResult, Source, Span

__all__ = [
    "CitedSpan",
    "GivenCitations",
    "check",
    "from_blocks",
    "from_structured",
    "numbering_for",
    "repair",
]

Kind = Literal["structured", "provider"]

# Labels that name a source in a prompt or in a source's own text: "Source 1:", "Source ID: 0",
# "Document 2", "Doc #3", "[4]" opening a line (LlamaIndex's CitationQueryEngine, LangChain's
# QA-with-citations how-to, most prompt templates).
_LABELLED = re.compile(
    r"\b(?:source|document|doc)(?:\s+id)?\s*[:#]?\s*(\d{1,3})\b|^[ \t]*\[(\d{1,3})\]",
    re.IGNORECASE | re.MULTILINE,
)
_ANSWER_FIELDS = ("answer", "response", "text", "output")
_CITATION_FIELDS = ("citations", "sources", "source_ids", "cited_sources", "references")
# a cited item's id field; not "id": a list of LangChain Documents is no list of citations
_ID_FIELDS = ("source_id", "document_index", "source_index", "doc_id", "source")


@dataclass(frozen=True, slots=True)
class CitedSpan:
    """One citation given beside the answer: the source `label` as given, and the claim's
    offsets in the answer (`start is None`: it backs the answer as a whole)."""

    label: str
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True, slots=True)
class GivenCitations:
    """Citations given beside the answer text: a structured output's list, or provider
    citations on text blocks (`kind`). `numbering` is how their labels name sources."""

    spans: tuple[CitedSpan, ...]
    kind: Kind = "structured"
    numbering: Numbering = "auto"


# --- reading the citations an output carries (dicts, pydantic models, content blocks) ----------


def _fields(value: object) -> Mapping[str, Any] | None:
    """A mapping's items, or a pydantic model's fields (read without importing pydantic)."""
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump) and hasattr(type(value), "model_fields"):
        try:
            dumped = dump()
        except Exception:
            return None
        return dumped if isinstance(dumped, Mapping) else None
    return None


def _label(item: object) -> str | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, (int, str)):
        return str(item).strip() or None
    fields = _fields(item)  # QuotedAnswer's Citation(source_id, quote)
    if fields is not None:
        for key in _ID_FIELDS:
            if key in fields:
                return _label(fields[key])
    return None


def from_structured(value: object) -> tuple[str, GivenCitations] | None:
    """The answer text and cited source labels of a "cited answer" object, else None.

    Reads a dict or pydantic model with an answer string (`answer`, `response`, `text`,
    `output`) and a list of source ids or indices (`citations`, `sources`, `source_ids`,
    `cited_sources`, `references`), whose items are ints, strings, or objects with a
    `source_id` (LangChain's `CitedAnswer` and `QuotedAnswer`). A label that names no source is
    kept: it becomes a "dangling" verdict.
    """
    fields = _fields(value)
    if fields is None:
        return None
    answer = next((fields[k] for k in _ANSWER_FIELDS if isinstance(fields.get(k), str)), None)
    cited = next((fields[k] for k in _CITATION_FIELDS if isinstance(fields.get(k), list)), None)
    if answer is None or cited is None:
        return None
    labels = [_label(item) for item in cited]
    if any(x is None for x in labels):
        return None  # not a list of source ids (e.g. the retrieved documents themselves)
    spans = tuple(CitedSpan(x) for x in dict.fromkeys(x for x in labels if x is not None))
    return answer, GivenCitations(spans, "structured")


def from_blocks(content: object) -> GivenCitations | None:
    """Provider citations on the text blocks of a message's content list, else None.

    Anthropic's native blocks carry `citations` (`char_location`, `page_location`,
    `content_block_location`: `document_index` is the 0-based position of the document in the
    request); LangChain v1 standard blocks carry `annotations` of type "citation" with
    `extras.document_index`. A citation's claim is its block's text, at the block's place in the
    text blocks joined (as `message.text` joins them). Web-search citations name a URL, not a
    document, and are skipped.
    """
    if not isinstance(content, list):
        return None
    spans: list[CitedSpan] = []
    at = 0
    for block in content:
        if isinstance(block, str):
            at += len(block)
            continue
        if not isinstance(block, Mapping) or block.get("type") != "text":
            continue
        text = block.get("text")
        if not isinstance(text, str):
            continue
        for index in _document_indices(block):
            spans.append(CitedSpan(str(index), at, at + len(text)))
        at += len(text)
    return GivenCitations(tuple(spans), "provider", "0-based") if spans else None


def _document_indices(block: Mapping[str, Any]) -> Iterable[int]:
    found: list[Any] = []
    for citation in block.get("citations") or ():
        if isinstance(citation, Mapping):
            found.append(citation.get("document_index"))
    for note in block.get("annotations") or ():
        if isinstance(note, Mapping) and note.get("type") == "citation":
            extras = note.get("extras")
            found.append(extras.get("document_index") if isinstance(extras, Mapping) else None)
    return [x for x in found if isinstance(x, int) and not isinstance(x, bool)]


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


# --- checking -------------------------------------------------------------------------------


def _sources(result: AttributionResult) -> list[Source]:
    return [Source(s.id, s.text, s.metadata) for s in result.sources]


def check(
    result: AttributionResult,
    given: GivenCitations | None = None,
    prompt: str | None = None,
) -> CitationReport | None:
    """The citation report of `result`'s answer, or None when it cites nothing.

    Markers written in the answer are checked when there are any; else `given` citations. The
    numbering comes from the prompt's labels (`numbering_for`), except for provider citations,
    whose indices are 0-based by definition. Raises on a fault (the caller records it).
    """
    sources = _sources(result)
    ids = [s.id for s in sources]
    if parse_markers(result.answer, ids=ids):
        numbering = numbering_for(sources, prompt)
        return check_citations(result.answer, sources, result=result, numbering=numbering)
    if given is None or not given.spans:
        return None
    numbering = given.numbering
    if numbering == "auto":
        numbering = numbering_for(sources, prompt)
    return _check_given(result, sources, given, numbering)


def _check_given(
    result: AttributionResult, sources: list[Source], given: GivenCitations, numbering: Numbering
) -> CitationReport:
    """Each given citation's verdict, from the same checks as written markers.

    The answer is rewritten with one `<cite id="k">claim</cite>` tag per claim (a sentence, for
    a citation of the whole answer), which `check_citations` reads; taking the tags out gives
    the answer back, so `result` applies as it is. A whole-answer citation is correct when its
    source backs some sentence.
    """
    answer = result.answer
    ids = [s.id for s in sources]
    fake = [Marker(x.label, 0, 0, x.label, 0, 0, "bracket", None) for x in given.spans]
    positions, numbering = resolve(fake, ids, numbering)
    claims: dict[tuple[int, int], list[int]] = {}
    for x, k in zip(given.spans, positions, strict=True):
        if k is None:
            continue
        for a, b in _claims(result, x):
            claims.setdefault((a, b), [])
            if k not in claims[(a, b)]:
                claims[(a, b)].append(k)
    tagged = _tag(answer, claims)
    report = check_citations(tagged, sources, result=result, numbering="1-based")
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


def _claims(result: AttributionResult, x: CitedSpan) -> list[tuple[int, int]]:
    """The spans of the answer a citation backs: its own, or every sentence."""
    if x.start is not None and x.end is not None:
        a, b = max(0, x.start), min(len(result.answer), x.end)
        return [(a, b)] if a < b and result.answer[a:b].strip() else []
    return [(s.start, s.end) for s in result.answer_sentences if s.end > s.start]


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
