"""The `rag-attrib batch` subcommand: argument parsing only; the work is `run_batch`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
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
    batch.add_argument(
        "input",
        metavar="IN",
        nargs="?",
        help="a .jsonl file, a .parquet file or folder, or an OTLP/JSON dump of traces (.json)",
    )
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
    phoenix = batch.add_argument_group("Arize Phoenix")
    phoenix.add_argument("--phoenix", metavar="URL", help="read the traces of a Phoenix server")
    phoenix.add_argument("--project", default="default", help="the Phoenix project to read")
    phoenix.add_argument(
        "--annotate",
        action="store_true",
        help="log each result to --phoenix as a rag_attrib.groundedness span annotation",
    )
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    batch.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from . import run_batch

    source = _input(args)
    summary = run_batch(
        source,
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
    if args.annotate:
        from .phoenix import annotate_phoenix

        sent = annotate_phoenix(args.phoenix, args.out)
        if not args.quiet:
            print(f"{sent} annotations logged to {args.phoenix}", file=sys.stderr)
    return 0


def _input(args: argparse.Namespace) -> str:
    """The batch input: IN, or the records of a trace dump or a Phoenix project, written once
    beside --out (a resumed run reads the same snapshot)."""
    from ..cli import InputError

    if args.annotate and not args.phoenix:
        raise InputError("--annotate needs --phoenix URL (the server to log to)")
    if args.input is not None and not args.input.endswith(".json"):
        return str(args.input)
    if args.input is None and not args.phoenix:
        raise InputError("batch needs IN (a .jsonl, .parquet or .json trace dump) or --phoenix URL")
    from .phoenix import spans_from_otlp_json, spans_from_phoenix, write_records

    snapshot = Path(str(args.out).rstrip("/\\") + ".records.jsonl")
    if not snapshot.exists():
        if args.input is not None:
            spans = spans_from_otlp_json(args.input)
        else:
            spans = spans_from_phoenix(args.phoenix, args.project)
        tmp = snapshot.with_name(snapshot.name + ".tmp")
        n = write_records(spans, tmp)
        tmp.replace(snapshot)
        if not args.quiet:
            print(f"{n} traces with documents and an answer -> {snapshot}", file=sys.stderr)
    return str(snapshot)
