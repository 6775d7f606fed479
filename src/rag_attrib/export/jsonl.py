"""`JSONLExporter`: one attribution per line, safe with concurrent writers in one process.

Each line is `{"timestamp": ISO-8601 UTC, "context": {...ids}, "attribution": result.to_dict()}`;
`read_jsonl_line` reads one back (the `rag-attrib render` CLI relies on that shape).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from types import TracebackType
from typing import IO, Any

from ..results import AttributionResult
from .base import context_record, current_trace_ids

__all__ = ["JSONLExporter", "dumps_line", "jsonl_record", "read_jsonl_line", "split_lines"]

# Not escaped by json.dumps(ensure_ascii=False), yet str.splitlines() and many JSONL readers
# break lines at them: a text holding one would cut its record in two.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_LINE_BREAK = re.compile("[\x85\u2028\u2029]")


def dumps_line(value: Any) -> str:
    """`value` as one JSON line (UTF-8 text kept, no NaN, no character that breaks a line)."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return _LINE_BREAK.sub(lambda m: _LINE_BREAKS[m.group()], text)


def split_lines(text: str) -> list[str]:
    """The lines of a JSONL text: split at "\n" only (a "\r" before it is dropped)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


class JSONLExporter:
    """Appends one JSON line per attribution to a file or a text stream.

    A path is opened in append mode, and each line goes out in one unbuffered write, so
    threads (and, on local filesystems, processes) never interleave partial lines. A stream
    is written under a lock and flushed after every line.

    Args:
        path_or_stream: a file path (created if missing), or an open text stream that the
            caller keeps ownership of (`close()` then only flushes it).

    Example:
        with JSONLExporter("attributions.jsonl") as jsonl:
            handler = AttributionCallbackHandler(attributor, exporters=[jsonl])
    """

    def __init__(self, path_or_stream: str | os.PathLike[str] | IO[str]) -> None:
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._stream: IO[str] | None = None
        self.path: str | None = None
        if isinstance(path_or_stream, (str, os.PathLike)):
            self.path = os.fspath(path_or_stream)
            self._file = open(self.path, "ab", buffering=0)
        else:
            self._stream = path_or_stream
        self.closed = False

    def capture(self) -> dict[str, str]:
        """Return the caller's OpenTelemetry trace/span ids, if any (see `capture_context`)."""
        return current_trace_ids()

    def export(self, result: AttributionResult, context: Mapping[str, Any]) -> None:
        """Append one line for `result`.

        Raises:
            ValueError: the exporter was closed.
        """
        line = dumps_line(jsonl_record(result, context))
        with self._lock:
            if self.closed:
                msg = "JSONLExporter is closed; create a new one to keep writing"
                raise ValueError(msg)
            if self._file is not None:
                _write_all(self._file, (line + "\n").encode("utf-8"))
            elif self._stream is not None:
                self._stream.write(line + "\n")
                self._stream.flush()

    def close(self) -> None:
        """Close the file this exporter opened (a caller's stream is only flushed)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self._file is not None:
                self._file.close()
            elif self._stream is not None and not self._stream.closed:
                self._stream.flush()

    def __enter__(self) -> JSONLExporter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def jsonl_record(result: AttributionResult, context: Mapping[str, Any]) -> dict[str, Any]:
    """Return the dict written as one line: `timestamp`, `context` and `attribution`."""
    return {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "context": context_record(context),
        "attribution": result.to_dict(),
    }


def read_jsonl_line(line: str) -> tuple[AttributionResult, dict[str, Any]]:
    """Parse one line written by `JSONLExporter`.

    Returns:
        The attribution and the line's `context` (with `timestamp` added).

    Raises:
        ValueError: the line is not JSON or not a rag_attrib attribution record.
    """
    record = json.loads(line)
    if not isinstance(record, dict) or not isinstance(record.get("attribution"), dict):
        msg = "not a rag_attrib JSONL record: expected an object with an 'attribution' key"
        raise ValueError(msg)
    context = dict(record.get("context") or {})
    context.setdefault("timestamp", record.get("timestamp"))
    return AttributionResult.from_dict(record["attribution"]), context


def _write_all(file: IO[bytes], data: bytes) -> None:
    # An unbuffered write to a regular file is one syscall in practice; loop for the rare
    # short write rather than assume it.
    view = memoryview(data)
    while view:
        written = file.write(view)
        if not written:  # None (non-blocking, would block) or 0: nothing more will go out
            msg = "could not write the JSONL line"
            raise OSError(msg)
        view = view[written:]
