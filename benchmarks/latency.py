"""Latency of attribution on standard workloads. Prints medians and p95; never asserts.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/latency.py [--runs 20] [--skip-memory]

Workloads
  A  5 chunks x 8 sentences, a 4-sentence answer (a typical RAG answer)
  B  a 300-sentence document, a 6-sentence summary
  C  an LCEL chain (retriever | prompt | fake chat model) with the callback handler, end to end
  D  streaming: workload A's shape, the answer streamed token by token by a fake LLM; the time
     from the last answer token to the attribution of the whole answer, for the LangChain
     `with_attribution(...).stream()` path and a plain `AttributionStream`, next to attributing
     the finished answer in one go (fresh sources every run, as after a new retrieval)
  E  a new process: a fresh interpreter (empty cache folder, offline) that imports rag_attrib,
     builds `Attributor()` and attributes workload A once, timed from outside (start to exit)
     and inside (from before the import to the result), beside `python -c pass`

For each: cold (empty embedding cache) and warm (the same sources seen before, a new answer),
with the default verdict ("similarity") and, warm, with verdict="verifier" (the trained
verifier), next to references measured in the same run:
  seed    the seed article's recipe as written: encode both sides, a Python double loop of
          cosines, mean aggregation
  floor   one batched encode of exactly the sentences that must be encoded (cold: all unique
          sentences; warm: the answer sentences), with the encoder rag_attrib uses
  torch   the same floor with the bundled model on sentence-transformers (torch): rag_attrib's
          default encoder is the same model, int8, on ONNX Runtime; see --encoder
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np

from rag_attrib import AttributionConfig, Attributor, Source, split_sentences
from rag_attrib.embedders import Embedder, SentenceTransformerEmbedder, default_embedder
from rag_attrib.onnx_backend import OnnxEmbedder
from rag_attrib.streaming import AttributionStream

WORDS = (
    "river bank loan city museum history engine protein market court judge bridge tower "
    "storm coast harbour forest station energy policy vaccine trial orbit satellite treaty "
    "election border culture festival library archive bakery fire winter summer"
).split()


def sentence(rng: random.Random, n: int = 14) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return f"The {' '.join(words)} in {rng.randint(1800, 2024)}."


def workload_a(rng: random.Random) -> tuple[list[Source], Callable[[int], str]]:
    chunks = [Source(f"c{c}", " ".join(sentence(rng) for _ in range(8))) for c in range(5)]
    return chunks, lambda k: " ".join(sentence(random.Random(k * 7919 + i)) for i in range(4))


def workload_b(rng: random.Random) -> tuple[list[Source], Callable[[int], str]]:
    doc = [Source("doc", " ".join(sentence(rng) for _ in range(300)))]
    return doc, lambda k: " ".join(sentence(random.Random(k * 104729 + i)) for i in range(6))


def seed_recipe(model: object, answer: str, sources: list[Source]) -> list[float]:
    """The seed article's code, kept as written (split, encode each side, double loop, mean)."""
    text = " ".join(s.text for s in sources)
    input_sentences = [s.text for s in split_sentences(text)]
    summary_sentences = [s.text for s in split_sentences(answer)]
    input_embeddings = model.encode(input_sentences)  # type: ignore[attr-defined]
    summary_embeddings = model.encode(summary_sentences)  # type: ignore[attr-defined]
    similarity_matrix = np.zeros((len(summary_sentences), len(input_sentences)))
    for i, sum_emb in enumerate(summary_embeddings):
        for j, inp_emb in enumerate(input_embeddings):
            similarity_matrix[i, j] = np.dot(sum_emb, inp_emb) / (
                np.linalg.norm(sum_emb) * np.linalg.norm(inp_emb)
            )
    return list(np.mean(similarity_matrix, axis=0))


def interleaved(fns: dict[str, Callable[[int], object]], runs: int) -> dict[str, list[float]]:
    """Time each function once per round, round after round, so drift on a shared machine
    (other tenants, clock changes) hits every row alike and the ratios stay honest."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    for k in range(runs):
        for name, fn in fns.items():
            gc.collect()
            t = time.perf_counter()
            fn(k)
            out[name].append((time.perf_counter() - t) * 1000)
    return out


def p50_p95(ms: list[float]) -> tuple[float, float]:
    ordered = sorted(ms)
    return statistics.median(ordered), ordered[
        min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))
    ]


def report(name: str, rows: dict[str, list[float]]) -> None:
    print(f"\n{name}")
    print(f"  {'':<34}{'p50 ms':>9}{'p95 ms':>9}")
    for label, ms in rows.items():
        p50, p95 = p50_p95(ms)
        print(f"  {label:<34}{p50:>9.1f}{p95:>9.1f}")


def encoder_floors(
    base: Embedder,
    sources: list[Source],
    cold_answer: Callable[[int], str],
    warm_answer: Callable[[int], str],
) -> tuple[Callable[[int], object], Callable[[int], object]]:
    """The floors: cold encodes the answer's and every unique source sentence, warm the
    answer's alone."""
    unique_sources = sorted({s.text for src in sources for s in split_sentences(src.text)})

    def sentences(answer: str) -> list[str]:
        return [s.text for s in split_sentences(answer)]

    return (
        lambda k: base.encode([*sentences(cold_answer(k)), *unique_sources]),
        lambda k: base.encode(sentences(warm_answer(k))),
    )


def engine_rows(
    base: Embedder,
    torch_base: SentenceTransformerEmbedder,
    sources: list[Source],
    answer_of: Callable[[int], str],
    runs: int,
) -> dict[str, list[float]]:
    model = torch_base.model
    floor_cold, floor_warm = encoder_floors(base, sources, answer_of, lambda k: answer_of(1000 + k))

    def cold(k: int) -> None:
        Attributor(base).attribute(answer_of(k), sources)  # a fresh cache each call

    warm_attributor = Attributor(base)
    warm_attributor.attribute(answer_of(-1), sources)

    def warm(k: int) -> None:
        warm_attributor.attribute(answer_of(1000 + k), sources)

    checked = Attributor(base, config=AttributionConfig(verdict="verifier"))
    checked.attribute(answer_of(-1), sources)

    def warm_verifier(k: int) -> None:
        checked.attribute(answer_of(1000 + k), sources)

    def torch_warm(k: int) -> None:
        torch_base.encode([s.text for s in split_sentences(answer_of(2000 + k))])

    return interleaved(
        {
            "rag_attrib cold": cold,
            "encoder floor, cold": floor_cold,
            "rag_attrib warm": warm,
            "rag_attrib warm, verdict=verifier": warm_verifier,
            "encoder floor, warm": floor_warm,
            "torch encoder floor, warm": torch_warm,
            "seed recipe (as written)": lambda k: seed_recipe(model, answer_of(k), sources),
        },
        runs,
    )


def ratios(rows: dict[str, list[float]]) -> None:
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(
        f"  cold / floor: {med['rag_attrib cold'] / med['encoder floor, cold']:.2f}x   "
        f"warm / floor: {med['rag_attrib warm'] / med['encoder floor, warm']:.2f}x   "
        f"seed / warm: {med['seed recipe (as written)'] / med['rag_attrib warm']:.1f}x faster"
    )


def chain_ratios(rows: dict[str, list[float]]) -> None:
    med = {k: statistics.median(v) for k, v in rows.items()}
    cold = med["chain with handler, cold"] - med["chain without attribution"]
    warm = med["chain with handler, warm"] - med["chain without attribution"]
    print(
        f"  added by attribution: cold {cold:.1f} ms "
        f"({cold / med['encoder floor, cold']:.2f}x floor), "
        f"warm {warm:.1f} ms ({warm / med['encoder floor, warm']:.2f}x floor); "
        f"seed / warm chain: "
        f"{med['chain + seed recipe (as written)'] / med['chain with handler, warm']:.1f}x"
    )


def chain_rows(
    base: Embedder, torch_base: SentenceTransformerEmbedder, runs: int
) -> dict[str, list[float]] | None:
    try:
        from langchain_core.documents import Document
        from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
        from langchain_core.messages import AIMessage
        from langchain_core.prompts import ChatPromptTemplate
        from langchain_core.retrievers import BaseRetriever

        from rag_attrib.integrations.langchain import AttributionCallbackHandler
    except ImportError as exc:
        print(f"\nC  skipped: {exc}")
        return None
    rng = random.Random(3)
    docs = [
        Document(page_content=" ".join(sentence(rng) for _ in range(8)), id=f"d{i}")
        for i in range(5)
    ]
    sources = [Source(str(d.id), d.page_content) for d in docs]

    class FixedRetriever(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: object) -> list[Document]:
            return docs

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Context:\n{context}"), ("human", "{question}")]
    )
    answers = [" ".join(sentence(random.Random(k * 31 + i)) for i in range(4)) for k in range(runs)]
    warm_handler = AttributionCallbackHandler(Attributor(base))

    def make_chain(
        handler_of: Callable[[], AttributionCallbackHandler] | None,
    ) -> Callable[[int], object]:
        # call k answers answers[k]: each chain replays its own copy, one message per call
        llm = GenericFakeChatModel(messages=iter([AIMessage(a) for a in answers]))
        chain = {"context": FixedRetriever(), "question": lambda q: q} | prompt | llm

        def call(k: int) -> object:
            config = {"callbacks": [handler_of()]} if handler_of else {}
            return chain.invoke(f"question {k}", config=config)

        return call

    model = torch_base.model
    plain = make_chain(None)

    def with_seed(k: int) -> None:
        plain(k)
        seed_recipe(model, answers[k], sources)

    floor_cold, floor_warm = encoder_floors(base, sources, answers.__getitem__, answers.__getitem__)
    Attributor(base).attribute(answers[0], sources)  # code paths warm, caches untouched
    warm_handler.attributor.prewarm(sources)  # warm: the documents were retrieved before
    return interleaved(
        {
            "chain without attribution": make_chain(None),
            "chain with handler, cold": make_chain(
                lambda: AttributionCallbackHandler(Attributor(base))  # a fresh cache each call
            ),
            "chain with handler, warm": make_chain(lambda: warm_handler),
            "encoder floor, cold": floor_cold,
            "encoder floor, warm": floor_warm,
            "chain + seed recipe (as written)": with_seed,
        },
        runs,
    )


def answer_tokens(answer: str) -> list[str]:
    """The answer as an LLM streams it: one word (with its trailing space) per token."""
    return re.findall(r"\S+\s*", answer)


def streaming_rows(base: Embedder, runs: int, token_ms: float) -> dict[str, list[float]] | None:
    try:
        from langchain_core.callbacks import CallbackManagerForLLMRun
        from langchain_core.documents import Document
        from langchain_core.language_models import BaseChatModel
        from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
        from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
        from langchain_core.prompts import ChatPromptTemplate
        from langchain_core.retrievers import BaseRetriever

        from rag_attrib.integrations.langchain import with_attribution
    except ImportError as exc:
        print(f"\nD  skipped: {exc}")
        return None

    # Every run gets new chunks and a new answer: nothing is in the cache when it starts.
    chunks_of: dict[str, list[Source]] = {}
    answer_of: dict[str, str] = {}
    for k in range(-2, 3 * runs):
        chunks_of[f"question {k}"], make = workload_a(random.Random(10_000 + k))
        answer_of[f"question {k}"] = make(10_000 + k)

    class RunRetriever(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: object) -> list[Document]:
            return [Document(page_content=s.text, id=s.id) for s in chunks_of[query]]

    class TokenStreamChatModel(BaseChatModel):
        """Streams the question's answer one word per token, `pause` seconds apart."""

        pause: float = 0.0

        @property
        def _llm_type(self) -> str:
            return "token-stream"

        def _answer(self, messages: list[BaseMessage]) -> str:
            return answer_of[str(messages[-1].content)]

        def _generate(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: object,
        ) -> ChatResult:
            return ChatResult(
                generations=[ChatGeneration(message=AIMessage(self._answer(messages)))]
            )

        def _stream(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: object,
        ) -> Iterator[ChatGenerationChunk]:
            for token in answer_tokens(self._answer(messages)):
                time.sleep(self.pause)
                yield ChatGenerationChunk(message=AIMessageChunk(content=token))

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Context:\n{context}"), ("human", "{question}")]
    )
    attributor = Attributor(base)

    def chain_latency(pause: float, first: int, count: int = runs) -> list[float]:
        """From receiving the last text chunk to receiving the attribution chunk."""
        llm = TokenStreamChatModel(pause=pause)
        chain = {"context": RunRetriever(), "question": lambda q: q} | prompt | llm
        cited = with_attribution(chain, attributor)
        out = []
        for k in range(first, first + count):
            gc.collect()
            last_text = 0.0
            for chunk in cited.stream(f"question {k}"):
                now = time.perf_counter()
                if chunk.content:
                    last_text = now
                elif "attribution" in chunk.response_metadata:
                    out.append((now - last_text) * 1000)
                    if chunk.response_metadata["attribution"]["error"]:
                        print(f"  D: {chunk.response_metadata['attribution']['error']}")
        return out

    def plain_latency(pause: float) -> list[float]:
        out = []
        for k in range(runs):
            gc.collect()
            q = f"question {2 * runs + k}"
            stream = AttributionStream(attributor, chunks_of[q])  # opened at retrieval
            tokens = answer_tokens(answer_of[q])
            for token in tokens[:-1]:
                time.sleep(pause)
                stream.add(token)
            time.sleep(pause)
            t = time.perf_counter()
            stream.add(tokens[-1])
            stream.finish()
            out.append((time.perf_counter() - t) * 1000)
        return out

    def one_shot(warm_sources: bool) -> list[float]:
        out = []
        for k in range(runs):
            gc.collect()
            seed = 20_000 + k + (runs if warm_sources else 0)
            sources, make = workload_a(random.Random(seed))
            if warm_sources:
                attributor.prewarm(sources)
            t = time.perf_counter()
            attributor.attribute(make(seed), sources)
            out.append((time.perf_counter() - t) * 1000)
        return out

    chain_latency(token_ms / 1000, -2, 2)  # warm up the chain's code paths
    return {
        "attribute() whole answer, cold": one_shot(False),
        "attribute() whole answer, warm srcs": one_shot(True),
        f"AttributionStream, {token_ms:g} ms/token": plain_latency(token_ms / 1000),
        f"with_attribution().stream, {token_ms:g} ms/tok": chain_latency(token_ms / 1000, 0),
        "with_attribution().stream, 0 ms/token": chain_latency(0.0, runs),
    }


NEW_PROCESS = """
import time
t = time.perf_counter()
import random, sys
sys.path.insert(0, {bench!r})
from latency import workload_a
from rag_attrib import Attributor
sources, answer_of = workload_a(random.Random(0))
Attributor().attribute(answer_of(1), sources)
print((time.perf_counter() - t) * 1000)
"""


def new_process_rows(runs: int) -> dict[str, list[float]]:
    """Whole processes, started one after another, each with an empty cache folder."""
    import os
    import tempfile

    code = NEW_PROCESS.format(bench=str(__file__.rsplit("/", 1)[0]))
    rows: dict[str, list[float]] = {
        "python -c pass": [],
        "Attributor() + first call, whole": [],
        "  of which import .. result": [],
    }
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "RAG_ATTRIB_CACHE": cache, "HF_HUB_OFFLINE": "1"}
            for label, argv in [("python -c pass", "pass"), ("whole", code)]:
                t = time.perf_counter()
                out = subprocess.run(
                    [sys.executable, "-c", argv], capture_output=True, text=True, env=env
                )
                ms = (time.perf_counter() - t) * 1000
                if out.returncode:
                    sys.exit(f"E failed: {out.stderr[-1000:]}")
                if label == "whole":
                    rows["Attributor() + first call, whole"].append(ms)
                    rows["  of which import .. result"].append(float(out.stdout.split()[-1]))
                else:
                    rows[label].append(ms)
    return rows


def memory_probe(n_sentences: int) -> None:
    code = f"""
import resource, random, sys
sys.path.insert(0, {str(__file__.rsplit("/", 1)[0])!r})
from latency import sentence
from rag_attrib import Attributor
a = Attributor()
a.attribute("Warm up the model.", ["Warm up."])
rng = random.Random(1)
doc = " ".join(sentence(rng) for _ in range({n_sentences}))
import gc; gc.collect()
before = int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize() / 2**20
r = a.attribute(" ".join(sentence(rng) for _ in range(6)), [doc])
# VmHWM, not ru_maxrss: ru_maxrss survives exec, so it would report this parent's size
peak = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024
print(f"{{r.similarity.shape}} rss before {{before:.0f}} MB, peak {{peak:.0f}} MB, growth {{peak - before:.0f}} MB, {{r.timings['total_ms']:.0f}} ms")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    print(f"\n10,000-sentence input: {out.stdout.strip() or out.stderr[-500:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--token-ms", type=float, default=10.0, help="D: pause between streamed tokens"
    )
    parser.add_argument(
        "--encoder",
        choices=["default", "torch", "onnx-fp32", "onnx-int8"],
        default="default",
        help="rag_attrib's encoder: the default, torch, or the fp32 / int8 ONNX graph",
    )
    args = parser.parse_args(argv)

    torch_base = SentenceTransformerEmbedder()
    t = time.perf_counter()
    encoders: dict[str, Callable[[], Embedder]] = {
        "default": default_embedder,
        "torch": lambda: torch_base,
        "onnx-fp32": lambda: OnnxEmbedder(),
        "onnx-int8": lambda: OnnxEmbedder(quantize=True),
    }
    base = encoders[args.encoder]()
    base.encode(["load the model"])
    load_ms = (time.perf_counter() - t) * 1000
    torch_base.encode(["load the model"])
    print(
        f"encoder: {base!r} ({getattr(base, 'backend', 'torch')}); load (first use): "
        f"{load_ms:.0f} ms; torch threads: {__import__('torch').get_num_threads()}; "
        f"runs per row: {args.runs}"
    )
    rng = random.Random(0)
    for name, make in [
        ("A  5 chunks x 8 sentences, 4-sentence answer", workload_a),
        ("B  300-sentence document, 6-sentence summary", workload_b),
    ]:
        sources, answer_of = make(rng)
        rows = engine_rows(base, torch_base, sources, answer_of, args.runs)
        report(name, rows)
        ratios(rows)
    rows_c = chain_rows(base, torch_base, args.runs)
    if rows_c:
        report("C  LCEL chain, fake LLM, callback handler", rows_c)
        chain_ratios(rows_c)
    rows_d = streaming_rows(base, args.runs, args.token_ms)
    if rows_d:
        report("D  streaming: last answer token -> whole-answer attribution", rows_d)
    report("E  a new process (empty cache, offline)", new_process_rows(max(5, args.runs // 2)))
    if not args.skip_memory:
        memory_probe(10_000)
    print(
        f"\nmax RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
