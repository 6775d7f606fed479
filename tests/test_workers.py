"""`LazyPool`: one process-wide daemon pool, made on first use, fresh after a fork."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from rag_attrib.workers import LazyPool


def test_one_pool_until_taken() -> None:
    sizes = []

    def size() -> int:
        sizes.append(1)
        return 2

    lazy = LazyPool(size, "test-lazy")
    assert sizes == []  # nothing made before it is needed
    pool = lazy.get()
    assert lazy.get() is pool and sizes == [1]
    assert pool.submit(lambda: 41 + 1).result(timeout=10) == 42
    assert lazy.take() is pool and lazy.take() is None
    assert pool.shutdown(timeout=5)
    fresh = lazy.get()
    assert fresh is not pool and fresh.submit(lambda: "ok").result(timeout=10) == "ok"
    fresh.shutdown(timeout=5)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
def test_a_forked_child_gets_a_pool_that_runs() -> None:
    lazy = LazyPool(lambda: 1, "test-fork")
    parent = lazy.get()
    assert parent.submit(lambda: 1).result(timeout=10) == 1
    pid = os.fork()
    if pid == 0:  # the child: the inherited pool's thread is gone; a new pool must run work
        try:
            child = lazy.get()
            ok = child is not parent and child.submit(lambda: 7).result(timeout=10) == 7
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    parent.shutdown(timeout=5)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
def test_a_fork_while_the_lock_is_held_does_not_deadlock_the_child() -> None:
    lazy = LazyPool(lambda: 1, "test-fork-lock")
    with lazy._lock:  # another thread of the parent in the middle of get() at the fork
        pid = os.fork()
        if pid == 0:
            signal.alarm(20)  # a deadlocked child is killed, and the test fails
            child = lazy.get()
            os._exit(0 if child.submit(lambda: 7).result(timeout=10) == 7 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
