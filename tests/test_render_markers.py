"""The HTML view of the citation markers an LLM wrote: green, amber, red by their verdict."""

from __future__ import annotations

from dataclasses import replace

import pytest
from _html import Tree

from rag_attrib import Attributor, Source
from rag_attrib.citations import check_citations
from rag_attrib.render import render_html

SOURCES = [
    Source("eiffel", "The Eiffel Tower is in Paris. It was finished in 1889 for a world fair."),
    Source("everest", "Mount Everest is the highest mountain on Earth. It lies in the Himalayas."),
    Source("banana", "Bananas are rich in potassium. Many people eat bananas for breakfast."),
]
# [1] right, [3] another source backs it, [2] no source backs the claim, [7] names no source;
# "[1, 2]" names two sources in one marker.
ANSWER = (
    "The Eiffel Tower was finished in 1889 for a world fair [1]. "
    "Mount Everest lies in the Himalayas [3]. "
    "Quantum chromodynamics describes gluon confinement [2]. "
    "Bananas are rich in potassium [1, 3]. <b>Bold</b> claims are escaped [7]."
)
COLOUR = {
    "correct": "ra-mk-ok",
    "wrong_source": "ra-mk-warn",
    "unsupported": "ra-mk-bad",
    "dangling": "ra-mk-bad",
}


@pytest.fixture
def report(hashing_attributor: Attributor):  # type: ignore[no-untyped-def]
    """A real check of the answer's markers against the sources."""
    out = check_citations(ANSWER, SOURCES, attributor=hashing_attributor)
    verdicts = {m.verdict for m in out.markers}
    assert {"correct", "wrong_source", "dangling"} <= verdicts, verdicts
    return out


def test_each_reference_is_coloured_by_its_verdict(report) -> None:  # type: ignore[no-untyped-def]
    """Every reference label in the answer as written carries its verdict's colour, in order;
    the section's text is the answer exactly."""
    tree = Tree(render_html(report.result, citations=report))
    section = tree.find("ra-mk-answer")[0]
    assert section.text == ANSWER
    marks = [e for e in tree.find("ra-mk") if "ra-mk-answer" in e.ancestors]
    ordered = sorted(report.markers, key=lambda m: m.label_start)
    assert [e.text for e in marks] == [m.label for m in ordered]
    for e, m in zip(marks, ordered, strict=True):
        assert COLOUR[m.verdict] in e.attrs["class"].split(), (m.label, m.verdict)
    assert tree.find("ra-mk-counts")[0].text.startswith(
        f"{sum(m.verdict == 'correct' for m in report.markers)} correct"
    )


def test_markers_that_are_not_correct_are_explained_without_hovering(report) -> None:  # type: ignore[no-untyped-def]
    """Each marker that is not correct gets a line saying why, naming the better source."""
    tree = Tree(render_html(report.result, citations=report))
    notes = [e.text for e in tree.elements if e.tag == "li" and "ra-mk-notes" in e.ancestors]
    wrong = [m for m in report.markers if m.verdict != "correct"]
    assert len(notes) == len(wrong)
    for note, m in zip(notes, wrong, strict=True):
        if m.verdict == "wrong_source":
            assert f"; {m.suggested_source_id} does" in note
        if m.verdict == "dangling":
            assert "none of the 3 sources" in note
    assert "<b>" not in tree.find("ra-mk-answer")[0].text or "<b>Bold</b>" in ANSWER
    assert not [e for e in tree.elements if e.tag == "b" and "ra-mk-answer" in e.ancestors]


def test_each_note_quotes_the_claim_of_its_marker(hashing_attributor: Attributor) -> None:
    """Three equal "[1]"s, one not correct: its line quotes the claim it is on, so the reader knows
    which "[1]" without hovering; a claim too long for a line is cut with an ellipsis."""
    long_claim = "Mount Everest lies in the Himalayas " + "and rises far above the plains " * 3
    answer = (
        "The Eiffel Tower was finished in 1889 for a world fair [1]. "
        "It is in Paris [1]. "
        f"{long_claim.strip()} [1]."
    )
    report = check_citations(answer, SOURCES, attributor=hashing_attributor)
    wrong = [m for m in report.markers if m.verdict != "correct"]
    assert [m.text for m in wrong] == ["[1]"] and wrong[0].claim is not None
    tree = Tree(render_html(report.result, citations=report))
    (note,) = [e.text for e in tree.elements if e.tag == "li" and "ra-mk-notes" in e.ancestors]
    assert note.startswith("[1] on \u201cMount Everest lies in the Himalayas and rises"), note
    assert "\u2026\u201d: cites eiffel, " in note


def test_crafted_offsets_are_skipped(report) -> None:  # type: ignore[no-untyped-def]
    """A report built by hand with offsets that are not ints in range renders the answer as
    text and colours only what it can place."""
    bad = replace(
        report,
        markers=(
            replace(report.markers[0], label_start='"><script>', label_end=True),
            replace(report.markers[1], label_start=10**9, label_end=10**9 + 1),
            *report.markers[2:],
        ),
    )
    html = render_html(report.result, citations=bad)
    tree = Tree(html)
    assert tree.find("ra-mk-answer")[0].text == ANSWER
    assert html.count("<script") == 1
    assert (
        len([e for e in tree.find("ra-mk") if "ra-mk-answer" in e.ancestors])
        == len(report.markers) - 2
    )


def test_the_answer_as_written_shows_its_markdown_emphasis(hashing_attributor: Attributor) -> None:
    """LLM answers are Markdown: around the marker chips, bold labels read as bold."""
    answer = "- **Tower:** The Eiffel Tower was finished in 1889 [1].\n- *Mountain*: Everest [2]."
    checked = check_citations(answer, SOURCES, attributor=hashing_attributor)
    tree = Tree(render_html(checked.result, citations=checked))
    inside = [e for e in tree.elements if "ra-markers" in e.ancestors]
    emphasis = [(e.tag, e.text) for e in inside if e.tag in ("strong", "em")]
    assert emphasis == [("strong", "Tower:"), ("em", "Mountain")]
    chips = [e for e in inside if e.attrs.get("title") and "ra-mk" in e.attrs["class"].split()]
    assert [e.text for e in chips] == ["1", "2"]


def test_a_direct_attribution_shows_its_markers_checked(hashing_attributor: Attributor) -> None:
    """`attribute()` then `save_html()`: the answer's own markers are coloured as the check
    reads them, as an integration's result is; an answer with no marker has no such section."""
    result = hashing_attributor.attribute(ANSWER, SOURCES)
    assert result.citation_check is None
    want = check_citations(ANSWER, SOURCES, attributor=hashing_attributor)
    tree = Tree(result.to_html())
    marks = [e for e in tree.find("ra-mk") if "ra-mk-answer" in e.ancestors]
    ordered = sorted(want.markers, key=lambda m: m.label_start)
    assert [e.text for e in marks] == [m.label for m in ordered]
    for e, m in zip(marks, ordered, strict=True):
        assert COLOUR[m.verdict] in e.attrs["class"].split(), (m.label, m.verdict)
    plain = hashing_attributor.attribute("The Eiffel Tower was finished in 1889.", SOURCES)
    assert not Tree(plain.to_html()).find("ra-mk-answer")
