"""Sentence splitting with exact character offsets, aware of Markdown structure.

The text is first cut into blocks (paragraphs, headings, list items, table rows, fenced
code), then prose blocks are split into sentences by Punkt (NLTK's algorithm, its decision
kept in `_punkt` so NLTK itself is not imported) with built-in per-language abbreviation
lists, so no NLTK data download is ever needed. If NLTK and its `punkt_tab` model are
installed, its trained parameters are used as well.

Span conventions:

* offsets are code-point indices into the input, so `text[s.start:s.end] == s.text`;
* spans are stripped of surrounding whitespace (including NBSP and zero-width spaces),
  are in order and never overlap;
* Markdown syntax that introduces a block is left out of the span: heading `#`s, list
  bullets and numbers (and a task box `[ ]`), the `>`s of a block quote's first line;
* a fenced code block (its fence lines included) and a table row are each one span and
  never split; table separator rows and thematic breaks (`---`) give no span;
* a sentence never crosses a blank line, a heading, a list item, a table row or a fence,
  but plain line breaks inside a paragraph (wrapped prose) do not end a sentence.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from . import _punkt
from .results import Span

__all__ = ["PunktSplitter", "Splitter", "split_sentences"]


@runtime_checkable
class Splitter(Protocol):
    """Anything that turns a text into sentence spans with offsets into that text."""

    def __call__(self, text: str) -> list[Span]:
        """Split `text`; every span must satisfy `text[s.start:s.end] == s.text`."""
        ...


# --------------------------------------------------------------------------------------
# Per-language knowledge: abbreviations (lower case, no final dot, as Punkt expects).
# --------------------------------------------------------------------------------------


def _words(spec: str) -> frozenset[str]:
    return frozenset(spec.split())


@dataclass(frozen=True)
class _Profile:
    """What the splitter knows about one language."""

    abbreviations: frozenset[str]
    # Abbreviations that introduce something and so never end a sentence ("Dr.", "e.g.").
    never_final: frozenset[str]
    # Capitalised words that, after an abbreviation or initial, signal a new sentence.
    sent_starters: frozenset[str]
    # German writes ordinals as "3. Oktober": a number + dot + noun is not a boundary.
    ordinal_dot: bool = False
    # Characters that close a quotation, moved onto the sentence they follow; French
    # leaves out "\xab", which opens one there (and is followed by a space).
    closing_quotes: str = "\"')]}\u2018\u2019\u201c\u201d\xab\xbb"


_ENGLISH = _Profile(
    abbreviations=_words(
        """
        dr mr mrs ms mx messrs prof sr jr st rev hon capt col lt sgt cmdr gen gov sen rep pres
        vs etc e.g i.e viz cf al ca approx est dept univ assn bros inc ltd co corp llc plc
        u.s u.k u.n u.s.a e.u ph.d m.d b.a m.a b.sc m.sc a.m p.m a.d b.c
        no nos fig figs eq eqs vol vols p pp ch chap sec sect para ed eds trans repr
        jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thurs fri sat sun
        mt ft ave blvd rd hwy apt ste min max misc dept approx esp incl
        """
    ),
    never_final=_words("dr mr mrs ms mx messrs prof rev hon capt e.g i.e viz cf"),
    sent_starters=_words(
        """
        a an the this that these those it its he she they we i you there here his her their
        our my your but and or so yet however therefore thus then also moreover furthermore
        in on at for if when while after before as since because although though what why
        how who where which each all some many most one no not both such after finally
        first second third next later meanwhile today instead overall still
        """
    ),
)

_GERMAN = _Profile(
    abbreviations=_words(
        """
        z.b d.h usw bzw ca dr nr s vgl u.a z.t evtl ggf inkl sog jh str abs art bd bzgl bsp
        dgl etc f ff geb gegr hr fr hrsg i.a i.d.r jr max min mio mrd mind o.a o.ä prof rd
        s.o s.u sen st tel u.u u.ä v.a v.chr n.chr zzgl zz zt mst jan feb febr märz apr aug
        sep sept okt nov dez nr nrn gem lt allg anm
        """
    ),
    never_final=_words("z.b d.h vgl bzw sog dr prof hr nr bzgl gem lt"),
    sent_starters=_words(
        """
        der die das ein eine er sie es wir ich ihr man dies diese dieser dieses aber und
        doch dann danach denn so auch in im am als wenn nach bei mit für da dort hier heute
        jetzt nun zudem außerdem deshalb daher trotzdem wie was wer warum wo
        """
    ),
    ordinal_dot=True,
)

_SPANISH = _Profile(
    abbreviations=_words(
        """
        sr sra sras srta srtas sres dr dra dres ud uds vd vds d dña p.ej ej etc pág págs pag
        núm num no nº art cap vol vols ed aprox av avda c cía dpto lic ing prof tel admón
        ee.uu a.c d.c fig sig ss pp p ca col gral
        ene feb mar abr may jun jul ago sep sept oct nov dic
        """
    ),
    never_final=_words("sr sra sras srta srtas sres dr dra dres p.ej lic ing prof gral"),
    sent_starters=_words(
        """
        el la los las un una es en pero y se lo este esta esto eso ese esa él ella ellos
        ellas yo nosotros hoy luego después también sin con por para como cuando si ya
        no hay qué cómo dónde quién
        """
    ),
)

_FRENCH = _Profile(
    abbreviations=_words(
        """
        m mm mme mmes mlle mlles dr pr me p.ex etc cf av bd n° no nº p pp vol éd ed env
        fig chap st ste jr apr j.-c c cie tél ex art min max
        janv févr avr juil sept oct nov déc
        """
    ),
    never_final=_words("m mm mme mmes mlle mlles dr pr me p.ex cf"),
    sent_starters=_words(
        """
        le la les un une il elle ils elles on nous vous je ce cette ces mais et puis
        ensuite en dans pour si quand c'est il y alors donc enfin aujourd'hui cependant
        """
    ),
    closing_quotes="\"')]}\u2018\u2019\u201c\u201d\xbb",
)

_PROFILES = {"english": _ENGLISH, "german": _GERMAN, "spanish": _SPANISH, "french": _FRENCH}

_ALIASES = {
    "en": "english",
    "eng": "english",
    "de": "german",
    "deu": "german",
    "ger": "german",
    "deutsch": "german",
    "es": "spanish",
    "spa": "spanish",
    "español": "spanish",
    "espanol": "spanish",
    "fr": "french",
    "fra": "french",
    "fre": "french",
    "français": "french",
    "francais": "french",
}

# A name that may safely become a path segment under tokenizers/punkt_tab/.
_LANGUAGE_NAME_RE = re.compile(r"[a-z][a-z_]{1,40}")


def _canonical_language(language: str) -> str:
    """Map "en", "EN-us", "English" ... to a Punkt language name; junk becomes "english"."""
    if not isinstance(language, str):
        raise TypeError(f"language must be str, got {type(language).__name__}")
    name = language.strip().lower().replace("-", "_")
    name = _ALIASES.get(name) or _ALIASES.get(name.split("_", 1)[0]) or name
    return name if _LANGUAGE_NAME_RE.fullmatch(name) else "english"


# --------------------------------------------------------------------------------------
# Punkt, made fast and side-effect free.
# --------------------------------------------------------------------------------------

# Sentence enders Punkt should consider, beyond . ? ! (Arabic, Urdu, Devanagari).
_SENT_END_CHARS = (".", "?", "!", "\u2026", "\u061f", "\u06d4", "\u0964", "\u0965")


def _nltk_data_dirs() -> list[Path] | None:
    """Where NLTK looks for data (`nltk.data.path`) without importing NLTK; None: ask NLTK."""
    if "nltk" in sys.modules:  # imported already: honour what the user set
        return [Path(str(p)) for p in sys.modules["nltk"].data.path]
    if sys.platform.startswith("win"):
        return None
    dirs = [d for d in os.environ.get("NLTK_DATA", "").split(os.pathsep) if d]
    dirs.append(str(Path("~/nltk_data").expanduser()))
    dirs += [
        os.path.join(sys.prefix, "nltk_data"),
        os.path.join(sys.prefix, "share", "nltk_data"),
        os.path.join(sys.prefix, "lib", "nltk_data"),
        "/usr/share/nltk_data",
        "/usr/local/share/nltk_data",
        "/usr/lib/nltk_data",
        "/usr/local/lib/nltk_data",
    ]
    return [Path(d) for d in dirs]


@functools.lru_cache(maxsize=64)
def _punkt_tab_available(language: str) -> bool:
    """Whether NLTK and its `punkt_tab` model for `language` are installed (looked up once).

    A cheap look at NLTK's data folders comes first, so NLTK (~1 s to import) is imported
    only when a model may be there.
    """
    dirs = _nltk_data_dirs()
    tokenizers = [d / "tokenizers" for d in dirs or ()]
    if dirs is not None and not any(
        (t / "punkt_tab").is_dir() or (t / "punkt_tab.zip").is_file() for t in tokenizers
    ):
        return False
    try:
        import nltk.data

        nltk.data.find(f"tokenizers/punkt_tab/{language}/")
    except (ImportError, LookupError, OSError, ValueError):
        return False
    return True


def _punkt_tab_params(language: str) -> _punkt.Parameters | None:
    """The trained `punkt_tab` parameters for `language`, or None."""
    if not _punkt_tab_available(language):
        return None
    try:
        from nltk.tokenize import punkt

        # PunktTokenizer has no public accessor for the parameters it loaded.
        loaded = punkt.PunktTokenizer(language)._params
    except (AttributeError, ImportError, LookupError, OSError, ValueError):
        return None
    return _punkt.Parameters(
        abbrev_types=set(loaded.abbrev_types),
        collocations=set(loaded.collocations),
        sent_starters=set(loaded.sent_starters),
        ortho_context=_punkt.OrthoCounts(loaded.ortho_context),
    )


def _punkt_params(language: str, profile: _Profile) -> tuple[_punkt.Parameters, bool]:
    """Punkt parameters for `language`, and whether they came from `punkt_tab`."""
    params = _punkt_tab_params(language)
    from_tab = params is not None
    if params is None:
        # A sentence starter is "seen capitalised at a sentence start and in lower case
        # mid-sentence", which is Punkt's own evidence for a new sentence.
        flags = _punkt.ORTHO_BEG_UC | _punkt.ORTHO_MID_LC
        params = _punkt.Parameters(
            sent_starters=set(profile.sent_starters),
            ortho_context=_punkt.OrthoCounts(dict.fromkeys(profile.sent_starters, flags)),
        )
    params.abbrev_types |= profile.abbreviations
    return params, from_tab


# --------------------------------------------------------------------------------------
# Markdown blocks.
# --------------------------------------------------------------------------------------

# Whitespace (all of str.isspace) plus zero-width characters and the BOM.
_STRIP_CHARS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
    "\u200b\u200c\u200d\u2060\ufeff"
)
_STRIP_SET = frozenset(_STRIP_CHARS)
_LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
# First characters that may open a Markdown block; any other line is plain prose.
_BLOCK_START_CHARS = frozenset("#`~|>-*+_=0123456789")

_BLOCK_RE = re.compile(
    r"""
    [ \t]*
    (?:
        (?P<fence>`{3,}|~{3,})
      | (?P<heading>\#{1,6})(?:[ \t]+|$)
      | (?P<table>\|)
      | (?P<quote>(?:>[ \t]?)+)
      | (?P<bullet>[-*+])(?:[ \t]+|$)
      | (?P<number>\d{1,3})[.)](?:[ \t]+|$)
    )
    """,
    re.VERBOSE,
)
_TASK_BOX_RE = re.compile(r"\[[ xX]\](?:[ \t]+|$)")
_THEMATIC_BREAK_RE = re.compile(r"[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_SETEXT_RE = re.compile(r" {0,3}(?:=+|-+)[ \t]*$")
_TABLE_SEPARATOR_RE = re.compile(r"[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)+(?:[ \t]*:?-+:?[ \t]*)?$")
_CLOSING_HASHES_RE = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")

_PROSE, _ITEM, _QUOTE = 0, 1, 2


def _blocks(text: str) -> list[tuple[int, int, bool]]:
    """Cut `text` into `(start, end, is_prose)` blocks; only prose is split further."""
    blocks: list[tuple[int, int, bool]] = []
    para_start = -1  # -1: no paragraph open
    para_end = 0
    para_kind = _PROSE
    fence = ""  # the opening fence while inside a fenced code block
    fence_start = fence_end = 0
    pos = 0

    def flush() -> None:
        nonlocal para_start
        if para_start >= 0:
            blocks.append((para_start, para_end, True))
            para_start = -1

    for line in text.splitlines(keepends=True):
        start = pos
        pos += len(line)
        body = line.rstrip(_LINE_BREAKS)
        end = start + len(body)

        if fence:
            stripped = body.strip(" \t")
            if len(stripped) >= len(fence) and stripped == fence[0] * len(stripped):
                blocks.append((fence_start, end, False))
                fence = ""
            else:
                fence_end = end
            continue

        lead = body.lstrip(" \t")
        if not body.strip(_STRIP_CHARS):
            flush()
            continue
        if lead[0] not in _BLOCK_START_CHARS:
            if para_start < 0:
                para_start, para_kind = start, _PROSE
            para_end = end
            continue

        if para_start >= 0 and para_kind == _PROSE and _SETEXT_RE.match(body):
            # A setext heading: the whole paragraph above the underline is one unit.
            blocks.append((para_start, para_end, False))
            para_start = -1
            continue
        if _THEMATIC_BREAK_RE.match(body):
            flush()
            continue
        m = _BLOCK_RE.match(body)
        if m is None or (m["fence"] and "`" in body[m.end() :]):
            # Not a block opener (e.g. "-5 degrees", or an inline ```code``` span).
            if para_start < 0:
                para_start, para_kind = start, _PROSE
            para_end = end
            continue
        if m["fence"]:
            flush()
            fence = m["fence"]
            fence_start, fence_end = start + m.start("fence"), end
        elif m["heading"]:
            flush()
            content = body[m.end() :]
            closing = _CLOSING_HASHES_RE.search(content)
            blocks.append(
                (
                    start + m.end(),
                    end if closing is None else start + m.end() + closing.start(),
                    False,
                )
            )
        elif m["table"]:
            flush()
            if not _TABLE_SEPARATOR_RE.match(body):
                blocks.append((start + m.start("table"), end, False))
        elif m["quote"]:
            if para_start >= 0 and para_kind == _QUOTE:
                para_end = end
            else:
                flush()
                para_start, para_end, para_kind = start + m.end(), end, _QUOTE
        elif m["number"] and para_start >= 0 and para_kind == _PROSE and m["number"] != "1":
            # Only "1." may interrupt a paragraph, so "...born in\n12. May" stays prose.
            para_end = end
        else:
            flush()
            item_start = m.end()
            box = _TASK_BOX_RE.match(body, item_start)
            if box is not None:
                item_start = box.end()
            para_start, para_end, para_kind = start + item_start, end, _ITEM
    flush()
    if fence:
        blocks.append((fence_start, fence_end, False))
    return blocks


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink `[start, end)` past surrounding whitespace; empty ranges come back empty."""
    if start < end and text[start] not in _STRIP_SET and text[end - 1] not in _STRIP_SET:
        return start, end
    segment = text[start:end]
    left = segment.lstrip(_STRIP_CHARS)
    if not left:
        return end, end
    start += len(segment) - len(left)
    return start, start + len(left.rstrip(_STRIP_CHARS))


# --------------------------------------------------------------------------------------
# Sentence splitting inside a prose block.
# --------------------------------------------------------------------------------------

# CJK enders need no following space, so they are cut before Punkt runs.
_CJK_END_RE = re.compile(
    "[\u3002\uff01\uff1f\uff61]+[\u300d\u300f\uff09\u3011\u3015\u3009\u300b\u201d\u2019\"')\\]]*"
)
_HAS_ALNUM_RE = re.compile(r"[^\W_]")
# A word made of letters only, possibly after opening quotes or brackets.
_PLAIN_WORD_RE = re.compile(r"[\"'\u201c\u2018\xab\xbf\xa1(\[{]*([^\W\d_]{2,})")
_OPENERS = "\"'\u201c\u2018\xab\xbf\xa1([{*_"
_ELLIPSIS_END_RE = re.compile(r"(?:\.\.|\u2026)[\"'\u201d\u2019\xbb)\]]*\Z")
_QUOTED_BANG_END_RE = re.compile(r"[!?\u203d\u2026](?:\s*[\"'\u201d\u2019\xbb)\]])+\Z")
# Last characters of a sentence that a lower-case continuation may still belong to.
_SOFT_END_CHARS = frozenset("\u2026\"'\u201d\u2019\xbb)]")
_INITIALS_RE = re.compile(r"(?:[^\W\d_]\.)+")
_ORDINAL_RE = re.compile(r"\d{1,3}\.")
_TOKEN_RE = re.compile(r"\S+")
_SPACE_RE = re.compile(r"\s")
_TOKEN_TRAILING = ".,;:!?)]}'\"\u201d\u2019\xbb"
# Longest word looked at around a boundary; abbreviations are far shorter.
_WINDOW = 64


def _protected_ranges(text: str, start: int, end: int) -> tuple[list[int], list[int]]:
    """Start and end offsets of URLs and e-mail addresses in `text[start:end]`."""
    starts: list[int] = []
    ends: list[int] = []
    for m in _TOKEN_RE.finditer(text, start, end):
        token = m.group()
        if "://" in token or "www." in token or "@" in token:
            starts.append(m.start())
            ends.append(m.start() + len(token.rstrip(_TOKEN_TRAILING)))
    return starts, ends


class PunktSplitter:
    """NLTK Punkt sentence splitter with offsets, Markdown blocks and built-in abbreviations.

    Punkt's candidate scan runs here so that plain cases (a "?" or "!", a period after an
    ordinary word) are decided inline; every other candidate goes to Punkt's own decision
    (`text_contains_sentbreak`) with the same context NLTK's `span_tokenize` would give it.
    Instances hold no mutable state after construction, so one may serve many threads.

    Args:
        language: "english", "german", "spanish", "french" or their ISO codes; any other
            name uses its `punkt_tab` model if installed, with English abbreviations.

    Attributes:
        language: the resolved language name.
        uses_punkt_tab: whether NLTK's trained `punkt_tab` parameters were found and used.
    """

    def __init__(self, language: str = "english") -> None:
        self.language = _canonical_language(language)
        self._profile = _PROFILES.get(self.language, _ENGLISH)
        params, self.uses_punkt_tab = _punkt_params(self.language, self._profile)
        self._params = params
        self._abbreviations = frozenset(params.abbrev_types)
        self._collocation_heads = frozenset(first for first, _ in params.collocations)
        self._lang_vars = _punkt.LanguageVars(_SENT_END_CHARS, self._profile.closing_quotes)
        self._realign: re.Pattern[str] = self._lang_vars.re_boundary_realignment
        ends = re.escape("".join(_SENT_END_CHARS))
        self._candidates = re.compile(
            # Whole runs only: the look-arounds keep a long run of dots from backtracking.
            f"(?<![{ends}])(?P<end>[{ends}]+)(?![{ends}])"
            f"(?=(?P<ws>\\s+)\\S|{self._lang_vars.non_word_chars})"
        )
        # Punkt's verdict depends only on this short context, and the same abbreviations
        # recur; lru_cache is safe to share between threads.
        self._decide = functools.lru_cache(maxsize=4096)(self._contains_break)

    def _contains_break(self, context: str) -> bool:
        """Punkt's own decision: does `context` (word, end, next token) hold a boundary?"""
        return _punkt.contains_sentbreak(context, self._params, self._lang_vars)

    def __repr__(self) -> str:
        return f"PunktSplitter(language={self.language!r})"

    def __call__(self, text: str) -> list[Span]:
        """Split `text` into sentence spans.

        Args:
            text: the text to split.

        Returns:
            Stripped, ordered, non-overlapping spans with `text[s.start:s.end] == s.text`.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        spans: list[Span] = []
        for start, end, is_prose in _blocks(text):
            if is_prose:
                for a, b in self._sentences(text, start, end):
                    spans.append(Span(text[a:b], a, b))
            else:
                a, b = _strip(text, start, end)
                if a < b:
                    spans.append(Span(text[a:b], a, b))
        return spans

    def _sentences(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """Sentence offsets inside the prose block `text[start:end]`."""
        raw: list[tuple[int, int]] = []
        last = start
        for m in _CJK_END_RE.finditer(text, start, end):
            self._punkt_spans(text, last, m.end(), raw)
            last = m.end()
        self._punkt_spans(text, last, end, raw)
        if len(raw) < 2:
            return raw

        block_has_links = any(mark in text[start:end] for mark in ("://", "www.", "@"))
        links = _protected_ranges(text, start, end) if block_has_links else ([], [])
        merged = [raw[0]]
        for nxt in raw[1:]:
            prev = merged[-1]
            if self._joins(text, prev, nxt, links):
                merged[-1] = (prev[0], nxt[1])
            else:
                merged.append(nxt)
        return merged

    def _punkt_spans(self, text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
        """Append Punkt's (stripped) sentence offsets in `text[start:end]` to `out`."""
        sentence_start = floor = start
        candidates = list(self._candidates.finditer(text, start, end))
        for i, m in enumerate(candidates, 1):
            run_start, run_end = m.span("end")
            if (
                m["ws"] is None
                and i < len(candidates)
                and _SPACE_RE.search(text, run_end, candidates[i].start()) is None
            ):
                # As in Punkt: no whitespace before the next candidate ("done!)end.").
                continue
            window = text[max(floor, run_start - _WINDOW) : run_start]
            word = window.rsplit(None, 1)[-1] if window and not window[-1].isspace() else ""
            next_start = m.end("ws") if m["ws"] is not None else run_end
            floor = run_end
            if not self._is_break(text, m["end"], word, run_end, next_start, end):
                continue
            stop = run_end
            realigned = self._realign.match(text, next_start, end)
            if realigned is not None:
                # Closing quotes and brackets after the end belong to this sentence.
                stop = next_start + len(realigned.group().rstrip())
                next_start = realigned.end()
            a, b = _strip(text, sentence_start, stop)
            if a < b:
                out.append((a, b))
            sentence_start = floor = max(floor, next_start)
        a, b = _strip(text, sentence_start, end)
        if a < b:
            out.append((a, b))

    def _is_break(
        self, text: str, run: str, word: str, run_end: int, next_start: int, end: int
    ) -> bool:
        """Punkt's verdict on the candidate end `run` after `word`."""
        if run.strip("."):
            return True  # "?", "!" and the like always end a sentence in Punkt
        if run == ".":
            plain = _PLAIN_WORD_RE.fullmatch(word)
            if plain is not None:
                key = plain.group(1).lower()
                if key not in self._abbreviations and key not in self._collocation_heads:
                    return True
        if next_start > run_end:
            # Punkt's context: the word, the end, the whitespace and the next token.
            next_token = text[next_start : min(end, next_start + _WINDOW)].split(None, 1)[0]
            after = text[run_end:next_start] + next_token
        else:
            after = text[run_end]
        return self._decide(word + run + after)

    def _joins(
        self,
        text: str,
        prev: tuple[int, int],
        nxt: tuple[int, int],
        links: tuple[list[int], list[int]],
    ) -> bool:
        """Whether the boundary between `prev` and `nxt` should be undone."""
        link_starts, link_ends = links
        if link_starts:
            i = bisect_left(link_starts, prev[1]) - 1
            if i >= 0 and link_ends[i] > nxt[0]:
                return True  # the boundary falls inside a URL or e-mail address
        if _HAS_ALNUM_RE.search(text, nxt[0], nxt[1]) is None:
            return True  # a trailing emoji, ":)" or stray punctuation
        last = text[prev[1] - 1]
        if last != "." and last not in _SOFT_END_CHARS:
            return False  # "?", "!", "。" ... with nothing after them that could continue
        tail = text[max(prev[0], prev[1] - _WINDOW) : prev[1]]
        head = text[nxt[0] : min(nxt[1], nxt[0] + _WINDOW)].lstrip(_OPENERS)
        if last == ".":
            word = tail.rsplit(None, 1)[-1].lstrip(_OPENERS)[:-1]
            if _PLAIN_WORD_RE.fullmatch(word) and word.lower() not in self._abbreviations:
                return False  # an ordinary word ended the sentence
            return self._joins_after_dot(word, head, head[:1])
        return head[:1].islower() and bool(
            _ELLIPSIS_END_RE.search(tail) or _QUOTED_BANG_END_RE.search(tail)
        )

    def _joins_after_dot(self, word: str, head: str, first: str) -> bool:
        """Whether a boundary after `word` + "." is an abbreviation, initial or ordinal."""
        profile = self._profile
        key = word.lower()
        if key in profile.never_final:
            return True
        lower = first.islower()
        if key in self._abbreviations or key.rsplit("-", 1)[-1] in self._abbreviations:
            if lower or first.isdigit():
                return True
        next_word = head.split(None, 1)[0].rstrip(".,;:!?").lower() if head else ""
        starter = next_word in profile.sent_starters
        if _INITIALS_RE.fullmatch(word + ".") and (lower or (first.isupper() and not starter)):
            return True  # "J.R.R. Tolkien", "U.S.A. Army"
        if profile.ordinal_dot and _ORDINAL_RE.fullmatch(word + "."):
            return first.isupper() and not starter  # "am 3. Oktober"
        return lower and key.endswith("..")  # "Wait... what?"


@functools.lru_cache(maxsize=32)
def _default_splitter(language: str) -> PunktSplitter:
    return PunktSplitter(language)


def split_sentences(text: str, *, language: str = "english") -> list[Span]:
    """Split text into sentence spans with offsets; text[s.start:s.end] == s.text.

    Args:
        text: the text to split (plain text or Markdown).
        language: "english" (default), "german", "spanish", "french", or an ISO code.

    Returns:
        The sentence spans, in order; `[]` for empty or whitespace-only text.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    return list(_cached_split(text, _canonical_language(language)))


@functools.lru_cache(maxsize=4096)
def _cached_split(text: str, language: str) -> tuple[Span, ...]:
    # Retrieved chunks come back call after call; Spans are frozen, so sharing them is safe.
    return tuple(_default_splitter(language)(text))
