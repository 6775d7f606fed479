"""Bad input at the edges: texts, metadata, embedder output, saved files, sizes."""

from __future__ import annotations

import copy
import datetime
import json
import logging
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from rag_attrib import (
    AttributionConfig,
    AttributionResult,
    Attributor,
    InputTooLargeError,
    Source,
)
from rag_attrib.embedders import CachedEmbedder
from rag_attrib.testing import HashingEmbedder
from rag_attrib.validate import EmbedderError, check_vectors, clean_metadata, clean_text

SOURCES = [
    Source("a", "Marie Curie won two Nobel prizes. She was born in Warsaw."),
    Source("b", "The Eiffel Tower is in Paris. It opened in 1889."),
]
ANSWER = "Marie Curie was born in Warsaw. The tower opened in 1889."


class BrokenEmbedder:
    """Returns what `make(n, d)` gives: NaN rows, wrong shapes, ..."""

    model_id = "broken"

    def __init__(self, make: Any) -> None:
        self.make = make
        self.inner = HashingEmbedder(dim=16)

    def encode(self, texts: Sequence[str]) -> Any:
        return self.make(self.inner.encode(texts))


def _nan_first(v: np.ndarray) -> np.ndarray:
    v = v.copy()
    v[0, 0] = np.nan
    return v


def _inf_all(v: np.ndarray) -> np.ndarray:
    return np.full_like(v, np.inf)


# --- texts --------------------------------------------------------------------------------------


def test_clean_text_replaces_lone_surrogates_keeping_length() -> None:
    """Each lone surrogate becomes one U+FFFD, so every offset still points at the same text."""
    text = "a\ud800b\udfffc"
    clean = clean_text(text)
    assert clean == "a\ufffdb\ufffdc" and len(clean) == len(text)
    clean.encode("utf-8")
    assert clean_text("plain") == "plain"


@pytest.mark.parametrize(
    "answer",
    [
        "Marie Curie was born in Warsaw\ud800. The tower opened in 1889.",
        "Marie\x00 Curie was born\x07 in Warsaw. \x1b[31mThe tower\x1b[0m opened in 1889.",
        "Marie\u200b Curie\u200d was\ufeff born in Warsaw. \u202eThe tower opened in 1889.\u202c",
        "מארי קירי נולדה בוורשה. The tower opened in 1889.",
        "word " * 5000,  # one huge sentence
        "\ud83d\ude00",  # a surrogate pair written as two lone surrogates (as from JSON)
    ],
)
def test_odd_texts_give_a_serialisable_result_with_valid_offsets(answer: str) -> None:
    """Surrogates, control and zero-width characters, RTL, one huge sentence: a defined result."""
    attributor = Attributor(HashingEmbedder())
    sources = [*SOURCES, Source("c", "Warsaw\ud800 is\x00 a city. " + answer[:40])]
    result = attributor.attribute(answer, sources, question="Who?\udc00")
    assert len(result.answer) == len(answer)
    for s in result.answer_sentences:
        assert result.answer[s.start : s.end] == s.text
        for c in s.citations:
            assert result.sources[c.source_index].text[c.start : c.end] == c.text
    text = json.dumps(result.to_dict(), ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")  # no surrogate left anywhere
    assert AttributionResult.from_dict(json.loads(text)) == result


# --- metadata -----------------------------------------------------------------------------------


def test_clean_metadata_keeps_json_values_and_names_what_it_drops() -> None:
    """Plain values stay; tuples become lists; objects, NaN and odd keys are dropped by path."""
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    meta = {
        "title": "T",
        "page": np.int64(3),
        "score": np.float32(0.5),
        "tags": ("a", "b"),
        "when": datetime.date(2024, 1, 2),
        "bad": float("nan"),
        "obj": object(),
        (1, 2): "tuple key",
        7: "int key",
        "deep": deep,
        "vec": np.array([1.0, 2.0]),
        "huge": 10**5000,
    }
    clean, dropped = clean_metadata(meta)
    json.dumps(clean, allow_nan=False)
    assert clean["title"] == "T" and clean["page"] == 3 and clean["score"] == 0.5
    assert clean["tags"] == ["a", "b"] and clean["when"] == "2024-01-02" and clean["7"] == "int key"
    assert clean["vec"] == [1.0, 2.0]
    assert "bad" not in clean and "obj" not in clean
    joined = " ".join(dropped)
    assert "metadata['bad']" in joined and "metadata['obj']" in joined
    assert "(1, 2)" in joined and "nested deeper than" in joined and "metadata['huge']" in joined
    assert clean_metadata("a str") == ({}, ["metadata (a str, not a mapping)"])
    assert clean_metadata(None) == ({}, [])


@pytest.mark.parametrize("metadata", ["a str", ["a", "list"], {"x": object()}, {"n": math.inf}])
def test_unreadable_metadata_is_dropped_reported_and_logged_once(
    metadata: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Metadata that is not a JSON-safe mapping: the result says so, to_dict always works."""
    attributor = Attributor(HashingEmbedder())
    with caplog.at_level(logging.WARNING, logger="rag_attrib"):
        result = attributor.attribute(ANSWER, [Source("a", SOURCES[0].text, metadata)])
    assert result.error is not None and "sources[0].metadata" in result.error
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert result.answer_sentences[0].supported  # attribution itself went ahead
    from rag_attrib.streaming import AttributionStream, BackgroundAttributionStream

    for kind in (AttributionStream, BackgroundAttributionStream):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="rag_attrib"):
            stream = kind(attributor, [Source("a", SOURCES[0].text, metadata)])
            stream.add(ANSWER)
            streamed = stream.finish()
        assert streamed.error == result.error and streamed == result
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    back = AttributionResult.from_dict(json.loads(json.dumps(result.to_dict(), allow_nan=False)))
    assert back == result


# --- embedders ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_nan_first, "NaN or infinite values for 1 of"),
        (_inf_all, "NaN or infinite"),
        (lambda v: v[:-1], "shape"),
        (lambda v: v[:, :, None], "shape"),
        (lambda v: np.zeros((len(v), 0), np.float32), "shape"),
        (lambda v: "not vectors", "not a float matrix"),
    ],
)
@pytest.mark.parametrize("cache_size", [0, 100])
def test_broken_embedder_output_sets_error_and_logs_one_warning(
    make: Any, words: str, cache_size: int, caplog: pytest.LogCaptureFixture
) -> None:
    """NaN/inf vectors or a wrong shape: every sentence unsupported, `error` says why, 1 warning."""
    attributor = Attributor(BrokenEmbedder(make), cache_size=cache_size)
    with caplog.at_level(logging.WARNING, logger="rag_attrib"):
        result = attributor.attribute(ANSWER, SOURCES)
    assert result.error is not None and words in result.error
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert [s.supported for s in result.answer_sentences] == [False, False]
    assert all(s.citations == () for s in result.answer_sentences)
    assert np.isfinite(result.similarity).all()
    json.dumps(result.to_dict(matrix=True), allow_nan=False)


def test_cache_does_not_keep_nan_vectors() -> None:
    """A NaN batch raises before it is cached, so the next call encodes afresh."""
    calls = []

    class Flaky:
        model_id = "flaky"

        def encode(self, texts: Sequence[str]) -> np.ndarray:
            calls.append(len(texts))
            out = HashingEmbedder(dim=8).encode(texts)
            return _nan_first(out) if len(calls) == 1 else out

    cached = CachedEmbedder(Flaky())
    with pytest.raises(EmbedderError):
        cached.encode(["a", "b"])
    assert len(cached) == 0
    assert np.isfinite(cached.encode(["a", "b"])).all() and calls == [2, 2]


def test_check_vectors_accepts_a_good_matrix() -> None:
    """A finite (n, d) matrix comes back as float32."""
    out = check_vectors([[1.0, 0.0], [0.0, 1.0]], 2)
    assert out.dtype == np.float32 and out.shape == (2, 2)
    assert check_vectors(np.zeros((0, 4)), 0).shape == (0, 4)


# --- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1e-300, 5e-324, 1e-30, 1e6])
def test_extreme_temperatures_give_finite_scores(temperature: float) -> None:
    """A tiny temperature is a one-hot softmax (ties share), never NaN; a huge one is uniform."""
    attributor = Attributor(HashingEmbedder(), config=AttributionConfig(temperature=temperature))
    result = attributor.attribute(ANSWER, SOURCES)
    scores = [c.score for s in result.answer_sentences for c in s.citations]
    scores += [x.score for s in result.sources for x in s.sentences] + [
        s.score for s in result.sources
    ]
    assert scores and all(math.isfinite(x) for x in scores)
    assert AttributionResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


# --- size policy --------------------------------------------------------------------------------


def test_size_limits_raise_a_clear_error() -> None:
    """Past a cap the error names the option to raise; at the cap it works."""
    config = AttributionConfig(max_answer_chars=len(ANSWER), max_source_chars=200)
    attributor = Attributor(HashingEmbedder(), config=config)
    attributor.attribute(ANSWER, SOURCES)
    with pytest.raises(InputTooLargeError, match="max_answer_chars"):
        attributor.attribute(ANSWER + " More.", SOURCES)
    with pytest.raises(InputTooLargeError, match="max_source_chars"):
        attributor.attribute(ANSWER, [*SOURCES, "x" * 150])


def test_result_json_grows_with_what_it_reports_not_m_times_n() -> None:
    """to_dict holds no dense matrix: 60 x 600 sentences stays near the size of the texts."""
    attributor = Attributor(HashingEmbedder(dim=64))
    answer = " ".join(f"Claim {i} is about topic {i}." for i in range(60))
    source = " ".join(f"Fact {i} concerns topic {i}." for i in range(600))
    result = attributor.attribute(answer, [source])
    size = len(json.dumps(result.to_dict()))
    dense = len(json.dumps(result.to_dict(matrix=True)))
    assert size < 12 * (len(answer) + len(source)) < dense


# --- from_dict ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved() -> dict[str, Any]:
    result = Attributor(HashingEmbedder()).attribute(ANSWER, SOURCES, question="Q?")
    assert any(s.citations for s in result.answer_sentences)
    return result.to_dict(matrix=True)


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    node = out
    for key in keys[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("answer", 3, "attribution.answer must be a string"),
        ("answer", _DELETE, "attribution.answer is missing"),
        ("sources", "x", "attribution.sources must be a list"),
        ("answer_sentences.0.index", "0<script>", "answer_sentences[0].index must be an integer"),
        ("answer_sentences.0.supported", "true", "answer_sentences[0].supported must be true"),
        ("answer_sentences.0.support", None, "answer_sentences[0].support must be a finite"),
        ("answer_sentences.0.support", "NaN", "answer_sentences[0].support must be a finite"),
        ("answer_sentences.0.start", -1, "answer_sentences[0].start must be an integer"),
        ("answer_sentences.0.end", -1, "answer_sentences[0].end must be an integer >= 0"),
        ("answer_sentences.0.citations.0.source_index", '1" onmouseover="x', "source_index"),
        ("answer_sentences.0.citations.0.source_index", 99, "source_index must be an integer"),
        ("answer_sentences.0.citations.0.sentence_index", 99, "sentence_index must be"),
        ("answer_sentences.0.citations.0.score", True, "citations[0].score must be a finite"),
        ("answer_sentences.0.citations.0", [], "citations[0] must be an object"),
        ("answer_sentences.0.issues", ["ok", 5], "issues[1] must be a string"),
        ("sources.0.index", 1.5, "sources[0].index must be an integer"),
        ("sources.0.sentences.0.score", {}, "sentences[0].score must be a finite"),
        ("sources.0.metadata", "str", "sources[0].metadata must be an object"),
        ("question", ["q"], "attribution.question must be a string"),
        ("timings", {"x": "slow"}, "timings['x'] must be a finite"),
        ("similarity", [[1.0]], "similarity has"),
        ("similarity.0.0", "x", "similarity[0][0] must be a finite"),
    ],
)
def test_from_dict_names_the_bad_field(
    saved: dict[str, Any], path: str, value: Any, field: str
) -> None:
    """A crafted value of the wrong type or range is refused with its field named."""
    with pytest.raises(ValueError, match=re.escape(field)) as info:
        AttributionResult.from_dict(_set(saved, path, value))
    assert "\n" not in str(info.value)


def test_from_dict_accepts_integral_floats_and_keeps_unknown_cells(saved: dict[str, Any]) -> None:
    """1.0 as an index reads as 1; None in the matrix is an unknown (NaN) cell."""
    back = AttributionResult.from_dict(_set(saved, "answer_sentences.0.index", 0.0))
    assert back.answer_sentences[0].index == 0
    back = AttributionResult.from_dict(_set(saved, "similarity.0.0", None))
    assert math.isnan(float(back.similarity[0, 0]))


def test_to_dict_refuses_nan_scores_naming_the_field() -> None:
    """A hand-built NaN score is not written as null silently."""
    from dataclasses import replace

    result = Attributor(HashingEmbedder()).attribute(ANSWER, SOURCES)
    bad = replace(
        result,
        answer_sentences=(
            replace(result.answer_sentences[0], support=math.nan),
            *result.answer_sentences[1:],
        ),
    )
    with pytest.raises(ValueError, match=r"answer_sentences\[0\]\.support is nan"):
        bad.to_dict()


def test_framework_documents_with_non_mapping_metadata_still_attribute() -> None:
    """A LangChain Document or LlamaIndex node whose metadata is a str: a payload, not a crash."""
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    from rag_attrib.integrations.langchain import documents_to_sources
    from rag_attrib.integrations.llamaindex._read import node_sources

    text = SOURCES[0].text
    doc = Document.model_construct(page_content=text, metadata="a str", id=None)
    node = TextNode.model_construct(text=text, metadata="a str", id_="n1")
    attributor = Attributor(HashingEmbedder())
    for sources in (documents_to_sources([doc]), node_sources([NodeWithScore(node=node)])):
        result = attributor.attribute(ANSWER, sources)
        assert result.sources[0].metadata["metadata"] == "a str"
        assert result.answer_sentences[0].supported
        json.dumps(result.to_dict(), allow_nan=False)
