"""Which text block each citation of a streamed Claude message backs; imports no framework.

llama-index-llms-anthropic (0.12.3) streams a reply as one chunk per Anthropic stream event,
each chunk's `raw` being `dict(event)` (its `stream_complete` passes the same chunks on as
completions); the last chunk's `raw` is the closing `message_delta` and holds no content, and
its flat `citations` list says not which text each backs. The `content_block_delta` events do:
a `citations_delta` and the `text_delta`s of one content block share its `index`.
`StreamedCitations` reads them off the chunks as they pass and gives the message's text blocks
back with their citations, the shape `from_raw_message` reads.

It also keeps the `url_citation`s of a streamed OpenAI Chat Completions reply: each chunk's
`raw` is its `ChatCompletionChunk`, and the annotations come on `choices[0].delta.annotations`
(an extra field of the SDK's `ChoiceDelta`), often on a last chunk with no text, with offsets
in the whole reply; the reply that ends the stream holds only its own chunk's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._given import field_of, fields_of

__all__ = ["StreamedCitations", "chunk_annotations", "is_block_delta"]


def is_block_delta(raw: object) -> bool:
    """Whether a chunk's `raw` is an Anthropic `content_block_delta` event (cheap: read for
    every streamed chunk of every LLM)."""
    return field_of(raw, "type") == "content_block_delta"


def chunk_annotations(raw: object) -> list[object]:
    """The annotations on a Chat Completions chunk's `choices[0].delta`, else []."""
    choices = field_of(raw, "choices")
    if not isinstance(choices, (list, tuple)) or not choices:
        return []
    found = field_of(field_of(choices[0], "delta"), "annotations")
    return list(found) if isinstance(found, (list, tuple)) else []


class StreamedCitations:
    """The citations and text of one streamed message, by content block index."""

    __slots__ = ("_annotations", "_notes", "_texts")

    def __init__(self) -> None:
        self._texts: dict[int, list[str]] = {}  # each content block's streamed text pieces
        self._notes: dict[int, list[Mapping[str, Any]]] = {}
        self._annotations: list[object] = []  # Chat Completions `url_citation`s

    def annotate(self, annotations: list[object]) -> None:
        """Keep a Chat Completions chunk's annotations (`chunk_annotations`); an exact repeat
        of one already kept (a provider that resends them) is kept once."""
        self._annotations.extend(a for a in annotations if a not in self._annotations)

    def annotations(self) -> list[object]:
        """The Chat Completions annotations of the whole reply, in the order they came."""
        return list(self._annotations)

    def feed(self, raw: object) -> None:
        """Read one chunk's `raw` (anything else than a block delta is ignored)."""
        index = field_of(raw, "index")
        if not is_block_delta(raw) or not isinstance(index, int) or isinstance(index, bool):
            return
        delta = field_of(raw, "delta")
        kind = field_of(delta, "type")
        if kind == "text_delta":
            text = field_of(delta, "text")
            self._texts.setdefault(index, []).append(text if isinstance(text, str) else "")
        elif kind == "citations_delta":
            note = fields_of(field_of(delta, "citation"))
            if note is not None:
                self._notes.setdefault(index, []).append(note)

    def content(self) -> list[dict[str, Any]] | None:
        """The message's text blocks, in order, with their citations, as Anthropic's content;
        None when no citation came. Each block's text is what its `text_delta`s said (what
        the integration's text block holds: a chat reply's blocks, a completion's text joined
        from them), so a citation's block is never guessed."""
        if not self._notes:
            return None
        return [
            {
                "type": "text",
                "text": "".join(self._texts[k]),
                "citations": list(self._notes.get(k, ())),
            }
            for k in sorted(self._texts)
        ]
