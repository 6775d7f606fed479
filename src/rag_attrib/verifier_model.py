"""The verifier's model: boosted trees (or logistic weights) over `FEATURES`, run in numpy.

Kept apart from `verifier.py` (which computes the signals) so the file format and its checks
can be read in one place. A model file is JSON written by `training/verifier/fit.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from ._types import FloatMatrix, FloatVector

__all__ = ["FEATURES", "VerifierModel"]

Float64Vector = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# The signals, in the order the model reads them (computed by `verifier.signals`).
FEATURES: tuple[str, ...] = (
    "hybrid",  # best 0.3 * cosine + 0.7 * lexical strength of the sentence alone
    "cosine",  # best plain cosine of the sentence alone
    "lexical",  # best IDF-weighted share of its content words in one source sentence
    "window_recall",  # best share of its content words in one candidate window
    "chunk_recall",  # share of its content words in the candidates' chunks together
    "novel",  # content words in none of the candidates' chunks (log1p count)
    "missing_numbers",  # figures in none of those chunks
    "missing_names",  # capitalised names in none of those chunks
    "negation",  # 1 when exactly one of sentence and best window negates
    "length",  # log1p of its content-word count
    "support",  # the similarity verdict's support: max(hybrid, cosine - 0.2)
    "second_cosine",  # second-best plain cosine (support spread over two sentences)
    "bigram_recall",  # share of its adjacent content-word pairs adjacent in the chunks
    "clause_recall",  # the weakest clause's share of content words in the chunks
    "idf_novel",  # IDF-weighted share of its content words in none of the chunks
    "figures",  # log1p of how many figures it states
)


@dataclass(frozen=True)
class Trees:
    """Regression trees flattened into node arrays; a row goes left when x <= threshold."""

    feature: IntArray
    threshold: Float64Vector
    left: IntArray
    right: IntArray
    value: Float64Vector
    leaf: npt.NDArray[np.bool_]
    roots: IntArray
    depth: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trees:
        ints = {k: np.asarray(data[k], dtype=np.int64) for k in ("feature", "left", "right")}
        floats = {k: np.asarray(data[k], dtype=np.float64) for k in ("threshold", "value")}
        leaf = np.asarray(data["leaf"], dtype=bool)
        roots = np.asarray(data["roots"], dtype=np.int64)
        n = len(leaf)
        if any(len(a) != n for a in (*ints.values(), *floats.values())) or not len(roots):
            raise ValueError("verifier trees: node arrays of unequal length, or no tree")
        inner = ~leaf
        if not all(np.isfinite(a).all() for a in floats.values()) or (
            inner.any()
            and (
                ints["feature"][inner].min() < 0
                or ints["feature"][inner].max() >= len(FEATURES)
                or min(ints["left"][inner].min(), ints["right"][inner].min(), roots.min()) < 0
                or max(ints["left"][inner].max(), ints["right"][inner].max(), roots.max()) >= n
            )
        ):
            raise ValueError("verifier trees: a feature, child or value out of range")
        return cls(
            feature=ints["feature"],
            threshold=floats["threshold"],
            left=ints["left"],
            right=ints["right"],
            value=floats["value"],
            leaf=leaf,
            roots=roots,
            depth=int(data["depth"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature.tolist(),
            "threshold": self.threshold.tolist(),
            "left": self.left.tolist(),
            "right": self.right.tolist(),
            "value": self.value.tolist(),
            "leaf": self.leaf.astype(int).tolist(),
            "roots": self.roots.tolist(),
            "depth": self.depth,
        }

    def raw(self, x: npt.NDArray[np.float64]) -> Float64Vector:
        """Sum of each row's leaf values over all trees -> (m,)."""
        rows = np.arange(x.shape[0])[:, None]
        node = np.broadcast_to(self.roots, (x.shape[0], len(self.roots))).copy()
        for _ in range(self.depth):
            go_left = x[rows, self.feature[node].clip(0)] <= self.threshold[node]
            child = np.where(go_left, self.left[node], self.right[node])
            node = np.where(self.leaf[node], node, child)
        return np.asarray(self.value[node].sum(axis=1), dtype=np.float64)


@dataclass(frozen=True)
class VerifierModel:
    """P(supported) from a sentence's signals: bias + trees (or standardised logistic weights)."""

    bias: float
    threshold: float
    version: str
    trees: Trees | None = None
    weights: Float64Vector | None = None
    mean: Float64Vector | None = None
    scale: Float64Vector | None = None

    @classmethod
    def constant(cls) -> VerifierModel:
        """A model that reads nothing (0.5 everywhere): for computing signals alone."""
        return cls(bias=0.0, threshold=0.5, version="constant")

    def with_threshold(self, threshold: float) -> VerifierModel:
        return replace(self, threshold=threshold)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerifierModel:
        if tuple(data.get("features", ())) != FEATURES:
            msg = f"verifier features {data.get('features')} do not match this version's {FEATURES}"
            raise ValueError(msg)
        bias, threshold = float(data["bias"]), float(data["threshold"])
        if not (np.isfinite(bias) and 0.0 <= threshold <= 1.0):
            raise ValueError("verifier bias must be finite and its threshold in [0, 1]")
        version = str(data.get("version", "?"))
        trees = Trees.from_dict(data["trees"]) if "trees" in data else None
        if data.get("kind") == "trees":
            return cls(bias, threshold, version, trees=trees)
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("weights", "mean", "scale")]
        if any(a.shape != (len(FEATURES),) or not np.isfinite(a).all() for a in arrays):
            msg = "verifier weights, mean and scale must be finite lists of one value per feature"
            raise ValueError(msg)
        scale = np.where(arrays[2] > 0, arrays[2], 1.0)
        return cls(bias, threshold, version, trees, weights=arrays[0], mean=arrays[1], scale=scale)

    def to_dict(self) -> dict[str, Any]:
        kind = "trees" if self.weights is None else "logistic" if self.trees is None else "both"
        out: dict[str, Any] = {
            "version": self.version,
            "kind": kind,
            "features": list(FEATURES),
            "bias": self.bias,
            "threshold": self.threshold,
        }
        if self.trees is not None:
            out["trees"] = self.trees.to_dict()
        if self.weights is not None and self.mean is not None and self.scale is not None:
            out.update(
                weights=self.weights.tolist(), mean=self.mean.tolist(), scale=self.scale.tolist()
            )
        return out

    def probability(self, x: FloatMatrix) -> FloatVector:
        """P(supported) for each row of signals -> (m,) float32; each row on its own."""
        rows = np.asarray(x, dtype=np.float64).reshape(-1, len(FEATURES))
        z = np.full(rows.shape[0], self.bias)
        if self.trees is not None:
            z = z + self.trees.raw(rows)
        if self.weights is not None and self.mean is not None and self.scale is not None:
            z = z + ((rows - self.mean) / self.scale) @ self.weights
        p: FloatVector = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
        return p
