"""The real bundled model: paraphrases find the right chunk over same-topic distractors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from rag_attrib import Attributor, Source
from rag_attrib.convert import to_langchain_citations
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
    """A sentence on another subject gets the unsupported verdict; its closest sources are
    kept, weaker than the first sentence's citation, and no converter cites them."""
    result = real_attributor.attribute(
        "Coffee came from Ethiopia. The stock market closed higher on Friday.", CHUNKS
    )
    first, second = result.answer_sentences
    assert first.supported and first.citations[0].source_id == "coffee-origin"
    assert not second.supported and second.citations  # closest, does not support
    assert second.support < first.support
    assert second.citations[0].similarity < first.citations[0].similarity
    assert {c["extras"]["answer_sentence_index"] for c in to_langchain_citations(result)} == {0}


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


# German, Spanish and French, end to end with the bundled model and the matching splitter: two
# sources, an answer whose first sentence restates one of them (after an abbreviation the
# splitter must not break at) and whose second states a figure that neither source holds.
LANGUAGES = [
    (
        "german",
        [
            "Das Feuer brach am 2. Sept. 1666 in einer Bäckerei in der Pudding Lane aus. Es zerstörte rund 13.200 Häuser.",
            "Nach dem Brand wurden neue Häuser aus Ziegel und Stein gebaut. Die Versicherungen entstanden später.",
        ],
        "Das Feuer zerstörte etwa 13.200 Häuser in London. Es brannte genau 45 Tage lang.",
        (0, 1),
    ),
    (
        "spanish",
        [
            "El incendio empezó en una panadería de Pudding Lane, según el Sr. Farriner. Destruyó unas 13.200 casas.",
            "Después del incendio, las casas nuevas se construyeron de ladrillo y piedra. Los seguros llegaron más tarde.",
        ],
        "Las casas nuevas se construyeron de ladrillo y piedra después del incendio. El fuego duró 45 días.",
        (1, 0),
    ),
    (
        "french",
        [
            "L'incendie a commencé dans une boulangerie de Pudding Lane, selon M. Farriner. Il a détruit environ 13 200 maisons.",
            "Après l'incendie, les nouvelles maisons ont été construites en brique et en pierre. Les assurances sont venues plus tard.",
        ],
        "L'incendie a commencé dans une boulangerie de Pudding Lane. Il a duré 45 jours.",
        (0, 0),
    ),
]


@pytest.mark.parametrize(("language", "sources", "answer", "expected"), LANGUAGES)
def test_other_languages_end_to_end(
    real_attributor: Attributor,
    language: str,
    sources: list[str],
    answer: str,
    expected: tuple[int, int],
) -> None:
    """With a language's splitter, sentences keep exact offsets, the restated sentence cites its
    source, and a figure no source holds makes the other one unsupported."""
    from rag_attrib.splitting import PunktSplitter

    attributor = Attributor(real_attributor.embedder, splitter=PunktSplitter(language))
    result = attributor.attribute(answer, sources)
    first, second = result.answer_sentences
    assert answer[first.start : first.end] == first.text
    assert [len(s.sentences) for s in result.sources] == [2, 2]  # "2. Sept.", "Sr.", "M." kept
    assert first.supported and first.citations
    cited = first.citations[0]
    assert (cited.source_index, cited.sentence_index) == expected
    assert sources[cited.source_index][cited.start : cited.end] == cited.text
    assert not second.supported and any("45" in issue for issue in second.issues)
