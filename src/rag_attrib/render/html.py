"""The coloured-sources view: one self-contained HTML page (inline CSS and JS, no fetches).

Every source sentence is shaded by its attribution score; each answer sentence lists its
citations, and hovering or clicking it highlights exactly the source sentences it cites.
All text goes through `html.escape`, so a source containing markup renders as text.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from ..results import AttributionResult, SentenceAttribution, SourceAttribution, SourceSentence

__all__ = ["render_html", "sentence_key"]

DEFAULT_TITLE = "Answer attribution"

# Score -> background colour stops (white, then a highlighter yellow to a warm orange); dark
# text stays readable on the strongest stop.
_STOPS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (255, 255, 255)),
    (0.2, (255, 246, 204)),
    (0.45, (255, 226, 140)),
    (0.7, (255, 193, 104)),
    (1.0, (250, 164, 96)),
)
# Below this fraction of the scale a sentence is left unshaded, so noise does not tint the page.
_MIN_SHADE = 0.02


def sentence_key(source_index: int, sentence_index: int) -> str:
    """Return the id the page uses for a source sentence, e.g. "s0-3" (also in `data-cites`)."""
    return f"s{source_index}-{sentence_index}"


def render_html(
    result: AttributionResult,
    *,
    title: str | None = None,
    sankey: bool = False,
) -> str:
    """Render `result` as one self-contained HTML page.

    The markup lives under one root element with a unique id and all CSS and JS is scoped to it,
    so the same string also works as a fragment (Jupyter's `_repr_html_`), even twice on a page.

    Args:
        result: the attribution to show.
        title: the heading (and page title); None gives "Answer attribution".
        sankey: also embed the Sankey flow under the coloured view (needs plotly, the `viz`
            extra; plotly.js is inlined, about 4.5 MB).

    Returns:
        An HTML document as a string.

    Raises:
        MissingDependencyError: `sankey=True` and plotly is not installed.
    """
    heading = title if title is not None else DEFAULT_TITLE
    root = f"ra-{uuid.uuid4().hex[:12]}"
    flow = _flow_section(result) if sankey else ""
    body = "".join(
        (
            f'<div id="{root}" class="ra-root">',
            f"<style>{_css(root)}</style>",
            _header(result, heading),
            _legend(result),
            '<div class="ra-grid">',
            _answer_column(result),
            _sources_column(result),
            "</div>",
            flow,
            f"<script>{_script(root)}</script>",
            "</div>",
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(heading)}</title></head>"
        f'<body style="margin:0;background:#f3f4f6">{body}</body></html>\n'
    )


# --- header, legend -------------------------------------------------------------------------


def _header(result: AttributionResult, heading: str) -> str:
    parts = [f'<header class="ra-head"><h1>{escape(heading)}</h1>']
    if result.question:
        question = escape(result.question)
        parts.append(f'<p class="ra-question"><span class="ra-q">Question</span>{question}</p>')
    parts.append(f'<div class="ra-stats">{_stats(result)}</div>')
    if result.error:
        parts.append(
            '<div class="ra-error" role="alert"><strong>Attribution error:</strong> '
            f"{escape(result.error)}</div>"
        )
    parts.append("</header>")
    return "".join(parts)


def _stats(result: AttributionResult) -> str:
    n = len(result.answer_sentences)
    supported = n - len(result.unsupported)
    cls = "ra-pill ra-good" if supported == n else "ra-pill ra-warn"
    pills = [
        f'<span class="{cls}"><b>{result.coverage:.0%}</b> supported '
        f"({supported}/{n} sentences)</span>",
        f'<span class="ra-pill"><b>{len(result.sources)}</b> '
        f"source{'s' if len(result.sources) != 1 else ''}</span>",
    ]
    # timings stay in a tooltip: they describe the run, not the evidence
    total = result.timings.get("total_ms")
    timing = (
        f' title="attributed in {total:.0f} ms"'
        if isinstance(total, (int, float)) and math.isfinite(total)
        else ""
    )
    if result.model:
        pills.append(f'<span class="ra-pill"{timing}>model <b>{escape(result.model)}</b></span>')
    return "".join(pills)


def _legend(result: AttributionResult) -> str:
    vmax = _scale_max(result)
    stops = ", ".join(f"rgb{rgb} {t:.0%}" for t, rgb in _STOPS)
    return (
        '<div class="ra-legend" aria-label="legend">'
        '<span class="ra-legend-item"><span class="ra-scale-label">0</span>'
        f'<span class="ra-scale" style="background:linear-gradient(90deg, {stops})"></span>'
        f'<span class="ra-scale-label">{vmax:.2f}</span>'
        '<span class="ra-legend-text">source sentence score</span></span>'
        '<span class="ra-legend-item"><span class="ra-swatch ra-swatch-hl"></span>'
        '<span class="ra-legend-text">cited by the selected answer sentence</span></span>'
        '<span class="ra-legend-item"><span class="ra-swatch ra-swatch-bad"></span>'
        '<span class="ra-legend-text">unsupported: no source backs it</span></span>'
        '<span class="ra-legend-hint">Hover an answer sentence to see its sources; '
        "click to pin, Esc to clear.</span>"
        "</div>"
    )


# --- answer -----------------------------------------------------------------------------------


def _answer_column(result: AttributionResult) -> str:
    parts = ['<section class="ra-col ra-answer-col"><h2>Answer</h2>']
    if not result.answer_sentences:
        parts.append('<p class="ra-empty">The answer is empty.</p>')
    threshold = _support_threshold(result.config)
    labels = {s.index: s.id for s in result.sources}
    parts.append('<ol class="ra-answers">')
    parts.extend(_answer_card(s, labels, threshold) for s in result.answer_sentences)
    parts.append("</ol></section>")
    return "".join(parts)


def _answer_card(
    sentence: SentenceAttribution, labels: Mapping[int, str], threshold: float | None
) -> str:
    cites = " ".join(sentence_key(c.source_index, c.sentence_index) for c in sentence.citations)
    classes = "ra-ans" if sentence.supported else "ra-ans ra-unsupported"
    parts = [
        f'<li class="{classes}" tabindex="0" data-index="{sentence.index}" '
        f'data-cites="{cites}" data-supported="{str(sentence.supported).lower()}">',
        f'<span class="ra-num">{sentence.index + 1}</span><div class="ra-ans-body">',
        f'<p class="ra-ans-text">{escape(sentence.text)}</p>',
    ]
    if sentence.citations:
        parts.append('<ul class="ra-cites">')
        for c in sentence.citations:
            key = sentence_key(c.source_index, c.sentence_index)
            label = labels.get(c.source_index, c.source_id)
            # the chip shows the strength: with a sharp softmax a second citation that holds
            # half the claim would read as a near-zero score
            tip = f"strength {_num(c.similarity)}, score {_num(c.score)}: {c.text}"
            parts.append(
                f'<li class="ra-cite" data-sid="{key}" title="{escape(tip)}">'
                f'<span class="ra-cite-src">{escape(label)}</span>'
                f'<span class="ra-cite-sn">sentence {c.sentence_index + 1}</span>'
                f'<span class="ra-cite-score">{_num(c.similarity)}</span></li>'
            )
        parts.append("</ul>")
    else:
        badge = "" if sentence.supported else '<span class="ra-badge">unsupported</span>'
        parts.append(f'<p class="ra-nocite">{badge}{_no_citation_note(sentence, threshold)}</p>')
    parts.append("</div></li>")
    return "".join(parts)


def _no_citation_note(sentence: SentenceAttribution, threshold: float | None) -> str:
    if sentence.supported:
        return "No citation passed the score threshold."
    if sentence.issues:
        return escape("Unsupported: " + "; ".join(sentence.issues) + ".")
    note = f"No source backs this sentence: best match strength {_num(sentence.support)}"
    if threshold is not None:
        note += f", below the support threshold {_num(threshold)}"
    return escape(note + ".")


# --- sources ----------------------------------------------------------------------------------


def _sources_column(result: AttributionResult) -> str:
    parts = ['<section class="ra-col ra-sources-col"><h2>Sources</h2>']
    if not result.sources:
        parts.append('<p class="ra-empty">No sources were given.</p>')
    vmax = _scale_max(result)
    cited_by = _cited_by(result)
    parts.extend(_source_card(s, vmax, cited_by) for s in result.sources)
    parts.append("</section>")
    return "".join(parts)


def _source_card(source: SourceAttribution, vmax: float, cited_by: Mapping[str, list[int]]) -> str:
    share = _clip(source.score, 0.0, 1.0)
    title = source.metadata.get("title") if isinstance(source.metadata, Mapping) else None
    subtitle = (
        f'<span class="ra-src-title">{escape(title)}</span>'
        if isinstance(title, str) and title and title != source.id
        else ""
    )
    return "".join(
        (
            f'<article class="ra-source" data-source="{source.index}">',
            '<div class="ra-src-head"><div class="ra-src-name">',
            f'<span class="ra-src-num">{source.index + 1}</span>',
            f'<span class="ra-src-id">{escape(source.id)}</span>{subtitle}</div>',
            f'<div class="ra-share" title="share of the answer\'s attribution: {share:.1%}">',
            f'<span class="ra-bar"><span class="ra-bar-fill" style="width:{share * 100:.1f}%">'
            "</span></span>",
            f'<span class="ra-share-num">{share:.0%}</span></div></div>',
            f'<div class="ra-src-text">{_source_text(source, vmax, cited_by)}</div>',
            "</article>",
        )
    )


def _source_text(source: SourceAttribution, vmax: float, cited_by: Mapping[str, list[int]]) -> str:
    """Rebuild the source text exactly: sentences as shaded spans, the text between as is."""
    parts: list[str] = []
    cursor = 0
    text = source.text
    for sentence in source.sentences:
        start = _locate(text, sentence, cursor)
        if start is None:  # offsets that do not match the text: show the sentence unplaced
            continue
        parts.append(escape(text[cursor:start]))
        parts.append(_sentence_span(source.index, sentence, vmax, cited_by))
        cursor = start + len(sentence.text)
    parts.append(escape(text[cursor:]))
    return "".join(parts)


def _locate(text: str, sentence: SourceSentence, cursor: int) -> int | None:
    """Return where `sentence` starts in `text` at or after `cursor` (its offsets, if valid)."""
    if cursor <= sentence.start and text[sentence.start : sentence.end] == sentence.text:
        return sentence.start
    # A hand-edited or foreign to_dict() may carry stale offsets; fall back to searching.
    found = text.find(sentence.text, cursor) if sentence.text else -1
    return found if found >= 0 else None


def _sentence_span(
    source_index: int, sentence: SourceSentence, vmax: float, cited_by: Mapping[str, list[int]]
) -> str:
    key = sentence_key(source_index, sentence.index)
    users = cited_by.get(key, [])
    tip = f"score {_num(sentence.score)}"
    if users:
        tip += " · cited by answer sentence " + ", ".join(str(i + 1) for i in users)
    fraction = _clip(sentence.score / vmax, 0.0, 1.0) if math.isfinite(sentence.score) else 0.0
    style = f' style="background-color:{_shade(fraction)}"' if fraction >= _MIN_SHADE else ""
    cited = " ra-cited" if users else ""
    return (
        f'<span class="ra-sent{cited}" data-sid="{key}" data-score="{_num(sentence.score, 4)}"'
        f' title="{escape(tip)}"{style}>{escape(sentence.text)}</span>'
    )


# --- optional Sankey --------------------------------------------------------------------------


def _flow_section(result: AttributionResult) -> str:
    from .sankey import sankey_html  # plotly is optional: import only when asked for

    return (
        '<section class="ra-flow"><h2>Flow: source sentences to answer sentences</h2>'
        f"{sankey_html(result, full_html=False)}</section>"
    )


# --- helpers ----------------------------------------------------------------------------------


def _cited_by(result: AttributionResult) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for s in result.answer_sentences:
        for c in s.citations:
            out.setdefault(sentence_key(c.source_index, c.sentence_index), []).append(s.index)
    return out


def _scale_max(result: AttributionResult) -> float:
    """The score at the top of the colour scale: the largest sentence score, or 1."""
    scores = [x.score for s in result.sources for x in s.sentences]
    scores = [x for x in scores if math.isfinite(x) and x > 0]
    return max(scores) if scores else 1.0


def _support_threshold(config: Mapping[str, Any]) -> float | None:
    value = config.get("support_threshold")
    return float(value) if isinstance(value, (int, float)) else None


def _shade(t: float) -> str:
    """Interpolate the colour stops at `t` in [0, 1]; return an `rgb(...)` CSS colour."""
    for (t0, c0), (t1, c1) in itertools.pairwise(_STOPS):
        if t <= t1:
            w = (t - t0) / (t1 - t0)
            r, g, b = (round(a + (b_ - a) * w) for a, b_ in zip(c0, c1, strict=True))
            return f"rgb({r},{g},{b})"
    return "rgb({},{},{})".format(*_STOPS[-1][1])


def _clip(x: float, low: float, high: float) -> float:
    if not math.isfinite(x):
        return low
    return min(max(x, low), high)


def _num(x: float | None, digits: int = 2) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}f}"


def _css(root: str) -> str:
    r = f"#{root}"
    rules: Sequence[str] = (
        f"{r}{{--fg:#1f2328;--muted:#59636e;--line:#d8dee4;--panel:#ffffff;--bg:#f3f4f6;"
        "--accent:#2563eb;--accent-soft:#dbeafe;--bad:#c2410c;--bad-soft:#fff1e7;--good:#15803d;"
        "font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,'Helvetica Neue',Arial,"
        "'Liberation Sans',sans-serif;font-size:14px;line-height:1.55;color:var(--fg);"
        "background:var(--bg);padding:20px 24px 28px;box-sizing:border-box;text-align:left;"
        "container-type:inline-size;border-radius:10px}",
        f"{r} *{{box-sizing:border-box}}",
        f"{r} h1{{font-size:20px;margin:0 0 6px;font-weight:650;letter-spacing:-.01em}}",
        f"{r} h2{{font-size:12px;margin:0 0 10px;text-transform:uppercase;letter-spacing:.08em;"
        "color:var(--muted);font-weight:650}",
        f"{r} p{{margin:0}}",
        f"{r} .ra-head{{margin-bottom:12px}}",
        f"{r} .ra-question{{font-size:15px;margin:2px 0 10px;max-width:75ch}}",
        f"{r} .ra-q{{display:inline-block;font-size:11px;font-weight:650;text-transform:uppercase;"
        "letter-spacing:.06em;color:var(--accent);background:var(--accent-soft);border-radius:4px;"
        "padding:1px 6px;margin-right:8px;vertical-align:1px}",
        f"{r} .ra-stats{{display:flex;flex-wrap:wrap;gap:6px}}",
        f"{r} .ra-pill{{font-size:12px;color:var(--muted);background:var(--panel);"
        "border:1px solid var(--line);border-radius:999px;padding:2px 10px}",
        f"{r} .ra-pill b{{color:var(--fg);font-weight:650}}",
        f"{r} .ra-good b{{color:var(--good)}}",
        f"{r} .ra-warn b{{color:var(--bad)}}",
        f"{r} .ra-error{{margin-top:10px;padding:8px 12px;border-radius:6px;color:#7f1d1d;"
        "background:#fee2e2;border:1px solid #fca5a5;white-space:pre-wrap}",
        f"{r} .ra-legend{{display:flex;flex-wrap:wrap;align-items:center;gap:8px 20px;"
        "font-size:12px;color:var(--muted);margin:0 0 16px;padding:8px 12px;"
        "background:var(--panel);border:1px solid var(--line);border-radius:8px}",
        f"{r} .ra-legend-item{{display:inline-flex;align-items:center;gap:6px}}",
        f"{r} .ra-scale{{display:inline-block;width:120px;height:10px;border-radius:3px;"
        "border:1px solid var(--line)}",
        f"{r} .ra-scale-label{{font-variant-numeric:tabular-nums}}",
        f"{r} .ra-swatch{{display:inline-block;width:22px;height:12px;border-radius:3px}}",
        f"{r} .ra-swatch-hl{{background:#fff;box-shadow:0 0 0 2px var(--accent)}}",
        f"{r} .ra-swatch-bad{{background:var(--bad-soft);border-left:4px solid var(--bad)}}",
        f"{r} .ra-legend-hint{{margin-left:auto;font-style:italic}}",
        f"{r} .ra-grid{{display:grid;grid-template-columns:minmax(0,1fr);gap:20px;"
        "align-items:start}",
        f"@container (min-width: 820px){{{r} .ra-grid{{grid-template-columns:"
        "minmax(0,5fr) minmax(0,7fr)}"
        f"{r} .ra-answer-col{{position:sticky;top:12px;max-height:calc(100vh - 24px);"
        "overflow:auto}}",
        f"{r} .ra-answers{{list-style:none;margin:0;padding:0;display:flex;flex-direction:column;"
        "gap:10px}",
        f"{r} .ra-ans{{background:var(--panel);border:1px solid var(--line);"
        "border-left:4px solid var(--accent);border-radius:8px;padding:10px 12px;cursor:pointer;"
        "transition:box-shadow .12s, border-color .12s;outline:none;display:grid;"
        "grid-template-columns:auto minmax(0,1fr);gap:10px;align-items:start}",
        f"{r} .ra-ans:hover,{r} .ra-ans:focus-visible,{r} .ra-ans.active{{"
        "box-shadow:0 2px 10px rgba(37,99,235,.18);border-color:var(--accent)}",
        f"{r} .ra-ans.pinned{{background:#f5f9ff;box-shadow:0 0 0 2px var(--accent)}}",
        f"{r} .ra-num{{display:inline-flex;align-items:center;justify-content:center;"
        "min-width:22px;height:22px;border-radius:11px;background:var(--accent);color:#fff;"
        "font-size:12px;font-weight:650;padding:0 6px;margin-top:1px}",
        f"{r} .ra-ans-text{{font-size:15px}}",
        f"{r} .ra-unsupported{{border-left-color:var(--bad);background:var(--bad-soft)}}",
        f"{r} .ra-unsupported .ra-num{{background:var(--bad)}}",
        f"{r} .ra-unsupported .ra-ans-text{{text-decoration:underline wavy var(--bad);"
        "text-decoration-thickness:1px;text-underline-offset:4px}",
        f"{r} .ra-unsupported:hover,{r} .ra-unsupported.active{{border-color:var(--bad);"
        "box-shadow:0 2px 10px rgba(194,65,12,.2)}",
        f"{r} .ra-badge{{font-size:11px;font-weight:650;text-transform:uppercase;"
        "letter-spacing:.05em;color:#fff;background:var(--bad);border-radius:4px;padding:1px 6px;"
        "margin-right:8px}",
        f"{r} .ra-cites{{list-style:none;margin:8px 0 0;padding:0;display:flex;flex-wrap:wrap;"
        "gap:6px}",
        f"{r} .ra-cite{{display:inline-flex;align-items:center;gap:6px;font-size:12px;"
        "border:1px solid var(--line);border-radius:6px;padding:1px 4px 1px 8px;background:#fff}",
        f"{r} .ra-cite:hover{{border-color:var(--accent)}}",
        f"{r} .ra-cite-src{{font-weight:650}}",
        f"{r} .ra-cite-sn{{color:var(--muted)}}",
        f"{r} .ra-cite-score{{font-variant-numeric:tabular-nums;background:var(--accent-soft);"
        "color:#1e3a8a;border-radius:4px;padding:0 5px}",
        f"{r} .ra-nocite{{margin-top:6px;font-size:12px;color:var(--bad)}}",
        f"{r} .ra-source{{background:var(--panel);border:1px solid var(--line);border-radius:8px;"
        "padding:10px 14px 12px;margin-bottom:12px;transition:border-color .12s, opacity .12s}",
        f"{r} .ra-src-head{{display:flex;align-items:center;justify-content:space-between;"
        "gap:12px;margin-bottom:6px}",
        f"{r} .ra-src-name{{display:flex;align-items:baseline;gap:8px;min-width:0}}",
        f"{r} .ra-src-num{{font-size:11px;font-weight:650;color:var(--muted);"
        "border:1px solid var(--line);border-radius:4px;padding:0 5px}",
        f"{r} .ra-src-id{{font-weight:650;font-family:ui-monospace,SFMono-Regular,Menlo,"
        "'DejaVu Sans Mono',monospace;font-size:13px;overflow-wrap:anywhere}",
        f"{r} .ra-src-title{{color:var(--muted);font-size:13px;overflow:hidden;"
        "text-overflow:ellipsis;white-space:nowrap}",
        f"{r} .ra-share{{display:flex;align-items:center;gap:8px;flex:none}}",
        f"{r} .ra-bar{{display:inline-block;width:110px;height:8px;border-radius:4px;"
        "background:#e5e7eb;overflow:hidden}",
        f"{r} .ra-bar-fill{{display:block;height:100%;background:linear-gradient(90deg,"
        "#fbbf24,#f97316);border-radius:4px}",
        f"{r} .ra-share-num{{font-size:12px;font-weight:650;min-width:34px;text-align:right;"
        "font-variant-numeric:tabular-nums}",
        f"{r} .ra-src-text{{white-space:pre-wrap;overflow-wrap:anywhere;font-size:14px;"
        "line-height:1.75}",
        f"{r} .ra-sent{{border-radius:3px;padding:1px 0;transition:opacity .12s, box-shadow .12s;"
        "-webkit-box-decoration-break:clone;box-decoration-break:clone}",
        f"{r}.ra-active .ra-sent{{opacity:.35}}",
        f"{r}.ra-active .ra-source{{opacity:.75}}",
        f"{r}.ra-active .ra-source.cited{{opacity:1;border-color:var(--accent)}}",
        f"{r} .ra-sent.highlight{{opacity:1;box-shadow:0 0 0 2px var(--accent)}}",
        f"{r} .ra-sent.highlight:not([style]){{background-color:var(--accent-soft)}}",
        f"{r} .ra-sent.flash{{animation:{root}-flash 1s ease-out}}",
        f"@keyframes {root}-flash{{0%{{box-shadow:0 0 0 6px rgba(37,99,235,.5)}}"
        "100%{box-shadow:0 0 0 2px var(--accent)}}",
        f"{r} .ra-empty{{color:var(--muted);font-style:italic}}",
        f"{r} .ra-flow{{margin-top:20px;background:var(--panel);border:1px solid var(--line);"
        "border-radius:8px;padding:12px 14px}",
    )
    return "".join(rules)


def _script(root: str) -> str:
    # Plain ES5-ish JS so old notebook front ends run it too; everything hangs off the root id.
    return (
        "(function(){"
        f'var root=document.getElementById("{root}");if(!root)return;'
        "var pinned=null;"
        "function each(sel,f){Array.prototype.forEach.call(root.querySelectorAll(sel),f);}"
        "function clear(){root.classList.remove('ra-active');"
        "each('.highlight',function(e){e.classList.remove('highlight');});"
        "each('.ra-source.cited',function(e){e.classList.remove('cited');});"
        "each('.ra-ans.active',function(e){e.classList.remove('active');});}"
        "function show(card,scroll){clear();if(!card)return;"
        "card.classList.add('active');root.classList.add('ra-active');"
        "var ids=(card.getAttribute('data-cites')||'').split(' ').filter(Boolean);var first=null;"
        "ids.forEach(function(id){"
        "var el=root.querySelector('.ra-sent[data-sid=\"'+id+'\"]');if(!el)return;"
        "el.classList.add('highlight');if(!first)first=el;"
        "var src=el.closest('.ra-source');if(src)src.classList.add('cited');});"
        "if(first&&scroll)first.scrollIntoView({block:scroll,behavior:'smooth'});}"
        "function pin(card){"
        "if(pinned)pinned.classList.remove('pinned');"
        "pinned=(pinned===card)?null:card;"
        "if(pinned){pinned.classList.add('pinned');show(pinned,'center');}else{show(null);}}"
        "each('.ra-ans',function(card){"
        "card.addEventListener('mouseenter',function(){show(card,'nearest');});"
        "card.addEventListener('mouseleave',function(){show(pinned,null);});"
        "card.addEventListener('focus',function(){show(card,'nearest');});"
        "card.addEventListener('blur',function(){show(pinned,null);});"
        "card.addEventListener('click',function(ev){"
        "var chip=ev.target.closest?ev.target.closest('.ra-cite'):null;"
        "if(chip){var el=root.querySelector('.ra-sent[data-sid=\"'+chip.getAttribute('data-sid')"
        "+'\"]');if(el){el.scrollIntoView({block:'center',behavior:'smooth'});"
        "el.classList.remove('flash');void el.offsetWidth;el.classList.add('flash');}"
        "if(pinned===card)return;}"
        "pin(card);});"
        "card.addEventListener('keydown',function(ev){"
        "if(ev.key==='Enter'||ev.key===' '){ev.preventDefault();pin(card);}});});"
        "root.addEventListener('keydown',function(ev){"
        "if(ev.key==='Escape'&&pinned){pinned.classList.remove('pinned');pinned=null;"
        "show(null);}});"
        "})();"
    )
