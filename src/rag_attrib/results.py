"""Result types: frozen, slotted dataclasses with `to_dict()` / `from_dict()` and no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ._types import FloatMatrix, JSONDict

if TYPE_CHECKING:
    from os import PathLike

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

    `support` is the strength of the best match on its own (no neighbour context); `issues`
    says why a sentence whose strength passed the threshold is still unsupported (e.g. a figure
    no source contains).
    """

    index: int
    text: str
    start: int
    end: int
    citations: tuple[Citation, ...]
    supported: bool
    support: float
    issues: tuple[str, ...] = ()


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
    excluded from equality and hashing.
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

    @property
    def unsupported(self) -> tuple[SentenceAttribution, ...]:
        """Answer sentences that no source backs."""
        return tuple(s for s in self.answer_sentences if not s.supported)

    @property
    def coverage(self) -> float:
        """Fraction of answer sentences that are supported (1.0 for an empty answer)."""
        if not self.answer_sentences:
            return 1.0
        return sum(s.supported for s in self.answer_sentences) / len(self.answer_sentences)

    @property
    def top_source(self) -> SourceAttribution | None:
        """The source with the largest share of the answer, or None without sources."""
        if not self.sources:
            return None
        return max(self.sources, key=lambda s: s.score)

    def with_error(self, error: str) -> AttributionResult:
        """Return a copy that records an error (integrations use this instead of raising)."""
        return replace(self, error=error)

    def to_dict(self) -> JSONDict:
        """Return a JSON-safe dict with `"schema": "rag_attrib.attribution/1"`."""
        return {
            "schema": SCHEMA,
            "answer": self.answer,
            "question": self.question,
            "model": self.model,
            "error": self.error,
            "config": _jsonable(dict(self.config)),
            "timings": {k: float(v) for k, v in self.timings.items()},
            "coverage": self.coverage,
            "answer_sentences": [_answer_sentence_dict(s) for s in self.answer_sentences],
            "sources": [_source_dict(s) for s in self.sources],
            "similarity": [[_f(x) for x in row] for row in self.similarity.tolist()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttributionResult:
        """Rebuild a result from `to_dict()` output.

        Raises:
            ValueError: the dict is not a rag_attrib attribution of a known schema.
        """
        schema = data.get("schema")
        if schema != SCHEMA:
            msg = f"expected schema {SCHEMA!r}, got {schema!r}: is this a rag_attrib to_dict()?"
            raise ValueError(msg)
        sources = tuple(
            SourceAttribution(
                id=s["id"],
                index=s["index"],
                text=s["text"],
                score=s["score"],
                max_similarity=s["max_similarity"],
                sentences=tuple(SourceSentence(**x) for x in s["sentences"]),
                metadata=s.get("metadata") or {},
            )
            for s in data["sources"]
        )
        sentences = tuple(
            SentenceAttribution(
                index=a["index"],
                text=a["text"],
                start=a["start"],
                end=a["end"],
                citations=tuple(
                    Citation(**{**c, "also_in": tuple(c.get("also_in") or ())})
                    for c in a["citations"]
                ),
                supported=a["supported"],
                support=a["support"],
                issues=tuple(a.get("issues") or ()),
            )
            for a in data["answer_sentences"]
        )
        n_source_sentences = sum(len(s.sentences) for s in sources)
        shape = (len(sentences), n_source_sentences)
        raw = data.get("similarity")
        if raw:  # None marks a value that was NaN on export
            rows = [[np.nan if x is None else x for x in row] for row in raw]
            similarity = np.asarray(rows, dtype=np.float32).reshape(shape)
        else:
            similarity = matrix_from_citations(sentences, sources, shape)
        return cls(
            answer=data["answer"],
            answer_sentences=sentences,
            sources=sources,
            similarity=similarity,
            question=data.get("question"),
            config=data.get("config") or {},
            model=data.get("model"),
            timings=data.get("timings") or {},
            error=data.get("error"),
        )

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
        return self.to_html()


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
    n = len(r.answer_sentences)
    bad = [i + 1 for i, s in enumerate(r.answer_sentences) if s.supported is not True]
    parts = [f"{n - len(bad)}/{n} sentences supported", f"{len(r.sources)} sources"]
    top = r.top_source if all(isinstance(s.score, (int, float)) for s in r.sources) else None
    if top is not None:
        parts.append(f"top {_clip(top.id, 24)!r}")
    if bad:
        first = r.answer_sentences[bad[0] - 1].text
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        parts.append(f"unsupported: {bad[0]} {_clip(first, 40)!r}{more}")
    if r.error:
        parts.append(f"error={_clip(r.error, 60)!r}")
    return f"AttributionResult({', '.join(parts)})"


def _clip(value: Any, limit: int) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _f(x: float) -> float | None:
    # JSON has no NaN/inf; None keeps the matrix shape.
    return float(x) if math.isfinite(x) else None


def _answer_sentence_dict(s: SentenceAttribution) -> JSONDict:
    return {
        "index": s.index,
        "text": s.text,
        "start": s.start,
        "end": s.end,
        "supported": s.supported,
        "support": _f(s.support),
        "issues": list(s.issues),
        "citations": [
            {
                "source_id": c.source_id,
                "source_index": c.source_index,
                "sentence_index": c.sentence_index,
                "text": c.text,
                "start": c.start,
                "end": c.end,
                "score": _f(c.score),
                "similarity": _f(c.similarity),
                "also_in": list(c.also_in),
            }
            for c in s.citations
        ],
    }


def _source_dict(s: SourceAttribution) -> JSONDict:
    return {
        "id": s.id,
        "index": s.index,
        "text": s.text,
        "score": _f(s.score),
        "max_similarity": _f(s.max_similarity),
        "metadata": _jsonable(dict(s.metadata)),
        "sentences": [
            {"index": x.index, "text": x.text, "start": x.start, "end": x.end, "score": _f(x.score)}
            for x in s.sentences
        ],
    }


def _jsonable(value: Any) -> Any:
    """Coerce metadata to JSON-safe values; unknown objects become their `str()`."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return _f(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return str(value)
