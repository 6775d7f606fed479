"""Capture: what the runs of one call produced (documents, LLM answers), and the job from it.

Documents are found where they are: the call's input (a stuff chain's `{"context": docs}`),
retriever runs, tool outputs (`ToolMessage.artifact`, or documents written into its content),
chain and graph-node outputs, and documents handed in with `add_sources`. Runs inside a
retriever are skipped (a compression retriever's outer documents are what reached the LLM), and
so are LLMs inside retrievers and tools (they do not answer). A document a chain or node made
of an LLM's output (a map-reduce's summaries) is not evidence: what that LLM read is. A call
that continues a conversation thread also cites what the thread's earlier calls found, when it
reached the answering prompt (through a summary of the earlier turns too; see `_threads`).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.outputs import LLMResult
from typing_extensions import override

from ...results import Source
from .._numbering import labelled
from .._pipeline import Job, prompts_behind, reached, with_text, written_by
from .._threads import History, Threads
from ._read import (
    answer_of,
    documents_to_sources,
    find_documents,
    given_citations,
    handed_in,
    holds_text,
    prompt_text,
    question_of,
    summarised,
    tool_texts,
)

SOURCES_EVENT = "rag_attrib.sources"
"""The custom event `add_sources` dispatches; its data is `{"documents": [...]}`."""

NO_ANSWER = (
    "no answer found: the output holds no answer text and no LLM gave one; return the answer "
    "as a str, a message, under an 'answer' key or as the last AI message of 'messages'"
)
NO_SOURCES = (
    "no retriever or tool returned documents in this call, so nothing can be cited: use a "
    "retriever, return Documents from a tool or a node, or hand them in with add_sources(docs)"
)
NO_DOCUMENTS = (
    "the retrievers returned no documents, so nothing can be cited: check the retriever's "
    "query and index"
)
ONLY_WRITTEN = (
    "only documents this call's LLMs wrote reached the answer ({n}, e.g. a map step's "
    "summaries); they are cited in place of the documents under them: pass those in the "
    "call's input, return them from a retriever or tool, or hand them in with add_sources(docs)"
)
FROM_SUMMARY = (
    "no retriever or tool returned documents in this call, which answered from a summary an "
    "LLM wrote of the thread's earlier turns (SummarizationMiddleware): a summary is no "
    "evidence, and the documents under it are cited only when the same handler or wrapper "
    "attributed the earlier calls of the thread (same thread_id) that retrieved them: attribute "
    "every turn with it, or hand the documents in with add_sources(docs)"
)
EMPTY_ANSWER = (
    "the answer text is empty while the output holds text: put the answer under 'answer' "
    "(or return it as a str or message)"
)


@dataclass(slots=True)
class _Run:
    parent: UUID | None
    kind: str  # "chain", "retriever", "llm" or "tool"
    order: int


@dataclass(slots=True)
class _Generation:
    text: str
    prompt: str
    value: Any  # the Generation / ChatGeneration, for attaching to its message
    run_id: UUID


@dataclass(frozen=True, slots=True)
class _LLMRun:
    """What an LLM run wrote, what it read, and when it ended (`Capture.clock`)."""

    text: str
    prompt: str
    at: int
    run_id: UUID


@dataclass(slots=True)
class Capture:
    """What the runs of one call produced (mutated under the collector's lock)."""

    runs: dict[UUID, _Run] = field(default_factory=dict)
    # (run start order, position, document) by document object: a graph's state carries the
    # same documents through every later node, so each is kept once, at its earliest run
    documents: dict[int, tuple[int, int, Document]] = field(default_factory=dict)
    inner: list[Document] = field(default_factory=list)  # seen inside a retriever
    searched_ids: set[int] = field(default_factory=set)  # documents a retriever or tool gave
    seen_at: dict[int, int] = field(default_factory=dict)  # when each document was first found
    clock: int = 0  # counts documents found and LLM runs ended, to order the two
    explicit: list[Document] = field(default_factory=list)  # handed in with add_sources
    searched: bool = False  # a retriever ran, or documents were reported
    queries: list[str] = field(default_factory=list)
    open_llms: set[UUID] = field(default_factory=set)
    prompts: dict[UUID, str] = field(default_factory=dict)
    tool_texts: dict[UUID, list[str]] = field(default_factory=dict)  # its prompt's tool results
    generations: list[_Generation] = field(default_factory=list)
    llm_runs: list[_LLMRun] = field(default_factory=list)  # every LLM outside retrievers
    generation: Any = None  # the last finished LLM generation
    interrupted: bool = False  # a LangGraph interrupt paused the run before it answered
    final_question: str | None = None  # read from the outermost run's output
    final_output: tuple[Any, ...] = ()  # (the outermost run's output,) once it ended
    thread: Hashable | None = None  # the conversation thread the call continues, if any
    history: History[Document] = field(default_factory=History)  # its earlier calls' finds

    def start(self, run_id: UUID, parent_run_id: UUID | None, kind: str) -> None:
        if run_id not in self.runs:
            self.runs[run_id] = _Run(parent_run_id, kind, len(self.runs))

    def within(self, run_id: UUID, kinds: tuple[str, ...]) -> bool:
        """Whether a run has an ancestor of one of `kinds` (itself excluded)."""
        run = self.runs.get(run_id)
        seen = 0
        while run is not None and run.parent is not None and seen < len(self.runs):
            run = self.runs.get(run.parent)
            if run is not None and run.kind in kinds:
                return True
            seen += 1
        return False

    def found(self, run_id: UUID, documents: Sequence[Document], *, search: bool) -> None:
        """Keep `documents` produced by `run_id` (a retriever's count as a search even if 0)."""
        if self.within(run_id, ("retriever",)):
            self.inner.extend(documents)
            return
        self.searched = self.searched or search or bool(documents)
        run = self.runs.get(run_id)
        order = run.order if run is not None else len(self.runs)
        for k, doc in enumerate(documents):
            if search:
                self.searched_ids.add(id(doc))
            known = self.documents.get(id(doc))
            if known is None:
                self.seen_at[id(doc)] = self.clock
            if known is None or (order, k) < known[:2]:
                self.documents[id(doc)] = (order, k, doc)  # the entry keeps `doc` alive
        self.clock += 1

    def llm_started(self, run_id: UUID, prompt: str, tools: list[str]) -> None:
        self.open_llms.add(run_id)
        self.prompts[run_id] = prompt
        self.tool_texts[run_id] = tools

    def llm_ended(self, run_id: UUID, response: LLMResult) -> None:
        self.open_llms.discard(run_id)
        if not response.generations or not response.generations[0]:
            return
        generation = response.generations[0][0]
        self.generation = generation
        text = getattr(generation, "text", None)
        if not isinstance(text, str) or not text.strip() or self.within(run_id, ("retriever",)):
            return
        prompt = self.prompts.get(run_id, "")
        self.llm_runs.append(_LLMRun(text, prompt, self.clock, run_id))  # a subagent's too
        self.clock += 1
        message = getattr(generation, "message", None)
        if not self.within(run_id, ("tool",)) and not getattr(message, "tool_calls", None):
            self.generations.append(_Generation(text, prompt, generation, run_id))

    def llm_failed(self, run_id: UUID) -> None:
        self.open_llms.discard(run_id)

    def answering(self, answer: str | None) -> _Generation | None:
        """The LLM generation that gave `answer` (else the last one with text)."""
        if answer is not None:
            wanted = answer.strip()
            for candidate in reversed(self.generations):
                if candidate.text.strip() == wanted:
                    return candidate
        return self.generations[-1] if self.generations else None

    def run_of(self, answer: str | None) -> UUID | None:
        """The LLM run that wrote `answer` wherever it ran (a subagent whose reply a
        `return_direct` tool hands back), else the last one started outside retrievers and
        tools (a structured answer comes from a tool call, which keeps no generation)."""
        wanted = (answer or "").strip()
        for run in reversed(self.llm_runs):
            if wanted and run.text.strip() == wanted:
                return run.run_id
        for run_id in reversed(self.prompts):
            if not self.within(run_id, ("retriever", "tool")):
                return run_id
        return None

    def sources(self, inputs: Any = None) -> list[Source]:
        """The call's documents found so far, as sources (for encoding them early)."""
        return self.evidence(None, inputs)[0]

    def evidence(
        self, prompt: str | None = None, inputs: Any = None, answer: str | None = None
    ) -> tuple[list[Source], str | None]:
        """The sources to cite, and a note when only the call's LLMs' own words were left.

        Args:
            prompt: the answering LLM's prompt; when it shows any document, only those that
                reached it, or reached an LLM whose output reached it, are kept.
            inputs: what the call was given: its documents are sources, its texts (see
                `handed_in`) only when the call found nothing else (a map-reduce graph given
                `{"contents": [...]}`, whose own summaries are no evidence).
            answer: the answer attributed; a document holding it (found in the final state
                only) was not made of it: it is the document the answer quotes.
        """
        found, written = self._split(answer)
        given, texts = handed_in(inputs)
        documents = [*given, *found]
        shown = None
        if prompt:
            runs = [*((run.text, run.prompt) for run in self.llm_runs), *self.history.runs]
            shown = "\n".join(prompts_behind(prompt, runs))
        earlier = self._earlier(shown, [*documents, *self.explicit])
        note = None
        if not documents and not self.explicit and not earlier:
            documents = texts or written
            if written and documents is written:
                note = ONLY_WRITTEN.format(n=len(written))
        if shown is not None and documents:
            seen = reached([d.page_content for d in documents], shown)
            kept = [d for d, ok in zip(documents, seen, strict=True) if ok]
            # the prompt may rephrase them all: keep them, unless an earlier call's did reach
            documents = kept or ([] if earlier else documents)
        return documents_to_sources([*self.explicit, *documents, *earlier]), note

    def _earlier(self, shown: str | None, current: Sequence[Document]) -> list[Document]:
        """The documents the thread's earlier calls found that reached `shown` (the answering
        prompt and those behind it, a summary's too), and are not among `current`."""
        if shown is None or not self.history.documents:
            return []
        have = {document_key(doc) for doc in current}
        candidates = [d for d in self.history.documents if document_key(d) not in have]
        seen = reached([d.page_content for d in candidates], shown)
        return [d for d, ok in zip(candidates, seen, strict=True) if ok]

    def finds(self, inputs: Any, answer: str) -> list[Document]:
        """The documents this call found, for its thread's later calls: those handed in, given
        or found, not those its LLMs wrote."""
        return [*self.explicit, *handed_in(inputs)[0], *self._split(answer)[0]]

    def _split(self, answer: str | None) -> tuple[list[Document], list[Document]]:
        """The documents found, in run order: (evidence, those made of an LLM's output)."""
        ordered = sorted(self.documents.values(), key=lambda item: (item[0], item[1]))
        found: list[Document] = []
        written: list[Document] = []
        for _, _, doc in ordered:
            made = self._made(doc, (answer or "").strip())
            (written if made else found).append(_with_inner_id(doc, self.inner))
        return found, written

    def _made(self, doc: Document, answer: str) -> bool:
        """Whether a chain or node made `doc` of an LLM's output: an LLM other than the
        answering one wrote text it holds, and ended before the document was first found (a
        document found first and then quoted is evidence); no retriever or tool returned it."""
        if id(doc) in self.searched_ids:
            return False
        found_at = self.seen_at.get(id(doc), self.clock)
        texts = [r.text for r in self.llm_runs if r.at < found_at and r.text.strip() != answer]
        return written_by(doc.page_content, texts)


def document_key(doc: Document) -> tuple[str | None, str]:
    """What makes two documents the same: their id and text."""
    return (doc.id, doc.page_content)


def thread_documents() -> Threads[Document]:
    """An empty per-thread memory of documents (see `_threads.Threads`)."""
    return Threads(lambda doc: doc.page_content, document_key)


def remember(threads: Threads[Document], capture: Capture, inputs: Any, answer: str) -> None:
    """Keep what a finished call found for its thread's later calls (none without a thread)."""
    if capture.thread is None:
        return
    runs = [(run.text, run.prompt) for run in capture.llm_runs]
    threads.remember(capture.thread, capture.finds(inputs, answer), runs)


def _with_inner_id(doc: Document, inner: list[Document]) -> Document:
    """A compressor's document that lost its id gets the id of the document it came from."""
    if doc.id or not inner:
        return doc
    for origin in inner:
        if origin.id and origin.page_content == doc.page_content:
            return doc.model_copy(update={"id": origin.id})
    for origin in inner:
        if (
            origin.id
            and origin.metadata == doc.metadata
            and doc.page_content in origin.page_content
        ):
            return doc.model_copy(update={"id": origin.id})
    return doc


def build_job(capture: Capture, output: Any, question: str | None, inputs: Any = None) -> Job:
    """The job for one call: the answer the user gets, the documents the LLM saw, problems.

    `inputs` is what the call was given: documents and texts in it are sources too."""
    answer = answer_of(output)
    problem = None
    if answer is not None and not answer.strip() and holds_text(output):
        problem = EMPTY_ANSWER
    generation = capture.answering(answer)
    cited = given_citations(output)
    if answer is None and generation is not None:
        answer = generation.text
        cited = given_citations(getattr(generation.value, "message", None))
    elif cited is None and generation is not None and generation.text == answer:
        # a parser made the message a str: its citations stay on the message the LLM gave
        cited = given_citations(getattr(generation.value, "message", None))
    run = generation.run_id if generation is not None else capture.run_of(answer)
    prompt = capture.prompts.get(run) if run is not None else None
    # an empty document supports nothing: one is never a source, and only such is a problem
    found, note = capture.evidence(prompt, inputs, answer)
    sources, blank = with_text(found)
    # the tool results it read, each labelling its passages ("Source 1:"), number its markers
    read = capture.tool_texts.get(run, []) if run is not None else []
    sources, shown, labels = labelled(sources, read)
    if answer is None:
        problem = NO_ANSWER
    elif not sources:
        unsearched = FROM_SUMMARY if summarised(output) else NO_SOURCES
        problem = problem or blank or (NO_DOCUMENTS if capture.searched else unsearched)
    else:
        problem = problem or note
    # a resumed graph's input is a `Command`: its state still holds the user's question
    question = question or question_of(output) or capture.final_question
    question = question or (capture.queries[0] if capture.queries else None)
    return Job(answer or "", sources, question, problem, cited, shown or prompt, labels)


class Collector(BaseCallbackHandler):
    """Feeds run events into the `Capture` each run belongs to.

    Subclasses say which capture a run belongs to: `_enter` when the run starts, `_lookup`
    afterwards. Both are called with `self._lock` held.
    """

    raise_error: bool = False

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def _enter(self, run_id: UUID, parent_run_id: UUID | None) -> Capture | None:
        raise NotImplementedError

    def _lookup(self, run_id: UUID) -> Capture | None:
        raise NotImplementedError

    def _start(self, run_id: UUID, parent_run_id: UUID | None, kind: str) -> Capture | None:
        with self._lock:
            capture = self._enter(run_id, parent_run_id)
            if capture is not None:
                capture.start(run_id, parent_run_id, kind)
            return capture

    def _found(self, run_id: UUID, documents: Sequence[Document], *, search: bool) -> None:
        with self._lock:
            capture = self._lookup(run_id)
            if capture is not None:
                capture.found(run_id, documents, search=search)

    @override
    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Note a chain (or graph node) run."""
        self._start(run_id, kwargs.get("parent_run_id"), "chain")

    @override
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Keep the documents a chain or node returned, and the outermost run's output and
        the question in it (a resumed graph's state holds it; its input, a `Command`, does not)."""
        documents = find_documents(outputs)
        if documents:
            self._found(run_id, documents, search=False)
        with self._lock:
            capture = self._lookup(run_id)
            run = capture.runs.get(run_id) if capture is not None else None
            if capture is not None and run is not None and run.parent not in capture.runs:
                capture.final_question = question_of(outputs)
                capture.final_output = (outputs,)

    @override
    def on_retriever_start(
        self, serialized: Any, query: str, *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Note a retriever run and its query."""
        capture = self._start(run_id, kwargs.get("parent_run_id"), "retriever")
        if capture is not None and isinstance(query, str) and query.strip():
            with self._lock:
                if not capture.within(run_id, ("retriever",)):
                    capture.queries.append(query)

    @override
    def on_retriever_end(
        self, documents: Sequence[Document], *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Keep the retrieved documents."""
        self._found(run_id, list(documents), search=True)

    @override
    def on_tool_start(
        self, serialized: Any, input_str: str, *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Note a tool run."""
        self._start(run_id, kwargs.get("parent_run_id"), "tool")

    @override
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Keep the documents a tool returned (artifact, content, or the value itself)."""
        documents = find_documents(output)
        if documents:
            self._found(run_id, documents, search=True)

    @override
    def on_chat_model_start(
        self, serialized: Any, messages: list[list[Any]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Note an open chat model run and its prompt."""
        prompt = prompt_text(messages)
        self._llm_started(run_id, kwargs.get("parent_run_id"), prompt, tool_texts(messages))

    @override
    def on_llm_start(
        self, serialized: Any, prompts: list[str], *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Note an open completion-model run and its prompt."""
        self._llm_started(run_id, kwargs.get("parent_run_id"), prompt_text(prompts), [])

    def _llm_started(
        self, run_id: UUID, parent_run_id: UUID | None, prompt: str, tools: list[str]
    ) -> None:
        capture = self._start(run_id, parent_run_id, "llm")
        if capture is not None:
            with self._lock:
                capture.llm_started(run_id, prompt, tools)

    @override
    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Keep the generation."""
        with self._lock:
            capture = self._lookup(run_id)
            if capture is not None:
                capture.llm_ended(run_id, response)

    @override
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget a failed LLM run."""
        with self._lock:
            capture = self._lookup(run_id)
            if capture is not None:
                capture.llm_failed(run_id)

    @override
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Note a LangGraph interrupt (`interrupt()`, human-in-the-loop): the run pauses with no
        answer yet, and the call that resumes it is the one to attribute."""
        if not is_interrupt(error):
            return
        with self._lock:
            capture = self._lookup(run_id)
            if capture is not None:
                capture.interrupted = True

    @override
    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Keep documents handed in with `add_sources`."""
        if name != SOURCES_EVENT or not isinstance(data, dict):
            return
        documents = [d for d in data.get("documents", ()) if isinstance(d, Document)]
        with self._lock:
            capture = self._lookup(run_id)
            if capture is not None:
                capture.explicit.extend(documents)
                capture.searched = True


def is_interrupt(error: BaseException) -> bool:
    """A LangGraph `GraphInterrupt` (matched by name: langgraph is no dependency here)."""
    return any(kind.__name__ == "GraphInterrupt" for kind in type(error).__mro__)


class CaptureHandler(Collector):
    """Collects one call's documents and LLM answers: no correlation needed."""

    run_inline: bool = True  # cheap appends; no need for an executor hop in async runs

    def __init__(self, thread: Hashable | None = None, threads: Threads[Document] | None = None):
        super().__init__()
        self.capture = Capture(thread=thread)
        if threads is not None:
            self.capture.history = threads.history(thread)

    def sources(self, inputs: Any = None) -> tuple[list[Source], str | None]:
        """The documents captured so far (and those in the call's `inputs`), and the first
        retriever query."""
        with self._lock:
            queries = self.capture.queries
            return self.capture.sources(inputs), (queries[0] if queries else None)

    def job(self, output: Any, question: str | None, inputs: Any = None) -> Job:
        """The job for the call's `output` (see `build_job`)."""
        with self._lock:
            return build_job(self.capture, output, question, inputs)

    def remember(self, threads: Threads[Document], inputs: Any, answer: str) -> None:
        """Keep what the call found for its thread's later calls (see `remember`)."""
        with self._lock:
            remember(threads, self.capture, inputs, answer)

    def final_output(self, default: Any) -> Any:
        """What the outermost run returned (a graph's final state, as `invoke` returns it,
        whatever its stream yielded), or `default` when it has not ended."""
        with self._lock:
            return self.capture.final_output[0] if self.capture.final_output else default

    @override
    def _enter(self, run_id: UUID, parent_run_id: UUID | None) -> Capture | None:
        return self.capture

    @override
    def _lookup(self, run_id: UUID) -> Capture | None:
        return self.capture
