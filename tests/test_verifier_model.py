"""The verifier's model file: boosted trees run in numpy, checked when read."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from rag_attrib import verifier
from rag_attrib.verifier_model import FEATURES, VerifierModel

SUPPORT = FEATURES.index("support")
NAMES = FEATURES.index("missing_names")


def _stump_model() -> dict[str, Any]:
    """Two trees: support <= 0.5 -> -1 else +1; missing_names <= 0.5 -> +0.5 else -2."""
    return {
        "version": "test",
        "kind": "trees",
        "features": list(FEATURES),
        "bias": 0.25,
        "threshold": 0.5,
        "trees": {
            "feature": [SUPPORT, 0, 0, NAMES, 0, 0],
            "threshold": [0.5, 0.0, 0.0, 0.5, 0.0, 0.0],
            "left": [1, 0, 0, 4, 0, 0],
            "right": [2, 0, 0, 5, 0, 0],
            "value": [0.0, -1.0, 1.0, 0.0, 0.5, -2.0],
            "leaf": [0, 1, 1, 0, 1, 1],
            "roots": [0, 3],
            "depth": 1,
        },
    }


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_trees_add_their_leaves_to_the_bias() -> None:
    model = VerifierModel.from_dict(_stump_model())
    x = np.zeros((4, len(FEATURES)), dtype=np.float32)
    x[1, SUPPORT] = 0.9
    x[2, NAMES] = 1.0
    x[3, SUPPORT], x[3, NAMES] = 0.9, 2.0
    p = model.probability(x)
    expected = [0.25 - 1 + 0.5, 0.25 + 1 + 0.5, 0.25 - 1 - 2, 0.25 + 1 - 2]
    assert np.allclose(p, [_sigmoid(z) for z in expected], atol=1e-6)
    # each row on its own: the same probability alone as in the batch
    for k in range(4):
        assert model.probability(x[k : k + 1])[0] == p[k]
    # a boundary value goes left, as sklearn's trees send it
    x[0, SUPPORT] = 0.5
    assert model.probability(x[:1])[0] == pytest.approx(_sigmoid(0.25 - 1 + 0.5))


def test_the_file_round_trips() -> None:
    model = VerifierModel.from_dict(_stump_model())
    again = VerifierModel.from_dict(model.to_dict())
    x = np.random.default_rng(0).random((50, len(FEATURES))).astype(np.float32)
    assert np.array_equal(model.probability(x), again.probability(x))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("trees", "left"), [1, 0, 0, 40, 0, 0]),  # a child that is not a node
        (("trees", "feature"), [len(FEATURES), 0, 0, NAMES, 0, 0]),  # a feature not read
        (("trees", "value"), [0.0, -1.0, float("nan"), 0.0, 0.5, -2.0]),
        (("trees", "roots"), []),
        (("trees", "leaf"), [0, 1, 1]),  # arrays of unequal length
        (("threshold",), 1.5),
        (("features",), ["hybrid"]),
    ],
)
def test_a_broken_file_is_refused_with_a_reason(path: tuple[str, ...], value: object) -> None:
    data = copy.deepcopy(_stump_model())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError, match="verifier"):
        VerifierModel.from_dict(data)


def test_the_bundled_model_reads_every_feature_in_range() -> None:
    model = verifier.load_verifier()
    assert model is not None and model.trees is not None
    assert 0.0 < model.threshold < 1.0
    x = np.random.default_rng(1).random((200, len(FEATURES))).astype(np.float32)
    p = model.probability(x)
    assert p.shape == (200,) and np.all((p > 0.0) & (p < 1.0))


def test_trees_and_a_linear_term_add_up_and_round_trip() -> None:
    """The shipped kind: trees plus a share of one standardised signal ("both" in the file)."""
    data = _stump_model()
    weights = [0.0] * len(FEATURES)
    weights[SUPPORT] = 2.0
    mean, scale = [0.0] * len(FEATURES), [1.0] * len(FEATURES)
    mean[SUPPORT], scale[SUPPORT] = 0.4, 0.2
    data.update(kind="both", weights=weights, mean=mean, scale=scale)
    model = VerifierModel.from_dict(data)
    x = np.zeros((2, len(FEATURES)), dtype=np.float32)
    x[1, SUPPORT] = 0.9
    linear = [2.0 * (0.0 - 0.4) / 0.2, 2.0 * (0.9 - 0.4) / 0.2]
    trees = [0.25 - 1 + 0.5, 0.25 + 1 + 0.5]
    p = model.probability(x)
    assert np.allclose(p, [_sigmoid(a + b) for a, b in zip(trees, linear, strict=True)], atol=1e-6)
    again = VerifierModel.from_dict(model.to_dict())
    assert again.to_dict()["kind"] == "both"
    assert np.array_equal(again.probability(x), p)
