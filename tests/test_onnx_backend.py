"""The ONNX Runtime encoder: the torch model's vectors, exported locally, cached, with fallback."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from rag_attrib import ConfigError, SentenceTransformerEmbedder
from rag_attrib.embedders import default_embedder

pytest.importorskip("onnxruntime")
from rag_attrib.onnx_backend import OnnxEmbedder, export_onnx

pytestmark = pytest.mark.slow

TEXTS = [
    "The Eiffel Tower was completed in 1889.",
    "  Leading and trailing spaces.  ",
    "",
    "Ünïcödé — 東京 😀 \u200b zero-width",
    "Der Zug fährt um 8 Uhr nach München.",
    "word " * 400,  # longer than the model's 256 tokens: truncated the same way
    "A",
]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh offline interpreter; it must succeed."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(out_dir=tmp_path_factory.mktemp("onnx") / "minilm")


def test_same_vectors_as_torch(
    onnx_folder: Path, torch_embedder: SentenceTransformerEmbedder
) -> None:
    """fp32 ONNX gives the sentence-transformers vectors to float rounding, in input order."""
    onnx = OnnxEmbedder(folder=onnx_folder, batch_size=3)
    got, want = onnx.encode(TEXTS), torch_embedder.encode(TEXTS)
    assert got.shape == want.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert onnx.dimension == 384 and onnx.backend == "onnx"
    assert onnx.model_id == torch_embedder.model_id  # same vectors, so one cache key
    assert onnx.encode([]).shape == (0, 384)


def test_export_is_reused_and_needs_no_torch(onnx_folder: Path) -> None:
    """A second process loads the cached export with ONNX Runtime alone: torch is never imported."""
    stamp = (onnx_folder / "model.onnx").stat().st_mtime_ns
    code = (
        "import sys\n"
        "from rag_attrib.onnx_backend import OnnxEmbedder\n"
        f"v = OnnxEmbedder(folder={str(onnx_folder)!r}).encode(['A cat sat.'])\n"
        "print(v.shape, 'torch' in sys.modules)\n"
    )
    out = _python(code)
    assert out.stdout.split() == ["(1,", "384)", "False"]
    assert (onnx_folder / "model.onnx").stat().st_mtime_ns == stamp


def test_int8_is_close_and_keyed_apart(onnx_folder: Path) -> None:
    """The int8 graph is written beside the fp32 one; its vectors are close, its cache key differs."""
    fp32 = OnnxEmbedder(folder=onnx_folder).encode(TEXTS[:2])
    int8 = OnnxEmbedder(folder=onnx_folder, quantize=True)
    got = int8.encode(TEXTS[:2])
    assert (onnx_folder / "model.int8.onnx").is_file()
    assert (got * fp32).sum(axis=1).min() > 0.95
    assert int8.model_id.endswith("+onnx-int8") and int8.backend == "onnx-int8"


def test_quantising_leaves_the_root_logger_alone(onnx_folder: Path, tmp_path: Path) -> None:
    """First-use quantisation prints no advice and adds no handler to the user's root logger."""
    for name in ("model.onnx", "tokenizer.json", "rag_attrib_onnx.json"):
        (tmp_path / name).write_bytes((onnx_folder / name).read_bytes())
    code = (
        "import logging\n"
        "from rag_attrib.onnx_backend import OnnxEmbedder\n"
        f"v = OnnxEmbedder(folder={str(tmp_path)!r}, quantize=True).encode(['A cat sat.'])\n"
        "print(v.shape, logging.getLogger().handlers)\n"
    )
    out = _python(code)
    assert (tmp_path / "model.int8.onnx").is_file()
    assert out.stdout.split() == ["(1,", "384)", "[]"]
    assert "pre-processing" not in out.stderr


def test_concurrent_calls_do_not_mix(onnx_folder: Path) -> None:
    """One embedder shared by threads returns each caller its own rows."""
    onnx = OnnxEmbedder(folder=onnx_folder)
    batches = [[f"Sentence {i} about topic {i % 3}.", TEXTS[i % 2]] for i in range(16)]
    alone = [onnx.encode(b) for b in batches]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(onnx.encode, batches))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_broken_export_falls_back_to_torch(
    tmp_path: Path, torch_embedder: SentenceTransformerEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    """With fallback=True a bad export logs a warning and torch encodes; without, it raises."""
    (tmp_path / "rag_attrib_onnx.json").write_text("{}", encoding="utf-8")
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(Exception):  # noqa: B017  # whatever ONNX Runtime raises for a bad file
        OnnxEmbedder(folder=tmp_path).encode(["x"])
    safe = OnnxEmbedder(folder=tmp_path, fallback=True)
    with caplog.at_level(logging.WARNING, logger="rag_attrib.onnx_backend"):
        got = safe.encode(TEXTS[:1])
    assert "encoding with torch instead" in caplog.text
    assert safe.backend == "torch" and safe.dimension == 384
    np.testing.assert_allclose(got, torch_embedder.encode(TEXTS[:1]), atol=1e-6)
    int8 = OnnxEmbedder(folder=tmp_path, quantize=True, fallback=True)
    np.testing.assert_allclose(int8.encode(TEXTS[:1]), got, atol=1e-6)
    assert int8.backend == "torch"


def test_default_embedder_is_int8_onnx() -> None:
    """With onnxruntime installed the default encoder is the int8 ONNX graph, falling back to
    torch."""
    embedder = default_embedder()
    assert isinstance(embedder, OnnxEmbedder) and embedder._may_fall_back
    assert embedder.quantize and embedder.model_id.endswith("+onnx-int8")


@pytest.mark.parametrize("pooling", ["cls", "max"])
def test_other_poolings_match_torch(tmp_path: Path, pooling: str) -> None:
    """A locally built model with CLS or max pooling exports and matches its torch vectors."""
    transformers = pytest.importorskip("transformers")
    from _fakes import tiny_bert
    from sentence_transformers import SentenceTransformer, models

    tokenizer, config = tiny_bert()
    transformers.set_seed(0)
    bert_dir = tmp_path / "bert"
    transformers.BertModel(config).save_pretrained(bert_dir)
    tokenizer.save_pretrained(bert_dir)
    word = models.Transformer(str(bert_dir), max_seq_length=64)
    st = SentenceTransformer(modules=[word, models.Pooling(32, pooling_mode=pooling)])
    st_dir = tmp_path / "st"
    st.save(str(st_dir))
    onnx = OnnxEmbedder(str(st_dir), folder=tmp_path / "export")
    want = SentenceTransformerEmbedder(str(st_dir), local_files_only=True).encode(TEXTS)
    np.testing.assert_allclose(onnx.encode(TEXTS), want, atol=1e-5)


def test_unsupported_model_names_the_fix(tmp_path: Path) -> None:
    """A model with extra modules (here a Dense layer) is refused with a pointer to torch."""
    from sentence_transformers import SentenceTransformer, models

    from rag_attrib.embedders import default_model_path

    base = SentenceTransformer(default_model_path(), local_files_only=True)
    dense = models.Dense(384, 16)
    st = SentenceTransformer(modules=[base[0], base[1], dense])
    st_dir = tmp_path / "dense"
    st.save(str(st_dir))
    with pytest.raises(ConfigError, match="SentenceTransformerEmbedder"):
        OnnxEmbedder(str(st_dir), folder=tmp_path / "export").encode(["x"])
