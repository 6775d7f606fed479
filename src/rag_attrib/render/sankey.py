"""The Sankey flow: cited source sentences (or chunks) -> answer sentences, with plotly
(extra `viz`).

It is drawn from the citations, not from the strength matrix: a link is a citation and its
width the citation's strength; unsupported sentences get a grey link from a "no source
supports" node instead of flows from sources they do not follow from.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError, import_optional
from ..results import AttributionResult
from ._common import (
    PALETTE,
    as_float,
    as_index,
    citation_figure,
    citation_kind,
    clean,
    is_true,
    num,
    source_label,
    states_claim,
)

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

__all__ = ["SankeyData", "flow_fragment", "sankey_data", "sankey_figure", "sankey_html"]

Level = Literal["sentence", "chunk"]
LEVELS: tuple[str, ...] = ("sentence", "chunk")

# Answer sentences take the HTML view's colours, so sentence 2 is the same colour in both.
UNSUPPORTED_COLOUR = "#9CA3AF"
SOURCE_COLOUR = "#64748B"
# The grey link into an unsupported sentence has a fixed width: it marks the sentence only.
UNSUPPORTED_WIDTH = 0.3
WIDTH_NOTE = "Link width = citation {kind} · grey = no source supports the sentence"
_LABEL_WIDTH = 24
_LABEL_LINES = 3
_HOVER_WIDTH = 60


@dataclass(frozen=True, slots=True)
class SankeyData:
    """The flow as plain lists, before plotly: nodes (source units, then answer sentences), links.

    `source`/`target` index `labels`; `value` is the strength of each cited link (a fixed
    width for the grey links into unsupported sentences); `link_hover` says what each link is.
    """

    labels: tuple[str, ...]
    hover: tuple[str, ...]
    node_colours: tuple[str, ...]
    source: tuple[int, ...]
    target: tuple[int, ...]
    value: tuple[float, ...]
    link_colours: tuple[str, ...]
    n_source_units: int
    link_hover: tuple[str, ...] = ()


def sankey_data(
    result: AttributionResult,
    *,
    level: Level = "sentence",
    top_k: int = 3,
    min_score: float = 0.0,
) -> SankeyData:
    """Compute the nodes and links of the Sankey flow from the citations (no plotly needed).

    A link joins a supported answer sentence to each source unit it cites; its width is the
    citation's strength, the figure the HTML view shows beside it. Unsupported sentences get no
    link from a source: one grey link of a fixed width comes from a "no source supports" node,
    so they stay visible.

    Args:
        result: the attribution.
        level: "sentence" (one node per cited source sentence) or "chunk" (one per cited source;
            a link's width is the strongest of that source's citations).
        top_k: draw at most this many citations per answer sentence, strongest first.
        min_score: citations weaker than this strength are not drawn (non-positive ones never).

    Returns:
        A `SankeyData`: cited source units, then answer sentences, then the "no source supports"
        node when some sentence is unsupported.

    Raises:
        ConfigError: `level` or `top_k` is invalid.
    """
    if level not in LEVELS:
        msg = f"level must be one of {', '.join(repr(x) for x in LEVELS)}; got {level!r}"
        raise ConfigError(msg)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        msg = f"top_k must be an integer >= 1; got {top_k!r}"
        raise ConfigError(msg)
    floor = as_float(min_score) or 0.0
    kind = _kind(result)
    flows = [_flows(s, result, level, top_k, floor) for s in result.answer_sentences]
    units = sorted({unit for row in flows for unit in row})
    node_of = {unit: k for k, unit in enumerate(units)}
    labels, hover, names = _source_nodes(result, units)
    colours = [SOURCE_COLOUR] * len(units)
    n_units = len(units)
    answers = result.answer_sentences
    claims = [states_claim(s) for s in answers]
    flagged = any(c and not is_true(s.supported) for s, c in zip(answers, claims, strict=True))
    sink = n_units + len(answers) if flagged else None

    source: list[int] = []
    target: list[int] = []
    value: list[float] = []
    link_colours: list[str] = []
    link_hover: list[str] = []
    for i, (sentence, row) in enumerate(zip(answers, flows, strict=True)):
        supported = is_true(sentence.supported)
        colour = _answer_colour(i, supported=supported)
        text = clean(sentence.text)
        labels.append(_label(f"A{i + 1}: {text}"))
        if not claims[i]:
            verdict = "<br><i>not a claim: it talks to the reader, not checked</i>"
        elif supported:
            verdict = ""
        else:
            verdict = "<br><i>unsupported: no source supports it</i>"
        hover.append(
            f"<b>Answer sentence {i + 1}</b> (support {num(sentence.support)})"
            f"<br>{_wrap(text)}{verdict}"
        )
        colours.append(colour)
        if not claims[i]:
            continue
        if sink is not None and not supported:
            source.append(sink)
            target.append(n_units + i)
            value.append(UNSUPPORTED_WIDTH)
            link_colours.append(_rgba(UNSUPPORTED_COLOUR, 0.35))
            link_hover.append(
                f"answer sentence {i + 1}: no source supports it (support {num(sentence.support)})"
            )
            continue
        best = max(row.values(), default=1.0)
        for unit, strength in row.items():
            source.append(node_of[unit])
            target.append(n_units + i)
            value.append(strength)
            # the strongest link of a sentence is vivid, weaker ones lighter
            link_colours.append(_rgba(colour, 0.25 + 0.45 * (strength / best) ** 2))
            link_hover.append(
                f"answer sentence {i + 1} cites {names[node_of[unit]]}: {kind} {strength:.2f}"
            )
    if sink is not None:
        labels.append("no source supports")
        hover.append("<b>No source supports</b> the answer sentences linked from here")
        colours.append(UNSUPPORTED_COLOUR)
    return SankeyData(
        labels=tuple(labels),
        hover=tuple(hover),
        node_colours=tuple(colours),
        source=tuple(source),
        target=tuple(target),
        value=tuple(value),
        link_colours=tuple(link_colours),
        n_source_units=n_units,
        link_hover=tuple(link_hover),
    )


def sankey_figure(
    result: AttributionResult,
    *,
    level: Level = "sentence",
    top_k: int = 3,
    min_score: float = 0.0,
) -> Figure:
    """Return a plotly Sankey figure of which source units feed which answer sentences.

    Args:
        result: the attribution.
        level: "sentence" or "chunk" source nodes.
        top_k: draw at most this many citations per answer sentence.
        min_score: drop citations weaker than this strength.

    Returns:
        A `plotly.graph_objects.Figure` whose title says what link width means; labels wrap
        onto short lines, the full text shows on hover.

    Raises:
        MissingDependencyError: plotly is not installed (`pip install 'rag-attrib[viz]'`).
        ConfigError: `level` or `top_k` is invalid.

    Example:
        >>> sankey_figure(result, level="chunk", top_k=2).show()
    """
    go = import_optional("plotly.graph_objects", extra="viz", feature="The Sankey view")
    data = sankey_data(result, level=level, top_k=top_k, min_score=min_score)
    n_right = len(result.answer_sentences)
    n_left = data.n_source_units + (len(data.labels) > data.n_source_units + n_right)
    height = max(360, min(1600, 56 * max(n_left, n_right) + 60))
    trace = go.Sankey(
        arrangement="snap",
        valueformat=".2f",
        node={
            "label": list(data.labels),
            "customdata": list(data.hover),
            "hovertemplate": "%{customdata}<extra></extra>",
            "color": list(data.node_colours),
            "pad": 14,
            "thickness": 14,
            "line": {"width": 0},
        },
        link={
            "source": list(data.source),
            "target": list(data.target),
            "value": list(data.value),
            "color": list(data.link_colours),
            "customdata": list(data.link_hover),
            "hovertemplate": "%{customdata}<extra></extra>",
        },
        textfont={"size": 11, "color": "#1f2328", "shadow": "auto"},
    )
    figure = go.Figure(trace)
    figure.update_layout(
        height=height,
        title={
            "text": WIDTH_NOTE.format(kind=_kind(result)),
            "font": {"size": 12, "color": "#59636e"},
            "x": 0.01,
        },
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        font={"size": 11},
        paper_bgcolor="rgba(0,0,0,0)",
    )
    return figure


def sankey_html(
    result: AttributionResult,
    *,
    level: Level = "sentence",
    top_k: int = 3,
    min_score: float = 0.0,
    full_html: bool = True,
) -> str:
    """Return the Sankey figure as HTML with plotly.js inlined (works offline, ~4.5 MB).

    Args:
        result: the attribution.
        level: "sentence" or "chunk" source nodes.
        top_k: draw at most this many citations per answer sentence.
        min_score: drop citations weaker than this strength.
        full_html: a whole document (True) or a `<div>` fragment to embed.

    Raises:
        MissingDependencyError: plotly is not installed (`pip install 'rag-attrib[viz]'`).
    """
    figure = sankey_figure(result, level=level, top_k=top_k, min_score=min_score)
    html: str = figure.to_html(
        full_html=full_html,
        include_plotlyjs=True,
        config={"displaylogo": False, "responsive": True},
    )
    return html


def flow_fragment(result: AttributionResult) -> tuple[str, list[str]]:
    """The default flow as a fragment for the HTML view, plotly.js inlined, and the text of
    each of its scripts (the view allows them by hash in its Content-Security-Policy).

    Raises:
        MissingDependencyError: plotly is not installed (`pip install 'rag-attrib[viz]'`).
    """
    offline = import_optional("plotly.offline", extra="viz", feature="The Sankey view")
    plot: str = sankey_figure(result).to_html(
        full_html=False,
        include_plotlyjs=False,
        config={"displaylogo": False, "displayModeBar": False, "responsive": True},
    )
    # plotly JSON-escapes "<" in the figure data, so the only script here is its own
    found = re.search(r"<script>(.*?)</script>", plot, re.S)
    scripts = ["window.PlotlyConfig={MathJaxConfig:'local'};", offline.get_plotlyjs()]
    if found:
        scripts.append(found.group(1))
    head = "".join(f"<script>{js}</script>" for js in scripts[:2])
    return head + plot, scripts


Unit = tuple[int, int]  # (source position, sentence position); sentence -1 for a whole chunk


def _flows(
    sentence: Any, result: AttributionResult, level: Level, top_k: int, floor: float
) -> dict[Unit, float]:
    """The links of one answer sentence: cited unit -> strength, best first (none if
    unsupported: its closest matches do not support it)."""
    if not is_true(sentence.supported):
        return {}
    out: dict[Unit, float] = {}
    n_sources = len(result.sources)
    for c in tuple(sentence.citations)[:top_k]:
        src = as_index(c.source_index, n_sources)
        k = (
            as_index(c.sentence_index, len(result.sources[src].sentences))
            if src is not None
            else None
        )
        strength = citation_figure(c)
        if src is None or k is None or strength is None or strength <= 0 or strength < floor:
            continue
        unit = (src, k if level == "sentence" else -1)
        out[unit] = max(out.get(unit, 0.0), strength)
    return out


def _source_nodes(
    result: AttributionResult, units: list[Unit]
) -> tuple[list[str], list[str], list[str]]:
    """Labels, hover texts and plain names (escaped) of the cited source units."""
    labels: list[str] = []
    hover: list[str] = []
    names: list[str] = []
    for src, k in units:
        s = result.sources[src]
        name = source_label(s.id, src)
        if k < 0:
            labels.append(_label(name))
            hover.append(f"<b>{escape(name)}</b><br>{_wrap(clean(s.text), limit=600)}")
            names.append(escape(name))
            continue
        text = clean(s.sentences[k].text)
        labels.append(_label(f"{name}, s{k + 1}: {text}"))
        hover.append(f"<b>{escape(name)}</b>, sentence {k + 1}<br>{_wrap(text)}")
        names.append(f"{escape(name)}, sentence {k + 1}")
    return labels, hover, names


def _kind(result: AttributionResult) -> str:
    """What link width is: the citations' own "support" when they carry one, else "strength"."""
    kinds = {
        citation_kind(c)
        for s in result.answer_sentences
        if is_true(s.supported)  # only a supported sentence's citations are drawn
        for c in s.citations
    }
    return "support" if kinds == {"support"} else "strength"


def _answer_colour(i: int, *, supported: bool) -> str:
    return PALETTE[i % len(PALETTE)][0] if supported else UNSUPPORTED_COLOUR


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[k : k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:.2f})"


def _label(text: str) -> str:
    """A node label wrapped onto at most `_LABEL_LINES` short lines, escaped for plotly."""
    lines = textwrap.wrap(" ".join(text.split()), _LABEL_WIDTH, break_long_words=True)
    if len(lines) > _LABEL_LINES:
        lines = lines[:_LABEL_LINES]
        lines[-1] = lines[-1][: _LABEL_WIDTH - 1].rstrip() + "…"
    return "<br>".join(escape(line, quote=False) for line in lines)


def _wrap(text: str, *, limit: int = 2000) -> str:
    """Escape `text` for plotly's hover markup and wrap it into `<br>`-separated lines."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return "<br>".join(escape(line, quote=False) for line in textwrap.wrap(flat, _HOVER_WIDTH))
