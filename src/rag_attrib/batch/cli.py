"""The `rag-attrib batch` subcommand: argument parsing only; the work is `run_batch`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .output import FORMATS
from .records import MAX_SOURCE_CHARS

__all__ = ["add_batch_command"]


def add_batch_command(commands: Any) -> None:
    """Add `batch` to the CLI's subcommands (an argparse `_SubParsersAction`)."""
    batch = commands.add_parser(
        "batch",
        help="attribute a JSONL or Parquet file of logged records, resumably, on all cores or Ray",
        description=(
            "Attribute every {id, answer, sources, question} record (or JSONLExporter line) of "
            "IN into the folder --out: results/ (one row per record), sentences/ (one row per "
            "answer sentence), errors.jsonl and summary.json. Run it again on the same --out "
            "to finish a run that was stopped."
        ),
    )
    batch.add_argument("input", metavar="IN", help="a .jsonl file, or a .parquet file or folder")
    batch.add_argument("--out", metavar="DIR", required=True, help="the output folder")
    batch.add_argument("--format", choices=FORMATS, default="jsonl", help="output format")
    batch.add_argument(
        "--engine", choices=("local", "ray"), default="local", help="process pool or Ray Data"
    )
    batch.add_argument(
        "--workers", type=int, metavar="N", help="processes or Ray actors (default: the cores)"
    )
    batch.add_argument(
        "--threads", type=int, metavar="N", help="encoder threads per worker (cores / workers)"
    )
    batch.add_argument(
        "--chunk-size", type=int, default=32, metavar="N", help="records per output part"
    )
    batch.add_argument(
        "--batch-size", type=int, default=16, metavar="N", help="records per Ray batch"
    )
    batch.add_argument(
        "--max-source-chars",
        type=int,
        default=MAX_SOURCE_CHARS,
        metavar="N",
        help=f"a record with a longer source goes to errors.jsonl (default {MAX_SOURCE_CHARS:,})",
    )
    batch.add_argument("--model", metavar="NAME", help="sentence-transformers model name or path")
    batch.add_argument("--ray-address", metavar="ADDR", help="an existing Ray cluster")
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    batch.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from . import run_batch

    summary = run_batch(
        args.input,
        args.out,
        engine=args.engine,
        fmt=args.format,
        model=args.model,
        workers=args.workers,
        threads=args.threads,
        chunk_size=args.chunk_size,
        batch_size=args.batch_size,
        max_source_chars=args.max_source_chars,
        ray_address=args.ray_address,
        progress=None if args.quiet else sys.stderr,
    )
    if not args.quiet:
        rate = f"{summary.records_per_second:.1f} records/s"
        print(f"{summary.line()} ({summary.seconds:.1f} s, {rate}) -> {args.out}", file=sys.stderr)
        if summary.errors:
            print(f"errors: {args.out}/errors.jsonl", file=sys.stderr)
    return 0
