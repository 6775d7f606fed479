"""The Ray engine: a Ray Data pipeline, read -> map_batches(actors) -> write_parquet.

Each actor holds one Attributor (one model) for its life; Ray schedules the batches. A resumed
run reads the ids already in OUT/results (a file a killed run left half-written has no Parquet
footer and is deleted first) and the actors skip those records, so nothing is attributed or
written twice. JSONL is read with `read_text`, one row per line, and parsed by the actors:
`read_json` would stop the whole run at one malformed line and rejects records whose sources
mix strings and objects.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import import_optional
from .output import result_files, result_schema
from .records import BadRecord, Record, _content_id, input_format, parse_record
from .work import attribute_rows, make_attributor

__all__ = ["AttributeBatch", "completed_ids", "run_ray"]


def _ray() -> Any:
    ray = import_optional("ray", extra="ray", feature="The Ray engine")
    import_optional("ray.data", extra="ray", feature="The Ray engine")  # ray.data is a submodule
    return ray


def completed_ids(out: Path) -> set[str]:
    """The ids in OUT's finished results files; unreadable (half-written) files are deleted."""
    import pyarrow.parquet as pq

    done: set[str] = set()
    for path in result_files(out):
        try:
            table = pq.read_table(path, columns=["id"])
        except Exception:  # any unreadable file is one a killed run left half-written
            path.unlink(missing_ok=True)
            continue
        done.update(table.column("id").to_pylist())
    return done


class AttributeBatch:
    """The `map_batches` callable: one Attributor per actor, a batch of rows in, rows out."""

    def __init__(
        self,
        *,
        model: str | None,
        threads: int | None,
        done: frozenset[str],
        max_source_chars: int,
        text_lines: bool,
    ) -> None:
        self.attributor = make_attributor(model, threads)
        self.done = done
        self.max_source_chars = max_source_chars
        self.text_lines = text_lines

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        items = [item for item in map(self._parse, batch.to_pylist()) if item.id not in self.done]
        results, _ = attribute_rows(self.attributor, items)
        for row in results:
            attribution = row["attribution"]
            row["attribution"] = None if attribution is None else json.dumps(attribution)
        return pa.Table.from_pylist(results, schema=result_schema())

    def _parse(self, row: dict[str, Any]) -> Record | BadRecord:
        if not self.text_lines:
            return parse_record(row, max_source_chars=self.max_source_chars)
        line = row["text"]
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            reason = f"not valid JSON ({exc.msg}, column {exc.colno}): {line[:60]!r}"
            return BadRecord(_content_id(line), reason)
        return parse_record(data, max_source_chars=self.max_source_chars)


def run_ray(
    source: Path,
    out: Path,
    *,
    model: str | None,
    actors: int,
    threads: int | None,
    batch_size: int,
    max_source_chars: int,
    address: str | None,
) -> int:
    """Attribute the records of `source` not yet in OUT/results, with `actors` Ray actors.

    Returns:
        How many records an earlier run had finished.
    """
    ray = _ray()
    cores = os.cpu_count() or 1
    threads = threads or max(1, cores // actors)
    started_here = not ray.is_initialized()
    if started_here:
        # a local Ray gets one more logical CPU than the actors hold, for the read and write tasks
        kwargs: dict[str, Any] = (
            {"address": address}
            if address
            else {"address": "local", "num_cpus": actors * threads + 1}
        )
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="WARNING", **kwargs)
    try:
        done = frozenset(completed_ids(out))
        text_lines = input_format(source) == "jsonl"
        ds = ray.data.read_text(str(source)) if text_lines else ray.data.read_parquet(str(source))
        ds = ds.map_batches(
            AttributeBatch,
            fn_constructor_kwargs={
                "model": model,
                "threads": threads,
                "done": done,
                "max_source_chars": max_source_chars,
                "text_lines": text_lines,
            },
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=threads,
        )
        ds.write_parquet(str(out / "results"))
    finally:
        if started_here:
            ray.shutdown()
    return len(done)
