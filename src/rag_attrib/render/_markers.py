"""The citation markers an LLM wrote, coloured by their verdict (see `check_citations`).

The answer is shown as written; each reference inside a marker ("1" and "3" of "[1, 3]") is
green when its source backs the claim, amber when another source does, red when no source does
or it names none. The markers that are not correct are listed with why, so the page reads
without hovering. Offsets are type-checked like everything else in the views.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ._common import as_index, clean, inline_markdown, num, source_label

__all__ = ["markers_section"]

# verdict -> (CSS class, legend word)
_KINDS = {
    "correct": ("ra-mk-ok", "correct"),
    "wrong_source": ("ra-mk-warn", "wrong source"),
    "unsupported": ("ra-mk-bad", "unsupported"),
    "dangling": ("ra-mk-bad", "names no source"),
}


def markers_section(report: Any) -> str:
    """The "Citation markers" section for a `CitationReport` (markers in `report.answer`)."""
    answer = clean(getattr(report, "answer", ""))
    ids = [clean(x) for x in getattr(report, "source_ids", ())]
    checks = [m for m in getattr(report, "markers", ()) if _verdict(m) is not None]
    counts = {v: sum(_verdict(m) == v for m in checks) for v in _KINDS}
    missing = len(getattr(report, "missing", ()))
    # each count stays on one line with its word ("2 correct"), however narrow the page
    summary = ", ".join(_count(f"{counts[v]} {_KINDS[v][1]}") for v in _KINDS)
    if missing:
        s = "s" if missing != 1 else ""
        summary += "; " + _count(f"{missing} supported sentence{s} without a marker")
    notes = [
        f"<li>{_written(m)}{_on(m)} {escape(_explain(m, ids))}</li>"
        for m in checks
        if _verdict(m) != "correct"
    ]
    return "".join(
        (
            '<section class="ra-markers"><h2>Citation markers in the answer</h2>',
            '<p class="ra-mk-legend"><span class="ra-mk ra-mk-ok">1</span> its source backs the'
            ' claim <span class="ra-mk ra-mk-warn">1</span> another source does'
            ' <span class="ra-mk ra-mk-bad">1</span> no source does, or it names none'
            f' <span class="ra-mk-counts">{summary}</span></p>',
            f'<p class="ra-mk-answer">{_marked(answer, checks, ids)}</p>',
            f'<ul class="ra-mk-notes">{"".join(notes)}</ul>' if notes else "",
            "</section>",
        )
    )


def _written(marker: Any) -> str:
    """The marker as written, naming the reference when it names several ("3 in [1, 3]")."""
    text, label = clean(getattr(marker, "text", "")), clean(getattr(marker, "label", ""))
    if text in (f"[{label}]", f"[^{label}]", f"({label})"):
        return f"<b>{escape(text)}</b>"
    return f"<b>{escape(label)}</b> in <b>{escape(text)}</b>"


def _count(text: str) -> str:
    return f'<span class="ra-mk-count">{escape(text)}</span>'


def _on(marker: Any, most: int = 60) -> str:
    """The claim a marker covers, quoted, so that one of several equal markers ("[1]" three
    times) is known without hovering; nothing when it covers no text."""
    claim = " ".join(clean(getattr(getattr(marker, "claim", None), "text", "")).split())
    if not claim:
        return ""
    if len(claim) > most:
        claim = claim[: most - 1].rstrip() + "\u2026"
    return f" on \u201c{escape(claim)}\u201d:"


def _verdict(marker: Any) -> str | None:
    verdict = getattr(marker, "verdict", None)
    return verdict if isinstance(verdict, str) and verdict in _KINDS else None


def _name(index: Any, fallback: Any, ids: list[str]) -> str:
    i = as_index(index, len(ids))
    return source_label(ids[i], i) if i is not None else clean(fallback) or "?"


def _explain(marker: Any, ids: list[str]) -> str:
    """Why a marker got its verdict, in words."""
    verdict = _verdict(marker)
    cited = _name(getattr(marker, "source_index", None), getattr(marker, "source_id", ""), ids)
    if verdict == "correct":
        support = num(getattr(marker, "support", None))
        return f"cites {cited}, which backs the claim (support {support})"
    if verdict == "wrong_source":
        better = _name(
            getattr(marker, "suggested_source_index", None),
            getattr(marker, "suggested_source_id", ""),
            ids,
        )
        return f"cites {cited}, which does not back the claim; {better} does"
    if verdict == "unsupported":
        return f"cites {cited}, but no source backs the claim"
    label = clean(getattr(marker, "label", ""))
    return f"names {label!r}, which is none of the {len(ids)} sources"


def _marked(answer: str, checks: list[Any], ids: list[str]) -> str:
    """The answer as written with every checked reference label wrapped in its colour."""
    labels: dict[tuple[int, int], Any] = {}
    for m in checks:
        start = as_index(getattr(m, "label_start", None), len(answer) + 1)
        end = as_index(getattr(m, "label_end", None), len(answer) + 1)
        if start is not None and end is not None and start < end:
            labels.setdefault((start, end), m)
    parts: list[str] = []
    cursor = 0
    for (start, end), m in sorted(labels.items()):
        if start < cursor:  # overlapping labels from a hand-built report: keep the first
            continue
        css, word = _KINDS[_verdict(m) or "dangling"]
        tip = f"{word}: {_explain(m, ids)}"
        parts.append(inline_markdown(answer[cursor:start]))
        parts.append(
            f'<span class="ra-mk {css}" title="{escape(tip)}">{escape(answer[start:end])}</span>'
        )
        cursor = end
    parts.append(inline_markdown(answer[cursor:]))
    return "".join(parts)
