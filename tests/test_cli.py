"""The `rag-attrib` CLI on files, stdin and JSONL; bad input exits 2 with one line, no traceback.

Most tests run `main()` in-process with `--model hashing` (the deterministic embedder); two run
the real command in a subprocess, one of them with the bundled model.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rag_attrib import AttributionResult, Attributor, Source
from rag_attrib.cli import Progress, _table, main
from rag_attrib.testing import HashingEmbedder

ANSWER = (
    "The fire started in Farriner's bakery on Pudding Lane. "
    "Strong winds spread the flames across timber houses. "
    "Aliens from Mars landed in Hyde Park."
)
SOURCE_A = "The Great Fire broke out in 1666.\nIt started in Farriner's bakery on Pudding Lane."
SOURCE_B = "Strong easterly winds spread the flames across the timber houses."


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """An answer and two sources on disk."""
    paths = {"answer": tmp_path / "answer.txt", "a": tmp_path / "a.txt", "b": tmp_path / "b.txt"}
    paths["answer"].write_text(ANSWER, encoding="utf-8")
    paths["a"].write_text(SOURCE_A, encoding="utf-8")
    paths["b"].write_text(SOURCE_B, encoding="utf-8")
    return paths


def run(
    args: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stdin: str | None = None,
) -> tuple[int, str, str]:
    """Run `main(args)` in-process; return (exit code, stdout, stderr)."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8"))))
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    """Exit code 2 and one `rag-attrib: error: ...` line naming the problem; no traceback."""
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rag-attrib: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_explain_files_prints_table_and_writes_json_and_html(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Files in; a citation table out, `--json` is `to_dict()`, `--html` is the view."""
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    code, out, err = run(
        [
            "explain",
            "--answer",
            str(files["answer"]),
            "--source",
            str(files["a"]),
            str(files["b"]),
            "--question",
            "How did it start?",
            "--json",
            str(out_json),
            "--html",
            str(out_html),
            "--model",
            "hashing",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    data = json.loads(out_json.read_text(encoding="utf-8"))
    result = AttributionResult.from_dict(data)
    expected = Attributor(HashingEmbedder()).attribute(
        ANSWER,
        [
            Source(str(files[k]), text, {"path": str(files[k])})
            for k, text in (("a", SOURCE_A), ("b", SOURCE_B))
        ],
        question="How did it start?",
    )
    assert result == expected
    assert [s.id for s in result.sources] == [str(files["a"]), str(files["b"])]
    assert result.sources[0].metadata == {"path": str(files["a"])}
    assert 'class="ra-root"' in out_html.read_text(encoding="utf-8")
    assert f"HTML view written to {out_html}" in err
    # the table: every answer sentence, its cited sentences, the unsupported verdict, shares
    assert "Q: How did it start?" in out
    for s in result.answer_sentences:
        assert f"[{s.index + 1}] {s.text[:30]}" in out
        for c in s.citations:
            assert c.text[:40] in out
    assert "UNSUPPORTED" in out and [s.index for s in result.unsupported] == [2]
    # the figure the verdict used, and the unsupported sentence's nearest sources, labelled so
    for s in result.answer_sentences:
        assert f"support {s.support:.2f}" in out
    invented = result.answer_sentences[2]
    assert invented.citations  # the default verdict keeps its closest sources
    tail = out[out.index(f"[3] {invented.text[:30]}") : out.index("Share of the answer")]
    assert tail.count("closest, does not support:") == 1
    assert all(c.text[:40] in tail for c in invented.citations)
    assert "Share of the answer per source:" in out
    assert f"coverage {result.coverage:.0%}" in out


def test_explain_reads_an_answer_with_markers_as_check_citations_does(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An answer carrying its LLM's markers is attributed with them taken out, as
    check-citations and the integrations do ("(Source 1)" is no word of the claim): the same
    supports as the unmarked answer, each sentence's text and offsets as written."""
    marked = (
        "The fire started in Farriner's bakery on Pudding Lane (Source 1). "
        "Strong winds spread the flames across timber houses [2]. "
        "Aliens from Mars landed in Hyde Park [1]."
    )
    files["answer"].write_text(marked, encoding="utf-8")
    out_json = tmp_path / "r.json"
    args = ["explain", "--answer", str(files["answer"]), "--source", str(files["a"])]
    args += [str(files["b"]), "--json", str(out_json), "--model", "hashing"]
    code, out, err = run(args, capsys, monkeypatch)
    assert code == 0, err
    result = AttributionResult.from_dict(json.loads(out_json.read_text(encoding="utf-8")))
    # the markers are judged too: the JSON carries the check, the table lists each marker
    assert result.citation_check is not None
    assert [(m.text, m.verdict) for m in result.citation_check.markers][-1] == (
        "[1]",
        "unsupported",
    )
    assert "Citation markers, as written:" in out
    assert re.search(r"\[1\]\s+UNSUPPORTED\s+cites \S*a\.txt", out)
    sources = [SOURCE_A, SOURCE_B]
    plain = Attributor(HashingEmbedder()).attribute(ANSWER, sources)
    as_is = Attributor(HashingEmbedder()).attribute(marked, sources)
    assert [s.support for s in as_is.answer_sentences] == [
        s.support for s in plain.answer_sentences
    ]
    assert [s.support for s in result.answer_sentences] == [
        s.support for s in plain.answer_sentences
    ]
    assert result.answer == marked
    assert [marked[s.start : s.end] for s in result.answer_sentences] == [
        s.text for s in result.answer_sentences
    ]
    assert result.answer_sentences[0].text.endswith("(Source 1).")


def test_answer_from_stdin_and_json_to_stdout(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--answer -` reads stdin; `--json -` prints only JSON on stdout, the table on stderr."""
    code, out, err = run(
        [
            "explain",
            "--answer",
            "-",
            "--source",
            str(files["a"]),
            "--json",
            "-",
            "--model",
            "hashing",
        ],
        capsys,
        monkeypatch,
        stdin=ANSWER,
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["answer"] == ANSWER and data["schema"] == "rag_attrib.attribution/1"
    assert "Share of the answer per source:" in err


def test_source_from_stdin(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source may come from stdin instead; its id is "stdin"."""
    code, out, _ = run(
        ["explain", "--answer", str(files["answer"]), "--source", "-", "--model", "hashing"],
        capsys,
        monkeypatch,
        stdin=SOURCE_B,
    )
    assert code == 0
    assert "stdin" in out and "Strong easterly winds" in out


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ["--answer", "MISSING/answer.txt", "--source", "{a}"],
            ["cannot read answer MISSING/answer.txt", "No such file"],
        ),
        (
            ["--answer", "{answer}", "--source", "{a}", "MISSING.txt"],
            ["cannot read source MISSING.txt"],
        ),
        (["--answer", "{empty}", "--source", "{a}"], ["the answer", "is empty"]),
        (["--answer", "{answer}", "--source", "{empty}"], ["source", "is empty"]),
        (["--answer", "{binary}", "--source", "{a}"], ["not UTF-8"]),
        (
            ["--answer", "{answer}", "--source", "{a}", "--html", "NO/SUCH/DIR/x.html"],
            ["cannot write NO/SUCH/DIR/x.html"],
        ),
        (["--answer", "{answer}"], ["--source"]),
        (["--answer", "{answer}", "--source", "{a}", "--sankey"], ["--sankey needs --html"]),
        (["--answer", "-", "--source", "-"], ["only one of --answer and --source"]),
        (["--answer", "{answer}", "--source", "{a}", "--out", "x.jsonl"], ["--out goes with"]),
    ],
)
def test_bad_input_exits_2_with_one_line(
    args: list[str],
    fragments: list[str],
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unreadable, missing, empty or undecodable input and bad flag combinations exit 2."""
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00garbage\x80")
    names = {k: str(v) for k, v in files.items()}
    names.update(empty=str(tmp_path / "empty.txt"), binary=str(tmp_path / "binary.txt"))
    monkeypatch.chdir(tmp_path)
    argv = ["explain", *(a.format(**names) for a in args), "--model", "hashing"]
    code, out, err = run(argv, capsys, monkeypatch, stdin="")
    assert_one_line_error(code, err, *fragments)
    assert out == ""


def test_empty_stdin_exits_2(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty answer on stdin is refused."""
    code, _, err = run(
        ["explain", "--answer", "-", "--source", str(files["a"]), "--model", "hashing"],
        capsys,
        monkeypatch,
        stdin="",
    )
    assert_one_line_error(code, err, "the answer (stdin) is empty")


def _records(n: int) -> list[dict[str, Any]]:
    topics = ["bakery fire", "winter storm", "river flood", "harvest festival", "city market"]
    records: list[dict[str, Any]] = []
    for i in range(n):
        topic = topics[i % len(topics)]
        sources: list[object] = [
            f"Record {i} is about the {topic}. The {topic} happened in year {1600 + i}.",
            {
                "id": f"doc-{i}",
                "text": f"Nothing here concerns record {i}. Cats sleep a lot.",
                "metadata": {"n": i},
            },
        ]
        records.append(
            {
                "answer": f"The {topic} happened in year {1600 + i}.",
                "sources": sources,
                "question": None if i % 2 else f"When, {i}?",
            }
        )
    return records


def test_jsonl_batch_of_100_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 records in, 100 results out in order, each a valid to_dict(); a summary on stderr."""
    records = _records(100)
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    dst = tmp_path / "out.jsonl"
    code, out, err = run(
        ["explain", "--jsonl", str(src), "--out", str(dst), "--model", "hashing"],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    lines = dst.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 100
    attributor = Attributor(HashingEmbedder())
    for i, (line, record) in enumerate(zip(lines, records, strict=True)):
        result = AttributionResult.from_dict(json.loads(line))
        assert result.answer == record["answer"] and result.question == record["question"]
        assert [s.id for s in result.sources] == ["0", f"doc-{i}"]
        assert result.sources[1].metadata == {"n": i}
        assert result.answer_sentences[0].citations[0].source_id == "0"
        if i in (0, 57):
            assert result == attributor.attribute(
                record["answer"], record["sources"], record["question"]
            )
    assert "100/100 records attributed" in err
    assert out == ""


def test_jsonl_from_stdin_to_stdout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--jsonl - --out -` streams stdin to stdout."""
    text = "\n".join(json.dumps(r) for r in _records(3))
    code, out, err = run(
        ["explain", "--jsonl", "-", "--out", "-", "--model", "hashing"],
        capsys,
        monkeypatch,
        stdin=text,
    )
    assert code == 0, err
    assert [json.loads(x)["answer"] for x in out.splitlines()] == [r["answer"] for r in _records(3)]


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_empty_jsonl_exits_2_without_writing(
    content: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A JSONL input with no records exits 2 with one line and writes no output file."""
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(content, encoding="utf-8")
    code, _, err = run(
        ["explain", "--jsonl", str(src), "--out", str(dst), "--model", "hashing"],
        capsys,
        monkeypatch,
    )
    assert_one_line_error(code, err, "has no records")
    assert not dst.exists()


BAD_RECORDS = [
    ("{not json}", "not valid JSON"),
    ('["a list"]', "expected an object"),
    ('{"sources": ["x"]}', "'answer' must be a string"),
    ('{"answer": 5, "sources": ["x"]}', "'answer' must be a string"),
    ('{"answer": "  ", "sources": ["x"]}', "'answer' is empty"),
    ('{"answer": "a", "sources": "x"}', "'sources' must be a list"),
    ('{"answer": "a", "sources": [3]}', "sources[0] must be a string"),
    ('{"answer": "a", "sources": [{"text": null}]}', "sources[0] must be a string"),
    ('{"answer": "a", "sources": [], "question": 5}', "'question' must be a string"),
    ('{"answer": "a", "sources": [{"text": "x", "metadata": 3}]}', "metadata must be an object"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"answer": "a", "sources": [], "n": ' + "9" * 5000 + "}", "unreadable JSON"),
]


def test_bad_records_are_reported_by_line_and_the_good_ones_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each bad line: one stderr line naming it, and the run goes on; exit 2 at the end."""
    good = _records(3)
    lines = [json.dumps(good[0])]
    for bad, _ in BAD_RECORDS:
        lines += [bad, ""]
    lines += [json.dumps(good[1]), json.dumps(good[2])]
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines), encoding="utf-8")
    code, out, err = run(
        ["explain", "--jsonl", str(src), "--out", str(dst), "--model", "hashing"],
        capsys,
        monkeypatch,
    )
    assert code == 2 and out == "" and "Traceback" not in err
    written = [json.loads(x)["answer"] for x in dst.read_text(encoding="utf-8").splitlines()]
    assert written == [r["answer"] for r in good]
    errors = [x for x in err.splitlines() if x.startswith("rag-attrib: error: ")]
    assert len(errors) == len(BAD_RECORDS) + 1
    for k, ((_, fragment), line) in enumerate(zip(BAD_RECORDS, errors, strict=False)):
        assert f"in.jsonl line {2 + 2 * k}: " in line and fragment in line, line
        assert len(line) < 400
    assert errors[-1].endswith(
        f"{len(BAD_RECORDS)} of {len(BAD_RECORDS) + 3} records failed; 3 written"
    )
    assert f"3/{len(BAD_RECORDS) + 3} records attributed" in err


def test_errors_file_gets_the_bad_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--errors FILE: one {line, error} object per bad record; stderr has one summary line."""
    src, dst, bad = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "bad.jsonl"
    src.write_text(f"{json.dumps(_records(1)[0])}\n{{x\n", encoding="utf-8")
    code, _, err = run(
        [
            "explain",
            "--jsonl",
            str(src),
            "--out",
            str(dst),
            "--errors",
            str(bad),
            "-q",
            "--model",
            "hashing",
        ],
        capsys,
        monkeypatch,
    )
    assert_one_line_error(code, err, "1 of 2 records failed (see", "1 written")
    (entry,) = [json.loads(x) for x in bad.read_text(encoding="utf-8").splitlines()]
    assert entry["line"] == 2 and "not valid JSON" in entry["error"]
    assert len(dst.read_text(encoding="utf-8").splitlines()) == 1


def test_a_record_failing_late_costs_only_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record whose attribution or output fails is reported; the records after it are kept."""
    calls = {"n": 0}
    real = AttributionResult.to_dict

    def flaky(self: AttributionResult, **kwargs: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise TypeError("cannot serialise this one")
        return real(self, **kwargs)

    monkeypatch.setattr(AttributionResult, "to_dict", flaky)
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in _records(4)), encoding="utf-8")
    code, _, err = run(
        ["explain", "--jsonl", str(src), "--out", str(dst), "--model", "hashing", "-q"],
        capsys,
        monkeypatch,
    )
    assert code == 2
    assert "in.jsonl line 2: TypeError: cannot serialise this one" in err
    assert len(dst.read_text(encoding="utf-8").splitlines()) == 3


def test_an_interrupted_run_leaves_the_previous_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Output is moved into place only at the end: an interrupt leaves the old file whole."""
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in _records(3)), encoding="utf-8")
    dst.write_text("OLD\n", encoding="utf-8")
    calls = {"n": 0}
    real = Attributor.attribute

    def interrupted(self: Attributor, *args: Any, **kwargs: Any) -> AttributionResult:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Attributor, "attribute", interrupted)
    argv = ["explain", "--jsonl", str(src), "--out", str(dst), "--model", "hashing", "-q"]
    code, _, _ = run(argv, capsys, monkeypatch)
    assert code == 130 and dst.read_text(encoding="utf-8") == "OLD\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]
    monkeypatch.setattr(Attributor, "attribute", real)
    code, _, _err = run(argv, capsys, monkeypatch)
    assert code == 0 and len(dst.read_text(encoding="utf-8").splitlines()) == 3


def test_jsonl_rejects_single_answer_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Options of the one-answer form are refused with --jsonl instead of being ignored."""
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(_records(1)[0]), encoding="utf-8")
    base = ["explain", "--jsonl", str(src), "--out", str(tmp_path / "o.jsonl")]
    for extra in (["--question", "q"], ["--answer", "x"], ["--html", "v.html"]):
        code, _, err = run([*base, *extra], capsys, monkeypatch)
        assert_one_line_error(code, err, "--jsonl")
    assert not (tmp_path / "o.jsonl").exists()


def test_jsonl_missing_file_and_missing_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing JSONL file, or no --out, exits 2."""
    code, _, err = run(
        ["explain", "--jsonl", str(tmp_path / "nope.jsonl"), "--out", "x"], capsys, monkeypatch
    )
    assert_one_line_error(code, err, "cannot read JSONL input")
    (tmp_path / "in.jsonl").write_text(json.dumps(_records(1)[0]), encoding="utf-8")
    code, _, err = run(["explain", "--jsonl", str(tmp_path / "in.jsonl")], capsys, monkeypatch)
    assert_one_line_error(code, err, "--jsonl needs --out")


def test_progress_bar_redraws_on_a_terminal() -> None:
    """On a TTY the bar is redrawn in place with counts; elsewhere only a summary line."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    bar = Progress(4, tty)
    for _ in range(4):
        bar.advance()
    bar.close()
    text = tty.getvalue()
    assert "\r[" in text and "4/4 records" in text
    assert "[" + "#" * 30 + "]" in text
    assert text.endswith("4/4 records attributed in " + text.rsplit(" in ", 1)[1])
    plain = io.StringIO()
    quiet = Progress(4, plain)
    quiet.advance(4)
    quiet.close()
    assert "\r" not in plain.getvalue() and plain.getvalue().startswith("4/4 records attributed")
    assert Progress(3, io.StringIO()).line().startswith("[" + "-" * 30 + "] 0/3")


def _save_jsonl(tmp_path: Path, attributor: Attributor) -> tuple[Path, list[AttributionResult]]:
    results = [
        attributor.attribute(f"Claim number {i} about bakeries.", [f"Bakery {i} burned."])
        for i in range(3)
    ]
    path = tmp_path / "results.jsonl"
    lines = [
        json.dumps(results[0].to_dict()),
        json.dumps(
            {
                "timestamp": "2025-01-01T00:00:00Z",
                "context": {"run_id": "x"},
                "attribution": results[1].to_dict(),
            }
        ),
        json.dumps(results[2].to_dict()),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, results


@pytest.mark.parametrize(("line", "index"), [(None, 0), ("1", 0), ("2", 1), ("-1", 2), ("3", 2)])
def test_render_picks_a_line_of_raw_or_exporter_records(
    line: str | None,
    index: int,
    tmp_path: Path,
    hashing_attributor: Attributor,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`render` re-renders a to_dict() line or an exporter record's attribution."""
    path, results = _save_jsonl(tmp_path, hashing_attributor)
    html = tmp_path / "view.html"
    argv = ["render", str(path), "--html", str(html)] + (["--line", line] if line else [])
    code, out, err = run(argv, capsys, monkeypatch)
    assert code == 0, err
    page = html.read_text(encoding="utf-8")
    assert results[index].answer_sentences[0].text in page
    assert f"[1] {results[index].answer}" in out


def test_render_reads_the_jsonl_exporter_output(
    tmp_path: Path,
    hashing_attributor: Attributor,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file written by the real JSONL exporter renders."""
    jsonl = pytest.importorskip("rag_attrib.export.jsonl")
    result = hashing_attributor.attribute(
        "The bakery burned in 1666.", ["A bakery burned in 1666."]
    )
    path = tmp_path / "trace.jsonl"
    exporter = jsonl.JSONLExporter(str(path))
    exporter.export(result, {"run_id": "r1"})
    exporter.close()
    code, _, err = run(
        ["render", str(path), "--html", str(tmp_path / "v.html"), "-q"], capsys, monkeypatch
    )
    assert code == 0, err
    assert "The bakery burned in 1666." in (tmp_path / "v.html").read_text(encoding="utf-8")


def test_render_a_json_file_and_stdin(
    tmp_path: Path,
    hashing_attributor: Attributor,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`render` also takes a pretty-printed JSON file (what `--json` writes) or stdin."""
    result = hashing_attributor.attribute("Bakeries burn.", ["Bakeries burn easily."])
    text = json.dumps(result.to_dict(), indent=2)
    (tmp_path / "r.json").write_text(text, encoding="utf-8")
    code, _, err = run(
        ["render", str(tmp_path / "r.json"), "--html", str(tmp_path / "a.html")],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    code, _, err = run(
        ["render", "-", "--html", str(tmp_path / "b.html"), "--title", "T"],
        capsys,
        monkeypatch,
        stdin=text,
    )
    assert code == 0, err
    assert "<h1>T</h1>" in (tmp_path / "b.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("content", "args", "fragments"),
    [
        ("", [], ["is empty"]),
        ('{"a": 1}\n{"b": 2}\n', ["--line", "5"], ["--line 5 is out of range"]),
        ('{"a": 1}\n{"b": 2}\n', ["--line", "2"], ["line 2", "neither a rag_attrib to_dict()"]),
        ('{"a": 1}\n\n{"b": 2}\n', ["--line", "2"], ["line 2 is blank"]),
        ('{"a": 1}\nnot json\n', ["--line", "2"], ["line 2", "not valid JSON"]),
        ('{"schema": "other/9"}', [], ["expected schema"]),
        ('{"schema": "rag_attrib.attribution/1"}', [], ["malformed attribution"]),
        ("[1, 2]", [], ["expected a JSON object"]),
    ],
)
def test_render_bad_input_exits_2(
    content: str,
    args: list[str],
    fragments: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Empty files, bad line numbers and foreign JSON exit 2 with a one-line message."""
    path = tmp_path / "in.jsonl"
    path.write_text(content, encoding="utf-8")
    code, _, err = run(
        ["render", str(path), "--html", str(tmp_path / "v.html"), *args], capsys, monkeypatch
    )
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "v.html").exists()


def test_fail_on_unsupported_exit_code(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--fail-on-unsupported` exits 1 when a sentence is unsupported, 0 otherwise."""
    base = ["explain", "--source", str(files["a"]), str(files["b"]), "--model", "hashing", "-q"]
    code, out, _ = run(
        [*base, "--answer", str(files["answer"]), "--fail-on-unsupported"], capsys, monkeypatch
    )
    assert code == 1 and out == ""
    files["answer"].write_text("It started in Farriner's bakery on Pudding Lane.", encoding="utf-8")
    code, _, _ = run(
        [*base, "--answer", str(files["answer"]), "--fail-on-unsupported"], capsys, monkeypatch
    )
    assert code == 0


def test_usage_errors_and_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """argparse usage errors return 2, --help and --version return 0."""
    code, _, err = run(["explain", "--bogus"], capsys, monkeypatch)
    assert code == 2 and "unrecognized arguments: --bogus" in err
    code, _, _ = run([], capsys, monkeypatch)
    assert code == 2
    code, out, _ = run(["explain", "--help"], capsys, monkeypatch)
    assert code == 0 and "--answer FILE" in out and "--jsonl IN" in out
    code, out, _ = run(["--version"], capsys, monkeypatch)
    assert code == 0 and out.startswith("rag-attrib ")


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONIOENCODING": "utf-8",
    }


def test_python_dash_m_with_stdin_and_bad_path(files: dict[str, Path], tmp_path: Path) -> None:
    """`python -m rag_attrib` works end to end; a bad path exits 2 with no traceback."""
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "rag_attrib",
            "explain",
            "--answer",
            "-",
            "--source",
            str(files["a"]),
            "--model",
            "hashing",
            "--json",
            str(tmp_path / "r.json"),
        ],
        input=ANSWER,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "[1] The fire started" in ok.stdout
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["answer"] == ANSWER
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "rag_attrib",
            "explain",
            "--answer",
            str(tmp_path / "nope"),
            "--source",
            str(files["a"]),
            "--model",
            "hashing",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"rag-attrib: error: cannot read answer {tmp_path / 'nope'}: No such file or directory"
    ]


@pytest.mark.slow
def test_real_model_end_to_end(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the bundled model (the default), each sentence cites the right file and the
    invented one is unsupported."""
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    code, out, err = run(
        ["explain", "--answer", str(files["answer"]), "--source", str(files["a"]),
         str(files["b"]), "--json", str(out_json), "--html", str(out_html)],
        capsys,
        monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    result = AttributionResult.from_dict(json.loads(out_json.read_text("utf-8")))
    assert result.model == "all-MiniLM-L6-v2+onnx-int8"
    first, second, third = result.answer_sentences
    assert (first.citations[0].source_id, first.citations[0].sentence_index) == (str(files["a"]), 1)
    assert second.citations[0].source_id == str(files["b"])
    assert not third.supported
    assert "UNSUPPORTED" in out and "model all-MiniLM-L6-v2+onnx-int8" in out
    assert out_html.stat().st_size > 5000


def test_language_chooses_the_splitter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--language german keeps "100. Jahrestag" in one sentence; English splits there."""
    text = tmp_path / "de.txt"
    text.write_text("Die Feier zum 100. Jahrestag fand statt. Viele Gäste kamen.", encoding="utf-8")
    counts = {}
    for language in ("english", "german"):
        argv = ["explain", "--answer", str(text), "--source", str(text), "--model", "hashing"]
        code, out, _ = run([*argv, "--language", language, "--json", "-"], capsys, monkeypatch)
        assert code == 0
        counts[language] = len(json.loads(out)["answer_sentences"])
    assert counts == {"english": 3, "german": 2}
    code, _, err = run([*argv, "--language", "klingon"], capsys, monkeypatch)
    assert code == 2 and "invalid choice" in err


def test_uncached_model_fails_at_once_offline(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An uncached --model name with HF_HUB_OFFLINE set: one line naming it and the fix."""
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["explain", "--answer", str(files["answer"]), "--source", str(files["a"])]
    code, out, err = run([*argv, "--model", "no-such-org/no-such-model"], capsys, monkeypatch)
    assert_one_line_error(
        code, err, "HF_HUB_OFFLINE", "not in the local cache", "SentenceTransformer"
    )
    assert out == ""


@pytest.mark.parametrize("name", ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"])
def test_the_bundled_model_by_name_without_torch_says_to_leave_model_out(
    name: str,
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A default install has no sentence-transformers; a user who passes the model name the
    output shows is told that it is the bundled default, in one line; other names the extra."""
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if not installed
    argv = ["explain", "--answer", str(files["answer"]), "--source", str(files["a"])]
    code, out, err = run([*argv, "--model", name], capsys, monkeypatch)
    assert_one_line_error(code, err, "is the bundled default: leave --model out", "[st]")
    assert out == ""
    code, _, err = run([*argv, "--model", "BAAI/bge-small-en-v1.5"], capsys, monkeypatch)
    assert_one_line_error(code, err, "needs sentence-transformers", "[st]")
    assert "bundled default" not in err


@pytest.mark.parametrize("source_id", ["s1", "a-rather-long-source-name"])
def test_table_columns_line_up_under_their_header(
    source_id: str, hashing_attributor: Attributor
) -> None:
    """Each citation row's source id, sentence number and text start under their headings,
    whether the ids are shorter or longer than the word "source"."""
    result = hashing_attributor.attribute(
        "The tower is 330 metres tall.", [Source(source_id, "The tower is 330 metres tall.")]
    )
    lines = _table(result, 100).splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("score"))
    header, row = lines[at], lines[at + 1]
    assert row[header.index("source") :].startswith(source_id[:19])
    assert row[header.index("#")] == "1"  # right-aligned under "#"
    assert row[header.index("text") :] == "The tower is 330 metres tall."


def test_explain_records_the_verdict_it_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer, source = tmp_path / "answer.txt", tmp_path / "a.txt"
    answer.write_text("The tower is 330 metres tall.", encoding="utf-8")
    source.write_text("The tower is 330 metres tall and made of iron.", encoding="utf-8")
    base = ["explain", "--answer", str(answer), "--source", str(source), "--json", "-", "-q"]
    for verdict in ("similarity", "verifier"):
        assert main([*base, "--model", "hashing", "--verdict", verdict]) == 0
        assert json.loads(capsys.readouterr().out)["config"]["verdict"] == verdict
