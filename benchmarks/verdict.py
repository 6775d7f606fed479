"""The verdict on the evaluation side of ../shared/evaldata: is each claim supported? Prints only.

    .venv/bin/python benchmarks/verdict.py               # 300 claims per set (wice 150)
    .venv/bin/python benchmarks/verdict.py --limit 0     # every claim

Sets (evaluation side only, as ../shared/evaldata/TRAINING.md defines it): faithbench,
factcheck_gpt, summedits eval groups (all domains), expertqa eval questions, begin test, wice
test. A claim is supported when every one of its sentences is; its score is its weakest
sentence's. As in the product, sentences that only talk to the reader ("yeah.", "I agree!":
`SentenceAttribution.claim` False) are left out; a claim with nothing else is supported. Labels: wice "supported" (partial counts as not), begin "Fully attributable" vs
"Not fully", expertqa "Complete" vs "Missing"/"Incomplete", factcheck_gpt "completely supports".

Per set and method:
  BAcc   balanced accuracy of the method's own verdict at its default threshold
  BAcc*  the best balanced accuracy any threshold reaches on this very sample (an oracle bound,
         the only fair figure for the baselines, which have no default threshold)
  AUC    ROC-AUC of the score against the label
  ms     milliseconds per claim, embeddings already cached (every method but overlap reads the
         same vectors; the encoder's own cost is the same for all and is left out)

Methods: overlap (share of the claim's content words found in its sources), cosine (the best
plain MiniLM cosine of each sentence), similarity (the engine with verdict="similarity", the
verdict, the default), verifier (verdict="verifier", the trained verifier). Under each set, the
verifier minus the similarity verdict with 95% intervals from 1,000 paired bootstrap resamples
of the claims: a gap whose interval holds 0 may be which claims were drawn.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _evaldata import load_records

from rag_attrib import AttributionConfig, Attributor, CachedEmbedder
from rag_attrib.embedders import default_embedder
from rag_attrib.lexical import content_tokens

SETS = ["faithbench", "factcheck_gpt", "summedits", "expertqa", "begin", "wice"]
SEED = 13
# a wice claim comes with a ~120-sentence article: 150 of them already take ~10 minutes to encode
LIMITS = {"wice": 150}
BOOTSTRAP = 1000  # paired resamples behind the verifier-minus-similarity intervals


@dataclass
class Claim:
    text: str
    sources: list[str]
    label: int


def _sha(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest(), 16)


def eval_claims(name: str) -> list[Claim]:
    """The evaluation side of one set, as claims with their sources and labels."""
    out: list[Claim] = []
    if name in ("faithbench", "factcheck_gpt", "summedits"):
        for rec in load_records(name):
            if name == "summedits" and _sha(rec["meta"]["seed_id"]) % 5 != 0:
                continue  # a train group
            out.append(Claim(rec["claim"], [c["text"] for c in rec["context"]], int(rec["label"])))
        return out
    if name == "expertqa":
        labels = {"Complete": 1, "Missing": 0, "Incomplete": 0}
        for rec in load_records(name):
            if _sha(rec["question"]) % 5 != 0:
                continue  # a train question
            texts = [s["text"] for s in rec["sources"] if s.get("text")]
            for a in rec["answer_sentences"]:
                if a.get("label") in labels and a["text"].strip() and texts:
                    out.append(Claim(a["text"].strip(), texts, labels[a["label"]]))
        return out
    if name == "begin":
        labels = {"Fully attributable": 1, "Not fully attributable": 0}
        for rec in load_records(name):
            if rec["split"] != "begin_test_wow":
                continue
            texts = [s["text"] for s in rec["sources"]]
            for a in rec["answer_sentences"]:
                if a.get("label") in labels and a["text"].strip():
                    out.append(Claim(a["text"].strip(), texts, labels[a["label"]]))
        return out
    if name == "wice":
        for rec in load_records(name):
            if rec["split"] != "test":
                continue
            texts = [s["text"] for s in rec["sources"]]
            for a in rec["answer_sentences"]:
                if a.get("label"):
                    out.append(Claim(a["text"].strip(), texts, int(a["label"] == "supported")))
        return out
    raise ValueError(name)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels == 1][:, None], scores[labels == 0][None, :]
    if not pos.size or not neg.size:
        return float("nan")
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def bacc(pred: np.ndarray, labels: np.ndarray) -> float:
    return 0.5 * (float(pred[labels == 1].mean()) + float((~pred[labels == 0]).mean()))


def best_bacc(scores: np.ndarray, labels: np.ndarray) -> float:
    return max(bacc(scores >= t, labels) for t in np.unique(scores))


def paired_gap(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], labels: np.ndarray
) -> str:
    """Method a minus method b, BAcc and AUC, with 95% intervals from a paired bootstrap over
    the same resampled claims (`a`, `b`: scores and default verdicts): is a gap more than
    which claims happened to be drawn?"""
    rng = np.random.default_rng(SEED)
    gaps: list[tuple[float, float]] = []
    for _ in range(BOOTSTRAP):
        k = rng.integers(0, len(labels), len(labels))
        y = labels[k]
        if y.min() == y.max():
            continue
        gaps.append(
            (
                bacc(a[1][k], y) - bacc(b[1][k], y),
                auc(a[0][k], y) - auc(b[0][k], y),
            )
        )
    lo, hi = np.percentile(np.array(gaps), [2.5, 97.5], axis=0)
    d_bacc = bacc(a[1], labels) - bacc(b[1], labels)
    d_auc = auc(a[0], labels) - auc(b[0], labels)
    return (
        f"BAcc {d_bacc:+.3f} [{lo[0]:+.3f}, {hi[0]:+.3f}]   "
        f"AUC {d_auc:+.3f} [{lo[1]:+.3f}, {hi[1]:+.3f}]"
    )


Method = Callable[[Claim], tuple[float, bool | None]]  # score, verdict (None: no default)


def overlap(claim: Claim) -> tuple[float, bool | None]:
    words = set(content_tokens(claim.text))
    found = set(content_tokens(" ".join(claim.sources)))
    return (len(words & found) / len(words) if words else 0.0), None


def engine(attributor: Attributor, verdict: bool) -> Method:
    def run(claim: Claim) -> tuple[float, bool | None]:
        result = attributor.attribute(claim.text, claim.sources)
        if not result.answer_sentences:
            return 0.0, False
        sentences = [s for s in result.answer_sentences if s.claim]
        if not sentences:  # it states nothing, so nothing in it is unsupported
            return 1.0, True
        return min(s.support for s in sentences), all(s.supported for s in sentences)

    def run_plain(claim: Claim) -> tuple[float, bool | None]:
        score, _ = run(claim)
        return score, None

    return run if verdict else run_plain


def cross_encoder(attributor: Attributor, folder: Path) -> Method:
    """The fine-tuned cross-encoder of training/verifier (exported by its export.py), reading
    the same candidates the verifier reads: each citation's sentence with its neighbours."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from rag_attrib.evidence import evidence_window
    from training.verifier.export import CrossEncoderScorer

    scorer = CrossEncoderScorer(folder)

    def run(claim: Claim) -> tuple[float, bool | None]:
        result = attributor.attribute(claim.text, claim.sources)
        worst = 1.0
        for s in result.answer_sentences:
            pairs = []
            for c in s.citations:
                sentences = [x.text for x in result.sources[c.source_index].sentences]
                pairs.append((s.text, evidence_window(sentences, c.sentence_index)))
            worst = min(worst, float(scorer.score(pairs).max()) if pairs else 0.0)
        return worst, worst >= 0.5

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=300, help="claims per set (0: all)")
    parser.add_argument("--sets", nargs="*", default=SETS, choices=SETS)
    parser.add_argument(
        "--cross-encoder",
        type=Path,
        default=None,
        help="also a row for the fine-tuned cross-encoder exported to this folder "
        "(python -m training.verifier.export)",
    )
    parser.add_argument("--methods", nargs="*", default=None, help="subset of method names")
    parser.add_argument(
        "--cache", type=Path, default=None, help="keep embeddings in this file between runs"
    )
    args = parser.parse_args(argv)

    embedder = CachedEmbedder(default_embedder(), maxsize=1_000_000)
    if args.cache and args.cache.exists():
        with args.cache.open("rb") as f:
            embedder._cache.update(pickle.load(f))  # benchmark-only shortcut for re-runs
    methods: dict[str, Method] = {
        "overlap": overlap,
        "cosine": engine(
            Attributor(
                embedder,
                cache_size=0,
                config=AttributionConfig(
                    verdict="similarity",
                    lexical_weight=0.0,
                    paraphrase_margin=None,
                    context_weight=0.0,
                    check_numbers=False,
                    check_claims=False,
                ),
            ),
            verdict=False,
        ),
        "similarity": engine(
            Attributor(embedder, cache_size=0, config=AttributionConfig(verdict="similarity")),
            verdict=True,
        ),
        "verifier": engine(
            Attributor(embedder, cache_size=0, config=AttributionConfig(verdict="verifier")),
            verdict=True,
        ),
    }
    if args.cross_encoder is not None:
        # no verdict withholds citations: every sentence has candidates to read
        reader = Attributor(embedder, cache_size=0, config=AttributionConfig(verdict="verifier"))
        methods["crossenc"] = cross_encoder(reader, args.cross_encoder)
    if args.methods:
        methods = {k: v for k, v in methods.items() if k in args.methods}
    print(f"{'set':<14}{'method':<12}{'n':>5}{'pos':>5}{'BAcc':>7}{'BAcc*':>7}{'AUC':>7}{'ms':>7}")
    for name in args.sets:
        claims = eval_claims(name)
        total = len(claims)
        limit = min(args.limit, LIMITS.get(name, args.limit)) if args.limit else 0
        if limit and len(claims) > limit:
            claims = random.Random(SEED).sample(claims, limit)
        labels = np.array([c.label for c in claims])
        warm = Attributor(embedder, cache_size=0, config=AttributionConfig(verdict="similarity"))
        for c in claims:  # encode once, outside the timings
            warm.prewarm(c.sources)
            warm.prewarm_answer([c.text])
        judged: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for method, run in methods.items():
            t = time.perf_counter()
            out: list[Any] = [run(c) for c in claims]
            ms = (time.perf_counter() - t) * 1000 / len(claims)
            scores = np.array([s for s, _ in out], dtype=np.float64)
            verdicts = [v for _, v in out]
            default = (
                f"{bacc(np.array(verdicts, dtype=bool), labels):.3f}"
                if verdicts[0] is not None
                else "-"
            )
            print(
                f"{name:<14}{method:<12}{len(claims):>5}{int(labels.sum()):>5}{default:>7}"
                f"{best_bacc(scores, labels):>7.3f}{auc(scores, labels):>7.3f}{ms:>7.1f}",
                flush=True,
            )
            if verdicts[0] is not None:
                judged[method] = (scores, np.array(verdicts, dtype=bool))
        if "verifier" in judged and "similarity" in judged:
            gap = paired_gap(judged["verifier"], judged["similarity"], labels)
            print(f"{'':<14}verifier - similarity: {gap}")
        print(f"{'':<14}({len(claims)} of {total} evaluation-side claims, seed {SEED})")
        if args.cache:
            with args.cache.open("wb") as f:
                pickle.dump(dict(embedder._cache), f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
