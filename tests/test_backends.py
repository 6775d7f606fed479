"""The static (model2vec) backend: distilled locally from the bundled MiniLM, no downloads."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from rag_attrib import Attributor, Source
from rag_attrib.backends import StaticEmbedder, default_static_path, distill_static_model
from rag_attrib.embedders import Embedder
from rag_attrib.errors import MissingDependencyError

pytest.importorskip(
    "model2vec", reason="model2vec is not installed (pip install 'rag-attrib[fast]')"
)
pytest.importorskip("transformers", reason="distillation needs transformers")

pytestmark = pytest.mark.slow

# The full vocabulary takes ~2 minutes to distil on 2 cores; short lowercase words plus the
# special tokens (~3,400 tokens) take ~20 s and are enough for everyday English test sentences.
SMALL_VOCAB = r"^(?!(?:[a-z]{2,4}|\[[A-Z]+\])$).*$"


@pytest.fixture(scope="session")
def static_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small static model distilled once per session from the bundled MiniLM."""
    out = tmp_path_factory.mktemp("static") / "minilm-small"
    return distill_static_model(out, pca_dims=64, token_remove_pattern=SMALL_VOCAB)


@pytest.fixture(scope="session")
def static_embedder(static_dir: Path) -> StaticEmbedder:
    return StaticEmbedder(static_dir, build=False)


def test_distill_writes_a_loadable_model(static_dir: Path, static_embedder: StaticEmbedder) -> None:
    assert (static_dir / "model.safetensors").is_file()
    assert static_embedder.dimension == 64
    assert isinstance(static_embedder, Embedder)
    assert str(static_dir.resolve()) in static_embedder.model_id


def test_encode_returns_unit_float32_rows(static_embedder: StaticEmbedder) -> None:
    vectors = static_embedder.encode(["The dog ran to the park.", "Stock fell in May."])
    assert vectors.shape == (2, 64)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_encode_edge_cases(static_embedder: StaticEmbedder) -> None:
    assert static_embedder.encode([]).shape == (0, 64)
    # a text with no known token has no direction: a zero row, never NaN
    vectors = static_embedder.encode(["", "the cat"])
    assert not np.isnan(vectors).any()
    assert float(np.linalg.norm(vectors[0])) == 0.0
    assert float(np.linalg.norm(vectors[1])) == pytest.approx(1.0, rel=1e-5)


def test_related_sentences_are_closer(static_embedder: StaticEmbedder) -> None:
    a, b, c = static_embedder.encode(
        ["The dog ran to the park.", "A dog runs in the park.", "Tax law was cut this year."]
    )
    assert float(a @ b) > float(a @ c) + 0.2


def test_attributor_finds_the_supporting_chunk(static_embedder: StaticEmbedder) -> None:
    sources = [
        Source("pets", "The dog ran to the park. It ate a bone there."),
        Source("money", "The bank cut its loan rate. Tax will rise next year."),
    ]
    result = Attributor(static_embedder).attribute("A dog ran in the park.", sources)
    assert result.error is None
    assert result.answer_sentences[0].citations[0].source_id == "pets"
    assert result.top_source is not None and result.top_source.id == "pets"


def test_loading_does_not_distil_again(static_dir: Path) -> None:
    stamp = (static_dir / "model.safetensors").stat().st_mtime_ns
    embedder = StaticEmbedder(static_dir)  # build=True, but a model is already there
    assert embedder.encode(["the cat"]).shape == (1, 64)
    assert (static_dir / "model.safetensors").stat().st_mtime_ns == stamp


def test_concurrent_encodes_match_serial(static_embedder: StaticEmbedder) -> None:
    texts = [f"the dog ran {w} the park" for w in ("to", "in", "by", "at", "near", "past")]
    expected = [static_embedder.encode([t]) for t in texts]
    got: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        for _ in range(20):
            got[i] = static_embedder.encode([texts[i]])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, vec in enumerate(expected):
        np.testing.assert_array_equal(got[i], vec)


def test_missing_model_without_build_raises(tmp_path: Path) -> None:
    embedder = StaticEmbedder(tmp_path / "nothing-here", build=False)
    with pytest.raises(FileNotFoundError, match="distill_static_model"):
        embedder.encode(["x"])


def test_distill_refuses_a_non_local_source(tmp_path: Path) -> None:
    # a Hub name is not a folder: refuse rather than download
    with pytest.raises(FileNotFoundError, match="local model folder"):
        distill_static_model(tmp_path / "out", "sentence-transformers/all-MiniLM-L6-v2")
    assert not (tmp_path / "out").exists()


def test_missing_model2vec_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "model2vec", None)  # makes `import model2vec` fail
    monkeypatch.setitem(sys.modules, "model2vec.distill", None)
    with pytest.raises(MissingDependencyError, match=r"rag-attrib\[fast\]"):
        StaticEmbedder(tmp_path, build=False).encode(["x"])
    with pytest.raises(MissingDependencyError, match=r"rag-attrib\[fast\]"):
        distill_static_model(tmp_path / "out")


def test_default_path_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_ATTRIB_CACHE", str(tmp_path))
    assert default_static_path() == tmp_path / "static-minilm"
    monkeypatch.delenv("RAG_ATTRIB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_static_path() == tmp_path / "xdg" / "rag_attrib" / "static-minilm"
    assert StaticEmbedder().path == default_static_path()
