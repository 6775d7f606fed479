"""Result types: immutability, JSON round trip, converters."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from rag_attrib import AttributionResult, Attributor, Source
from rag_attrib.convert import (
    attribution_payload,
    to_anthropic_citations,
    to_cohere_citations,
    to_langchain_citations,
)
from rag_attrib.results import SCHEMA

SOURCES = [
    Source(
        "a",
        "Marie Curie won two Nobel prizes. She was born in Warsaw.",
        {"title": "Curie", "url": "https://x.org/c", "n": np.int64(3)},
    ),
    Source("b", "The Eiffel Tower is in Paris. It opened in 1889."),
]
ANSWER = "Marie Curie was born in Warsaw. The tower opened in 1889. Unicorns exist."


@pytest.fixture
def result(hashing_attributor: Attributor) -> AttributionResult:
    """A small result with citations, an unsupported sentence and numpy metadata."""
    return hashing_attributor.attribute(ANSWER, SOURCES, question="Facts?")


def test_results_are_frozen(result: AttributionResult) -> None:
    """Result objects cannot be mutated."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.answer = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.answer_sentences[0].supported = False  # type: ignore[misc]


def test_to_dict_is_json_safe_and_versioned(result: AttributionResult) -> None:
    """to_dict survives json.dumps and carries the schema tag."""
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["schema"] == SCHEMA == "rag_attrib.attribution/1"
    assert data["sources"][0]["metadata"]["n"] == 3
    assert "similarity" not in data  # its size follows what it reports, not m x n
    dense = json.loads(json.dumps(result.to_dict(matrix=True), allow_nan=False))
    assert len(dense["similarity"]) == len(result.answer_sentences)


def test_from_dict_round_trips(result: AttributionResult) -> None:
    """from_dict(to_dict()) equals the original, similarity included."""
    back = AttributionResult.from_dict(json.loads(json.dumps(result.to_dict(matrix=True))))
    assert back == result
    assert back.answer_sentences == result.answer_sentences
    assert back.sources[1] == result.sources[1]
    np.testing.assert_allclose(back.similarity, result.similarity, rtol=1e-6)
    assert back.question == "Facts?" and back.model == result.model


def test_from_dict_accepts_a_record_without_the_matrix(result: AttributionResult) -> None:
    """A to_dict() whose similarity was dropped loads; cited cells keep their strength."""
    data = result.to_dict()
    assert "similarity" not in data
    back = AttributionResult.from_dict(data)
    assert back.similarity.shape == result.similarity.shape
    assert back.answer_sentences == result.answer_sentences
    known = ~np.isnan(back.similarity)
    assert known.sum() == sum(len(a.citations) for a in result.answer_sentences) > 0
    np.testing.assert_allclose(back.similarity[known], result.similarity[known], rtol=1e-6)


def test_from_dict_rejects_other_schemas() -> None:
    """A dict without the schema tag is refused with a hint."""
    with pytest.raises(ValueError, match="is this a rag_attrib to_dict"):
        AttributionResult.from_dict({"answer": "x"})


def test_with_error_records_and_keeps_data(result: AttributionResult) -> None:
    """with_error returns a copy with the error; the original is untouched."""
    failed = result.with_error("boom")
    assert failed.error == "boom" and result.error is None
    assert failed.to_dict()["error"] == "boom"


def test_langchain_citations_shape(result: AttributionResult) -> None:
    """LangChain citations index the answer and carry source offsets in extras."""
    cites = to_langchain_citations(result)
    assert cites, "expected at least one citation"
    for c in cites:
        assert c["type"] == "citation"
        assert ANSWER[c["start_index"] : c["end_index"]].strip()
        src = SOURCES[c["extras"]["source_index"]]
        assert src.text[c["extras"]["source_start"] : c["extras"]["source_end"]] == c["cited_text"]
    curie = [c for c in cites if c["extras"]["source_id"] == "a"]
    assert curie[0]["title"] == "Curie" and curie[0]["url"] == "https://x.org/c"
    assert attribution_payload(result)["citations"] == cites


def test_anthropic_and_cohere_shapes(result: AttributionResult) -> None:
    """The char_location and Cohere shapes cover the answer sentences and cited offsets."""
    anth = to_anthropic_citations(result)
    assert [x["text"] for x in anth] == [a.text for a in result.answer_sentences]
    first = anth[0]["citations"][0]
    assert (
        SOURCES[first["document_index"]].text[first["start_char_index"] : first["end_char_index"]]
        == first["cited_text"]
    )
    cohere = to_cohere_citations(result)
    assert all(ANSWER[x["start"] : x["end"]] == x["text"] and x["sources"] for x in cohere)
    assert len(cohere) == sum(a.supported and bool(a.citations) for a in result.answer_sentences)
    # "Unicorns exist." keeps its closest sources, which do not back it: no format cites them
    unicorns = result.answer_sentences[2]
    assert not unicorns.supported and unicorns.citations
    assert anth[2]["text"] == unicorns.text and anth[2]["citations"] == []
    assert unicorns.text not in [x["text"] for x in cohere]
    assert 2 not in {c["extras"]["answer_sentence_index"] for c in to_langchain_citations(result)}


def test_anthropic_document_title_of_plain_and_named_sources(
    hashing_attributor: Attributor,
) -> None:
    """A plain-string source is titled "source N" as the views name it (it was titled "0",
    its position); a given id and a metadata title are kept."""
    sources = [
        "Paris is the capital of France.",
        Source(id="rome", text="Rome is the capital of Italy."),
        Source(id="b", text="Berlin is the capital of Germany.", metadata={"title": "Germany"}),
    ]
    answer = "Paris is the capital of France. Rome is the capital of Italy. Berlin is in Germany."
    result = hashing_attributor.attribute(answer, sources)
    titles = {
        c["document_index"]: c["document_title"]
        for s in to_anthropic_citations(result)
        for c in s["citations"]
    }
    assert titles == {0: "source 1", 1: "rome", 2: "Germany"}


def test_repr_is_one_short_line(result: AttributionResult) -> None:
    """`print(result)` gives the counts, the top source and the first unsupported sentence in
    one line, not the whole record; a record holding odd values still has a repr."""
    text = repr(result)
    n = len(result.answer_sentences)
    supported = n - len(result.unsupported)
    assert "\n" not in text and len(text) <= 200
    assert text.startswith(f"AttributionResult({supported}/{n} sentences supported, ")
    assert f"{len(result.sources)} sources" in text
    top = result.top_source
    assert top is not None and f"top {top.id!r}" in text
    if result.unsupported:
        assert f"unsupported: {result.unsupported[0].index + 1} " in text
    assert str(result) == text
    failed = result.with_error("x" * 500)
    assert "error='xxx" in repr(failed) and len(repr(failed)) <= 260
    odd = dataclasses.replace(result, sources=(None,), answer_sentences=(1, 2))  # type: ignore[arg-type]
    assert repr(odd).startswith("AttributionResult(")
