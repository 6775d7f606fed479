"""`rag-attrib batch`: records in, a resumable output folder out, on the local engine.

Validation, output tables and the CLI run in-process with the hashing embedder; one test kills
a real run of the bundled model with SIGKILL and checks the resumed run loses and repeats
nothing and matches a single-process loop to 1e-6.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rag_attrib import AttributionResult, Source
from rag_attrib.batch import BadRecord, Record, read_records, read_results, run_batch
from rag_attrib.batch.records import parse_record
from rag_attrib.batch.work import make_attributor
from rag_attrib.cli import main

WORDS = (
    "the river city bridge was built in stone and wood by old masons during long winters near "
    "hills where farmers kept sheep and traders sold salt wine cloth to travellers from the coast"
).split()


def make_records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` records of three answer sentences and three short sources each."""
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))).capitalize() + "."

    records = []
    for i in range(n):
        sources = [" ".join(sentence() for _ in range(4)) for _ in range(3)]
        answer = f"{sources[i % 3].split('.')[0]}. {sentence()} {sentence()}"
        records.append({"id": f"r{i}", "answer": answer, "sources": sources, "question": None})
    return records


BAD_LINES = [
    '{"id": "no-answer", "sources": ["a"]}',
    '{"id": "int-answer", "answer": 3, "sources": ["a"]}',
    '{"id": "str-sources", "answer": "A.", "sources": "a"}',
    '{"id": "big", "answer": "A.", "sources": ["' + "y" * 5000 + '"]}',
    "not json at all",
]


def write_jsonl(path: Path, records: list[dict[str, Any]], extra: list[str] = ()) -> Path:  # type: ignore[assignment]
    lines = [json.dumps(r) for r in records] + list(extra)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def attributions(out: Path) -> dict[str, dict[str, Any]]:
    """id -> attribution dict of every attributed record in an output folder."""
    found: dict[str, dict[str, Any]] = {}
    for row in read_results(out, attribution=True):
        value = row["attribution"]
        if value is not None:
            found[row["id"]] = json.loads(value) if isinstance(value, str) else value
    return found


def assert_same(a: dict[str, Any], b: dict[str, Any], tol: float = 1e-6) -> None:
    """Same sentences, verdicts, citations and scores (to `tol`); timings may differ."""
    assert [s["text"] for s in a["answer_sentences"]] == [s["text"] for s in b["answer_sentences"]]
    for x, y in zip(a["answer_sentences"], b["answer_sentences"], strict=True):
        assert x["supported"] == y["supported"]
        assert x["support"] == pytest.approx(y["support"], abs=tol)
        assert [(c["source_id"], c["sentence_index"]) for c in x["citations"]] == [
            (c["source_id"], c["sentence_index"]) for c in y["citations"]
        ]
        for c, d in zip(x["citations"], y["citations"], strict=True):
            assert c["score"] == pytest.approx(d["score"], abs=tol)
    assert [s["score"] for s in a["sources"]] == pytest.approx(
        [s["score"] for s in b["sources"]], abs=tol
    )


def test_parse_record_names_what_is_wrong() -> None:
    """Each bad record gets a reason; exporter lines and ids are read as documented."""
    assert parse_record({"id": 1, "answer": "A.", "sources": ["x"]}).id == "1"  # type: ignore[union-attr]
    bad = [parse_record(json.loads(line), max_source_chars=1000) for line in BAD_LINES[:4]]
    assert all(isinstance(b, BadRecord) for b in bad)
    reasons = [b.reason for b in bad]  # type: ignore[union-attr]
    assert reasons[0] == "missing field 'answer'"
    assert reasons[1] == "'answer' must be a string, got int"
    assert "'sources' must be a list" in reasons[2]
    assert "sources[0] has 5,000 characters, over the limit of 1,000" in reasons[3]
    # a JSONLExporter line: the attribution's inputs, the id from its context
    result = make_attributor("hashing").attribute("Paris is big.", ["Paris is a big city."])
    line = {"timestamp": "t", "context": {"run_id": "abc"}, "attribution": result.to_dict()}
    record = parse_record(json.loads(json.dumps(line)))
    assert isinstance(record, Record)
    assert (record.id, record.answer, record.sources[0].text) == (
        "abc",
        "Paris is big.",
        "Paris is a big city.",
    )
    # no id anywhere: a content hash, the same on every read
    plain = {"answer": "A.", "sources": ["b"]}
    assert (
        parse_record(plain).id
        == parse_record(dict(plain)).id
        != parse_record({**plain, "answer": "B."}).id
    )


def test_local_pool_matches_in_process_and_writes_tables(tmp_path: Path) -> None:
    """Two worker processes (Parquet out) give the same results as one in-process loop (JSONL
    out); bad records go to errors.jsonl with their reason; the sentence table and summary add up."""
    pytest.importorskip("pyarrow")
    fmt = "parquet"
    records = make_records(40)
    source = write_jsonl(tmp_path / "in.jsonl", records, BAD_LINES)
    one = run_batch(
        source, tmp_path / "one", model="hashing", workers=0, chunk_size=7, max_source_chars=1000
    )
    two = run_batch(
        source,
        tmp_path / "two",
        model="hashing",
        workers=2,
        chunk_size=7,
        fmt=fmt,
        max_source_chars=1000,
    )
    assert (one.records, one.attributed, one.errors) == (45, 40, 5)
    assert (two.records, two.errors, two.sentences, two.unsupported) == (
        45,
        5,
        one.sentences,
        one.unsupported,
    )
    a, b = attributions(tmp_path / "one"), attributions(tmp_path / "two")
    assert sorted(a) == sorted(b) == sorted(r["id"] for r in records)
    for key in a:
        assert_same(a[key], b[key])
    errors = [json.loads(x) for x in (tmp_path / "two" / "errors.jsonl").read_text().splitlines()]
    by_id = {e["id"]: e["reason"] for e in errors}
    assert by_id["int-answer"] == "'answer' must be a string, got int"
    assert any("not valid JSON" in r for r in by_id.values())
    assert len(errors) == 5
    assert _sentence_rows(tmp_path / "one", "jsonl") == _sentence_rows(tmp_path / "two", fmt)
    sentences = _sentence_rows(tmp_path / "two", fmt)
    assert len(sentences) == two.sentences == sum(len(x["answer_sentences"]) for x in b.values())
    assert sum(not s["supported"] for s in sentences) == two.unsupported
    first = next(s for s in sentences if s["id"] == "r0" and s["sentence"] == 0)
    assert first["supported"] and first["top_source"] == "0"
    # top_source is what a sentence cites: none for an unsupported one, whose closest sources
    # stay in its record's attribution
    rows = {(s["id"], s["sentence"]): s for s in sentences}
    closest = 0
    for key, record in b.items():
        for s in record["answer_sentences"]:
            row = rows[(key, s["index"])]
            cited = s["citations"] if s["supported"] else []
            assert row["top_source"] == (cited[0]["source_id"] if cited else None)
            assert row["top_score"] == (pytest.approx(cited[0]["score"]) if cited else None)
            closest += bool(not s["supported"] and s["citations"])
    assert closest > 0
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["unsupported_rate"] == pytest.approx(two.unsupported / two.sentences)


def _sentence_rows(out: Path, fmt: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted((out / "sentences").glob(f"[!.]*.{fmt}")):
        if fmt == "parquet":
            import pyarrow.parquet as pq

            rows += pq.read_table(path).to_pylist()
        else:
            rows += [json.loads(x) for x in path.read_text().splitlines()]
    return rows


def test_parquet_input_and_exporter_lines(tmp_path: Path) -> None:
    """Parquet rows and JSONLExporter lines are attributed like plain JSONL records."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    records = make_records(12)
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "in.parquet")
    write_jsonl(tmp_path / "in.jsonl", records)
    run_batch(tmp_path / "in.parquet", tmp_path / "p", model="hashing", workers=0)
    run_batch(tmp_path / "in.jsonl", tmp_path / "j", model="hashing", workers=0)
    p, j = attributions(tmp_path / "p"), attributions(tmp_path / "j")
    assert sorted(p) == sorted(j)
    for key in p:
        assert_same(p[key], j[key])
    # logged attributions re-run: the exporter format of the same records gives the same results
    logged = [{"timestamp": "t", "context": {"run_id": k}, "attribution": v} for k, v in j.items()]
    write_jsonl(tmp_path / "logged.jsonl", logged)
    run_batch(tmp_path / "logged.jsonl", tmp_path / "l", model="hashing", workers=0)
    again = attributions(tmp_path / "l")
    assert sorted(again) == sorted(j)
    for key in j:
        assert_same(again[key], j[key])


def test_a_logged_answer_with_markers_is_attributed_as_it_was_live(tmp_path: Path) -> None:
    """An answer carrying its LLM's markers ("(Source 1)", "[2]") is attributed with them
    taken out, as the integrations logged it live: re-running a JSONLExporter line gives the
    logged result back, and the supports of the answer without its markers."""
    answer = "Paris is the capital of France (Source 1). Berlin is the capital of Germany [2]."
    sources = [Source("0", "Paris is the capital of France."), Source("1", "Berlin is big.")]
    attributor = make_attributor("hashing")
    live = attributor.attribute(answer, sources).to_dict()
    plain = attributor.attribute(
        "Paris is the capital of France. Berlin is the capital of Germany.", sources
    )
    assert [s["support"] for s in live["answer_sentences"]] == [
        s.support for s in plain.answer_sentences
    ]
    line = {"timestamp": "t", "context": {"run_id": "r1"}, "attribution": live}
    write_jsonl(tmp_path / "logged.jsonl", [line])
    run_batch(tmp_path / "logged.jsonl", tmp_path / "out", model="hashing", workers=0)
    again = attributions(tmp_path / "out")["r1"]
    assert again["answer"] == answer
    assert_same(again, live)


def test_cli_batch_summary_resume_and_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command prints a summary; a second run on the same folder adds nothing; other
    settings on the same folder exit 2 naming them."""
    source = write_jsonl(tmp_path / "in.jsonl", make_records(10), BAD_LINES[:1])
    out = tmp_path / "out"
    args = ["batch", str(source), "--out", str(out), "--model", "hashing", "--workers", "0"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "11 records (10 attributed, 1 errors)" in err and "records/s" in err
    before = sorted(p.name for p in (out / "results").iterdir())
    assert main(args) == 0
    assert sorted(p.name for p in (out / "results").iterdir()) == before
    assert len(list(read_results(out))) == 11
    assert main([*args, "--chunk-size", "5"]) == 2
    assert "chunk_size 32 -> 5" in capsys.readouterr().err


def test_read_records_streams_row_numbers(tmp_path: Path) -> None:
    """Blank lines are skipped but counted; a malformed line is a BadRecord naming its line."""
    path = tmp_path / "in.jsonl"
    path.write_text('{"answer": "A.", "sources": []}\n\nnope\n', encoding="utf-8")
    rows = list(read_records(path))
    assert [r for r, _ in rows] == [0, 2]
    assert isinstance(rows[1][1], BadRecord) and rows[1][1].reason.startswith(
        "line 3: not valid JSON"
    )


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def kill_when(proc: subprocess.Popen[bytes], ready: Any, timeout: float = 300) -> None:
    """SIGKILL the process group of `proc` as soon as `ready()` is true."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def run_killed_then_resumed(source: Path, out: Path, extra: list[str], min_parts: int) -> None:
    """Start the CLI, kill -9 it once `min_parts` results files exist, then run it to the end."""
    command = [
        sys.executable,
        "-m",
        "rag_attrib",
        "batch",
        str(source),
        "--out",
        str(out),
        "-q",
        *extra,
    ]
    proc = subprocess.Popen(command, env=_env(), start_new_session=True, stderr=subprocess.PIPE)
    results = out / "results"

    def ready() -> bool:
        return (
            results.is_dir()
            and len([p for p in results.iterdir() if not p.name.startswith(".")]) >= min_parts
        )

    kill_when(proc, ready)
    assert proc.returncode == -signal.SIGKILL
    done = len(list(read_results(out)))
    total = sum(1 for line in source.read_text().splitlines() if line.strip())
    assert 0 < done < total, f"killed after {done} of {total}: kill earlier"
    finished = subprocess.run(
        command, env=_env(), capture_output=True, text=True, timeout=600, check=False
    )
    assert finished.returncode == 0, finished.stderr


@pytest.mark.slow
def test_kill_9_and_resume_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """A local run of the bundled model on two workers killed mid-way and restarted ends with
    every id exactly once, each as a single-process loop attributes it (1e-6)."""
    records = make_records(120, seed=1)
    source = write_jsonl(tmp_path / "in.jsonl", records, BAD_LINES[:2])
    out = tmp_path / "out"
    run_killed_then_resumed(source, out, ["--workers", "2", "--chunk-size", "4"], min_parts=3)
    rows = list(read_results(out))
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)) == 122
    assert set(ids) == {r["id"] for r in records} | {"no-answer", "int-answer"}
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["records"], summary["errors"]) == (122, 2)
    found = attributions(out)
    attributor = make_attributor(None, threads=1)
    for record in records[::3]:  # the single-process loop, on a third of them (time)
        expected = attributor.attribute(
            record["answer"], record["sources"], question=record["question"]
        )
        assert_same(found[record["id"]], expected.to_dict())
        assert (
            AttributionResult.from_dict(found[record["id"]]).model == "all-MiniLM-L6-v2+onnx-int8"
        )


@pytest.mark.slow
def test_ray_kill_9_resume_matches_local(tmp_path: Path) -> None:
    """Ray Data with two actors (a local Ray the run starts and stops), killed with SIGKILL and
    restarted: every id exactly once, bad records in errors.jsonl, and each result as the local
    engine's in-process loop gives it (1e-6)."""
    pytest.importorskip("ray")
    records = make_records(100, seed=2)
    source = write_jsonl(tmp_path / "in.jsonl", records, BAD_LINES[:2])
    out = tmp_path / "ray"
    extra = ["--engine", "ray", "--workers", "2", "--threads", "1", "--batch-size", "2"]
    run_killed_then_resumed(source, out, extra, min_parts=3)
    ids = [row["id"] for row in read_results(out)]
    assert len(ids) == len(set(ids)) == 102
    errors = [json.loads(x)["id"] for x in (out / "errors.jsonl").read_text().splitlines()]
    assert sorted(errors) == ["int-answer", "no-answer"]
    local = tmp_path / "local"
    run_batch(source, local, workers=0, threads=1)
    a, b = attributions(out), attributions(local)
    assert sorted(a) == sorted(b) == sorted(r["id"] for r in records)
    for key in a:
        assert_same(a[key], b[key])
    assert len(_sentence_rows(out, "parquet")) == len(_sentence_rows(local, "jsonl"))
