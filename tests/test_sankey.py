"""The Sankey flow: drawn from the citations, one node per cited source unit and per answer
sentence, unsupported sentences off a separate "no source supports" node."""

from __future__ import annotations

import re
import sys
from dataclasses import replace

import pytest

from rag_attrib import AttributionResult, Attributor, ConfigError, Source
from rag_attrib.errors import MissingDependencyError
from rag_attrib.render.sankey import (
    PALETTE,
    UNSUPPORTED_COLOUR,
    UNSUPPORTED_WIDTH,
    SankeyData,
    sankey_data,
    sankey_figure,
    sankey_html,
)

CHUNKS = [
    Source(
        "origin",
        "The fire started in a bakery on Pudding Lane. It broke out on a Sunday night."
        " A spark from the oven lit fuel stored nearby.",
    ),
    Source(
        "spread",
        "Strong winds drove the flames across timber houses. The mayor hesitated."
        " The fire reached the cathedral by Tuesday.",
    ),
    Source("damage", "The fire consumed thirteen thousand houses. Many people were left homeless."),
    Source(
        "rebuild", "A new law required houses of brick or stone. Wren designed a new cathedral."
    ),
    Source(
        "plague",
        "The plague killed many people in the previous year. It was the last outbreak."
        " Some claimed the fire ended the plague.",
    ),
]
ANSWER = (
    "The fire started in a bakery on Pudding Lane. "
    "Strong winds drove the flames and the fire reached the cathedral. "
    "A new law required houses of brick or stone. "
    "Aliens from Mars landed in Hyde Park."
)
N_UNITS = sum(len(s.text.split(". ")) for s in CHUNKS)


@pytest.fixture
def result(hashing_attributor: Attributor) -> AttributionResult:
    """A 5-chunk, 4-sentence answer whose last sentence nothing supports."""
    r = hashing_attributor.attribute(ANSWER, CHUNKS)
    assert sum(len(s.sentences) for s in r.sources) == N_UNITS == 13
    assert [s.index for s in r.unsupported] == [3]
    return r


def links_into(data: SankeyData, node: int) -> list[tuple[int, float]]:
    """(source node, value) of every link into `node`, in order."""
    return [
        (s, v) for s, t, v in zip(data.source, data.target, data.value, strict=True) if t == node
    ]


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_links_are_the_citations(result: AttributionResult, top_k: int) -> None:
    """A supported sentence's links are its first k citations, width = the citation's
    strength; only source sentences a supported sentence cites become nodes (the unsupported
    sentence's closest matches do not)."""
    data = sankey_data(result, top_k=top_k)
    cited = {
        (c.source_index, c.sentence_index)
        for s in result.answer_sentences
        if s.supported
        for c in s.citations[:top_k]
    }
    assert data.n_source_units == len(cited)
    closest = result.answer_sentences[3]
    assert not closest.supported and closest.citations  # it keeps its closest sources
    only_closest = {(c.source_index, c.sentence_index) for c in closest.citations} - cited
    assert only_closest, "the fixture needs a closest match no supported sentence cites"
    for src, k in only_closest:
        name = result.sources[src].id
        assert not any(h.startswith(f"<b>{name}</b>, sentence {k + 1}<") for h in data.hover)
    for i, sentence in enumerate(result.answer_sentences):
        if not sentence.supported:
            continue
        links = links_into(data, data.n_source_units + i)
        expected = sentence.citations[:top_k]
        assert [v for _, v in links] == pytest.approx([c.similarity for c in expected])
        for (s, _), c in zip(links, expected, strict=True):
            assert data.hover[s].startswith(
                f"<b>{c.source_id}</b>, sentence {c.sentence_index + 1}"
            )


def test_unsupported_sentences_take_no_flow_from_a_source(result: AttributionResult) -> None:
    """An unsupported sentence gets one grey link from the "no source supports" node, never a
    flow from a source, even when it carries closest-match citations."""
    borrowed = result.answer_sentences[0].citations
    bad = replace(result.answer_sentences[3], citations=borrowed)
    r = replace(result, answer_sentences=(*result.answer_sentences[:3], bad))
    data = sankey_data(r)
    sink = len(data.labels) - 1
    assert data.labels[sink] == "no source supports"
    assert links_into(data, data.n_source_units + 3) == [(sink, UNSUPPORTED_WIDTH)]
    assert (
        data.node_colours[data.n_source_units + 3] == UNSUPPORTED_COLOUR == data.node_colours[sink]
    )
    assert "no source supports" in data.link_hover[data.target.index(data.n_source_units + 3)]
    everyone_supported = replace(r, answer_sentences=r.answer_sentences[:3])
    assert "no source supports" not in sankey_data(everyone_supported).labels


def test_chunk_level_links_a_source_by_its_strongest_citation(result: AttributionResult) -> None:
    """At chunk level a node is a source a supported sentence cites and a link's width its
    strongest citation; a source only the unsupported sentence is closest to is no node."""
    data = sankey_data(result, level="chunk")
    cited = sorted(
        {c.source_index for s in result.answer_sentences if s.supported for c in s.citations}
    )
    assert data.n_source_units == len(cited)
    closest = {c.source_index for c in result.answer_sentences[3].citations}
    assert closest - set(cited), "the fixture needs a source only the unsupported one is near"
    for i, sentence in enumerate(result.answer_sentences):
        if not sentence.supported:
            continue
        best: dict[int, float] = {}
        for c in sentence.citations:
            best[c.source_index] = max(best.get(c.source_index, 0.0), c.similarity)
        links = links_into(data, data.n_source_units + i)
        assert [cited[s] for s, _ in links] == list(best)
        assert [v for _, v in links] == pytest.approx(list(best.values()))


def test_min_score_drops_weak_citations(result: AttributionResult) -> None:
    """Citations below `min_score` are not drawn."""
    drawable = [s for s in result.answer_sentences if s.supported]
    strengths = sorted(c.similarity for s in drawable for c in s.citations)
    cut = (strengths[0] + strengths[-1]) / 2
    strict = sankey_data(result, min_score=cut)
    drawn = [
        v
        for v, t in zip(strict.value, strict.target, strict=True)
        if strict.labels[-1] != "no source supports" or v != UNSUPPORTED_WIDTH
    ]
    assert all(v >= cut for v in drawn)
    assert 0 < len(drawn) < len(strengths)


def test_links_are_coloured_by_answer_sentence(result: AttributionResult) -> None:
    """Links into one answer sentence share its colour, the HTML view's colour for it."""
    data = sankey_data(result)
    for i, sentence in enumerate(result.answer_sentences):
        node = data.n_source_units + i
        colours = {
            re.sub(r",[\d.]+\)$", ")", c).replace("rgba", "rgb")
            for t, c in zip(data.target, data.link_colours, strict=True)
            if t == node
        }
        want = PALETTE[i][0] if sentence.supported else UNSUPPORTED_COLOUR
        assert data.node_colours[node] == want
        r, g, b = (int(want[k : k + 2], 16) for k in (1, 3, 5))
        assert colours == {f"rgb({r},{g},{b})"}


def test_labels_wrap_and_hover_has_full_text(hashing_attributor: Attributor) -> None:
    """Long sentences wrap onto at most three short lines; hover holds the whole escaped text."""
    long_text = "The <b>bakery</b> fire " + "spread very far and wide across the old city " * 5
    r = hashing_attributor.attribute(long_text + ".", [long_text + ". Nothing else."])
    data = sankey_data(r)
    for label in data.labels:
        lines = label.split("<br>")
        assert len(lines) <= 3 and all(len(line) <= 24 + 12 for line in lines)  # &lt; etc.
    assert data.labels[0].endswith("…") and "<br>" in data.labels[0]
    assert "&lt;b&gt;bakery" in data.labels[0]
    hover = data.hover[0].replace("<br>", " ")
    assert "&lt;b&gt;bakery&lt;/b&gt;" in hover and "<b>bakery" not in hover
    assert " ".join(long_text.split()[-4:]) in hover


def test_invalid_options_raise_config_error(result: AttributionResult) -> None:
    """A bad level or top_k is a ConfigError that lists the valid values."""
    with pytest.raises(ConfigError, match="'sentence', 'chunk'"):
        sankey_data(result, level="paragraph")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="top_k"):
        sankey_data(result, top_k=0)


def test_empty_and_sourceless_results(hashing_attributor: Attributor) -> None:
    """No answer sentences: no links; no sources: the sentence hangs off "no source supports"."""
    empty = sankey_data(hashing_attributor.attribute("", CHUNKS[:2]))
    assert empty.value == () and empty.n_source_units == 0
    bare = sankey_data(hashing_attributor.attribute("A claim.", []))
    assert bare.labels[0].startswith("A1:") and bare.labels[-1] == "no source supports"
    assert bare.value == (UNSUPPORTED_WIDTH,)


def test_rebuilt_result_draws_the_same_flow(result: AttributionResult) -> None:
    """The flow comes from the citations: a to_dict() without its matrix draws the same."""
    data = result.to_dict()
    data["similarity"] = []
    assert sankey_data(AttributionResult.from_dict(data)) == sankey_data(result)


def test_crafted_indices_are_ignored(result: AttributionResult) -> None:
    """Citations whose indices or strengths are not numbers (a crafted file) are not drawn."""
    bad = tuple(
        replace(
            s,
            citations=tuple(
                replace(c, source_index="0", sentence_index=True, similarity="0.9")
                for c in s.citations
            ),
        )
        for s in result.answer_sentences
    )
    data = sankey_data(replace(result, answer_sentences=bad))
    assert data.n_source_units == 0
    assert all(v == UNSUPPORTED_WIDTH for v in data.value)


def test_figure_holds_the_same_flow(result: AttributionResult) -> None:
    """`sankey_figure` is a plotly Sankey with the nodes and links of `sankey_data`, and its
    title says what link width means."""
    pytest.importorskip("plotly")
    figure = sankey_figure(result, top_k=2)
    trace = figure.data[0]
    data = sankey_data(result, top_k=2)
    assert trace.type == "sankey"
    assert list(trace.node.label) == list(data.labels)
    assert list(trace.link.source) == list(data.source)
    assert list(trace.link.target) == list(data.target)
    assert list(trace.link.value) == pytest.approx(list(data.value))
    assert list(trace.link.customdata) == list(data.link_hover)
    assert "%{customdata}" in trace.node.hovertemplate
    assert "Link width = citation strength" in figure.layout.title.text


def test_html_inlines_plotly_for_offline_use(hashing_attributor: Attributor) -> None:
    """The HTML carries plotly.js itself and hostile text cannot close the script tag."""
    pytest.importorskip("plotly")
    r = hashing_attributor.attribute(
        "The bakery burned. </script><script>alert(1)</script>",
        ["The bakery burned down. </script><script>alert(1)</script>"],
    )
    page = sankey_html(r)
    fragment = sankey_html(r, full_html=False)
    assert "<html>" in page[:100] and "<html>" not in fragment[:100]
    assert len(page) > 1_000_000  # plotly.js is inlined
    assert not re.search(r"<script[^>]+src=", page)
    assert page.count("<script>alert(1)") == 0


def test_missing_plotly_names_the_extra(
    result: AttributionResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without plotly the figure functions raise MissingDependencyError with the pip line;
    `sankey_data` still works."""
    for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'rag-attrib\[viz\]'"):
        sankey_figure(result)
    with pytest.raises(ImportError):
        sankey_html(result)
    assert sankey_data(result).n_source_units > 0
