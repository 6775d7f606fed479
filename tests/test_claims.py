"""Sentences that only talk to the reader are not claims: not checked, not counted unsupported."""

from __future__ import annotations

import pytest

from rag_attrib import AttributionConfig, AttributionResult, Attributor
from rag_attrib.claims import is_claim, label
from rag_attrib.cli import _table
from rag_attrib.engine import NOT_A_CLAIM
from rag_attrib.render import render_html

SOURCES = [
    "The Great Fire of London began on 2 September 1666 in a bakery on Pudding Lane. "
    "It destroyed 13,200 houses.",
    "An inquiry concluded that the fire was started accidentally by Thomas Farriner's oven.",
]
TRUE = "The Great Fire of London began on 2 September 1666 in a bakery on Pudding Lane."
INVENTED = "It was designed by Thomas Edison in 1901."
CHAT = f"Great question! {TRUE} {INVENTED} I hope this helps! Let me know if you have questions."


@pytest.mark.parametrize(
    "sentence",
    [
        "Yes.",
        "Sure!",
        "No, it is not.",
        "Great question!",
        "That's a good question.",
        "I hope this helps!",
        "Thanks for asking.",
        "Let me know if you have any other questions.",
        "Feel free to ask if anything is unclear.",
        "Oh wow, that is interesting.",
        "I agree!",
        "Here is what the sources say:",
        "Here is a concise summary of the passage:",
        "Based on the provided context, here is what I found:",
        "In summary:",
        "I don't know.",
        "I cannot answer this question based on the provided context.",
        "The provided context does not mention who designed the tower.",
        "There is no information about the architect in the sources.",
        "Gute Frage!",
        "Ich hoffe, das hilft!",
        "Ja.",
        "¡Buena pregunta!",
        "Espero que esto te ayude.",
        "Bonne question !",
        "J'espère que cela vous aide.",
        "N'hésitez pas à me poser d'autres questions.",
        "I don\u2019t know.",  # a typographic apostrophe, as LLMs write it
        "It really is.",
        "oh that is true.",
        "yeah they are.",
        "Is there anything else I can help you with?",
        "Would you like to know more about the fire's aftermath?",
        "Would you like me to summarise the other sources too?",
        "Do you want me to compare it with the Chicago fire?",
        "Shall I go into the rebuilding of St Paul's?",
    ],
)
def test_talk_is_not_a_claim(sentence: str) -> None:
    assert not is_claim(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "Yes, it opened in 1889.",
        "Sure, the fire began in a bakery.",
        "Great question! The fire began in 1666.",  # one span holding both (a splitter's miss)
        "Here is what the sources say: the fire started accidentally.",
        "I love that movie!",  # the speaker's own voice: a claim, checked by check_claims
        "What year did the fire start?",  # a question is still a claim, flagged as one
        "What is it about?",  # even with no content word
        "Do you?",
        "Do you want to repeat a behavior?",  # asks about the world, not an offer
        "It is true that Paris is in France.",
        "The answer is no.",
        "Based on the provided context, the fire began in 1666.",
        "In summary, the fire destroyed 13,200 houses.",
        "The sources say the fire began in a bakery.",
        "Here is the bakery where the fire began.",  # no colon: a statement, not a lead-in
        "I don't know who designed it, but it opened in 1889.",
        "Ja, der Brand begann 1666 in einer Bäckerei.",
        "Sí, el incendio comenzó en 1666.",
        "Oui, l'incendie a commencé en 1666.",
    ],
)
def test_a_statement_is_a_claim(sentence: str) -> None:
    assert is_claim(sentence)


def test_under_a_question_a_bare_reply_answers_it() -> None:
    assert is_claim("Yes.", question="Did the fire start in a bakery?")
    assert is_claim("No, it is not.", question="Is the tower short?")
    assert is_claim("That is true.", question="Is the tower tall?")
    # a pleasantry has a word of its own and stays talk
    assert not is_claim("Thanks!", question="Did the fire start in a bakery?")


@pytest.mark.parametrize("verdict", ["similarity", "verifier"])
def test_a_chat_answer_flags_only_its_invented_claim(
    real_attributor: Attributor, verdict: str
) -> None:
    attributor = Attributor(real_attributor.embedder, config=AttributionConfig(verdict=verdict))
    result = attributor.attribute(CHAT, SOURCES)
    claims = [s.claim for s in result.answer_sentences]
    assert claims == [False, True, True, False, False]
    assert [s.text for s in result.unsupported] == [INVENTED]
    assert result.coverage == 0.5
    for s in result.answer_sentences:
        if not s.claim:
            assert not s.supported and s.issues == (NOT_A_CLAIM,)
            assert s.citations == ()  # it claims nothing, so nothing is its closest source
    # the true claim still cites its source
    assert result.answer_sentences[1].supported
    assert result.answer_sentences[1].citations[0].source_index == 0


def test_check_claims_off_checks_every_sentence(real_attributor: Attributor) -> None:
    attributor = Attributor(real_attributor.embedder, config=AttributionConfig(check_claims=False))
    result = attributor.attribute(CHAT, SOURCES)
    assert all(s.claim for s in result.answer_sentences)
    assert "Great question!" in [s.text for s in result.unsupported]


def test_an_answer_of_talk_only_has_full_coverage(real_attributor: Attributor) -> None:
    result = real_attributor.attribute("Thanks! I hope this helps.", SOURCES)
    assert [s.claim for s in result.answer_sentences] == [False, False]
    assert result.unsupported == () and result.coverage == 1.0
    assert "0/0 sentences supported (+2 not claims)" in repr(result)


def test_claim_survives_a_round_trip_and_old_records_read_as_claims(
    real_attributor: Attributor,
) -> None:
    result = real_attributor.attribute(CHAT, SOURCES)
    data = result.to_dict()
    assert [s["claim"] for s in data["answer_sentences"]] == [False, True, True, False, False]
    back = AttributionResult.from_dict(data)
    assert back.answer_sentences == result.answer_sentences
    for s in data["answer_sentences"]:
        del s["claim"]  # a record written before the field existed
    old = AttributionResult.from_dict(data)
    assert all(s.claim for s in old.answer_sentences)
    data["answer_sentences"][0]["claim"] = "no"
    with pytest.raises(ValueError, match=r"answer_sentences\[0\]\.claim"):
        AttributionResult.from_dict(data)


def test_views_show_talk_apart(real_attributor: Attributor) -> None:
    result = real_attributor.attribute(CHAT, SOURCES)
    table = _table(result, 100)
    assert table.count("not a claim (it talks to the reader): not checked") == 3
    assert table.count("UNSUPPORTED") == 1
    assert "coverage 50% (1/2 supported)" in table
    html = render_html(result)
    assert html.count('class="ra-tag ra-tag-talk">not a claim<') == 3
    assert html.count("ra-ans ra-talk ") == 3
    assert "(1/2 sentences, 3 not claims)" in html
    # the legend's marks are numbered as the first sentence that cites, not the greeting
    assert "answer sentence 2 cites this (its best source)" in html


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        (
            "**Main cause:** The fire began in a bakery.",
            ("Main cause", "The fire began in a bakery."),
        ),
        ("**Origin**: The fire began in a bakery.", ("Origin", "The fire began in a bakery.")),
        (
            "*Step 3:* Preheat the oven to 200 degrees.",
            ("Step 3", "Preheat the oven to 200 degrees."),
        ),
        (
            "__Cause of the fire__ : The fire began there.",
            ("Cause of the fire", "The fire began there."),
        ),
        ("**Date:** 2 September 1666.", None),  # the label's value, not a statement
        ("**The tower:** It was designed by Eiffel.", None),  # "It" may mean the label
        ("**Thomas Edison:** The engineer who designed it.", None),  # maybe the subject
        ("**Main Cause:** The fire began in a bakery.", None),  # Title Case reads like a name
        (
            "Step 2: Preheat the oven to 200 degrees.",
            ("Step 2", "Preheat the oven to 200 degrees."),
        ),
        ("Article 5: Everyone has the right to liberty.", None),  # plain: maybe the subject
        ("Tim Roth: An English actor born in 1961.", None),  # plain labels are often subjects
        ("He has three siblings: Wade, Shane and Bailey.", None),
        ("**The fire began in a bakery.** It spread fast.", None),  # bold, no colon
        ("**A very long label that goes on and on:** The fire began there.", None),
        ("**Note:** the fire began in a bakery.", None),  # no new sentence after it
        ("**Title 'A: B':** The fire began in a bakery.", None),
    ],
)
def test_a_leading_markdown_label_is_split_from_its_statement(
    sentence: str, expected: tuple[str, str] | None
) -> None:
    assert label(sentence) == expected
