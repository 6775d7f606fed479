"""`DaemonPool`: background threads that never hold up the interpreter's exit.

`ThreadPoolExecutor` joins its threads at exit, so one stuck embedder call (a hung model
server, a deadlocked native library) would keep the user's program from ever exiting. These
threads are daemons: at exit, queued work is cancelled and running work is abandoned.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["DaemonPool", "LazyPool"]

T = TypeVar("T")

_Item = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...]]


class DaemonPool:
    """Up to `size` daemon threads running submitted calls in order.

    Args:
        size: the most threads (started only as work arrives).
        name: thread name prefix.
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = max(1, size)
        self._name = name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._closed = False
        _pools.add(self)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue `fn(*args)`; the future is cancelled if the pool shuts down first.

        Raises:
            RuntimeError: the pool was shut down.
        """
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                msg = f"{self._name} workers are shut down"
                raise RuntimeError(msg)
            self._queue.put((future, fn, args))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as exc:  # the caller reads it from the future
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del item, future, fn, args
            self._idle.release()

    def shutdown(self, timeout: float | None = None) -> bool:
        """Cancel queued work, then wait up to `timeout` s (None: for ever) for running work.

        Returns:
            True if no thread of the pool is left running.
        """
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        return not any(thread.is_alive() for thread in threads)

    @property
    def threads(self) -> list[threading.Thread]:
        """The pool's threads that are still alive."""
        with self._lock:
            return [t for t in self._threads if t.is_alive()]


class LazyPool:
    """A process-wide `DaemonPool`, made on first use and forgotten in a forked child.

    A forked child inherits the pool but not its threads: work queued there would never run,
    so the child starts a fresh pool when it first needs one.

    Args:
        size: the pool's size, asked when the pool is made.
        name: thread name prefix.
    """

    def __init__(self, size: Callable[[], int], name: str) -> None:
        self._size = size
        self._name = name
        self._pool: DaemonPool | None = None
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def get(self) -> DaemonPool:
        """The pool, made now if there is none."""
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = DaemonPool(self._size(), self._name)
                pool = self._pool
        return pool

    def take(self) -> DaemonPool | None:
        """The pool, if any, which is no longer this one's (the next `get` makes a new one)."""
        with self._lock:
            pool, self._pool = self._pool, None
        return pool

    def _forget(self) -> None:
        self._pool = None
        # a thread of the parent may have held the lock at the fork; it is not in the child
        self._lock = threading.Lock()


_pools: weakref.WeakSet[DaemonPool] = weakref.WeakSet()


@atexit.register
def _at_exit() -> None:
    # cancel what has not started; daemon threads still running die with the process
    for pool in list(_pools):
        pool.shutdown(timeout=0)
