"""Fit the `supported` threshold from answer sentences labelled by people."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .config import AttributionConfig
from .engine import Attributor, SourceLike
from .errors import EmptyInputError

__all__ = ["CalibrationReport", "calibrate", "calibrate_report"]


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    """The fitted threshold and how well it flags unsupported sentences on the given records.

    Precision and recall are for the *unsupported* verdict (the positive class is "no source
    backs this sentence"), measured on the records the threshold was fitted to.
    """

    config: AttributionConfig
    threshold: float
    precision: float
    recall: float
    f_score: float
    auroc: float
    n_supported: int
    n_unsupported: int

    def __str__(self) -> str:
        return (
            f"support_threshold={self.threshold:.3f}: unsupported precision={self.precision:.3f} "
            f"recall={self.recall:.3f} F={self.f_score:.3f} AUROC={self.auroc:.3f} "
            f"({self.n_unsupported} unsupported, {self.n_supported} supported)"
        )


def _claim_support(attributor: Attributor, record: Mapping[str, Any]) -> float:
    text = record.get("text")
    if not isinstance(text, str):
        msg = f"each record needs 'text' (the answer sentence) as str, got {type(text).__name__}"
        raise TypeError(msg)
    sources: Sequence[SourceLike] = record.get("sources") or []
    result = attributor.attribute(text, sources, question=record.get("question"))
    # a claim split into several sentences is supported only if every part is
    return min((a.support for a in result.answer_sentences), default=0.0)


def calibrate_report(
    records: Iterable[Mapping[str, Any]],
    attributor: Attributor | None = None,
    *,
    beta: float = 1.0,
) -> CalibrationReport:
    """Choose `support_threshold` that best separates labelled supported/unsupported sentences.

    Args:
        records: mappings with "text" (one answer sentence), "sources" (as for `attribute`),
            "supported" (the human label, bool) and optionally "question".
        attributor: the attributor whose scores are calibrated; None uses a default one.
        beta: F-beta trade-off for the unsupported verdict; above 1 favours recall.

    Returns:
        A `CalibrationReport` whose `config` is the attributor's config with the fitted threshold.

    Raises:
        EmptyInputError: the records do not contain both supported and unsupported examples.
    """
    attributor = attributor or Attributor()
    support, labels = [], []
    for k, record in enumerate(records):
        label = record.get("supported")
        if not isinstance(label, bool):
            msg = f"records[{k}]['supported'] must be True or False, got {label!r}"
            raise TypeError(msg)
        support.append(_claim_support(attributor, record))
        labels.append(label)
    s = np.asarray(support, dtype=np.float64)
    ok = np.asarray(labels, dtype=bool)
    if ok.all() or not ok.any():
        msg = "calibration needs both supported and unsupported examples; got only one kind"
        raise EmptyInputError(msg)

    best = (-1.0, 0.0, 0.0, 0.0, 0.0)
    b2 = beta * beta
    for threshold in np.unique(np.concatenate([s, s + 1e-6])):
        flagged = s < threshold  # the unsupported verdict
        tp = float((flagged & ~ok).sum())
        precision = tp / max(float(flagged.sum()), 1.0)
        recall = tp / float((~ok).sum())
        f = (1 + b2) * precision * recall / max(b2 * precision + recall, 1e-12)
        if f > best[0]:
            best = (f, float(threshold), precision, recall, f)
    _, threshold, precision, recall, f_score = best
    pos, neg = s[ok][:, None], s[~ok][None, :]
    auroc = float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))
    threshold = float(np.clip(threshold, -1.0, 1.0))
    return CalibrationReport(
        config=replace(attributor.config, support_threshold=threshold),
        threshold=threshold,
        precision=precision,
        recall=recall,
        f_score=f_score,
        auroc=auroc,
        n_supported=int(ok.sum()),
        n_unsupported=int((~ok).sum()),
    )


def calibrate(
    records: Iterable[Mapping[str, Any]],
    attributor: Attributor | None = None,
    *,
    beta: float = 1.0,
) -> AttributionConfig:
    """Return the attributor's config with `support_threshold` fitted to labelled records.

    See `calibrate_report` for the record format and for precision/recall of the fit.

    Example:
        >>> config = calibrate([{"text": "...", "sources": [...], "supported": True}, ...])
        >>> attributor = Attributor(config=config)
    """
    return calibrate_report(records, attributor, beta=beta).config
