"""`run_each`: every item once, on several threads, errors back in the caller, fork-safe."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from rag_attrib.parallel import available_cpus, run_each


@pytest.mark.parametrize(("count", "threads"), [(0, 4), (1, 4), (5, 1), (7, 3), (40, 8)])
def test_every_item_runs_once(count: int, threads: int) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def record(i: int) -> None:
        with lock:
            seen.append(i)

    run_each(record, count, threads)
    assert sorted(seen) == list(range(count))


def test_items_run_at_once_on_several_threads() -> None:
    """Two slow items take about one item's time, and run on two different threads."""
    names: set[str] = set()
    both_running = threading.Barrier(2, timeout=5)

    def slow(i: int) -> None:
        names.add(threading.current_thread().name)
        both_running.wait()  # fails unless the other item runs at the same time

    run_each(slow, 2, 2)
    assert len(names) == 2


def test_the_first_error_reaches_the_caller_and_stops_the_rest() -> None:
    started: list[int] = []

    def fail_on_two(i: int) -> None:
        started.append(i)
        if i == 2:
            msg = "item 2"
            raise ValueError(msg)
        time.sleep(0.001)

    with pytest.raises(ValueError, match="item 2"):
        run_each(fail_on_two, 200, 2)
    assert len(started) < 200


def _in_child(queue: multiprocessing.Queue[list[int]]) -> None:
    out: list[int] = []
    lock = threading.Lock()

    def record(i: int) -> None:
        with lock:
            out.append(i)

    run_each(record, 6, 3)
    queue.put(sorted(out))


def test_a_forked_child_gets_its_own_threads() -> None:
    """The parent's helper threads do not exist in a forked child: it must not wait on them."""
    run_each(lambda i: None, 4, 3)  # the parent's pool is up
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[int]] = context.Queue()
    child = context.Process(target=_in_child, args=(queue,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == list(range(6))


def test_available_cpus_is_positive() -> None:
    assert available_cpus() >= 1
