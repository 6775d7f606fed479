"""The Sankey flow: one node per source unit and answer sentence, at most k links each."""

from __future__ import annotations

import re
import sys
from collections import Counter

import numpy as np
import pytest

from rag_attrib import AttributionResult, Attributor, ConfigError, Source
from rag_attrib.errors import MissingDependencyError
from rag_attrib.render.sankey import UNSUPPORTED_COLOUR, sankey_data, sankey_figure, sankey_html

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


@pytest.mark.parametrize("top_k", [1, 2, 3, 5])
def test_sentence_level_nodes_and_top_k_links(result: AttributionResult, top_k: int) -> None:
    """One node per source sentence and per answer sentence; at most k links per answer
    sentence, and they are its k strongest."""
    data = sankey_data(result, top_k=top_k)
    assert data.n_source_units == N_UNITS
    assert len(data.labels) == len(data.hover) == len(data.node_colours) == N_UNITS + 4
    per_target = Counter(data.target)
    assert set(per_target) <= set(range(N_UNITS, N_UNITS + 4))
    assert max(per_target.values()) <= top_k
    for i in range(4):
        row = result.similarity[i]
        links = [
            (s, v)
            for s, t, v in zip(data.source, data.target, data.value, strict=True)
            if t == N_UNITS + i
        ]
        expected = sorted(np.argsort(-row, kind="stable")[: len(links)].tolist())
        assert sorted(s for s, _ in links) == expected
        assert [v for _, v in links] == pytest.approx(sorted(row[expected], reverse=True), abs=1e-6)
        assert len(links) == min(top_k, int((row > 0).sum()))


def test_chunk_level_uses_the_best_sentence_of_each_chunk(result: AttributionResult) -> None:
    """At chunk level there is one node per chunk and a link's value is the chunk's best."""
    data = sankey_data(result, level="chunk", top_k=2)
    assert data.n_source_units == 5
    assert len(data.labels) == 5 + 4
    assert max(Counter(data.target).values()) <= 2
    bounds = np.cumsum([0, *(len(s.sentences) for s in result.sources)])
    for s, t, v in zip(data.source, data.target, data.value, strict=True):
        block = result.similarity[t - 5, bounds[s] : bounds[s + 1]]
        assert v == pytest.approx(float(block.max()))
    first_links = [s for s, t in zip(data.source, data.target, strict=True) if t == 5]
    assert first_links[0] == 0  # "origin" backs the first answer sentence


def test_min_score_drops_weak_links(result: AttributionResult) -> None:
    """Links below `min_score` disappear; non-positive strengths never make a link."""
    loose = sankey_data(result, top_k=13)
    strict = sankey_data(result, top_k=13, min_score=0.3)
    assert all(v > 0 for v in loose.value)
    assert all(v >= 0.3 for v in strict.value)
    assert 0 < len(strict.value) < len(loose.value)


def test_links_are_coloured_by_answer_sentence(result: AttributionResult) -> None:
    """All links into one answer sentence share its colour; unsupported ones are grey."""
    data = sankey_data(result)
    colours: dict[int, set[str]] = {}
    for t, c in zip(data.target, data.link_colours, strict=True):
        colours.setdefault(t, set()).add(re.sub(r",[\d.]+\)$", ")", c).replace("rgba", "rgb"))
    assert all(len(c) == 1 for c in colours.values())
    assert len({next(iter(c)) for c in colours.values()}) == len(colours)
    assert data.node_colours[N_UNITS + 3] == UNSUPPORTED_COLOUR
    assert len(set(data.node_colours[N_UNITS : N_UNITS + 3])) == 3


def test_labels_are_short_and_hover_has_full_text(hashing_attributor: Attributor) -> None:
    """Long sentences get a shortened label, the whole (escaped) text on hover."""
    long_text = "The <b>bakery</b> fire " + "spread very far and wide across the old city " * 5
    r = hashing_attributor.attribute(long_text + ".", [long_text + ". Nothing else."])
    data = sankey_data(r)
    assert all(len(label) <= 60 for label in data.labels)
    assert data.labels[0].endswith("…")
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
    """No answer sentences or no sources give nodes but no links, without errors."""
    empty = sankey_data(hashing_attributor.attribute("", CHUNKS[:2]))
    assert empty.value == () and empty.n_source_units == 6
    bare = sankey_data(hashing_attributor.attribute("A claim.", []))
    assert bare.value == () and bare.labels[0].startswith("A1:")


def test_rebuilt_result_without_matrix_falls_back_to_citations(result: AttributionResult) -> None:
    """A to_dict() without the similarity matrix still links each sentence to its citations."""
    data = result.to_dict()
    data["similarity"] = []
    cited = sum(len(s.citations) for s in result.answer_sentences)
    assert len(sankey_data(AttributionResult.from_dict(data)).value) == cited
    from dataclasses import replace

    bare = replace(result, similarity=np.zeros((0, 0), dtype=np.float32))
    assert len(sankey_data(bare).value) == cited


def test_figure_holds_the_same_flow(result: AttributionResult) -> None:
    """`sankey_figure` is a plotly Sankey with the nodes and links of `sankey_data`."""
    pytest.importorskip("plotly")
    figure = sankey_figure(result, top_k=2)
    trace = figure.data[0]
    data = sankey_data(result, top_k=2)
    assert trace.type == "sankey"
    assert list(trace.node.label) == list(data.labels)
    assert list(trace.link.source) == list(data.source)
    assert list(trace.link.target) == list(data.target)
    assert list(trace.link.value) == pytest.approx(list(data.value))
    assert "%{customdata}" in trace.node.hovertemplate


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
    assert sankey_data(result).n_source_units == N_UNITS
