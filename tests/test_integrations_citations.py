"""The integrations' framework-free citation core: reading given citations, the numbering,
the check against a computed attribution, and the result's `citation_check` round trip."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import BaseModel

from rag_attrib import AttributionResult, Attributor, Source
from rag_attrib.integrations._citations import (
    CitedSpan,
    GivenCitations,
    check,
    from_blocks,
    from_structured,
    numbering_for,
)
from rag_attrib.integrations._pipeline import Job, check_job_citations, failed_result, run_job

SOURCES = [
    Source("a", "The Hobart harbour museum was founded in 1896."),
    Source("b", "Bremen's river port handles the most cargo."),
    Source("c", "Penguins live in the southern hemisphere and cannot fly."),
]
TWO = "The Hobart harbour museum was founded in 1896. Bremen's river port handles the most cargo."


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Source ID: 0\nx\nSource ID: 1\ny\nSource ID: 2\nz", "0-based"),
        ("Source 1:\nx\n\nSource 2:\ny\n\nSource 3:\nz", "1-based"),
        ("[1] x\n[2] y\n[3] z", "1-based"),
        ("Document 0: x; Document 1: y; Document 2: z", "0-based"),
        ("Here are the documents:\nx\ny\nz", "auto"),
        ("Source 1:\nx", "auto"),  # labels one of three sources: no evidence either way
        (None, "auto"),
    ],
)
def test_numbering_is_read_from_the_prompts_labels(prompt, expected):
    """The prompt's labels for n sources say whether numbers count from 0 or from 1."""
    assert numbering_for(SOURCES, prompt) == expected


def test_numbering_from_citation_query_engine_node_texts():
    """CitationQueryEngine writes "Source n:" into each node's text: that is enough."""
    nodes = [Source(s.id, f"Source {k + 1}:\n{s.text}\n") for k, s in enumerate(SOURCES)]
    assert numbering_for(nodes, None) == "1-based"


class Quote(BaseModel):
    source_id: int
    quote: str


class QuotedAnswer(BaseModel):
    answer: str
    citations: list[Quote]


@pytest.mark.parametrize(
    ("value", "labels"),
    [
        ({"answer": "x", "citations": [0, 2, 2]}, ["0", "2"]),
        ({"answer": "x", "sources": ["a", "c"]}, ["a", "c"]),
        (QuotedAnswer(answer="x", citations=[Quote(source_id=1, quote="q")]), ["1"]),
        ({"answer": "x", "citations": []}, []),
    ],
)
def test_structured_citations_are_read(value, labels):
    """Cited-answer dicts and models give their answer and their source labels."""
    found = from_structured(value)
    assert found is not None
    assert found[0] == "x"
    assert [s.label for s in found[1].spans] == labels


@pytest.mark.parametrize(
    "value",
    [
        "x",
        {"answer": "x"},
        {"answer": 3, "citations": [1]},
        {"answer": "x", "sources": [{"page_content": "a document, not a citation"}]},
        {"answer": "x", "citations": [True]},
    ],
)
def test_other_shapes_are_no_cited_answer(value):
    """Plain text, no list, or a list of documents is not a cited answer."""
    assert from_structured(value) is None


def test_blocks_without_document_citations_give_nothing():
    """String content, uncited blocks and web-search citations (a URL, no document) give no
    citations; cited blocks are placed where `message.text` joins them."""
    assert from_blocks("text [1]") is None
    assert from_blocks([{"type": "text", "text": "x"}]) is None
    web = {"type": "web_search_result_location", "url": "https://x.org", "cited_text": "x"}
    assert from_blocks([{"type": "text", "text": "x", "citations": [web]}]) is None
    given = from_blocks(
        [
            "ab",
            {"type": "thinking", "thinking": "hm"},
            {"type": "text", "text": "cd", "citations": [{"document_index": 1}]},
        ]
    )
    assert given == GivenCitations((CitedSpan("1", 2, 4),), "provider", "0-based")


def attribute(attributor: Attributor, answer: str) -> AttributionResult:
    return attributor.attribute(answer, SOURCES)


def test_a_whole_answer_citation_list_and_missing_sentences(hashing_attributor):
    """A list citing the whole answer: a source that backs one sentence is correct, and the
    sentence no cited source backs is reported missing, with the source that does."""
    result = attribute(hashing_attributor, TWO)
    report = check(result, GivenCitations((CitedSpan("a"),)))
    assert report is not None
    (marker,) = report.markers
    assert (marker.source_id, marker.verdict, marker.style) == ("a", "correct", "structured")
    assert marker.start == marker.end == len(TWO)
    assert [(x.sentence_index, x.suggested_source_id) for x in report.missing] == [(1, "b")]
    assert report.result is result


def test_written_markers_win_over_given_citations(hashing_attributor):
    """When the text has markers, they are checked (a given list is not mixed in)."""
    result = attribute(hashing_attributor, "The Hobart harbour museum was founded in 1896 [2].")
    report = check(result, GivenCitations((CitedSpan("a"),)))
    assert report is not None
    assert [(m.text, m.verdict) for m in report.markers] == [("[2]", "wrong_source")]


def test_no_citations_costs_nothing(hashing_attributor):
    """No markers and nothing given: the very same result comes back."""
    result = attribute(hashing_attributor, TWO)
    assert check_job_citations(Job(TWO, SOURCES), result) is result


def test_a_failed_attribution_is_not_checked():
    """A timed-out or failed attribution has nothing to check against: left as it is."""
    failed = failed_result("Paris [1].", None, "timed out")
    assert check_job_citations(Job("Paris [1].", SOURCES), failed) is failed


def test_run_job_sets_the_check_and_exporters_see_it(hashing_attributor):
    """The core checks before exporting, so every exporter gets the report too."""
    seen: list[AttributionResult] = []

    class Keep:
        def export(self, result: AttributionResult, context: Any) -> None:
            seen.append(result)

    answer = "The Hobart harbour museum was founded in 1896 [1] [4]."
    result = run_job(hashing_attributor, Job(answer, SOURCES), [Keep()], {})
    assert result.citation_check is not None
    assert [m.verdict for m in result.citation_check.markers] == ["correct", "dangling"]
    assert seen[0].citation_check == result.citation_check
    assert "1/2 own citations correct" in repr(result)


def round_trip(result: AttributionResult) -> dict[str, Any]:
    return json.loads(json.dumps(result.to_dict()))


def test_the_check_round_trips(hashing_attributor):
    """to_dict writes citation_check only when there is one; from_dict reads it back equal."""
    plain = attribute(hashing_attributor, TWO)
    assert "citation_check" not in plain.to_dict()
    answer = "The Hobart harbour museum was founded in 1896 [2]. Penguins fly [9]."
    result = run_job(hashing_attributor, Job(answer, SOURCES), [], {})
    back = AttributionResult.from_dict(round_trip(result))
    assert back.citation_check == result.citation_check
    assert back == result
    assert back.citation_check is not None and back.citation_check.result is not None


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda c: c["markers"][0].update(verdict="maybe"), "citation_check.markers[0].verdict"),
        (
            lambda c: c["markers"][0].update(source_index=7),
            "citation_check.markers[0].source_index",
        ),
        (lambda c: c["markers"][0].update(start="0"), "citation_check.markers[0].start"),
        (lambda c: c["markers"][0].update(end=-5), "citation_check.markers[0].end"),
        (lambda c: c.update(answer="another answer"), "citation_check.answer"),
        (lambda c: c.update(numbering="2-based"), "citation_check.numbering"),
        (lambda c: c.update(schema="x/1"), "citation_check.schema"),
        (lambda c: c.pop("markers"), "citation_check.markers"),
        (lambda c: c["missing"].append({"sentence_index": 9}), "citation_check.missing[0]"),
    ],
)
def test_a_bad_check_record_names_its_field(hashing_attributor, edit, field):
    """A hand-edited or hostile record is refused with the bad field named."""
    answer = "The Hobart harbour museum was founded in 1896 [2]."
    data = round_trip(run_job(hashing_attributor, Job(answer, SOURCES), [], {}))
    bad = copy.deepcopy(data)
    edit(bad["citation_check"])
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        AttributionResult.from_dict(bad)


def test_the_html_view_shows_the_carried_check(hashing_attributor):
    """A result carrying `citation_check` renders its markers coloured with no argument (also
    after a JSON round trip, as `rag-attrib render` reads a JSONL line)."""
    from rag_attrib.render import render_html

    answer = "The Hobart harbour museum was founded in 1896 [1] [4]."
    result = run_job(hashing_attributor, Job(answer, SOURCES), [], {})
    for shown in (result, AttributionResult.from_dict(round_trip(result))):
        page = render_html(shown)
        assert 'class="ra-mk-answer"' in page
        assert 'class="ra-mk ra-mk-ok"' in page and 'class="ra-mk ra-mk-bad"' in page
    assert 'class="ra-mk-answer"' not in render_html(attribute(hashing_attributor, TWO))
