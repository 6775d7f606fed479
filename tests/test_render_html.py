"""The HTML view as markup: escaping, exact text, citation links, self-containment.

The same page is exercised in a real browser in `test_browser.py`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rag_attrib import AttributionResult, Attributor, Source
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


@dataclass
class Element:
    """One parsed element: its tag, attributes and the text inside it."""

    tag: str
    attrs: dict[str, str]
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text content, like the DOM's `textContent`."""
        return "".join(self.parts)


class Tree(HTMLParser):
    """Collect elements with the stdlib parser, like a tiny DOM."""

    VOID = frozenset({"meta", "br", "img", "input", "link", "hr"})

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.parts.append(data)

    def find(self, cls: str) -> list[Element]:
        """Elements whose class list contains `cls`."""
        return [e for e in self.elements if cls in e.attrs.get("class", "").split()]

    def tag(self, name: str) -> Element:
        """The first element with tag `name`."""
        return next(e for e in self.elements if e.tag == name)


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
    """Unsupported sentences get the class, a badge and the reason; the legend explains it."""
    html = render_html(result)
    tree = Tree(html)
    marked = [int(e.attrs["data-index"]) for e in tree.find("ra-unsupported")]
    assert marked == [s.index for s in result.unsupported] == [2]
    card = tree.find("ra-unsupported")[0]
    assert "unsupported" in card.text and "No source backs" in card.text
    assert "unsupported: no source backs it" in tree.find("ra-legend")[0].text


def test_shading_follows_scores(result: AttributionResult) -> None:
    """Higher-scored sentences get a more saturated background; near-zero ones none."""
    tree = Tree(render_html(result))

    def blue(style: str) -> int:
        return int(match(r"rgb\(\d+,\d+,(\d+)\)", style))

    shaded = []
    for e in tree.find("ra-sent"):
        score = float(e.attrs["data-score"])
        style = e.attrs.get("style")
        if score < 0.01:
            assert style is None
        elif style:
            shaded.append((score, blue(style)))
    assert len(shaded) >= 2
    shaded.sort()
    assert shaded[-1][1] < shaded[0][1] or shaded[-1][0] == shaded[0][0]


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
    assert "<img" not in html and html.count("<script>") == 1
    assert evil in tree.find("ra-src-text")[0].text
    assert evil in tree.find("ra-error")[0].text
    assert evil in tree.find("ra-question")[0].text
    # attribute values (title=) hold the text intact: quotes cannot break out of them
    cited = r.answer_sentences[0].citations
    assert cited, "the answer shares words with the source and should cite it"
    titles = [e.attrs["title"] for e in tree.find("ra-cite")]
    assert [t.split(": ", 1)[1] for t in titles] == [c.text for c in cited]
    # the chip's number is the strength, the tooltip gives the score too
    assert [e.text for e in tree.find("ra-cite-score")] == [f"{c.similarity:.2f}" for c in cited]
    assert titles[0].startswith(f"strength {cited[0].similarity:.2f}, score {cited[0].score:.2f}")
    assert any("<script>" in t for t in titles)
    assert all(
        set(e.attrs) <= {"class", "data-sid", "data-score", "title", "style"}
        for e in tree.find("ra-sent")
    )


def test_page_is_self_contained(result: AttributionResult) -> None:
    """No external scripts, styles, images or fonts: the file works offline."""
    html = render_html(result)
    tree = Tree(html)
    assert not [e for e in tree.elements if {"src", "href"} & set(e.attrs)]
    assert "http://" not in html and "https://" not in html
    assert "@import" not in html and "url(" not in html
    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html


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
    assert f'document.getElementById("{ids[0]}")' in first


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
    assert 'class="ra-root"' in result._repr_html_()
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
