"""The output folder of a batch run, written so that a killed run can resume exactly.

    OUT/_batch.json            the run's settings (a resume must match them)
    OUT/results/part-*.EXT     one row per record: id, error, counts, attribution
    OUT/sentences/part-*.EXT   one row per answer sentence (same part names)
    OUT/errors.jsonl           id and reason of every record that was not attributed
    OUT/summary.json           records, sentences, unsupported rate, errors

A part is written to a temporary name and renamed into place, so a part either holds every
row of its records or does not exist; the results part is renamed last and is what marks its
records done. The errors file and the summary are rebuilt from the results at the end.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import RagAttribError
from .records import _pyarrow_parquet
from .work import RESULT_COLUMNS, SENTENCE_COLUMNS, sentence_rows_of

__all__ = [
    "FORMATS",
    "BatchSummary",
    "OutputMismatchError",
    "check_settings",
    "finalize",
    "read_results",
    "result_files",
    "result_schema",
    "sentence_schema",
    "write_part",
]

FORMATS = ("jsonl", "parquet")
_TMP = ".tmp-"


class OutputMismatchError(RagAttribError, ValueError):
    """The output folder holds a run with other settings; the message says which."""


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What a batch run produced (also written to OUT/summary.json)."""

    records: int
    attributed: int
    errors: int
    sentences: int
    unsupported: int
    seconds: float
    out: str
    resumed: int = 0
    """Records an earlier run had already finished (this run skipped them)."""

    @property
    def unsupported_rate(self) -> float:
        """Unsupported answer sentences / all answer sentences (0 when there are none)."""
        return self.unsupported / self.sentences if self.sentences else 0.0

    @property
    def records_per_second(self) -> float:
        """Records this run finished, per second of this run."""
        return (self.records - self.resumed) / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict, with the rate added."""
        rates = {
            "unsupported_rate": self.unsupported_rate,
            "records_per_second": self.records_per_second,
        }
        return {**asdict(self), **rates}

    def line(self) -> str:
        """One line for a terminal."""
        return (
            f"{self.records} records ({self.attributed} attributed, {self.errors} errors), "
            f"{self.sentences} answer sentences, {self.unsupported_rate:.1%} unsupported"
        )


def check_settings(out: Path, settings: dict[str, Any]) -> bool:
    """Record the run's settings in OUT, or check them against an earlier run's.

    Returns:
        True when OUT already held a run (this one resumes it).

    Raises:
        OutputMismatchError: OUT holds a run made with other settings, or is not a batch output.
    """
    marker = out / "_batch.json"
    if marker.is_file():
        before = json.loads(marker.read_text(encoding="utf-8"))
        changed = sorted(k for k in settings if before.get(k) != settings[k])
        if changed:
            what = ", ".join(f"{k} {before.get(k)!r} -> {settings[k]!r}" for k in changed)
            msg = f"{out} holds a run with other settings ({what}): use a new output folder"
            raise OutputMismatchError(msg)
        return True
    if out.exists() and any(out.iterdir()):
        msg = f"{out} is not empty and holds no batch run: use a new or empty output folder"
        raise OutputMismatchError(msg)
    (out / "results").mkdir(parents=True, exist_ok=True)
    (out / "sentences").mkdir(exist_ok=True)
    _atomic_text(marker, json.dumps(settings, indent=1) + "\n")
    return False


def write_part(folder: Path, name: str, rows: list[dict[str, Any]], fmt: str) -> Path:
    """Write rows to folder/name.fmt atomically (temporary file, then rename)."""
    path = folder / f"{name}.{fmt}"
    tmp = folder / f"{_TMP}{name}-{uuid.uuid4().hex[:8]}.{fmt}"
    if fmt == "parquet":
        _parquet_table(rows, sentences=folder.name == "sentences", path=tmp)
    else:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def remove_temporaries(out: Path) -> None:
    """Delete the temporary files a killed run left behind."""
    for folder in (out / "results", out / "sentences"):
        for tmp in folder.glob(f"{_TMP}*"):
            tmp.unlink(missing_ok=True)


def result_files(out: Path) -> list[Path]:
    """The finished results parts, in name order."""
    folder = out / "results"
    return sorted(
        p for p in folder.iterdir() if not p.name.startswith(".") and p.suffix[1:] in FORMATS
    )


def read_results(out: Path, *, attribution: bool = False) -> Iterator[dict[str, Any]]:
    """Yield the result rows of every finished part (without `attribution` unless asked)."""
    for path in result_files(out):
        yield from _read_rows(path, attribution=attribution)


def finalize(out: Path, fmt: str, seconds: float, resumed: int = 0) -> BatchSummary:
    """Fill in missing sentence parts, rebuild errors.jsonl and summary.json, one part at a time."""
    records = errors = sentences = unsupported = 0
    tmp = out / f"{_TMP}errors.jsonl"
    with open(tmp, "w", encoding="utf-8") as error_file:
        for path in result_files(out):
            sentence_part = out / "sentences" / f"{path.stem}.{fmt}"
            missing = not sentence_part.exists()
            derived: list[dict[str, Any]] = []
            for row in _read_rows(path, attribution=missing):
                records += 1
                if row["error"] is not None:
                    errors += 1
                    line = {"id": row["id"], "reason": row["error"], "part": path.name}
                    error_file.write(json.dumps(line, ensure_ascii=False) + "\n")
                sentences += int(row["sentences"])
                unsupported += int(row["unsupported"])
                if missing:
                    derived.extend(sentence_rows_of(row))
            if missing:
                write_part(out / "sentences", path.stem, derived, fmt)
    os.replace(tmp, out / "errors.jsonl")
    summary = BatchSummary(
        records=records,
        attributed=records - errors,
        errors=errors,
        sentences=sentences,
        unsupported=unsupported,
        seconds=seconds,
        out=str(out),
        resumed=resumed,
    )
    _atomic_text(out / "summary.json", json.dumps(summary.to_dict(), indent=1) + "\n")
    return summary


def _read_rows(path: Path, *, attribution: bool) -> Iterator[dict[str, Any]]:
    if path.suffix == ".parquet":
        pq = _pyarrow_parquet()
        columns = [*RESULT_COLUMNS, "attribution"] if attribution else list(RESULT_COLUMNS)
        for batch in pq.ParquetFile(path).iter_batches(batch_size=256, columns=columns):
            yield from batch.to_pylist()
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if not attribution:
                row.pop("attribution", None)
            yield row


def _parquet_table(rows: list[dict[str, Any]], *, sentences: bool, path: Path) -> None:
    import pyarrow as pa

    pq = _pyarrow_parquet()
    schema = sentence_schema() if sentences else result_schema()
    if not sentences:  # the full result as JSON text: one column, any shape, lossless
        rows = [{**r, "attribution": _json_or_none(r.get("attribution"))} for r in rows]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _json_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def result_schema() -> Any:
    """The Arrow schema of the per-record table."""
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("error", pa.string()),
            ("sentences", pa.int64()),
            ("unsupported", pa.int64()),
            ("coverage", pa.float64()),
            ("top_source", pa.string()),
            ("attribution", pa.string()),
        ]
    )


def sentence_schema() -> Any:
    """The Arrow schema of the per-sentence table."""
    import pyarrow as pa

    schema = pa.schema(
        [
            ("id", pa.string()),
            ("sentence", pa.int64()),
            ("text", pa.string()),
            ("supported", pa.bool_()),
            ("claim", pa.bool_()),
            ("support", pa.float64()),
            ("top_source", pa.string()),
            ("top_score", pa.float64()),
        ]
    )
    assert tuple(schema.names) == SENTENCE_COLUMNS
    return schema


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{_TMP}{path.name}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
