"""The bundled MiniLM next to the static (model2vec) backend distilled from it. Prints only.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/backends.py [--runs 20] [--static-path DIR]
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/backends.py --quality   # + quality.py rows

Per backend:
  build     one-time cost: MiniLM = load the bundled model; static = distil the table from the
            bundled MiniLM (skipped when --static-path already holds a model) + load it
  enc/s     encode throughput, sentences per second, 1,000 distinct sentences in one call
  A cold    median latency of Attributor(...).attribute on workload A (5 chunks x 8 sentences,
            a 4-sentence answer), a fresh embedding cache each run
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import sentence, workload_a

from rag_attrib import Attributor
from rag_attrib.backends import StaticEmbedder, distill_static_model
from rag_attrib.embedders import Embedder, SentenceTransformerEmbedder
from rag_attrib.onnx_backend import OnnxEmbedder


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(name: str, embedder: Embedder, build_s: float, runs: int) -> None:
    rng = random.Random(1)
    texts = [sentence(rng) for _ in range(1000)]
    embedder.encode(texts[:8])  # warm-up: first-call allocations are not throughput
    enc_s = statistics.median(timed(lambda: embedder.encode(texts)) for _ in range(3))
    sources, answer_of = workload_a(random.Random(0))
    Attributor(embedder).attribute(answer_of(-1), sources)
    lat = [
        timed(lambda k=k: Attributor(embedder).attribute(answer_of(k), sources))  # type: ignore[misc]
        for k in range(runs)
    ]
    lat.sort()
    p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
    print(
        f"{name:<28}{build_s:>10.1f}{1000 / enc_s:>12,.0f}"
        f"{1000 * statistics.median(lat):>12.1f}{1000 * p95:>10.1f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--static-path", type=Path, default=None, help="reuse this static model (else distil)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument(
        "--quality", action="store_true", help="also run quality.py on hotpotqa wice begin"
    )
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    print(f"{'backend':<28}{'build s':>10}{'enc/s':>12}{'A cold ms':>12}{'A p95':>10}")
    print("-" * 72)
    minilm = SentenceTransformerEmbedder()
    build = timed(lambda: minilm.encode(["warm up"]))
    measure("MiniLM (sentence-transf.)", minilm, build, args.runs)

    with tempfile.TemporaryDirectory() as tmp:
        for name, quantize in [("MiniLM ONNX fp32 (default)", False), ("MiniLM ONNX int8", True)]:
            onnx = OnnxEmbedder(folder=Path(tmp) / "onnx", quantize=quantize)
            build = timed(lambda onnx=onnx: onnx.encode(["warm up"]))  # type: ignore[misc]
            measure(name, onnx, build, args.runs)

        path = args.static_path or Path(tmp) / "static-minilm"
        build = 0.0
        if not (path / "model.safetensors").is_file():
            build = timed(lambda: distill_static_model(path))
        static = StaticEmbedder(path, build=False)
        build += timed(lambda: static.encode(["warm up"]))
        measure(f"static (model2vec, d={static.dimension})", static, build, args.runs)
        if args.quality:
            import quality

            sets = ["--sets", "hotpotqa", "wice", "begin", "--methods", "default"]
            for extra in (
                [],
                ["--backend", "onnx-int8"],
                ["--backend", "static", "--static-path", str(path)],
            ):
                print(f"\nquality.py {' '.join(extra) or '(MiniLM)'}")
                quality.main([*sets, *extra])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
