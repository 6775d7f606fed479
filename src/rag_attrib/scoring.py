"""Scoring: pure numpy functions with shape contracts. The engine composes them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ._types import FloatMatrix, FloatVector, IntVector
from .config import AGGREGATIONS, NORMALIZATIONS
from .errors import ConfigError

__all__ = [
    "aggregate",
    "chunk_shares",
    "cosine_matrix",
    "first_copies",
    "minmax",
    "neighbour_context",
    "normalize",
    "score_once",
    "select_citations",
    "sliding_windows",
    "softmax",
    "windows_to_sentences",
]


def cosine_matrix(a: FloatMatrix, b: FloatMatrix, *, block_rows: int = 4096) -> FloatMatrix:
    """res[i][j] = cos_sim(a[i], b[j]), shape (len(a), len(b)).

    Rows are assumed unit-length (embedders guarantee it), so this is one matrix product,
    taken in blocks of `block_rows` rows of `b` to bound the temporary memory.
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype=np.float32)
    if b.shape[0] <= block_rows:
        return np.asarray(a @ b.T, dtype=np.float32)
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.float32)
    for lo in range(0, b.shape[0], block_rows):
        out[:, lo : lo + block_rows] = a @ b[lo : lo + block_rows].T
    return out


def softmax(x: FloatMatrix, *, temperature: float = 1.0, axis: int = -1) -> FloatMatrix:
    """Softmax of x / temperature along `axis`; same shape as x, each slice sums to 1."""
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        empty: FloatMatrix = x.copy()
        return empty
    # Shift before dividing, in float64: the largest exponent is 0 and the others are <= 0
    # (or -inf), so any temperature > 0, even 1e-300, gives finite scores (one-hot in the limit).
    with np.errstate(over="ignore", under="ignore"):
        e = np.exp((x.astype(np.float64) - x.max(axis=axis, keepdims=True)) / float(temperature))
    out: FloatMatrix = (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)
    return out


def minmax(x: FloatMatrix, *, axis: int = -1) -> FloatMatrix:
    """Rescale each slice along `axis` to [0, 1]; a constant slice becomes all ones."""
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        empty: FloatMatrix = x.copy()
        return empty
    lo = x.min(axis=axis, keepdims=True)
    span = x.max(axis=axis, keepdims=True) - lo
    out: FloatMatrix = np.ones_like(x)
    np.divide(x - lo, span, out=out, where=span > 0)
    return out


def normalize(
    strength: FloatMatrix,
    how: Literal["softmax", "none", "minmax"] | str = "softmax",
    *,
    temperature: float = 1.0,
) -> FloatMatrix:
    """Normalise each answer row over source sentences; shape (m, n) -> (m, n).

    "none" clips the raw strength to [0, 1] so scores stay comparable across methods.
    """
    if how == "softmax":
        return softmax(strength, temperature=temperature, axis=1)
    if how == "minmax":
        return minmax(strength, axis=1)
    if how == "none":
        return np.clip(np.asarray(strength, dtype=np.float32), 0.0, 1.0)
    msg = f"normalization must be one of {', '.join(map(repr, NORMALIZATIONS))}; got {how!r}"
    raise ConfigError(msg)


def aggregate(
    scores: FloatMatrix,
    how: Literal["max", "mean", "weighted"] | str = "max",
    *,
    weights: FloatVector | None = None,
) -> FloatVector:
    """Combine scores (m answer sentences, n source sentences) over answer rows -> (n,).

    "weighted" is a mean weighted by `weights` (m,), e.g. each answer sentence's support.
    """
    scores = np.asarray(scores, dtype=np.float32)
    m, n = scores.shape
    if m == 0 or n == 0:
        return np.zeros(n, dtype=np.float32)
    if how == "max":
        return np.asarray(scores.max(axis=0), dtype=np.float32)
    if how == "mean":
        return np.asarray(scores.mean(axis=0), dtype=np.float32)
    if how == "weighted":
        w = np.ones(m, dtype=np.float32) if weights is None else np.clip(weights, 0.0, None)
        total = float(w.sum())
        if total <= 0:
            return np.zeros(n, dtype=np.float32)
        return np.asarray((w @ scores) / total, dtype=np.float32)
    msg = f"aggregation must be one of {', '.join(map(repr, AGGREGATIONS))}; got {how!r}"
    raise ConfigError(msg)


def chunk_shares(
    scores: FloatMatrix,
    sentence_chunk: IntVector,
    n_chunks: int,
    *,
    weights: FloatVector | None = None,
) -> FloatVector:
    """Share of the answer's attribution mass per chunk -> (n_chunks,), summing to 1 (or 0).

    Each answer row is rescaled to sum to 1, its mass summed per chunk, then the rows are
    averaged (weighted by `weights` (m,) when given, e.g. support, so an unsupported
    sentence moves the shares less).
    """
    scores = np.asarray(scores, dtype=np.float32)
    m, n = scores.shape
    out = np.zeros(n_chunks, dtype=np.float32)
    if m == 0 or n == 0 or n_chunks == 0:
        return out
    row_sum = scores.sum(axis=1, keepdims=True)
    rows = np.divide(scores, row_sum, out=np.zeros_like(scores), where=row_sum > 0)
    per_chunk = np.zeros((m, n_chunks), dtype=np.float32)
    np.add.at(per_chunk.T, np.asarray(sentence_chunk, dtype=np.int64), rows.T)
    w = np.ones(m, dtype=np.float32) if weights is None else np.clip(weights, 0.0, None)
    w = w * (row_sum[:, 0] > 0)
    total = float(w.sum())
    if total <= 0:
        return out
    return np.asarray((w @ per_chunk) / total, dtype=np.float32)


def sliding_windows(counts: Sequence[int], k: int) -> list[tuple[int, int]]:
    """Windows of k consecutive sentences within each source, as global [start, end) indices.

    `counts[c]` is the number of sentences of source c; sentences are numbered globally in
    source order. Windows never cross sources; a source shorter than k gets one window.
    """
    if k < 1:
        msg = f"window must be an integer >= 1; got {k!r}"
        raise ConfigError(msg)
    windows: list[tuple[int, int]] = []
    offset = 0
    for count in counts:
        if count > 0:
            last_start = max(count - k, 0)
            windows.extend((offset + s, offset + min(s + k, count)) for s in range(last_start + 1))
        offset += count
    return windows


def windows_to_sentences(
    window_strength: FloatMatrix, windows: Sequence[tuple[int, int]], n_sentences: int
) -> FloatMatrix:
    """Map (m, n_windows) strengths to (m, n_sentences): each sentence keeps its best window."""
    window_strength = np.asarray(window_strength, dtype=np.float32)
    m = window_strength.shape[0]
    out = np.full((m, n_sentences), -np.inf, dtype=np.float32)
    for w, (lo, hi) in enumerate(windows):
        np.maximum(out[:, lo:hi], window_strength[:, w : w + 1], out=out[:, lo:hi])
    out[np.isneginf(out)] = 0.0
    return out


def neighbour_context(
    strength: FloatMatrix, sentence_chunk: IntVector, weight: float
) -> FloatMatrix:
    """Add `weight` x the stronger neighbour of each source sentence; shape (m, n) -> (m, n).

    res[i][j] = strength[i][j] + weight * max(strength[i][j-1], strength[i][j+1], 0), where
    a neighbour counts only inside the same chunk (`sentence_chunk` (n,) gives each sentence's
    chunk). The sentence beside a strong match often carries the rest of a claim (its subject,
    the figure), so it should rank above an unrelated sentence with the same own strength.
    """
    strength = np.asarray(strength, dtype=np.float32)
    if weight == 0 or strength.shape[1] < 2:
        return strength
    chunk = np.asarray(sentence_chunk)
    same = (chunk[1:] == chunk[:-1])[None, :]
    neighbour = np.zeros_like(strength)
    # the left neighbour of j is j-1, the right one j+1; chunk borders give 0
    np.maximum(neighbour[:, 1:], np.where(same, strength[:, :-1], 0.0), out=neighbour[:, 1:])
    np.maximum(neighbour[:, :-1], np.where(same, strength[:, 1:], 0.0), out=neighbour[:, :-1])
    return np.asarray(strength + np.float32(weight) * neighbour, dtype=np.float32)


def select_citations(
    scores: FloatVector,
    strength: FloatVector,
    *,
    top_k: int,
    min_score: float,
    ratio: float,
) -> NDArray[np.int64]:
    """Indices of the citations of one answer row, best first.

    A candidate needs `scores >= min_score` and a strength of at least `ratio` times the best
    strength, and at most `top_k` are kept. Ties keep source order.
    """
    if scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")[:top_k]
    best = float(strength[order[0]])
    keep = (scores[order] >= min_score) & (strength[order] >= ratio * best - 1e-7)
    return np.asarray(order[keep], dtype=np.int64)


def first_copies(texts: Sequence[str], sentence_chunk: IntVector) -> IntVector:
    """For each source sentence, the index of its first copy in an earlier chunk -> (n,).

    Overlapping chunks (a splitter's `chunk_overlap`) repeat sentences; copies are compared
    with white space folded. A sentence with no copy in an earlier chunk maps to itself (a
    sentence repeated inside one chunk stays two sentences).
    """
    first: dict[str, int] = {}
    out = np.arange(len(texts), dtype=np.int64)
    for j, text in enumerate(texts):
        f = first.setdefault(" ".join(text.split()), j)
        if sentence_chunk[f] != sentence_chunk[j]:
            out[j] = f
    return out


def score_once(
    strength: FloatMatrix,
    first: IntVector,
    how: str,
    *,
    temperature: float = 1.0,
) -> tuple[FloatMatrix, FloatMatrix]:
    """Scores where each repeated source sentence counts once, and the strength to rank by.

    The first copy of a sentence takes the best strength of all its copies and is normalised
    over the distinct sentences only, so a copy neither splits a softmax row nor a chunk's
    share; later copies get score 0 and strength -inf (never cited). (m, n) -> (m, n), (m, n).
    """
    strength = np.asarray(strength, dtype=np.float32)
    unique = first == np.arange(strength.shape[1])
    if unique.all():
        return normalize(strength, how, temperature=temperature), strength
    ranked = strength.copy()
    np.maximum.at(ranked.T, first, strength.T)
    ranked[:, ~unique] = -np.inf
    scores = np.zeros_like(strength)
    scores[:, unique] = normalize(ranked[:, unique], how, temperature=temperature)
    return scores, ranked
