"""The real bundled model: paraphrases find the right chunk over same-topic distractors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from rag_attrib import Attributor, Source
from rag_attrib.testing import HashingEmbedder

pytestmark = pytest.mark.slow

EVALDATA = Path(__file__).resolve().parents[2] / "shared" / "evaldata"

CHUNKS = [
    Source(
        "coffee-origin",
        "Coffee plants originated in Ethiopia. Legend says a goat herder named Kaldi noticed his goats became energetic after eating the berries.",
    ),
    Source(
        "coffee-trade",
        "By the 15th century coffee was grown in Yemen. Coffeehouses spread from Mecca to Cairo and Istanbul.",
    ),
    Source(
        "tea-origin",
        "Tea originated in southwest China. Legend says emperor Shen Nong discovered it when leaves fell into his boiling water.",
    ),
]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            "According to legend, a herdsman saw that his animals got lively after they ate the fruit.",
            "coffee-origin",
        ),
        (
            "A Chinese ruler supposedly found the drink when some leaves dropped into water he was heating.",
            "tea-origin",
        ),
        ("Coffee houses later appeared in cities such as Cairo and Istanbul.", "coffee-trade"),
    ],
)
def test_paraphrase_beats_same_topic_distractor(
    real_attributor: Attributor, answer: str, expected: str
) -> None:
    """A paraphrased sentence cites the chunk it came from, not the look-alike legend."""
    result = real_attributor.attribute(answer, CHUNKS)
    sentence = result.answer_sentences[0]
    assert sentence.supported
    assert sentence.citations[0].source_id == expected
    assert result.top_source is not None and result.top_source.id == expected


def test_unrelated_sentence_is_unsupported(real_attributor: Attributor) -> None:
    """A sentence on another subject gets the unsupported verdict and no citations."""
    result = real_attributor.attribute(
        "Coffee came from Ethiopia. The stock market closed higher on Friday.", CHUNKS
    )
    first, second = result.answer_sentences
    assert first.supported and first.citations[0].source_id == "coffee-origin"
    assert not second.supported and second.citations == ()
    assert second.support < first.support


def _hotpotqa() -> list[dict[str, Any]]:
    if not EVALDATA.exists():
        pytest.skip(f"evaluation data not found at {EVALDATA}")
    sys.path.insert(0, str(EVALDATA / "common"))
    from load_all import load_dataset  # type: ignore[import-not-found]

    records = list(load_dataset("hotpotqa"))
    assert len(records) > 200
    return records


@pytest.mark.parametrize("model", ["hashing", "real"])
def test_hotpotqa_offsets_hold(real_attributor: Attributor, model: str) -> None:
    """Citation and answer offsets index the original texts: every HotpotQA record with the
    deterministic embedder (offsets do not depend on the model), a spread of 30 with MiniLM."""
    records = _hotpotqa()
    if model == "real":
        attributor = real_attributor
        records = records[:: len(records) // 30][:30]
    else:
        attributor = Attributor(HashingEmbedder())
    checked = 0
    for rec in records:
        sources = [Source(s["id"], s["text"]) for s in rec["sources"]]
        answer = rec["answer"]
        result = attributor.attribute(answer, sources, question=rec["question"])
        for a in result.answer_sentences:
            assert answer[a.start : a.end] == a.text
            for c in a.citations:
                assert sources[c.source_index].text[c.start : c.end] == c.text
                checked += 1
    assert checked > len(records) / 2
