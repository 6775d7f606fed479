"""Sentence splitting with character offsets (placeholder; being replaced)."""

from __future__ import annotations

from nltk.tokenize.punkt import PunktSentenceTokenizer

from .results import Span

__all__ = ["split_sentences"]

_TOKENIZER = PunktSentenceTokenizer()


def split_sentences(text: str, *, language: str = "english") -> list[Span]:
    """Split `text` into sentences; every span satisfies `text[s.start:s.end] == s.text`."""
    return [Span(text[a:b], a, b) for a, b in _TOKENIZER.span_tokenize(text)]
