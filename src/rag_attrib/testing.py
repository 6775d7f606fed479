"""Test helpers: a tiny deterministic embedder that needs no model and no torch."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence

import numpy as np

from ._types import FloatMatrix
from .embedders import normalize_rows

__all__ = ["FailingEmbedder", "HashingEmbedder"]

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Bag of hashed words and character trigrams: texts sharing words are similar.

    Deterministic across processes (blake2b, not `hash()`), fast, and dependency-free, so tests
    can check the engine's logic without a neural model.

    Args:
        dim: embedding width.
    """

    model_id = "hashing-embedder"

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim
        self.calls = 0
        self.texts_encoded = 0
        self._lock = threading.Lock()

    def _index(self, feature: str) -> int:
        digest = hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        return int.from_bytes(digest, "little") % self.dim

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Return shape (len(texts), dim) float32 with unit rows (zero rows for empty text)."""
        with self._lock:
            self.calls += 1
            self.texts_encoded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                out[row, self._index("w:" + word)] += 1.0
                padded = f"<{word}>"
                for k in range(len(padded) - 2):
                    out[row, self._index("c:" + padded[k : k + 3])] += 0.25
        return normalize_rows(out)


class FailingEmbedder:
    """An embedder that always raises, to test that integrations never break the host."""

    model_id = "failing-embedder"

    def __init__(self, message: str = "embedder failed on purpose") -> None:
        self.message = message

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Raise `RuntimeError`."""
        raise RuntimeError(self.message)
