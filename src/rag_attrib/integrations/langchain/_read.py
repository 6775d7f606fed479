"""Reading LangChain objects: documents, answers, questions and stream chunks."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    BaseMessageChunk,
    HumanMessage,
    ToolMessage,
)
from langchain_core.runnables.utils import AddableDict

from ...results import Source
from ...validate import metadata_dict
from .._given import (
    GivenCitations,
    from_annotations,
    from_blocks,
    from_structured,
    structured_text,
)

ANSWER_KEYS = (
    "answer",
    "output",
    "generation",
    "response",
    "result",
    "text",
    "content",
    "structured_response",  # create_agent(..., response_format=Schema)
    "parsed",  # with_structured_output(..., include_raw=True): {"raw", "parsed", "parsing_error"}
)
"""Keys of a chain output (or graph state) that hold the answer, in the order tried."""

_QUESTION_KEYS = ("question", "input", "query")
_MAX_DEPTH = 4  # how deep documents are looked for in an output (state -> list -> message)
# A `Document`'s repr, as a tool that returned documents leaves it in `ToolMessage.content`.
_DOC_REPR = re.compile(
    r"Document\((?:id=(?P<id>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"), )?"
    r"metadata=(?P<meta>\{.*?\}), page_content=(?P<text>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\)",
    re.DOTALL,
)


def thread_of(config: Any) -> str | None:
    """The conversation thread a call continues: `thread_id` in its config's `configurable`,
    or in a run's metadata (`config` is then that metadata: LangGraph copies it there)."""
    if not isinstance(config, Mapping):
        return None
    configurable = config.get("configurable")
    thread = (configurable if isinstance(configurable, Mapping) else config).get("thread_id")
    return None if thread is None or thread == "" else str(thread)


def documents_to_sources(documents: Iterable[Document]) -> list[Source]:
    """Convert LangChain documents to `Source`s, dropping repeats.

    The id is `Document.id`, else `metadata["source"]`, else the position in the result;
    `Document.metadata` is carried into `Source.metadata`. A repeat is a document with the same
    id and text, or one without an id whose text was already seen (a compressor or a copy that
    dropped the id).

    Returns:
        One `Source` per distinct document, in the order given.
    """
    seen: set[tuple[str | None, str]] = set()
    texts: set[str] = set()
    out: list[Source] = []
    for doc in documents:
        meta = metadata_dict(doc.metadata)
        given = doc.id if doc.id else meta.get("source")
        key = (None if given is None else str(given), doc.page_content)
        if key in seen or (not doc.id and doc.page_content in texts):
            continue
        seen.add(key)
        texts.add(doc.page_content)
        out.append(
            Source(
                id=key[0] if key[0] is not None else str(len(out)),
                text=doc.page_content,
                metadata=meta,
            )
        )
    return out


def find_documents(value: Any, depth: int = 0) -> list[Document]:
    """The `Document`s in a run's output: lists, dict values, tool messages, nested a little.

    A `ToolMessage` gives its `artifact`'s documents, else those written in its content; a
    LangGraph `Command` those of its `update`; a document a checkpointer stored as a dict
    counts too.
    """
    if isinstance(value, Document):
        return [value]
    stored = stored_document(value) if isinstance(value, Mapping) else None
    if stored is not None:
        return [stored]
    if depth >= _MAX_DEPTH or isinstance(value, (str, bytes)):
        return []
    update = _command_update(value)
    if update is not None:  # a tool or node returned `Command(update={"context": docs, ...})`
        return find_documents(update, depth + 1)
    if isinstance(value, ToolMessage):
        found = find_documents(value.artifact, depth + 1)
        return found or documents_in_text(value.content)
    if isinstance(value, BaseMessage):
        return []
    if isinstance(value, Mapping):
        items: Iterable[Any] = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return []
    return [doc for item in items for doc in find_documents(item, depth + 1)]


def handed_in(inputs: Any) -> tuple[list[Document], list[Document]]:
    """What a call was given to work on: the `Document`s in its input (a stuff chain's
    `{"context": docs}`), and its lists of texts (a map-reduce graph's `{"contents": [...]}`,
    as documents without ids). The question and `messages` are not texts to cite."""
    texts: list[Document] = []
    if isinstance(inputs, (list, tuple)):
        texts = _texts(inputs)
    elif isinstance(inputs, Mapping):
        for key, value in inputs.items():
            if key not in _QUESTION_KEYS and key != "messages" and isinstance(value, (list, tuple)):
                texts.extend(_texts(value))
    return find_documents(inputs), texts


def _texts(items: Sequence[Any]) -> list[Document]:
    if not items or not all(isinstance(t, str) for t in items):
        return []
    return [Document(page_content=str(t)) for t in items if t.strip()]


def _command_update(value: Any) -> Any:
    """The `update` of a LangGraph `Command` (matched by name: langgraph is no dependency)."""
    if type(value).__name__ != "Command":
        return None
    return getattr(value, "update", None)


def stored_document(value: Mapping[Any, Any]) -> Document | None:
    """A `Document` a checkpointer stored as a dict (a tool's artifact in a thread's history
    comes back as `{"id", "metadata", "page_content", "type": "Document"}`), else None."""
    text, meta = value.get("page_content"), value.get("metadata")
    if value.get("type") != "Document" or not isinstance(text, str):
        return None
    doc_id = value.get("id")
    return Document(
        page_content=text,
        metadata=dict(meta) if isinstance(meta, Mapping) else {},
        id=doc_id if isinstance(doc_id, str) else None,
    )


def documents_in_text(content: Any) -> list[Document]:
    """Documents a tool returned that LangChain wrote into a `ToolMessage` as their repr."""
    if not isinstance(content, str) or "Document(" not in content:
        return []
    out = []
    for match in _DOC_REPR.finditer(content):
        try:
            text = ast.literal_eval(match["text"])
            meta = ast.literal_eval(match["meta"])
            doc_id = ast.literal_eval(match["id"]) if match["id"] else None
        except (ValueError, SyntaxError):
            continue
        if isinstance(text, str) and isinstance(meta, dict):
            out.append(Document(page_content=text, metadata=meta, id=doc_id))
    return out


def message_text(message: BaseMessage) -> str:
    """The text of a message (text blocks of a content list joined)."""
    return str(message.text)


def is_answer_message(message: Any) -> bool:
    """An AI message that answers: it has text and asks for no tool."""
    return (
        isinstance(message, AIMessage)
        and not message.tool_calls
        and bool(message_text(message).strip())
    )


def last_answer(messages: Sequence[Any]) -> BaseMessage | None:
    """The message that answers in a `messages` list: the tool reply it ends with (an agent
    stops on a `return_direct` tool's result, which goes to the user), else the last AI
    message with text."""
    if messages and isinstance(messages[-1], ToolMessage) and message_text(messages[-1]).strip():
        return messages[-1]
    return next((m for m in reversed(messages) if is_answer_message(m)), None)


def answer_of(output: Any) -> str | None:
    """The answer text in a chain or graph output, or None when it holds none.

    A str, a message's text, the first of `ANSWER_KEYS` that holds one (a structured
    answer's `answer` field too), or the answering message of a `messages` list (see
    `last_answer`); a LangGraph "updates" chunk is looked into.
    """
    if isinstance(output, str):
        return str(output)  # drops str subclasses such as langchain's TextAccessor
    if isinstance(output, BaseMessage):
        if isinstance(output, AIMessage) and output.tool_calls and not message_text(output):
            return None
        return message_text(output)
    structured = from_structured(output)  # a "cited answer": CitedAnswer(answer, citations)
    if structured is not None:
        return structured[0]
    if not isinstance(output, Mapping):
        return None
    for key in ANSWER_KEYS:
        item = output.get(key)
        if isinstance(item, (str, BaseMessage)):
            return answer_of(item)
        text = structured_text(item)  # a structured answer, cited (`CitedAnswer`) or not
        if text is not None:
            return text
    messages = output.get("messages")
    if isinstance(messages, (list, tuple)):
        message = last_answer(messages)
        return None if message is None else message_text(message)
    nested = [v for v in output.values() if isinstance(v, Mapping)]
    if len(nested) == 1:  # a LangGraph "updates" chunk: {node: update}
        return answer_of(nested[0])
    return None


def answer_message(output: Any) -> BaseMessage | None:
    """The message `answer_of` reads the answer from, if it comes from one."""
    if isinstance(output, BaseMessage):
        return output
    if not isinstance(output, Mapping):
        return None
    for key in ANSWER_KEYS:
        item = output.get(key)
        if isinstance(item, BaseMessage):
            return item
        if isinstance(item, str) or structured_text(item) is not None:
            return None
    messages = output.get("messages")
    if isinstance(messages, (list, tuple)):
        return last_answer(messages)
    return None


def given_citations(output: Any) -> GivenCitations | None:
    """Citations the output gives beside its answer text: a cited-answer object's source ids
    (`CitedAnswer(answer, citations)`, as output or under an answer key), or the provider
    citations on the answer message's text blocks (Anthropic `citations`, v1 `annotations`),
    or Chat Completions `url_citation`s beside a string content (`additional_kwargs
    ["annotations"]`, where langchain-litellm keeps them; langchain-openai drops them)."""
    structured = from_structured(output)
    if structured is None and isinstance(output, Mapping):
        found = (from_structured(output.get(key)) for key in ANSWER_KEYS)
        structured = next((x for x in found if x is not None), None)
    if structured is not None:
        return structured[1]
    message = answer_message(output)
    if message is None:
        return None
    if isinstance(message.content, str):
        return from_annotations(message.additional_kwargs.get("annotations"), message.content)
    return from_blocks(message.content)


def holds_text(output: Any, depth: int = 0) -> bool:
    """Whether an output holds any non-blank text (to tell an empty answer from no answer)."""
    if isinstance(output, str):
        return bool(output.strip())
    if isinstance(output, BaseMessage):
        return bool(message_text(output).strip())
    if depth >= _MAX_DEPTH:
        return False
    if isinstance(output, Mapping):
        return any(holds_text(v, depth + 1) for v in output.values())
    if isinstance(output, (list, tuple)):
        return any(holds_text(v, depth + 1) for v in output)
    return False


def summarised(output: Any) -> bool:
    """Whether a graph state's messages open with a summary an LLM wrote of earlier turns
    (LangChain's `SummarizationMiddleware` marks it `additional_kwargs["lc_source"]`)."""
    messages = output.get("messages") if isinstance(output, Mapping) else None
    if not isinstance(messages, (list, tuple)):
        return False
    return any(
        isinstance(m, BaseMessage) and m.additional_kwargs.get("lc_source") == "summarization"
        for m in messages
    )


def question_of(value: Any) -> str | None:
    """The user's question in a chain input, if it has an obvious one."""
    if isinstance(value, str):
        return str(value) if value.strip() else None
    if isinstance(value, HumanMessage):
        return message_text(value) or None
    if isinstance(value, Mapping):
        for key in _QUESTION_KEYS:
            item = value.get(key)
            if isinstance(item, str) and item.strip():
                return str(item)
        messages = value.get("messages")
        if isinstance(messages, (list, tuple)):
            for message in reversed(messages):
                if isinstance(message, HumanMessage):
                    return message_text(message) or None
                if isinstance(message, tuple) and len(message) == 2 and message[0] == "user":
                    return question_of(message[1])
    return None


def prompt_text(messages: Iterable[Any]) -> str:
    """The text of an LLM's prompt (messages or strings), for checking what reached it."""
    return "\n".join(m if isinstance(m, str) else message_text(m) for m in _flat(messages))


def tool_texts(messages: Iterable[Any]) -> list[str]:
    """The text of each tool result (`ToolMessage`) in an LLM's prompt, in order: what each
    tool call showed it (an agent that searched twice read two, each labelling afresh)."""
    return [message_text(m) for m in _flat(messages) if isinstance(m, ToolMessage)]


def _flat(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flat(item)
        elif isinstance(item, (str, BaseMessage)):
            yield item


def token_text(token: Any) -> str:
    """The text of a streamed token: a str, or the text blocks of a content list."""
    if isinstance(token, str):
        return str(token)
    if isinstance(token, list):
        return "".join(
            str(b) if isinstance(b, str) else str(b.get("text") or "")
            for b in token
            if isinstance(b, str) or (isinstance(b, Mapping) and b.get("type") == "text")
        )
    return ""


def add_chunks(total: Any, chunk: Any) -> Any:
    """Aggregate stream chunks: text, message chunks and `AddableDict`s add up with `+`; any
    other chunk (a graph's state, a `(message, metadata)` tuple) replaces the total."""
    if total is None or not isinstance(total, (str, BaseMessageChunk, AddableDict)):
        return chunk
    try:
        return total + chunk
    except TypeError:
        return chunk


def combine(items: Iterable[Any]) -> Any:
    """All of a stream's chunks added up (see `add_chunks`)."""
    total = None
    for item in items:
        total = add_chunks(total, item)
    return total


_GRAPH_STREAM_KWARGS = ("stream_mode", "subgraphs", "version")


@dataclass(frozen=True, slots=True)
class GraphStream:
    """How a LangGraph `stream`/`astream` call shapes its chunks (as langgraph's `_output`
    yields them): the chunk itself for one mode, `(mode, chunk)` for a list of modes,
    `(namespace, chunk)` with `subgraphs=True`, `(namespace, mode, chunk)` with both, and
    `{"type": mode, "ns": namespace, "data": chunk, ...}` (`StreamPart`) with `version="v2"`.
    """

    mode: str | None  # the one mode; None for a list of modes
    subgraphs: bool
    parts: bool

    @classmethod
    def of(cls, kwargs: Mapping[str, Any], graph_mode: Any) -> GraphStream | None:
        """The shape of a call given `kwargs`, or None for no LangGraph stream: the bound
        Runnable is no graph (`graph_mode`, a graph's own `stream_mode`, is None) and the call
        names no LangGraph stream option."""
        if graph_mode is None and not any(key in kwargs for key in _GRAPH_STREAM_KWARGS):
            return None
        mode = kwargs.get("stream_mode") or graph_mode or "values"
        return cls(
            None if isinstance(mode, list) else str(mode),  # langgraph tests `list` only
            bool(kwargs.get("subgraphs")),
            kwargs.get("version") == "v2",
        )

    def state(self, chunk: Any) -> Any:
        """The graph's own state ("values") or update ("updates") a chunk carries; None for
        the chunk of another mode ("messages", "custom", ...) or of a subgraph."""
        namespace: Any = ()
        mode: Any = self.mode
        data: Any = chunk
        if self.parts:
            if not isinstance(chunk, Mapping):
                return None
            namespace, mode, data = chunk.get("ns"), chunk.get("type"), chunk.get("data")
        elif self.subgraphs and self.mode is None:
            if not _pair_or_triple(chunk, 3):
                return None
            namespace, mode, data = chunk
        elif self.subgraphs:
            if not _pair_or_triple(chunk, 2):
                return None
            namespace, data = chunk
        elif self.mode is None:
            if not _pair_or_triple(chunk, 2):
                return None
            mode, data = chunk
        return data if not namespace and mode in ("values", "updates") else None

    def shaped(self, data: Any) -> Any:
        """`data` as a chunk of this stream from the graph itself, so loops unpack it as they
        unpack the others: under the mode "custom" (a graph's own data) where chunks name one."""
        if self.parts:
            return {"type": "custom", "ns": (), "data": data}
        if self.mode is None:
            return ((), "custom", data) if self.subgraphs else ("custom", data)
        return ((), data) if self.subgraphs else data


def _pair_or_triple(chunk: Any, size: int) -> bool:
    return isinstance(chunk, tuple) and len(chunk) == size
