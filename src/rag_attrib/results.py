"""Result types: frozen, slotted dataclasses with `to_dict()` / `from_dict()` and no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ._types import FloatMatrix, JSONDict
from .validate import clean_metadata

if TYPE_CHECKING:
    from os import PathLike

    from .citations import CitationReport

__all__ = [
    "SCHEMA",
    "AttributionResult",
    "Citation",
    "SentenceAttribution",
    "Source",
    "SourceAttribution",
    "SourceSentence",
    "Span",
]

SCHEMA = "rag_attrib.attribution/1"


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of a text with its code-point offsets: `text[start:end] == span.text`."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Source:
    """One retrieved chunk or input document.

    Args:
        id: a stable identifier (document id, node id, file name); defaults to the position.
        text: the chunk text.
        metadata: anything the caller wants carried into the result (title, url, page).
    """

    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Citation:
    """One source sentence cited by an answer sentence.

    `start`/`end` are offsets into the cited source's text; `score` is the normalised score,
    `similarity` the strength before normalisation (cosine, or the hybrid strength, with the
    neighbour context of `AttributionConfig.context_weight`). `also_in` lists the ids of the
    other sources that hold the same sentence (overlapping chunks): it is cited once.
    """

    source_id: str
    source_index: int
    sentence_index: int
    text: str
    start: int
    end: int
    score: float
    similarity: float
    also_in: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SentenceAttribution:
    """One answer sentence: offsets in the answer, its citations (best first) and support.

    Evidence is never withheld: an unsupported sentence keeps its closest sources as
    `citations`, each with its own score, and `supported=False` says they do not back it (the
    converters, the Sankey flow and the `citation.*` span attributes leave them out; the CLI
    and the HTML view show them as "closest match, does not support it").
    `support` is the strength of the best match on its own (no neighbour context); `issues`
    says in words why an unsupported sentence is unsupported (a figure no source contains, a
    match under the threshold) and is empty for a supported one. `claim` is False for a
    sentence that only talks to the reader ("Great question!", "Yes.", "I hope this helps!"):
    it states nothing a source could back, so it is not checked (`supported=False`), has no
    citations, and `AttributionResult.unsupported` and `coverage` leave it out.
    """

    index: int
    text: str
    start: int
    end: int
    citations: tuple[Citation, ...]
    supported: bool
    support: float
    issues: tuple[str, ...] = ()
    claim: bool = True


def backing_citations(sentence: SentenceAttribution) -> tuple[Citation, ...]:
    """What `sentence` cites: its citations when it is supported. An unsupported sentence's
    citations are its closest sources, which do not back it (evidence is never withheld, but
    converters, span attributes and tables must not present them as citations)."""
    return sentence.citations if sentence.supported else ()


@dataclass(frozen=True, slots=True)
class SourceSentence:
    """One source sentence with offsets in its source and its aggregated score."""

    index: int
    text: str
    start: int
    end: int
    score: float


@dataclass(frozen=True, slots=True)
class SourceAttribution:
    """One source: its share of the answer (`score`, sums to ~1 over sources) and sentences."""

    id: str
    index: int
    text: str
    score: float
    max_similarity: float
    sentences: tuple[SourceSentence, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class AttributionResult:
    """Everything `Attributor.attribute` found.

    `similarity` is the strength matrix before normalisation, answer sentences x source
    sentences (all sources' sentences concatenated in order), neighbour context included; it is
    excluded from equality and hashing. `citation_check` is the check of the citations the
    answer carries itself (`[1]` markers, a structured output's source ids, provider citation
    blocks), set by the LangChain and LlamaIndex integrations when there are any; None
    otherwise (`rag_attrib.check_citations` computes one for any result).
    """

    answer: str
    answer_sentences: tuple[SentenceAttribution, ...]
    sources: tuple[SourceAttribution, ...]
    similarity: FloatMatrix = field(compare=False, hash=False, repr=False)
    question: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)
    model: str | None = None
    timings: Mapping[str, float] = field(default_factory=dict, compare=False, hash=False)
    error: str | None = None
    citation_check: CitationReport | None = field(default=None, hash=False, repr=False)

    @property
    def unsupported(self) -> tuple[SentenceAttribution, ...]:
        """Answer sentences that state something no source backs (claims only: see `claim`)."""
        return tuple(s for s in self.answer_sentences if s.claim and not s.supported)

    @property
    def coverage(self) -> float:
        """Fraction of the answer's claims that are supported (1.0 when it has none)."""
        claims = [s for s in self.answer_sentences if s.claim]
        if not claims:
            return 1.0
        return sum(s.supported for s in claims) / len(claims)

    @property
    def top_source(self) -> SourceAttribution | None:
        """The source with the largest share of the answer, or None without sources."""
        if not self.sources:
            return None
        return max(self.sources, key=lambda s: s.score)

    def with_error(self, error: str) -> AttributionResult:
        """Return a copy that records an error (integrations use this instead of raising)."""
        return replace(self, error=error)

    def to_dict(self, *, matrix: bool = False) -> JSONDict:
        """Return a JSON-safe dict with `"schema": "rag_attrib.attribution/1"`.

        Its size follows what the result reports (sentences, citations, sources): the dense
        answer x source similarity matrix is included only with `matrix=True`. A record
        without it rebuilds the matrix from the citations (NaN where unknown).

        Raises:
            ValueError: a score is NaN or infinite (results from `Attributor` never are); the
                message names the field.
        """
        data: JSONDict = {
            "schema": SCHEMA,
            "answer": self.answer,
            "question": self.question,
            "model": self.model,
            "error": self.error,
            "config": clean_metadata(self.config, "config")[0],
            "timings": {
                str(k): float(v)
                for k, v in self.timings.items()
                if isinstance(v, (int, float)) and math.isfinite(v)
            },
            "coverage": self.coverage,
            "answer_sentences": [
                _answer_sentence_dict(s, f"answer_sentences[{i}]")
                for i, s in enumerate(self.answer_sentences)
            ],
            "sources": [_source_dict(s, f"sources[{i}]") for i, s in enumerate(self.sources)],
        }
        if self.citation_check is not None:
            data["citation_check"] = self.citation_check.to_dict()
        if matrix:
            # JSON has no NaN: None marks a value unknown to a rebuilt result's matrix
            data["similarity"] = [[_f(x) for x in row] for row in self.similarity.tolist()]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttributionResult:
        """Rebuild a result from `to_dict()` output, checking every field's type and range.

        Raises:
            ValueError: the dict is not a rag_attrib attribution of a known schema, or a field
                has the wrong type or an out-of-range value (the message names the field).
        """
        from .readback import read_result  # it imports this module

        return read_result(cls, data)

    def __repr__(self) -> str:
        """One line: how many sentences are supported, the sources, which are unsupported."""
        try:
            return _summary(self)
        except Exception:  # a repr must never raise, whatever a hand-built result holds
            return f"AttributionResult(<{len(self.answer_sentences)} answer sentences>)"

    def to_html(self) -> str:
        """Return the self-contained HTML view (see `rag_attrib.render.html`)."""
        from .render.html import render_html

        return render_html(self)

    def save_html(self, path: str | PathLike[str]) -> None:
        """Write the self-contained HTML view to `path` (UTF-8)."""
        # errors="replace": to_html() already cleans lone surrogates; this is the backstop
        with open(path, "w", encoding="utf-8", errors="replace") as f:
            f.write(self.to_html())

    def _repr_html_(self) -> str:
        from .render.html import render_fragment

        return render_fragment(self)


def matrix_from_citations(
    sentences: tuple[SentenceAttribution, ...],
    sources: tuple[SourceAttribution, ...],
    shape: tuple[int, int],
) -> FloatMatrix:
    """A trimmed record has no matrix: keep what its citations know, NaN (unknown) elsewhere."""
    out = np.full(shape, np.nan, dtype=np.float32)
    starts = np.cumsum([0, *(len(s.sentences) for s in sources)])
    for i, sentence in enumerate(sentences):
        for c in sentence.citations:
            out[i, starts[c.source_index] + c.sentence_index] = c.similarity
    return out


def _summary(r: AttributionResult) -> str:
    claims = [i + 1 for i, s in enumerate(r.answer_sentences) if s.claim is not False]
    bad = [i for i in claims if r.answer_sentences[i - 1].supported is not True]
    talk = len(r.answer_sentences) - len(claims)
    parts = [
        f"{len(claims) - len(bad)}/{len(claims)} sentences supported"
        + (f" (+{talk} not {'a claim' if talk == 1 else 'claims'})" if talk else ""),
        f"{len(r.sources)} sources",
    ]
    top = r.top_source if all(isinstance(s.score, (int, float)) for s in r.sources) else None
    if top is not None:
        parts.append(f"top {_clip(top.id, 24)!r}")
    if bad:
        first = r.answer_sentences[bad[0] - 1].text
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        parts.append(f"unsupported: {bad[0]} {_clip(first, 40)!r}{more}")
    check = r.citation_check
    if check is not None and check.markers:
        right = sum(m.verdict == "correct" for m in check.markers)
        parts.append(f"{right}/{len(check.markers)} own citations correct")
    if r.error:
        parts.append(f"error={_clip(r.error, 60)!r}")
    return f"AttributionResult({', '.join(parts)})"


def _clip(value: Any, limit: int) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _f(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _finite(x: float, where: str) -> float:
    # NaN would become null and fail to read back: say so here instead
    if not math.isfinite(x):
        msg = f"{where} is {x!r}; a result holds finite numbers only"
        raise ValueError(msg)
    return float(x)


def _answer_sentence_dict(s: SentenceAttribution, where: str) -> JSONDict:
    return {
        "index": s.index,
        "text": s.text,
        "start": s.start,
        "end": s.end,
        "supported": s.supported,
        "support": _finite(s.support, f"{where}.support"),
        "issues": list(s.issues),
        "claim": s.claim,
        "citations": [
            {
                "source_id": c.source_id,
                "source_index": c.source_index,
                "sentence_index": c.sentence_index,
                "text": c.text,
                "start": c.start,
                "end": c.end,
                "score": _finite(c.score, f"{where}.citations[{k}].score"),
                "similarity": _finite(c.similarity, f"{where}.citations[{k}].similarity"),
                "also_in": list(c.also_in),
            }
            for k, c in enumerate(s.citations)
        ],
    }


def _source_dict(s: SourceAttribution, where: str) -> JSONDict:
    return {
        "id": s.id,
        "index": s.index,
        "text": s.text,
        "score": _finite(s.score, f"{where}.score"),
        "max_similarity": _finite(s.max_similarity, f"{where}.max_similarity"),
        "metadata": clean_metadata(s.metadata, f"{where}.metadata")[0],
        "sentences": [
            {
                "index": x.index,
                "text": x.text,
                "start": x.start,
                "end": x.end,
                "score": _finite(x.score, f"{where}.sentences[{k}].score"),
            }
            for k, x in enumerate(s.sentences)
        ],
    }
