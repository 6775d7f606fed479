"""What the earlier calls of a conversation thread left to cite; imports no framework.

A LangGraph thread with a checkpointer carries its history from call to call, until a step
replaces old messages with an LLM's summary of them (LangChain's `SummarizationMiddleware`):
then the tool results a follow-up is answered from are gone from the state, and the summary
is an LLM's words, never evidence. `Threads` remembers, per thread, the documents its earlier
calls found and which LLM outputs rest on them (an output's opening, and the openings of the
documents its prompt showed, directly or through the outputs of LLMs behind it). A later call
of the thread then cites a remembered document only when it reached the answering LLM's
prompt, or the prompt of an LLM whose output reached it (the summary's), so a summary's
answer cites what the summary was made of, and a thread never lends documents to another.

Bounded: the most recent `max_threads` threads (least recently used dropped first), each with
its last `max_documents` documents and `max_runs` LLM outputs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ._pipeline import MIN_LLM_TEXT, opening, prompts_behind, reached

__all__ = ["History", "Threads"]

D = TypeVar("D")


@dataclass(frozen=True, slots=True)
class History(Generic[D]):
    """What a thread's earlier calls left.

    `documents` are those the calls found (oldest first); `runs` holds, for each LLM output
    that rests on some of them, `(the output's opening, the openings of those documents)`, in
    the `(output, prompt)` shape `prompts_behind` reads, so a prompt that shows the output
    counts as showing the documents.
    """

    documents: tuple[D, ...] = ()
    runs: tuple[tuple[str, str], ...] = ()


class Threads(Generic[D]):
    """Per-thread histories, bounded (an LRU over threads); safe across threads of the process.

    Args:
        text: a document's text.
        key: what makes two documents the same (e.g. their id and text).
        max_threads, max_documents, max_runs: the bounds (oldest dropped first).
    """

    def __init__(
        self,
        text: Callable[[D], str],
        key: Callable[[D], Hashable],
        *,
        max_threads: int = 128,
        max_documents: int = 50,
        max_runs: int = 32,
    ) -> None:
        self._text = text
        self._key = key
        self.max_threads = max_threads
        self.max_documents = max_documents
        self.max_runs = max_runs
        self._threads: OrderedDict[Hashable, History[D]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._threads)

    def history(self, thread: Hashable | None) -> History[D]:
        """What `thread`'s earlier calls left (empty for None or an unknown thread)."""
        if thread is None:
            return History()
        with self._lock:
            found = self._threads.get(thread)
            if found is None:
                return History()
            self._threads.move_to_end(thread)
            return found

    def remember(
        self,
        thread: Hashable | None,
        documents: Sequence[D],
        llm_runs: Sequence[tuple[str, str]],
    ) -> None:
        """Add what a finished call of `thread` found: its documents, and its LLM runs'
        `(output, prompt)` (kept only as the openings of the documents each prompt showed)."""
        if thread is None:
            return
        with self._lock:  # read, extend and store at once: two calls of a thread never race
            old = self._threads.get(thread, History())
            kept: dict[Hashable, D] = {}
            for doc in (*old.documents, *documents):
                key = self._key(doc)
                kept.pop(key, None)  # a document found again counts as recent
                kept[key] = doc
            docs = tuple(kept.values())[-self.max_documents :]
            texts = [self._text(doc) for doc in docs]
            behind = [*old.runs, *llm_runs]
            runs = list(old.runs)
            for output, prompt in llm_runs:
                probe = opening(output)
                if len(probe) < MIN_LLM_TEXT:
                    continue
                shown = "\n".join(prompts_behind(prompt, behind))
                hits = zip(texts, reached(texts, shown), strict=True)
                seen = [opening(text) for text, ok in hits if ok]
                if seen:
                    runs.append((probe, "\n".join(seen)))
            self._threads[thread] = History(docs, tuple(runs[-self.max_runs :]))
            self._threads.move_to_end(thread)
            while len(self._threads) > self.max_threads:
                self._threads.popitem(last=False)
