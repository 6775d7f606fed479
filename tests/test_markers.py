"""Parsing the markers an LLM writes: styles, spans, covered claims, what is not a marker."""

from __future__ import annotations

import pytest

from rag_attrib.errors import ConfigError
from rag_attrib.markers import clean_text, parse_markers, resolve, to_original


def labels(answer: str, **kw: object) -> list[tuple[str, str, str | None]]:
    """(marker text, label, claim text) for every marker of `answer`."""
    return [
        (m.text, m.label, m.claim.text if m.claim else None)
        for m in parse_markers(answer, **kw)  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            "Paris is the capital [1]. It has 2 million people [2][3].",
            [
                ("[1]", "1", "Paris is the capital"),
                ("[2]", "2", "It has 2 million people"),
                ("[3]", "3", "It has 2 million people"),
            ],
        ),
        (
            "Paris is the capital.[1] The tower is tall.[2, 3]",
            [
                ("[1]", "1", "Paris is the capital."),
                ("[2, 3]", "2", "The tower is tall."),
                ("[2, 3]", "3", "The tower is tall."),
            ],
        ),
        ("Water boils at 100 C[^4].", [("[^4]", "4", "Water boils at 100 C")]),
        ("The sea is salty [Source 2].", [("[Source 2]", "2", "The sea is salty")]),
        (
            "According to Source 2, the tower is tall.",
            [("Source 2", "2", "According to Source 2, the tower is tall.")],
        ),
        ("The tower is tall (Source 1).", [("(Source 1)", "1", "The tower is tall")]),
        ('<cite id="3">Paris is big</cite> and old.', [('<cite id="3">', "3", "Paris is big")]),
        ("Paris is big <cite id='a'/>.", [("<cite id='a'/>", "a", "Paris is big")]),
        (
            "Rome is old, [1] and Oslo is cold [2].",
            [("[1]", "1", "Rome is old,"), ("[2]", "2", "and Oslo is cold")],
        ),
    ],
)
def test_styles_spans_and_claims(answer: str, expected: list[tuple[str, str, str | None]]) -> None:
    """Each style is found with its label and the text it covers."""
    assert labels(answer) == expected
    for m in parse_markers(answer):
        assert answer[m.start : m.end] == m.text
        assert answer[m.label_start : m.label_end] == m.label
        if m.claim:
            assert answer[m.claim.start : m.claim.end] == m.claim.text


@pytest.mark.parametrize(
    "answer",
    [
        "```python\nx = items[1]\n```",
        "Use `arr[1]` here.",
        "See [the docs](https://example.com/a[1]) now.",
        "Read http://example.com/page[2] please.",
        "In code, items[1] = 3 and row_id[2] and obj.attr[0] and f(x)[0].",
        "[see here][1] is a reference link.\n\n[1]: https://example.com",
        "It happened in [2024].",
        "A footnote definition:\n[^1]: the note text",
    ],
)
def test_not_citations(answer: str) -> None:
    """Code, links, URLs, array indexing, years and definitions hold no citation."""
    assert parse_markers(answer) == []


def test_unclosed_code_fence_hides_the_rest() -> None:
    """An unclosed fence runs to the end of the text."""
    assert (
        parse_markers("Fine [1].\n```\na[2] [3]")
        and len(parse_markers("Fine [1].\n```\na[2] [3]")) == 1
    )


def test_ids_in_brackets_need_known_ids() -> None:
    """`[doc-a]` is a marker only when doc-a is a source id."""
    assert parse_markers("Paris is big [doc-a].") == []
    (m,) = parse_markers("Paris is big [doc-a].", ids=["doc-a"])
    assert m.label == "doc-a"


@pytest.mark.parametrize(
    ("answer", "claims"),
    [
        ("[1] [2]", [None, None]),  # only markers
        ("[1] Paris is the capital.", ["Paris is the capital."]),  # nothing before: what follows
        ("", []),
        ("Paris [1", []),  # unbalanced bracket
        ('<cite id="1">Paris is big. Rome is old.', ["Paris is big."]),  # unclosed tag
        ("Text </cite> more [1].", ["Text </cite> more"]),  # stray closing tag
    ],
)
def test_odd_input_has_defined_results(answer: str, claims: list[str | None]) -> None:
    """Markers with no text, unbalanced tags and brackets: defined results, no exception."""
    assert [m.claim.text if m.claim else None for m in parse_markers(answer)] == claims


@pytest.mark.parametrize(
    ("answer", "ids", "numbering", "expected", "used"),
    [
        ("a [1]. b [3].", ["x", "y", "z"], "auto", [0, 2], "1-based"),
        ("a [0]. b [2].", ["x", "y", "z"], "auto", [0, 2], "0-based"),
        ("a [1]. b [4].", ["x", "y", "z"], "auto", [0, None], "1-based"),
        ("a [0]. b [3].", ["x", "y", "z"], "auto", [None, 2], "1-based"),
        ("a [12]. b [40].", ["12", "40"], "auto", [0, 1], "ids"),
        ("a [1]. b [2].", ["x", "y"], "0-based", [1, None], "0-based"),
        ("a [^y].", ["x", "y"], "auto", [1], "ids"),
    ],
)
def test_numbering(
    answer: str, ids: list[str], numbering: str, expected: list[int | None], used: str
) -> None:
    """Numbers are 1-based positions unless 0-based fits, or only ids explain them."""
    positions, chosen = resolve(parse_markers(answer, ids=ids), ids, numbering)  # type: ignore[arg-type]
    assert (positions, chosen) == (expected, used)


def test_bad_numbering_names_the_choices() -> None:
    """An unknown numbering raises ConfigError listing the valid ones."""
    with pytest.raises(ConfigError, match="'1-based'"):
        resolve([], [], "one")  # type: ignore[arg-type]


def test_clean_text_and_offsets_map_back() -> None:
    """Markers come out for attribution; offsets in the clean text map back to the answer."""
    answer = 'Paris is big [1]. <cite id="2">Rome is old</cite>. According to Source 3, Oslo.'
    clean, edits = clean_text(answer, parse_markers(answer))
    assert clean == "Paris is big. Rome is old. According to the source, Oslo."
    k = clean.index("Rome")
    assert answer[to_original(k, edits) :].startswith("Rome")
    end = clean.index("old") + 3
    assert answer[: to_original(end, edits, end=True)].endswith("old")


def test_a_list_bullet_is_not_part_of_the_claim() -> None:
    """Markdown list items open with "- " or "2. ": the splitter leaves them out of sentences,
    and a marker's claim leaves them out too."""
    answer = "Causes:\n- The fire began in a bakery [1].\n  2. Wind spread it [2].\n* 3 ships [3]."
    claims = [m.claim.text if m.claim else None for m in parse_markers(answer)]
    assert claims == ["The fire began in a bakery", "Wind spread it", "3 ships"]
