"""How `check_citations` judges one cited source against the attribution.

The verdicts read the result only: the verdict (`supported`, `support`) decides whether the
claim is backed at all, and the per-source strength (the best strength of the claim over each
source's sentences, `result.similarity`) decides which sources back it. Both exist for either
verdict, so the check follows whichever the engine used. Only `rescore` (exact_support=True)
attributes again.

A cited source backs a supported claim when it is about as strong as the strongest source
(within `RANK_MARGIN`), or among the n strongest when the sentence's markers name n sources and
it holds `FLOOR_RATIO` of the strongest's strength, unless a page of an entity the question
names (see below) that the sentence does not cite reads closer by more than `RANK_MARGIN`: then
it stands in that hop's place (`passed_over`). Or when it is the second hop of a claim that also
cites a strong source: its best sentence names something (a capitalised name the claim does not
hold) that the other cited source holds ("X directed A" + "X was born in B"). A distractor
retrieved for the same words shares the claim's names, not the other source's, and is caught. Or
when its best sentence holds every content word of the claim, one at least not the question's: a
short answer ("New York") under a question whose other hop reads closer. Or when it opens with a
name the question holds whole and the claim is the answer's first sentence: the page of an
entity the question asks about ("Mark King (born 1958) is ..." for "Nick Hexum" under "Which
singer is American, Mark King or Nick Hexum?"); a page opening with part of such a name ("Frost
is ice ...") is not. The page may open with the name in full: the asked first word (or a
nickname in quotes) and last word with middle names between and a suffix after ("Adam Fredric
Duritz" for "Adam Duritz", 'Andrew Alan "Drew" Fuller' for "Drew Fuller"), accents aside
("Akinoshū" for "Akinoshu"); a longer name ending in the asked one ("Lee Roy Selmon Expressway")
is another thing. Or its first sentence says its subject is known by the name ("Hartwig
Schierbaum (born 1954), better known by his stage name Marian Gold, is ..."). The repair reads
the same rule, so it names that page rather than a closer distractor.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from .lexical import content_tokens
from .markers import unmarked
from .results import (
    AttributionResult,
    Citation,
    SentenceAttribution,
    Source,
    SourceAttribution,
    Span,
)

if TYPE_CHECKING:
    from .citations import MarkerCheck
    from .engine import Attributor

logger = logging.getLogger(__name__)

__all__ = [
    "FLOOR_RATIO",
    "RANK_MARGIN",
    "about_question",
    "answers",
    "backs",
    "bridged",
    "cited_support",
    "evidence",
    "passed_over",
    "ranked",
    "rescore",
    "restates",
    "source_strength",
    "suggest",
]

# A source beats the cited one only when its strength is higher by more than this: two
# passages that say the same thing tie. And a source below the strongest needs this fraction
# of its strength: a claim's n-th source must hold some of it. Chosen on the train side
# (HotpotQA train, WiCE dev: benchmarks/markers.py --side train --rules ...).
RANK_MARGIN = 0.08
FLOOR_RATIO = 0.3


def source_strength(result: AttributionResult) -> np.ndarray:
    """res[i][k] = the best strength of answer sentence i over source k's sentences (NaN:
    unknown, e.g. a trimmed record or a source with no sentences)."""
    matrix = np.asarray(result.similarity, dtype=np.float32)
    m = len(result.answer_sentences)
    sizes = [len(s.sentences) for s in result.sources]
    out = np.full((m, len(sizes)), np.nan, dtype=np.float32)
    if matrix.shape != (m, sum(sizes)) or m == 0:
        return out
    edges = np.cumsum([0, *sizes])
    filled = np.where(np.isnan(matrix), -np.inf, matrix)
    for k, n in enumerate(sizes):
        if n:
            out[:, k] = filled[:, edges[k] : edges[k + 1]].max(axis=1)
    out[np.isinf(out)] = np.nan
    return out


def backs(row: np.ndarray, k: int, cited: int) -> bool | None:
    """Whether source k is within `RANK_MARGIN` of the strongest source, or among the `cited`
    strongest with `FLOOR_RATIO` of its strength (None: unknown)."""
    own = float(row[k])
    if math.isnan(own):
        return None
    best = float(np.nanmax(row))
    if own + RANK_MARGIN >= best:
        return True
    stronger = int(np.count_nonzero(row > own + RANK_MARGIN))  # NaN compares False
    return stronger < max(cited, 1) and own >= FLOOR_RATIO * best


def bridged(result: AttributionResult, i: int, k: int, partner: int) -> bool:
    """Whether source k's best sentence for answer sentence i names something the claim
    (with its question) does not and that source `partner`'s text holds: a second hop."""
    ev = evidence(result, i, k)
    if ev is None:
        return False
    claim = _words(f"{result.question or ''} {result.answer_sentences[i].text}")
    other = result.sources[partner].text
    return any(
        len(name) > 2 and name not in _CALENDAR and not _words(name) <= claim and name in other
        for name in _NAME.findall(ev.text)
    )


def about_question(result: AttributionResult, i: int, k: int) -> bool:
    """Whether source k opens with a name its question holds whole and answer sentence i is the
    answer's first, the one that answers it: the page of an entity the question asks about
    ("Mark King (born 1958) is an English musician." under "Which singer is American, Mark
    King or Nick Hexum?"), one hop of the answer even when another page reads closer to it.
    Names compare without accents; the page may open with the name in full (`_same_name`) or
    say in its first sentence that its subject is known by it (`_aliases`)."""
    question = result.question
    if not question or i != 0:
        return False
    text = result.sources[k].text.lstrip(_OPENERS)
    opening = _NAME.match(text)
    name = _fold(_strip(opening.group(0))) if opening else ""
    asked = {_fold(n) for n in _names(question)}
    if len(name) > 2 and name not in _CALENDAR and name in asked:
        return True
    full, nicknames = _full_name(text)
    return any(_same_name(n.split(), full, nicknames) for n in asked) or bool(
        _aliases(result.sources[k]) & asked
    )


def _aliases(source: SourceAttribution) -> set[str]:
    """The names a source's first sentence says its subject is known by ("Hartwig Schierbaum
    (born 1954), better known by his stage name Marian Gold, is ..." -> Marian Gold)."""
    first = source.sentences[0].text if source.sentences else source.text
    found = (_NAME.match(first, m.end()) for m in _KNOWN_AS.finditer(first))
    return {_fold(_strip(a.group(0))) for a in found if a}


def _same_name(asked: list[str], full: list[str], nicknames: set[str]) -> bool:
    """Whether a name of two or more words is the full name `full` with middle names left
    out: the same first word (or a nickname) and last word, the rest among the full name's
    ("Adam Duritz" for "Adam Fredric Duritz", "Drew Fuller" for 'Andrew Alan "Drew" Fuller';
    "South Australia" is not "Football Federation South Australia")."""
    return (
        len(asked) > 1
        and len(full) > 1
        and asked[-1] == full[-1]
        and (asked[0] == full[0] or asked[0] in nicknames)
        and set(asked) <= set(full)
    )


def _full_name(text: str) -> tuple[list[str], set[str]]:
    """The words of the name a text opens with (accents taken out, a suffix left out), and
    those in quotes, its nicknames ('Andrew Alan "Drew" Fuller (born 1980) is' -> Andrew Alan
    Drew Fuller; Drew)."""
    words: list[str] = []
    nicknames: set[str] = set()
    for raw in text.split():
        word = raw.strip(_QUOTES)
        bare = _fold(word.rstrip(",;:"))
        if not bare or not bare[0].isupper() or "(" in raw:
            break
        words.append(bare)
        if raw[0] in _QUOTES:
            nicknames.add(bare)
        if bare != _fold(word):  # "Roland, Jr.": the name ends at the comma
            break
    while words and words[0] in _LEADING:
        words.pop(0)
    while words and words[-1] in _SUFFIXES:
        words.pop()
    return words, nicknames


def _fold(text: str) -> str:
    """Text without accents ("Akinoshū" -> "Akinoshu"): a question may spell a name plain."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


_NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*")
_WORD = re.compile(r"\w+")
# "known as", "better known by his stage name", "known simply as": an alias follows
_KNOWN_AS = re.compile(
    r"\bknown\s+(?:simply\s+|professionally\s+|mononymously\s+)?"
    r"(?:as|by\s+(?:his|her|their|the)\s+(?:stage\s+|ring\s+|pen\s+)?(?:name|mononym))"
    r"\s+[\"\u201c]?"
)
_OPENERS = " \t\n\"'\u201c\u2018(["
_QUOTES = "\"'\u201c\u201d\u2018\u2019"
_SUFFIXES = frozenset("Jr Jr. Sr Sr. II III IV".split())
_CALENDAR = frozenset(
    "January February March April May June July August September October November December "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday The This That".split()
)
# Capitalised only because they open a sentence or a question: not part of a name
_LEADING = frozenset(
    "The A An This That These Those It He She They His Her Its Their There In On At Of For By "
    "From What Which Who Whom Whose When Where Why How Is Are Was Were Do Does Did Both Between "
    "Besides Among If According".split()
)


def _strip(name: str) -> str:
    """A name without the capitalised function words before it and its possessive "'s"."""
    words = name.split()
    while words and words[0] in _LEADING:
        words.pop(0)
    out = " ".join(words)
    return out[:-2] if out.endswith(("'s", "\u2019s")) else out


def _names(text: str) -> set[str]:
    """The capitalised names in text ("The Pro Bowl" -> "Pro Bowl", "Gisvi's" -> "Gisvi")."""
    return {n for n in map(_strip, _NAME.findall(text)) if n}


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def restates(result: AttributionResult, i: int, k: int) -> bool:
    """Whether source k's best sentence for answer sentence i holds every content word of it
    (a short answer, "New York", found in the venue's own page, under a question whose other
    source is stronger), one at least its question does not hold: "Sid Haig" under "Who is
    older, Sid Haig or Vic Darchinyan?" is in every page that names him."""
    ev = evidence(result, i, k)
    if ev is None:
        return False
    claim = set(content_tokens(result.answer_sentences[i].text))
    asked = set(content_tokens(result.question or ""))
    return bool(claim - asked) and claim <= set(content_tokens(ev.text))


def answers(result: AttributionResult, i: int, k: int) -> bool:
    """Whether source k backs answer sentence i though a stronger source reads closer: it
    restates the claim (`restates`) or is the page of an entity its question asks about
    (`about_question`). Both the check of a marker and the repair of a wrong one read this."""
    return restates(result, i, k) or about_question(result, i, k)


def passed_over(
    result: AttributionResult, i: int, k: int, row: np.ndarray, cited: Collection[int]
) -> bool:
    """Whether a source answer sentence i does not cite, the page of an entity its question
    names (`about_question`), reads closer to it than source k by more than `RANK_MARGIN`:
    then k, below the strongest, stands in place of that hop rather than beside it."""
    own = float(row[k])
    return any(
        j not in cited and row[j] > own + RANK_MARGIN and about_question(result, i, j)
        for j in range(row.size)
    )


def ranked(row: np.ndarray) -> list[int]:
    """Source indices, strongest first; unknown (NaN) strengths last."""
    key = np.where(np.isnan(row), -np.inf, row)
    return [int(k) for k in np.argsort(-key, kind="stable")]


def cited_support(sentence: SentenceAttribution, row: np.ndarray, k: int) -> float:
    """How strongly source k backs the sentence, on the verdict's own scale: the sentence's
    support scaled by k's strength relative to the strongest source's (its support itself when
    k is the strongest). The best of these over a claim's cited sources is the claim's support
    against only those sources."""
    own = row[k] if 0 <= k < row.size else math.nan
    best = np.nanmax(row) if row.size and not np.all(np.isnan(row)) else math.nan
    if math.isnan(own) or math.isnan(best) or best <= 0:
        return math.nan
    return float(sentence.support * min(1.0, max(0.0, float(own) / float(best))))


def suggest(
    result: AttributionResult, i: int, row: np.ndarray, taken: Collection[int], n: int
) -> int | None:
    """The source to cite for answer sentence i instead of a wrong marker: of the sources no
    marker of it cites (`taken`) with `FLOOR_RATIO` of the strongest's strength, the strongest
    that restates the claim or is the page of an entity its question asks about (the hop a
    closer distractor hides: a list of a studio's films reads closer to its name than the pages
    of the two films the question names); else the strongest backing it; else its strongest
    source (a repair then drops the duplicate marker). None when unsupported."""
    sentence = result.answer_sentences[i]
    if not sentence.supported:
        return None
    if np.all(np.isnan(row)):  # no strengths: the attribution's own citations, best first
        order = [c.source_index for c in sentence.citations]
        fits = order
    else:
        order = ranked(row)
        floor = FLOOR_RATIO * float(np.nanmax(row))
        hops = [k for k in order if k not in taken and row[k] >= floor and answers(result, i, k)]
        fits = hops or [k for k in order if backs(row, k, n)]
    pick = next((k for k in fits if k not in taken), None)
    return pick if pick is not None else (order[0] if order else None)


def evidence(result: AttributionResult, i: int, k: int) -> Citation | None:
    """Source k's best sentence for answer sentence i: its citation, else built from the
    strength matrix."""
    cited = next((c for c in result.answer_sentences[i].citations if c.source_index == k), None)
    if cited is not None:
        return cited
    source = result.sources[k]
    if not source.sentences:
        return None
    offset = sum(len(s.sentences) for s in result.sources[:k])
    matrix = np.asarray(result.similarity)
    if matrix.ndim != 2 or matrix.shape[1] < offset + len(source.sentences):
        return None
    row = matrix[i, offset : offset + len(source.sentences)]
    if row.size == 0 or np.all(np.isnan(row)):
        return None
    j = int(np.nanargmax(row))
    s = source.sentences[j]
    return Citation(source.id, k, j, s.text, s.start, s.end, math.nan, float(row[j]))


def rescore(
    checks: Sequence[MarkerCheck],
    result: AttributionResult,
    sources: Sequence[Source],
    attributor: Attributor,
) -> tuple[MarkerCheck, ...]:
    """Each marker's `support` made exact: its sentence attributed again, by `attributor`'s
    own verdict, against only the sources the sentence's markers cite (embeddings from the
    attributor's cache; the lexical weights follow the sources given, so even a sentence citing
    its strongest source may score differently). A sentence citing every source keeps its
    support."""
    cited: dict[int, set[int]] = {}
    for c in checks:
        if c.sentence_index is not None and c.source_index is not None:
            cited.setdefault(c.sentence_index, set()).add(c.source_index)
    exact: dict[int, float] = {}
    for i, ks in cited.items():
        sentence = result.answer_sentences[i]
        if len(ks) == len(sources):
            exact[i] = sentence.support
            continue
        # the sentence as written carries its markers; attribute() reads it without them, and
        # that text is the one to keep whole
        text = unmarked(sentence.text)
        one = type(attributor)(
            attributor.embedder,
            config=attributor.config,
            reranker=attributor.reranker,
            splitter=_Whole(text, attributor.splitter),
        )
        try:
            scored = one.attribute(text, [sources[k] for k in sorted(ks)], result.question)
        except Exception:  # the approximate support stays; the check must not fail here
            logger.debug("rag_attrib: re-scoring a cited sentence failed", exc_info=True)
            continue
        if scored.answer_sentences and scored.error is None:
            exact[i] = scored.answer_sentences[0].support
    return tuple(
        replace(c, support=exact[c.sentence_index])
        if c.sentence_index in exact and c.source_index is not None
        else c
        for c in checks
    )


class _Whole:
    """A splitter that keeps one text (the answer sentence) whole and splits the rest."""

    def __init__(self, text: str, splitter: Callable[[str], list[Span]]) -> None:
        self.text = text
        self.splitter = splitter

    def __call__(self, text: str) -> list[Span]:
        if text == self.text:
            return [Span(text, 0, len(text))]
        return self.splitter(text)
