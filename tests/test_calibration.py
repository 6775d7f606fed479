"""calibrate(): fits the support threshold from labelled sentences and reports the fit."""

from __future__ import annotations

import pytest

from rag_attrib import AttributionConfig, Attributor, EmptyInputError
from rag_attrib.calibration import calibrate, calibrate_report
from rag_attrib.testing import HashingEmbedder

SOURCES = ["The museum opened in 1901. It holds Roman coins. The garden has old oaks."]
RECORDS = [
    {"text": "The museum holds Roman coins.", "sources": SOURCES, "supported": True},
    {"text": "The garden has old oak trees.", "sources": SOURCES, "supported": True},
    {"text": "The museum opened in 1901.", "sources": SOURCES, "supported": True},
    {"text": "Penguins migrate across deserts.", "sources": SOURCES, "supported": False},
    {"text": "Quantum chips power the ticket office.", "sources": SOURCES, "supported": False},
]


@pytest.fixture
def attributor() -> Attributor:
    """A deterministic attributor without the paraphrase margin."""
    return Attributor(HashingEmbedder(), config=AttributionConfig(paraphrase_margin=None))


def test_threshold_separates_the_labels(attributor: Attributor) -> None:
    """The fitted threshold flags exactly the unsupported examples here, and the report says so."""
    report = calibrate_report(RECORDS, attributor)
    assert report.precision == 1.0 and report.recall == 1.0 and report.auroc == 1.0
    assert (report.n_supported, report.n_unsupported) == (3, 2)
    assert report.config.support_threshold == report.threshold
    fitted = Attributor(HashingEmbedder(), config=report.config)
    for record in RECORDS:
        verdict = fitted.attribute(record["text"], record["sources"]).answer_sentences[0].supported
        assert verdict is record["supported"], record["text"]
    assert "precision=1.000" in str(report)


def test_calibrate_returns_a_config(attributor: Attributor) -> None:
    """calibrate() returns the attributor's config with only the threshold changed."""
    config = calibrate(RECORDS, attributor)
    assert isinstance(config, AttributionConfig)
    assert config.lexical_weight == attributor.config.lexical_weight
    assert config.support_threshold != attributor.config.support_threshold


def test_needs_both_labels_and_bool_labels(attributor: Attributor) -> None:
    """One-sided data or non-bool labels are refused with a clear message."""
    with pytest.raises(EmptyInputError, match="both supported and unsupported"):
        calibrate(RECORDS[:3], attributor)
    with pytest.raises(TypeError, match=r"records\[0\]\['supported'\] must be True or False"):
        calibrate([{"text": "x", "sources": SOURCES, "supported": "yes"}], attributor)
