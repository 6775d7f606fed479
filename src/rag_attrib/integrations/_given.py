"""The citations an output gives beside its answer text; imports no framework.

A structured output's list of source ids (LangChain's `CitedAnswer(answer, citations)`), or
provider citations on a message's text blocks: a document index (Anthropic `char_location`,
v1 `extras.document_index`) or a URL (web-search citations); OpenAI Chat Completions
`message.annotations` beside a plain-string answer; LlamaIndex `CitationBlock`s among a chat
message's blocks. `_citations.check` judges them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from ..markers import Numbering

__all__ = [
    "CitedSpan",
    "GivenCitations",
    "Kind",
    "chat_completion_annotations",
    "field_of",
    "fields_of",
    "from_annotations",
    "from_blocks",
    "from_raw_message",
    "from_reply",
    "from_structured",
    "structured_text",
]

Kind = Literal["structured", "provider"]

_ANSWER_FIELDS = ("answer", "response", "text", "output")
_CITATION_FIELDS = ("citations", "sources", "source_ids", "cited_sources", "references")
# a cited item's id field; not "id": a list of LangChain Documents is no list of citations
_ID_FIELDS = ("source_id", "document_index", "source_index", "doc_id", "source")


@dataclass(frozen=True, slots=True)
class CitedSpan:
    """One citation given beside the answer: the source `label` as given, and the claim's
    offsets in the answer (`start is None`: it backs the answer as a whole).

    `url`: the label is a URL (a web-search citation), naming the source whose metadata holds
    it; `quote` the source text it cites, if given (it picks among chunks of one page).
    """

    label: str
    start: int | None = None
    end: int | None = None
    url: bool = False
    quote: str | None = None


@dataclass(frozen=True, slots=True)
class GivenCitations:
    """Citations given beside the answer text: a structured output's list, or provider
    citations on text blocks (`kind`). `numbering` is how their labels name sources."""

    spans: tuple[CitedSpan, ...]
    kind: Kind = "structured"
    numbering: Numbering = "auto"


def fields_of(value: object) -> Mapping[str, Any] | None:
    """A mapping's items, or a pydantic model's fields (read without importing pydantic)."""
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump) and hasattr(type(value), "model_fields"):
        try:
            dumped = dump()
        except Exception:
            return None
        return dumped if isinstance(dumped, Mapping) else None
    return None


def _label(item: object) -> str | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, (int, str)):
        return str(item).strip() or None
    fields = fields_of(item)  # QuotedAnswer's Citation(source_id, quote)
    if fields is not None:
        for key in _ID_FIELDS:
            if key in fields:
                return _label(fields[key])
    return None


def structured_text(value: object) -> str | None:
    """The answer string of a structured output (a dict or pydantic model with an `answer`,
    `response`, `text` or `output` field), cited or not, else None."""
    fields = fields_of(value)
    if fields is None:
        return None
    return next((fields[k] for k in _ANSWER_FIELDS if isinstance(fields.get(k), str)), None)


def from_structured(value: object) -> tuple[str, GivenCitations] | None:
    """The answer text and cited source labels of a "cited answer" object, else None.

    Reads a dict or pydantic model with an answer string (`answer`, `response`, `text`,
    `output`) and a list of source ids or indices (`citations`, `sources`, `source_ids`,
    `cited_sources`, `references`), whose items are ints, strings, or objects with a
    `source_id` (LangChain's `CitedAnswer` and `QuotedAnswer`). A label that names no source is
    kept: it becomes a "dangling" verdict.
    """
    fields = fields_of(value)
    if fields is None:
        return None
    answer = structured_text(fields)
    cited = next((fields[k] for k in _CITATION_FIELDS if isinstance(fields.get(k), list)), None)
    if answer is None or cited is None:
        return None
    labels = [_label(item) for item in cited]
    if any(x is None for x in labels):
        return None  # not a list of source ids (e.g. the retrieved documents themselves)
    spans = tuple(CitedSpan(x) for x in dict.fromkeys(x for x in labels if x is not None))
    return answer, GivenCitations(spans, "structured")


def from_blocks(content: object) -> GivenCitations | None:
    """Provider citations on the text blocks of a message's content list, else None.

    Anthropic's native blocks carry `citations`: `char_location`, `page_location`,
    `content_block_location` name a document by `document_index` (its 0-based position in the
    request); `web_search_result_location` by `url`, and `search_result_location` (a tool's
    search results) by `source`. OpenAI Responses blocks carry `annotations` of type
    `url_citation`; LangChain v1 standard blocks `annotations` of type "citation" with a `url`
    or `extras.document_index` (`extras.source` for search results). A citation's claim is
    `start_index:end_index` of its block's text when both are given and fit, else the whole
    block, at the block's place in the text blocks joined (as `message.text` joins them). A
    citation that names neither a document index nor a URL is skipped.
    """
    if not isinstance(content, list):
        return None
    spans: list[CitedSpan | None] = []
    at = 0
    for block in content:
        if isinstance(block, str):
            at += len(block)
            continue
        fields = _text_block(block)
        if fields is None:
            continue
        text = fields["text"]
        spans += (_cited(note, at, len(text)) for note in _notes(fields))
        at += len(text)
    found = tuple(x for x in spans if x is not None)
    return GivenCitations(found, "provider", "0-based") if found else None


def _text_block(block: object) -> Mapping[str, Any] | None:
    """A text block's fields (a dict, or a provider SDK's pydantic block), else None."""
    fields = fields_of(block) if not isinstance(block, str) else None
    if fields is None or fields.get("type") != "text" or not isinstance(fields.get("text"), str):
        return None
    return fields


def _notes(block: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A text block's citations: Anthropic's `citations`, and the `annotations` that cite."""
    notes = [x for x in _items(block.get("citations")) if isinstance(x, Mapping)]
    return notes + _citing(block.get("annotations"))


def _citing(annotations: object) -> list[Mapping[str, Any]]:
    """The annotations that cite, flat: Chat Completions nests a `url_citation`'s fields
    under its own `url_citation` key ({"type": "url_citation", "url_citation": {"url", ...}}),
    the Responses API and LangChain v1 do not. Pydantic annotations (the OpenAI SDK's) are
    read by their fields."""
    out: list[Mapping[str, Any]] = []
    for item in _items(annotations):
        note = fields_of(item)
        if note is None or note.get("type") not in ("citation", "url_citation"):
            continue
        nested = note.get("url_citation")
        out.append({**nested, "type": "url_citation"} if isinstance(nested, Mapping) else note)
    return out


def _items(value: object) -> Sequence[object]:
    return value if isinstance(value, (list, tuple)) else ()


def _cited(note: Mapping[str, Any], at: int, length: int) -> CitedSpan | None:
    """One citation as a `CitedSpan` in the joined text, or None when it names no source."""
    extras = note.get("extras")
    extras = extras if isinstance(extras, Mapping) else {}
    a, b = _span_in_block(note, length)
    index = note.get("document_index", extras.get("document_index"))
    if isinstance(index, int) and not isinstance(index, bool):
        return CitedSpan(str(index), at + a, at + b)
    url = note.get("url")
    if not isinstance(url, str) and "search_result_index" in {*note, *extras}:
        url = note.get("source", extras.get("source"))  # Anthropic search results name one
    if not isinstance(url, str) or not url.strip():
        return None
    quote = note.get("cited_text")
    return CitedSpan(url, at + a, at + b, url=True, quote=quote if isinstance(quote, str) else None)


def _span_in_block(note: Mapping[str, Any], length: int) -> tuple[int, int]:
    """`start_index:end_index` (offsets in the block's text) clipped to it; the whole block
    when either is missing, not an int, or nothing of the span is left inside the block."""
    a, b = note.get("start_index"), note.get("end_index")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (a, b)):
        return 0, length
    a, b = max(0, cast("int", a)), min(length, cast("int", b))
    return (a, b) if a < b else (0, length)


def from_annotations(annotations: object, text: str) -> GivenCitations | None:
    """Chat Completions `message.annotations` on a plain-string answer `text`, else None.

    Each `url_citation` names a page by `url`; its `start_index:end_index` are offsets in the
    message's content (langchain-litellm keeps them in `AIMessage.additional_kwargs
    ["annotations"]`). The nested shape and the flat one are both read; offsets missing, not
    ints or outside `text` make the whole text the claim; an annotation without a URL is
    skipped.
    """
    spans = [_cited(note, 0, len(text)) for note in _citing(annotations)]
    found = tuple(x for x in spans if x is not None)
    return GivenCitations(found, "provider", "0-based") if found else None


def chat_completion_annotations(raw: object) -> object:
    """`choices[0].message.annotations` of a Chat Completions response (an object or a
    dict), else None: where LlamaIndex's OpenAI LLM leaves them (`ChatResponse.raw`)."""
    choices = field_of(raw, "choices")
    if not isinstance(choices, (list, tuple)) or not choices:
        return None
    return field_of(field_of(choices[0], "message"), "annotations")


def field_of(value: object, key: str) -> object:
    """A mapping's item or an object's attribute (None when absent)."""
    if isinstance(value, Mapping):
        return value.get(key)
    try:
        return getattr(value, key, None) if value is not None else None
    except Exception:  # a property that fails: the value has no such field for us
        return None


def from_reply(
    blocks: object, answer: str, *, streamed: bool = False, annotations: object = None
) -> GivenCitations | None:
    """The citations of an LLM's LlamaIndex reply (its message's `blocks`), placed in
    `answer`, else None (also when none of its text is in `answer`: not this answer's reply).

    A `CitationBlock` (`block_type` "citation": `source`, `title`, `cited_content`,
    `additional_location_info`) names its source by `source`, the string the `CitableBlock`
    it cites was given (matched like a URL: to a source's metadata url/source/link or its
    id). It carries no offset in the answer: it backs the text block beside it, the one
    before it in a reply built at once, the one after it in a streamed reply (the Anthropic
    integration appends a streamed text block when it ends, after its citations). A
    `CitationBlock` with a blank or missing `source` is skipped. `annotations` are Chat
    Completions or Responses `url_citation`s, offsets in the text blocks joined by newlines
    (`ChatMessage.content`). Text blocks are found in `answer` in order (a streamed answer
    joins them with nothing, `content` with newlines); a citation of a block not found backs
    the whole answer.
    """
    if not isinstance(blocks, (list, tuple)):
        return None
    texts: list[str] = []
    owned: list[tuple[int, object]] = []  # (the text block it backs, the citation block)
    waiting: list[object] = []
    for block in blocks:
        kind = field_of(block, "block_type")
        text = field_of(block, "text")
        if kind == "text" and isinstance(text, str):
            texts.append(text)
            owned += [(len(texts) - 1, x) for x in waiting]
            waiting = []
        elif kind == "citation":
            if streamed or not texts:
                waiting.append(block)
            else:
                owned.append((len(texts) - 1, block))
    owned += [(len(texts) - 1, x) for x in waiting]  # a streamed reply's last citations
    if not owned and not _citing(annotations):
        return None
    places = _placed(texts, answer)
    if places is None:
        return None
    spans = [_cited_block(x, places[k] if k >= 0 else None) for k, x in owned]
    spans += _annotated(annotations, texts, places)
    found = tuple(x for x in spans if x is not None)
    return GivenCitations(found, "provider", "0-based") if found else None


def _placed(texts: list[str], answer: str) -> list[tuple[int, int] | None] | None:
    """Where each text block sits in `answer`, found in order (None: not found; a blank
    block is placed, empty, where the search stands: a citation of it cites no text); None
    when no text of the blocks is in `answer` (not this answer's reply)."""
    out: list[tuple[int, int] | None] = []
    at = 0
    for text in texts:
        if not text.strip():
            out.append((at, at))
            continue
        k = answer.find(text, at)
        out.append((k, k + len(text)) if k >= 0 else None)
        at = k + len(text) if k >= 0 else at
    return out if any(p is not None and p[0] < p[1] for p in out) else None


def _cited_block(block: object, place: tuple[int, int] | None) -> CitedSpan | None:
    source = field_of(block, "source")
    if not isinstance(source, str) or not source.strip():
        return None
    quote = field_of(field_of(block, "cited_content"), "text")
    quote = quote if isinstance(quote, str) else None
    a, b = place if place is not None else (None, None)
    return CitedSpan(source.strip(), a, b, url=True, quote=quote)


def _annotated(
    annotations: object, texts: list[str], places: list[tuple[int, int] | None]
) -> list[CitedSpan | None]:
    """Annotation citations moved from offsets in the newline-joined text blocks to `answer`
    (a claim whose block was not found backs the whole answer)."""
    if not texts:
        return []
    starts = []
    at = 0
    for text in texts:
        starts.append(at)
        at += len(text) + 1
    content = "\n".join(texts)
    out: list[CitedSpan | None] = []
    for note in _citing(annotations):
        x = _cited(note, 0, len(content))
        if x is None or x.start is None or x.end is None:
            continue
        k = max(i for i, s in enumerate(starts) if s <= x.start)
        place = places[k]
        if place is None:
            out.append(CitedSpan(x.label, None, None, url=x.url, quote=x.quote))
            continue
        a = place[0] + x.start - starts[k]
        b = place[0] + min(x.end - starts[k], len(texts[k]))
        out.append(CitedSpan(x.label, a, b, url=x.url, quote=x.quote))
    return out


def from_raw_message(raw: object, answer: str) -> GivenCitations | None:
    """The web-search citations on the text blocks of a provider message kept as a LlamaIndex
    reply's `raw`, placed in `answer`, else None.

    llama-index-llms-anthropic (0.12.3) keeps `dict(message)` of the Anthropic `Message` as a
    reply's `raw` (`chat`, `achat`, and the completions made by them): its `content` holds the
    SDK's text blocks with their `citations`, while the reply's blocks carry `CitationBlock`s
    only for `search_result_location`. Read here: citations that name a URL
    (`web_search_result_location` by `url`, `search_result_location` by `source`); a citation
    naming a request document by `document_index` is skipped (it counts the request's
    documents, not the nodes behind the answer; that integration sends none it may cite).
    Each citation backs its whole text block; text blocks are found in `answer` in order, as
    `from_reply` finds them (a block not found: the citation backs the whole answer;
    none found: not this answer's reply, None). Dicts and pydantic blocks are both read.
    """
    content = field_of(raw, "content")
    if not isinstance(content, (list, tuple)):
        return None
    texts: list[str] = []
    notes: list[list[Mapping[str, Any]]] = []
    for block in content:
        fields = _text_block(block)
        if fields is not None:
            texts.append(fields["text"])
            notes.append(_notes(fields))
    if not any(notes):
        return None
    places = _placed(texts, answer)
    if places is None:
        return None
    spans: list[CitedSpan] = []
    for text, place, cited in zip(texts, places, notes, strict=True):
        for note in cited:
            x = _cited(note, place[0] if place is not None else 0, len(text))
            if x is None or not x.url:
                continue
            spans.append(x if place is not None else CitedSpan(x.label, url=True, quote=x.quote))
    return GivenCitations(tuple(spans), "provider", "0-based") if spans else None
