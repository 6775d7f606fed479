"""Grid over the hybrid-scoring weights on the evaldata subsets. Prints; chooses nothing itself.

    .venv/bin/python benchmarks/tune.py --cache emb.pkl [--sets ...] [--weights 0 0.3 0.5]

Uses the same loading and metrics as quality.py; with --cache, embeddings computed by an
earlier quality.py run are reused, so a grid costs seconds per point, not minutes.
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _evaldata import cases
from quality import DEFAULT, SETS, SUBSET, Tally, _cached, auc, engine_method, evaluate

from rag_attrib.embedders import default_embedder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--sets", nargs="*", default=SETS, choices=SETS)
    parser.add_argument(
        "--weights", nargs="*", type=float, default=[0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0]
    )
    parser.add_argument("--windows", nargs="*", type=int, default=[1])
    parser.add_argument("--check-numbers", nargs="*", type=int, default=[1], choices=[0, 1])
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)

    with args.cache.open("rb") as f:
        embedder = _cached(default_embedder(), pickle.load(f))  # the default encoder's vectors
    data = {n: list(cases(n, args.limit or SUBSET[n])) for n in args.sets}
    print(
        f"{'weight':>7}{'window':>7}{'nums':>5}  " + "  ".join(f"{n[:10]:>10}" for n in args.sets)
    )
    for w, k, nums in itertools.product(args.weights, args.windows, args.check_numbers):
        config = replace(DEFAULT, lexical_weight=w, window=k, check_numbers=bool(nums))
        method = engine_method(embedder, config)
        cells = []
        for items in data.values():
            tally = Tally.new()
            for case in items:
                evaluate(case, method(case), tally)
            if tally.label_pos and tally.label_neg:
                value = auc(np.array(tally.label_pos), np.array(tally.label_neg))
                cells.append(f"L{value:.3f}")
            elif tally.sent_auc:
                cells.append(f"S{np.mean(tally.sent_auc):.3f}")
            else:
                cells.append(f"C{np.mean(tally.chunk_hits):.3f}")
        print(f"{w:>7.2f}{k:>7}{nums:>5}  " + "  ".join(f"{c:>10}" for c in cells), flush=True)
    print("S = sentence AUC, C = chunk accuracy, L = label AUC")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
