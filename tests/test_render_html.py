"""The HTML view as markup: escaping, exact text, citation links, self-containment.

The same page is exercised in a real browser in `test_browser.py`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path

import pytest
from _html import Tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag_attrib import AttributionResult, Attributor, Citation, Source
from rag_attrib.engine import WEAK_MATCH
from rag_attrib.errors import MissingDependencyError
from rag_attrib.render import render_html
from rag_attrib.render.html import sentence_key

SOURCES = [
    Source(
        "alpha",
        "The Eiffel Tower is in Paris.\n\nIt was finished in 1889 for a world fair.  ",
        {"title": "Eiffel Tower"},
    ),
    Source("beta", "  Mount Everest is the highest mountain on Earth.\tIt lies in the Himalayas."),
    Source("gamma", "Bananas are rich in potassium. Many people eat bananas for breakfast."),
]
ANSWER = (
    "The Eiffel Tower was finished in 1889 for a world fair in Paris. "
    "Mount Everest lies in the Himalayas. "
    "Quantum chromodynamics describes gluon confinement."
)


def match(pattern: str, text: str, flags: int = 0) -> str:
    """The first group of `pattern` in `text` (the test fails when it does not match)."""
    found = re.search(pattern, text, flags)
    assert found is not None, f"{pattern!r} not found"
    return found.group(1)


@pytest.fixture
def result(hashing_attributor: Attributor) -> AttributionResult:
    """A result with citations and an unsupported sentence."""
    r = hashing_attributor.attribute(ANSWER, SOURCES, question="What do you know?")
    assert r.answer_sentences[0].citations and r.unsupported
    return r


def test_source_text_is_rebuilt_exactly(result: AttributionResult) -> None:
    """Each source's text, including blank lines, tabs and edge spaces, survives unchanged."""
    tree = Tree(render_html(result))
    bodies = [e.text for e in tree.find("ra-src-text")]
    assert bodies == [s.text for s in SOURCES]


def test_every_source_sentence_is_a_span_with_its_key(result: AttributionResult) -> None:
    """Each source sentence is one span carrying `data-sid` and exactly its text."""
    tree = Tree(render_html(result))
    spans = {e.attrs["data-sid"]: e.text for e in tree.find("ra-sent")}
    expected = {sentence_key(s.index, x.index): x.text for s in result.sources for x in s.sentences}
    assert spans == expected


def test_answer_sentences_list_their_citations(result: AttributionResult) -> None:
    """`data-cites` and the chips of each answer sentence are exactly its citations."""
    tree = Tree(render_html(result))
    cards = tree.find("ra-ans")
    assert len(cards) == len(result.answer_sentences)
    chips = iter(tree.find("ra-cite"))
    for card, sentence in zip(cards, result.answer_sentences, strict=True):
        keys = [sentence_key(c.source_index, c.sentence_index) for c in sentence.citations]
        assert card.attrs["data-cites"].split() == keys
        assert card.attrs["data-supported"] == str(sentence.supported).lower()
        assert [next(chips).attrs["data-sid"] for _ in keys] == keys


def test_unsupported_sentences_are_marked(result: AttributionResult) -> None:
    """Unsupported sentences get the class, one tag, the figure against the threshold and the
    reason, with no repeated "unsupported"."""
    html = render_html(result)
    tree = Tree(html)
    marked = [int(e.attrs["data-index"]) for e in tree.find("ra-unsupported")]
    assert marked == [s.index for s in result.unsupported] == [2]
    card = tree.find("ra-unsupported")[0]
    support = result.answer_sentences[2].support
    assert card.text.lower().count("unsupported") == 1
    assert f"support {support:.2f}, below 0.40" in card.text
    assert WEAK_MATCH in card.text  # the engine's reason, in words
    # a result saved before sentences carried that reason still says why
    older = replace(
        result,
        answer_sentences=tuple(replace(s, issues=()) for s in result.answer_sentences),
    )
    old_card = Tree(render_html(older)).find("ra-unsupported")[0]
    assert "no source backs this sentence" in old_card.text
    # its closest matches are shown as such, and the legend explains their dashed mark
    closest = result.answer_sentences[2].citations
    assert closest and "Closest match, does not support it" in card.text
    keys = [sentence_key(c.source_index, c.sentence_index) for c in closest]
    assert card.attrs["data-cites"].split() == keys
    assert "closest match of unsupported sentence 3" in tree.find("ra-legend")[0].text
    # without any, nothing is shown and the legend explains no dashed mark
    bare = replace(result.answer_sentences[2], citations=())
    r = replace(result, answer_sentences=(*result.answer_sentences[:2], bare))
    tree = Tree(render_html(r))
    assert "Closest match" not in tree.find("ra-unsupported")[0].text
    assert "does not support" not in tree.find("ra-legend")[0].text


def test_issues_are_the_reason_without_repeating_the_verdict(result: AttributionResult) -> None:
    """A sentence unsupported for a reason shows the reason once, not "Unsupported: ..."."""
    first = replace(result.answer_sentences[0], supported=False, issues=("1889 is in no source",))
    r = replace(result, answer_sentences=(first, *result.answer_sentences[1:]))
    tree = Tree(render_html(r))
    assert tree.find("ra-ans")[0].text.lower().count("unsupported") == 1
    assert tree.find("ra-reason")[0].text == "1889 is in no source"


def test_one_figure_per_sentence_and_citation(result: AttributionResult) -> None:
    """Each card shows its `support` (the verdict's figure) once; each chip shows its
    citation's strength on the same scale; the softmax score is only in the tooltip."""
    tree = Tree(render_html(result))
    figures = [e.text for e in tree.find("ra-fig")]
    assert [f.split(",")[0] for f in figures] == [
        f"support {s.support:.2f}" for s in result.answer_sentences
    ]
    chips = [e.text for e in tree.find("ra-cite-score")]
    cited = [c for s in result.answer_sentences for c in s.citations]
    assert chips == [f"{c.similarity:.2f}" for c in cited]


@dataclass(frozen=True)
class VerifiedCitation(Citation):
    """A citation carrying its own verifier score, as the verifier may give each one."""

    support: float = 0.0


def test_legend_says_what_the_figures_are(result: AttributionResult) -> None:
    """Similarity verdict: one scale. A verifier's probability beside citation strengths: the
    legend says they differ. Citations with their own support: the chips show that."""
    legend = Tree(render_html(result)).find("ra-legend")[0].text
    assert "each citation its strength, on one scale" in legend
    assert "supported from 0.40" in legend
    verified = replace(result, config={**result.config, "verdict": "verifier"})
    legend = Tree(render_html(verified)).find("ra-legend")[0].text
    assert "verifier's probability" in legend and "its match strength" in legend
    first = result.answer_sentences[0]
    own = tuple(
        VerifiedCitation(**{f.name: getattr(c, f.name) for f in fields(Citation)}, support=0.91)
        for c in first.citations
    )
    r = replace(verified, answer_sentences=(replace(first, citations=own),))
    tree = Tree(render_html(r))
    assert [e.text for e in tree.find("ra-cite-score")] == ["0.91"] * len(own)
    assert all("(support 0.91," in e.attrs["title"] for e in tree.find("ra-cite"))
    assert "each citation its support, on one scale" in tree.find("ra-legend")[0].text


def test_each_answer_sentence_marks_its_sources_in_its_colour(result: AttributionResult) -> None:
    """Without hovering: sentence i's card has colour class i, and every source sentence it
    cites carries a mark numbered i + 1 in that colour (filled for the best, outlined after);
    an unsupported sentence's closest matches carry the grey dashed mark instead."""
    tree = Tree(render_html(result))
    cards = tree.find("ra-ans")
    spans = {e.attrs["data-sid"]: e for e in tree.find("ra-sent")}
    marks = [e for e in tree.find("ra-mark") if "ra-src-text" in e.ancestors]
    for card, sentence in zip(cards, result.answer_sentences, strict=True):
        colour = f"ra-c{sentence.index}"
        assert colour in card.attrs["class"].split()
        for rank, c in enumerate(sentence.citations):
            key = sentence_key(c.source_index, c.sentence_index)
            kind = "ra-closest" if not sentence.supported else "ra-main" if rank == 0 else "ra-more"
            mine = [
                m for m in marks if m.attrs["data-n"] == str(sentence.index + 1) and m.after == key
            ]
            assert len(mine) == 1 and {kind, colour} <= set(mine[0].attrs["class"].split())
            assert "ra-cited" in spans[key].attrs["class"]
    cited = {
        sentence_key(c.source_index, c.sentence_index) for c in result.answer_sentences[0].citations
    }
    first = sentence_key(
        result.answer_sentences[0].citations[0].source_index,
        result.answer_sentences[0].citations[0].sentence_index,
    )
    assert {"ra-main", "ra-c0"} <= set(spans[first].attrs["class"].split())
    uncited = [e for k, e in spans.items() if k not in cited and "ra-cited" not in e.attrs["class"]]
    assert all(e.attrs["class"] == "ra-sent" for e in uncited)


def test_closest_matches_of_an_unsupported_sentence_never_read_as_support(
    result: AttributionResult,
) -> None:
    """Citations on an unsupported sentence (the verifier keeps its nearest sources) are shown
    as "closest match, does not support it", with grey dashed marks, never as a source."""
    borrowed = result.answer_sentences[0].citations
    bad = replace(result.answer_sentences[2], citations=borrowed)
    r = replace(result, answer_sentences=(*result.answer_sentences[:2], bad))
    tree = Tree(render_html(r))
    card = tree.find("ra-unsupported")[0]
    assert "Closest match, does not support it" in card.text
    chips = [e for e in tree.find("ra-cite") if e.attrs["title"].startswith("answer sentence 3")]
    assert len(chips) == len(borrowed)
    assert all("ra-closest" in e.attrs["class"] for e in chips)
    assert all("without support from" in e.attrs["title"] for e in chips)
    grey = [e for e in tree.find("ra-mark") if e.attrs.get("data-n") == "3"]
    assert grey and all("ra-closest" in e.attrs["class"] for e in grey)
    assert not [e for e in grey if {"ra-main", "ra-more"} & set(e.attrs["class"].split())]


def test_talk_shows_no_closest_matches(hashing_attributor: Attributor) -> None:
    """A sentence that only talks to the reader is not checked: the engine gives it no
    citations, and a result that has some (saved by an older release) shows none either."""
    r = hashing_attributor.attribute(f"Great question! {ANSWER}", SOURCES)
    talk = r.answer_sentences[0]
    assert not talk.claim and talk.citations == ()
    older = replace(talk, citations=r.answer_sentences[1].citations)
    r = replace(r, answer_sentences=(older, *r.answer_sentences[1:]))
    tree = Tree(render_html(r))
    card = tree.find("ra-ans")[0]
    assert "ra-talk" in card.attrs["class"] and card.attrs["data-cites"] == ""
    assert "Closest match" not in card.text
    assert not [e for e in tree.find("ra-mark") if e.attrs.get("data-n") == "1"]


def test_legend_numbers_the_dashed_mark_as_a_sentence_of_the_page(
    result: AttributionResult,
) -> None:
    """The legend's dashed "closest match" example carries the number of the page's unsupported
    sentence that shows closest matches (it said 4 on every page, even one of 3 sentences),
    and is left out where no sentence shows them."""
    borrowed = result.answer_sentences[0].citations
    bad = replace(result.answer_sentences[2], citations=borrowed)
    r = replace(result, answer_sentences=(*result.answer_sentences[:2], bad))
    legend = [e for e in Tree(render_html(r)).find("ra-closest") if "ra-legend" in e.ancestors]
    assert [e.attrs["data-n"] for e in legend] == ["3"]
    assert (
        "closest match of unsupported sentence 3" in Tree(render_html(r)).find("ra-legend")[0].text
    )
    kept = tuple(replace(a, supported=True) for a in r.answer_sentences)
    tree = Tree(render_html(replace(r, answer_sentences=kept)))
    assert not [e for e in tree.find("ra-closest") if "ra-legend" in e.ancestors]
    assert "closest match" not in tree.find("ra-legend")[0].text


def test_sources_are_named_the_same_everywhere(hashing_attributor: Attributor) -> None:
    """Plain-string sources are "source 1", "source 2" (1-based) in headers and chips alike;
    ids the user gave are shown as given."""
    r = hashing_attributor.attribute(
        "Bananas are rich in potassium. Mount Everest lies in the Himalayas.",
        [SOURCES[2].text, SOURCES[1].text],
    )
    tree = Tree(render_html(r))
    assert [e.text for e in tree.find("ra-src-id")] == ["source 1", "source 2"]
    chips = {e.text for e in tree.find("ra-cite-src")}
    assert chips and chips <= {"source 1", "source 2"}
    named = Tree(render_html(hashing_attributor.attribute(ANSWER, SOURCES)))
    assert [e.text for e in named.find("ra-src-id")] == ["alpha", "beta", "gamma"]
    assert {e.text for e in named.find("ra-cite-src")} <= {"alpha", "beta", "gamma"}


def test_answer_markdown_emphasis_reads_as_emphasis(hashing_attributor: Attributor) -> None:
    """LLM answers are Markdown: bold labels, italics and code show as such, not as asterisks;
    what is inside them is still escaped, and lone asterisks stay text."""
    answer = (
        "**Main cause:** The fire began in a *bakery* on `Pudding Lane`. "
        "**<script>x</script>** rose 2 * 3 * 4 times, __fast__."
    )
    tree = Tree(render_html(hashing_attributor.attribute(answer, SOURCES)))
    texts = tree.find("ra-ans-text")
    assert [e.tag for e in tree.elements if e.tag in ("strong", "em", "code")] == [
        "strong", "em", "code", "strong", "strong",
    ]  # fmt: skip
    assert texts[0].text == "Main cause: The fire began in a bakery on Pudding Lane."
    assert texts[1].text == "<script>x</script> rose 2 * 3 * 4 times, fast."
    assert [e.tag for e in tree.elements if e.tag == "script"] == ["script"]  # the view's own


def test_markup_in_any_text_is_escaped(hashing_attributor: Attributor) -> None:
    """Source, id, metadata title, answer, question and title text never become markup."""
    evil = "<script>alert(1)</script> <img src=x onerror=alert(2)> \"quoted\" & 'single'"
    r = hashing_attributor.attribute(
        f"An answer {evil}.",
        [Source(f"id{evil}", f"A source {evil}.", {"title": evil})],
        question=f"Q {evil}",
    ).with_error(evil)
    html = render_html(r, title=evil)
    tree = Tree(html)
    assert [e.tag for e in tree.elements if e.tag in ("script", "img")] == ["script"]
    assert "<img" not in html and html.count("<script") == 1
    assert evil in tree.find("ra-src-text")[0].text
    assert evil in tree.find("ra-error")[0].text
    assert evil in tree.find("ra-question")[0].text
    # attribute values (title=) hold the text intact: quotes cannot break out of them
    cited = r.answer_sentences[0].citations
    assert cited, "the answer shares words with the source and should cite it"
    titles = [e.attrs["title"] for e in tree.find("ra-cite")]
    assert [t.split("): ", 1)[1] for t in titles] == [c.text for c in cited]
    # the chip's number is the strength, the tooltip gives the softmax share too
    assert [e.text for e in tree.find("ra-cite-score")] == [f"{c.similarity:.2f}" for c in cited]
    assert f"(strength {cited[0].similarity:.2f}, share {cited[0].score:.2f})" in titles[0]
    assert any("<script>" in t for t in titles)
    assert all(set(e.attrs) <= {"class", "data-sid", "title"} for e in tree.find("ra-sent"))


def test_page_is_self_contained(result: AttributionResult) -> None:
    """No external scripts, styles, images or fonts: the file works offline."""
    html = render_html(result)
    tree = Tree(html)
    assert not [e for e in tree.elements if {"src", "href"} & set(e.attrs)]
    assert "http://" not in html and "https://" not in html
    assert "@import" not in html and "url(" not in html
    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html


def test_policy_forbids_requests_and_foreign_scripts(result: AttributionResult) -> None:
    """A Content-Security-Policy comes first in <head>: nothing may be fetched, and only
    scripts with this render's nonce run."""
    html = render_html(result)
    tree = Tree(html)
    meta = [e for e in tree.elements if e.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert len(meta) == 1
    policy = dict(
        (part.split()[0], part.split()[1:]) for part in meta[0].attrs["content"].split("; ")
    )
    assert policy["default-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'none'"]
    assert "connect-src" not in policy and "img-src" in policy and policy["img-src"] == ["data:"]
    # the one script is allowed by its hash, the same for every render (views can be joined)
    (allowed,) = policy["script-src"]
    body = match(r"<script>(.*?)</script>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    assert allowed == f"'sha256-{digest}'"
    assert match(r"<script>(.*?)</script>", render_html(result), re.S) == body
    assert html.index("Content-Security-Policy") < html.index("<title>")


# Where numbers, indices and flags belong, a crafted file can hold markup; each must be
# ignored or shown as text, never written into an attribute or a selector.
PAYLOAD = '"><img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def crafted(result: AttributionResult, payload: object = PAYLOAD) -> AttributionResult:
    """`result` with `payload` in every number, index and flag of its records (no validation)."""
    sentences = tuple(
        replace(
            s,
            index=payload,
            start=payload,
            supported=payload,
            support=payload,
            citations=tuple(
                replace(c, source_index=payload, sentence_index=payload, score=payload)
                for c in s.citations
            )
            + tuple(replace(c, similarity=payload) for c in s.citations),
        )
        for s in result.answer_sentences
    )
    sources = tuple(
        replace(
            s,
            index=payload,
            score=payload,
            max_similarity=payload,
            sentences=tuple(
                replace(x, index=payload, start=payload, score=payload) for x in s.sentences
            ),
        )
        for s in result.sources
    )
    return replace(
        result,
        answer_sentences=sentences,
        sources=sources,
        config={"support_threshold": payload},
        timings={"total_ms": payload},
    )


@pytest.mark.parametrize("payload", [PAYLOAD, "1", True, float("nan"), None, [1], {"a": 1}])
def test_crafted_values_never_reach_markup(result: AttributionResult, payload: object) -> None:
    """Strings, bools, NaN, lists where numbers and flags belong: the page renders, every
    attribute is well-formed, nothing from the payload becomes an element or an attribute."""
    r = crafted(result, payload)
    html = render_html(r)
    tree = Tree(html)
    assert [e.tag for e in tree.elements if e.tag in ("script", "img")] == ["script"]
    for e in tree.elements:
        assert not [k for k in e.attrs if k.startswith("on")], e
        for key in ("data-index", "data-source", "data-n"):
            if key in e.attrs:
                assert e.attrs[key].isdigit(), (key, e.attrs[key])
        for key in ("data-sid", "data-cites"):
            if key in e.attrs:
                assert re.fullmatch(r"(s\d+-\d+ ?)*", e.attrs[key]), (key, e.attrs[key])
    # positions, not forged index fields, number the cards; nothing counts as supported
    assert [e.attrs["data-index"] for e in tree.find("ra-ans")] == [
        str(i) for i in range(len(r.answer_sentences))
    ]
    verdict = "true" if payload is True else "false"  # only the bool True is a verdict
    assert {e.attrs["data-supported"] for e in tree.find("ra-ans")} == {verdict}
    assert [e.text for e in tree.find("ra-src-text")] == [s.text for s in SOURCES]


def test_crafted_file_from_dict_renders_safely(result: AttributionResult) -> None:
    """The same payloads through a JSON file and from_dict (when it lets them through)."""
    data = json.loads(json.dumps(result.to_dict()))
    for s in data["answer_sentences"]:
        s["index"] = s["supported"] = s["support"] = PAYLOAD
        for c in s["citations"]:
            c["source_index"] = c["sentence_index"] = c["score"] = PAYLOAD
    for src in data["sources"]:
        src["index"] = src["score"] = PAYLOAD
    try:
        r = AttributionResult.from_dict(data)
    except ValueError:
        return  # validated at the edge: nothing to render
    html = r.to_html()
    assert "<img" not in html and html.count("<script") == 1


BROKEN = "bad \ud800 surrogate, \x00 nul, \x1b[31m escape, \x7f del, \udfff end."


def test_lone_surrogates_and_control_characters_do_not_break_the_page(
    hashing_attributor: Attributor, tmp_path: Path
) -> None:
    """Lone surrogates, NUL and control characters anywhere: to_html encodes, save_html writes
    UTF-8, each bad code point becomes one U+FFFD so the text keeps its length and offsets."""
    r = hashing_attributor.attribute(
        f"An answer with a {BROKEN}",
        [Source(f"id {BROKEN}", f"A source with a {BROKEN} More text.", {"title": BROKEN})],
        question=BROKEN,
    ).with_error(BROKEN)
    html = r.to_html()
    html.encode("utf-8")
    path = tmp_path / "view.html"
    r.save_html(path)
    tree = Tree(path.read_text(encoding="utf-8"))
    text = tree.find("ra-src-text")[0].text
    original = r.sources[0].text
    assert len(text) == len(original)
    assert [i for i, ch in enumerate(text) if ch == "\ufffd"] == [
        # the engine already turned lone surrogates into U+FFFD (validate.clean_text)
        i
        for i, ch in enumerate(original)
        if ch in "\ud800\x00\x1b\x7f\udfff\ufffd"
    ]
    assert len(tree.find("ra-sent")) == len(r.sources[0].sentences)
    assert "\ufffd" in tree.find("ra-question")[0].text
    assert "\x00" not in html and "\x1b" not in html


def test_each_render_has_its_own_root_and_scoped_css(result: AttributionResult) -> None:
    """Two renders get different root ids, and every CSS rule is scoped to its root."""
    first, second = render_html(result), render_html(result)
    ids = [match(r'<div id="(ra-[0-9a-f]+)" class="ra-root">', h) for h in (first, second)]
    assert ids[0] != ids[1]
    css = match(r"<style>(.*?)</style>", first, re.S)
    selectors = re.findall(r"(?:^|})\s*([^{}@][^{}]*)\{", css)
    assert selectors
    for selector in selectors:
        if selector.strip().endswith("%"):  # keyframe steps
            continue
        for part in selector.split(","):
            assert part.strip().startswith(f"#{ids[0]}"), part


def test_title_question_and_error_are_shown(result: AttributionResult) -> None:
    """The heading, the question, the model and a recorded error appear on the page."""
    tree = Tree(render_html(result.with_error("embedder failed"), title="My run"))
    assert tree.tag("h1").text == "My run"
    assert tree.tag("title").text == "My run"
    assert tree.find("ra-question")[0].text.endswith("What do you know?")
    assert "embedder failed" in tree.find("ra-error")[0].text
    assert "hashing-embedder" in tree.find("ra-stats")[0].text
    assert not Tree(render_html(result)).find("ra-error")


def test_share_bars_match_source_scores(result: AttributionResult) -> None:
    """Each chunk's bar width is its share of the answer."""
    tree = Tree(render_html(result))
    widths = [float(match(r"width:([\d.]+)%", e.attrs["style"])) for e in tree.find("ra-bar-fill")]
    assert widths == pytest.approx([s.score * 100 for s in result.sources], abs=0.06)


def test_empty_answer_and_no_sources(hashing_attributor: Attributor) -> None:
    """Degenerate results still render, with a note instead of a crash."""
    empty = Tree(render_html(hashing_attributor.attribute("   ", SOURCES)))
    assert "The answer is empty." in empty.find("ra-answer-col")[0].text
    bare = hashing_attributor.attribute("Something is claimed here.", [])
    tree = Tree(render_html(bare))
    assert "No sources were given." in tree.find("ra-sources-col")[0].text
    assert [e.attrs["data-supported"] for e in tree.find("ra-ans")] == ["false"]


def test_stale_offsets_fall_back_to_search(result: AttributionResult) -> None:
    """A hand-edited to_dict() with wrong offsets still shows the whole text, sentences found."""
    data = result.to_dict()
    for sentence in data["sources"][0]["sentences"]:
        sentence["start"] += 3
        sentence["end"] += 3
    tree = Tree(render_html(AttributionResult.from_dict(data)))
    assert tree.find("ra-src-text")[0].text == SOURCES[0].text
    assert len([e for e in tree.find("ra-sent") if e.attrs["data-sid"].startswith("s0-")]) == 2


def test_result_methods_use_the_renderer(result: AttributionResult, tmp_path: Path) -> None:
    """`to_html`, `_repr_html_` and `save_html` produce the view; save_html writes UTF-8."""
    assert 'class="ra-root"' in result.to_html()
    fragment = result._repr_html_()  # a notebook gets the bare root, no document or policy
    assert fragment.startswith('<div id="ra-') and fragment.endswith("</div>")
    assert "Content-Security-Policy" not in fragment and "<html" not in fragment
    assert Tree(fragment).find("ra-ans")
    path = tmp_path / "view.html"
    result.save_html(path)
    saved = Tree(path.read_text(encoding="utf-8"))
    assert saved.find("ra-src-text")[1].text == SOURCES[1].text


def test_round_trip_renders_the_same_content(result: AttributionResult) -> None:
    """A result rebuilt with from_dict renders the same markup apart from the root id."""
    again = AttributionResult.from_dict(result.to_dict())
    strip = re.compile(r"ra-[0-9a-f]{12}")
    assert strip.sub("", render_html(result)) == strip.sub("", render_html(again))


def test_sankey_is_embedded_on_request(result: AttributionResult) -> None:
    """`sankey=True` adds the flow section with plotly.js inlined (no CDN script)."""
    pytest.importorskip("plotly")
    html = render_html(result, sankey=True)
    assert 'class="ra-flow"' in html and "Plotly.newPlot" in html
    # each of plotly's scripts is allowed by its hash, and nothing else is
    policy = match(r'Content-Security-Policy" content="([^"]+)"', html)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(js.encode()).digest()).decode() + "'"
        for js in scripts
    }
    allowed = set(match(r"script-src ([^;]+);", policy).split())
    assert len(scripts) == 4 and hashes == allowed
    assert not re.search(r"<script[^>]+src=", html)
    assert 'class="ra-flow"' not in render_html(result)


def test_sankey_without_plotly_names_the_extra(
    result: AttributionResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without plotly, `sankey=True` raises MissingDependencyError with the pip line."""
    for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "plotly", None)  # makes `import plotly` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'rag-attrib\[viz\]'"):
        render_html(result, sankey=True)
    assert 'class="ra-root"' in render_html(result)  # the plain view needs no plotly


# Any code point, lone surrogates and controls included, in any text field.
ANY_TEXT = st.text(
    st.one_of(
        st.characters(codec=None),
        st.integers(0xD800, 0xDFFF).map(chr),  # characters() never yields lone surrogates
        st.integers(0, 0x9F).map(chr),
    ),
    max_size=40,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    source_text=ANY_TEXT,
    cut=st.integers(0, 40),
    answer=ANY_TEXT,
    other=ANY_TEXT,
    number=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.booleans(), ANY_TEXT
    ),
)
def test_any_text_and_any_value_render(
    result: AttributionResult,
    source_text: str,
    cut: int,
    answer: str,
    other: str,
    number: object,
) -> None:
    """Generated texts (any code point) and values of any type where numbers belong: the page
    always renders, encodes to UTF-8, and shows each source text with only its unencodable and
    control characters replaced, one for one."""
    cut = min(cut, len(source_text))
    first = result.sources[0]
    sentence = replace(first.sentences[0], text=source_text[:cut], start=0, end=cut, score=number)
    source = replace(first, id=other, text=source_text, sentences=(sentence,), score=number)
    said = replace(result.answer_sentences[0], text=answer, support=number, issues=(other,))
    r = replace(
        result,
        answer_sentences=(said, *result.answer_sentences[1:]),
        sources=(source, *result.sources[1:]),
        question=other,
        error=other or None,
    )
    html = render_html(r)
    html.encode("utf-8")
    tree = Tree(html)
    shown = tree.find("ra-src-text")[0].text
    assert len(shown) == len(source_text)
    for a, b in zip(shown, source_text, strict=True):
        assert a == b or a == "\ufffd"
    assert [e.tag for e in tree.elements if e.tag == "script"] == ["script"]
