"""Faster embedders: static (model2vec) token embeddings distilled locally from a bi-encoder.

A static model looks each token up in a table and averages: no transformer runs at encode
time, so encoding is one to two orders of magnitude faster than all-MiniLM-L6-v2 on a CPU, at
some cost in accuracy (see benchmarks/backends.py and benchmarks/quality.py --backend static).
The table is distilled once, offline, from a local sentence-transformers model (by default the
bundled all-MiniLM-L6-v2) and kept in a folder; nothing is downloaded.

    >>> from rag_attrib import Attributor
    >>> from rag_attrib.backends import StaticEmbedder
    >>> attributor = Attributor(StaticEmbedder())  # distils into the cache folder on first use
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._types import FloatMatrix
from .embedders import default_model_path, normalize_rows
from .errors import MissingDependencyError

if TYPE_CHECKING:
    from model2vec import StaticModel

__all__ = [
    "StaticEmbedder",
    "default_static_path",
    "distill_static_model",
]

logger = logging.getLogger(__name__)

_INSTALL = "pip install 'rag-attrib[fast]'"
_MARKER = "model.safetensors"


def default_static_path() -> Path:
    """Return the folder the default static model is distilled into and loaded from.

    Returns:
        `$RAG_ATTRIB_CACHE/static-minilm`, else `$XDG_CACHE_HOME/rag_attrib/static-minilm`,
        else `~/.cache/rag_attrib/static-minilm`.
    """
    root = os.environ.get("RAG_ATTRIB_CACHE")
    if root:
        return Path(root).expanduser() / "static-minilm"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "rag_attrib" / "static-minilm"


def distill_static_model(
    out_dir: str | os.PathLike[str] | None = None,
    source: str | os.PathLike[str] | None = None,
    *,
    pca_dims: int | None = 256,
    token_remove_pattern: str | None = r"\[unused\d+\]",
) -> Path:
    """Distil a static (model2vec) embedding table from a local model and save it.

    Every vocabulary token is encoded once by the source model (about 2 minutes for
    all-MiniLM-L6-v2 on 2 CPU cores), reduced by PCA and frequency-weighted.

    Args:
        out_dir: folder to write; None for `default_static_path()`.
        source: a local sentence-transformers / transformers model folder; None for the
            bundled all-MiniLM-L6-v2.
        pca_dims: output width (None keeps the source width; at most the source width).
        token_remove_pattern: a regex of vocabulary tokens to leave out (fewer tokens build
            faster; a text's tokens that were left out are ignored when it is encoded).

    Returns:
        The folder the model was written to.

    Raises:
        MissingDependencyError: model2vec's distillation extra (torch, transformers) is missing.
        FileNotFoundError: `source` is not a local folder.
    """
    distill = _import_distill()
    src = str(source) if source is not None else default_model_path()
    if not Path(src).is_dir():
        msg = f"source must be a local model folder (nothing is downloaded); got {src!r}"
        raise FileNotFoundError(msg)
    out = Path(out_dir) if out_dir is not None else default_static_path()
    logger.info("distilling a static model from %s into %s", src, out)
    model = distill(
        model_name=src,
        pca_dims=pca_dims,
        token_remove_pattern=token_remove_pattern,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    return out


class StaticEmbedder:
    """A static (model2vec) embedder: averaged token vectors, no transformer at encode time.

    The model is loaded on the first `encode`; if its folder holds no model yet it is
    distilled there first from `distill_from` (one-time, minutes on a small CPU).

    Args:
        path: the model folder; None for `default_static_path()`.
        distill_from: local model folder to distil from when `path` holds no model; None for
            the bundled all-MiniLM-L6-v2.
        build: distil when `path` holds no model; if False a missing model raises instead.

    Raises:
        MissingDependencyError: (on first encode) model2vec is not installed.
        FileNotFoundError: (on first encode) no model at `path` and `build` is False.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        distill_from: str | os.PathLike[str] | None = None,
        build: bool = True,
    ) -> None:
        self.path = Path(path) if path is not None else default_static_path()
        self._distill_from = distill_from
        self._build = build
        self.model_id = f"model2vec:{self.path.resolve()}"
        self._model: StaticModel | None = None
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()

    @property
    def model(self) -> StaticModel:
        """The underlying `model2vec.StaticModel`, loaded (or distilled) on first access."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> StaticModel:
        static_model = _import_static_model()
        if not (self.path / _MARKER).is_file():
            if not self._build:
                msg = f"no static model at {self.path}; run distill_static_model() first"
                raise FileNotFoundError(msg)
            distill_static_model(self.path, self._distill_from)
        return static_model.from_pretrained(str(self.path), normalize=True)

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Return shape (len(texts), d) float32 with unit rows (zero rows for token-less texts)."""
        model = self.model
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # the Rust tokenizer is not safe to share between threads mid-call
        with self._encode_lock:
            vectors = model.encode(list(texts), use_multiprocessing=False)
        return normalize_rows(vectors)

    @property
    def dimension(self) -> int:
        """Embedding width d."""
        return int(self.model.dim)

    def __repr__(self) -> str:
        return f"StaticEmbedder({str(self.path)!r})"


def _import_static_model() -> type[StaticModel]:
    try:
        from model2vec import StaticModel
    except ImportError:
        msg = f"The static embedder needs model2vec: {_INSTALL}"
        raise MissingDependencyError(msg, name="model2vec") from None
    return StaticModel


def _import_distill() -> Callable[..., StaticModel]:
    try:
        from model2vec.distill import distill
    except ImportError:
        msg = (
            "Distilling a static model needs model2vec's distillation extra "
            f"(torch, transformers, skeletoken): {_INSTALL}"
        )
        raise MissingDependencyError(msg, name="model2vec.distill") from None
    distill_fn: Callable[..., StaticModel] = distill
    return distill_fn
