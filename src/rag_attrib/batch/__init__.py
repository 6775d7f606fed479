"""Attribute logged traffic in bulk: JSONL or Parquet in, a resumable output folder out.

    >>> from rag_attrib.batch import run_batch
    >>> summary = run_batch("traffic.jsonl", "attributed/", fmt="parquet")  # doctest: +SKIP
    >>> summary.unsupported_rate  # doctest: +SKIP

The local engine (default) uses a process pool over all cores; `engine="ray"` runs the same
work as a Ray Data pipeline on a local Ray or a cluster (`pip install 'rag-attrib[ray]'`).
Running again on the same output folder finishes what a killed run left, without redoing or
duplicating a record. See `output` for the folder's layout.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import IO

from ..errors import ConfigError
from .output import (
    FORMATS,
    BatchSummary,
    OutputMismatchError,
    check_settings,
    finalize,
    read_results,
    remove_temporaries,
)
from .records import MAX_SOURCE_CHARS, BadRecord, Record, count_records, read_records

__all__ = [
    "ENGINES",
    "FORMATS",
    "MAX_SOURCE_CHARS",
    "BadRecord",
    "BatchSummary",
    "OutputMismatchError",
    "Record",
    "read_records",
    "read_results",
    "run_batch",
]

ENGINES = ("local", "ray")


def run_batch(
    input: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    engine: str = "local",
    fmt: str = "jsonl",
    model: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    chunk_size: int = 32,
    batch_size: int = 16,
    max_source_chars: int = MAX_SOURCE_CHARS,
    ray_address: str | None = None,
    progress: IO[str] | None = None,
) -> BatchSummary:
    """Attribute every record of `input` into the folder `out` (resuming a run found there).

    Args:
        input: a JSONL file or a Parquet file (or folder of them); see `records`.
        out: the output folder; created if missing.
        engine: "local" (a process pool) or "ray" (Ray Data).
        fmt: "jsonl" or "parquet" (needs pyarrow); Ray always writes Parquet.
        model: None for the bundled model, or a sentence-transformers name or path.
        workers: local processes (0 runs in this process) or Ray actors; None for the cores.
        threads: encoder threads per worker; None for cores // workers.
        chunk_size: records per output part (local engine; fixed for the life of `out`).
        batch_size: records per Ray batch.
        max_source_chars: a record with a longer source is an error, not attributed.
        ray_address: an existing Ray cluster (`ray.init(address=...)`); None starts one.
        progress: where to draw the progress bar (local engine); None draws none.

    Returns:
        The summary of everything in `out` (this run and the runs it resumed).

    Raises:
        ConfigError: an unknown engine or format, or a bad number.
        OutputMismatchError: `out` holds a run of other settings.
    """
    if engine not in ENGINES:
        msg = f"engine must be one of {', '.join(map(repr, ENGINES))}; got {engine!r}"
        raise ConfigError(msg)
    if engine == "ray":
        fmt = "parquet"
    if fmt not in FORMATS:
        msg = f"fmt must be one of {', '.join(map(repr, FORMATS))}; got {fmt!r}"
        raise ConfigError(msg)
    for name, value, low in (("chunk_size", chunk_size, 1), ("batch_size", batch_size, 1)):
        if value < low:
            raise ConfigError(f"{name} must be >= {low}; got {value}")
    source, folder = Path(input), Path(out)
    if not source.exists():
        raise FileNotFoundError(f"no input at {source}")
    cores = os.cpu_count() or 1
    n_workers = cores if workers is None else workers
    settings = {
        "input": str(source.resolve()),
        "input_bytes": _size(source),
        "engine": engine,
        "format": fmt,
        "model": model,
        "max_source_chars": max_source_chars,
        **({"chunk_size": chunk_size} if engine == "local" else {}),
    }
    started = time.monotonic()
    check_settings(folder, settings)
    remove_temporaries(folder)
    resumed = sum(1 for _ in read_results(folder)) if engine == "local" else 0
    if engine == "ray":
        from .ray_engine import run_ray

        resumed = run_ray(
            source,
            folder,
            model=model,
            actors=max(1, n_workers),
            threads=threads,
            batch_size=batch_size,
            max_source_chars=max_source_chars,
            address=ray_address,
        )
    else:
        todo = count_records(source) - resumed
        _run_local(
            source,
            folder,
            fmt,
            model,
            n_workers,
            threads,
            chunk_size,
            max_source_chars,
            progress,
            todo,
        )
    return finalize(folder, fmt, time.monotonic() - started, resumed)


def _run_local(
    source: Path,
    folder: Path,
    fmt: str,
    model: str | None,
    workers: int,
    threads: int | None,
    chunk_size: int,
    max_source_chars: int,
    stream: IO[str] | None,
    todo: int,
) -> None:
    from ..cli import Progress
    from .local import run_chunks

    bar = Progress(todo, stream or sys.stderr, enabled=stream is not None)
    run_chunks(
        source,
        folder,
        fmt=fmt,
        model=model,
        workers=workers,
        threads=threads,
        chunk_size=chunk_size,
        max_source_chars=max_source_chars,
        advance=bar.advance,
    )
    bar.close()


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in sorted(path.glob("*.parquet")))
    return path.stat().st_size
