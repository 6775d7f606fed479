"""The integrations' framework-free citation core: reading given citations, the numbering,
the check against a computed attribution, and the result's `citation_check` round trip."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest
from pydantic import BaseModel

from rag_attrib import AttributionResult, Attributor, Source, check_citations
from rag_attrib.errors import ConfigError
from rag_attrib.integrations._citations import CheckOptions, check, check_options
from rag_attrib.integrations._given import CitedSpan, GivenCitations, from_blocks, from_structured
from rag_attrib.integrations._numbering import label_choices, label_order, numbering_for
from rag_attrib.integrations._pipeline import Job, check_job_citations, failed_result, run_job
from rag_attrib.integrations._urls import normalise_url
from rag_attrib.testing import HashingEmbedder

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


A, B, C = (s.text for s in SOURCES)


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        (f"Source 1:\n{C}\n\nSource 2:\n{A}\n\nSource 3:\n{B}", [2, 0, 1]),
        (f"Source 2:\n{B}\n\nSource 1:\n{A}\n\nSource 3:\n{C}", [0, 1, 2]),
        (
            f"Source 1:\nfile_name: c.txt\n\n{C}\nSource 2:\nfile_name: a.txt\n\n{A}\n"
            f"Source 3:\n{B}",
            [2, 0, 1],
        ),  # metadata lines between a label and its text
        (f"[1] {B}\n[2] {C}\n[3] {A}", [1, 2, 0]),
        (f"Source ID: 0\n{C}\nSource ID: 1\n{B}\nSource ID: 2\n{A}", [2, 1, 0]),
        (f"Source 1:\n{C}\n\nSource 2:\n{A}", None),  # a text not shown
        (f"Source 1:\n{C}\n\n{A}\n\nSource 3:\n{B}", None),  # a text with no label
        (f"Source 1:\n{C}\n\nSource 2:\n{A}\n\nSource 1:\n{B}", None),  # two tool calls
        (f"Source 1:\n{C}\n\nSource 2:\n{A}\n\nSource 4:\n{B}", None),  # a gap
        (f"{C}\n{A}\n{B}", None),
    ],
)
def test_label_order_follows_the_labels_shown(shown, expected):
    """A tool's "Source n:" labels (or "[n]", "Source ID: n") say which text each number
    names; anything short of one label per text, counting from 0 or 1, says nothing."""
    assert label_order([s.text for s in SOURCES], shown) == expected
    if expected is not None:
        ordered = [SOURCES[k] for k in expected]
        assert numbering_for(ordered, shown) in ("0-based", "1-based")


D = "Saturn has bright rings made mostly of ice particles."
FOUR = [*SOURCES, Source("d", D)]


@pytest.mark.parametrize(
    ("parts", "order", "names"),
    [
        (  # two calls, each counting from 1: the latest call's passages first
            [f"Source 1:\n{A}\n\nSource 2:\n{B}", f"Source 1:\n{C}\n\nSource 2:\n{D}"],
            [2, 3, 0, 1],
            {"1": (0, 2), "2": (1, 3)},
        ),
        (  # a passage both calls show, under different labels
            [f"Source 1:\n{A}\n\nSource 2:\n{B}", f"Source 1:\n{B}\n\nSource 2:\n{C}"],
            [1, 2, 0],
            {"1": (0, 2), "2": (1, 0)},
        ),
        (  # counting from 0, and a call that labels nothing of ours
            ["Weather: sunny", f"[0] {C}\n[1] {A}", f"[0] {B}"],
            [1, 2, 0],
            {"0": (0, 1), "1": (2,)},
        ),
        (  # the second call shows B again as 1: label_order's first sight would say A
            [f"Source 1:\n{A}\n\nSource 2:\n{B}", f"Source 1:\n{B}"],
            [1, 0],
            {"1": (0, 1), "2": (0,)},
        ),
    ],
)
def test_label_choices_when_two_tool_outputs_count_afresh(parts, order, names):
    """Two tool outputs each labelling passages from 1 (or 0): each label names one passage
    per output, the latest output's first, and the sources follow the latest output."""
    texts = [s.text for s in FOUR[: max(order) + 1]]
    found = label_choices(texts, parts)
    assert found is not None
    assert found[0] == order
    assert dict(found[1].names) == names


@pytest.mark.parametrize(
    "parts",
    [
        [f"Source 1:\n{A}\n\nSource 2:\n{B}"],  # one output: label_order's case
        [f"Source 1:\n{A}", f"Source 1:\n{C}"],  # B shown nowhere
        [f"Source 1:\n{A}\n\nSource 2:\n{B}", f"Source 1:\n{C}\n\n{D}"],  # D unlabelled
        [f"Source 1:\n{A}\n\nSource 3:\n{B}", f"Source 1:\n{C}\n\nSource 2:\n{D}"],  # gap
        [f"Source 1:\n{A}\n\nSource 2:\n{B}", f"Source 0:\n{C}\n\nSource 1:\n{D}"],
        [f"Source 1:\n{A}\nSource 1:\n{B}", f"Source 1:\n{C}\n\nSource 2:\n{D}"],
        [f"Source 1:\n{A}\n\nSource 2:\n{B}\n\nSource 3:\n{C}\n\nSource 4:\n{D}"] * 2,
    ],
)
def test_label_choices_need_every_passage_labelled_alike(parts):
    """No choices unless two outputs label every passage, each counting alike from 1 (or 0),
    and a number names two passages (the same search twice is one numbering)."""
    texts = [s.text for s in FOUR]
    if len(parts) == 1:
        texts = texts[:2]
    assert label_choices(texts, parts) is None


def test_ambiguous_markers_read_as_the_passage_that_backs_them(attributor):
    """Two outputs: 1 = A, 2 = B, then 1 = C, 2 = D. [1] after A's claim names A, [2] after
    D's names D: both correct, and the check says [1], [2] were ambiguous; [1] after B's
    claim names C or A, neither backs it: wrong source (the latest output's C), suggesting B."""
    parts = [f"Source 1:\n{A}\n\nSource 2:\n{B}", f"Source 1:\n{C}\n\nSource 2:\n{D}"]
    found = label_choices([s.text for s in FOUR], parts)
    assert found is not None
    order, labels = found
    sources = [FOUR[k] for k in order]
    answer = f"{A[:-1]} [1]. {D[:-1]} [2]. {B[:-1]} [1]."
    result = attributor.attribute(answer, sources)
    report = check(result, labels=labels)
    assert report is not None and report.numbering == "1-based"
    got = [(m.text, m.source_id, m.verdict) for m in report.markers]
    assert got == [("[1]", "a", "correct"), ("[2]", "d", "correct"), ("[1]", "c", "wrong_source")]
    assert report.markers[2].suggested_source_id == "b"
    assert report.error is not None and "[1], [2]" in report.error
    plain = check(result)  # without the labels: positions in the latest output's order
    assert plain is not None and plain.error is None
    assert [m.verdict for m in plain.markers] == ["wrong_source", "correct", "wrong_source"]
    exact = check(result, options=CheckOptions(exact_support=True), labels=labels)
    assert exact is not None and [m.verdict for m in exact.markers] == [g[2] for g in got]
    explicit = check(result, options=CheckOptions("1-based"), labels=labels)
    assert explicit is not None and explicit.error is None  # a numbering the user set wins


def test_a_label_only_one_output_uses_is_not_ambiguous(attributor):
    """A marker whose number only one output uses names that output's passage, unremarked."""
    parts = [f"Source 1:\n{A}", f"Source 1:\n{C}\n\nSource 2:\n{D}"]
    found = label_choices([A, C, D], parts)
    assert found is not None
    order, labels = found
    sources = [[SOURCES[0], SOURCES[2], Source("d", D)][k] for k in order]
    result = attributor.attribute(f"{D[:-1]} [2].", sources)
    report = check(result, labels=labels)
    assert report is not None and report.error is None
    assert [(m.source_id, m.verdict) for m in report.markers] == [("d", "correct")]


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


def test_blocks_without_citations_give_nothing():
    """String content, uncited blocks and citations naming no source give no citations;
    cited blocks are placed where `message.text` joins them."""
    assert from_blocks("text [1]") is None
    assert from_blocks([{"type": "text", "text": "x"}]) is None
    file_cite = {"type": "citation", "title": "a.pdf", "extras": {"file_id": "f-1"}}
    assert from_blocks([{"type": "text", "text": "x", "annotations": [file_cite]}]) is None
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


@pytest.mark.parametrize(
    "answer",
    [
        "The Hobart harbour museum was founded in 1896 (Source 1). "
        "Bremen's river port handles the most cargo (Source 2).",
        "The Hobart harbour museum was founded in 1896 [1]. "
        "Bremen's river port handles the most cargo [^2].",
        "[1] The Hobart harbour museum was founded in 1896. "
        'Bremen\'s river port handles <cite id="2">the most cargo</cite>.',
    ],
)
def test_the_answers_own_markers_are_no_words_of_its_claims(hashing_attributor, answer):
    """An integration's attribution of an answer that cites "(Source 1)" is the attribution of
    its claims: the same supports and citations as the answer without its markers, as
    `check_citations` reads it. "(Source 1)" had made "1" a figure no source holds (both
    sentences unsupported, both markers "unsupported") and "[1]" lowered every support.
    Sentences keep their offsets and text in the answer as written."""
    result = run_job(hashing_attributor, Job(answer, SOURCES), [], {})
    plain = hashing_attributor.attribute(TWO, SOURCES)
    assert result.answer == answer and result.error is None
    for s, p in zip(result.answer_sentences, plain.answer_sentences, strict=True):
        assert answer[s.start : s.end] == s.text
        assert (s.supported, s.support, s.issues) == (p.supported, p.support, p.issues)
        assert s.citations == p.citations
    assert [m.verdict for m in result.citation_check.markers] == ["correct", "correct"]
    assert (
        result.citation_check.markers
        == check_citations(answer, SOURCES, attributor=hashing_attributor).markers
    )


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


# --- web-search citations: a URL names the source whose metadata holds it ---------------------

MUSEUM = "https://www.hobart-museum.example/history/"
PORT = "https://news.example.com/bremen-port"
BIRDS = "https://birds.example.org/penguins"
WEB = [
    Source("museum", SOURCES[0].text, {"url": MUSEUM, "title": "History"}),
    Source("port", SOURCES[1].text, {"source": PORT}),
    Source("birds", SOURCES[2].text, {"link": BIRDS}),
]
CLAIMS = [
    "The Hobart harbour museum was founded in 1896.",
    " Bremen's river port handles the most cargo.",
    " Penguins cannot fly.",
]
WEB_ANSWER = "".join(CLAIMS)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://Example.org/a/b/", "example.org/a/b"),
        ("http://example.org/a/b#part", "example.org/a/b"),
        ("https://example.org/a?utm_source=openai", "example.org/a"),
        ("https://example.org/a?q=1&utm_medium=x", "example.org/a?q=1"),
        ("  https://example.org  ", "example.org"),
        ("kb://guide/intro/", "guide/intro"),
        ("guide.md", "guide.md"),
        ("http://[::1", "http://[::1"),  # urlsplit refuses it: kept as given
    ],
)
def test_urls_are_compared_after_a_trivial_normalisation(url, key):
    """Scheme, fragment, trailing slash, utm_* parameters and the host's case do not count."""
    assert normalise_url(url) == key


def blocks_citing(*notes: dict[str, Any]) -> list[dict[str, Any]]:
    """The three claims as text blocks, each with its own citation (Anthropic's shape)."""
    return [
        {"type": "text", "text": claim, "citations": [note]}
        for claim, note in zip(CLAIMS, notes, strict=True)
    ]


def web_note(url: str, quote: str = "") -> dict[str, Any]:
    return {
        "type": "web_search_result_location",
        "url": url,
        "title": "a page",
        "cited_text": quote,
        "encrypted_index": "Eo8BCioIAhgB",
    }


def test_web_search_citations_are_read_with_their_blocks():
    """Anthropic web-search citations name a URL; each claim is its block's text."""
    given = from_blocks(blocks_citing(web_note(MUSEUM, "quote"), web_note(PORT), web_note(BIRDS)))
    assert given is not None and given.kind == "provider"
    a, b = len(CLAIMS[0]), len(CLAIMS[0]) + len(CLAIMS[1])
    assert given.spans == (
        CitedSpan(MUSEUM, 0, a, url=True, quote="quote"),
        CitedSpan(PORT, a, b, url=True, quote=""),
        CitedSpan(BIRDS, b, len(WEB_ANSWER), url=True, quote=""),
    )


def test_a_url_names_the_chunk_a_supported_sentence_cites_not_a_closest_match():
    """A URL over two sentences, its page in two chunks: the chunk is the one the supported
    sentence cites, not the chunk the unsupported sentence before it is merely closest to; the
    verdict is the one given when that sentence carries no closest sources at all."""
    url = "https://zoo.example/guide"
    sources = [
        Source(
            "guide#1",
            "Kiwis are flightless birds of New Zealand. They lay large eggs.",
            {"url": url},
        ),
        Source(
            "guide#2", "The zoo shop sells tickets and maps. Tickets cost five euros.", {"url": url}
        ),
    ]
    answer = "Dragons guard the tickets at night. Kiwis are flightless birds of New Zealand."
    result = Attributor(HashingEmbedder()).attribute(answer, sources)
    dragons, kiwis = result.answer_sentences
    assert not dragons.supported and dragons.citations[0].source_id == "guide#2"
    assert kiwis.supported and kiwis.citations[0].source_id == "guide#1"
    given = GivenCitations((CitedSpan(url, 0, len(answer), url=True),), "provider", "0-based")
    (marker,) = check(result, given).markers
    assert (marker.source_id, marker.verdict) == ("guide#1", "correct")
    bare = replace(dragons, citations=())
    (same,) = check(replace(result, answer_sentences=(bare, kiwis)), given).markers
    assert (same.source_id, same.verdict) == (marker.source_id, marker.verdict)


def test_url_annotations_use_their_offsets_in_the_block():
    """OpenAI `url_citation` and v1 `citation` annotations carry `start_index`/`end_index` in
    their block's text: the claim is that span, shifted to where the block sits."""
    head = {"type": "text", "text": "Intro. "}
    notes = [
        {"type": "url_citation", "url": MUSEUM, "start_index": 0, "end_index": len(CLAIMS[0])},
        {"type": "citation", "url": PORT, "start_index": len(CLAIMS[0]), "end_index": 999},
    ]
    body = {"type": "text", "text": WEB_ANSWER, "annotations": notes}
    given = from_blocks([head, body])
    assert given is not None
    at = len("Intro. ")
    assert [(x.label, x.start, x.end) for x in given.spans] == [
        (MUSEUM, at, at + len(CLAIMS[0])),
        (PORT, at + len(CLAIMS[0]), at + len(WEB_ANSWER)),  # clipped to its block
    ]


def test_search_result_citations_name_their_source():
    """Anthropic `search_result_location` (a tool's search results) names its `source`; in
    v1 blocks it is under `extras`."""
    native = {"type": "search_result_location", "source": PORT, "search_result_index": 0}
    v1 = {
        "type": "citation",
        "cited_text": "x",
        "extras": {"source": PORT, "search_result_index": 0},
    }
    for note in (native, v1):
        given = from_blocks([{"type": "text", "text": "cargo", "citations": [note]}])
        given = given or from_blocks([{"type": "text", "text": "cargo", "annotations": [note]}])
        assert given is not None and [x.label for x in given.spans] == [PORT]


@pytest.mark.parametrize(
    ("note", "span"),
    [
        ({"url": MUSEUM, "start_index": 5, "end_index": 2}, (0, 4)),  # reversed: whole block
        ({"url": MUSEUM, "start_index": 40, "end_index": 90}, (0, 4)),  # outside: whole block
        ({"url": MUSEUM, "start_index": -3, "end_index": 2}, (0, 2)),  # clipped
        ({"url": MUSEUM, "start_index": True, "end_index": 2}, (0, 4)),  # a bool is no index
        ({"url": MUSEUM, "start_index": "0", "end_index": 2}, (0, 4)),
        ({"url": MUSEUM, "end_index": 2}, (0, 4)),  # one of two: whole block
        ({"url": 7}, None),  # no URL, no index: skipped
        ({"url": "   "}, None),
        ({"type": "citation", "title": "no url"}, None),
        ({"document_index": True}, None),
    ],
)
def test_malformed_citations_have_a_defined_reading(note, span):
    """Bad offsets fall back to the whole block; a citation naming nothing is skipped."""
    given = from_blocks([{"type": "text", "text": "text", "citations": [note]}])
    if span is None:
        assert given is None
    else:
        assert given is not None and (given.spans[0].start, given.spans[0].end) == span


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "text", "text": "x", "citations": "not a list"}],
        [{"type": "text", "text": "x", "citations": [None, 3, "https://x.org"]}],
        [{"type": "text", "text": "x", "annotations": [{"type": "url_citation"}]}],
        [{"type": "text", "text": None, "citations": [web_note(MUSEUM)]}],
        [{"type": "image", "url": MUSEUM}],
    ],
)
def test_malformed_blocks_give_nothing(content):
    assert from_blocks(content) is None


def web_verdicts(report: Any) -> list[tuple[str, str | None, str]]:
    return [(m.label, m.source_id, m.verdict) for m in report.markers]


def test_url_citations_get_verdicts(hashing_attributor):
    """A URL naming the page that backs its claim is correct (however the URL is written),
    one naming another page is a wrong source (with the page that backs it), and a URL no
    source holds is dangling; never an exception."""
    cited = [
        "http://www.hobart-museum.example/history#founding",
        BIRDS + "/",
        "https://elsewhere.example/penguins",
    ]
    given = from_blocks(blocks_citing(*(web_note(u) for u in cited)))
    result = hashing_attributor.attribute(WEB_ANSWER, WEB)
    report = check(result, given)
    assert report is not None
    assert web_verdicts(report) == [
        (cited[0], "museum", "correct"),
        (cited[1], "birds", "wrong_source"),
        (cited[2], None, "dangling"),
    ]
    assert report.markers[1].suggested_source_id == "port"
    assert report.markers[1].claim is not None
    assert report.markers[1].claim.text == CLAIMS[1]
    assert {m.style for m in report.markers} == {"provider"}


def test_a_url_with_several_chunks_picks_the_one_it_quotes(hashing_attributor):
    """Chunks of one page share its URL: the quote picks the chunk, else the attribution."""
    page = "https://encyclopedia.example/halden"
    chunks = [
        Source("c0", "The Halden bridge opened in 1932.", {"url": page}),
        Source("c1", "The Halden tower was painted red in 1950.", {"url": page}),
        Source("c2", "Tickets for the ferry cost forty crowns.", {"url": "https://ferry.example"}),
    ]
    answer = "The Halden tower was painted red in 1950."
    result = hashing_attributor.attribute(answer, chunks)
    quoted = from_blocks(
        [{"type": "text", "text": answer, "citations": [web_note(page, "red in 1950")]}]
    )
    unquoted = from_blocks([{"type": "text", "text": answer, "citations": [web_note(page)]}])
    for given in (quoted, unquoted):
        report = check(result, given)
        assert report is not None
        assert web_verdicts(report) == [(page, "c1", "correct")]


def test_url_and_document_citations_mix(hashing_attributor):
    """One message may cite a request document by index and a web page by URL."""
    content = [
        {
            "type": "text",
            "text": CLAIMS[0],
            "citations": [{"type": "char_location", "document_index": 0}],
        },
        {"type": "text", "text": CLAIMS[1], "citations": [web_note(PORT)]},
    ]
    answer = CLAIMS[0] + CLAIMS[1]
    report = check(hashing_attributor.attribute(answer, WEB), from_blocks(content))
    assert report is not None
    assert web_verdicts(report) == [("0", "museum", "correct"), (PORT, "port", "correct")]
    assert report.numbering == "0-based"


def test_each_citation_is_judged_on_its_own_claims(hashing_attributor):
    """Two citations of one page: the one on the sentence the page backs is correct, the one on
    a sentence it does not back is a wrong source (the first must not lend it its verdict);
    a citation over a block of sentences takes the best of its sentences."""
    report = check(
        hashing_attributor.attribute(WEB_ANSWER, WEB),
        from_blocks(blocks_citing(web_note(MUSEUM), {}, web_note(MUSEUM))),
    )
    assert report is not None
    assert web_verdicts(report) == [
        (MUSEUM, "museum", "correct"),
        (MUSEUM, "museum", "wrong_source"),
    ]
    assert report.markers[1].suggested_source_id == "birds"
    whole = [{"type": "text", "text": WEB_ANSWER, "citations": [web_note(MUSEUM)]}]
    report = check(hashing_attributor.attribute(WEB_ANSWER, WEB), from_blocks(whole))
    assert report is not None and web_verdicts(report) == [(MUSEUM, "museum", "correct")]


def test_an_empty_cited_block_is_unsupported(hashing_attributor):
    """A URL citation on a block with no text has no claim: unsupported, not an error."""
    content = [
        {"type": "text", "text": CLAIMS[0]},
        {"type": "text", "text": "", "citations": [web_note(MUSEUM)]},
    ]
    report = check(hashing_attributor.attribute(CLAIMS[0], WEB), from_blocks(content))
    assert report is not None
    assert web_verdicts(report) == [(MUSEUM, "museum", "unsupported")]


# --- options: the numbering and exact support, as check_citations takes them -----------------


def test_check_options_validate():
    assert check_options() == CheckOptions("auto", False)
    assert check_options("0-based", 1) == CheckOptions("0-based", True)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="citation_numbering must be one of 'auto'"):
        check_options("zero-based")


def test_the_numbering_option_overrides_the_prompt(hashing_attributor):
    """An explicit numbering wins over the prompt's labels, for written markers and for a
    structured list; provider indices stay 0-based."""
    answer = "The Hobart harbour museum was founded in 1896 [1]."
    result = hashing_attributor.attribute(answer, SOURCES)
    prompt = "Source 1:\nx\n\nSource 2:\ny\n\nSource 3:\nz"
    by_prompt = check(result, None, prompt)
    by_option = check(result, None, prompt, CheckOptions("0-based"))
    assert by_prompt is not None and by_option is not None
    assert [(m.source_id, m.verdict) for m in by_prompt.markers] == [("a", "correct")]
    assert [(m.source_id, m.verdict) for m in by_option.markers] == [("b", "wrong_source")]
    plain = hashing_attributor.attribute(TWO, SOURCES)
    listed = check(plain, GivenCitations((CitedSpan("1"),)), prompt, CheckOptions("0-based"))
    assert listed is not None and [m.source_id for m in listed.markers] == ["b"]
    blocks = [{"type": "text", "text": TWO, "citations": [{"document_index": 0}]}]
    provider = check(plain, from_blocks(blocks), prompt, CheckOptions("1-based"))
    assert provider is not None and [m.source_id for m in provider.markers] == ["a"]


def test_the_exact_support_option_is_passed_on(hashing_attributor):
    """exact_support=True gives the supports `check_citations(exact_support=True)` gives."""
    from rag_attrib import check_citations

    # the second sentence mixes two sources' words and cites one: alone, they weigh differently
    answer = "The Hobart harbour museum was founded in 1896 [1]. The Hobart museum handles the most cargo [1]."
    result = hashing_attributor.attribute(answer, SOURCES)
    exact = check(result, None, None, CheckOptions(exact_support=True), hashing_attributor)
    default = check(result, None, None, None, hashing_attributor)
    direct = check_citations(
        answer, SOURCES, result=result, exact_support=True, attributor=hashing_attributor
    )
    assert exact is not None and default is not None
    assert [m.support for m in exact.markers] == [m.support for m in direct.markers]
    assert [m.support for m in exact.markers] != [m.support for m in default.markers]
    assert [m.verdict for m in exact.markers] == [m.verdict for m in default.markers]
