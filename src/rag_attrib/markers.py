"""Find the citation markers an LLM wrote into its answer, and the text each one covers.

Styles: numeric `[1]`, `[1, 3]`, `[1][2]`, `[Source 1]`; footnotes `[^1]`; tags
`<cite id="1">...</cite>` (or self-closing); `(Source 2)` and inline "Source 2". Brackets in
code (fenced or inline), Markdown links and link definitions, URLs, and array indexing
(`items[1] = x`, `row_id[0]`) are not citations. Pure functions over `str`; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from .results import AttributionResult, Span

__all__ = [
    "NUMBERINGS",
    "Marker",
    "Numbering",
    "clean_text",
    "parse_markers",
    "resolve",
]

Style = Literal["bracket", "footnote", "cite", "source"]
Numbering = Literal["auto", "1-based", "0-based", "ids"]
NUMBERINGS: tuple[str, ...] = ("auto", "1-based", "0-based", "ids")


@dataclass(frozen=True, slots=True)
class Marker:
    """One cited reference as written in an answer.

    `text`/`start`/`end` are the whole written marker ("[1, 3]", '<cite id="2">', "(Source 4)");
    a marker naming several references yields one `Marker` per reference, sharing that span.
    `label` is the reference as written ("3", "doc-a") and `label_start`/`label_end` its place
    in the answer. `close` is the span of a `</cite>` that ends the cited text, if any. `claim` is
    the text the marker covers: the clause before it (or the sentence before, when the marker
    follows a sentence's end), the text between cite tags, or the sentence naming "Source n";
    None when the marker covers no text (an answer that is only markers).
    """

    text: str
    start: int
    end: int
    label: str
    label_start: int
    label_end: int
    style: Style
    claim: Span | None
    close: Span | None = None


_REF = r"[A-Za-z0-9][\w.:\-]{0,63}"
_NUM_LIST = r"\d{1,3}(?:\s*[,;]\s*\d{1,3})*"
# [1], [1, 3], [Source 1], [source: 1, 2], [^1], [^note-a]
_BRACKET = re.compile(
    rf"\[(?P<foot>\^)?(?P<src>sources?\s*:?\s*)?(?P<body>{_REF}(?:\s*[,;]\s*{_REF})*)\]",
    re.IGNORECASE,
)
_SOURCE = re.compile(rf"(?P<open>\()?\bsources?\s+(?P<body>{_NUM_LIST})\b(?P<close>\))?", re.I)
_CITE_OPEN = re.compile(
    r"<cite\s+(?:[\w-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+)\s*)*?"
    r"(?:id|ref|source|index|doc)\s*=\s*(?P<q>[\"']?)(?P<body>[^\"'>]*?)(?P=q)"
    r"(?:\s+[\w-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))*\s*(?P<self>/)?>",
    re.IGNORECASE,
)
_CITE_CLOSE = re.compile(r"</cite\s*>", re.IGNORECASE)
_LABEL = re.compile(_REF)

_FENCE = re.compile(r"^[ \t]*(```|~~~).*?(?:^[ \t]*\1[^\n]*$|\Z)", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
_LINK = re.compile(r"!?\[[^\]\n]*\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
_LINK_DEF = re.compile(r"^[ \t]*\[\^?[^\]\n]+\]:.*$", re.MULTILINE)
_URL = re.compile(r"\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>\"'`]+", re.IGNORECASE)
# after an identifier: `items[1] = x`, `obj.attr[0]`, `row_id[2]`, `f(x)[0]`, `m[1][2]`
_CODE_BEFORE = re.compile(r"(?:[\w\])]\.\w+|\w*_\w*|\))$")
_CODE_AFTER = re.compile(r"\s*(?:[-+*/%<>!=]?=(?!=)|==|[(.]\w|\))")
# a sentence ends at . ! ? (closing quotes/brackets aside) before a space, or at a line break
_BOUNDARY = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s)|\n")
_BULLET = re.compile(r"(?:[-*+]|\d{1,3}[.)])[ \t]+")
_BLANK = re.compile(r"[\s.,;:!?\-\u2013\u2014\"'()]*")
# what every marker holds: most answers have none, and attribute() parses every answer
_MAYBE = re.compile(r"\[|<cite|\bsources?\s", re.IGNORECASE)


def parse_markers(answer: str, *, ids: Sequence[str] = ()) -> list[Marker]:
    """Every citation marker in `answer`, in order.

    Args:
        answer: the generated answer.
        ids: source ids; a bracket naming only known ids (`[doc-a]`, `[doc-a, doc-b]`) is a
            marker too. Numbers are always markers.

    Returns:
        `Marker`s sorted by position (one per cited reference).
    """
    if not isinstance(answer, str) or not _MAYBE.search(answer):
        return []
    excluded = _excluded(answer)
    known = {i for i in ids if i}
    raw: list[tuple[int, int, str, Style, list[tuple[str, int, int]], Span | None]] = []
    taken: list[tuple[int, int]] = []

    for m in _CITE_OPEN.finditer(answer):
        if _inside(m.start(), excluded):
            continue
        labels = _labels(m, "body")
        if not labels:
            continue
        close = None
        if not m.group("self"):
            close = _closing(answer, m.end(), excluded)
        raw.append((m.start(), m.end(), m.group(), "cite", labels, close))
        taken.append((m.start(), m.end()))

    for m in _BRACKET.finditer(answer):
        if _inside(m.start(), excluded) or _overlaps(m.start(), m.end(), taken):
            continue
        labels = _labels(m, "body")
        numeric = all(_is_number(label) for label, _, _ in labels)
        if not numeric and not all(label in known for label, _, _ in labels):
            continue
        if not m.group("foot") and _is_indexing(answer, m.start(), m.end()):
            continue
        style: Style = "footnote" if m.group("foot") else "bracket"
        raw.append((m.start(), m.end(), m.group(), style, labels, None))
        taken.append((m.start(), m.end()))

    for m in _SOURCE.finditer(answer):
        if _inside(m.start(), excluded) or _overlaps(m.start(), m.end(), taken):
            continue
        start, end = m.start(), m.end()
        if m.group("open") and not m.group("close"):
            start += 1  # "(Source 2 says" : the parenthesis is not ours
        elif m.group("close") and not m.group("open"):
            end -= 1
        raw.append((start, end, answer[start:end], "source", _labels(m, "body"), None))
        taken.append((start, end))

    raw.sort(key=lambda r: r[0])
    # claims are read from a copy with every marker blanked out, so none holds a marker
    chars = list(answer)
    for start, end, *_, close in raw:
        chars[start:end] = " " * (end - start)
        if close is not None:
            chars[close.start : close.end] = " " * (close.end - close.start)
    masked = "".join(chars)
    out: list[Marker] = []
    run_claim: Span | None = None
    previous_end = -1
    for start, end, text, style, labels, close in raw:
        if style == "cite" and close is not None:
            claim = _span(masked, start + len(text), close.start)
        elif style == "source" and not text.startswith("("):
            claim = _sentence_around(masked, start, end)
        elif previous_end >= 0 and _is_blank(masked[previous_end:start]):
            claim = run_claim  # "[1][2]", "[1], [2]": one run shares its claim
        else:
            claim = _claim_before(masked, start, end, floor=max(previous_end, 0))
        run_claim = claim
        previous_end = end if close is None else max(end, close.end)
        if claim is not None:
            claim = Span(answer[claim.start : claim.end], claim.start, claim.end)
        out.extend(
            Marker(text, start, end, label, a, b, style, claim, close) for label, a, b in labels
        )
    return out


def resolve(
    markers: Sequence[Marker], ids: Sequence[str], numbering: Numbering = "auto"
) -> tuple[list[int | None], Numbering]:
    """The source position each marker cites (None: no such source), and the numbering used.

    "1-based" / "0-based" read numbers as positions in `ids`; "ids" matches labels to ids
    exactly. "auto": labels that are not all numbers are ids; numbers are 1-based positions
    (LlamaIndex's "Source n:" and most prompts) unless a 0 appears and every number fits
    0-based, or unless only the ids explain them (each is an id, and some is out of range).
    """
    if numbering not in NUMBERINGS:
        from .errors import ConfigError

        msg = f"numbering must be one of {', '.join(map(repr, NUMBERINGS))}; got {numbering!r}"
        raise ConfigError(msg)
    labels = [m.label for m in markers]
    n = len(ids)
    if numbering == "auto":
        numbering = _detect(labels, ids)
    position = {i: k for k, i in reversed(list(enumerate(ids)))}
    out: list[int | None] = []
    for label in labels:
        if numbering == "ids" or not _is_number(label):
            out.append(position.get(label))
            continue
        k = int(label) - (1 if numbering == "1-based" else 0)
        out.append(k if 0 <= k < n else None)
    return out, numbering


def _detect(labels: Sequence[str], ids: Sequence[str]) -> Numbering:
    numbers = [int(x) for x in labels if _is_number(x)]
    if len(numbers) < len(labels):
        return "ids"
    if not numbers:
        return "1-based"
    n = len(ids)
    known = set(ids)
    if max(numbers) > n and all(x in known for x in labels):
        return "ids"
    if 0 in numbers and max(numbers) < n:
        return "0-based"
    return "1-based"


def clean_text(answer: str, markers: Sequence[Marker]) -> tuple[str, list[tuple[int, int, str]]]:
    """`answer` with its markers taken out, for attribution; and the edits made.

    Bracket and footnote markers go with the spaces before them; cite tags go, their text
    stays; an inline "Source 2" reads "the source" (its figure is not a claim). Each edit is
    (start, end, replacement) in `answer`, sorted, so offsets map back (`to_original`).
    """
    edits: list[tuple[int, int, str]] = []
    seen: set[tuple[int, int]] = set()
    for m in markers:
        if (m.start, m.end) in seen:
            continue
        seen.add((m.start, m.end))
        if m.style == "source" and not m.text.startswith("("):
            edits.append((m.start, m.end, "the source"))
            continue
        edits.append((removal_start(answer, m), m.end, ""))
        if m.close is not None:
            edits.append((m.close.start, m.close.end, ""))
    edits.sort()
    merged: list[tuple[int, int, str]] = []
    for edit in edits:  # a removal's leading space may reach into the previous marker's span
        if merged and edit[0] < merged[-1][1]:
            a, b, r = merged[-1]
            merged[-1] = (a, max(b, edit[1]), r + edit[2])
        else:
            merged.append(edit)
    parts, pos = [], 0
    for a, b, r in merged:
        parts += [answer[pos:a], r]
        pos = b
    parts.append(answer[pos:])
    return "".join(parts), merged


def unmarked(text: str) -> str:
    """`text` without its citation markers, as `attribute()` reads it (`clean_text`)."""
    return clean_text(text, parse_markers(text))[0]


def to_original(pos: int, edits: Sequence[tuple[int, int, str]], *, end: bool = False) -> int:
    """Map an offset in `clean_text`'s output back to `answer` (`end`: as a span's end)."""
    shift = 0
    for a, b, r in edits:
        clean_a = a + shift
        if pos < clean_a or (end and pos == clean_a):
            break
        if pos < clean_a + len(r):
            return a if not end else b
        shift += len(r) - (b - a)
    return pos - shift


def sentences_as_written(
    result: AttributionResult, answer: str, edits: Sequence[tuple[int, int, str]]
) -> list[tuple[int, int]]:
    """Each result sentence's (start, end) in `answer` as written."""
    if result.answer == answer:
        return [(s.start, s.end) for s in result.answer_sentences]
    return [
        (to_original(s.start, edits), to_original(s.end, edits, end=True))
        for s in result.answer_sentences
    ]


def as_written(
    result: AttributionResult, answer: str, edits: Sequence[tuple[int, int, str]]
) -> AttributionResult:
    """The attribution of `answer`'s text without its markers (`clean_text`, which gave
    `edits`), as `answer` was written: its answer, and each sentence's offsets and text in it."""
    spans = sentences_as_written(result, answer, edits)
    sentences = tuple(
        replace(s, start=a, end=b, text=answer[a:b])
        for s, (a, b) in zip(result.answer_sentences, spans, strict=True)
    )
    return replace(result, answer=answer, answer_sentences=sentences)


def removal_start(answer: str, marker: Marker) -> int:
    """Where dropping `marker` starts: bracket markers take the spaces right before them."""
    if marker.style not in ("bracket", "footnote") and not marker.text.startswith("("):
        return marker.start
    k = marker.start
    while k > 0 and answer[k - 1] in " \t":
        k -= 1
    # keep the space when the marker opens its line, or stands between two words
    if k == 0 or answer[k - 1] == "\n":
        return marker.start
    return k


def _labels(m: re.Match[str], group: str) -> list[tuple[str, int, int]]:
    base = m.start(group)
    return [
        (x.group(), base + x.start(), base + x.end()) for x in _LABEL.finditer(m.group(group) or "")
    ]


def _excluded(text: str) -> list[tuple[int, int]]:
    spans = []
    for pattern in (_FENCE, _INLINE_CODE, _LINK, _LINK_DEF, _URL):
        spans += [(m.start(), m.end()) for m in pattern.finditer(text)]
    return sorted(spans)


def _inside(pos: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(a <= pos < b for a, b in spans)


def _overlaps(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(a < end and start < b for a, b in spans)


def _is_indexing(text: str, start: int, end: int) -> bool:
    """`x[1]` in code-like prose is indexing; "capital[1]." (no space) is still a citation."""
    if start == 0 or text[start - 1].isspace():
        return False
    before = text[max(0, start - 64) : start]
    if before.endswith("]"):  # "[see][1]" is a reference link; "[1][2]" is two citations
        opener = before.rfind("[")
        inner = before[opener + 1 : -1] if opener >= 0 else ""
        return _BRACKET.fullmatch(f"[{inner}]") is None
    if not (before[-1].isalnum() or before[-1] in "_)"):
        return False
    return bool(_CODE_BEFORE.search(before) or _CODE_AFTER.match(text, end))


def _closing(text: str, pos: int, excluded: Sequence[tuple[int, int]]) -> Span | None:
    """The `</cite>` that closes a tag opened before `pos`, unless another tag opens first."""
    for m in _CITE_CLOSE.finditer(text, pos):
        if _inside(m.start(), excluded):
            continue
        reopen = _CITE_OPEN.search(text, pos, m.start())
        return None if reopen else Span(m.group(), m.start(), m.end())
    return None


def _is_number(label: str) -> bool:
    return label.isdigit() and len(label) <= 3  # "[2024]" is a year, not the 2024th source


def _is_blank(text: str) -> bool:
    return _BLANK.fullmatch(text) is not None


def _span(text: str, start: int, end: int) -> Span | None:
    """`text[start:end]` without surrounding whitespace and a list bullet opening its line
    ("- ", "2. ": Markdown, not the claim, as the splitter leaves it out of sentences), or None
    when nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    if not text[text.rfind("\n", 0, start) + 1 : start].strip():
        bullet = _BULLET.match(text, start, end)
        if bullet is not None:
            start = bullet.end()
    while end > start and text[end - 1].isspace():
        end -= 1
    if start >= end or _is_blank(text[start:end]):
        return None
    return Span(text[start:end], start, end)


def _boundary_before(text: str, pos: int, floor: int) -> int:
    """The start of the sentence holding `pos` (not before `floor`)."""
    best = floor
    for m in _BOUNDARY.finditer(text, floor, pos):
        best = m.end()
    return best


def _claim_before(text: str, pos: int, end: int, floor: int) -> Span | None:
    """What a marker at `pos`..`end` covers: the clause before it, else the sentence before
    it, else (nothing before: a marker opening a line) the sentence after it."""
    start = _boundary_before(text, pos, floor)
    claim = _span(text, start, pos)
    if claim is not None:
        return claim
    if start > floor:  # "Paris is the capital. [1]": the sentence that just ended
        claim = _span(text, _boundary_before(text, start - 1, floor), start)
        if claim is not None:
            return claim
    line_start = text.rfind("\n", 0, pos) + 1
    if _is_blank(text[line_start:pos]):
        m = _BOUNDARY.search(text, end)
        return _span(text, end, m.end() if m else len(text))
    return None


def _sentence_around(text: str, start: int, end: int) -> Span | None:
    """The sentence holding `text[start:end]`, the marker's own words included."""
    a = _boundary_before(text, start, 0)
    m = _BOUNDARY.search(text, end)
    return _span(text, a, m.end() if m else len(text))
