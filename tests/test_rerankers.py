"""Cross-encoder re-scoring: a tiny random cross-encoder built locally (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag_attrib import AttributionConfig, Attributor
from rag_attrib.rerankers import CrossEncoderReranker, rerank
from rag_attrib.testing import HashingEmbedder


class KeywordReranker:
    """A deterministic reranker: 1.0 when the passage contains the query's last word."""

    top_n = 2

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def score(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        self.pairs.extend(pairs)
        return np.array(
            [1.0 if q.split()[-1].strip(".") in p else 0.1 for q, p in pairs], np.float32
        )


def test_rerank_rescored_top_candidates_only() -> None:
    """Only top_n candidates per row are re-scored; the rest stay below them."""
    strength = np.array([[0.9, 0.8, 0.1, 0.05]], np.float32)
    units = ["alpha", "beta gamma", "gamma", "delta"]
    reranker = KeywordReranker()
    out = rerank(strength, ["find gamma"], units, reranker, top_n=2)
    assert [p for _, p in reranker.pairs] == ["alpha", "beta gamma"]
    assert out[0, 1] == pytest.approx(1.0) and out[0, 0] == pytest.approx(0.1)
    assert out[0, 2] < out[0, 0] and out[0, 3] < out[0, 0]


def test_attributor_uses_reranker_and_honours_aggregation() -> None:
    """The reranker decides the best citation, and aggregation runs on the re-scored matrix."""
    sources = ["The cat sat on the mat. The cat chased a mouse."]
    answer = "The cat chased the mouse."
    plain = Attributor(HashingEmbedder()).attribute(answer, sources)
    reranker = KeywordReranker()
    for how in ("max", "mean"):
        cfg = AttributionConfig(aggregation=how, support_threshold=0.5)
        result = Attributor(HashingEmbedder(), config=cfg, reranker=reranker).attribute(
            answer, sources
        )
        assert result.answer_sentences[0].citations[0].sentence_index == 1
        assert result.similarity[0, 1] == pytest.approx(1.0)
        assert result.sources[0].sentences[1].score >= result.sources[0].sentences[0].score
    assert plain.similarity[0, 1] != pytest.approx(1.0)


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random BERT cross-encoder saved locally, with the bundled MiniLM tokenizer."""
    transformers = pytest.importorskip("transformers")
    from _fakes import tiny_bert

    tokenizer, config = tiny_bert(num_labels=1)
    transformers.set_seed(0)
    model = transformers.BertForSequenceClassification(config)
    path = tmp_path_factory.mktemp("tiny-ce")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.slow
def test_real_cross_encoder_runs_offline(tiny_cross_encoder: Path) -> None:
    """A sentence-transformers CrossEncoder loads from a local path and re-scores candidates."""
    reranker = CrossEncoderReranker(
        str(tiny_cross_encoder), top_n=2, local_files_only=True, device="cpu"
    )
    scores = reranker.score([("a cat", "a cat sat"), ("a dog", "stocks fell")])
    assert scores.shape == (2,) and ((scores > 0) & (scores < 1)).all()
    sources = ["The cat sat on the mat. The cat chased a mouse. Stocks fell today."]
    result = Attributor(
        HashingEmbedder(), reranker=reranker, config=AttributionConfig(support_threshold=0.0)
    ).attribute("The cat chased the mouse.", sources)
    row = result.similarity[0]
    top = np.argsort(-row)[:2]
    assert set(top.tolist()) <= {0, 1}  # the two bi-encoder candidates stay on top
    np.testing.assert_allclose(
        sorted(row[top]),
        sorted(
            reranker.score(
                [
                    ("The cat chased the mouse.", s)
                    for s in ["The cat sat on the mat.", "The cat chased a mouse."]
                ]
            )
        ),
        rtol=1e-5,
    )
