"""Export the fine-tuned cross-encoder (best.pt) to ONNX, fp32 and int8, and score pairs with it.

    python -m training.verifier.export            # -> training/verifier/cache/onnx/

The int8 graph quantises activations dynamically, from the whole input tensor: `score` runs each
(claim, evidence) pair alone (batch of one, no padding), so a pair's score never depends on what
else is scored with it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

CACHE = Path(__file__).with_name("cache")
OUT = CACHE / "onnx"


def export(out: Path = OUT) -> Path:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoTokenizer

    from rag_attrib.embedders import default_model_path
    from training.verifier.train import MAX_LENGTH, CrossEncoder

    path = default_model_path()
    model = CrossEncoder(path)
    model.load_state_dict(torch.load(CACHE / "best.pt", map_location="cpu"))
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    ids = torch.ones((1, 16), dtype=torch.long)
    with torch.inference_mode():
        torch.onnx.export(
            model,
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(out / "model.onnx"),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["logit"],
            dynamic_axes={
                n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask", "token_type_ids")
            },
            opset_version=17,
            dynamo=False,
        )
    quantize_dynamic(
        str(out / "model.onnx"),
        str(out / "model.int8.onnx"),
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    AutoTokenizer.from_pretrained(path).backend_tokenizer.save(str(out / "tokenizer.json"))
    (out / "settings.json").write_text(json.dumps({"max_length": MAX_LENGTH}))
    return out


class CrossEncoderScorer:
    """P(supported) for (claim, evidence) pairs with the exported graph, one pair per run."""

    def __init__(self, folder: Path = OUT, int8: bool = True, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        settings = json.loads((folder / "settings.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(
            max_length=int(settings["max_length"]), strategy="longest_first"
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        graph = folder / ("model.int8.onnx" if int8 else "model.onnx")
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        out = np.zeros(len(pairs), dtype=np.float32)
        for k, (claim, evidence) in enumerate(pairs):
            enc: Any = self.tokenizer.encode(claim, evidence)
            feed = {
                "input_ids": np.array([enc.ids], dtype=np.int64),
                "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
                "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
            }
            logit = float(self.session.run(None, feed)[0][0])
            out[k] = 1.0 / (1.0 + np.exp(-logit))
        return out


if __name__ == "__main__":
    print(export())
