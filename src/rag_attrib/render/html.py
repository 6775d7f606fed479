"""The attribution view: one self-contained HTML page (inline CSS and JS, no fetches).

Each answer sentence has a number and a colour; the source sentences it cites carry the same
colour and number mark, so the page reads without hovering. Hovering or clicking an answer
sentence still dims everything it does not cite.

Safety: a result may come from a crafted file. Every text goes through `html.escape`, every
number, index and flag is type-checked before it reaches markup (see `_common`), a
Content-Security-Policy forbids network requests and any script but the view's own, and lone
surrogates and control characters are replaced one for one so the page always encodes.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from ..results import AttributionResult
from ._common import (
    PALETTE,
    as_float,
    as_index,
    citation_figure,
    citation_kind,
    clean,
    inline_markdown,
    is_true,
    num,
    source_label,
    states_claim,
)
from ._markers import markers_section
from ._style import css, script

logger = logging.getLogger(__name__)

__all__ = ["render_fragment", "render_html", "sentence_key"]

DEFAULT_TITLE = "Answer attribution"


def sentence_key(source_index: int, sentence_index: int) -> str:
    """Return the id the page uses for a source sentence, e.g. "s0-3" (also in `data-cites`)."""
    return f"s{int(source_index)}-{int(sentence_index)}"


def render_html(
    result: AttributionResult,
    *,
    title: str | None = None,
    sankey: bool = False,
    citations: Any = None,
) -> str:
    """Render `result` as one self-contained HTML page.

    The markup lives under one root element with a unique id and all CSS and JS is scoped to it,
    so two views joined on one page do not clash (`render_fragment` gives the bare root for a
    notebook).

    Args:
        result: the attribution to show.
        title: the heading (and page title); None gives "Answer attribution".
        sankey: also embed the Sankey flow under the view (needs plotly, the `viz` extra;
            plotly.js is inlined, about 4.5 MB).
        citations: a `CitationReport` from `check_citations`: the answer as written is shown
            above the view with each citation marker green (its source backs the claim), amber
            (another source does) or red (none does, or it names no source). None shows
            `result.citation_check` when the result carries one (an integration's results do),
            else the check of the markers the answer carries, if any, read as
            `check_citations` reads them by default.

    Returns:
        An HTML document as a string (it encodes to UTF-8 whatever the texts held).

    Raises:
        MissingDependencyError: `sankey=True` and plotly is not installed.
    """
    heading = clean(title) if title is not None else DEFAULT_TITLE
    body, scripts = _root(result, heading, sankey=sankey, citations=citations)
    # No fetch, image, font or frame may leave the page, and only the view's own scripts
    # (by hash) run, so markup that slipped through could still not execute.
    hashes = " ".join(_hash(js) for js in dict.fromkeys(scripts))
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
        f"script-src {hashes}; base-uri 'none'; form-action 'none'"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(heading)}</title></head>"
        f'<body style="margin:0;background:#f3f4f6">{body}</body></html>\n'
    )


def render_fragment(result: AttributionResult, *, title: str | None = None) -> str:
    """The view as one `<div>` for a notebook (`_repr_html_`): no document around it, and so no
    Content-Security-Policy, which would also bind the notebook's own scripts in a frame."""
    heading = clean(title) if title is not None else DEFAULT_TITLE
    return _root(result, heading, sankey=False, citations=None)[0]


def _own_markers(result: AttributionResult) -> Any:
    """The check of the citation markers a direct `attribute()` answer carries ("[1]", "[^2]"),
    so the view colours them as it does an integration's; None when it has none. The view
    never fails for it: a fault is logged and the view is drawn without the markers."""
    if not isinstance(result, AttributionResult) or not result.answer_sentences or result.error:
        return None  # a failed or read-back partial result has nothing to check against
    try:
        from ..integrations._citations import check

        return check(result)  # None when the answer cites nothing (one regex scan)
    except Exception as exc:
        logger.warning("rag_attrib: checking the answer's citation markers failed", exc_info=exc)
        return None


def _root(
    result: AttributionResult, heading: str, *, sankey: bool, citations: Any
) -> tuple[str, list[str]]:
    """The view's root element and the text of every script in it."""
    if citations is None:  # an integration's result carries the check of its own markers
        citations = result.citation_check or _own_markers(result)
    root = f"ra-{uuid.uuid4().hex[:12]}"
    view = _read(result)
    scripts = [script()]
    flow = ""
    if sankey:
        flow, extra = _flow_section(result)
        scripts += extra
    body = "".join(
        (
            f'<div id="{root}" class="ra-root">',
            f"<style>{css(root, len(PALETTE))}</style>",
            _header(view, heading),
            _legend(view),
            markers_section(citations) if citations is not None else "",
            '<div class="ra-grid">',
            _answer_column(view),
            _sources_column(view),
            "</div>",
            flow,
            f"<script>{scripts[0]}</script>",
            "</div>",
        )
    )
    return body, scripts


# --- the result, read once with every value checked ---------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cite:
    key: str | None  # sentence_key of the cited source sentence; None if it points nowhere
    label: str
    sentence: int | None  # 0-based position in its source
    text: str
    figure: float | None
    kind: str  # what `figure` is: "support" or "strength"
    score: float | None


@dataclass(frozen=True, slots=True)
class _Answer:
    pos: int
    text: str
    supported: bool
    support: float | None
    issues: tuple[str, ...]
    cites: tuple[_Cite, ...]
    claim: bool = True  # False: it only talks to the reader, and is not checked


@dataclass(frozen=True, slots=True)
class _SourceSentence:
    key: str
    text: str
    start: int | None
    score: float | None


@dataclass(frozen=True, slots=True)
class _Source:
    pos: int
    label: str
    title: str
    text: str
    share: float
    sentences: tuple[_SourceSentence, ...]


@dataclass(frozen=True, slots=True)
class _View:
    question: str
    model: str
    error: str
    total_ms: float | None
    threshold: float | None
    verifier: bool  # support is a verifier's probability, not a match strength
    answers: tuple[_Answer, ...]
    sources: tuple[_Source, ...]


def _read(result: AttributionResult) -> _View:
    """Positions, not the stored `index` fields, number everything: they cannot be forged."""
    sources = tuple(_read_source(s, p) for p, s in enumerate(result.sources))
    answers = tuple(_read_answer(a, p, sources) for p, a in enumerate(result.answer_sentences))
    timings = result.timings if isinstance(result.timings, Mapping) else {}
    config = result.config if isinstance(result.config, Mapping) else {}
    return _View(
        question=clean(result.question),
        model=clean(result.model),
        error=clean(result.error),
        total_ms=as_float(timings.get("total_ms")),
        threshold=as_float(config.get("support_threshold")),
        verifier=config.get("verdict") == "verifier",
        answers=answers,
        sources=sources,
    )


def _read_source(source: Any, pos: int) -> _Source:
    metadata = getattr(source, "metadata", None)
    title = metadata.get("title") if isinstance(metadata, Mapping) else None
    label = source_label(getattr(source, "id", ""), pos)
    share = as_float(getattr(source, "score", None)) or 0.0
    sentences = tuple(
        _SourceSentence(
            key=sentence_key(pos, k),
            text=clean(getattr(x, "text", "")),
            start=as_index(getattr(x, "start", None)),
            score=as_float(getattr(x, "score", None)),
        )
        for k, x in enumerate(getattr(source, "sentences", ()))
    )
    return _Source(
        pos=pos,
        label=label,
        title=clean(title) if isinstance(title, str) and title != label else "",
        text=clean(getattr(source, "text", "")),
        share=min(max(share, 0.0), 1.0),
        sentences=sentences,
    )


def _read_answer(sentence: Any, pos: int, sources: tuple[_Source, ...]) -> _Answer:
    cites = []
    claim = states_claim(sentence)
    # a sentence that only talks to the reader is not checked: no closest matches for it
    for c in getattr(sentence, "citations", ()) if claim else ():
        src = as_index(getattr(c, "source_index", None), len(sources))
        k = as_index(getattr(c, "sentence_index", None))
        if src is not None and (k is None or k >= len(sources[src].sentences)):
            k = None
        linked = src is not None and k is not None
        cites.append(
            _Cite(
                key=sentence_key(src, k) if src is not None and k is not None else None,
                label=(
                    sources[src].label
                    if src is not None
                    else clean(getattr(c, "source_id", "")) or "?"
                ),
                sentence=k if linked else None,
                text=clean(getattr(c, "text", "")),
                figure=citation_figure(c),
                kind=citation_kind(c),
                score=as_float(getattr(c, "score", None)),
            )
        )
    issues = getattr(sentence, "issues", ())
    return _Answer(
        pos=pos,
        text=clean(getattr(sentence, "text", "")),
        supported=is_true(getattr(sentence, "supported", False)),
        support=as_float(getattr(sentence, "support", None)),
        issues=tuple(clean(x) for x in issues) if isinstance(issues, (tuple, list)) else (),
        cites=tuple(cites),
        claim=claim,
    )


# --- header, legend -------------------------------------------------------------------------


def _header(view: _View, heading: str) -> str:
    parts = [f'<header class="ra-head"><h1>{escape(heading)}</h1>']
    if view.question:
        question = escape(view.question)
        parts.append(f'<p class="ra-question"><span class="ra-q">Question</span>{question}</p>')
    parts.append(f'<div class="ra-stats">{_stats(view)}</div>')
    if view.error:
        parts.append(
            '<div class="ra-error" role="alert"><strong>Attribution error:</strong> '
            f"{escape(view.error)}</div>"
        )
    parts.append("</header>")
    return "".join(parts)


def _stats(view: _View) -> str:
    claims = [a for a in view.answers if a.claim]
    n, talk = len(claims), len(view.answers) - len(claims)
    supported = sum(a.supported for a in claims)
    share = supported / n if n else 1.0
    cls = "ra-pill ra-good" if supported == n else "ra-pill ra-warn"
    aside = f", {talk} not {'a claim' if talk == 1 else 'claims'}" if talk else ""
    pills = [
        f'<span class="{cls}"><b>{share:.0%}</b> supported ({supported}/{n} sentences{aside})'
        "</span>",
        f'<span class="ra-pill"><b>{len(view.sources)}</b> '
        f"source{'s' if len(view.sources) != 1 else ''}</span>",
    ]
    # timings stay in a tooltip: they describe the run, not the evidence
    timing = f' title="attributed in {view.total_ms:.0f} ms"' if view.total_ms is not None else ""
    if view.model:
        pills.append(f'<span class="ra-pill"{timing}>model <b>{escape(view.model)}</b></span>')
    return "".join(pills)


def _legend(view: _View) -> str:
    at = f" (supported from {num(view.threshold)})" if view.threshold is not None else ""
    kinds = {c.kind for a in view.answers for c in a.cites}
    if view.verifier and "strength" in kinds:  # say so when the two figures differ in kind
        scales = (
            f"A sentence's support is the verifier's probability that its sources back it{at}; "
            "a citation's figure is its match strength"
        )
    else:
        own = "support" if "support" in kinds else "strength"
        scales = f"Each sentence shows its support{at}, each citation its {own}, on one scale"
    # the marks are numbered as the page's first sentence that cites ("Great question!" cites
    # nothing, so sentence 1 may not)
    first = next((a.pos for a in view.answers if a.supported and a.cites), 0)
    mark, n = _colour(first), first + 1
    return (
        '<div class="ra-legend" aria-label="legend">'
        f'<span class="ra-legend-item"><span class="ra-mark ra-main {mark}" data-n="{n}"></span>'
        f'<span class="ra-legend-text">answer sentence {n} cites this (its best source)</span>'
        "</span>"
        f'<span class="ra-legend-item"><span class="ra-mark ra-more {mark}" data-n="{n}"></span>'
        f'<span class="ra-legend-text">a further source of sentence {n}</span></span>'
        f"{_closest_legend(view)}"
        f'<span class="ra-legend-item ra-legend-wide">{escape(scales)}. '
        "Hover or click an answer sentence to dim everything else; Esc clears.</span>"
        "</div>"
    )


def _closest_legend(view: _View) -> str:
    """The dashed mark, numbered as the page's first unsupported sentence that shows closest
    matches (a fixed example number could name a sentence the page does not have); none when
    no sentence shows them."""
    n = next((a.pos + 1 for a in view.answers if not a.supported and a.claim and a.cites), None)
    if n is None:
        return ""
    return (
        f'<span class="ra-legend-item"><span class="ra-mark ra-closest" data-n="{n}"></span>'
        f'<span class="ra-legend-text">closest match of unsupported sentence {n}: '
        "it does <b>not</b> support it</span></span>"
    )


# --- answer -----------------------------------------------------------------------------------


def _answer_column(view: _View) -> str:
    parts = ['<section class="ra-col ra-answer-col"><h2>Answer</h2>']
    if not view.answers:
        parts.append('<p class="ra-empty">The answer is empty.</p>')
    parts.append('<ol class="ra-answers">')
    parts.extend(_answer_card(a, view.threshold) for a in view.answers)
    parts.append("</ol></section>")
    return "".join(parts)


def _colour(pos: int) -> str:
    return f"ra-c{pos % len(PALETTE)}"


def _answer_card(answer: _Answer, threshold: float | None) -> str:
    cites = " ".join(c.key for c in answer.cites if c.key is not None)
    state = "ra-supported" if answer.supported else "ra-unsupported"
    if not answer.claim:
        state = "ra-talk"
    n = answer.pos + 1
    parts = [
        f'<li class="ra-ans {state} {_colour(answer.pos)}" tabindex="0" data-index="{answer.pos}" '
        f'data-cites="{cites}" data-supported="{"true" if answer.supported else "false"}">',
        f'<span class="ra-num">{n}</span><div class="ra-ans-body">',
        f'<p class="ra-ans-text">{inline_markdown(answer.text)}</p>',
        _verdict(answer, threshold),
    ]
    if answer.cites:
        heading = "Cites" if answer.supported else "Closest match, does not support it"
        parts.append(f'<div class="ra-cites-head">{heading}</div><ul class="ra-cites">')
        for rank, c in enumerate(answer.cites):
            parts.append(_chip(answer, rank, c))
        parts.append("</ul>")
    elif answer.supported:
        parts.append('<p class="ra-nocite">No citation passed the score threshold.</p>')
    parts.append("</div></li>")
    return "".join(parts)


def _verdict(answer: _Answer, threshold: float | None) -> str:
    """One line: the verdict, the one figure it used, and the reasons when there are any."""
    if not answer.claim:
        return (
            '<p class="ra-verdict"><span class="ra-tag ra-tag-talk">not a claim</span>'
            '<span class="ra-fig">it talks to the reader; not checked</span></p>'
        )
    if answer.supported:
        return (
            '<p class="ra-verdict"><span class="ra-tag ra-tag-good">supported</span>'
            f'<span class="ra-fig">support {num(answer.support)}</span></p>'
        )
    figure = f"support {num(answer.support)}"
    if threshold is not None and answer.support is not None and answer.support < threshold:
        figure += f", below {num(threshold)}"
    if answer.issues:
        reason = "; ".join(answer.issues)
    elif answer.support is None and not answer.cites:
        reason = "no source to compare with"
    else:
        reason = "no source backs this sentence"
    return (
        '<p class="ra-verdict"><span class="ra-tag ra-tag-bad">unsupported</span>'
        f'<span class="ra-fig">{escape(figure)}</span>'
        f'<span class="ra-reason">{escape(reason)}</span></p>'
    )


def _mark_kind(answer: _Answer, rank: int) -> str:
    if not answer.supported:
        return "ra-closest"
    return "ra-main" if rank == 0 else "ra-more"


def _chip(answer: _Answer, rank: int, c: _Cite) -> str:
    where = f"sentence {c.sentence + 1}" if c.sentence is not None else "not found"
    verb = "cites" if answer.supported else "is closest to, without support from,"
    tip = f"answer sentence {answer.pos + 1} {verb} {c.label}, {where}"
    tip += f" ({c.kind} {num(c.figure)}, share {num(c.score)}): {c.text}"
    sid = f' data-sid="{c.key}"' if c.key is not None else ""
    kind = _mark_kind(answer, rank)
    return (
        f'<li class="ra-cite {kind}"{sid} title="{escape(tip)}">'
        f'<span class="ra-mark {kind} {_colour(answer.pos)}" data-n="{answer.pos + 1}"></span>'
        f'<span class="ra-cite-src">{escape(c.label)}</span>'
        f'<span class="ra-cite-sn">{where}</span>'
        f'<span class="ra-cite-score">{num(c.figure)}</span></li>'
    )


# --- sources ----------------------------------------------------------------------------------

_Marks = Mapping[str, list[tuple[int, str]]]


def _sources_column(view: _View) -> str:
    parts = ['<section class="ra-col ra-sources-col"><h2>Sources</h2>']
    if not view.sources:
        parts.append('<p class="ra-empty">No sources were given.</p>')
    marks = _marks(view)
    parts.extend(_source_card(s, marks) for s in view.sources)
    parts.append("</section>")
    return "".join(parts)


def _marks(view: _View) -> dict[str, list[tuple[int, str]]]:
    """For each cited source sentence, who cites it: (answer position, mark kind)."""
    out: dict[str, list[tuple[int, str]]] = {}
    for a in view.answers:
        for rank, c in enumerate(a.cites):
            if c.key is not None:
                out.setdefault(c.key, []).append((a.pos, _mark_kind(a, rank)))
    return out


def _source_card(source: _Source, marks: _Marks) -> str:
    subtitle = f'<span class="ra-src-title">{escape(source.title)}</span>' if source.title else ""
    return "".join(
        (
            f'<article class="ra-source" data-source="{source.pos}">',
            '<div class="ra-src-head"><div class="ra-src-name">',
            f'<span class="ra-src-id">{escape(source.label)}</span>{subtitle}</div>',
            f'<div class="ra-share" title="share of the answer\'s attribution: '
            f'{source.share:.1%}">',
            f'share<span class="ra-bar"><span class="ra-bar-fill" style="width:'
            f'{source.share * 100:.1f}%"></span></span>',
            f'<span class="ra-share-num">{source.share:.0%}</span></div></div>',
            f'<div class="ra-src-text">{_source_text(source, marks)}</div>',
            "</article>",
        )
    )


def _source_text(source: _Source, marks: _Marks) -> str:
    """Rebuild the source text exactly: sentences as spans, the text between as is."""
    parts: list[str] = []
    cursor = 0
    text = source.text
    for sentence in source.sentences:
        start = _locate(text, sentence, cursor)
        if start is None:  # offsets that do not match the text: the text shows unmarked
            continue
        parts.append(escape(text[cursor:start]))
        parts.append(_sentence_span(sentence, marks.get(sentence.key, [])))
        cursor = start + len(sentence.text)
    parts.append(escape(text[cursor:]))
    return "".join(parts)


def _locate(text: str, sentence: _SourceSentence, cursor: int) -> int | None:
    """Return where `sentence` starts in `text` at or after `cursor` (its offset, if valid)."""
    start = sentence.start
    if start is not None and cursor <= start and text.startswith(sentence.text, start):
        return start
    # A hand-edited or foreign to_dict() may carry stale offsets; fall back to searching.
    found = text.find(sentence.text, cursor) if sentence.text else -1
    return found if found >= 0 else None


def _sentence_span(sentence: _SourceSentence, users: list[tuple[int, str]]) -> str:
    tip = f"score {num(sentence.score)}"
    classes = "ra-sent"
    marks = ""
    if users:
        supporting = [(p, k) for p, k in users if k != "ra-closest"]
        if supporting:
            # the first citer that names it as its best source, else the first citer, tints it
            pos, kind = min(supporting, key=lambda u: (u[1] != "ra-main", u[0]))
            classes += f" ra-cited {kind} {_colour(pos)}"
        else:
            classes += " ra-cited ra-closest"
        tip += " · " + "; ".join(_user_note(p, k) for p, k in users)
        marks = "".join(
            f'<span class="ra-mark {k} {_colour(p)}" data-n="{p + 1}"></span>' for p, k in users
        )
    return (
        f'<span class="{classes}" data-sid="{sentence.key}" title="{escape(tip)}">'
        f"{_glue(sentence.text, marks)}</span>"
    )


def _glue(text: str, marks: str) -> str:
    """The sentence with its marks after the last word, kept on one line with it, so a mark
    never starts the next line beside the next sentence."""
    if not marks:
        return escape(text)
    cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t")) + 1
    if len(text) - cut > 30:  # a long URL-like tail may wrap; the marks then follow it
        return escape(text) + marks
    return f'{escape(text[:cut])}<span class="ra-tail">{escape(text[cut:])}{marks}</span>'


def _user_note(pos: int, kind: str) -> str:
    if kind == "ra-main":
        return f"best source of answer sentence {pos + 1}"
    if kind == "ra-more":
        return f"further source of answer sentence {pos + 1}"
    return f"closest match of answer sentence {pos + 1}, which it does not support"


# --- optional Sankey --------------------------------------------------------------------------


def _flow_section(result: AttributionResult) -> tuple[str, list[str]]:
    from .sankey import flow_fragment  # plotly is optional: import only when asked for

    flow, scripts = flow_fragment(result)
    html = (
        '<section class="ra-flow"><h2>Flow: cited source sentences to answer sentences</h2>'
        f"{flow}</section>"
    )
    return html, scripts


def _hash(js: str) -> str:
    """The CSP source that allows exactly this inline script."""
    digest = hashlib.sha256(js.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"
