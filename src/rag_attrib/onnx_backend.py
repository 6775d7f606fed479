"""The bi-encoder on ONNX Runtime: the same embeddings as sentence-transformers, about 2x faster.

The default encoder, the bundled all-MiniLM-L6-v2 with int8 weights, ships ready inside the
package (`models/minilm/`, written by `scripts/export_models.py`): it loads with ONNX Runtime and
the Rust tokenizer alone, with no torch, no export and nothing downloaded. Any other
sentence-transformers model (Transformer + Pooling + optional Normalize) is exported once,
locally, to an ONNX graph kept in the cache folder beside its tokenizer and pooling settings
(that needs the `[st]` extra: torch, onnx). fp32 gives the torch model's vectors to within float
rounding; int8 (`quantize=True`) is faster again, cosine ~0.99 to the fp32 vectors.

int8 activations are quantised with a scale taken from the tensor being encoded, so the int8
graph encodes one text per run: a text's vector never depends on what it was batched with.
Runs of a few texts go on at once, one thread each (for a sentence, ONNX Runtime's own threads
help little, two runs at once nearly twice as much).

    >>> from rag_attrib import Attributor
    >>> from rag_attrib.onnx_backend import OnnxEmbedder
    >>> attributor = Attributor(OnnxEmbedder())  # fp32: exports on first use (needs [st])
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._types import FloatMatrix
from .embedders import (
    DEFAULT_MODEL,
    ST_INSTALL,
    SentenceTransformerEmbedder,
    default_model_path,
)
from .errors import ConfigError, MissingDependencyError
from .parallel import available_cpus, run_each
from .validate import clean_text

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from tokenizers import Tokenizer

__all__ = ["OnnxEmbedder", "bundled_model_dir", "cache_root", "export_onnx", "onnx_available"]

logger = logging.getLogger(__name__)

_SETTINGS = "rag_attrib_onnx.json"
_FORMAT = 1  # bump when the export layout changes, so old exports are redone
_POOLINGS = ("mean", "cls", "max")
_INT8 = "model.int8.onnx"
BUNDLED_FILES = (_INT8, "tokenizer.json", _SETTINGS)
"""What `scripts/export_models.py` writes into `bundled_model_dir()`."""


def bundled_model_dir() -> Path:
    """The folder inside the package that holds the default encoder's int8 graph and tokenizer."""
    return Path(__file__).resolve().parent / "models" / "minilm"


def _bundled_int8() -> Path | None:
    folder = bundled_model_dir()
    return folder if all((folder / name).is_file() for name in BUNDLED_FILES) else None


def cache_root() -> Path:
    """`$RAG_ATTRIB_CACHE`, else `$XDG_CACHE_HOME/rag_attrib`, else `~/.cache/rag_attrib`."""
    root = os.environ.get("RAG_ATTRIB_CACHE")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "rag_attrib"


def onnx_available() -> bool:
    """True when ONNX Runtime and the tokenizers package can be imported."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))


def _export_dir(source: str, name: str) -> Path:
    resolved = str(Path(source).resolve()) if Path(source).exists() else source
    digest = hashlib.blake2b(f"{_FORMAT}:{resolved}".encode(), digest_size=8).hexdigest()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name)[-40:]
    return cache_root() / "onnx" / f"{slug}-{digest}"


def export_onnx(
    source: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    quantize: bool = False,
) -> Path:
    """Export a sentence-transformers model to ONNX (and optionally int8) into a folder.

    Args:
        source: a model name or local folder that `SentenceTransformer` can load; None for the
            bundled all-MiniLM-L6-v2.
        out_dir: the folder to write; None for one under `cache_root()/onnx` keyed by source.
        quantize: also write `model.int8.onnx` (dynamic int8, per-channel weights).

    Returns:
        The folder holding `model.onnx`, `tokenizer.json` and the pooling settings.

    Raises:
        MissingDependencyError: torch, onnx or onnxruntime is missing.
        ConfigError: the model is not Transformer + Pooling (+ Normalize) with a supported pooling.
    """
    src = str(source) if source is not None else default_model_path()
    name = DEFAULT_MODEL if source is None else Path(src).name or "model"
    out = Path(out_dir) if out_dir is not None else _export_dir(src, name)
    if not (out / _SETTINGS).is_file():
        _write_export(src, out)
    if quantize and not (out / _INT8).is_file():
        _quantize(out)
    return out


def _write_export(src: str, out: Path) -> None:
    try:
        import onnx  # noqa: F401  # torch's exporter needs it
        import torch
    except ImportError:
        msg = f"Exporting a model to ONNX needs torch and onnx: {ST_INSTALL}"
        raise MissingDependencyError(msg, name="onnx") from None
    st = SentenceTransformerEmbedder(src if src != default_model_path() else None).model
    settings = _settings_of(st)
    transformer: Any = st[0].auto_model
    transformer.eval()

    class _LastHidden(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask)[0]

    ids = torch.ones((2, 8), dtype=torch.long)
    out.parent.mkdir(parents=True, exist_ok=True)
    # write into a sibling temp folder and rename, so a concurrent reader never sees half a model
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        logger.info("exporting %s to ONNX in %s", src, out)
        # the tracer's warnings are about branches that are constant for an encoder
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHidden(transformer),
                (ids, torch.ones_like(ids)),
                str(tmp / "model.onnx"),
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "seq"},
                    "attention_mask": {0: "batch", 1: "seq"},
                    "last_hidden_state": {0: "batch", 1: "seq"},
                },
                opset_version=17,
                dynamo=False,
            )
        st.tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        (tmp / _SETTINGS).write_text(json.dumps(settings, indent=1), encoding="utf-8")
        try:
            tmp.rename(out)
        except OSError:  # another process finished first; its export is as good as ours
            if not (out / _SETTINGS).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _settings_of(st: Any) -> dict[str, Any]:
    names = [type(m).__name__ for m in st]
    if names[:2] != ["Transformer", "Pooling"] or any(n != "Normalize" for n in names[2:]):
        msg = (
            f"ONNX export supports Transformer + Pooling (+ Normalize) models; this one is "
            f"{' + '.join(names)}. Use SentenceTransformerEmbedder for it."
        )
        raise ConfigError(msg)
    # sentence-transformers >= 6 keeps the mode as a string; older releases have a getter
    pooling = getattr(st[1], "pooling_mode", None)
    if not isinstance(pooling, str):
        pooling = st[1].get_pooling_mode_str()
    if pooling not in _POOLINGS:
        msg = f"ONNX export supports pooling {_POOLINGS}; this model uses {pooling!r}"
        raise ConfigError(msg)
    tokenizer = st.tokenizer
    return {
        "format": _FORMAT,
        "pooling": pooling,
        "max_seq_length": int(st.max_seq_length),
        "pad_token_id": int(tokenizer.pad_token_id or 0),
        "lowercase": bool(getattr(st[0], "do_lower_case", False)),
        "dimension": int(SentenceTransformerEmbedder(st).dimension),
    }


def _quantize(folder: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        msg = "int8 quantisation needs onnxruntime: pip install onnxruntime"
        raise MissingDependencyError(msg, name="onnxruntime") from None
    tmp = folder / f".model.int8.{os.getpid()}.{threading.get_ident()}.onnx"
    with _quiet_root_logger():
        quantize_dynamic(
            str(folder / "model.onnx"), str(tmp), weight_type=QuantType.QInt8, per_channel=True
        )
    os.replace(tmp, folder / _INT8)


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Keep the quantiser's chatter off the user's root logger.

    onnxruntime's quantiser logs progress and advice with `logging.info/warning(...)` on the
    root logger, which would also run `basicConfig()` on a root logger without handlers
    (leaving a handler the user never asked for). None of it is the user's to act on, so
    while it runs, root records below ERROR are dropped.
    """
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)  # a root with a handler is left alone by basicConfig()

    def chatter(record: logging.LogRecord) -> bool:
        return not (record.name == "root" and record.levelno < logging.ERROR)

    root.addFilter(chatter)
    try:
        yield
    finally:
        root.removeFilter(chatter)
        root.removeHandler(guard)


class OnnxEmbedder:
    """A sentence-transformers bi-encoder run by ONNX Runtime.

    The default (no `model`, `quantize=True`) is the int8 all-MiniLM-L6-v2 shipped in the
    package: nothing to export. Other models, and the fp32 graph, are exported locally on first
    use (seconds; needs the `[st]` extra) and kept under `cache_root()`.

    Args:
        model: a model name or local folder; None for the bundled all-MiniLM-L6-v2.
        quantize: run the int8 graph (faster, slightly different vectors: its own cache key).
            It encodes one text per run, so a text's vector is the same whatever it is
            batched with (activation scales are taken per run).
        folder: an export folder to use (or create); None for the shipped graph (default
            model, int8) or one under `cache_root()`.
        threads: int8: how many one-text runs go on at once, each on one thread; None for the
            CPUs this process may use. fp32: ONNX Runtime intra-op threads; None for its
            default (the physical cores).
        batch_size: texts per fp32 run; texts are sorted by length so padding stays small.
        fallback: if the export or the session cannot be made, log a warning and encode with
            `SentenceTransformerEmbedder` (the fp32 vectors, slower) instead of raising.

    Raises:
        MissingDependencyError: (on first encode) onnxruntime or tokenizers is missing, or the
            model must be exported and torch / onnx are missing.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        quantize: bool = False,
        folder: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        batch_size: int = 32,
        fallback: bool = False,
    ) -> None:
        self._fallback: SentenceTransformerEmbedder | None = None
        self._may_fall_back = fallback
        self._source = str(model) if model is not None else None
        self.quantize = quantize
        self._folder = Path(folder) if folder is not None else None
        self._threads = threads
        self._runs_at_once = threads if threads is not None else available_cpus()
        self.batch_size = batch_size
        base = DEFAULT_MODEL if model is None else str(model)
        # fp32 reproduces the torch vectors, so it shares their cache key; int8 does not
        self.model_id = f"{base}+onnx-int8" if quantize else base
        self._lock = threading.Lock()
        self._loaded: tuple[InferenceSession, Tokenizer, dict[str, Any]] | None = None

    def _load(self) -> tuple[InferenceSession, Tokenizer, dict[str, Any]] | None:
        """The session, tokenizer and settings; None once this embedder has fallen back."""
        if self._loaded is None and self._fallback is None:
            with self._lock:
                if self._loaded is None and self._fallback is None:
                    try:
                        self._loaded = self._open()
                    except Exception as exc:
                        if not self._may_fall_back:
                            raise
                        logger.warning(
                            "ONNX backend unavailable (%s: %s); encoding with torch instead",
                            type(exc).__name__,
                            exc,
                        )
                        self._fallback = SentenceTransformerEmbedder(self._source)
        return self._loaded

    def _graph_folder(self) -> Path:
        if self._folder is None and self._source is None and self.quantize:
            shipped = _bundled_int8()
            if shipped is not None:
                return shipped
        return export_onnx(self._source, self._folder, quantize=self.quantize)

    def _open(self) -> tuple[InferenceSession, Tokenizer, dict[str, Any]]:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError:
            msg = "OnnxEmbedder needs onnxruntime, tokenizers: pip install onnxruntime tokenizers"
            raise MissingDependencyError(msg, name="onnxruntime") from None
        folder = self._graph_folder()
        settings = json.loads((folder / _SETTINGS).read_text(encoding="utf-8"))
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.no_padding()  # we pad per batch ourselves
        tokenizer.enable_truncation(max_length=int(settings["max_seq_length"]))
        options = ort.SessionOptions()
        if self.quantize:  # one thread a run; `run_each` runs several at once
            options.intra_op_num_threads = 1
        elif self._threads is not None:
            options.intra_op_num_threads = self._threads
        options.log_severity_level = 3
        graph = folder / (_INT8 if self.quantize else "model.onnx")
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        return session, tokenizer, settings

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Return shape (len(texts), d) float32 with unit rows."""
        loaded = self._load()
        if loaded is None:
            assert self._fallback is not None
            return self._fallback.encode(texts)
        session, tokenizer, settings = loaded
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        # sentence-transformers strips (and lowercases, if configured) before tokenising
        # (lone surrogates become U+FFFD: the Rust tokenizer raises TypeError on them)
        prepared = [clean_text(str(t)).strip() for t in texts]
        if settings["lowercase"]:
            prepared = [t.lower() for t in prepared]
        encodings = [e.ids for e in tokenizer.encode_batch(prepared)]
        if self.quantize:
            self._encode_alone(session, encodings, settings["pooling"], out)
        else:
            self._encode_batches(session, encodings, settings, out)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def _encode_alone(
        self, session: InferenceSession, encodings: list[list[int]], pooling: str, out: FloatMatrix
    ) -> None:
        """One text per run (int8 scales activations per run), a few runs at once."""
        # longest first, so the last text to finish is a short one
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i]))

        def run(k: int) -> None:
            i = order[k]
            ids = np.array([encodings[i]], dtype=np.int64)
            mask = np.ones_like(ids)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            out[i] = _pool(hidden, mask, pooling)[0]

        run_each(run, len(order), self._runs_at_once)

    def _encode_batches(
        self,
        session: InferenceSession,
        encodings: list[list[int]],
        settings: dict[str, Any],
        out: FloatMatrix,
    ) -> None:
        """fp32: `batch_size` texts per run, sorted by length so padding stays small."""
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(encodings[i]) for i in rows)
            ids = np.full((len(rows), width), settings["pad_token_id"], dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i])
                ids[r, :n] = encodings[i]
                mask[r, :n] = 1
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            out[rows] = _pool(hidden, mask, settings["pooling"])

    @property
    def dimension(self) -> int:
        """Embedding width d."""
        loaded = self._load()
        if loaded is None:
            assert self._fallback is not None
            return self._fallback.dimension
        return int(loaded[2]["dimension"])

    @property
    def backend(self) -> str:
        """What encodes: "onnx", "onnx-int8", or "torch" after a fallback (loads the model)."""
        if self._load() is None:
            return "torch"
        return "onnx-int8" if self.quantize else "onnx"

    def __repr__(self) -> str:
        q = ", quantize=True" if self.quantize else ""
        return f"OnnxEmbedder({self._source or DEFAULT_MODEL!r}{q})"


def _pool(hidden: Any, mask: Any, mode: str) -> FloatMatrix:
    m = mask[..., None].astype(np.float32)
    if mode == "cls":
        pooled = hidden[:, 0]
    elif mode == "max":
        pooled = np.where(m > 0, hidden, -1e9).max(axis=1)
    else:
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return np.asarray(pooled, dtype=np.float32)
