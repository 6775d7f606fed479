"""Generated input (hypothesis): no crash, valid offsets, finite numbers, exact round trips,
the same result for the same input, and hostile saved files refused with a named field."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag_attrib import AttributionConfig, AttributionResult, Attributor, Source
from rag_attrib.testing import HashingEmbedder

# Bounded in time: a few hundred cases per run, each a few milliseconds.
ENGINE = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

WORDS = (
    "Paris capital France tower opened 1889 Curie born Warsaw 3.5 1,200 I we it they "
    "Dr. e.g. U.S. not never price rose fell % $ \u2013 « » ? ! …"
).split()

# Any code point, lone surrogates and control characters included.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
# What the web and LLMs hand over and plain generation rarely hits: lone surrogates, NUL and
# control characters, zero-width and direction marks, line and paragraph separators, emoji.
TRICKY = "\ud800\udfff\ud83d\x00\x07\x1b\x7f\x85\u200b\u200d\u200f\u202e\u2028\u2029\ufeff\ufffd\u0301😀אب"
tricky_text = st.text(st.one_of(st.sampled_from(TRICKY), st.sampled_from(" .?!aZ9")), max_size=40)
prose = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join), max_size=6
).map(lambda ss: " ".join(s + "." for s in ss))
texts = st.one_of(
    prose,
    any_text,
    st.tuples(prose, any_text, prose).map("".join),
    st.tuples(prose, tricky_text, prose, tricky_text).map("".join),
)

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)
    ),
    max_leaves=12,
)
metadata = st.one_of(
    st.dictionaries(st.text(max_size=8), json_value, max_size=4),
    json_value,  # not a mapping at all
    st.builds(lambda: {"obj": object(), "arr": np.arange(3), "t": (1, 2), "s": {3, 1}}),
)
sources = st.lists(
    st.one_of(
        texts,
        st.builds(Source, id=st.text(max_size=8), text=texts, metadata=metadata),
    ),
    max_size=4,
)
configs = st.builds(
    AttributionConfig,
    normalization=st.sampled_from(["softmax", "none", "minmax"]),
    temperature=st.one_of(
        st.floats(min_value=5e-324, max_value=1e6, allow_nan=False, allow_infinity=False),
        st.sampled_from([1e-300, 0.05, 1.0]),
    ),
    aggregation=st.sampled_from(["max", "mean", "weighted"]),
    window=st.integers(1, 3),
    top_k=st.integers(1, 4),
    min_score=st.floats(0.0, 1.0),
    support_threshold=st.floats(-1.0, 1.0),
    lexical_weight=st.floats(0.0, 1.0),
    context_weight=st.floats(0.0, 1.0),
    paraphrase_margin=st.one_of(st.none(), st.floats(0.0, 2.0)),
    use_question=st.booleans(),
    verdict=st.sampled_from(["similarity", "verifier"]),
)


def _numbers(result: AttributionResult) -> list[float]:
    out = [s.score for s in result.sources] + [s.max_similarity for s in result.sources]
    out += [x.score for s in result.sources for x in s.sentences]
    for a in result.answer_sentences:
        out.append(a.support)
        out += [v for c in a.citations for v in (c.score, c.similarity)]
    return out


def _check_invariants(result: AttributionResult) -> None:
    for s in result.answer_sentences:
        assert result.answer[s.start : s.end] == s.text
        for c in s.citations:
            assert result.sources[c.source_index].text[c.start : c.end] == c.text
            assert result.sources[c.source_index].sentences[c.sentence_index].text == c.text
    for source in result.sources:
        for x in source.sentences:
            assert source.text[x.start : x.end] == x.text
    assert all(math.isfinite(x) for x in _numbers(result))
    assert np.isfinite(result.similarity).all()
    total = sum(s.score for s in result.sources)
    assert total == pytest.approx(1.0, abs=1e-3) or total == pytest.approx(0.0, abs=1e-6)
    for matrix in (False, True):
        text = json.dumps(result.to_dict(matrix=matrix), ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
        back = AttributionResult.from_dict(json.loads(text))
        assert back == result
        if matrix:
            np.testing.assert_array_equal(back.similarity, result.similarity)


@ENGINE
@given(answer=texts, sources=sources, question=st.one_of(st.none(), texts), config=configs)
def test_engine_on_generated_input(
    answer: str, sources: list[Any], question: str | None, config: AttributionConfig
) -> None:
    """Any text, metadata and config: a result whose offsets, numbers and JSON all hold, and a
    cold attributor, a warm one and a repeat call agree exactly."""
    warm = Attributor(HashingEmbedder(dim=64), config=config)
    first = warm.attribute(answer, sources, question)
    _check_invariants(first)
    again = warm.attribute(answer, sources, question)  # now fully cached
    cold = Attributor(HashingEmbedder(dim=64), config=config, cache_size=0)
    fresh = cold.attribute(answer, sources, question)
    for other in (again, fresh):
        assert other == first
        np.testing.assert_array_equal(other.similarity, first.similarity)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(answer=texts, sources=sources, question=st.one_of(st.none(), texts))
def test_real_model_on_generated_input(
    real_attributor: Attributor, answer: str, sources: list[Any], question: str | None
) -> None:
    """The bundled model (tokenizer included) takes any text without raising, and so does the
    bundled verifier reading its vectors."""
    _check_invariants(real_attributor.attribute(answer, sources, question))
    checked = Attributor(real_attributor.embedder, config=AttributionConfig(verdict="verifier"))
    result = checked.attribute(answer, sources, question)
    _check_invariants(result)
    # the verifier decided (no fallback to similarity, no fault of its own in `error`)
    assert result.config["verdict"] == "verifier" and "verifier" not in (result.error or "")
    assert all(0.0 <= s.support <= 1.0 for s in result.answer_sentences)


# --- hostile saved files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved() -> dict[str, Any]:
    attributor = Attributor(HashingEmbedder())
    result = attributor.attribute(
        "Marie Curie was born in Warsaw. The tower opened in 1889. Unicorns exist.",
        [
            Source("a", "Marie Curie won two Nobel prizes. She was born in Warsaw.", {"u": 1}),
            "The Eiffel Tower is in Paris. It opened in 1889.",
        ],
        question="Facts?",
    )
    return result.to_dict(matrix=True)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


hostile = st.one_of(
    json_value,
    st.sampled_from(
        [
            '"><script>alert(1)</script>',
            "javascript:alert(1)",
            "1 onmouseover=alert(1)",
            "http://example.com/x.png",
            "\ud800",
            -1,
            10**30,
            1.5,
            True,
            "NaN",
            [],
            {},
        ]
    ),
)


def _accepted_is_clean(data: Any) -> None:
    try:
        result = AttributionResult.from_dict(data)
    except ValueError as exc:
        message = str(exc)
        assert message and "\n" not in message
        return
    text = json.dumps(result.to_dict(matrix=True), ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")
    again = AttributionResult.from_dict(json.loads(text))
    assert again == result


@settings(max_examples=400, deadline=None, derandomize=True)
@given(data=st.data(), value=hostile)
def test_from_dict_with_one_hostile_value(saved: dict[str, Any], data: Any, value: Any) -> None:
    """Any one field replaced by any JSON value: a one-line ValueError, or a clean result."""
    path = data.draw(st.sampled_from(_paths(saved)))
    crafted = copy.deepcopy(saved)
    node = crafted
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    _accepted_is_clean(crafted)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(data=st.one_of(json_value, st.dictionaries(any_text, json_value)))
def test_from_dict_with_any_json(data: Any) -> None:
    """Arbitrary JSON is refused with a ValueError, never another exception."""
    _accepted_is_clean(data if not isinstance(data, dict) else {"schema": "x", **data})
    if isinstance(data, dict):
        _accepted_is_clean({**data, "schema": "rag_attrib.attribution/1"})


# --- the CLI on generated JSONL --------------------------------------------------------------

one_line = any_text.filter(lambda t: t.strip() != "" and len(t.splitlines()) == 1)
good_record = st.fixed_dictionaries(
    {"answer": prose.filter(str.strip), "sources": st.lists(texts, max_size=3)},
    optional={"question": st.one_of(st.none(), texts)},
)


@st.composite
def hostile_record(draw: Any) -> str:
    record = draw(good_record)
    record[draw(st.sampled_from(["answer", "sources", "question"]))] = draw(hostile)
    return json.dumps(record)


jsonl_line = st.one_of(
    good_record.map(lambda r: ("good", json.dumps(r))),
    one_line.map(lambda t: ("bad", t)),
    hostile_record().map(lambda t: ("maybe", t)),
    st.integers(1, 3000).map(lambda n: ("bad", "[" * n + "]" * n)),
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(lines=st.lists(jsonl_line, min_size=1, max_size=6))
def test_cli_batch_on_generated_jsonl(lines: list[tuple[str, str]]) -> None:
    """Every line is either written (in order) or reported once with its number; exit 0 only
    when all were written; no traceback; the output file is complete."""
    import contextlib
    import io
    import re
    import tempfile
    from pathlib import Path

    from rag_attrib.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        src.write_text("\n".join(text for _, text in lines) + "\n", encoding="utf-8")
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(
                ["explain", "--jsonl", str(src), "--out", str(dst), "-q", "--model", "hashing"]
            )
        written = dst.read_text(encoding="utf-8").splitlines()
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["in.jsonl", "out.jsonl"]
    stderr = err.getvalue()
    assert "Traceback" not in stderr
    reported = [
        int(n) for n in re.findall(r"^rag-attrib: error: .*?in\.jsonl line (\d+): ", stderr, re.M)
    ]
    assert len(reported) == len(set(reported))
    kept = [text for n, (_, text) in enumerate(lines, 1) if n not in reported]
    assert len(written) == len(kept)
    assert [json.loads(w)["answer"] for w in written] == [json.loads(t)["answer"] for t in kept]
    assert not any(kind == "good" for n, (kind, _) in enumerate(lines, 1) if n in reported)
    assert all(
        kind != "bad"
        for kind, text in zip([k for k, _ in lines], [t for _, t in lines], strict=False)
        if text in kept
    )
    assert (code == 0) == (not reported)
    assert code in (0, 2)
    for line in stderr.splitlines():
        assert line.startswith("rag-attrib: error: ") and len(line) < 400
