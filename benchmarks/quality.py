"""Attribution quality on the human-annotated sets in ../shared/evaldata. Prints; never asserts.

    .venv/bin/python benchmarks/quality.py                 # subsets, < 15 min on 2 cores
    .venv/bin/python benchmarks/quality.py --full          # every record
    .venv/bin/python benchmarks/quality.py --sets wice begin --methods bm25 default

Per set, the metrics its gold supports, for each method side by side:
  sentAUC  mean ROC-AUC of one answer sentence's scores over all source sentences of the record
  P@gold   precision of the top-|gold| source sentences (R-precision)
  citeF1   F1 of the answer sentence's citations against its gold sentences (0 when a sentence
           with gold support cites none; an unsupported sentence's closest sources, which do
           not back it, are not citations)
  chunk    accuracy of the top-scored chunk against the gold chunks
  label    ROC-AUC of the support score against the human supported/unsupported label
           (ExpertQA: each claim's verdict against only the sources it cites; an issue such as
           a missing figure ranks it below every clean claim)
  aggAUC   ROC-AUC of the aggregated per-source-sentence scores against the record's gold union
           (the summary view: which input sentences the whole answer used)
"""

from __future__ import annotations

import argparse
import pickle
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _evaldata import Case, GoldSplitter, cases, rule_flag

from rag_attrib import AttributionConfig, Attributor, CachedEmbedder, Span
from rag_attrib.embedders import Embedder, SentenceTransformerEmbedder, default_embedder
from rag_attrib.onnx_backend import OnnxEmbedder, onnx_available
from rag_attrib.rerankers import CrossEncoderReranker, Reranker

SETS = [
    "hotpotqa",
    "musique",
    "wice",
    "quotesum",
    "poc_cnndm",
    "superpal_multinews",
    "expertqa",
    "begin",
]
SUBSET = {
    "hotpotqa": 150,
    "musique": 100,
    "wice": 150,
    "quotesum": 150,
    "poc_cnndm": 200,
    "superpal_multinews": None,
    "expertqa": 120,
    "begin": 600,
}
LABEL_POS = {"begin": {"Fully attributable"}, "expertqa": {"Complete"}}
LABEL_NEG = {"begin": {"Not fully attributable"}, "expertqa": {"Missing", "Incomplete"}}

DEFAULT = AttributionConfig()
# the seed article's recipe: plain cosine, mean aggregation, nothing else
SEED = AttributionConfig(
    lexical_weight=0.0,
    context_weight=0.0,
    aggregation="mean",
    use_question=False,
    check_numbers=False,
    check_claims=False,
)


@dataclass
class Scores:
    strength: np.ndarray  # answer sentences x units (all sources, in order)
    support: np.ndarray  # per answer sentence (the label score)
    aggregated: np.ndarray | None  # per unit, over the whole answer
    flagged: np.ndarray | None = None  # per answer sentence: an explicit issue (missing figure)
    # per answer sentence, the verdict against only the sources it cites (NaN: cites none)
    cited: np.ndarray | None = None
    citations: list[list[int]] | None = None  # per answer sentence: the cited units, best first


Method = Callable[[Case], Scores]


def auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    if len(pos) == 0 or len(neg) == 0:
        return None
    pos = np.asarray(pos, dtype=np.float64)[:, None]
    neg = np.asarray(neg, dtype=np.float64)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


_WORD = re.compile(r"\w+")


def bm25_method(case: Case) -> Scores:
    from rank_bm25 import BM25Okapi

    units = [sp.text for spans in case.units for sp in spans]
    claims = [c.text for c in case.claims]
    if not units:
        return Scores(np.zeros((len(claims), 0)), np.zeros(len(claims)), None)
    bm25 = BM25Okapi([_WORD.findall(u.lower()) or ["_"] for u in units])
    strength = np.array([bm25.get_scores(_WORD.findall(c.lower())) for c in claims])
    return Scores(strength, strength.max(axis=1), None)


def engine_method(
    embedder: CachedEmbedder, config: AttributionConfig, reranker: Reranker | None = None
) -> Method:
    def run(case: Case) -> Scores:
        attributor = Attributor(
            embedder, config=config, splitter=case.splitter(), reranker=reranker
        )
        result = attributor.attribute(case.answer, case.sources)
        aggregated = np.array([x.score for s in result.sources for x in s.sentences])
        support = np.array([a.support for a in result.answer_sentences])
        flagged = np.array([rule_flag(a) > 0 for a in result.answer_sentences])
        cited = _cited_verdicts(attributor, case) if case.dataset == "expertqa" else None
        offsets = np.cumsum([0, *(len(s.sentences) for s in result.sources)])
        citations = [
            [int(offsets[c.source_index]) + c.sentence_index for c in a.citations]
            if a.supported
            else []
            for a in result.answer_sentences
        ]
        return Scores(result.similarity, support, aggregated, flagged, cited, citations)

    return run


def _cited_verdicts(attributor: Attributor, case: Case) -> np.ndarray:
    """Each claim attributed to only the sources it cites, as a user checking those citations
    would call it: its support, less 1 when an issue (a missing figure) makes it unsupported."""
    out = np.full(len(case.claims), np.nan)
    table = case.splitter().table
    for i, (span, claim) in enumerate(zip(case.claims, case.raw["answer_sentences"], strict=True)):
        cited = set(claim.get("cited_source_ids") or [])
        sources = [s for s in case.sources if s.id in cited]
        if not sources:
            continue
        whole = {span.text: [Span(span.text, 0, len(span.text))]}  # the claim is one sentence
        one = Attributor(
            attributor.embedder,
            config=attributor.config,
            splitter=GoldSplitter(table | whole),
            reranker=attributor.reranker,
        )
        (verdict,) = one.attribute(span.text, sources).answer_sentences
        out[i] = verdict.support - rule_flag(verdict)
    return out


@dataclass
class Tally:
    sent_auc: list[float]
    p_at_gold: list[float]
    chunk_hits: list[float]
    agg_auc: list[float]
    label_pos: list[float]
    label_neg: list[float]
    cite_f1: list[float]
    seconds: float = 0.0
    records: int = 0

    @classmethod
    def new(cls) -> Tally:
        return cls([], [], [], [], [], [], [])


def evaluate(case: Case, scores: Scores, tally: Tally) -> None:
    unit_ids = [uid for ids in case.unit_ids for uid in ids]
    owner = [c for c, ids in enumerate(case.unit_ids) for _ in ids]
    source_ids = [s.id for s in case.sources]
    n = len(unit_ids)
    for i, claim in enumerate(case.raw["answer_sentences"]):
        if i >= scores.strength.shape[0]:
            break
        row = scores.strength[i] if n else np.zeros(0)
        gold = set(claim.get("gold_sentence_ids") or [])
        if gold and n:
            is_gold = np.array([u in gold for u in unit_ids])
            value = auc(row[is_gold], row[~is_gold])
            if value is not None:
                tally.sent_auc.append(value)
                top = np.argsort(-row, kind="stable")[: len(gold)]
                tally.p_at_gold.append(float(is_gold[top].sum()) / len(gold))
            if scores.citations is not None:
                hits = sum(is_gold[j] for j in scores.citations[i])
                # a sentence citing nothing (unsupported) with gold support scores 0
                tally.cite_f1.append(2.0 * hits / (len(scores.citations[i]) + int(is_gold.sum())))
        gold_src = set(claim.get("gold_source_ids") or [])
        if gold_src and n and len(case.sources) > 1 and case.dataset != "expertqa":
            best = np.full(len(case.sources), -np.inf)
            np.maximum.at(best, owner, row)
            tally.chunk_hits.append(float(source_ids[int(np.argmax(best))] in gold_src))
        label = claim.get("label")
        if case.dataset in LABEL_POS and label:
            if case.dataset == "expertqa" and scores.cited is not None:
                if np.isnan(scores.cited[i]):
                    continue
                value_ = float(scores.cited[i])
            else:
                if case.dataset == "expertqa":
                    cited = set(claim.get("cited_source_ids") or [])
                    mask = np.array([source_ids[c] in cited for c in owner], dtype=bool)
                    if not cited or not mask.any():
                        continue
                    value_ = float(row[mask].max())
                else:
                    value_ = float(scores.support[i]) if n else 0.0
                if scores.flagged is not None and scores.flagged[i]:
                    value_ -= 1.0  # an explicit issue ranks below every clean sentence
            if label in LABEL_POS[case.dataset]:
                tally.label_pos.append(value_)
            elif label in LABEL_NEG[case.dataset]:
                tally.label_neg.append(value_)
    union = set(case.raw["gold"].get("sentence_ids") or [])
    if scores.aggregated is not None and union and n and len(case.claims) > 1:
        is_gold = np.array([u in union for u in unit_ids])
        value = auc(scores.aggregated[is_gold], scores.aggregated[~is_gold])
        if value is not None:
            tally.agg_auc.append(value)


def _cached(base: Embedder, stored: dict[tuple[str, bytes], np.ndarray]) -> CachedEmbedder:
    """`base` behind a cache pre-filled with the stored vectors of its own model id."""
    embedder = CachedEmbedder(base, maxsize=5_000_000)
    embedder._cache.update((k, v) for k, v in stored.items() if k[0] == embedder.model_id)
    return embedder


def _fmt(values: list[float]) -> str:
    return f"{np.mean(values):.3f}" if values else "  -  "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="every record (slow)")
    parser.add_argument("--sets", nargs="*", default=SETS, choices=SETS)
    parser.add_argument("--methods", nargs="*", default=None, help="subset of method names")
    parser.add_argument(
        "--limit", type=int, default=None, help="records per set (overrides subsets)"
    )
    parser.add_argument("--options", action="store_true", help="also rows for the main options")
    parser.add_argument(
        "--model", default=None, help="sentence-transformers model (default: bundled MiniLM)"
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="keep embeddings in this file between runs"
    )
    parser.add_argument(
        "--backend",
        choices=["default", "st", "onnx-fp32", "onnx-int8", "static"],
        default="default",
        help="default: rag_attrib's default encoder (MiniLM int8 on ONNX Runtime when "
        "installed); st: sentence-transformers/torch (--model); onnx-fp32 / onnx-int8: the "
        "ONNX graphs; static: rag_attrib.backends.StaticEmbedder. The seed row always uses "
        "the fp32 vectors, as the seed article does",
    )
    parser.add_argument(
        "--static-path", default=None, help="static model folder (default: the cache folder)"
    )
    parser.add_argument(
        "--reranker",
        default=None,
        help="with --options, a cross-encoder row: a local model folder or name that "
        "sentence-transformers' CrossEncoder loads (e.g. BAAI/bge-reranker-v2-m3)",
    )
    parser.add_argument(
        "--reranker-threshold",
        type=float,
        default=0.5,
        help="support_threshold for the cross-encoder row (its scores are probabilities)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (1 helps on a busy machine)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    if args.backend == "static":
        from rag_attrib.backends import StaticEmbedder

        base: Embedder = StaticEmbedder(args.static_path)
    elif args.backend in ("onnx-fp32", "onnx-int8"):
        base = OnnxEmbedder(args.model, quantize=args.backend == "onnx-int8")
    elif args.backend == "default" and args.model is None:
        base = default_embedder()
    else:
        base = SentenceTransformerEmbedder(args.model)
    # The seed recipe as written encodes with sentence-transformers (fp32); the fp32 ONNX graph
    # gives those vectors faster. Its row keeps them whatever --backend the others use.
    seed_base: Embedder = (
        OnnxEmbedder(args.model, fallback=True)
        if args.backend != "st" and onnx_available()
        else SentenceTransformerEmbedder(args.model)
    )
    stored: dict[tuple[str, bytes], np.ndarray] = {}
    if args.cache and args.cache.exists():
        with args.cache.open("rb") as f:
            stored = pickle.load(f)  # benchmark-only shortcut for re-runs
    embedder, seed_embedder = (_cached(b, stored) for b in (base, seed_base))
    methods: dict[str, Method] = {
        "bm25": bm25_method,
        "cosine (seed)": engine_method(seed_embedder, SEED),
        "rag_attrib default": engine_method(embedder, DEFAULT),
        # the trained verifier: the ranking is the same, the verdict (so what is cited) is not
        "  verdict=verifier": engine_method(embedder, replace(DEFAULT, verdict="verifier")),
    }
    if args.options:
        methods.update(
            {
                "  agg=mean": engine_method(embedder, replace(DEFAULT, aggregation="mean")),
                "  agg=weighted": engine_method(embedder, replace(DEFAULT, aggregation="weighted")),
                "  window=2": engine_method(embedder, replace(DEFAULT, window=2)),
                "  window=3": engine_method(embedder, replace(DEFAULT, window=3)),
                "  context=0": engine_method(embedder, replace(DEFAULT, context_weight=0.0)),
                **(
                    {
                        "  cross-encoder": engine_method(
                            embedder,
                            replace(DEFAULT, support_threshold=args.reranker_threshold),
                            CrossEncoderReranker(args.reranker, local_files_only=True),
                        )
                    }
                    if args.reranker
                    else {}
                ),
                "  lexical=0 (cosine)": engine_method(
                    embedder, replace(DEFAULT, lexical_weight=0.0)
                ),
                "  lexical=1 (overlap)": engine_method(
                    embedder, replace(DEFAULT, lexical_weight=1.0)
                ),
            }
        )
    if args.methods:
        methods = {k: v for k, v in methods.items() if any(m in k for m in args.methods)}

    header = f"{'set':<19}{'method':<24}{'n':>6}{'sentAUC':>9}{'P@gold':>8}{'citeF1':>8}{'chunk':>7}{'label':>7}{'aggAUC':>8}{'ms/rec':>8}"
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    for name in args.sets:
        limit = args.limit if args.limit is not None else (None if args.full else SUBSET[name])
        data = list(cases(name, limit))
        for label, method in methods.items():
            tally = Tally.new()
            t = time.perf_counter()
            for case in data:
                evaluate(case, method(case), tally)
            tally.seconds = time.perf_counter() - t
            label_auc = auc(np.array(tally.label_pos), np.array(tally.label_neg))
            print(
                f"{name:<19}{label:<24}{len(data):>6}{_fmt(tally.sent_auc):>9}{_fmt(tally.p_at_gold):>8}{_fmt(tally.cite_f1):>8}"
                f"{_fmt(tally.chunk_hits):>7}{(f'{label_auc:.3f}' if label_auc is not None else '  -  '):>7}"
                f"{_fmt(tally.agg_auc):>8}{1000 * tally.seconds / max(1, len(data)):>8.1f}",
                flush=True,
            )
        if args.cache:  # after each set, so an interrupted run keeps what it encoded
            with args.cache.open("wb") as f:
                pickle.dump({**stored, **embedder._cache, **seed_embedder._cache}, f)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; default config: {DEFAULT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
