"""Cost at the input-size policy's caps: time, peak memory and result JSON size.

Each size runs in a fresh process (peak RSS is per process). Synthetic prose: sentences of 8-20
words from a 2,000-word vocabulary; a third of the answer's sentences are copied from the
sources. "cpu" is the process's CPU time (all threads): on a shared machine it is steadier than
the wall time. With --hashing the embedder is `rag_attrib.testing.HashingEmbedder`: what is
left is the engine's own cost (splitting, matrices, verdicts, JSON), up to the caps.

    python benchmarks/limits.py              # the bundled model (int8 ONNX), small sizes
    python benchmarks/limits.py --hashing    # the engine alone, up to the caps
    python benchmarks/limits.py 5000 50000 [--hashing]   # one size: answer chars, source chars
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import time


def prose(chars: int, rng: random.Random, pool: list[str] | None = None) -> str:
    words = [f"w{k}" for k in range(2000)]
    out: list[str] = []
    size = 0
    while size < chars:
        if pool and rng.random() < 1 / 3:
            sentence = rng.choice(pool)
        else:
            sentence = " ".join(rng.choices(words, k=rng.randint(8, 20))).capitalize() + "."
        out.append(sentence)
        size += len(sentence) + 1
    return " ".join(out)[:chars]


def one(answer_chars: int, source_chars: int, hashing: bool) -> None:
    from rag_attrib import Attributor
    from rag_attrib.testing import HashingEmbedder

    rng = random.Random(0)
    chunks = [prose(2000, rng) for _ in range(max(1, source_chars // 2000))]
    pool = [s + "." for c in chunks[:50] for s in c.split(". ")]
    answer = prose(answer_chars, rng, pool)
    attributor = Attributor(HashingEmbedder() if hashing else None)
    attributor.attribute("Warm up.", ["The model loads here."])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu = time.perf_counter(), time.process_time()
    result = attributor.attribute(answer, chunks)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = len(json.dumps(result.to_dict(), ensure_ascii=False))
    n = sum(len(s.sentences) for s in result.sources)
    print(
        f"answer {answer_chars:>7,} chars ({len(result.answer_sentences):>4} sentences)  "
        f"sources {source_chars:>9,} chars ({n:>5} sentences)  wall {seconds:6.1f} s  "
        f"cpu {cpu:6.1f} s  peak RSS {peak:5.0f} MB (before: {base:.0f} MB)  "
        f"JSON {size / 1e6:5.1f} MB"
    )


def main() -> None:
    hashing = "--hashing" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--hashing"]
    if len(args) == 2:
        one(int(args[0]), int(args[1]), hashing)
        return
    print("embedder:", "HashingEmbedder (engine cost only)" if hashing else "bundled model, int8")
    sizes = [(5_000, 50_000), (20_000, 200_000)]
    if hashing:
        sizes += [(50_000, 1_000_000)]
    for answer, source in sizes:
        flag = ["--hashing"] if hashing else []
        subprocess.run([sys.executable, __file__, str(answer), str(source), *flag], check=True)


if __name__ == "__main__":
    main()
