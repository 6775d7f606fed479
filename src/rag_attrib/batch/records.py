"""Reading batch input: JSONL or Parquet, one record per line/row, validated one by one.

A record is `{id, answer, sources, question}` (sources: strings or `{id, text, metadata}`
objects) or a line written by `JSONLExporter` (`{timestamp, context, attribution}`), whose
answer, question and sources are attributed again. A bad record is never fatal: it becomes a
`BadRecord` with the reason, and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import import_optional
from ..results import Source

__all__ = [
    "MAX_SOURCE_CHARS",
    "BadRecord",
    "Record",
    "count_records",
    "input_format",
    "iter_raw",
    "parse_record",
    "read_records",
]

MAX_SOURCE_CHARS = 200_000
"""Default limit on one source's length; a longer one makes its record an error."""

# context keys of a JSONLExporter line that identify the call, in order of preference
_CONTEXT_IDS = ("id", "run_id", "otel_span_id", "span_id")


@dataclass(frozen=True, slots=True)
class Record:
    """One valid input record."""

    id: str
    answer: str
    sources: list[Source]
    question: str | None


@dataclass(frozen=True, slots=True)
class BadRecord:
    """An input record that cannot be attributed, and why."""

    id: str
    reason: str


def input_format(path: str | Path) -> str:
    """ "parquet" for a .parquet file or a folder of them, else "jsonl"."""
    p = Path(path)
    if p.suffix == ".parquet" or (p.is_dir() and any(p.glob("*.parquet"))):
        return "parquet"
    return "jsonl"


def iter_raw(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (row number from 0, raw record) streaming through the input.

    A JSONL line that is not JSON yields a `BadRecord` in place of the raw record; blank lines
    are skipped but counted, so row numbers stay the same on every pass.
    """
    if input_format(path) == "parquet":
        yield from enumerate(_parquet_rows(Path(path)))
        return
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for row, line in enumerate(f):
            if not line.strip():
                continue
            try:
                yield row, json.loads(line)
            except json.JSONDecodeError as exc:
                reason = f"line {row + 1}: not valid JSON ({exc.msg}, column {exc.colno})"
                yield row, BadRecord(_content_id(line.rstrip("\r\n")), reason)


def count_records(path: str | Path) -> int:
    """The number of records in the input (non-blank lines, or Parquet rows), cheaply."""
    if input_format(path) == "parquet":
        pq = _pyarrow_parquet()
        return sum(pq.ParquetFile(f).metadata.num_rows for f in _parquet_files(Path(path)))
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def read_records(
    path: str | Path, *, max_source_chars: int = MAX_SOURCE_CHARS
) -> Iterator[tuple[int, Record | BadRecord]]:
    """Yield (row, `Record` or `BadRecord`) for every record of a JSONL or Parquet input."""
    for row, raw in iter_raw(path):
        if isinstance(raw, BadRecord):
            yield row, raw
        else:
            yield row, parse_record(raw, max_source_chars=max_source_chars)


def parse_record(data: Any, *, max_source_chars: int = MAX_SOURCE_CHARS) -> Record | BadRecord:
    """Validate one raw record (a dict from JSON or a Parquet row).

    The id is the record's `id`; for an exporter line, the first of `context.id`,
    `context.run_id`, `context.otel_span_id`; failing those, a hash of the record's content
    (so the same record gets the same id on every engine and every run).
    """
    if not isinstance(data, Mapping):
        return BadRecord(
            _content_id(data), "expected a JSON object {id, answer, sources, question}"
        )
    record_id = _record_id(data)
    body: Mapping[str, Any] = data
    if isinstance(data.get("attribution"), Mapping) and "answer" not in data:
        body = data["attribution"]  # a JSONLExporter line: attribute its inputs again
    try:
        return Record(record_id, *_fields(body, max_source_chars))
    except _Invalid as exc:
        return BadRecord(record_id, str(exc))


class _Invalid(ValueError):
    pass


def _fields(body: Mapping[str, Any], limit: int) -> tuple[str, list[Source], str | None]:
    if "answer" not in body:
        raise _Invalid("missing field 'answer'")
    if "sources" not in body:
        raise _Invalid("missing field 'sources'")
    answer, sources, question = body["answer"], body["sources"], body.get("question")
    if not isinstance(answer, str):
        raise _Invalid(f"'answer' must be a string, got {_kind(answer)}")
    if question is not None and not isinstance(question, str):
        raise _Invalid(f"'question' must be a string or null, got {_kind(question)}")
    if isinstance(sources, (str, bytes)) or not hasattr(sources, "__iter__"):
        raise _Invalid(f"'sources' must be a list of strings or {{id, text}}, got {_kind(sources)}")
    out = []
    for k, item in enumerate(sources):
        source = _source(item, k)
        if len(source.text) > limit:
            msg = (
                f"sources[{k}] has {len(source.text):,} characters, over the limit of "
                f"{limit:,} (--max-source-chars): split it into chunks"
            )
            raise _Invalid(msg)
        out.append(source)
    return answer, out, question


def _source(item: Any, k: int) -> Source:
    if isinstance(item, str):
        return Source(id=str(k), text=item)
    if isinstance(item, Mapping):
        text = item.get("text")
        if not isinstance(text, str):
            raise _Invalid(f"sources[{k}].text must be a string, got {_kind(text)}")
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise _Invalid(f"sources[{k}].metadata must be an object, got {_kind(metadata)}")
        source_id = item.get("id")
        return Source(id=str(k if source_id is None else source_id), text=text, metadata=metadata)
    raise _Invalid(f"sources[{k}] must be a string or an object with a 'text' string")


def _record_id(data: Mapping[str, Any]) -> str:
    value = data.get("id")
    if value is None and isinstance(data.get("context"), Mapping):
        context = data["context"]
        value = next((context[k] for k in _CONTEXT_IDS if context.get(k) is not None), None)
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return _content_id(data)


def _content_id(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return "sha1-" + hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# --- Parquet ------------------------------------------------------------------------------------


def _pyarrow_parquet() -> Any:
    return import_optional("pyarrow.parquet", extra="parquet", feature="Parquet input or output")


def _parquet_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.parquet")) if path.is_dir() else [path]


def _parquet_rows(path: Path, batch_rows: int = 256) -> Iterator[dict[str, Any]]:
    pq = _pyarrow_parquet()
    for file in _parquet_files(path):
        for batch in pq.ParquetFile(file).iter_batches(batch_size=batch_rows):
            yield from batch.to_pylist()
