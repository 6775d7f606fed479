"""The default install: attribution without torch, the shipped encoder, same input -> same result."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag_attrib import AttributionResult, Attributor, CachedEmbedder, Source
from rag_attrib.embedders import default_embedder
from rag_attrib.onnx_backend import BUNDLED_FILES, OnnxEmbedder, bundled_model_dir
from rag_attrib.streaming import AttributionStream

pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parents[1] / "src"
EVALDATA = Path(
    os.environ.get(
        "RAG_ATTRIB_EVALDATA", Path(__file__).resolve().parents[2] / "shared" / "evaldata"
    )
)

# A finder first on sys.meta_path that refuses torch and friends, as if not installed.
BLOCK_TORCH = """
import sys
class _NoTorch:
    BLOCKED = ("torch", "transformers", "sentence_transformers")
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ImportError(f"{name} is blocked (not installed)")
        return None
sys.meta_path.insert(0, _NoTorch())
"""


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh offline interpreter with an empty cache; it must succeed."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "RAG_ATTRIB_CACHE": str(tmp_path / "empty-cache"),
        "HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("XDG_CACHE_HOME", None)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_shipped_encoder_is_complete() -> None:
    """The int8 graph, tokenizer and settings are package data, with their manifest."""
    folder = bundled_model_dir()
    for name in BUNDLED_FILES:
        assert (folder / name).is_file(), name
    manifest = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8"))
    assert set(manifest["sha256"]) == set(BUNDLED_FILES)


def test_attributes_where_torch_is_not_installed(tmp_path: Path) -> None:
    """With torch, transformers and sentence-transformers unimportable, an empty cache and INFO
    logging on, `Attributor().attribute()` cites and flags, and logs nothing at all."""
    code = BLOCK_TORCH + (
        "import logging\n"
        "logging.basicConfig(level=logging.DEBUG)\n"
        "import rag_attrib\n"
        "result = rag_attrib.Attributor().attribute(\n"
        "    'Paris is the capital of France. The moon is made of green cheese.',\n"
        "    ['Paris is the capital and largest city of France.', 'The moon orbits the Earth.'])\n"
        "print([s.supported for s in result.answer_sentences],\n"
        "      result.answer_sentences[0].citations[0].source_id, result.model,\n"
        "      sorted(m for m in ('torch', 'transformers', 'nltk') if m in sys.modules))\n"
    )
    out = _python(code, tmp_path)
    assert out.stdout.split() == ["[True,", "False]", "0", "all-MiniLM-L6-v2+onnx-int8", "[]"]
    assert out.stderr == ""  # not one log line: nothing is exported or quantised on first use
    assert not (tmp_path / "empty-cache").exists()  # and nothing is written to the cache


def test_vector_does_not_depend_on_the_batch() -> None:
    """The default encoder's vector of a text is the same alone, in any batch, and cached."""
    texts = [
        "The Eiffel Tower was completed in 1889.",
        "A much longer sentence about the history of the tower, its engineers, and the "
        "many visitors who climb its stairs every single year.",
        "Short.",
        "Der Zug fährt um 8 Uhr nach München.",
    ]
    embedder = default_embedder()
    alone = np.vstack([embedder.encode([t]) for t in texts])
    batched = embedder.encode(texts)
    reversed_ = embedder.encode(texts[::-1])[::-1]
    padded = embedder.encode([*texts, "word " * 200])[: len(texts)]
    cached = CachedEmbedder(embedder)
    cached.encode(texts[1:])
    mixed = cached.encode(texts)
    for other in (batched, reversed_, padded, mixed):
        assert np.array_equal(alone, other)


def test_vector_does_not_depend_on_threads() -> None:
    """Several one-text runs at once give each text the vector it gets alone on one thread:
    whatever the number of threads, and with other callers encoding at the same time."""
    texts = [
        f"Sentence {i} about the {'tower ' * (i % 5)}and its {i * 7} visitors." for i in range(24)
    ]
    texts += ["Short.", "word " * 300]  # past the 256-token window: truncated
    serial = OnnxEmbedder(quantize=True, threads=1)
    alone = np.vstack([serial.encode([t]) for t in texts])
    for threads in (None, 2, 5):
        assert np.array_equal(OnnxEmbedder(quantize=True, threads=threads).encode(texts), alone)
    shared = OnnxEmbedder(quantize=True)
    calls = [texts[k::3] for k in range(3)] * 4
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(shared.encode, calls))
    for batch, vectors in zip(calls, got, strict=True):
        assert np.array_equal(vectors, np.vstack([alone[texts.index(t)] for t in batch]))


def _evaluation_records(n: int) -> list[dict[str, Any]]:
    if not EVALDATA.exists():
        pytest.skip(f"evaluation data not found at {EVALDATA}")
    sys.path.insert(0, str(EVALDATA / "common"))
    from load_all import load_dataset  # type: ignore[import-not-found]

    records = [r for r in load_dataset("hotpotqa", split="dev") if len(r["answer"]) > 20]
    wice = list(load_dataset("wice", split="test"))
    return records[:n] + wice[:n]


def _verdicts(result: AttributionResult) -> list[Any]:
    return [
        (s.support, s.supported, [(c.source_index, c.sentence_index, c.score) for c in s.citations])
        for s in result.answer_sentences
    ]


def test_cold_warm_and_streamed_calls_agree() -> None:
    """On evaluation records, a cold call, a warm call and a streamed answer give the same
    scores, verdicts and citations, exactly."""
    base = OnnxEmbedder(quantize=True)
    warm = Attributor(base)
    records = _evaluation_records(4)
    for rec in records:  # the warm attributor has seen every record's sources
        warm.prewarm([Source(s["id"], s["text"]) for s in rec["sources"]])
    for rec in records:
        sources = [Source(s["id"], s["text"]) for s in rec["sources"]]
        answer, question = rec["answer"], rec.get("question") or None
        cold = Attributor(base).attribute(answer, sources, question=question)
        stream = AttributionStream(Attributor(base), sources, question=question)
        for token in re.findall(r"\S+\s*", answer):
            stream.add(token)
        streamed = stream.finish()
        again = warm.attribute(answer, sources, question=question)
        assert _verdicts(cold) == _verdicts(again) == _verdicts(streamed), rec["id"]
        assert np.array_equal(cold.similarity, again.similarity)
        assert np.array_equal(cold.similarity, streamed.similarity)
