"""check_citations / repair_citations: verdicts from the attribution, repairs that touch only
markers (property-tested), the JSON shape, and odd input."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag_attrib import (
    AttributionConfig,
    Attributor,
    CitationReport,
    Source,
    Span,
    check_citations,
    repair_citations,
)
from rag_attrib.markers import parse_markers, removal_start
from rag_attrib.testing import HashingEmbedder

SOURCES = [
    "The Eiffel Tower is in Paris. It was completed in 1889.",
    "Berlin is the capital of Germany. The Brandenburg Gate stands in Berlin.",
    "Mount Everest is the highest mountain on Earth.",
]
ANSWER = (
    "The Eiffel Tower was completed in 1889 [2]. Berlin is the capital of Germany [2]. "
    "Mount Everest is the highest mountain on Earth [7]. The moon is made of green cheese [1]. "
    "The Brandenburg Gate stands in Berlin."
)
ATTRIBUTOR = Attributor(HashingEmbedder())


def verdicts(report: CitationReport) -> list[tuple[str, str | None, str, str | None]]:
    """(label, cited id, verdict, suggested id) per marker."""
    return [(m.label, m.source_id, m.verdict, m.suggested_source_id) for m in report.markers]


def test_each_verdict() -> None:
    """Correct, wrong source (with the right one and its evidence), dangling, unsupported."""
    report = check_citations(ANSWER, SOURCES, attributor=ATTRIBUTOR)
    assert verdicts(report) == [
        ("2", "1", "wrong_source", "0"),
        ("2", "1", "correct", None),
        ("7", None, "dangling", "2"),
        ("1", "0", "unsupported", None),
    ]
    wrong = report.markers[0]
    assert wrong.evidence is not None and wrong.evidence.text == "It was completed in 1889."
    assert ANSWER[wrong.start : wrong.end] == "[2]"
    assert wrong.claim is not None and wrong.claim.text == "The Eiffel Tower was completed in 1889"
    assert [(x.text, x.suggested_source_id) for x in report.missing] == [
        ("The Brandenburg Gate stands in Berlin.", "1")
    ]
    assert [s.text for s in report.unsupported] == ["The moon is made of green cheese [1]."]
    assert report.counts() == {
        "correct": 1,
        "wrong_source": 1,
        "unsupported": 1,
        "dangling": 1,
        "missing": 1,
    }
    assert not report.ok


def test_reads_the_verdict_from_a_given_result() -> None:
    """A result already at hand is used as is: its verdict decides, nothing is re-scored."""
    result = ATTRIBUTOR.attribute(ANSWER, SOURCES)
    report = check_citations(ANSWER, SOURCES, result=result)
    assert report.result is result
    assert [m.verdict for m in report.markers][:2] == ["wrong_source", "correct"]
    flipped = result.answer_sentences[1]
    from dataclasses import replace

    unsupported = replace(
        result,
        answer_sentences=(
            result.answer_sentences[0],
            replace(flipped, supported=False, citations=()),
            *result.answer_sentences[2:],
        ),
    )
    again = check_citations(ANSWER, SOURCES, result=unsupported)
    assert again.markers[1].verdict == "unsupported"


def test_closest_sources_of_an_unsupported_sentence_never_change_the_check() -> None:
    """The moon sentence keeps its closest sources; the markers are judged, suggested and
    repaired exactly as when it carries none, from the full result and from a trimmed record
    (no strength matrix: the citations are all the check has)."""
    from dataclasses import replace

    from rag_attrib import AttributionResult

    result = ATTRIBUTOR.attribute(ANSWER, SOURCES)
    moon = result.answer_sentences[3]
    assert not moon.supported and moon.citations
    bare = replace(
        result,
        answer_sentences=tuple(
            s if s.supported else replace(s, citations=()) for s in result.answer_sentences
        ),
    )

    def seen(report: CitationReport) -> list[object]:
        evidence = [m.evidence.text if m.evidence else None for m in report.markers]
        missing = [(x.text, x.suggested_source_id) for x in report.missing]
        return [verdicts(report), evidence, missing, [x.text for x in report.unsupported]]

    pairs = [
        (result, bare),
        (
            AttributionResult.from_dict(result.to_dict()),
            AttributionResult.from_dict(bare.to_dict()),
        ),
    ]
    for with_closest, without in pairs:
        a = check_citations(ANSWER, SOURCES, result=with_closest)
        b = check_citations(ANSWER, SOURCES, result=without)
        assert seen(a) == seen(b)
        assert a.markers[3].verdict == "unsupported"
    fixed = repair_citations(
        ANSWER, SOURCES, result=result, add_missing=True, flag_unsupported=True
    )
    same = repair_citations(ANSWER, SOURCES, result=bare, add_missing=True, flag_unsupported=True)
    assert fixed.text == same.text


def test_result_of_another_answer_is_refused() -> None:
    """A result of a different answer is an error that names the fix."""
    result = ATTRIBUTOR.attribute("Something else entirely.", SOURCES)
    with pytest.raises(ValueError, match="leave it out"):
        check_citations(ANSWER, SOURCES, result=result)


def test_ids_numbering_and_source_objects() -> None:
    """Markers may name source ids; the report names ids as given."""
    sources = [Source("doc-a", SOURCES[0]), Source("doc-b", SOURCES[1])]
    report = check_citations(
        "Berlin is the capital of Germany [doc-a].", sources, attributor=ATTRIBUTOR
    )
    assert report.numbering == "ids"
    assert verdicts(report) == [("doc-a", "doc-a", "wrong_source", "doc-b")]
    fixed = repair_citations(
        "Berlin is the capital of Germany [doc-a].", sources, attributor=ATTRIBUTOR
    )
    assert fixed.text == "Berlin is the capital of Germany [doc-b]."


def test_repair() -> None:
    """Wrong markers are replaced, dangling ones dropped; options add and flag."""
    fixed = repair_citations(ANSWER, SOURCES, attributor=ATTRIBUTOR)
    assert fixed.text == (
        "The Eiffel Tower was completed in 1889 [1]. Berlin is the capital of Germany [2]. "
        "Mount Everest is the highest mountain on Earth. The moon is made of green cheese [1]. "
        "The Brandenburg Gate stands in Berlin."
    )
    assert [c.kind for c in fixed.changes] == ["replaced", "dropped"]
    more = repair_citations(
        ANSWER, SOURCES, attributor=ATTRIBUTOR, add_missing=True, flag_unsupported=True
    )
    assert more.text.endswith(
        "Mount Everest is the highest mountain on Earth [3]. "
        "The moon is made of green cheese [unsupported] [1]. "
        "The Brandenburg Gate stands in Berlin [2]."
    )
    for c in more.changes:
        assert ANSWER[c.old_start : c.old_end] == c.old_text
        assert more.text[c.new_start : c.new_end] == c.new_text


def test_repair_never_cites_a_source_twice() -> None:
    """`[2][1]` where 1 is right and 2 is wrong becomes `[1]`, not `[1][1]`."""
    fixed = repair_citations(
        "The Eiffel Tower was completed in 1889.[2][1]", SOURCES, attributor=ATTRIBUTOR
    )
    assert fixed.text == "The Eiffel Tower was completed in 1889.[1]"


@pytest.mark.parametrize(
    "answer",
    [
        "[1][2][3]",
        "[1]",
        "[9] Paris.",
        "Unbalanced <cite id='1'>tag. And [4",
        "</cite> stray [2].",
        "Code `a[1]` and [link](http://x.io/[1]) and http://x.io/[2] and items[1] = 2.",
        "",
        "   ",
        "No markers at all. Berlin is the capital of Germany.",
    ],
)
def test_odd_answers_give_defined_reports(answer: str) -> None:
    """Only markers, markers beyond the sources, unbalanced tags, markers in code and links:
    a report, never an exception; repair keeps the text outside markers."""
    report = check_citations(answer, SOURCES, attributor=ATTRIBUTOR)
    for m in report.markers:
        assert m.verdict in ("correct", "wrong_source", "unsupported", "dangling")
        if m.claim is None:
            assert m.verdict in ("unsupported", "dangling")
    fixed = repair_citations(answer, SOURCES, attributor=ATTRIBUTOR)
    assert_only_markers_changed(answer, fixed.text, fixed.changes)
    CitationReport.from_dict(json.loads(json.dumps(report.to_dict())))


def test_no_sources() -> None:
    """No sources: every marker dangles."""
    report = check_citations("Paris is big [1].", [], attributor=ATTRIBUTOR)
    assert [m.verdict for m in report.markers] == ["dangling"]


def test_json_round_trip() -> None:
    """to_dict is JSON-safe and versioned; from_dict rebuilds the same report."""
    report = check_citations(ANSWER, SOURCES, attributor=ATTRIBUTOR)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["schema"] == "rag_attrib.citations/1"
    again = CitationReport.from_dict(data)
    assert again.markers[0] == report.markers[0]
    assert [m.verdict for m in again.markers] == [m.verdict for m in report.markers]
    assert again.missing == report.missing
    dangling = again.markers[2]
    assert dangling.verdict == "dangling" and math.isnan(dangling.support)
    with pytest.raises(ValueError, match=r"CitationReport\.to_dict"):
        CitationReport.from_dict({"schema": "rag_attrib.attribution/1"})


def assert_only_markers_changed(old: str, new: str, changes: tuple) -> None:  # type: ignore[type-arg]
    """Every change replaces (part of) a marker, the spaces before a dropped one, or inserts;
    applying the changes to `old` gives `new`."""
    markers = parse_markers(old)
    allowed = [(removal_start(old, m), m.end) for m in markers]
    allowed += [(m.close.start, m.close.end) for m in markers if m.close]
    rebuilt, pos = [], 0
    for c in changes:
        if c.old_start < c.old_end:
            assert any(a <= c.old_start and c.old_end <= b for a, b in allowed), c
        rebuilt += [old[pos : c.old_start], c.new_text]
        pos = c.old_end
    rebuilt.append(old[pos:])
    assert "".join(rebuilt) == new


WORDS = st.sampled_from(
    [
        "Berlin",
        "is",
        "the",
        "capital",
        "of",
        "Germany",
        "Eiffel",
        "Tower",
        "1889",
        "moon",
        "[1]",
        "[2]",
        "[3]",
        "[9]",
        "[0]",
        "[^1]",
        "[1, 2]",
        "[2][3]",
        '<cite id="2">',
        "</cite>",
        "Source 2",
        "(Source 3)",
        "`a[1]`",
        "x[1]",
        "[a](http://b.c/[1])",
        "http://a.b/[2]",
        ".",
        ",",
        "\n",
        "```",
        "[",
        "]",
        "  ",
        "é",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(WORDS, max_size=30).map(" ".join), st.booleans(), st.booleans())
def test_repair_changes_only_markers(answer: str, add: bool, flag: bool) -> None:
    """Property: whatever the answer, repair edits markers only (or inserts new ones), and
    the changes' offsets rebuild the new text from the old."""
    fixed = repair_citations(
        answer, SOURCES, attributor=ATTRIBUTOR, add_missing=add, flag_unsupported=flag
    )
    assert_only_markers_changed(answer, fixed.text, fixed.changes)
    for c in fixed.changes:
        assert fixed.text[c.new_start : c.new_end] == c.new_text


@pytest.mark.slow
def test_real_model_verdicts(real_attributor: Attributor) -> None:
    """With the bundled model: a marker on the wrong document is caught and repaired."""
    sources = [
        "The Great Fire of London broke out in 1666. It started in a bakery on Pudding Lane.",
        "Strong easterly winds spread the flames across the timber houses of the city.",
        "St Paul's Cathedral was rebuilt by Christopher Wren after the fire.",
    ]
    answer = (
        "The fire began in a bakery on Pudding Lane [2]. Easterly winds spread the flames [2]. "
        "Christopher Wren rebuilt St Paul's Cathedral [4]."
    )
    report = check_citations(answer, sources, attributor=real_attributor)
    assert verdicts(report) == [
        ("2", "1", "wrong_source", "0"),
        ("2", "1", "correct", None),
        ("4", None, "dangling", "2"),
    ]
    fixed = repair_citations(answer, sources, result=report.result, add_missing=True)
    assert fixed.text == (
        "The fire began in a bakery on Pudding Lane [1]. Easterly winds spread the flames [2]. "
        "Christopher Wren rebuilt St Paul's Cathedral [3]."
    )


TWO_HOP = [
    "The film Inception was directed by Christopher Nolan in 2010.",
    "Christopher Nolan was born in London in 1970.",
    "Steven Spielberg grew up in Cincinnati, Ohio.",
    "Inception is a science fiction film about dreams.",
]
TWO_HOP_CLAIM = "The director of Inception was born in London"


@pytest.mark.parametrize("verdict", ["similarity", "verifier"])
@pytest.mark.parametrize(
    ("markers", "expected"),
    [
        ("[1][2]", [("1", "correct", None), ("2", "correct", None)]),
        ("[2][1]", [("2", "correct", None), ("1", "correct", None)]),
        ("[2]", [("2", "correct", None)]),
        ("[3][2]", [("3", "wrong_source", "0"), ("2", "correct", None)]),
        ("[4][2]", [("4", "wrong_source", "0"), ("2", "correct", None)]),
        ("[4]", [("4", "wrong_source", "1")]),
    ],
)
def test_a_claim_citing_n_sources_is_backed_by_its_n_strongest(
    markers: str, expected: list[tuple[str, str, str | None]], verdict: str
) -> None:
    """A two-hop claim may cite the source that holds only its first hop (the second marker of
    "[1][2]"), but a source that merely shares its words (4: "Inception") or none of them (3)
    is wrong, and the repair names the missing hop. The same under either verdict."""
    attributor = Attributor(HashingEmbedder(), config=AttributionConfig(verdict=verdict))  # type: ignore[arg-type]
    report = check_citations(f"{TWO_HOP_CLAIM} {markers}.", TWO_HOP, attributor=attributor)
    assert report.result is not None and report.result.config["verdict"] == verdict
    assert [(m.label, m.verdict, m.suggested_source_id) for m in report.markers] == expected


def test_second_hop_is_recognised_by_the_name_it_shares_with_the_other_source() -> None:
    """`bridged`: the first-hop source's best sentence names "Christopher Nolan", which the claim
    does not and the second source holds; the distractor's names ("Inception") are the claim's."""
    from rag_attrib._citation_rules import bridged

    result = ATTRIBUTOR.attribute(f"{TWO_HOP_CLAIM}.", TWO_HOP)
    assert bridged(result, 0, 0, 1)
    assert not bridged(result, 0, 3, 1)
    assert not bridged(result, 0, 2, 1)


def test_exact_support_is_the_sentence_against_only_its_cited_sources() -> None:
    """exact_support=True: each marker's support is what attributing its sentence to only the
    sources its sentence cites gives; by default it is read from the result. Verdicts agree."""
    answer = f"{TWO_HOP_CLAIM} [4][2]. Inception was directed by Christopher Nolan [3]."
    fast = check_citations(answer, TWO_HOP, attributor=ATTRIBUTOR)
    exact = check_citations(answer, TWO_HOP, attributor=ATTRIBUTOR, exact_support=True)
    assert [m.verdict for m in exact.markers] == [m.verdict for m in fast.markers]
    assert exact.result is not None
    for m in exact.markers:
        assert m.sentence_index is not None
        sentence = exact.result.answer_sentences[m.sentence_index].text
        cited = sorted(
            {x.source_index for x in exact.markers if x.sentence_index == m.sentence_index} - {None}
        )
        alone = Attributor(
            ATTRIBUTOR.embedder,
            splitter=lambda t, s=sentence: (
                [Span(t, 0, len(t))] if t == s else ATTRIBUTOR.splitter(t)
            ),
        ).attribute(sentence, [TWO_HOP[k] for k in cited])
        assert m.support == pytest.approx(alone.answer_sentences[0].support, abs=1e-6)
    assert [round(m.support, 4) for m in exact.markers] != [
        round(m.support, 4) for m in fast.markers
    ]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(WORDS, max_size=30).map(" ".join), st.booleans())
def test_any_answer_gets_a_consistent_report(answer: str, exact: bool) -> None:
    """Property: whatever the answer (markers in code, links, URLs, indexing, unbalanced tags,
    beyond the sources, with no text before them, only markers), the report is defined: each
    marker is the text at its span, dangling exactly when it names no source, a suggestion is a
    real source, and the JSON round-trips."""
    report = check_citations(answer, SOURCES, attributor=ATTRIBUTOR, exact_support=exact)
    for m in report.markers:
        assert answer[m.start : m.end] == m.text
        assert answer[m.label_start : m.label_end] == m.label
        assert (m.verdict == "dangling") == (m.source_index is None)
        if m.suggested_source_index is not None:
            assert 0 <= m.suggested_source_index < len(SOURCES)
        if m.claim is not None:
            assert answer[m.claim.start : m.claim.end] == m.claim.text
    again = CitationReport.from_dict(json.loads(json.dumps(report.to_dict(), allow_nan=False)))
    assert [m.verdict for m in again.markers] == [m.verdict for m in report.markers]


BAND_QUESTION = (
    "Which city was the club that hosted the band formed in 1981 in Los Angeles by James "
    "Hetfield and Lars Ulrich in?"
)
BAND = [
    "Metallica is a band formed in 1981 in Los Angeles by James Hetfield and Lars Ulrich.",
    "L'Amour was a club in Brooklyn, New York, that hosted Metallica.",
    "Los Angeles is a city in California where many bands were formed.",
    "Many bands played their first concerts in small clubs.",
]


@pytest.mark.parametrize(
    ("markers", "expected"),
    [
        ("[2]", [("2", "correct", None)]),
        ("[1][2]", [("1", "correct", None), ("2", "correct", None)]),
        # repaired to the club's page, which says "New York", not the closer band's page
        ("[4]", [("4", "wrong_source", "1")]),
        # the page of a place the question names: `about_question` takes it for one hop
        ("[3]", [("3", "correct", None)]),
    ],
)
def test_a_source_that_restates_a_short_answer_backs_it(
    markers: str, expected: list[tuple[str, str, str | None]]
) -> None:
    """`restates`: under its question, the short answer "New York" is closest to the band's
    page, yet the club's page, whose sentence holds every word of the answer, backs it too; a
    page that holds none of them does not (unless it is the page of a name the question holds:
    the price of `about_question`, which cannot tell a hop from a mere detail)."""
    report = check_citations(
        f"New York {markers}.", BAND, attributor=ATTRIBUTOR, question=BAND_QUESTION
    )
    assert [(m.label, m.verdict, m.suggested_source_id) for m in report.markers] == expected


@pytest.mark.parametrize(
    ("claim", "question", "expected"),
    [
        # the answer only repeats a name the question gives: any page naming it "restates" it
        ("Sid Haig.", "Who is older, Sid Haig or Vic Darchinyan?", [False, False, False]),
        ("Sid Haig.", None, [True, False, True]),
        # a word the question does not hold, and the page holds every word
        ("Sid Haig, the clown.", "Who is older, Sid Haig or Vic Darchinyan?", [False, False, True]),
    ],
)
def test_restating_only_the_questions_words_is_no_restatement(
    claim: str, question: str | None, expected: list[bool]
) -> None:
    """`restates` needs the claim to hold a content word its question does not: under "Who is
    older, Sid Haig or Vic Darchinyan?" the answer "Sid Haig" is in every page that names him,
    the film's as much as his own (his own is the question entity's page, `about_question`)."""
    from rag_attrib._citation_rules import restates

    sources = [
        "Sid Haig (born 1939) is an American actor.",
        "Vic Darchinyan (born 1976) is an Armenian boxer.",
        "Little Big Top is a comedy film starring Sid Haig as a clown.",
    ]
    result = ATTRIBUTOR.attribute(claim, sources, question)
    assert [restates(result, 0, k) for k in range(3)] == expected


POETS_QUESTION = "Which poet was Irish, Seamus Heaney or Robert Frost?"
POETS = [
    "Seamus Heaney was an Irish poet and playwright who received the Nobel Prize in Literature "
    "in 1995.",
    "Robert Frost (1874-1963) wrote about rural New England in plain American speech.",
    "The poet Seamus Heaney read his Irish poems in Dublin, and every Irish poet came to hear him.",
    "Frost is ice that forms on cold surfaces when the air is humid.",
]


@pytest.mark.parametrize(
    ("answer", "question", "expected"),
    [
        ("Seamus Heaney [2].", POETS_QUESTION, [("2", "correct", None)]),
        ("Seamus Heaney [3][2].", POETS_QUESTION, [("3", "correct", None), ("2", "correct", None)]),
        # "Frost" is only part of a name the question holds: ice is no page it asks about
        (
            "Seamus Heaney [3][4].",
            POETS_QUESTION,
            [("3", "correct", None), ("4", "wrong_source", "0")],
        ),
        # without the question, or past the sentence that answers it, nothing says so
        ("Seamus Heaney [2].", None, [("2", "wrong_source", "0")]),
        (
            "Seamus Heaney [1]. He won the Nobel Prize in 1995 [2].",
            POETS_QUESTION,
            [("1", "correct", None), ("2", "wrong_source", "0")],
        ),
    ],
)
def test_the_page_of_an_entity_the_question_names_backs_its_answer(
    answer: str, question: str | None, expected: list[tuple[str, str, str | None]]
) -> None:
    """`about_question`: under "Which poet was Irish, Seamus Heaney or Robert Frost?", Frost's
    page (opening with a name the question holds whole) is one hop of the answer "Seamus
    Heaney", though it shares no word with it; a page opening with only part of that name is
    not, nor is Frost's page without the question or for a later sentence."""
    report = check_citations(answer, POETS, attributor=ATTRIBUTOR, question=question)
    assert [(m.label, m.verdict, m.suggested_source_id) for m in report.markers] == expected


def test_about_question_reads_the_name_a_source_opens_with() -> None:
    """The opening name loses a leading article and a possessive; a question word that opens
    the question is no name."""
    from rag_attrib._citation_rules import about_question

    sources = [
        "The Pro Bowl is the all-star game of the league.",
        '"Brother" is a song by a rock band from Seattle.',
        "What a day it was for the band.",
    ]
    result = ATTRIBUTOR.attribute(
        "Two times.", sources, "What song is Brother, and how often did she play The Pro Bowl's?"
    )
    assert [about_question(result, 0, k) for k in range(3)] == [True, True, False]


@pytest.mark.parametrize(
    ("opening", "question", "expected"),
    [
        # a full name with a middle name, a nickname in quotes, a suffix after a comma
        ("Adam Fredric Duritz (born 1964) is a singer.", "Which band is Adam Duritz in?", True),
        ('Andrew Alan "Drew" Fuller (born 1980) is an actor.', "Where was Drew Fuller born?", True),
        ("Edgar Roland, Jr. (born 1963) is a singer.", "Which band is Edgar Roland in?", True),
        # accents: the question may spell the name plain
        ("Akinoshū Kenji (born 1969) is a sumo wrestler.", "Where was Akinoshu Kenji born?", True),
        # "Between" opens the question; it is no part of the name
        (
            "Ada Lovelace (1815-1852) wrote notes.",
            "Between Ada Lovelace and Alan Turing, who?",
            True,
        ),
        # the first sentence says the subject is known by the name; a later one, or a mere
        # mention, does not
        (
            "Hartwig Schierbaum (born 1954), better known by his stage name Marian Gold, is a "
            "singer.",
            "Are Marian Gold and Jung Eun-ji in one band?",
            True,
        ),
        (
            "Gisvi Antunes (born 1982), known simply as Gisvi, is a footballer.",
            "Gisvi's city?",
            True,
        ),
        (
            "Hartwig Schierbaum is a singer. His friend is known as Marian Gold.",
            "Are Marian Gold and Jung Eun-ji in one band?",
            False,
        ),
        ("Ivo Pick (born 1960) sang with Marian Gold.", "Is Marian Gold German?", False),
        # the asked name is the tail of a longer name, or a shorter one: another thing
        ("Football Federation South Australia is a body.", "Who led South Australia?", False),
        ("Lee Roy Selmon Expressway is a road in Tampa.", "Where did Lee Roy Selmon play?", False),
        ("Duritz Lake is a lake.", "Which band is Adam Duritz in?", False),
        ("Adam Smith (1723-1790) was an economist.", "Which band is Adam Duritz in?", False),
    ],
)
def test_about_question_knows_a_name_by_its_full_form(
    opening: str, question: str, expected: bool
) -> None:
    """The page of "Adam Duritz" may open with his full name: the same first (or quoted
    nickname) and last word, middle names between, a suffix after; or its first sentence may
    say its subject is known by the name. Accents do not count. A longer name ending in the
    asked one (a road, a federation) is another thing."""
    from rag_attrib._citation_rules import about_question

    result = ATTRIBUTOR.attribute("Yes.", [opening], question)
    assert about_question(result, 0, 0) is expected


SINGERS_QUESTION = "Which singer is American, Mark King or Nick Hexum?"
SINGERS = [
    "Nick Hexum (born 1970) is an American singer and guitarist.",
    "Mark King (born 1958) is an English singer and bass player.",
    "Nick Carter is an American singer.",
    "Bread is baked from flour and water.",
]


@pytest.mark.parametrize(
    ("markers", "question", "expected"),
    [
        # Nick Hexum's page reads closest and is not cited: [3] stands in its place
        ("[2][3]", SINGERS_QUESTION, [("2", "correct", None), ("3", "wrong_source", "0")]),
        # cited, nothing is passed over: [3] is one of the two strongest beside it
        ("[1][3]", SINGERS_QUESTION, [("1", "correct", None), ("3", "correct", None)]),
        # without the question no page is a question entity's
        ("[2][3]", None, [("2", "wrong_source", "0"), ("3", "correct", None)]),
    ],
)
def test_a_source_in_place_of_a_closer_question_entity_page_is_wrong(
    markers: str, question: str | None, expected: list[tuple[str, str, str | None]]
) -> None:
    """`passed_over`: a source backing the claim only as one of its n strongest is wrong when
    an uncited page of an entity the question names reads closer by more than `RANK_MARGIN`;
    the repair names that page."""
    answer = f"Nick Hexum {markers}."
    report = check_citations(answer, SINGERS, attributor=ATTRIBUTOR, question=question)
    assert [(m.label, m.verdict, m.suggested_source_id) for m in report.markers] == expected
    if question is not None and expected[1][1] == "wrong_source":
        fixed = repair_citations(answer, SINGERS, attributor=ATTRIBUTOR, question=question)
        assert fixed.text == "Nick Hexum [2][1]."


ALBUM_QUESTION = "The album Quiet Harbor is by a singer from which state?"
ALBUM = [
    "Quiet Harbor is the third album by the singer Mara Vell.",
    "Mara Vell grew up in Salem, Oregon.",
    "Open Water is an album by a singer from the state of Maine.",
    "Bread is baked from flour and water.",
]
FILMS_QUESTION = "Are Lantern Bay and Copper Sky both animated films?"
FILMS = [
    "Lantern Bay is an animated film from 1990.",
    "Copper Sky is a drama shot in Spain.",
    "Lantern Bay Ride is an animated boat ride at a theme park, based on films.",
    "Bread is baked from flour and water.",
]
SERIES_QUESTION = "Which network first aired the series Drew Fuller starred in?"
SERIES = [
    "Charmed is a series that first aired on the network The WB.",
    'Andrew Alan "Drew" Fuller (born 1980) is an actor who starred in Charmed.',
    "The Drew Pearson Show was a series that first aired on the network ABC.",
    "Bread is baked from flour and water.",
]


@pytest.mark.parametrize(
    ("answer", "sources", "question", "fixed"),
    [
        # the singer's page holds "Oregon"; another singer's album reads closer to the question
        ("Oregon [1][4].", ALBUM, ALBUM_QUESTION, "Oregon [1][2]."),
        # the page of the other film the question names; a ride named after the first reads closer
        ("No [4][1].", FILMS, FILMS_QUESTION, "No [2][1]."),
        # the actor's page opens with his full name; a show named after another Drew reads closer
        ("The WB [1][4].", SERIES, SERIES_QUESTION, "The WB [1][2]."),
    ],
)
def test_a_wrong_marker_is_repaired_to_the_hop_a_closer_distractor_hides(
    answer: str, sources: list[str], question: str, fixed: str
) -> None:
    """`suggest`: the repair prefers, among sources with `FLOOR_RATIO` of the strongest's
    strength, one that restates the claim or is the page of an entity the question names (the
    sources `_judge` takes for a hop) over a distractor that only reads closer."""
    report = check_citations(answer, sources, attributor=ATTRIBUTOR, question=question)
    assert [m.verdict for m in report.markers].count("wrong_source") == 1
    repaired = repair_citations(answer, sources, attributor=ATTRIBUTOR, question=question)
    assert repaired.text == fixed
