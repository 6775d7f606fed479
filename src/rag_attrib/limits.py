"""The input-size policy, and the result given when nothing could be scored.

Cost grows with answer sentences x source sentences (the similarity matrices), so both sides
are capped by `AttributionConfig.max_answer_chars` and `max_source_chars` (all sources
together). Past a cap, `InputTooLargeError` says which one and how to raise it: a truncated
answer would silently leave its end unchecked.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .config import AttributionConfig
from .errors import InputTooLargeError
from .results import (
    AttributionResult,
    SentenceAttribution,
    Source,
    SourceAttribution,
    SourceSentence,
    Span,
)

__all__ = ["check_size", "unscored"]


def check_size(answer: str, sources: Sequence[Source], config: AttributionConfig) -> None:
    """Raise `InputTooLargeError` if the answer or the sources pass the config's caps."""
    if len(answer) > config.max_answer_chars:
        msg = (
            f"the answer has {len(answer):,} characters, over the limit of "
            f"{config.max_answer_chars:,}: attribute it in parts, or raise "
            "AttributionConfig(max_answer_chars=...)"
        )
        raise InputTooLargeError(msg)
    total = sum(len(s.text) for s in sources)
    if total > config.max_source_chars:
        msg = (
            f"the sources have {total:,} characters together, over the limit of "
            f"{config.max_source_chars:,}: pass fewer or shorter sources, or raise "
            "AttributionConfig(max_source_chars=...)"
        )
        raise InputTooLargeError(msg)


def unscored(
    answer: str,
    question: str | None,
    answer_spans: Sequence[Span],
    sources: Sequence[Source],
    source_spans: Sequence[Sequence[Span]],
    error: str,
) -> AttributionResult:
    """The split answer and sources with no scores: every sentence unsupported, `error` set."""
    n = sum(len(spans) for spans in source_spans)
    return AttributionResult(
        answer=answer,
        answer_sentences=tuple(
            SentenceAttribution(i, s.text, s.start, s.end, (), False, 0.0)
            for i, s in enumerate(answer_spans)
        ),
        sources=tuple(
            SourceAttribution(
                id=source.id,
                index=c,
                text=source.text,
                score=0.0,
                max_similarity=0.0,
                sentences=tuple(
                    SourceSentence(k, s.text, s.start, s.end, 0.0) for k, s in enumerate(spans)
                ),
                metadata=source.metadata,
            )
            for c, (source, spans) in enumerate(zip(sources, source_spans, strict=True))
        ),
        similarity=np.zeros((len(answer_spans), n), dtype=np.float32),
        question=question,
        error=error,
    )
