"""Cross-encoder re-scoring of the best (answer sentence, source sentence) candidates."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ._types import FloatMatrix, FloatVector
from .embedders import ST_INSTALL
from .errors import MissingDependencyError

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

__all__ = ["CrossEncoderReranker", "Reranker", "rerank"]


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, passage) pairs; higher means the passage supports the query better."""

    def score(self, pairs: Sequence[tuple[str, str]]) -> FloatVector:
        """Return shape (len(pairs),) float32 in [0, 1]."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers `CrossEncoder` (e.g. BAAI/bge-reranker-v2-m3), loaded lazily.

    Args:
        model: a model name, a local path or a loaded `CrossEncoder`.
        top_n: only this many best candidates per answer sentence are re-scored (speed).
        device: "cpu", "cuda", ...; None lets sentence-transformers choose.
        local_files_only: never contact the Hugging Face Hub.
        batch_size: pairs per forward pass.

    Example:
        >>> attributor = Attributor(reranker=CrossEncoderReranker("BAAI/bge-reranker-v2-m3"))
    """

    def __init__(
        self,
        model: str | CrossEncoder,
        *,
        top_n: int = 5,
        device: str | None = None,
        local_files_only: bool = False,
        batch_size: int = 32,
    ) -> None:
        if top_n < 1:
            msg = f"top_n must be an integer >= 1; got {top_n!r}"
            raise ValueError(msg)
        self.top_n = top_n
        self.batch_size = batch_size
        self._device = device
        self._local_files_only = local_files_only
        self._lock = threading.Lock()
        self._model: CrossEncoder | None = None
        self._name = model if isinstance(model, str) else ""
        if not isinstance(model, str):
            self._model = model
        self.model_id = self._name or type(model).__name__

    @property
    def model(self) -> CrossEncoder:
        """The underlying `CrossEncoder`, loaded on first access."""
        with self._lock:
            if self._model is None:
                try:
                    from sentence_transformers import CrossEncoder
                except ImportError:
                    msg = f"Cross-encoder re-scoring needs sentence-transformers: {ST_INSTALL}"
                    raise MissingDependencyError(msg, name="sentence_transformers") from None
                self._model = CrossEncoder(
                    self._name, device=self._device, local_files_only=self._local_files_only
                )
            return self._model

    def score(self, pairs: Sequence[tuple[str, str]]) -> FloatVector:
        """Return shape (len(pairs),) float32 in [0, 1] (sigmoid of the model's logit)."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        model = self.model
        with self._lock:  # fast tokenizers are not safe to share across threads
            logits = model.predict(
                [(query, passage) for query, passage in pairs],
                batch_size=self.batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
                activation_fn=_identity(),
            )
        raw = np.asarray(logits, dtype=np.float32).reshape(len(pairs), -1)[:, -1]
        return np.asarray(1.0 / (1.0 + np.exp(-raw)), dtype=np.float32)


def _identity() -> Callable[..., Any]:
    # raw logits: one sigmoid here works for rerankers whose default activation differs
    import torch

    return torch.nn.Identity()


def rerank(
    strength: FloatMatrix,
    queries: Sequence[str],
    units: Sequence[str],
    reranker: Reranker,
    *,
    top_n: int,
) -> FloatMatrix:
    """Re-score the `top_n` strongest units of each row with `reranker`; shape (m, n) -> (m, n).

    The re-scored candidates take the reranker's score; every other unit is capped just below
    the row's lowest re-scored candidate, so the cross-encoder decides the order at the top
    and the bi-encoder only orders the rest.
    """
    m, n = strength.shape
    if m == 0 or n == 0:
        return strength
    k = min(top_n, n)
    top = np.argsort(-strength, axis=1, kind="stable")[:, :k]
    pairs = [(queries[i], units[j]) for i in range(m) for j in top[i]]
    fresh = reranker.score(pairs).reshape(m, k)
    out = strength.astype(np.float32, copy=True)
    floor = fresh.min(axis=1, keepdims=True) - np.float32(1e-3)
    capped: FloatMatrix = np.minimum(out, floor).astype(np.float32)
    np.put_along_axis(capped, top, fresh, axis=1)
    return capped
