"""The bundled verifier decides `supported`: invented sentences are flagged, evidence is kept."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from rag_attrib import AttributionConfig, Attributor, Source, verifier
from rag_attrib.config import SIMILARITY_THRESHOLD
from rag_attrib.engine import NOT_A_CLAIM
from rag_attrib.testing import HashingEmbedder

pytestmark = pytest.mark.slow

FIRE = Source(id="doc-1", text="It started in a bakery on Pudding Lane in 1666.")
TOWER = Source(
    "tower",
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. "
    "It was designed by the engineering company of Gustave Eiffel. "
    "The tower is 330 metres tall and was the tallest structure in the world until 1930.",
)


@pytest.fixture(scope="module")
def checked(real_attributor: Attributor) -> Attributor:
    """The bundled model with the trained verifier deciding `supported`."""
    return Attributor(real_attributor.embedder, config=AttributionConfig(verdict="verifier"))


def test_bundled_model_loads() -> None:
    model = verifier.load_verifier()
    assert model is not None and 0.0 < model.threshold < 1.0


@pytest.mark.parametrize(
    ("fixture", "verdict", "threshold_of"),
    [
        ("real_attributor", "similarity", "the similarity verdict's"),
        ("checked", "verifier", "the verifier's"),
    ],
)
def test_readme_usage_flags_the_invented_sentence(
    request: pytest.FixtureRequest, fixture: str, verdict: str, threshold_of: str
) -> None:
    attributor: Attributor = request.getfixturevalue(fixture)
    result = attributor.attribute(
        answer="The fire began in a bakery on Pudding Lane. It was started by foreign agents.",
        sources=[FIRE, "plain strings work too"],
        question="How did the Great Fire of London start?",
    )
    true, invented = result.answer_sentences
    assert true.supported and not invented.supported
    assert result.config["verdict"] == verdict
    threshold = result.config["support_threshold"]
    assert true.support >= threshold > invented.support
    # never withhold evidence: the unsupported sentence still shows its closest source
    assert invented.citations and invented.citations[0].source_id == "doc-1"
    assert invented.issues or verdict == "similarity"  # the verifier says why
    # the README states this call's figures: they must be the bundled model's, not an older one's
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    words = r"\s+".join(re.escape(w) for w in f"under {threshold_of} threshold".split())
    stated = re.search(rf"`support` (\d\.\d\d),\s+{words}\s+(\d\.\d\d)", readme)
    assert stated is not None, "the README's Usage section no longer states the figures"
    assert float(stated.group(1)) == round(invented.support, 2)
    assert float(stated.group(2)) == round(threshold, 2)


def test_quickstart_flags_only_its_invented_sentence(checked: Attributor) -> None:
    import runpy

    quickstart = runpy.run_path(
        str(Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"),
        run_name="not_main",
    )
    result = checked.attribute(
        quickstart["ANSWER"], quickstart["CHUNKS"], question=quickstart["QUESTION"]
    )
    assert [s.supported for s in result.answer_sentences] == [True, True, True, False]
    assert all(s.citations for s in result.answer_sentences)


@pytest.mark.parametrize(
    "invented",
    [
        "It also hosts the national swimming championships every summer.",
        "It was designed by Thomas Edison.",
        "It was completed in 1925.",
    ],
)
def test_pronoun_led_invented_sentence_does_not_inherit_support(
    checked: Attributor, invented: str
) -> None:
    answer = f"The Eiffel Tower was finished in 1889 for the World's Fair. {invented}"
    result = checked.attribute(answer, [TOWER])
    true, made_up = result.answer_sentences
    assert true.supported
    assert not made_up.supported
    assert made_up.citations  # its nearest sentence is still shown


@pytest.mark.parametrize(
    "invented",
    [
        "It also hosts the national swimming championships every summer.",
        "It was designed by Thomas Edison.",
        "It was started by foreign agents.",
    ],
)
def test_similarity_verdict_reads_support_from_the_sentence_alone(
    real_attributor: Attributor, invented: str
) -> None:
    """The default verdict too: the previous sentence helps find a pronoun-led sentence's
    evidence, but lends it no support (it did: "It was designed by Thomas Edison." passed)."""
    answer = f"The Eiffel Tower was finished in 1889 for the World's Fair. {invented}"
    true, made_up = real_attributor.attribute(answer, [TOWER]).answer_sentences
    alone = real_attributor.attribute(invented, [TOWER]).answer_sentences[0]
    assert real_attributor.config.verdict == "similarity"
    assert true.supported and not made_up.supported
    # the int8 encoder's vectors move by ~1e-2 with their batch, not more
    assert made_up.support == pytest.approx(alone.support, abs=0.02)
    kept = real_attributor.attribute(
        "The Eiffel Tower was finished in 1889. It is 330 metres tall.", [TOWER]
    )
    assert [s.supported for s in kept.answer_sentences] == [True, True]


@pytest.mark.parametrize("verdict", ["similarity", "verifier"])
def test_a_full_name_no_source_mentions_is_unsupported(verdict: str) -> None:
    """Under either verdict, and wherever the name stands: the rest of the sentence reads like
    the source ("designed by ... Eiffel Tower"), the name is invented."""
    attributor = Attributor(config=AttributionConfig(verdict=verdict))  # type: ignore[arg-type]
    for answer in ("The Eiffel Tower was designed by Thomas Edison.", "Thomas Edison designed it."):
        sentence = attributor.attribute(answer, [TOWER]).answer_sentences[0]
        assert not sentence.supported
        assert "no source mentions Thomas Edison" in sentence.issues
        assert sentence.citations  # its closest source is still shown
    kept = attributor.attribute("It was designed by Gustave Eiffel's company.", [TOWER])
    assert kept.answer_sentences[0].supported
    off = Attributor(config=AttributionConfig(verdict=verdict, check_names=False))  # type: ignore[arg-type]
    issues = off.attribute("The Eiffel Tower was designed by Thomas Edison.", [TOWER])
    assert not any("Thomas Edison" in x for x in issues.answer_sentences[0].issues)


def test_a_name_in_a_source_title_id_or_the_question_counts_as_mentioned(
    real_attributor: Attributor,
) -> None:
    """A chunk often says only "She won ..."; its title, its id or the question carries the
    name."""
    text = "She won the Nobel Prize in Chemistry in 1911 for discovering radium and polonium."
    answer = "Marie Curie won the Nobel Prize in Chemistry in 1911."
    bare = real_attributor.attribute(answer, [text]).answer_sentences[0]
    assert not bare.supported and "no source mentions Marie Curie" in bare.issues
    for source in (Source("c1", text, {"title": "Marie Curie"}), Source("Marie_Curie.txt", text)):
        sentence = real_attributor.attribute(answer, [source]).answer_sentences[0]
        assert sentence.supported and sentence.issues == ()
    # the question's words count too: chunks retrieved for it may not repeat its names
    asked = real_attributor.attribute(answer, [text], question="What did Marie Curie win?")
    assert "no source mentions Marie Curie" not in asked.answer_sentences[0].issues
    # beside another issue the name is still read against the sources (a shadowed variable
    # once read it against that issue's words)
    titled = Source("c1", text, {"title": "Marie Curie"})
    both = real_attributor.attribute("We know Marie Curie won it.", [titled]).answer_sentences[0]
    assert len(both.issues) == 1 and "first person" in both.issues[0]


@pytest.mark.parametrize("verdict", ["similarity", "verifier"])
def test_a_markdown_label_does_not_lower_its_statements_support(verdict: str) -> None:
    """LLMs open list items with bold labels; the label names a topic, not a fact."""
    attributor = Attributor(config=AttributionConfig(verdict=verdict))  # type: ignore[arg-type]
    plain = "The fire started in a bakery on Pudding Lane."
    fire = Source("fire", "The Great Fire of London began in 1666 in a bakery on Pudding Lane.")
    want = attributor.attribute(plain, [fire]).answer_sentences[0]
    assert want.supported
    labels = (
        "**Main cause:** ",
        "- **Origin**: ",
        "*Step 3:* ",
        "__Cause of the Fire:__ ",
        "Step 2: ",
    )
    for label in labels:
        answer = label + plain
        got = attributor.attribute(answer, [fire]).answer_sentences[0]
        assert got.support == pytest.approx(want.support, abs=0.02), label
        assert got.supported and got.issues == (), label  # "3" is no figure of the claim
        assert got.text == answer.removeprefix("- ")  # the span is still the whole sentence
    # the label's value, a pronoun after it, or a label that may be a name keep it read in
    for answer in (
        "**Thomas Edison:** The engineer whose company designed the tower.",
        "**Main cause:** The fire was started by foreign agents.",
    ):
        assert not attributor.attribute(answer, [TOWER, fire]).answer_sentences[0].supported


def test_pronoun_led_true_sentence_stays_supported(checked: Attributor) -> None:
    answer = "The Eiffel Tower was finished in 1889. It is 330 metres tall."
    result = checked.attribute(answer, [TOWER])
    assert [s.supported for s in result.answer_sentences] == [True, True]


def test_support_is_the_same_alone_and_in_a_longer_answer() -> None:
    # A per-text deterministic embedder, so this checks the verifier itself: no sentence's
    # support depends on the others. (The default int8 encoder's vectors move by ~1e-2 with
    # their batch; that is the encoder's property, shared by both verdicts.)
    sentences = [
        "The Eiffel Tower was finished in 1889 for the World's Fair.",
        "It was designed by Thomas Edison.",
        "The tower is 330 metres tall.",
    ]
    cfg = AttributionConfig(verdict="verifier")
    together = Attributor(HashingEmbedder(), config=cfg, cache_size=0).attribute(
        " ".join(sentences), [TOWER]
    )
    for k, sentence in enumerate(sentences):
        alone = Attributor(HashingEmbedder(), config=cfg, cache_size=0).attribute(sentence, [TOWER])
        assert alone.answer_sentences[0].support == together.answer_sentences[k].support
        assert alone.answer_sentences[0].supported == together.answer_sentences[k].supported


def test_similarity_verdict_keeps_its_threshold_and_path(real_attributor: Attributor) -> None:
    similar = Attributor(real_attributor.embedder, config=AttributionConfig(verdict="similarity"))
    result = similar.attribute("The tower is 330 metres tall.", [TOWER])
    assert result.config["verdict"] == "similarity"
    assert result.config["support_threshold"] == SIMILARITY_THRESHOLD
    assert "verify_ms" not in result.timings


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"features": ["x"]})])
def test_missing_or_corrupt_model_falls_back_to_similarity_with_one_warning(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    real_attributor: Attributor,
    content: str | None,
) -> None:
    broken = tmp_path / "verifier.json"
    if content is not None:
        broken.write_text(content, encoding="utf-8")
    monkeypatch.setattr(verifier, "default_model_file", lambda: broken)
    attributor = Attributor(real_attributor.embedder, config=AttributionConfig(verdict="verifier"))
    answer = "The tower is 330 metres tall. It was designed by Thomas Edison."
    with caplog.at_level(logging.WARNING, logger="rag_attrib"):
        first = attributor.attribute(answer, [TOWER])
        attributor.attribute(answer, [TOWER])
    warnings = [r for r in caplog.records if r.name == "rag_attrib.verifier"]
    assert len(warnings) == 1 and "verdict='similarity'" in warnings[0].getMessage()
    assert first.config["verdict"] == "similarity"
    similar = Attributor(real_attributor.embedder, config=AttributionConfig(verdict="similarity"))
    expected = similar.attribute(answer, [TOWER])
    assert [s.support for s in first.answer_sentences] == [
        s.support for s in expected.answer_sentences
    ]


def test_empty_source_gives_unsupported_sentences_without_citations(
    checked: Attributor,
) -> None:
    result = checked.attribute("The tower is 330 metres tall.", [""])
    (s,) = result.answer_sentences
    assert not s.supported and s.support == 0.0 and s.citations == ()
    result = checked.attribute("The tower is 330 metres tall.", [])
    assert not result.answer_sentences[0].supported


def test_a_very_long_source_still_finds_the_backing_sentence(checked: Attributor) -> None:
    filler = " ".join(
        f"Report {k} lists the quarterly figures of warehouse number {k}." for k in range(1500)
    )
    source = f"{filler} The Eiffel Tower is 330 metres tall. {filler}"
    result = checked.attribute(
        "The Eiffel Tower is 330 metres tall. It was designed by Thomas Edison.", [source]
    )
    true, invented = result.answer_sentences
    assert true.supported and not invented.supported
    assert "330 metres" in true.citations[0].text


def test_non_english_text_gets_a_defined_result(checked: Attributor) -> None:
    source = "Der Eiffelturm wurde 1889 für die Weltausstellung in Paris fertiggestellt."
    result = checked.attribute(
        "Der Eiffelturm wurde 1889 fertiggestellt. Er wurde von Thomas Edison entworfen.", [source]
    )
    supports = np.array([s.support for s in result.answer_sentences])
    assert supports.shape == (2,) and np.all((supports >= 0.0) & (supports <= 1.0))
    assert all(s.citations for s in result.answer_sentences)
    # the figure and the words match: the German copy of the source is supported
    assert result.answer_sentences[0].supported


def test_calibrate_fits_the_verifier_threshold(checked: Attributor) -> None:
    from rag_attrib.calibration import calibrate_report

    records = [
        {"text": "The tower is 330 metres tall.", "sources": [TOWER], "supported": True},
        {"text": "The tower was finished in 1889.", "sources": [TOWER], "supported": True},
        {"text": "The tower is 500 metres tall.", "sources": [TOWER], "supported": False},
        {"text": "Thomas Edison designed the tower.", "sources": [TOWER], "supported": False},
    ]
    report = calibrate_report(records, checked)
    assert report.config.verdict == "verifier"
    assert report.config.support_threshold is not None and 0.0 <= report.threshold <= 1.0
    assert report.auroc == 1.0


@pytest.mark.parametrize(
    ("answer", "issue"),
    [
        ("The tower opened in 1899 and is 330 metres tall.", "1899"),
        ("I liked the Eiffel Tower in Paris.", "'i'"),
        ("Was the Eiffel Tower completed in 1889?", "question"),
    ],
)
def test_readable_issues_still_flip_the_verifier_verdict(
    checked: Attributor, answer: str, issue: str
) -> None:
    """A figure no source holds, the speaker's own voice, a question: unsupported, said why,
    and the closest sources are still shown."""
    sentence = checked.attribute(answer, [TOWER]).answer_sentences[0]
    assert not sentence.supported and sentence.citations
    assert any(issue in text for text in sentence.issues), sentence.issues


def test_a_verifier_failing_at_run_time_leaves_a_defined_result(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    checked: Attributor,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("signals lost")  # fault injection: the verifier's own code failing

    monkeypatch.setattr(verifier, "signals", broken)
    with caplog.at_level(logging.WARNING, logger="rag_attrib"):
        result = checked.attribute("The tower is 330 metres tall.", [TOWER])
    assert result.config["verdict"] == "similarity"
    assert result.config["support_threshold"] == SIMILARITY_THRESHOLD
    assert result.error is not None and "signals lost" in result.error
    assert result.answer_sentences[0].supported
    assert result.answer_sentences[0].citations[0].source_id == "tower"
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "signals lost" in warned[0].getMessage()


@pytest.mark.parametrize("reply", ["Yes.", "Yes, it is.", "No, it is not."])
def test_a_reply_with_no_content_word_says_so(checked: Attributor, reply: str) -> None:
    answer = f"{reply} The tower is 330 metres tall."
    # without a question it states nothing: not a claim, and not counted as unsupported
    alone = checked.attribute(answer, [TOWER]).answer_sentences[0]
    assert not alone.claim and not alone.supported and alone.issues == (NOT_A_CLAIM,)
    # under a question it answers it: a claim, and no source says the Romans built the tower
    result = checked.attribute(answer, [TOWER], question="Did the Romans build the tower?")
    first = result.answer_sentences[0]
    assert first.claim and not first.supported and first.citations and first.issues
    assert result.unsupported == (first,)
    # checking every sentence: the tower source negates nothing, "No, it is not." does; still
    # no word-share or negation reason, since there is no word to look for
    every = Attributor(
        checked.embedder, config=AttributionConfig(verdict="verifier", check_claims=False)
    )
    first = every.attribute(answer, [TOWER]).answer_sentences[0]
    assert first.claim and not first.supported and first.citations
    assert first.issues == ("it has no content word a source could back (a reply such as 'Yes.')",)
