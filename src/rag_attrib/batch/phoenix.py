"""Traces in Arize Phoenix as batch input, and the results back as span annotations.

A trace recorded with OpenInference instrumentation holds what attribution needs: RETRIEVER
spans with `retrieval.documents.{i}.document.content` (and `.id`), an LLM span with the answer
(`llm.output_messages.{k}.message.content`, else `output.value`), and the question in the
outermost span's `input.value`. Each trace becomes one record whose id is its root span id, so
the results go back as a `rag_attrib.groundedness` annotation on that span (score = share of
supported answer sentences, label grounded / ungrounded, the unsupported sentences in the
explanation), which the Phoenix UI shows per trace.

Input: a running Phoenix (`spans_from_phoenix`, needs `arize-phoenix-client`) or an OTLP/JSON
dump (`spans_from_otlp_json`, the `ExportTraceServiceRequest` JSON form, stdlib only).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import import_optional
from .output import read_results

__all__ = [
    "ANNOTATION_NAME",
    "annotate_phoenix",
    "records_from_spans",
    "spans_from_otlp_json",
    "spans_from_phoenix",
    "write_records",
]

ANNOTATION_NAME = "rag_attrib.groundedness"

Span = dict[str, Any]
"""A span as flat dicts: trace_id, span_id, parent_id, name, start_time, attributes (flat keys)."""


def _client(url: str) -> Any:
    client = import_optional("phoenix.client", extra="phoenix", feature="Reading from Phoenix")
    return client.Client(base_url=url)


def spans_from_phoenix(url: str, project: str = "default", limit: int = 100_000) -> list[Span]:
    """The spans of `project` on the Phoenix server at `url`."""
    spans = _client(url).spans.get_spans(project_identifier=project, limit=limit)
    return [
        {
            "trace_id": s["context"]["trace_id"],
            "span_id": s["context"]["span_id"],
            "parent_id": s.get("parent_id"),
            "name": s.get("name", ""),
            "start_time": str(s.get("start_time", "")),
            "attributes": dict(s.get("attributes") or {}),
        }
        for s in spans
    ]


def spans_from_otlp_json(path: str | os.PathLike[str]) -> list[Span]:
    """The spans of an OTLP/JSON dump (one `ExportTraceServiceRequest` object, or one a line)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        requests = [json.loads(text)]
    except json.JSONDecodeError:
        requests = [json.loads(line) for line in text.splitlines() if line.strip()]
    spans = []
    for request in requests:
        for resource in request.get("resourceSpans", []):
            for scope in resource.get("scopeSpans", []):
                for s in scope.get("spans", []):
                    spans.append(
                        {
                            "trace_id": _hex_id(s.get("traceId", "")),
                            "span_id": _hex_id(s.get("spanId", "")),
                            "parent_id": _hex_id(s.get("parentSpanId", "")) or None,
                            "name": s.get("name", ""),
                            "start_time": str(s.get("startTimeUnixNano", "")),
                            "attributes": {
                                a["key"]: _any_value(a.get("value", {}))
                                for a in s.get("attributes", [])
                            },
                        }
                    )
    return spans


def _hex_id(value: str) -> str:
    # OTLP/JSON writes ids as hex; protobuf's JSON mapping would write base64 of the bytes
    if not value or all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    import base64

    return base64.b64decode(value).hex()


def _any_value(value: dict[str, Any]) -> Any:
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_any_value(v) for v in value["arrayValue"].get("values", [])]
    return None


def records_from_spans(spans: Iterable[Span]) -> Iterator[dict[str, Any]]:
    """One `{id, answer, sources, question, trace_id}` record per trace with documents and an
    answer; `id` is the trace's root span id (where annotations go)."""
    traces: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        traces[span["trace_id"]].append(span)
    for trace_id, members in traces.items():
        ids = {s["span_id"] for s in members}
        roots = [s for s in members if not s.get("parent_id") or s["parent_id"] not in ids]
        root = min(roots, key=lambda s: s["start_time"])
        ordered = sorted(members, key=lambda s: s["start_time"])
        sources = [doc for s in ordered for doc in _documents(s["attributes"])]
        answer = _answer(ordered)
        if not sources or answer is None:
            continue
        question = next(
            (s["attributes"]["input.value"] for s in ordered if _is_text(s, "input.value")), None
        )
        yield {
            "id": root["span_id"],
            "answer": answer,
            "sources": sources,
            "question": question,
            "trace_id": trace_id,
        }


def _is_text(span: Span, key: str) -> bool:
    return isinstance(span["attributes"].get(key), str)


def _documents(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    docs = []
    i = 0
    while f"retrieval.documents.{i}.document.content" in attributes:
        text = attributes[f"retrieval.documents.{i}.document.content"]
        doc_id = attributes.get(f"retrieval.documents.{i}.document.id")
        docs.append({"id": str(doc_id) if doc_id is not None else str(i), "text": str(text)})
        i += 1
    return docs


def _answer(ordered: list[Span]) -> str | None:
    """The last LLM output message in the trace, else the outermost span's `output.value`."""
    for span in reversed(ordered):
        attributes = span["attributes"]
        k = 0
        content = None
        while f"llm.output_messages.{k}.message.content" in attributes:
            content = attributes[f"llm.output_messages.{k}.message.content"]
            k += 1
        if isinstance(content, str):
            return content
    return next(
        (s["attributes"]["output.value"] for s in ordered if _is_text(s, "output.value")), None
    )


def write_records(spans: Iterable[Span], path: str | os.PathLike[str]) -> int:
    """Write the records of `spans` as JSONL (a batch input); returns how many."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for record in records_from_spans(spans):
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def annotate_phoenix(url: str, out: str | os.PathLike[str]) -> int:
    """Log each attributed record of the batch output `out` as a span annotation in Phoenix.

    Returns:
        How many annotations were sent.
    """
    client = _client(url)
    annotations = []
    for row in read_results(Path(out), attribution=True):
        if row["attribution"] is None:
            continue
        data = row["attribution"]
        if isinstance(data, str):
            data = json.loads(data)
        unsupported = [
            s["text"]
            for s in data["answer_sentences"]
            if not s["supported"] and s.get("claim", True)
        ]
        explanation = (
            "unsupported: " + " | ".join(unsupported) if unsupported else "every sentence supported"
        )
        annotations.append(
            {
                "name": ANNOTATION_NAME,
                "span_id": row["id"],
                "annotator_kind": "CODE",
                "result": {
                    "label": "ungrounded" if unsupported else "grounded",
                    "score": float(row["coverage"]),
                    "explanation": explanation,
                },
                "metadata": {"top_source": row["top_source"], "unsupported": row["unsupported"]},
            }
        )
    for start in range(0, len(annotations), 100):
        client.spans.log_span_annotations(
            span_annotations=annotations[start : start + 100], sync=True
        )
    return len(annotations)
