"""Scoring functions, checked against naive loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag_attrib.errors import ConfigError
from rag_attrib.scoring import (
    aggregate,
    chunk_shares,
    cosine_matrix,
    first_copies,
    minmax,
    neighbour_context,
    normalize,
    score_once,
    select_citations,
    sliding_windows,
    softmax,
    windows_to_sentences,
)

rng = np.random.default_rng(7)


def _unit(n: int, d: int = 16) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_cosine_matrix_matches_loop() -> None:
    """cosine_matrix equals the seed article's double loop of cosines."""
    a, b = _unit(4), _unit(9)
    expected = np.array(
        [[float(x @ y) / (np.linalg.norm(x) * np.linalg.norm(y)) for y in b] for x in a]
    )
    np.testing.assert_allclose(cosine_matrix(a, b), expected, atol=1e-5)


def test_cosine_matrix_blockwise_equals_whole() -> None:
    """Computing in blocks gives the same matrix as one product."""
    a, b = _unit(3), _unit(50)
    np.testing.assert_allclose(cosine_matrix(a, b, block_rows=7), a @ b.T, atol=1e-6)


@pytest.mark.parametrize(("m", "n"), [(0, 5), (3, 0), (0, 0)])
def test_cosine_matrix_empty(m: int, n: int) -> None:
    """Empty inputs give an empty matrix of the right shape."""
    assert cosine_matrix(np.zeros((m, 4), np.float32), np.zeros((n, 4), np.float32)).shape == (m, n)


def test_softmax_matches_loop_and_sums_to_one() -> None:
    """Row softmax with temperature equals the textbook formula."""
    x = rng.normal(size=(3, 5)).astype(np.float32)
    t = 0.3
    for i in range(3):
        exps = [math.exp(v / t) for v in x[i]]
        np.testing.assert_allclose(
            softmax(x, temperature=t)[i], [e / sum(exps) for e in exps], rtol=1e-5
        )
    np.testing.assert_allclose(softmax(x, temperature=t).sum(axis=1), 1.0, rtol=1e-6)


def test_softmax_is_stable_for_large_values() -> None:
    """Huge inputs at a tiny temperature do not overflow."""
    out = softmax(np.array([[1000.0, 999.0]], np.float32), temperature=0.001)
    assert np.isfinite(out).all() and out[0, 0] == pytest.approx(1.0)


def test_lower_temperature_is_sharper() -> None:
    """A lower temperature puts more mass on the best match."""
    x = np.array([[0.9, 0.6, 0.5]], np.float32)
    assert softmax(x, temperature=0.05)[0, 0] > softmax(x, temperature=1.0)[0, 0]


@pytest.mark.parametrize(
    ("row", "expected"),
    [([1.0, 2.0, 3.0], [0.0, 0.5, 1.0]), ([2.0, 2.0], [1.0, 1.0]), ([-1.0, 1.0], [0.0, 1.0])],
)
def test_minmax(row: list[float], expected: list[float]) -> None:
    """minmax rescales each row to [0, 1]; constant rows become ones."""
    np.testing.assert_allclose(minmax(np.array([row], np.float32))[0], expected)


def test_normalize_none_clips_and_rejects_unknown() -> None:
    """'none' keeps raw strength clipped to [0, 1]; unknown methods name the valid ones."""
    x = np.array([[-0.2, 0.5, 1.2]], np.float32)
    np.testing.assert_allclose(normalize(x, "none"), [[0.0, 0.5, 1.0]])
    with pytest.raises(ConfigError, match="'softmax', 'none', 'minmax'"):
        normalize(x, "sigmoid")


def test_aggregate_modes_match_loops() -> None:
    """max, mean and weighted aggregation equal their loop definitions."""
    s = rng.random((4, 6)).astype(np.float32)
    w = np.array([1.0, 0.0, 2.0, 1.0], np.float32)
    for j in range(6):
        col = [s[i, j] for i in range(4)]
        assert aggregate(s, "max")[j] == pytest.approx(max(col))
        assert aggregate(s, "mean")[j] == pytest.approx(sum(col) / 4)
        weighted = sum(w[i] * s[i, j] for i in range(4)) / w.sum()
        assert aggregate(s, "weighted", weights=w)[j] == pytest.approx(weighted, rel=1e-5)
    with pytest.raises(ConfigError, match="'max', 'mean', 'weighted'"):
        aggregate(s, "avg")


def test_chunk_shares_sum_to_one_and_follow_mass() -> None:
    """Chunk shares sum to 1 and equal the averaged per-row mass in each chunk."""
    s = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]], np.float32)
    owner = np.array([0, 0, 1])
    shares = chunk_shares(s, owner, 3)
    np.testing.assert_allclose(shares, [(0.9 + 0.5) / 2, (0.1 + 0.5) / 2, 0.0], rtol=1e-6)
    assert shares.sum() == pytest.approx(1.0)


def test_chunk_shares_empty() -> None:
    """No answer rows or no sentences give zero shares."""
    assert chunk_shares(np.zeros((0, 3), np.float32), np.array([0, 0, 1]), 2).tolist() == [0, 0]
    assert chunk_shares(np.zeros((2, 0), np.float32), np.zeros(0, np.int64), 2).tolist() == [0, 0]


@pytest.mark.parametrize(
    ("counts", "k", "expected"),
    [
        ([3], 1, [(0, 1), (1, 2), (2, 3)]),
        ([3], 2, [(0, 2), (1, 3)]),
        ([2, 3], 2, [(0, 2), (2, 4), (3, 5)]),
        ([1, 0, 4], 3, [(0, 1), (1, 4), (2, 5)]),
        ([2], 5, [(0, 2)]),
    ],
)
def test_sliding_windows(counts: list[int], k: int, expected: list[tuple[int, int]]) -> None:
    """Windows stay inside their source and cover every sentence."""
    assert sliding_windows(counts, k) == expected


def test_windows_map_back_to_best_window() -> None:
    """Each sentence takes the best strength among the windows that contain it."""
    windows = [(0, 2), (1, 3)]
    w = np.array([[0.2, 0.9]], np.float32)
    np.testing.assert_allclose(windows_to_sentences(w, windows, 3), [[0.2, 0.9, 0.9]])


def test_select_citations_orders_and_filters() -> None:
    """Citations are best first, capped at top_k, and need min_score and the strength ratio."""
    scores = np.array([0.1, 0.5, 0.3, 0.05], np.float32)
    strength = np.array([0.5, 0.8, 0.75, 0.4], np.float32)
    assert select_citations(scores, strength, top_k=3, min_score=0.0, ratio=0.9).tolist() == [1, 2]
    assert select_citations(scores, strength, top_k=1, min_score=0.0, ratio=0.0).tolist() == [1]
    assert select_citations(scores, strength, top_k=4, min_score=0.2, ratio=0.0).tolist() == [1, 2]


def test_neighbour_context_matches_loop_and_stops_at_chunk_borders() -> None:
    """Each sentence gains weight x its stronger neighbour within its own chunk, as a loop does."""
    strength = rng.uniform(-0.2, 1.0, size=(3, 7)).astype(np.float32)
    chunk = np.array([0, 0, 0, 1, 1, 2, 2])
    expected = strength.copy()
    for i in range(3):
        for j in range(7):
            near = [strength[i, k] for k in (j - 1, j + 1) if 0 <= k < 7 and chunk[k] == chunk[j]]
            expected[i, j] += 0.25 * max([0.0, *near])
    np.testing.assert_allclose(neighbour_context(strength, chunk, 0.25), expected, atol=1e-6)
    np.testing.assert_array_equal(neighbour_context(strength, chunk, 0.0), strength)
    single = np.array([[0.9]], dtype=np.float32)
    np.testing.assert_array_equal(neighbour_context(single, np.array([0]), 0.5), single)


def test_first_copies_folds_copies_in_later_chunks_only():
    """A sentence maps to its first copy in an earlier chunk; repeats inside a chunk stay."""
    texts = ["A b.", "C d.", "A  b.", "C d.", "E."]
    chunk = np.array([0, 0, 1, 1, 1])
    assert first_copies(texts, chunk).tolist() == [0, 1, 0, 1, 4]
    assert first_copies(["A.", "A."], np.array([0, 0])).tolist() == [0, 1]


@pytest.mark.parametrize("how", ["softmax", "minmax", "none"])
def test_score_once_equals_scoring_without_the_copies(how):
    """Scores with copies equal scores without them; copies get 0 and are never ranked."""
    rng = np.random.default_rng(3)
    strength = rng.uniform(-0.2, 0.9, size=(4, 5)).astype(np.float32)
    first = np.array([0, 1, 2, 1, 4])
    strength[:, 3] = strength[:, 1] + 0.05  # a copy seen with better context
    scores, ranked = score_once(strength, first, how, temperature=0.1)
    unique = [0, 1, 2, 4]
    folded = strength[:, unique].copy()
    folded[:, 1] = strength[:, 3]
    np.testing.assert_allclose(
        scores[:, unique], normalize(folded, how, temperature=0.1), rtol=1e-6
    )
    assert (scores[:, 3] == 0).all() and np.isneginf(ranked[:, 3]).all()
    np.testing.assert_allclose(ranked[:, 1], strength[:, 3])


def test_score_once_without_copies_is_normalize():
    """No copies: the plain normalisation and the strength itself."""
    strength = np.array([[0.1, 0.5]], dtype=np.float32)
    scores, ranked = score_once(strength, np.array([0, 1]), "softmax", temperature=0.1)
    np.testing.assert_allclose(scores, normalize(strength, "softmax", temperature=0.1))
    assert ranked is strength or np.array_equal(ranked, strength)
