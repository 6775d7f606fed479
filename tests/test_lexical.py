"""Lexical strength and figure extraction, checked against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag_attrib.lexical import (
    content_tokens,
    first_person,
    is_question,
    lexical_matrix,
    missing_names,
    missing_numbers,
    numbers,
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("The cats were sleeping in the garden.", ["cat", "sleep", "garden"]),
        ("It cost 3.5 million in 1,200 shops.", ["cost", "3.5", "million", "1,200", "shop"]),
        ("Der Hund und die Katze.", ["hund", "katze"]),
    ],
)
def test_content_tokens(text: str, tokens: list[str]) -> None:
    """Stopwords go, plurals and -ing fold, figures stay whole."""
    assert content_tokens(text) == tokens


def test_lexical_matrix_is_idf_weighted_recall() -> None:
    """res[i][j] = sum of idf of answer words found in unit j / sum of idf of answer words."""
    units = ["red apple", "green apple", "blue sky"]
    out = lexical_matrix(["red apple pie"], units)
    n = len(units)
    idf = {
        "red": math.log((n + 1) / 1.5),
        "apple": math.log((n + 1) / 2.5),
        "pie": math.log((n + 1) / 0.5),
    }
    total = sum(idf.values())
    np.testing.assert_allclose(
        out[0], [(idf["red"] + idf["apple"]) / total, idf["apple"] / total, 0.0], rtol=1e-5
    )
    assert lexical_matrix([], units).shape == (0, 3) and lexical_matrix(["x"], []).shape == (1, 0)


@pytest.mark.parametrize(
    ("sentence", "evidence", "missing"),
    [
        ("Built in 1667 for 13200 pounds.", ["In 1666 it cost 13,200 pounds."], ["1667"]),
        ("It opened at 12:30 on 3.5 acres.", ["Doors at 12:30.", "A 3.5 acre site."], []),
        ("No figures here.", ["1900"], []),
        ("Item 7 and item 8.", [], ["7", "8"]),
    ],
)
def test_missing_numbers(sentence: str, evidence: list[str], missing: list[str]) -> None:
    """A figure is missing when no evidence text states it, however it is written."""
    assert missing_numbers(sentence, evidence) == missing


def test_numbers_normalise_thousands_separators() -> None:
    """13,200 and 13200 are the same figure; 2,5 (a decimal comma) is kept as written."""
    assert numbers("13,200 and 13200 and 2,5") == {"13200", "2,5"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("i like michael caine too", {"i"}),
        ("Then I went home, and my dog came.", {"i", "my"}),
        ("Honestly I am not sure.", {"i"}),
        ("World War I ended in 1918.", set()),
        ("Henry I was king; J. K. Rowling wrote (i) this.", set()),
        ("The US and our partners agreed.", {"our"}),
        ("Ich glaube, wir haben recht.", {"ich", "wir"}),
        ("J'ai vu le film avec moi.", {"j'", "moi"}),
        ("Yo creo que sí.", {"yo"}),
    ],
)
def test_first_person_finds_the_speaker_not_numerals(text: str, words: set[str]) -> None:
    """First-person words in en/de/es/fr; Roman numeral I, initials and "(i)" are not."""
    assert first_person(text) == words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("I think the capital is Paris.", set()),
        ("yes, I heard that the team with the most points wins.", set()),
        ("I 'm not sure but the story concerns Harry.", set()),
        ("I don't know, but Cobain was a singer.", set()),
        ("I don't like cats.", {"i"}),
        ("I think I will go with my sister.", {"i", "my"}),
        ("They think I am right.", {"i"}),
    ],
)
def test_a_leading_hedge_is_not_the_speakers_voice(text: str, words: set[str]) -> None:
    """A leading "I think", "I heard that" or "I am not sure but" reports what follows."""
    assert first_person(text) == words


def test_is_question() -> None:
    """A trailing question mark, before closing quotes or brackets, makes a question."""
    assert (
        is_question("Is it true?") and is_question('He asked "why?"') and is_question("(Really?)")
    )
    assert not is_question("Yes.") and not is_question("Why? Because it rained.")


SOURCE_WORDS = frozenset(
    content_tokens(
        "The Eiffel Tower was designed by the engineering company of Gustave Eiffel. "
        "It started in a bakery belonging to Farriner on Pudding Lane."
    )
)


@pytest.mark.parametrize(
    ("sentence", "missing"),
    [
        ("It was designed by Thomas Edison.", ["Thomas Edison"]),
        ("Thomas Edison designed it.", ["Thomas Edison"]),  # at the start too
        ("Er wurde von Thomas Edison entworfen.", ["Thomas Edison"]),
        ("It was built in New York and San Francisco.", ["New York", "San Francisco"]),
        ("Mr Eiffel designed the Eiffel Tower.", []),  # a word of each name is in the sources
        ("It was designed by Gustave Eiffel.", []),
        ("The fire began in Farriner's bakery on Pudding Lane.", []),
        ("The tower was designed by Edison.", []),  # one word: left to the verdict
        ("The NASA team designed it.", []),  # an acronym is not a full name
        ("The Chinese team designed it in China.", []),
        ("", []),
        # Markdown labels and headings LLMs write are not names of anything
        ("**Main Cause:** The fire started on Pudding Lane.", []),
        ("Key Takeaways: The fire started on Pudding Lane.", []),
        ("- **Fire Origin**: It started on Pudding Lane.", []),
        ("## Key Takeaways", []),
        ("**Main Cause:** Thomas Edison started it.", ["Thomas Edison"]),
    ],
)
def test_missing_names(sentence: str, missing: list[str]) -> None:
    """Full names (two or more capitalised words) none of whose words the sources hold."""
    assert missing_names(sentence, SOURCE_WORDS) == missing
