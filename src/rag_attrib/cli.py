"""The `rag-attrib` command line: explain an answer, batch a JSONL file, re-render a result.

    rag-attrib explain --answer answer.txt --source a.txt b.txt [--html view.html] [--json out.json]
    rag-attrib explain --jsonl records.jsonl --out results.jsonl
    rag-attrib render results.jsonl --line 3 --html view.html
    rag-attrib check-citations --answer answer.txt --source a.txt b.txt [--json -] [--repair -]
        [--html markers.html]
    rag-attrib batch traffic.jsonl --out attributed/ [--format parquet] [--engine ray]

A thin shell over the public API: bad input gives a one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, cast

from . import __version__
from .citations import CitationReport, check_citations
from .config import VERDICTS, AttributionConfig, Verdict
from .engine import Attributor
from .errors import EmptyInputError, RagAttribError
from .export.jsonl import dumps_line, split_lines
from .integrations._citations import check as check_written
from .markers import NUMBERINGS
from .repair import repair_report
from .results import AttributionResult, Source

__all__ = ["main"]

PROG = "rag-attrib"
EXIT_OK, EXIT_UNSUPPORTED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
# `--model hashing` selects the deterministic word-hashing embedder of rag_attrib.testing: no
# model load, for tests and demos. Kept out of --help: its scores mean little.
HASHING_MODEL = "hashing"
LANGUAGES = ("english", "german", "spanish", "french")


class InputError(RagAttribError, ValueError):
    """Input the CLI cannot use (unreadable file, malformed record); the message says which."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI.

    Args:
        argv: the arguments (without the program name); None reads `sys.argv`.

    Returns:
        The exit code: 0 done, 1 `--fail-on-unsupported` found an unsupported sentence,
        2 bad input or usage, 130 interrupted.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and usage errors; return its code
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (RagAttribError, OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # every failure is one line and a non-zero exit, never a traceback
        print(f"{PROG}: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    return code


# --- argument parsing -----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Attribute each sentence of an answer to the source sentences that support it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    explain = commands.add_parser(
        "explain",
        help="attribute an answer to its sources (or every record of a JSONL file)",
        description=(
            "Attribute an answer (--answer, --source) and print its citations; or attribute "
            "every {answer, sources, question} record of --jsonl into --out, one result a line."
        ),
    )
    single = explain.add_argument_group("one answer")
    single.add_argument("--answer", metavar="FILE", help="the answer text file, or - for stdin")
    single.add_argument("--source", metavar="FILE", nargs="+", help="source text files")
    single.add_argument("--question", metavar="TEXT", help="the question that was asked")
    single.add_argument("--json", metavar="OUT", help="write the result as JSON (- for stdout)")
    batch = explain.add_argument_group("a JSONL batch")
    batch.add_argument(
        "--jsonl", metavar="IN", help="records {answer, sources, question} (- for stdin)"
    )
    batch.add_argument(
        "--out", metavar="OUT", help="where to write one result a line (- for stdout)"
    )
    batch.add_argument(
        "--errors",
        metavar="FILE",
        help="write failed records as {line, error} lines here (default: stderr)",
    )
    _add_attributor_options(explain)
    _add_view_options(explain)
    explain.add_argument(
        "--fail-on-unsupported",
        action="store_true",
        help="exit with code 1 when an answer sentence is unsupported",
    )
    explain.add_argument("-q", "--quiet", action="store_true", help="print no table or progress")
    explain.set_defaults(run=_explain)

    render = commands.add_parser(
        "render",
        help="write the HTML view of a saved result",
        description=(
            "Re-render a result saved as JSON or JSONL: a to_dict() object, or an exporter "
            'record {"timestamp": ..., "context": ..., "attribution": ...}.'
        ),
    )
    render.add_argument("input", metavar="IN", help="a .json or .jsonl file (- for stdin)")
    render.add_argument(
        "--line",
        type=int,
        default=1,
        metavar="N",
        help="which line of a JSONL file (1-based; negative counts from the end; default 1)",
    )
    _add_view_options(render)
    render.add_argument("-q", "--quiet", action="store_true", help="print no table")
    render.set_defaults(run=_render)

    check = commands.add_parser(
        "check-citations",
        help="check the [n] / [^n] / <cite> markers an answer carries against its sources",
        description=(
            "Give each citation marker of the answer a verdict (correct, wrong source, "
            "unsupported, dangling) and list supported sentences that carry none. Sources are "
            "numbered 1-based in the order given, unless --numbering says otherwise."
        ),
    )
    check.add_argument("--answer", metavar="FILE", required=True, help="the answer (- for stdin)")
    check.add_argument("--source", metavar="FILE", nargs="+", required=True, help="source files")
    check.add_argument("--question", metavar="TEXT", help="the question that was asked")
    check.add_argument(
        "--numbering",
        choices=list(NUMBERINGS),
        default="auto",
        help="how markers name sources (default auto: 1-based unless 0-based or ids fit)",
    )
    check.add_argument("--json", metavar="OUT", help="write the report as JSON (- for stdout)")
    check.add_argument("--repair", metavar="OUT", help="write the repaired answer (- for stdout)")
    check.add_argument(
        "--add-missing", action="store_true", help="with --repair: add markers where none are"
    )
    check.add_argument(
        "--flag-unsupported",
        action="store_true",
        help="with --repair: flag claims no source supports",
    )
    check.add_argument(
        "--html",
        metavar="OUT",
        help="write the HTML view with each marker green / amber / red by its verdict",
    )
    check.add_argument("--title", metavar="TEXT", help="heading of the HTML view")
    _add_attributor_options(check)
    check.add_argument(
        "--fail-on-wrong", action="store_true", help="exit with code 1 when a marker is not correct"
    )
    check.add_argument("-q", "--quiet", action="store_true", help="print no table")
    check.set_defaults(run=_check_citations)
    from .batch.cli import add_batch_command

    add_batch_command(commands)
    return parser


def _add_attributor_options(parser: argparse.ArgumentParser) -> None:
    """--model, --language and --verdict: what `_attributor` is built from."""
    parser.add_argument(
        "--model",
        metavar="NAME",
        help=(
            "sentence-transformers model name or path (default: the bundled all-MiniLM-L6-v2; "
            "others need the [st] extra)"
        ),
    )
    parser.add_argument(
        "--language",
        choices=LANGUAGES,
        default="english",
        help="language of the texts, for sentence splitting (default: english)",
    )
    parser.add_argument(
        "--verdict",
        choices=list(VERDICTS),
        default=AttributionConfig().verdict,
        help=(
            "how `supported` is decided: the similarity verdict (default, fastest) or the "
            "bundled trained verifier (see README, Verdict)"
        ),
    )


def _add_view_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--html", metavar="OUT", help="write the HTML view")
    parser.add_argument(
        "--sankey", action="store_true", help="embed the Sankey flow in the HTML (needs plotly)"
    )
    parser.add_argument("--title", metavar="TEXT", help="heading of the HTML view")


# --- commands -------------------------------------------------------------------------------


def _explain(args: argparse.Namespace) -> int:
    if args.jsonl is not None:
        return _explain_batch(args)
    if args.answer is None or not args.source:
        msg = "explain needs --answer FILE and --source FILE... (or --jsonl IN --out OUT)"
        raise InputError(msg)
    if args.out is not None or args.errors is not None:
        raise InputError("--out goes with --jsonl (as --errors does); for one answer use --json")
    _check_view_options(args)
    if [args.answer, *args.source].count("-") > 1:
        raise InputError("only one of --answer and --source can read stdin (-)")

    answer = _read_text(args.answer, "answer")
    if not answer.strip():
        raise EmptyInputError(f"the answer ({_display(args.answer)}) is empty")
    sources = []
    for path in args.source:
        text = _read_text(path, "source")
        if not text.strip():
            raise EmptyInputError(f"source {_display(path)} is empty")
        sources.append(Source(id=_display(path), text=text, metadata={"path": path}))

    attributor = _attributor(args.model, args.language, args.verdict)
    result = attributor.attribute(answer, sources, args.question)
    # the LLM cited as it wrote: its markers are judged by the integrations' own check (the
    # JSON carries "citation_check", the HTML view colours each marker)
    report = check_written(result)
    if report is not None:
        result = replace(result, citation_check=report)
    json_to_stdout = args.json == "-"
    if args.json is not None:
        _write_text(args.json, json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n")
    _write_views(args, result)
    if not args.quiet:
        # with JSON on stdout, the table goes to stderr so the JSON stays parseable
        stream = sys.stderr if json_to_stdout else sys.stdout
        _print_table(result, stream)
        if result.citation_check is not None:
            _emit(
                stream, "\nCitation markers, as written:\n" + _citation_table(result.citation_check)
            )
    if args.fail_on_unsupported and result.unsupported:
        return EXIT_UNSUPPORTED
    return EXIT_OK


def _explain_batch(args: argparse.Namespace) -> int:
    if args.answer is not None or args.source or args.json is not None or args.question:
        msg = "--jsonl cannot be combined with --answer, --source, --question or --json"
        raise InputError(msg)
    if args.html is not None or args.sankey:
        raise InputError("--jsonl writes JSONL only; use `rag-attrib render OUT --line N --html`")
    if args.out is None:
        raise InputError("--jsonl needs --out OUT (- for stdout)")
    name = _display(args.jsonl)
    lines = _record_lines(_read_text(args.jsonl, "JSONL input"), name)
    attributor = _attributor(args.model, args.language, args.verdict)
    progress = Progress(len(lines), sys.stderr, enabled=not args.quiet)
    unsupported = 0
    failures: list[tuple[int, str]] = []
    # A bad record is reported with its line and skipped; the output appears (replacing any
    # earlier one) only when every record has been tried, so it never mixes two runs.
    with _atomic_output(args.out) as out:
        for number, line in lines:
            where = f"{name} line {number}"
            try:
                record = _record(_json_line(line, where), where)
                result = attributor.attribute(record.answer, record.sources, record.question)
                row = dumps_line(result.to_dict())
            except Exception as exc:  # one bad record must not cost the others
                failures.append((number, _record_error(exc, where)))
                if args.errors is None:
                    progress.interrupt(f"{PROG}: error: {failures[-1][1]}")
            else:
                unsupported += len(result.unsupported)
                out.write(row + "\n")
            progress.advance()
    progress.close(failed=len(failures))
    if failures:
        if args.errors is not None:
            lines_out = (dumps_line({"line": n, "error": e}) for n, e in failures)
            _write_text(args.errors, "".join(x + "\n" for x in lines_out))
            where = f" (see {_display(args.errors)})"
        else:
            where = ""
        done = len(lines) - len(failures)
        msg = f"{len(failures)} of {len(lines)} records failed{where}; {done} written"
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return EXIT_ERROR
    if args.fail_on_unsupported and unsupported:
        return EXIT_UNSUPPORTED
    return EXIT_OK


def _render(args: argparse.Namespace) -> int:
    _check_view_options(args)
    if args.html is None:
        raise InputError("render needs --html OUT")
    result = _load_result(_read_text(args.input, "input"), _display(args.input), args.line)
    _write_views(args, result)
    if not args.quiet:
        _print_table(result, sys.stdout)
    return EXIT_OK


def _check_citations(args: argparse.Namespace) -> int:
    if [args.answer, *args.source].count("-") > 1:
        raise InputError("only one of --answer and --source can read stdin (-)")
    if (args.add_missing or args.flag_unsupported) and args.repair is None:
        raise InputError("--add-missing and --flag-unsupported go with --repair OUT")
    if [args.json, args.repair, args.html].count("-") > 1:
        raise InputError("only one of --json, --repair and --html can write to stdout (-)")
    answer = _read_text(args.answer, "answer")
    sources = []
    for path in args.source:
        text = _read_text(path, "source")
        sources.append(Source(id=_display(path), text=text, metadata={"path": path}))
    report = check_citations(
        answer,
        sources,
        question=args.question,
        attributor=_attributor(args.model, args.language, args.verdict),
        numbering=args.numbering,
    )
    data = report.to_dict()
    if args.repair is not None:
        fixed = repair_report(
            report, add_missing=args.add_missing, flag_unsupported=args.flag_unsupported
        )
        data["repair"] = fixed.to_dict()
        del data["repair"]["report"]
        _write_text(args.repair, fixed.text)
    if args.json is not None:
        _write_text(args.json, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    if args.html is not None and report.result is not None:
        from .render.html import render_html

        _write_text(args.html, render_html(report.result, title=args.title, citations=report))
        if not args.quiet and args.html != "-":
            print(f"HTML view written to {args.html}", file=sys.stderr)
    if not args.quiet:
        to_stdout = "-" in (args.json, args.repair, args.html)
        _emit(sys.stderr if to_stdout else sys.stdout, _citation_table(report))
    if args.fail_on_wrong and report.wrong:
        return EXIT_UNSUPPORTED
    return EXIT_OK


def _citation_table(report: CitationReport) -> str:
    """One line per marker: the marker, its verdict, and the claim it covers."""
    lines = []
    for m in report.markers:
        claim = _clip(" ".join(m.claim.text.split()), 70) if m.claim else "(covers no text)"
        cited = m.source_id if m.source_id is not None else "no such source"
        line = f"{m.text:<10} {m.verdict.upper().replace('_', ' '):<13} cites {cited}"
        if m.suggested_source_id is not None and m.verdict in ("wrong_source", "dangling"):
            line += f"; backed by {m.suggested_source_id}"
        lines += [line, f"           {claim}"]
        if m.verdict == "wrong_source" and m.evidence is not None:
            lines.append(f"           evidence: {_clip(' '.join(m.evidence.text.split()), 70)}")
    if not report.markers:
        lines.append("(the answer has no citation markers)")
    for x in report.missing:
        text = _clip(" ".join(x.text.split()), 70)
        lines.append(f"{'(none)':<10} {'MISSING':<13} backed by {x.suggested_source_id}: {text}")
    counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in report.counts().items() if n)
    lines += [
        "",
        f"{len(report.markers)} marker(s): {counts or 'none'} | numbering {report.numbering}",
    ]
    if report.error:
        lines.append(f"error: {report.error}")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _check_view_options(args: argparse.Namespace) -> None:
    if args.sankey and args.html is None:
        raise InputError("--sankey needs --html OUT")


def _write_views(args: argparse.Namespace, result: AttributionResult) -> None:
    if args.html is None:
        return
    from .render.html import render_html

    _write_text(args.html, render_html(result, title=args.title, sankey=args.sankey))
    if not args.quiet and args.html != "-":
        print(f"HTML view written to {args.html}", file=sys.stderr)


def _attributor(
    model: str | None, language: str = "english", verdict: str | None = None
) -> Attributor:
    from .splitting import PunktSplitter

    splitter = PunktSplitter(language)
    config = AttributionConfig(verdict=cast(Verdict, verdict)) if verdict else AttributionConfig()
    if model == HASHING_MODEL:
        from .testing import HashingEmbedder

        return Attributor(HashingEmbedder(), config=config, splitter=splitter)
    if model is None:
        return Attributor(config=config, splitter=splitter)
    from .embedders import SentenceTransformerEmbedder

    _check_model_is_reachable(model)
    return Attributor(SentenceTransformerEmbedder(model), config=config, splitter=splitter)


def _check_model_is_reachable(model: str) -> None:
    """Fail at once, with the fix, when a model name is neither on disk nor downloadable
    (instead of the Hugging Face Hub's minute of retries)."""
    import importlib.util
    import os

    from .embedders import DEFAULT_MODEL, ST_INSTALL

    if Path(model).expanduser().exists():
        return
    if importlib.util.find_spec("sentence_transformers") is None:
        if model.removeprefix("sentence-transformers/") == DEFAULT_MODEL:
            # the name the output shows ("all-MiniLM-L6-v2+onnx-int8"): it is already here
            raise InputError(
                f"--model {model} is the bundled default: leave --model out to use it "
                f"(int8, on ONNX Runtime); its torch version needs sentence-transformers: "
                f"{ST_INSTALL}"
            )
        raise InputError(f"--model {model} needs sentence-transformers: {ST_INSTALL}")
    from huggingface_hub import try_to_load_from_cache

    repos = [model] if "/" in model else [model, f"sentence-transformers/{model}"]
    for repo in repos:
        for name in ("modules.json", "config.json"):
            with contextlib.suppress(Exception):  # a malformed name is simply not cached
                if isinstance(try_to_load_from_cache(repo, name), str):
                    return
    get = f"download it once online (SentenceTransformer({model!r})) or pass a local model folder"
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        raise InputError(
            f"model {model!r} is not in the local cache and HF_HUB_OFFLINE is set; {get}"
        )
    if not _hub_reachable():
        msg = (
            f"model {model!r} is not in the local cache and the Hugging Face Hub is "
            f"unreachable (offline? HF_HUB_OFFLINE=1 skips the Hub); {get}"
        )
        raise InputError(msg)


def _hub_reachable(timeout: float = 3.0) -> bool:
    import os
    import socket
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout):
            return True
    except OSError:
        return False


# --- input ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One validated line of an `explain --jsonl` input."""

    answer: str
    sources: list[Source]
    question: str | None


def _record_lines(text: str, name: str) -> list[tuple[int, str]]:
    """The non-blank lines of a JSONL input with their 1-based numbers."""
    lines = [(n, line) for n, line in enumerate(split_lines(text), start=1) if line.strip()]
    if not lines:
        raise EmptyInputError(f"{name} has no records")
    return lines


def _json_line(line: str, where: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InputError(f"{where}: unreadable JSON ({_one_line(exc)})") from None


def _record_error(exc: Exception, where: str) -> str:
    """One line for a failed record, naming its line (InputErrors already do)."""
    text = _one_line(exc)
    if isinstance(exc, InputError):
        return text
    if isinstance(exc, RagAttribError):
        return f"{where}: {text}"
    return f"{where}: {type(exc).__name__}: {text}"


def _record(data: Any, where: str) -> Record:
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected an object {{answer, sources, question}}")
    answer, sources, question = data.get("answer"), data.get("sources"), data.get("question")
    if not isinstance(answer, str):
        raise InputError(f"{where}: 'answer' must be a string")
    if not answer.strip():
        raise InputError(f"{where}: 'answer' is empty")
    if not isinstance(sources, list):
        raise InputError(f"{where}: 'sources' must be a list of strings or {{id, text}} objects")
    if question is not None and not isinstance(question, str):
        raise InputError(f"{where}: 'question' must be a string or null")
    return Record(answer, [_source(s, k, where) for k, s in enumerate(sources)], question)


def _source(item: Any, k: int, where: str) -> Source:
    if isinstance(item, str):
        return Source(id=str(k), text=item)
    if isinstance(item, Mapping) and isinstance(item.get("text"), str):
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise InputError(f"{where}: sources[{k}].metadata must be an object")
        return Source(id=str(item.get("id", k)), text=item["text"], metadata=dict(metadata))
    raise InputError(f"{where}: sources[{k}] must be a string or an object with a 'text' string")


def _load_result(text: str, name: str, line: int) -> AttributionResult:
    """Read one result: the whole input as one JSON object, or line `line` of a JSONL file."""
    if not text.strip():
        raise EmptyInputError(f"{name} is empty")
    try:
        data = json.loads(text)
        where = name
    except RecursionError:
        raise InputError(f"{name}: JSON nested too deeply to read") from None
    except ValueError:  # JSONDecodeError: maybe JSONL
        data, where = _jsonl_line(text, name, line)
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a JSON object")
    if isinstance(data.get("attribution"), Mapping) and "schema" not in data:
        data = data["attribution"]  # a JSONL exporter record
    if "schema" not in data:
        msg = f"{where}: neither a rag_attrib to_dict() nor an exporter record with 'attribution'"
        raise InputError(msg)
    try:
        return AttributionResult.from_dict(data)
    except ValueError as exc:  # from_dict names the bad field
        raise InputError(f"{where}: malformed attribution ({exc})") from None


def _jsonl_line(text: str, name: str, line: int) -> tuple[Any, str]:
    lines = split_lines(text)
    if line == 0 or abs(line) > len(lines):
        raise InputError(f"{name} has {len(lines)} line(s); --line {line} is out of range")
    number = line if line > 0 else len(lines) + line + 1
    where = f"{name} line {number}"
    if not lines[number - 1].strip():
        raise InputError(f"{where} is blank")
    return _json_line(lines[number - 1], where), where


def _read_text(path: str, what: str) -> str:
    """Read a UTF-8 file, or stdin for "-"."""
    try:
        if path == "-":
            buffer = getattr(sys.stdin, "buffer", None)
            return buffer.read().decode("utf-8") if buffer is not None else sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"cannot read {what} {_display(path)}: not UTF-8 text ({exc.reason})"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {_display(path)}: {exc.strerror or exc}") from None


def _write_text(path: str, text: str) -> None:
    with _atomic_output(path) as out:
        out.write(text)


@contextlib.contextmanager
def _atomic_output(path: str) -> Iterator[IO[str]]:
    """Write UTF-8 to a temporary file beside `path` and move it into place on success.

    A failure or an interrupt leaves `path` as it was (never half old, half new). "-" yields
    stdout (left open).
    """
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise InputError(f"cannot write {_display(path)}: {exc.strerror or exc}") from None
    try:
        with open(fd, "w", encoding="utf-8") as out:
            yield out
        os.replace(tmp, target)
    except OSError as exc:
        raise InputError(f"cannot write {_display(path)}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _display(path: str) -> str:
    return "stdin" if path == "-" else path


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# --- output -----------------------------------------------------------------------------------


class Progress:
    """A stdlib progress bar on a stream: redrawn in place on a terminal, one summary line
    otherwise (so logs stay clean).

    Args:
        total: the number of steps.
        stream: where to draw (stderr).
        enabled: False draws nothing.
    """

    def __init__(self, total: int, stream: IO[str], *, enabled: bool = True) -> None:
        self.total = total
        self.stream = stream
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self.live = enabled and _isatty(stream)

    def advance(self, n: int = 1) -> None:
        """Record `n` finished steps and redraw (at most ten times a second)."""
        self.done += n
        now = time.monotonic()
        if self.live and (now - self._drawn >= 0.1 or self.done >= self.total):
            self._drawn = now
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def line(self, width: int = 30) -> str:
        """The bar as text, e.g. `[#######-------]  45/100 records  12.3/s  eta 4s`."""
        fraction = self.done / self.total if self.total else 1.0
        filled = round(width * fraction)
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        digits = len(str(self.total))
        return (
            f"[{'#' * filled}{'-' * (width - filled)}] {self.done:>{digits}}/{self.total} "
            f"records  {rate:.1f}/s  eta {eta:.0f}s "
        )

    def interrupt(self, line: str) -> None:
        """Print `line` (even when disabled: errors are never quiet), keeping the bar below it."""
        if self.live:
            self.stream.write("\r\x1b[K")
        self.stream.write(line + "\n")
        if self.live:
            self.stream.write(self.line())
        self.stream.flush()

    def close(self, failed: int = 0) -> None:
        """Finish the bar (or print the summary line); `failed` steps are not counted done."""
        if not self.enabled:
            return
        if self.live:
            self.stream.write("\n")
        elapsed = time.monotonic() - self.started
        done = self.done - failed
        self.stream.write(f"{done}/{self.total} records attributed in {elapsed:.1f} s\n")
        self.stream.flush()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _print_table(result: AttributionResult, out: IO[str]) -> None:
    width = max(60, min(120, shutil.get_terminal_size((100, 24)).columns))
    _emit(out, _table(result, width))


def _table(result: AttributionResult, width: int) -> str:
    """The citations as plain text: each answer sentence, then its cited source sentences."""
    lines: list[str] = []
    if result.question:
        lines += [*textwrap.wrap(f"Q: {result.question}", width), ""]
    # at least as wide as its header, so short ids ("s1") keep the columns under it
    id_width = min(20, max([len("source"), *(len(s.id) for s in result.sources)]))
    indent = "      "
    for s in result.answer_sentences:
        lines += textwrap.wrap(f"[{s.index + 1}] {s.text}", width, subsequent_indent="    ")
        if not s.claim:
            lines.append(f"{indent}not a claim (it talks to the reader): not checked")
            continue
        if not s.supported:
            why = "; ".join(s.issues) or "nothing backs this"
            lines.append(f"{indent}UNSUPPORTED (support {s.support:.2f}): {why}")
            if not s.citations:
                continue
            # the nearest sources are shown, but they do not back the sentence
            lines.append(f"{indent}closest, does not support:")
        elif not s.citations:
            lines.append(f"{indent}(no citation above the score threshold)")
            continue
        else:
            lines.append(f"{indent}supported (support {s.support:.2f})")
        header = f"{'score':>5}  {'strength':>8}  {'source':<{id_width}}  {'#':>3}  text"
        lines.append(indent + header)
        for c in s.citations:
            prefix = f"{indent}{c.score:5.2f}  {c.similarity:8.2f}  "
            prefix += f"{_clip(c.source_id, id_width):<{id_width}}  {c.sentence_index + 1:>3}  "
            lines.append(prefix + _clip(" ".join(c.text.split()), max(10, width - len(prefix))))
    if not result.answer_sentences:
        lines.append("(the answer has no sentences)")
    lines += ["", "Share of the answer per source:"]
    for source in sorted(result.sources, key=lambda x: -x.score):
        bar = "#" * round(max(0.0, min(1.0, source.score)) * 30)
        lines.append(f"  {_clip(source.id, id_width):<{id_width}}  {source.score:6.1%}  {bar}")
    n = sum(s.claim for s in result.answer_sentences)
    summary = f"coverage {result.coverage:.0%} ({n - len(result.unsupported)}/{n} supported)"
    if result.model:
        summary += f" | model {result.model}"
    if "total_ms" in result.timings:
        summary += f" | {result.timings['total_ms']:.0f} ms"
    lines += ["", summary]
    if result.error:
        lines.append(f"error: {result.error}")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _emit(out: IO[str], text: str) -> None:
    """Write `text`, replacing what the stream's encoding cannot show instead of failing."""
    try:
        out.write(text)
    except UnicodeEncodeError:
        encoding = getattr(out, "encoding", None) or "ascii"
        out.write(text.encode(encoding, "replace").decode(encoding))
    out.flush()


if __name__ == "__main__":  # pragma: no cover - `python -m rag_attrib` goes through __main__
    raise SystemExit(main())
