"""AttributionConfig validation."""

from __future__ import annotations

import dataclasses

import pytest

from rag_attrib import AttributionConfig, ConfigError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"aggregation": "avg"}, "aggregation must be one of 'max', 'mean', 'weighted'; got 'avg'"),
        ({"normalization": "sigmoid"}, "normalization must be one of"),
        ({"temperature": 0}, "temperature must be a finite number > 0"),
        ({"temperature": float("inf")}, "temperature must be a finite number > 0"),
        ({"temperature": float("nan")}, "temperature"),
        ({"window": 0}, "window must be an integer >= 1"),
        ({"window": 1.5}, "window must be an integer"),
        ({"top_k": True}, "top_k must be an integer"),
        ({"min_score": 2}, "min_score must be a number >= 0.0 and <= 1.0"),
        ({"lexical_weight": -0.1}, "lexical_weight"),
        ({"context_weight": 1.5}, "context_weight must be a number >= 0.0 and <= 1.0"),
        ({"use_question": "yes"}, "use_question must be True or False"),
        ({"check_names": 1}, "check_names must be True or False"),
        ({"verdict": "nli"}, "verdict must be one of 'verifier', 'similarity'; got 'nli'"),
        ({"support_threshold": 1.5}, "support_threshold must be a number >= -1.0 and <= 1.0"),
    ],
)
def test_invalid_values_raise_config_error(kwargs: dict[str, object], message: str) -> None:
    """Every invalid option raises ConfigError (a ValueError) that names it."""
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AttributionConfig(**kwargs)  # type: ignore[arg-type]
    assert issubclass(ConfigError, ValueError)


def test_config_is_frozen_and_round_trips() -> None:
    """A config cannot be mutated and survives to_dict/from_dict."""
    cfg = AttributionConfig(aggregation="mean", window=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.window = 3  # type: ignore[misc]
    assert AttributionConfig.from_dict(cfg.to_dict()) == cfg


def test_from_dict_rejects_unknown_keys() -> None:
    """Unknown keys are reported with the valid option names."""
    with pytest.raises(ConfigError, match="unknown config option"):
        AttributionConfig.from_dict({"windw": 2})


def test_threshold_none_means_the_verdicts_own_default() -> None:
    """None is kept (to_dict round-trips it); the engine resolves it per verdict."""
    assert AttributionConfig().support_threshold is None
    assert AttributionConfig().verdict == "similarity"
    cfg = AttributionConfig(verdict="similarity", support_threshold=0.3)
    assert AttributionConfig.from_dict(cfg.to_dict()) == cfg
