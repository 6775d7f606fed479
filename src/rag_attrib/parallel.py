"""`run_each`: call a function on items 0..n-1 on a few threads, the caller's among them.

The int8 encoder runs one text per ONNX Runtime run (so a vector never depends on its batch),
and for a sentence that short ONNX Runtime's own threads barely help: two cores are used
better by two runs at once, one thread each. The extra threads are daemons shared by the
process (`workers.DaemonPool`); the caller works too and returns when every item is done, so
a helper that starts late finds nothing left and a busy pool only means the caller does more.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from .workers import LazyPool

__all__ = ["available_cpus", "run_each"]

_MAX_HELPERS = 7  # more threads than this only queue for memory bandwidth on a tiny model


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class _Items:
    """Hands out item numbers, counts finished ones, keeps the first error."""

    def __init__(self, fn: Callable[[int], None], count: int) -> None:
        self._fn = fn
        self._count = count
        self._started = 0
        self._done = 0
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._all_done = threading.Event()

    def work(self) -> None:
        while True:
            with self._lock:
                if self._started >= self._count or self._error is not None:
                    return
                i = self._started
                self._started += 1
            try:
                self._fn(i)
            except BaseException as exc:  # re-raised in the caller; no new item starts
                with self._lock:
                    self._error = self._error or exc
            with self._lock:
                self._done += 1
                # nothing more will start: the last running item to finish says so
                last = self._done == self._started and (
                    self._started == self._count or self._error is not None
                )
            if last:
                self._all_done.set()

    def wait(self) -> None:
        self._all_done.wait()
        if self._error is not None:
            raise self._error


def run_each(fn: Callable[[int], None], count: int, threads: int) -> None:
    """Call `fn(i)` for each i in range(count), on up to `threads` threads at once.

    Items are handed out in order (put the slowest first). Returns when all are done;
    the first exception any call raised is raised here (items not yet started are skipped).
    """
    if count <= 0:
        return
    helpers = min(threads - 1, count - 1, _MAX_HELPERS)
    if helpers <= 0:
        for i in range(count):
            fn(i)
        return
    items = _Items(fn, count)
    pool = _pool.get()
    for _ in range(helpers):
        try:
            pool.submit(items.work)
        except RuntimeError:  # shut down at interpreter exit: the caller does the rest
            break
    items.work()
    items.wait()


_pool = LazyPool(lambda: _MAX_HELPERS, "rag_attrib-encode")
