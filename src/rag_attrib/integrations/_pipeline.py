"""What every integration does once it has an answer and its sources; imports no framework.

An adapter reads its framework's objects into a `Job`, then calls `run_job` / `arun_job`:
attribute without raising (within an optional time budget), export, and fold every fault into
the result's `error`. `Reporter` logs a call that had nothing to cite once per handler, and
`warm_attributor` gives streams an attributor only when that costs no model load.
"""

from __future__ import annotations

import asyncio
import contextvars
import html
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..embedders import Embedder
from ..engine import Attributor, default_attributor, loaded_default_attributor
from ..export.base import Exporter, export_all
from ..results import AttributionResult, Source
from ..workers import DaemonPool
from ._citations import CheckOptions, check
from ._given import GivenCitations
from ._numbering import Labels
from ._text import PROBE, collapsed

__all__ = [
    "NO_TEXT",
    "TIMED_OUT",
    "Job",
    "Reporter",
    "aattribute_job",
    "arun_job",
    "attribute_job",
    "check_job_citations",
    "check_timeout",
    "export_context",
    "export_result",
    "failed_result",
    "join_errors",
    "opening",
    "prompts_behind",
    "reached",
    "run_job",
    "shared_embedder",
    "warm_attributor",
    "with_text",
    "written_by",
]

logger = logging.getLogger("rag_attrib.integrations")

# Python 3.10 has three timeout classes (3.11 made them one).
_TIMEOUTS = (TimeoutError, asyncio.TimeoutError, FutureTimeout)

TIMED_OUT = "timed out"
"""The `error` of a result whose attribution ran past the integration's `timeout`."""


@dataclass(frozen=True, slots=True)
class Job:
    """One attribution to run: the answer, its sources, and why it may be incomplete.

    `problem` (no answer, nothing to cite...) goes into the result's `error`, and is what
    `Reporter` logs. `cited` holds citations given beside the answer text (a structured
    output's source ids, provider citation blocks); `prompt` is what the LLM was shown, whose
    source labels ("Source 1:", "Source ID: 0") say how the answer's numbers count; `labels`
    what each number can name when several tool outputs each counted afresh.
    """

    answer: str
    sources: Sequence[Source]
    question: str | None = None
    problem: str | None = None
    cited: GivenCitations | None = None
    prompt: str | None = None
    labels: Labels | None = None


NO_TEXT = (
    "the {n} sources that reached the answer hold no text (images, or empty nodes or "
    "documents), so nothing can be cited: only text is attributed"
)


def with_text(sources: Sequence[Source]) -> tuple[list[Source], str | None]:
    """The sources that hold text, and `NO_TEXT` when some were given and none does.

    An image node or an empty chunk supports no sentence: listing it would only ever show an
    empty source, and citing it an empty quote.
    """
    kept = [s for s in sources if s.text.strip()]
    return kept, (NO_TEXT.format(n=len(sources)) if sources and not kept else None)


MIN_LLM_TEXT = 20  # shorter LLM outputs ("Yes.") say nothing about where a text came from


def _flat(text: str) -> str:
    # XML entities read back: LangChain's SummarizationMiddleware shows the messages it
    # summarises as XML (`get_buffer_string(format="xml")`), "&" as "&amp;"
    text = html.unescape(text) if "&" in text else text
    return collapsed(text).strip()


def opening(text: str) -> str:
    """The first characters of `text`, spaces collapsed: what `reached` looks for."""
    return _flat(text)[:PROBE]


def reached(texts: Sequence[str], shown: str) -> list[bool]:
    """Whether each text reached an LLM that was shown `shown` (its prompt, or what a tool
    returned): the text's opening, spaces collapsed, appears there."""
    flat = _flat(shown)
    return [opening(text) in flat for text in texts]


def written_by(text: str, llm_texts: Iterable[str]) -> bool:
    """Whether an LLM of the call wrote `text`: one of `llm_texts` (long enough to tell) is in
    it. A summary a pipeline turned into a document or node is its own words, not evidence."""
    return any(len(t) >= MIN_LLM_TEXT and t in text for t in llm_texts)


def prompts_behind(prompt: str, llm_runs: Sequence[tuple[str, str]]) -> list[str]:
    """`prompt`, and the prompt of every LLM whose output reached it, and theirs in turn.

    `llm_runs` holds each LLM run's `(output text, prompt)`. An answer written from summaries
    (a map-reduce's reduce step) or from a subagent's reply rests on what those LLMs read, so
    a document counts as reaching the answer when it reached any of these prompts.

    Returns:
        The prompts, `prompt` first.
    """
    shown = [prompt]
    flat = _flat(prompt)
    pending = [(opening(text), read) for text, read in llm_runs]
    pending = [(probe, read) for probe, read in pending if len(probe) >= MIN_LLM_TEXT]
    grew = True
    while grew and pending:
        behind = [(probe, read) for probe, read in pending if probe in flat]
        pending = [(probe, read) for probe, read in pending if probe not in flat]
        shown.extend(read for _, read in behind)
        flat = " ".join([flat, *(_flat(read) for _, read in behind)])
        grew = bool(behind)
    return shown


def failed_result(answer: str, question: str | None, error: str) -> AttributionResult:
    """A result with no sentences and no sources that records `error`."""
    return AttributionResult(
        answer=answer,
        answer_sentences=(),
        sources=(),
        similarity=np.zeros((0, 0), dtype=np.float32),
        question=question,
        error=error,
    )


def join_errors(*errors: str | None) -> str | None:
    """The given errors joined with "; ", or None when there are none."""
    kept = [e for e in errors if e]
    return "; ".join(kept) if kept else None


def check_timeout(timeout: float | None) -> float | None:
    """`timeout` validated: None, or a positive finite number of seconds.

    Raises:
        ValueError: anything else (the message says what is accepted).
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        msg = f"timeout must be None or a number of seconds > 0; got {timeout!r}"
        raise ValueError(msg)
    if timeout == float("inf"):
        return None
    return float(timeout)


def shared_embedder(given: Attributor | Embedder | None) -> Embedder:
    """The embedder a framework's embeddings adapter uses, so retrieval shares attribution's.

    An `Attributor` lends its (cached) embedder; None means the shared default attributor's,
    created on first use, so the bundled model is loaded once per process.
    """
    if given is None:
        return default_attributor().embedder
    return given.embedder if isinstance(given, Attributor) else given


def warm_attributor(attributor: Attributor | None) -> Attributor | None:
    """The attributor a stream may warm: the given one, or the default only if already loaded.

    Building the default attributor loads a model, which would stall the user's stream.
    """
    return attributor if attributor is not None else loaded_default_attributor()


# --- attribute without raising ---------------------------------------------------------------

# A few daemon threads for calls with a time budget: the budget needs the work off the
# caller's thread, and a stuck encoder past its budget must not hold up the interpreter's exit.
_budget_pool = DaemonPool(4, "rag_attrib-budget")


def _engine(attributor: Attributor | None, job: Job) -> AttributionResult:
    chosen = attributor if attributor is not None else default_attributor()
    return chosen.attribute(job.answer, job.sources, job.question)


def _submit(attributor: Attributor | None, job: Job) -> Future[AttributionResult]:
    context = contextvars.copy_context()
    return _budget_pool.submit(context.run, _engine, attributor, job)


def _settle(job: Job, result: AttributionResult) -> AttributionResult:
    error = join_errors(job.problem, result.error)
    return result if error == result.error or error is None else result.with_error(error)


def _engine_failed(job: Job, exc: BaseException) -> AttributionResult:
    logger.warning("rag_attrib: attribution failed; the output is unchanged", exc_info=exc)
    error = f"attribution failed: {type(exc).__name__}: {exc}"
    return failed_result(job.answer, job.question, join_errors(job.problem, error) or error)


def _timed_out(job: Job, timeout: float) -> AttributionResult:
    logger.warning(
        "rag_attrib: attribution ran past its timeout of %.3g s; the output is returned "
        "without it (raise timeout= or pass a faster attributor)",
        timeout,
    )
    return failed_result(job.answer, job.question, join_errors(job.problem, TIMED_OUT) or "")


def attribute_job(
    attributor: Attributor | None, job: Job, *, timeout: float | None = None
) -> AttributionResult:
    """Attribute `job`; an engine failure or a timeout becomes a result with `error` set.

    Args:
        attributor: None uses the shared default over the bundled model.
        job: what to attribute.
        timeout: seconds; past it the call returns `error="timed out"`. The worker's result
            is then dropped: nothing is exported or attached after this call returned.

    Returns:
        The result, with `job.problem` in `error`; never raises an `Exception`.
    """
    try:
        if timeout is None:
            return _settle(job, _engine(attributor, job))
        future = _submit(attributor, job)
        try:
            return _settle(job, future.result(timeout))
        except _TIMEOUTS:
            future.cancel()  # not started yet (the pool was busy): it never will
            return _timed_out(job, timeout)
    except Exception as exc:  # attribution must never break the user's call
        return _engine_failed(job, exc)


async def aattribute_job(
    attributor: Attributor | None, job: Job, *, timeout: float | None = None
) -> AttributionResult:
    """`attribute_job` without blocking the event loop (the engine runs on a worker thread)."""
    future = None
    try:
        if timeout is None:
            return _settle(job, await asyncio.to_thread(_engine, attributor, job))
        future = _submit(attributor, job)
        return _settle(job, await asyncio.wait_for(asyncio.wrap_future(future), timeout))
    except _TIMEOUTS:
        if future is not None:
            future.cancel()
        return _timed_out(job, timeout or 0.0)
    except Exception as exc:  # attribution must never break the user's call
        return _engine_failed(job, exc)


# --- the answer's own citations ----------------------------------------------------------------


def check_job_citations(
    job: Job,
    result: AttributionResult,
    options: CheckOptions | None = None,
    attributor: Attributor | None = None,
) -> AttributionResult:
    """`result` with `citation_check` set when the answer cites its sources (markers in its
    text, or `job.cited`); unchanged when it cites nothing or the attribution failed.

    The check reads `result` (nothing is encoded again, unless `options.exact_support` asks
    to attribute each cited sentence again with `attributor`). A fault in it is logged once
    and added to the result's `error`; the attribution itself is kept.
    """
    if result.error and not result.answer_sentences:
        return result  # a failed or timed-out attribution has nothing to check against
    try:
        report = check(result, job.cited, job.prompt, options, attributor, job.labels)
    except Exception as exc:  # the user's call goes on without the check
        logger.warning("rag_attrib: checking the answer's citations failed", exc_info=exc)
        error = f"citation check failed: {type(exc).__name__}: {exc}"
        return result.with_error(join_errors(result.error, error) or error)
    return result if report is None else replace(result, citation_check=report)


# --- export ------------------------------------------------------------------------------------


def export_context(captured: Mapping[str, Any], framework: str, **ids: Any) -> dict[str, Any]:
    """The context exporters receive: what they captured at the call's start, plus run ids."""
    return {**captured, "framework": framework, **ids}


def export_result(
    exporters: Sequence[Exporter], result: AttributionResult, context: Mapping[str, Any]
) -> AttributionResult:
    """Export `result`; exporter failures are added to its `error`, after any error it had."""
    errors = export_all(exporters, result, context)
    if not errors:
        return result
    return result.with_error(join_errors(result.error, *errors) or "")


def run_job(
    attributor: Attributor | None,
    job: Job,
    exporters: Sequence[Exporter],
    context: Mapping[str, Any],
    *,
    timeout: float | None = None,
    citations: CheckOptions | None = None,
) -> AttributionResult:
    """Attribute, check the answer's own citations (with `citations` options), and export;
    every fault ends in the result's `error`, nothing is raised."""
    result = attribute_job(attributor, job, timeout=timeout)
    result = check_job_citations(job, result, citations, attributor)
    return export_result(exporters, result, context)


async def arun_job(
    attributor: Attributor | None,
    job: Job,
    exporters: Sequence[Exporter],
    context: Mapping[str, Any],
    *,
    timeout: float | None = None,
    citations: CheckOptions | None = None,
) -> AttributionResult:
    """`run_job` without blocking the event loop."""
    result = await aattribute_job(attributor, job, timeout=timeout)
    args = (job, result, citations, attributor)
    if citations is not None and citations.exact_support:  # it attributes again: off the loop
        result = await asyncio.to_thread(check_job_citations, *args)
    else:
        result = check_job_citations(*args)
    return export_result(exporters, result, context)


# --- say what happened -------------------------------------------------------------------------


class Reporter:
    """Logs a call's problem (nothing to cite, no answer) at WARNING once per cause.

    One per handler: a loop over a thousand questions that never retrieve logs one line,
    which names the cause and the fix; every result still carries it in `error`.

    Args:
        log: the logger to write to.
    """

    def __init__(self, log: logging.Logger = logger) -> None:
        self._log = log
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def report(self, problem: str | None) -> None:
        """Log `problem` unless this reporter already logged it; None does nothing."""
        if not problem:
            return
        with self._lock:
            if problem in self._seen:
                return
            self._seen.add(problem)
        self._log.warning("rag_attrib: %s (logged once per handler)", problem)
