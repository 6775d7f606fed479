"""The Sankey flow: source sentences (or chunks) -> answer sentences, with plotly (extra `viz`).

Link width is the raw strength (cosine, or the hybrid strength) stored in
`result.similarity`; only the `top_k` strongest links of each answer sentence are drawn.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import ConfigError, import_optional
from ..results import AttributionResult, matrix_from_citations

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

__all__ = ["SankeyData", "sankey_data", "sankey_figure", "sankey_html"]

Level = Literal["sentence", "chunk"]
LEVELS: tuple[str, ...] = ("sentence", "chunk")

# Colour-blind-friendly qualitative palette (Okabe-Ito, then Tableau) for answer sentences.
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
    "#4E79A7", "#F28E2B", "#59A14F", "#B07AA1", "#76B7B2", "#EDC948", "#FF9DA7",
)  # fmt: skip
UNSUPPORTED_COLOUR = "#9CA3AF"
SOURCE_COLOUR = "#64748B"
_LABEL_CHARS = 38
_HOVER_WIDTH = 60


@dataclass(frozen=True, slots=True)
class SankeyData:
    """The flow as plain lists, before plotly: nodes (source units, then answer sentences), links.

    `source`/`target` index `labels`; `value` is the raw strength of each link.
    """

    labels: tuple[str, ...]
    hover: tuple[str, ...]
    node_colours: tuple[str, ...]
    source: tuple[int, ...]
    target: tuple[int, ...]
    value: tuple[float, ...]
    link_colours: tuple[str, ...]
    n_source_units: int


def sankey_data(
    result: AttributionResult,
    *,
    level: Level = "sentence",
    top_k: int = 3,
    min_score: float = 0.0,
) -> SankeyData:
    """Compute the nodes and links of the Sankey flow (no plotly needed).

    Args:
        result: the attribution.
        level: "sentence" (one node per source sentence) or "chunk" (one per source; a chunk's
            strength is its best sentence's).
        top_k: at most this many links per answer sentence, strongest first.
        min_score: links weaker than this raw strength are dropped (non-positive ones always).

    Returns:
        A `SankeyData` with one node per source unit and per answer sentence.

    Raises:
        ConfigError: `level` or `top_k` is invalid.
    """
    if level not in LEVELS:
        msg = f"level must be one of {', '.join(repr(x) for x in LEVELS)}; got {level!r}"
        raise ConfigError(msg)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        msg = f"top_k must be an integer >= 1; got {top_k!r}"
        raise ConfigError(msg)
    strength = _unit_strength(result, level)
    labels, hover, colours = _source_nodes(result, level)
    n_units = len(labels)

    source: list[int] = []
    target: list[int] = []
    value: list[float] = []
    link_colours: list[str] = []
    for i, sentence in enumerate(result.answer_sentences):
        colour = _answer_colour(i, supported=sentence.supported)
        labels.append(f"A{i + 1}: {_short(sentence.text)}")
        verdict = "" if sentence.supported else "<br><i>unsupported: no source backs it</i>"
        hover.append(f"<b>Answer sentence {i + 1}</b><br>{_wrap(sentence.text)}{verdict}")
        colours.append(colour)
        row = strength[i] if strength.size else np.zeros(0)
        picks = _top(row, top_k, min_score)
        for j in picks:
            source.append(j)
            target.append(n_units + i)
            value.append(float(row[j]))
            # the strongest link of a sentence is vivid, weaker ones fade
            link_colours.append(_rgba(colour, 0.15 + 0.5 * (row[j] / row[picks[0]]) ** 2))
    return SankeyData(
        labels=tuple(labels),
        hover=tuple(hover),
        node_colours=tuple(colours),
        source=tuple(source),
        target=tuple(target),
        value=tuple(value),
        link_colours=tuple(link_colours),
        n_source_units=n_units,
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
        top_k: at most this many links per answer sentence.
        min_score: drop links weaker than this raw strength.

    Returns:
        A `plotly.graph_objects.Figure`; labels are shortened, full text shows on hover.

    Raises:
        MissingDependencyError: plotly is not installed (`pip install 'rag-attrib[viz]'`).
        ConfigError: `level` or `top_k` is invalid.

    Example:
        >>> sankey_figure(result, level="chunk", top_k=2).show()
    """
    go = import_optional("plotly.graph_objects", extra="viz", feature="The Sankey view")
    data = sankey_data(result, level=level, top_k=top_k, min_score=min_score)
    n_nodes = len(data.labels)
    height = max(360, min(1400, 26 * max(data.n_source_units, n_nodes - data.n_source_units)))
    trace = go.Sankey(
        arrangement="snap",
        valueformat=".2f",
        node={
            "label": list(data.labels),
            "customdata": list(data.hover),
            "hovertemplate": "%{customdata}<extra></extra>",
            "color": list(data.node_colours),
            "pad": 12,
            "thickness": 14,
            "line": {"width": 0},
        },
        link={
            "source": list(data.source),
            "target": list(data.target),
            "value": list(data.value),
            "color": list(data.link_colours),
            "hovertemplate": "strength %{value:.2f}<extra></extra>",
        },
    )
    figure = go.Figure(trace)
    figure.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
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
        top_k: at most this many links per answer sentence.
        min_score: drop links weaker than this raw strength.
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


def _unit_strength(result: AttributionResult, level: Level) -> np.ndarray[Any, Any]:
    """Raw strength, answer sentences x source units (sentences, or chunks by their best)."""
    m = len(result.answer_sentences)
    n = sum(len(s.sentences) for s in result.sources)
    raw = result.similarity
    if raw.shape != (m, n):  # a result built without its matrix: fall back to citations
        raw = matrix_from_citations(result.answer_sentences, result.sources, (m, n))
    sim = np.nan_to_num(np.asarray(raw, dtype=np.float64), nan=0.0)
    if level == "sentence" or m == 0:
        return sim
    out = np.zeros((m, len(result.sources)))
    offset = 0
    for c, s in enumerate(result.sources):
        k = len(s.sentences)
        if k:
            out[:, c] = sim[:, offset : offset + k].max(axis=1)
        offset += k
    return out


def _source_nodes(
    result: AttributionResult, level: Level
) -> tuple[list[str], list[str], list[str]]:
    labels: list[str] = []
    hover: list[str] = []
    colours: list[str] = []
    for s in result.sources:
        if level == "chunk":
            labels.append(_short(f"{s.id}", 30))
            hover.append(
                f"<b>{escape(s.id)}</b> (share {s.score:.0%})<br>{_wrap(s.text, limit=600)}"
            )
            colours.append(SOURCE_COLOUR)
            continue
        for x in s.sentences:
            labels.append(f"{_short(s.id, 14)} {x.index + 1}: {_short(x.text, 28)}")
            hover.append(f"<b>{escape(s.id)}</b>, sentence {x.index + 1}<br>{_wrap(x.text)}")
            colours.append(SOURCE_COLOUR)
    return labels, hover, colours


def _top(row: np.ndarray[Any, Any], k: int, min_score: float) -> list[int]:
    """Indices of the k largest entries of `row` that are positive and >= min_score."""
    order = sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]
    return [j for j in order if math.isfinite(row[j]) and row[j] > 0 and row[j] >= min_score]


def _answer_colour(i: int, *, supported: bool) -> str:
    return PALETTE[i % len(PALETTE)] if supported else UNSUPPORTED_COLOUR


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[k : k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:.2f})"


def _short(text: str, limit: int = _LABEL_CHARS) -> str:
    """One line of at most `limit` characters, escaped for plotly's label markup."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return escape(flat, quote=False)


def _wrap(text: str, *, limit: int = 2000) -> str:
    """Escape `text` for plotly's hover markup and wrap it into `<br>`-separated lines."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return "<br>".join(escape(line, quote=False) for line in textwrap.wrap(flat, _HOVER_WIDTH))
