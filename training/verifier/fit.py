"""Fit the shipped verifier over the engine's signals (`verifier.FEATURES`).

Each train-side claim of `data.py` (real labelled claims, plus synthetic ones) is run through
the engine's own ranking with the bundled encoder, and `verifier.signals` reads its best
candidates. A model (boosted trees, monotone in every signal, added to a share of the similarity
support: "anchored"; or trees or a logistic regression alone) is fitted on the "train" groups,
every set and within it each class weighing the same; the default threshold is the one with
the best balanced accuracy (averaged over sets) on the held-out "val" groups' real claims.
sklearn is needed here only; the package runs the model in numpy.

    python -m training.verifier.fit --cv     # 5-fold group cross-validation of both kinds
    python -m training.verifier.fit --write  # fit on "train", pick the threshold, write the model
    python -m training.verifier.fit --loso 0.75:300:8 1.5:100:4  # leave one set out, per config
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag_attrib import Attributor, Source, Span, split_sentences
from rag_attrib.config import SIMILARITY_THRESHOLD
from rag_attrib.embedders import CachedEmbedder, default_embedder
from rag_attrib.engine import _owners
from rag_attrib.verifier import FEATURES, VerifierModel, default_model_file, verify
from training.verifier import data
from training.verifier.model import ANCHOR, MONOTONE, TREES, auc, fit_model

CACHE = Path(__file__).with_name("cache")
VERSION = "gbt-3"
CAP = {"cg2c": 2068, "begin": 1148, "wice": 349}  # claims per set (wice: long articles)


class _OneSpan:
    """The claim as one answer sentence (its label is for all of it); sources split as usual."""

    def __init__(self, claim: str) -> None:
        self.claim = claim

    def __call__(self, text: str) -> list[Span]:
        if text == self.claim:
            return [Span(text, 0, len(text))]
        return split_sentences(text)


def claim_signals(attributor: Attributor, claim: str, sources: list[str]) -> np.ndarray:
    """The engine's ranking for `claim` over `sources`, read by `verifier.signals` -> (F,)."""
    resolved = [Source(str(k), t) for k, t in enumerate(sources)]
    splitter = _OneSpan(claim)
    source_spans = [splitter(s.text) for s in resolved]
    owner = _owners(source_spans)
    strength, _, _, _ = attributor._strength([claim], resolved, source_spans, owner, None)
    v = verify(
        VerifierModel.constant(), attributor.embedder, [claim], source_spans,
        [s.text for s in resolved], owner, strength,
    )  # fmt: skip
    return v.signals[0]


def collect(seed: int, synthetic: int) -> list[tuple[data.Claim, str]]:
    """Real claims, then synthetic ones (claim vs its evidence window), with their kind."""
    docs: list[data.Doc] = []
    claims = [(c, "real") for c in data.real_claims(docs) if c.text and any(c.sources)]
    rng = random.Random(seed)
    for name, cap in CAP.items():
        mine = [item for item in claims if item[0].dataset == name]
        keep = {id(item) for item in rng.sample(mine, min(cap, len(mine)))}
        claims = [item for item in claims if item[0].dataset != name or id(item) in keep]
    unique: dict[tuple[str, ...], data.Doc] = {}
    for d in docs:
        unique.setdefault(tuple(d.sentences), d)
    synth = list(data.synthetic_pairs(list(unique.values()), rng))
    rng.shuffle(synth)
    for p in synth[:synthetic]:
        claims.append((data.Claim(p.claim, [[p.evidence]], p.label, p.dataset, p.group), p.kind))
    return claims


def encode(items: list[tuple[data.Claim, str]], started: float) -> np.ndarray:
    """Every claim's signals; cached per feature set, with the encoder's vectors, to resume."""
    tag = hashlib.sha1(json.dumps(FEATURES).encode()).hexdigest()[:8]
    feats_file, vec_file = CACHE / f"signals-{tag}.pkl", CACHE / "vectors.pkl"
    CACHE.mkdir(exist_ok=True)
    stored: dict[str, Any] = pickle.loads(feats_file.read_bytes()) if feats_file.exists() else {}
    embedder = CachedEmbedder(default_embedder(), maxsize=5_000_000)
    if vec_file.exists():
        embedder._cache.update(pickle.loads(vec_file.read_bytes()))
    attributor = Attributor(embedder, cache_size=0)
    rows, fresh = [], 0
    for k, (c, _) in enumerate(items):
        key = json.dumps([c.text, c.sources])
        if key not in stored:
            stored[key] = claim_signals(attributor, c.text, [" ".join(s) for s in c.sources])
            fresh += 1
        rows.append(stored[key])
        if fresh and (k % 2000 == 0 or k == len(items) - 1):
            print(f"{k + 1}/{len(items)} claims, {time.time() - started:.0f} s", flush=True)
            feats_file.write_bytes(pickle.dumps(stored))  # a rerun resumes here
    if fresh:
        vec_file.write_bytes(pickle.dumps(dict(embedder._cache)))
    return np.array(rows, dtype=np.float32)


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    pos, neg = y == 1, y == 0
    if not pos.any() or not neg.any():
        return float("nan")
    return 0.5 * (float(pred[pos].mean()) + float((~pred[neg]).mean()))


def best_threshold(p: np.ndarray, y: np.ndarray, sets: np.ndarray) -> tuple[float, float]:
    """The threshold with the best balanced accuracy averaged over sets, and that accuracy."""
    names = sorted(set(sets))
    best_t, best_b = 0.5, -1.0
    for t in np.arange(0.05, 0.95, 0.01):
        b = float(np.nanmean([balanced_accuracy(y[sets == s], p[sets == s] >= t) for s in names]))
        if b > best_b:
            best_t, best_b = round(float(t), 2), b
    return best_t, best_b


def report(p: np.ndarray, y: np.ndarray, sets: np.ndarray, t: float, label: str) -> float:
    aucs = []
    for s in sorted(set(sets)):
        m = sets == s
        aucs.append(auc(p[m], y[m]))
        bacc = balanced_accuracy(y[m], p[m] >= t)
        print(f"  {label} {s:<10} n={int(m.sum()):>5} AUC {aucs[-1]:.3f} BAcc {bacc:.3f}")
    print(f"  {label} mean AUC {np.nanmean(aucs):.3f} (threshold {t})")
    return float(np.nanmean(aucs))


def _config(text: str) -> str:
    """A --loso configuration, SHARE:TREES:LEAVES, checked."""
    try:
        share, iters, leaves = text.split(":")
        float(share), int(iters), int(leaves)
    except ValueError:
        msg = f"expected SHARE:TREES:LEAVES such as 0.75:300:8, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    return text


def loso(
    x: np.ndarray,
    y: np.ndarray,
    real: np.ndarray,
    sets: np.ndarray,
    dataset: np.ndarray,
    split: np.ndarray,
    configs: list[str],
) -> None:
    """Leave one set out: fit on every other set's "train" groups (their synthetic claims too),
    take the threshold from their "val" groups, read every real claim of the left-out set.

    The evaluation sets are sets the model never saw, so this is the train side's nearest
    stand-in for them: does a configuration beat the similarity verdict on a set it never saw?
    """
    k = FEATURES.index("support")
    names = sorted(set(sets[real]))
    rows: dict[str, list[tuple[float, float]]] = {}
    base = []
    for s in names:
        held = real & (dataset == s)
        sim = balanced_accuracy(y[held], x[held, k] >= SIMILARITY_THRESHOLD)
        base.append((auc(x[held, k], y[held]), sim))
    rows["similarity"] = base
    for config in configs:
        share, iters, leaves = config.split(":")
        out = []
        for s in names:
            held = real & (dataset == s)
            fit_rows = (dataset != s) & (split == "train")
            val = (dataset != s) & (split == "val") & real
            model = fit_model(
                "anchored", x[fit_rows], y[fit_rows], sets[fit_rows], VERSION,
                share=float(share), iters=int(iters), leaves=int(leaves),
            )  # fmt: skip
            t, _ = best_threshold(model.probability(x[val]), y[val], sets[val])
            p = model.probability(x[held])
            out.append((auc(p, y[held]), balanced_accuracy(y[held], p >= t)))
        rows[config] = out
    print(f"{'left out':<12}" + "".join(f"{n:>16}" for n in rows))
    for i, s in enumerate(names):
        print(f"{s:<12}" + "".join(f"   {r[i][0]:.3f} / {r[i][1]:.3f}" for r in rows.values()))
    print(f"{'mean':<12}" + "".join(
        f"   {np.mean([a for a, _ in r]):.3f} / {np.mean([b for _, b in r]):.3f}"
        for r in rows.values()
    ))  # fmt: skip
    for config, r in rows.items():
        if config != "similarity":
            wins = sum(a > ba and b > bb for (a, b), (ba, bb) in zip(r, base, strict=True))
            print(f"  {config}: beats similarity on AUC and BAcc in {wins} of {len(names)} sets")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the model into the package")
    ap.add_argument("--cv", action="store_true", help="5-fold group cross-validation only")
    ap.add_argument(
        "--loso",
        nargs="*",
        type=_config,
        metavar="SHARE:TREES:LEAVES",
        help="leave-one-set-out: fit on the other sets, read the left-out one (an unseen set, as "
        "the evaluation sets are); one row per anchored configuration given",
    )
    ap.add_argument(
        "--kind", choices=["anchored", "trees", "logistic", "blend"], default="anchored"
    )
    ap.add_argument("--kinds", nargs="*", default=["trees", "anchored"], help="with --cv")
    ap.add_argument(
        "--synthetic",
        type=int,
        default=3000,
        help="synthetic claims fitted beside the real ones (swapped figures, names, negations; "
        "with classes balanced per set they add 0.004 to the mean cross-validated AUC on real "
        "claims and rank a changed figure below a true sentence)",
    )
    ap.add_argument("--seed", type=int, default=data.SEED)
    args = ap.parse_args(argv)
    started = time.time()
    items = collect(args.seed, args.synthetic)
    x = encode(items, started)
    y = np.array([c.label for c, _ in items])
    real = np.array([kind == "real" for _, kind in items])
    sets = np.array([c.dataset if kind == "real" else "synthetic" for c, kind in items])
    groups = np.array([c.group for c, _ in items])
    print(f"{len(items)} claims ({int(real.sum())} real), signals in {time.time() - started:.0f} s")
    assert len(MONOTONE) == len(FEATURES)

    if args.cv:
        fold = np.array([int(hashlib.sha1(g.encode()).hexdigest(), 16) % 5 for g in groups])
        k = FEATURES.index("support")  # the similarity verdict's own figure, the bar to beat
        print("  (support: the similarity support signal alone, no model)")
        report(x[real, k], y[real], sets[real], 0.5, "cv support ")
        for kind in args.kinds:
            p = np.zeros(len(y), dtype=np.float32)
            for f in range(5):
                model = fit_model(kind, x[fold != f], y[fold != f], sets[fold != f], VERSION)
                p[fold == f] = model.probability(x[fold == f])
            t, _ = best_threshold(p[real], y[real], sets[real])
            report(p[real], y[real], sets[real], t, f"cv {kind:<8}")
        print(f"{time.time() - started:.0f} s")
        return 0

    split = np.array([c.split for c, _ in items])
    if args.loso is not None:
        dataset = np.array([c.dataset for c, _ in items])
        loso(x, y, real, sets, dataset, split, args.loso or [f"{ANCHOR[1]}:{TREES[0]}:{TREES[1]}"])
        print(f"{time.time() - started:.0f} s")
        return 0
    train, val = split == "train", (split == "val") & real
    model = fit_model(args.kind, x[train], y[train], sets[train], VERSION)
    p = model.probability(x)
    t, b = best_threshold(p[val], y[val], sets[val])
    model = model.with_threshold(t)
    print(f"threshold {t} (mean val balanced accuracy {b:.3f})")
    report(p[val], y[val], sets[val], t, "val")
    if args.write:
        out = default_model_file()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(model.to_dict()) + "\n", encoding="utf-8")
        print(f"written {out} ({out.stat().st_size} bytes)")
    print(f"{time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
