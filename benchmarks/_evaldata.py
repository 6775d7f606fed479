"""Shared loading for the benchmarks: evaldata records -> texts with gold sentence units."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_attrib import Source, Span, split_sentences
from rag_attrib.engine import NO_SOURCE, WEAK_MATCH
from rag_attrib.markers import clean_text, parse_markers

DEFAULT_EVALDATA = Path(__file__).resolve().parents[2] / "shared" / "evaldata"
QUESTION_SETS = {"hotpotqa", "musique"}  # short answers: score question + answer


def rule_flag(sentence: Any) -> float:
    """1.0 when a readable rule rejects `sentence` (a figure, a name, a question; the verifier's
    reasons), else 0.0. A weak match's own reason does not count: scores below read
    "support - rule_flag" as they did before the similarity verdict gave that reason."""
    return 1.0 if set(sentence.issues) - {WEAK_MATCH, NO_SOURCE} else 0.0


def evaldata_root() -> Path:
    root = Path(os.environ.get("RAG_ATTRIB_EVALDATA", DEFAULT_EVALDATA))
    if not (root / "common" / "load_all.py").exists():
        sys.exit(f"evaldata not found at {root}: set RAG_ATTRIB_EVALDATA to the evaldata folder")
    return root


def load_records(name: str) -> list[dict[str, Any]]:
    sys.path.insert(0, str(evaldata_root() / "common"))
    from load_all import load_dataset  # type: ignore[import-not-found]

    kwargs = {"split": "all"} if name in {"hotpotqa", "wice"} else {}
    return list(load_dataset(name, **kwargs))


@dataclass
class Case:
    """One record, as texts plus the unit spans the gold refers to."""

    dataset: str
    answer: str
    claims: list[Span]
    sources: list[Source]
    units: list[list[Span]]  # per source
    unit_ids: list[list[str | None]]  # gold ids of each unit (None when the set has none)
    raw: dict[str, Any] = field(repr=False)

    def splitter(self) -> GoldSplitter:
        table = {self.answer: self.claims}
        for s, spans in zip(self.sources, self.units, strict=True):
            table[s.text] = spans
        return GoldSplitter(table)


class GoldSplitter:
    """Returns the gold segmentation for known texts, the default splitter otherwise.

    `attribute()` splits an answer without its citation markers (ExpertQA's claims carry
    "[1]"), so a known text's marker-free copy gets the gold spans too, mapped onto it.
    """

    def __init__(self, table: dict[str, list[Span]]) -> None:
        self.table = table
        self._clean: dict[str, list[Span]] | None = None

    def __call__(self, text: str) -> list[Span]:
        spans = self.table.get(text)
        if spans is None:
            spans = self._without_markers().get(text)
        return spans if spans is not None else split_sentences(text)

    def _without_markers(self) -> dict[str, list[Span]]:
        if self._clean is None:
            self._clean = {}
            for text, spans in self.table.items():
                markers = parse_markers(text)
                if markers:
                    clean, edits = clean_text(text, markers)
                    self._clean[clean] = _mapped(spans, clean, edits)
        return self._clean


def _mapped(spans: list[Span], clean: str, edits: list[tuple[int, int, str]]) -> list[Span]:
    """`spans` of a text moved onto its copy without markers (`clean_text`'s `edits`)."""

    def forward(pos: int) -> int:
        shift = 0
        for a, b, r in edits:
            if pos <= a:
                break
            if pos < b:  # inside a removed marker: where it was
                return a + shift
            shift += len(r) - (b - a)
        return pos + shift

    out = []
    for span in spans:
        a, b = forward(span.start), forward(span.end)
        while b > a and clean[b - 1].isspace():
            b -= 1
        out.append(Span(clean[a:b], a, b))
    return out


def _join(parts: list[str]) -> tuple[str, list[Span]]:
    text, spans, pos = "", [], 0
    for k, part in enumerate(parts):
        if k:
            text += " "
            pos += 1
        spans.append(Span(part, pos, pos + len(part)))
        text += part
        pos += len(part)
    return text, spans


def to_case(rec: dict[str, Any]) -> Case | None:
    claims_text = [a["text"].strip() for a in rec["answer_sentences"]]
    if not claims_text or not all(claims_text):
        return None
    if rec["dataset"] in QUESTION_SETS and rec.get("question"):
        claims_text = [f"{rec['question']} {c}" for c in claims_text]
    answer, claims = _join(claims_text)
    sources, units, unit_ids = [], [], []
    for src in rec["sources"]:
        if src.get("sentences"):
            text, spans = _join([s["text"].strip() for s in src["sentences"]])
            ids: list[str | None] = [s["id"] for s in src["sentences"]]
        else:
            text = src["text"] or ""
            spans = split_sentences(text)
            ids = [None] * len(spans)
        keep = [k for k, sp in enumerate(spans) if sp.text]
        spans = [spans[k] for k in keep]
        ids = [ids[k] for k in keep]
        sources.append(Source(str(src["id"]), text))
        units.append(spans)
        unit_ids.append(ids)
    return Case(rec["dataset"], answer, claims, sources, units, unit_ids, rec)


def cases(name: str, limit: int | None) -> Iterator[Case]:
    records = load_records(name)
    if limit is not None and len(records) > limit:
        step = len(records) / limit  # an even spread, not the first N (sets are often sorted)
        records = [records[int(k * step)] for k in range(limit)]
    for rec in records:
        case = to_case(rec)
        if case is not None:
            yield case
