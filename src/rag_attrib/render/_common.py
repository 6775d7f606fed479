"""What both views share: type-checked reads of result fields, clean text, colours, labels.

A result rebuilt from a file may hold anything where a number or a flag belongs, so the views
read every value through these checks and never write an unchecked value into markup: an index
is an int or it is ignored, a figure is a finite float or it shows as "n/a", a flag is True
only when it is the bool True.
"""

from __future__ import annotations

import math
import re
from html import escape
from typing import Any

import numpy as np

from ..convert import source_name

__all__ = [
    "PALETTE",
    "as_float",
    "as_index",
    "citation_figure",
    "citation_kind",
    "clean",
    "inline_markdown",
    "is_true",
    "num",
    "source_label",
    "states_claim",
]

# One colour per answer sentence (cycled): (solid for marks and links, tint for highlights).
# Red and grey are kept out: they mean "unsupported" and "closest, does not support".
PALETTE: tuple[tuple[str, str], ...] = (
    ("#1d4ed8", "#bfdbfe"),
    ("#047857", "#a7f3d0"),
    ("#7e22ce", "#e9d5ff"),
    ("#a16207", "#fde68a"),
    ("#be185d", "#fbcfe8"),
    ("#0e7490", "#a5f3fc"),
    ("#4d7c0f", "#d9f99d"),
    ("#4338ca", "#c7d2fe"),
)

# Lone surrogates cannot be encoded; NUL and other control characters are parse errors in
# HTML. Each becomes U+FFFD, one code point for one, so offsets into the text stay valid.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def clean(value: Any) -> str:
    """Return `value` as text that encodes to UTF-8 (non-str values become their `str()`)."""
    if not isinstance(value, str):
        if value is None:
            return ""
        try:
            value = str(value)
        except Exception:  # an object whose __str__ fails is shown as nothing
            return ""
    return _UNSAFE.sub("\ufffd", value)


def as_index(value: Any, size: int | None = None) -> int | None:
    """Return `value` if it is an int (not a bool) in [0, size), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return None
    i = int(value)
    if i < 0 or (size is not None and i >= size):
        return None
    return i


def as_float(value: Any) -> float | None:
    """Return `value` as a float if it is a finite real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def is_true(value: Any) -> bool:
    """True only for the bool True (a string "false" is not a verdict)."""
    return isinstance(value, (bool, np.bool_)) and bool(value)


def num(value: Any, digits: int = 2) -> str:
    """Format a figure, or "n/a" when it is not a finite number."""
    x = as_float(value)
    return "n/a" if x is None else f"{x:.{digits}f}"


def citation_figure(citation: Any) -> float | None:
    """The one figure shown for a citation, on the scale of the sentence's `support` where
    the result has one: the citation's own `support` (a verifier's score for that source
    sentence) when it carries one, else its strength (`similarity`). `score` is a softmax share
    across source sentences, on another scale, so the views show it only in a tooltip."""
    own = as_float(getattr(citation, "support", None))
    return own if own is not None else as_float(getattr(citation, "similarity", None))


def citation_kind(citation: Any) -> str:
    """What `citation_figure` shows: "support" or "strength"."""
    return "support" if as_float(getattr(citation, "support", None)) is not None else "strength"


def states_claim(sentence: Any) -> bool:
    """Whether an answer sentence is a claim (`SentenceAttribution.claim`); a record written
    before the field existed, or an object without it, is one."""
    return getattr(sentence, "claim", True) is not False


def source_label(source_id: Any, position: int) -> str:
    """How the views name a source: the id the user gave, or "source N" (1-based) when the id
    is only the position the engine filled in ("0", "1", ...)."""
    return source_name(clean(source_id), position)


# LLM answers are Markdown: "**Main cause:** ..." reads as bold, not as asterisks. Only inline
# emphasis and code; every piece is escaped and the tags are fixed, so nothing else is markup.
_INLINE = re.compile(
    r"\*\*(?=\S)(?P<b1>.+?)(?<=\S)\*\*|__(?=\S)(?P<b2>.+?)(?<=\S)__|`(?P<code>[^`\n]+)`"
    r"|(?<![\w*])\*(?=[^\s*])(?P<i>[^*\n]+?)(?<=[^\s*])\*(?![\w*])"
)


def inline_markdown(text: str) -> str:
    """`text` escaped for HTML, its Markdown emphasis and code made `<strong>`, `<em>`, `<code>`."""
    parts, pos = [], 0
    for m in _INLINE.finditer(text):
        parts.append(escape(text[pos : m.start()]))
        if m["code"] is not None:
            parts.append(f"<code>{escape(m['code'])}</code>")
        elif m["i"] is not None:
            parts.append(f"<em>{escape(m['i'])}</em>")
        else:
            parts.append(f"<strong>{escape(m['b1'] or m['b2'])}</strong>")
        pos = m.end()
    parts.append(escape(text[pos:]))
    return "".join(parts)
