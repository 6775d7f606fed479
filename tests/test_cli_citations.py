"""`rag-attrib check-citations`: a line per marker, --json, --repair; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag_attrib import CitationReport
from rag_attrib.cli import main

ANSWER = (
    "The fire started in a bakery on Pudding Lane [2]. "
    "Strong winds spread the flames [2]. Aliens landed in Hyde Park [5]."
)


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    """The answer and two sources on disk: [answer, a, b]."""
    paths = [tmp_path / "answer.txt", tmp_path / "a.txt", tmp_path / "b.txt"]
    paths[0].write_text(ANSWER, encoding="utf-8")
    paths[1].write_text(
        "The Great Fire broke out in 1666.\nIt started in a bakery on Pudding Lane.",
        encoding="utf-8",
    )
    paths[2].write_text("Strong easterly winds spread the flames across the houses.", "utf-8")
    return [str(p) for p in paths]


def check(files: list[str], *extra: str) -> list[str]:
    """The argument list for the files plus `extra`."""
    return [
        "check-citations",
        "--answer",
        files[0],
        "--source",
        files[1],
        files[2],
        "--model",
        "hashing",
        *extra,
    ]


def test_prints_each_marker(files: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A line per marker with its verdict and the source that backs a wrong one."""
    assert main(check(files)) == 0
    out = capsys.readouterr().out
    assert f"WRONG SOURCE  cites {files[2]}; backed by {files[1]}" in out
    assert "CORRECT" in out and "DANGLING" in out
    assert "3 marker(s): 1 correct, 1 wrong source, 1 dangling" in out


def test_json_and_repair(
    files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json writes the versioned report; --repair writes the repaired answer."""
    fixed = tmp_path / "fixed.txt"
    assert main(check(files, "--json", "-", "--repair", str(fixed), "--fail-on-wrong")) == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["schema"] == "rag_attrib.citations/1"
    assert [m["verdict"] for m in data["markers"]] == ["wrong_source", "correct", "dangling"]
    assert CitationReport.from_dict(data).counts()["dangling"] == 1
    assert [c["kind"] for c in data["repair"]["changes"]] == ["replaced", "dropped"]
    assert fixed.read_text(encoding="utf-8") == (
        "The fire started in a bakery on Pudding Lane [1]. "
        "Strong winds spread the flames [2]. Aliens landed in Hyde Park."
    )
    assert "WRONG SOURCE" in captured.err  # the table moves to stderr when JSON is on stdout


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--add-missing"], "go with --repair"),
        (["--json", "-", "--repair", "-"], "only one of --json, --repair and --html"),
        (["--html", "-", "--repair", "-"], "only one of --json, --repair and --html"),
        (["--language", "klingon"], "invalid choice"),
        (["--numbering", "2-based"], "invalid choice"),
    ],
)
def test_bad_options_exit_2(
    files: list[str], extra: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad options: exit 2 with a message naming the problem."""
    assert main(check(files, *extra)) == 2
    assert fragment in capsys.readouterr().err


def test_missing_file_is_one_line(files: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable answer: one line, exit 2, no traceback."""
    assert main(check([files[0] + ".missing", files[1], files[2]])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rag-attrib: error: cannot read answer")


def test_html_colours_each_marker(
    files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--html writes the view with the answer as written and each reference in its verdict's
    colour (wrong source amber, correct green, dangling red), beside the JSON on stdout."""
    from test_render_html import Tree

    page = tmp_path / "markers.html"
    assert main(check(files, "--html", str(page), "--title", "Checked", "--json", "-")) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert f"HTML view written to {page}" in captured.err
    tree = Tree(page.read_text(encoding="utf-8"))
    assert tree.find("ra-mk-answer")[0].text == ANSWER
    marks = [e for e in tree.find("ra-mk") if "ra-mk-answer" in e.ancestors]
    colour = {"correct": "ra-mk-ok", "wrong_source": "ra-mk-warn", "dangling": "ra-mk-bad"}
    assert [
        (e.text, colour[m["verdict"]] in e.attrs["class"].split())
        for e, m in zip(marks, data["markers"], strict=True)
    ] == [("2", True), ("2", True), ("5", True)]
    assert "<title>Checked</title>" in page.read_text(encoding="utf-8")


def test_language_picks_the_splitter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--language german keeps "am 3. Oktober" in one sentence, so the marker covers it all;
    the English splitter cuts there and leaves "... am 3." as a sentence with no marker."""
    answer = tmp_path / "antwort.txt"
    source = tmp_path / "quelle.txt"
    answer.write_text("Der Brand begann am 3. Oktober in einer Bäckerei [1].", encoding="utf-8")
    source.write_text("Der Brand begann am 3. Oktober in einer Bäckerei.", encoding="utf-8")
    texts = {}
    for language in ("english", "german"):
        args = ["check-citations", "--answer", str(answer), "--source", str(source)]
        assert main([*args, "--model", "hashing", "--language", language, "--json", "-"]) == 0
        data = json.loads(capsys.readouterr().out)
        texts[language] = [x["text"] for x in data["missing"] + data["unsupported"]]
        assert [m["verdict"] for m in data["markers"]] == ["correct"]
    assert texts["english"] == ["Der Brand begann am 3."]
    assert texts["german"] == []


@pytest.mark.slow
def test_verdict_verifier_flags_the_invented_claim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--verdict verifier: the bundled verifier decides; the invented, cited claim is unsupported."""
    answer = tmp_path / "answer.txt"
    source = tmp_path / "a.txt"
    answer.write_text(
        "The fire began in a bakery on Pudding Lane [1]. It was started by foreign agents [1].",
        encoding="utf-8",
    )
    source.write_text("It started in a bakery on Pudding Lane in 1666.", encoding="utf-8")
    args = ["check-citations", "--answer", str(answer), "--source", str(source), "--json", "-"]
    verdicts = {}
    for verdict in ("similarity", "verifier"):
        assert main([*args, "--verdict", verdict, "-q"]) == 0
        data = json.loads(capsys.readouterr().out)
        verdicts[verdict] = [m["verdict"] for m in data["markers"]]
    # both: the invented sentence opens with "It", and neither verdict lets the true sentence
    # before it lend it support
    assert verdicts["verifier"] == verdicts["similarity"] == ["correct", "unsupported"]
    assert main([*args, "--verdict", "nonsense"]) == 2
    assert "--verdict" in capsys.readouterr().err
