"""The evidence text a verifier reads for one candidate: a source sentence with its neighbours.

Shared by training (`training/verifier/data.py`) and the engine, so the model is trained on
exactly the shape of text it scores.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["EVIDENCE_CHARS", "evidence_window"]

# ~90 word pieces: with a claim of ~30 the pair fits the verifier's 128-token input.
EVIDENCE_CHARS = 400


def evidence_window(sentences: Sequence[str], k: int, max_chars: int = EVIDENCE_CHARS) -> str:
    """Sentence `k` with the previous and then the next sentence while they fit `max_chars`.

    The sentence itself is kept whole up to `max_chars` (a very long one is cut at a word).
    """
    best = sentences[k].strip()
    if len(best) > max_chars:
        cut = best[:max_chars]
        return cut[: cut.rfind(" ")] if " " in cut else cut
    parts = [best]
    used = len(best)
    for j in (k - 1, k + 1):
        if 0 <= j < len(sentences):
            text = sentences[j].strip()
            if text and used + 1 + len(text) <= max_chars:
                if j < k:
                    parts.insert(0, text)
                else:
                    parts.append(text)
                used += 1 + len(text)
    return " ".join(parts)
