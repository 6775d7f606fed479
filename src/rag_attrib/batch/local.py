"""The local engine: a process pool over the cores of this machine, streaming through the input.

Records are cut into chunks of `chunk_size` in input order; chunk k is written as part k, so a
resumed run skips the chunks whose results part exists and redoes the rest. At most two chunks
per worker are in flight, so memory stays flat however long the input is. Each worker loads
one model and runs its encoder on cores // workers threads.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

from ..engine import Attributor
from .output import result_files, write_part
from .records import BadRecord, Record, read_records
from .work import attribute_rows, make_attributor

__all__ = ["chunks", "run_chunks"]

Item = Record | BadRecord

_attributor: Attributor | None = None


def chunks(
    path: str | Path, chunk_size: int, max_source_chars: int
) -> Iterator[tuple[int, list[Item]]]:
    """Yield (chunk index, records) in input order; blank lines do not count."""
    batch: list[Item] = []
    index = 0
    for _, item in read_records(path, max_source_chars=max_source_chars):
        batch.append(item)
        if len(batch) == chunk_size:
            yield index, batch
            index, batch = index + 1, []
    if batch:
        yield index, batch


def done_chunks(out: Path) -> set[int]:
    """The chunk indexes whose results part is in place."""
    done = set()
    for path in result_files(out):
        prefix, _, number = path.stem.partition("-")
        if prefix == "part" and number.isdigit():
            done.add(int(number))
    return done


def run_chunks(
    path: str | Path,
    out: Path,
    *,
    fmt: str,
    model: str | None,
    workers: int,
    threads: int | None,
    chunk_size: int,
    max_source_chars: int,
    advance: Callable[[int], None] | None = None,
) -> None:
    """Attribute every chunk not yet done into OUT's parts.

    Args:
        workers: processes; 0 runs in this process (no pool).
        threads: encoder threads per worker; None for cores // workers.
        advance: a callable(records) told as each chunk finishes (the progress bar).
    """
    done = done_chunks(out)
    report = advance if advance is not None else (lambda n: None)
    todo = ((k, items) for k, items in chunks(path, chunk_size, max_source_chars) if k not in done)
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    if workers == 0:
        attributor = make_attributor(model, threads)
        for k, items in todo:
            report(_write_chunk(attributor, k, items, out, fmt))
        return
    # spawn: a forked child would inherit the parent's ONNX Runtime and tokenizer threads
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init, initargs=(model, threads)
    ) as pool:
        pending: set[Future[int]] = set()
        for k, items in todo:
            pending.add(pool.submit(_work, k, items, out, fmt))
            if len(pending) >= 2 * workers:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    report(future.result())
        for future in pending:
            report(future.result())


def _init(model: str | None, threads: int) -> None:
    global _attributor
    _attributor = make_attributor(model, threads)


def _work(k: int, items: list[Item], out: Path, fmt: str) -> int:
    assert _attributor is not None, "the worker initializer did not run"
    return _write_chunk(_attributor, k, items, out, fmt)


def _write_chunk(attributor: Attributor, k: int, items: list[Item], out: Path, fmt: str) -> int:
    results, sentences = attribute_rows(attributor, items)
    name = f"part-{k:06d}"
    write_part(out / "sentences", name, sentences, fmt)
    write_part(out / "results", name, results, fmt)  # last: marks the chunk done
    return len(items)
