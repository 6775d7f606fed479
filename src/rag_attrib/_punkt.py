"""Punkt's sentence-break decision, without importing NLTK (whose package import takes ~1 s).

The parts of `nltk.tokenize.punkt` (NLTK 3.9, Apache-2.0, after Kiss & Strunk 2006) that
decide whether a short context holds a sentence break, `text_contains_sentbreak`, kept to the
same rules and regular expressions; `splitting.PunktSplitter` runs the candidate scan itself.
tests/test_splitting.py checks the result against NLTK's own `span_tokenize`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["LanguageVars", "Parameters", "contains_sentbreak"]

# Orthographic-context flags: where a word type was seen, and in which case.
ORTHO_BEG_UC = 1 << 1
ORTHO_MID_UC = 1 << 2
ORTHO_UNK_UC = 1 << 3
ORTHO_BEG_LC = 1 << 4
ORTHO_MID_LC = 1 << 5
ORTHO_UNK_LC = 1 << 6
ORTHO_UC = ORTHO_BEG_UC + ORTHO_MID_UC + ORTHO_UNK_UC
ORTHO_LC = ORTHO_BEG_LC + ORTHO_MID_LC + ORTHO_UNK_LC

_PUNCTUATION = tuple(";:,.!?")
_RE_NON_PUNCT = re.compile(r"[^\W\d]")
_RE_ELLIPSIS = re.compile(r"\.\.+$")
_RE_NUMERIC = re.compile(r"^-?[\.,]?\d[\d,\.-]*\.?$")
_RE_INITIAL = re.compile(r"[^\W\d]\.$")
_RE_ALPHA = re.compile(r"[^\W\d]+$")

_WORD_START = r"[^\(\"\`{\[:;&\#\*@\)}\]\-,]"
_MULTI_CHAR = r"(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)"
_WORD_TOKENIZE_FMT = r"""(
        %(MultiChar)s
        |
        (?=%(WordStart)s)\S+?  # Accept word characters until end is found
        (?= # Sequences marking a word's end
            \s|                                 # White-space
            $|                                  # End-of-string
            %(NonWord)s|%(MultiChar)s|          # Punctuation
            ,(?=$|\s|%(NonWord)s|%(MultiChar)s) # Comma if at end of word
        )
        |
        \S
    )"""


class OrthoCounts(dict[str, int]):
    """The ortho-context table; unlike a defaultdict, a lookup never stores the key.

    Punkt reads this table for every word it sees; a defaultdict would grow without bound
    and be mutated by concurrent calls.
    """

    __slots__ = ()

    def __missing__(self, key: str) -> int:
        return 0


@dataclass
class Parameters:
    """What Punkt knows about a language: abbreviations, collocations, sentence starters and
    the orthographic context of word types (all lower case, abbreviations without the dot)."""

    abbrev_types: set[str] = field(default_factory=set)
    collocations: set[tuple[str, str]] = field(default_factory=set)
    sent_starters: set[str] = field(default_factory=set)
    ortho_context: OrthoCounts = field(default_factory=OrthoCounts)


class LanguageVars:
    """Punkt's language variables (NLTK's `PunktLanguageVars`), regexes compiled up front."""

    def __init__(self, sent_end_chars: tuple[str, ...], closing_quotes: str) -> None:
        self.sent_end_chars = sent_end_chars
        others = "".join(sorted(set(sent_end_chars) - {"."}))
        self.non_word_chars = (
            r"(?:[)\";}\]\*:@\'\({\[\u2018\u2019\u201c\u201d\xab\xbb" + re.escape(others) + "])"
        )
        # Closing punctuation after a sentence end that belongs to that sentence.
        self.re_boundary_realignment = re.compile(
            f"[{re.escape(closing_quotes)}]+?" + r"(?:\s+|(?=--)|$)", re.MULTILINE
        )
        parts = {"NonWord": self.non_word_chars, "MultiChar": _MULTI_CHAR, "WordStart": _WORD_START}
        self._re_word_tokenizer = re.compile(_WORD_TOKENIZE_FMT % parts, re.VERBOSE)

    def word_tokenize(self, text: str) -> list[str]:
        """Split off punctuation other than periods."""
        tokens: list[str] = self._re_word_tokenizer.findall(text)
        return tokens


class _Token:
    """A word with Punkt's annotations."""

    __slots__ = ("abbr", "ellipsis", "period_final", "sentbreak", "tok", "type")

    def __init__(self, tok: str) -> None:
        self.tok = tok
        self.type = _RE_NUMERIC.sub("##number##", tok.lower())
        self.period_final = tok.endswith(".")
        self.sentbreak = False
        self.abbr = False
        self.ellipsis = False

    @property
    def type_no_period(self) -> str:
        if len(self.type) > 1 and self.type[-1] == ".":
            return self.type[:-1]
        return self.type

    @property
    def type_no_sentperiod(self) -> str:
        return self.type_no_period if self.sentbreak else self.type

    @property
    def first_upper(self) -> bool:
        return self.tok[0].isupper()

    @property
    def first_lower(self) -> bool:
        return self.tok[0].islower()


def _tokens(text: str, lang: LanguageVars) -> Iterator[_Token]:
    for line in text.split("\n"):
        if line.strip():
            for tok in lang.word_tokenize(line):
                yield _Token(tok)


def _first_pass(tok: _Token, params: Parameters, lang: LanguageVars) -> None:
    """Type-based annotation: enders break, dotted abbreviations do not, other dots do."""
    text = tok.tok
    if text in lang.sent_end_chars:
        tok.sentbreak = True
    elif _RE_ELLIPSIS.match(text):
        tok.ellipsis = True
    elif tok.period_final and not text.endswith(".."):
        word = text[:-1].lower()
        if word in params.abbrev_types or word.split("-")[-1] in params.abbrev_types:
            tok.abbr = True
        else:
            tok.sentbreak = True


def _ortho_heuristic(tok: _Token, params: Parameters) -> bool | None:
    """Whether `tok` starts a sentence: True, False, or None (unknown)."""
    if tok.tok in _PUNCTUATION:
        return False
    context = params.ortho_context[tok.type_no_sentperiod]
    if tok.first_upper and (context & ORTHO_LC) and not (context & ORTHO_MID_UC):
        return True
    if tok.first_lower and ((context & ORTHO_UC) or not (context & ORTHO_BEG_LC)):
        return False
    return None


def _second_pass(tok1: _Token, tok2: _Token, params: Parameters) -> None:
    """Context-based annotation: collocations, abbreviations, initials and numbers."""
    if not tok1.period_final:
        return
    typ = tok1.type_no_period
    next_typ = tok2.type_no_sentperiod
    is_initial = _RE_INITIAL.match(tok1.tok) is not None
    if (typ, next_typ) in params.collocations:
        tok1.sentbreak, tok1.abbr = False, True
        return
    if (tok1.abbr or tok1.ellipsis) and not is_initial:
        if _ortho_heuristic(tok2, params) is True:
            tok1.sentbreak = True
            return
        if tok2.first_upper and next_typ in params.sent_starters:
            tok1.sentbreak = True
            return
    if is_initial or typ == "##number##":
        starter = _ortho_heuristic(tok2, params)
        if starter is False:
            tok1.sentbreak, tok1.abbr = False, True
            return
        if (
            starter is None
            and is_initial
            and tok2.first_upper
            and not (params.ortho_context[next_typ] & ORTHO_LC)
        ):
            tok1.sentbreak, tok1.abbr = False, True


def contains_sentbreak(text: str, params: Parameters, lang: LanguageVars) -> bool:
    """Punkt's `text_contains_sentbreak`: a break after some token that is not the last."""
    tokens = list(_tokens(text, lang))
    for tok in tokens:
        _first_pass(tok, params, lang)
    for i, tok in enumerate(tokens[:-1]):
        _second_pass(tok, tokens[i + 1], params)
        if tok.sentbreak:
            return True
    return False
