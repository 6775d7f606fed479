"""Lexical strength: IDF-weighted share of an answer sentence's content words found in a unit."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence

import numpy as np

from ._types import FloatMatrix

__all__ = [
    "content_tokens",
    "first_person",
    "is_question",
    "lexical_matrix",
    "missing_names",
    "missing_numbers",
    "numbers",
]

# Numbers keep their inner separators ("3.5", "1,200") so a changed figure is a changed token.
_TOKEN = re.compile(r"\d+(?:[.,:/]\d+)*|[^\W\d_]+", re.UNICODE)

_STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    out over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours yes
    der die das und ist ein eine einen dem den des zu mit von im auf für nicht sich es als auch
    el la los las y es un una de del que en por con para se al lo su
    le les et est une des du en que qui dans pour pas sur au avec par il elle
    """.split()
)


def _stem(token: str) -> str:
    # Crude English plural/tense folding: enough for overlap, cheaper than a real stemmer.
    if len(token) > 5 and token.endswith("ing"):
        return token[:-3]
    if len(token) > 4 and token.endswith("ed"):
        return token[:-2]
    if len(token) > 4 and token.endswith("es"):
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


def content_tokens(text: str) -> list[str]:
    """Lower-cased, stemmed content words and numbers of `text`, in order."""
    return list(_content_tokens(text))


@functools.lru_cache(maxsize=100_000)
def _content_tokens(text: str) -> tuple[str, ...]:
    # source sentences recur across calls (re-retrieved chunks); tokenising them is most of
    # the lexical cost
    out = []
    for match in _TOKEN.finditer(text.lower()):
        token = match.group()
        if token in _STOPWORDS:
            continue
        out.append(token if token[0].isdigit() else _stem(token))
    return tuple(out)


def lexical_matrix(answers: Sequence[str], units: Sequence[str]) -> FloatMatrix:
    """res[i][j] = IDF-weighted fraction of answer i's content words present in unit j.

    Shape (len(answers), len(units)), values in [0, 1]. IDF is taken over `units`, so a word
    that occurs in no unit (a new name or figure) weighs most and lowers every score of its row.
    """
    m, n = len(answers), len(units)
    out = np.zeros((m, n), dtype=np.float32)
    if m == 0 or n == 0:
        return out
    answer_sets = [set(_content_tokens(a)) for a in answers]
    vocab = {t: k for k, t in enumerate(sorted(set().union(*answer_sets)))}
    if not vocab:
        return out
    present = np.zeros((n, len(vocab)), dtype=np.float32)
    for j, unit in enumerate(units):
        hits = sorted({vocab[t] for t in _content_tokens(unit) if t in vocab})
        if hits:
            present[j, hits] = 1.0
    df = present.sum(axis=0)
    idf = np.log((n + 1.0) / (df + 0.5)).astype(np.float32)
    idf = np.maximum(idf, np.float32(math.log(1.0 + 1.0 / (n + 1.0))))  # keep every weight > 0
    weights = np.zeros((m, len(vocab)), dtype=np.float32)
    for i, tokens in enumerate(answer_sets):
        if tokens:
            cols = [vocab[t] for t in tokens]
            weights[i, cols] = idf[cols]
    totals = weights.sum(axis=1, keepdims=True)
    np.divide(weights @ present.T, totals, out=out, where=totals > 0)
    return out


# Figures as written: "1,200", "3.5", "2024", "12:30", "50%"; ordinal/unit suffixes ignored.
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,:]\d+)*")
# an LLM's own citation markers ("[2]", "[^1]", "[1, 3]") are not figures of the claim
_MARKER = re.compile(r"\[\^?\d{1,3}(?:\s*[,;]\s*\d{1,3})*\]")


def numbers(text: str) -> set[str]:
    """The figures in `text`, normalised so "13,200" and "13200" compare equal."""
    return set(_numbers(text))


@functools.lru_cache(maxsize=10_000)
def _numbers(text: str) -> frozenset[str]:
    out = set()
    for match in _NUMBER.finditer(_MARKER.sub(" ", text)):
        value = match.group()
        # a comma between groups of three is a thousands separator; elsewhere keep the figure
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", value):
            value = value.replace(",", "")
        out.add(value.rstrip(".,:"))
    return frozenset(out)


def missing_numbers(sentence: str, evidence: Sequence[str]) -> list[str]:
    """Figures of `sentence` that appear in none of the `evidence` texts, in sorted order."""
    wanted = numbers(sentence)
    if not wanted:
        return []
    found: set[str] = set()
    for text in evidence:
        found |= _numbers(text)
    return sorted(wanted - found)


# A full name: two or more capitalised words in a row ("Thomas Edison", "Pudding Lane")
_FULL_NAME = re.compile(r"\b[A-Z][^\W\d_]*[a-z][^\W\d_]*(?:[ \-][A-Z][^\W\d_]*[a-z][^\W\d_]*)+")


# what follows a label's words ("Key Takeaways:", "**Fire Origin**:"), and a word beside a name
_LABEL = re.compile(r"[*_`]*\s*:")
_OTHER_WORD = re.compile(r"[^\W_]{2,}")


def missing_names(sentence: str, words: frozenset[str]) -> list[str]:
    """Full names of `sentence` none of whose words `words` (the sources' content tokens) holds.

    A name no source mentions at all ("It was designed by Thomas Edison.") is an invented
    fact however similar the rest reads. A name sharing any word with the sources ("Gustave
    Eiffel" beside "Eiffel") is left to the verdict: paraphrase changes names ("Mr Eiffel").
    """
    out = []
    for match in _FULL_NAME.finditer(sentence):
        if _LABEL.match(sentence, match.end()) or not _OTHER_WORD.search(
            sentence[: match.start()] + sentence[match.end() :]
        ):
            continue  # a Markdown label ("**Main Cause:**") or heading ("## Key Takeaways")
        tokens = _content_tokens(match.group())
        if len(tokens) >= 2 and not any(t in words for t in tokens):
            out.append(match.group())
    return out


# The speaker's own voice in en/de/es/fr. Left out on purpose, as mostly other words: "us"
# (the country), "mine", "im" (German "in the"), "mes"/"mon"/"ma"/"notre"/"nos" (month, names,
# Notre-Dame, "Nos. 3-4").
_FIRST_PERSON = re.compile(
    r"(?<![\w(])(?:i|i'm|i've|i'd|i'll|me|my|myself|we|we're|we've|our|ours|ourselves|"
    r"ich|mich|mir|mein|meine|meinen|meiner|wir|uns|unser|unsere|"
    r"yo|conmigo|nosotros|nosotras|"
    r"je|j(?=['\u2019])|moi|nous)(?![\w)])",
    re.IGNORECASE,
)
# "World War I", "Henry I": a capitalised word right before I makes it a numeral, unless that
# word is one that starts a sentence ("Then I went", "Yes I did")
_BEFORE_I = re.compile(r"\b([A-Z][a-z]+) I\b(?!')")
_LEADS = frozenset(
    """
    then so and but when if yes no now today here there maybe also sometimes actually well oh
    because since as after before while although though hi hello sure ok okay thanks honestly
    personally yesterday tomorrow once first finally still yet unfortunately luckily what where
    why how who which that where whenever wherever
    """.split()
)


# "I think", "I heard", "I'm not sure but" in front of a statement report it; they do not make
# it the speaker's own experience (BEGIN full-set label AUC 0.933 -> 0.936).
_HEDGE = re.compile(
    r"^\W*(?:(?:yes|no|yeah|well|oh|so|and|but|also|actually)\W+)*"
    r"(?:i\s+(?:also\s+)?(?:think|know|believe|guess|heard|read|learned|agree|remember|suppose"
    r"|understand|found\s+out)|i\s*(?:'m|am)\s+not\s+sure|i\s+do\s*n'?t\s+(?:know|think)"
    r"|i\s+do\s*n'?t(?=\W*but\b))"
    r"(?:\s+(?:that|but|so))?\b\W*(?:but\b)?",
    re.IGNORECASE,
)


def _drop_roman_one(text: str) -> str:
    return _BEFORE_I.sub(lambda m: m.group() if m.group(1).lower() in _LEADS else m.group(1), text)


def first_person(text: str) -> frozenset[str]:
    """The first-person words of `text`, lower-cased ("i", "my", "we", "ich", "je", ...).

    A leading hedge ("I think", "I heard that", "I'm not sure, but") is not counted.
    """
    return _first_person(text)


@functools.lru_cache(maxsize=10_000)
def _first_person(text: str) -> frozenset[str]:
    text = _HEDGE.sub("", text, count=1)
    found = {m.group().lower() for m in _FIRST_PERSON.finditer(_drop_roman_one(text))}
    return frozenset("j'" if w == "j" else w for w in found)


def is_question(text: str) -> bool:
    """True when `text` ends with a question mark (closing quotes and brackets aside)."""
    return text.rstrip().rstrip("\"')]}\u201d\u2019\u00bb").endswith(("?", "\uff1f"))
