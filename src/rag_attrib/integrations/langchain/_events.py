"""The typed ("v3") event streams of a wrapped graph or chat model, attributed.

`stream_events(version="v3")` returns the bound Runnable's own stream object (a LangGraph
`GraphRunStream`, a `ChatModelStream`), which a wrapper cannot re-yield chunk by chunk. So the
wrapper hands the call to its bound Runnable with one more callback: a handler that attributes
the run when it ends and delivers the result as the wrapper's other calls do (`last_result`,
`on_result`, exporters). The stream the user reads is the bound Runnable's, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any
from uuid import UUID

from langchain_core.documents import Document
from typing_extensions import override

from ...engine import Attributor
from ...export.base import Exporter
from ...results import AttributionResult
from .._pipeline import Reporter
from .._threads import Threads
from ._read import thread_of
from .handler import AttributionCallbackHandler, _Root

__all__ = ["EventsHandler"]


class EventsHandler(AttributionCallbackHandler):
    """Attributes the one run of a v3 event stream and passes its result to `deliver`."""

    def __init__(
        self,
        attributor: Attributor | None,
        *,
        exporters: tuple[Exporter, ...],
        timeout: float | None,
        citation_options: Any,
        reporter: Reporter,
        deliver: Callable[[AttributionResult], object],
        threads: Threads[Document],
    ) -> None:
        super().__init__(attributor, exporters=exporters, max_results=1, attach=False)
        self.timeout = timeout  # already checked by the wrapper
        self.citation_options = citation_options
        self._reporter = reporter  # the wrapper's: a cause is logged once per wrapper
        self._deliver = deliver
        self._threads = threads  # the wrapper's: a thread's calls share what they found

    @override
    def _thread(self, name: str | None, metadata: Any) -> Hashable | None:
        return thread_of(metadata)  # keyed as the wrapper's other calls key it

    def _finish(self, run_id: UUID, root: _Root, outputs: Any, inputs: Any) -> None:
        super()._finish(run_id, root, outputs, inputs)
        with self._lock:
            result = self._results.get(run_id)
        if result is not None:
            self._deliver(result)
