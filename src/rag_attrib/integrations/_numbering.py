"""How an answer's numbers name its sources, read from the labels the LLM was shown ("Source 1:",
"Source ID: 0", "[4]" opening a line), in the prompt or in the tool outputs; imports no
framework. `_citations.check` reads markers with what this finds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..markers import Marker, Numbering
from ..results import Source
from ._text import PROBE, collapsed

__all__ = ["Labels", "label_choices", "label_order", "labelled", "numbering_for"]

# Labels that name a source in a prompt or in a source's own text: "Source 1:", "Source ID: 0",
# "Document 2", "Doc #3", "[4]" opening a line (LlamaIndex's CitationQueryEngine, LangChain's
# QA-with-citations how-to, most prompt templates).
_LABELLED = re.compile(
    r"\b(?:source|document|doc)(?:\s+id)?\s*[:#]?\s*(\d{1,3})\b|^[ \t]*\[(\d{1,3})\]",
    re.IGNORECASE | re.MULTILINE,
)


# The same labels read in text whose spaces are collapsed (a "[4]" no longer opens a line).
_LABEL = re.compile(
    r"\b(?:source|document|doc)(?:\s+id)?\s*[:#]?\s*(\d{1,3})\b|\[(\d{1,3})\]", re.IGNORECASE
)


def numbering_for(sources: Sequence[Source], prompt: str | None) -> Numbering:
    """How the answer's numbers name `sources`, read from the labels the LLM was shown.

    The prompt (or the sources' own texts: CitationQueryEngine writes "Source 1:" into each
    node) numbers n sources 0..n-1 -> "0-based", 1..n -> "1-based"; anything else -> "auto".
    """
    n = len(sources)
    if n == 0:
        return "auto"
    shown = "\n".join([prompt or "", *(s.text[:40] for s in sources)])
    numbers = {int(a or b) for a, b in _LABELLED.findall(shown)}
    if set(range(n)) <= numbers and max(numbers) == n - 1:
        return "0-based"
    if set(range(1, n + 1)) <= numbers and 0 not in numbers:
        return "1-based"
    return "auto"


def label_order(texts: Sequence[str], shown: str) -> list[int] | None:
    """The positions of `texts` in the order `shown` labels them, else None.

    A tool that returns "Source 1:\n<text>\n\nSource 2:\n<text>" (as CitationQueryEngine
    labels its chunks) defines what the answer's [n] name, whatever order its nodes came in.
    Each text is found in `shown` by its opening (spaces collapsed); its label is the last
    one between the text shown before it and its opening (metadata lines may sit between).
    None unless every text is shown under its own label and the labels count 1..n or 0..n-1:
    then `numbering_for` reads that numbering from `shown`. A text not shown, a passage with
    no label, labels repeated (two tool calls each counting from 1: see `label_choices`, which
    `shown` split by tool call should be read with first) all give None.
    """
    labels = _labels_in(texts, shown)
    if not texts or labels is None or len(labels) < len(texts):
        return None
    if _base(labels) is None:
        return None
    return sorted(labels, key=labels.__getitem__)


@dataclass(frozen=True, slots=True)
class Labels:
    """What the answer's numbers can name when several texts the LLM read each label their
    passages afresh (one search tool called twice, each output "Source 1:", "Source 2:").

    `names` maps a label ("1") to the positions of the sources shown under it, the latest
    text's first; `numbering` is how they count ("1-based" or "0-based"); `texts` how many
    texts label passages.
    """

    names: Mapping[str, tuple[int, ...]]
    numbering: Numbering
    texts: int

    def ambiguous(self, markers: Sequence[Marker]) -> list[str]:
        """The labels among `markers` that name more than one source, as written."""
        labels = (m.label for m in markers if m.label.isdigit())
        return [x for x in dict.fromkeys(labels) if len(self.names.get(str(int(x)), ())) > 1]


def label_choices(texts: Sequence[str], parts: Sequence[str]) -> tuple[list[int], Labels] | None:
    """Where no one numbering holds: the order to put `texts` in and what each label names,
    when each of `parts` (what each tool call showed the LLM, in call order) labels the texts
    it shows as `label_order` reads one text.

    Each part's labels must count from 1 (or each from 0), every text must be shown under a
    label in some part, and some label must name different texts in two parts (else one
    numbering holds: `label_order` over the parts joined). The order puts the latest part's
    passages first, by label, then those only earlier parts show; a label names the passage
    each part shows under it, the latest part's first. Else None.
    """
    if not texts or len(parts) < 2:
        return None
    found: list[dict[int, int]] = []
    for part in parts:
        labels = _labels_in(texts, part)
        if labels is None:
            return None
        if labels:
            found.append(labels)
    bases = {_base(labels) for labels in found}
    shown = {k for labels in found for k in labels}
    if len(found) < 2 or len(bases) != 1 or None in bases or len(shown) < len(texts):
        return None
    order: list[int] = []
    names: dict[str, list[int]] = {}
    for labels in reversed(found):
        order.extend(k for k in sorted(labels, key=labels.__getitem__) if k not in order)
    where = {k: i for i, k in enumerate(order)}
    for labels in reversed(found):
        for k, label in labels.items():
            names.setdefault(str(label), []).append(where[k])
    named = {label: tuple(dict.fromkeys(at)) for label, at in names.items()}
    if all(len(at) == 1 for at in named.values()):
        return None
    numbering: Numbering = "0-based" if bases == {0} else "1-based"
    return order, Labels(named, numbering, len(found))


def labelled(
    sources: Sequence[Source], shown: Sequence[str]
) -> tuple[list[Source], str | None, Labels | None]:
    """`sources` as the texts the answering LLM read them in number them: `shown` holds what
    each tool call showed it, in call order (nothing when it read the sources themselves).

    Returns the sources put in label order, the text to read their numbering from (`shown`
    joined) when one numbering holds (`label_order`), and what each label names when two
    outputs each count afresh (`label_choices`, read first); else the sources unchanged,
    None and None.
    """
    texts = [s.text for s in sources]
    choices = label_choices(texts, shown)
    if choices is not None:
        order, labels = choices
        return [sources[k] for k in order], None, labels
    joined = "\n".join(shown)
    order_found = label_order(texts, joined) if shown else None
    if order_found is None:
        return list(sources), None, None
    return [sources[k] for k in order_found], joined, None


def _labels_in(texts: Sequence[str], shown: str) -> dict[int, int] | None:
    """The label each of `texts` that `shown` shows is shown under (its position -> the
    number); None when one of them has no label of its own."""
    flat = collapsed(shown)
    places: list[tuple[int, int, int]] = []  # (where its opening is, its length, position)
    for k, text in enumerate(texts):
        opening = collapsed(text).strip()[:PROBE]
        at = flat.find(opening) if opening else -1
        if at >= 0:
            places.append((at, len(opening), k))
    labels: dict[int, int] = {}
    after = 0
    for at, length, k in sorted(places):
        found = _LABEL.findall(flat, after, at) if after <= at else []
        if not found:
            return None
        labels[k] = int(found[-1][0] or found[-1][1])
        after = at + length
    return labels


def _base(labels: Mapping[int, int]) -> int | None:
    """1 when `labels` count 1..n, 0 when 0..n-1, else None."""
    numbers = sorted(labels.values())
    if numbers == list(range(1, len(numbers) + 1)):
        return 1
    return 0 if numbers == list(range(len(numbers))) else None
