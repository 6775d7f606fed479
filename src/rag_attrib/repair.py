"""Repair the citations of an answer from a `CitationReport`: only markers change.

Wrong markers are replaced by the source that backs their claim, dangling ones dropped (with
the spaces right before them), and optionally missing markers added and unsupported claims
flagged. Every other character of the answer stays as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ._types import JSONDict
from .citations import CitationReport, MarkerCheck, check_citations
from .markers import Numbering

if TYPE_CHECKING:
    from .engine import Attributor, SourceLike
    from .results import AttributionResult

__all__ = ["Change", "CitationRepair", "repair_citations", "repair_report"]

ChangeKind = Literal["replaced", "dropped", "added", "flagged"]


@dataclass(frozen=True, slots=True)
class Change:
    """One edit: `old_text` at `old_start:old_end` of the answer became `new_text` at
    `new_start:new_end` of the repaired text (an insertion has `old_start == old_end`)."""

    kind: ChangeKind
    old_start: int
    old_end: int
    old_text: str
    new_start: int
    new_end: int
    new_text: str


@dataclass(frozen=True, slots=True)
class CitationRepair:
    """The repaired answer (`text`), each edit made (`changes`), and the report behind it."""

    text: str
    changes: tuple[Change, ...]
    report: CitationReport

    def to_dict(self) -> JSONDict:
        """JSON-safe: the text, the changes and the report's `to_dict()`."""
        return {
            "text": self.text,
            "changes": [
                {
                    "kind": c.kind,
                    "old_start": c.old_start,
                    "old_end": c.old_end,
                    "old_text": c.old_text,
                    "new_start": c.new_start,
                    "new_end": c.new_end,
                    "new_text": c.new_text,
                }
                for c in self.changes
            ],
            "report": self.report.to_dict(),
        }


def repair_citations(
    answer: str,
    sources: Sequence[SourceLike],
    *,
    question: str | None = None,
    attributor: Attributor | None = None,
    result: AttributionResult | None = None,
    numbering: Numbering = "auto",
    add_missing: bool = False,
    flag_unsupported: bool = False,
    flag_text: str = "[unsupported]",
) -> CitationRepair:
    """Check the citations of `answer` (`check_citations`) and repair them.

    Args:
        answer, sources, question, attributor, result, numbering: as for `check_citations`.
        add_missing: add a marker for the best source to supported sentences that have none.
        flag_unsupported: put `flag_text` after each claim no source supports.
        flag_text: the flag.

    Returns:
        A `CitationRepair`: `.text`, `.changes` (offsets in the old and the new text) and
        `.report`. Sources are named as the answer names them (1-based positions unless the
        numbering says otherwise).

    Example:
        >>> fixed = repair_citations("Paris is France's capital [1].",
        ...                          ["Berlin is Germany's capital.", "Paris is the capital."])
        >>> fixed.text
        "Paris is France's capital [2]."
    """
    report = check_citations(
        answer,
        sources,
        question=question,
        attributor=attributor,
        result=result,
        numbering=numbering,
    )
    return repair_report(
        report, add_missing=add_missing, flag_unsupported=flag_unsupported, flag_text=flag_text
    )


def repair_report(
    report: CitationReport,
    *,
    add_missing: bool = False,
    flag_unsupported: bool = False,
    flag_text: str = "[unsupported]",
) -> CitationRepair:
    """Repair from a report already at hand (see `repair_citations`)."""
    answer = report.answer
    edits: list[tuple[int, int, str, ChangeKind]] = []
    groups: dict[tuple[int, int], list[MarkerCheck]] = {}
    for m in report.markers:
        groups.setdefault((m.start, m.end), []).append(m)
    # per answer sentence, the labels its markers keep: a repair must not cite one twice
    kept: dict[int | None, set[str]] = {}
    for m in report.markers:
        if m.verdict in ("correct", "unsupported") or (
            m.verdict == "wrong_source" and m.suggested_source_index is None
        ):
            kept.setdefault(m.sentence_index, set()).add(m.label)
    for group in groups.values():
        edits += _group_edits(answer, group, report, kept, add_missing)

    if add_missing or flag_unsupported:
        spans = [(m.start, m.end) for m in report.markers]
        spans += [(m.close.start, m.close.end) for m in report.markers if m.close]
        after_punct = _after_punctuation(answer, report.markers)
        if add_missing:
            footnote = any(m.style == "footnote" for m in report.markers)
            for x in report.missing:
                if x.suggested_source_index is None:
                    continue
                label = _label(report, x.suggested_source_index)
                text = f"[^{label}]" if footnote else f"[{label}]"
                at = _insertion_point(answer, x.start, x.end, spans, after_punct)
                edits.append((at, at, text if after_punct else " " + text, "added"))
        if flag_unsupported:
            for s in report.unsupported:
                at = _insertion_point(answer, s.start, s.end, spans, after_punct=False)
                edits.append((at, at, " " + flag_text, "flagged"))

    edits.sort(key=lambda e: (e[0], e[1]))
    changes, parts, pos, shift = [], [], 0, 0
    for a, b, new, kind in edits:
        if a < pos:  # overlapping edits cannot happen by construction; never corrupt the text
            continue
        parts += [answer[pos:a], new]
        changes.append(Change(kind, a, b, answer[a:b], a + shift, a + shift + len(new), new))
        shift += len(new) - (b - a)
        pos = b
    parts.append(answer[pos:])
    return CitationRepair("".join(parts), tuple(changes), report)


def _group_edits(
    answer: str,
    group: list[MarkerCheck],
    report: CitationReport,
    kept: dict[int | None, set[str]],
    add_missing: bool,
) -> list[tuple[int, int, str, ChangeKind]]:
    """The edits for one written marker (all its references)."""
    from .markers import Marker, removal_start

    labels: list[str] = []
    changed = False
    for m in group:
        label = m.label
        others = kept.setdefault(m.sentence_index, set())
        suggestion = (
            _label(report, m.suggested_source_index)
            if m.suggested_source_index is not None
            else None
        )
        if m.verdict == "wrong_source" and suggestion is not None:
            label = suggestion
        elif m.verdict == "dangling":
            # dropped; an inline "Source 7" cannot go without breaking its sentence, and with
            # add_missing a claim left with no marker gets the source that backs it
            if suggestion is None or not (m.style == "source" or (add_missing and not others)):
                changed = True
                continue
            label = suggestion
        if label != m.label and label in others:  # "[1][1]" after a repair: once is enough
            changed = True
            continue
        changed |= label != m.label
        if label not in labels:
            labels.append(label)
        else:
            changed = True
        others.add(label)
    if not changed:
        return []
    first = group[0]
    if not labels:
        marker = Marker(first.text, first.start, first.end, "", 0, 0, first.style, None)  # type: ignore[arg-type]
        out: list[tuple[int, int, str, ChangeKind]] = [
            (removal_start(answer, marker), first.end, "", "dropped")
        ]
        if first.close is not None:
            out.append((first.close.start, first.close.end, "", "dropped"))
        return out
    if len(group) == 1:
        kind: ChangeKind = "replaced"
        return [(first.label_start, first.label_end, labels[0], kind)]
    # several references in one marker: rewrite the list between the first and last label
    a, b = group[0].label_start, group[-1].label_end
    separator = answer[group[0].label_end : group[1].label_start]
    return [(a, b, separator.join(labels), "replaced")]


def _label(report: CitationReport, k: int) -> str:
    """How the answer's numbering names source k."""
    if report.numbering == "ids":
        return report.source_ids[k]
    return str(k + (0 if report.numbering == "0-based" else 1))


def _after_punctuation(answer: str, markers: Sequence[MarkerCheck]) -> bool:
    """Does this answer put markers after a sentence's full stop ("Paris.[1]")?"""
    after = sum(1 for m in markers if answer[: m.start].rstrip()[-1:] in (".", "!", "?"))
    return 2 * after > len(markers) > 0


def _insertion_point(
    answer: str, start: int, end: int, spans: Sequence[tuple[int, int]], after_punct: bool
) -> int:
    """Where a marker for the sentence `answer[start:end]` goes: after its last word (or
    after its full stop, in answers written that way), before markers already there."""
    k = end
    while k > start:
        ch = answer[k - 1]
        inside = any(a < k <= b for a, b in spans)
        if inside or ch.isspace() or (ch in ".!?;:" and not after_punct):
            k -= 1
            continue
        break
    return k
