"""LlamaIndex: a real CitationQueryEngine over a real VectorStoreIndex; its [n] markers are
checked against its "Source n:" nodes (and optionally repaired). Only the LLM is a stand-in
that reads its prompt and cites the way a careless LLM does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from _llamaindex import PromptReadingLLM
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.llms.types import (
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.base.response.schema import (
    AsyncStreamingResponse,
    PydanticResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.query_engine import CitationQueryEngine
from pydantic import BaseModel

from rag_attrib import Attributor
from rag_attrib.integrations.llamaindex import (
    MiniLMEmbedding,
    attribute_response,
    instrument,
    uninstrument,
)
from rag_attrib.markers import clean_text, parse_markers
from rag_attrib.testing import HashingEmbedder

TEXTS = [
    "Penguins live in the southern hemisphere and cannot fly.",
    "Penguin chicks huddle together for warmth during the southern winter.",
    "Emperor penguins dive deeper than five hundred metres for fish.",
    "Copper conducts electricity well and is used in household wiring.",
    "Saturn has bright rings made mostly of ice particles.",
    "The great pyramid at Giza was built for pharaoh Khufu.",
]
QUESTION = "What do you know about penguins?"
OFF_TOPIC = "Quantum routers halved broadband latency across Norway"


class CitingLLM(PromptReadingLLM):
    """Reads the CitationQueryEngine prompt's "Source n:" chunks and answers from them:
    chunk 1 cited [1] (right), chunk 2 cited [1] (wrong), chunk 3 cited [9] (dangling), and a
    claim no chunk holds cited [2] (unsupported)."""

    def _answer(self, prompt: str) -> str:
        found = re.findall(r"^Source (\d+):\n(.*)$", prompt, flags=re.MULTILINE)
        # the template's worked example has its own "Source 1:"; the real chunks come last
        real = found[max(k for k, (n, _) in enumerate(found) if n == "1") :]
        texts = [t.strip().rstrip(".") for _, t in real]
        return f"{texts[0]} [1]. {texts[1]} [1]. {texts[2]} [9]. {OFF_TOPIC} [2]."


@pytest.fixture(scope="module")
def index() -> VectorStoreIndex:
    documents = [
        Document(text=t, metadata={"file_name": f"doc{i}.txt"}) for i, t in enumerate(TEXTS)
    ]
    return VectorStoreIndex.from_documents(
        documents, embed_model=MiniLMEmbedding(HashingEmbedder())
    )


@pytest.fixture
def repairing(hashing_attributor: Attributor) -> Iterator[None]:
    instrument(hashing_attributor, repair_citations=True)
    yield
    uninstrument()


def engine(index: VectorStoreIndex, *, streaming: bool = False) -> CitationQueryEngine:
    return CitationQueryEngine.from_args(
        index, llm=CitingLLM(), similarity_top_k=3, streaming=streaming
    )


def assert_verdicts(check: dict[str, Any], response: Any) -> None:
    nodes = [n.node.node_id for n in response.source_nodes]
    assert len(nodes) == 3
    assert check["numbering"] == "1-based"
    got = [(m["text"], m["source_id"], m["verdict"]) for m in check["markers"]]
    assert got == [
        ("[1]", nodes[0], "correct"),
        ("[1]", nodes[0], "wrong_source"),
        ("[9]", None, "dangling"),
        ("[2]", nodes[1], "unsupported"),
    ]
    assert check["markers"][1]["suggested_source_id"] == nodes[1]
    assert check["markers"][2]["suggested_source_id"] == nodes[2]
    assert [u["text"] for u in check["unsupported"]] == [f"{OFF_TOPIC} [2]."]


def test_citation_query_engine_is_checked_automatically(index, instrumented):
    """instrument() + CitationQueryEngine: the [n] markers follow the "Source n:" labels; each
    gets its verdict with no configuration, and the text is the LLM's."""
    response = engine(index).query(QUESTION)
    assert isinstance(response, Response)
    assert all(
        n.node.get_content().startswith(f"Source {k + 1}:")
        for k, n in enumerate(response.source_nodes)
    )
    assert_verdicts(response.metadata["attribution"]["citation_check"], response)
    assert "[9]" in response.response
    assert "citation_repair" not in response.metadata["attribution"]


async def test_citation_query_engine_aquery(index, instrumented):
    """aquery gets the same check."""
    response = await engine(index).aquery(QUESTION)
    assert_verdicts(response.metadata["attribution"]["citation_check"], response)


def test_repair_option_rewrites_response_text(index, repairing):
    """instrument(repair_citations=True): `response.response` gets the wrong marker replaced
    and the dangling one dropped; text outside the markers is byte-identical, and the
    attribution keeps the LLM's text with the list of changes."""
    response = engine(index).query(QUESTION)
    attribution = response.metadata["attribution"]
    original = attribution["answer"]
    assert response.response == attribution["citation_repair"]["text"] != original
    assert "[9]" in original and "[9]" not in response.response
    assert [
        (c["kind"], c["old_text"], c["new_text"]) for c in attribution["citation_repair"]["changes"]
    ] == [
        ("replaced", "1", "2"),
        ("dropped", " [9]", ""),
    ]
    strip = lambda text: clean_text(text, parse_markers(text))[0]  # noqa: E731
    assert strip(response.response) == strip(original)
    assert_verdicts(attribution["citation_check"], response)  # the check is of the LLM's text


def test_streaming_engine_is_not_rewritten_and_not_broken(index, repairing):
    """A streaming CitationQueryEngine streams the LLM's text unchanged even with repair on;
    once read, its metadata holds the check and what the repair would change."""
    response = engine(index, streaming=True).query(QUESTION)
    assert isinstance(response, StreamingResponse)
    text = "".join(response.response_gen)
    attribution = response.metadata["attribution"]
    assert text == attribution["answer"]
    assert "[9]" in text
    assert_verdicts(attribution["citation_check"], response)
    assert "[9]" not in attribution["citation_repair"]["text"]


def test_attribute_response_without_instrument(index, hashing_attributor):
    """The explicit face: `attribute_response(response, repair_citations=True)` checks and
    repairs one CitationQueryEngine response with no instrumentation installed."""
    response = engine(index).query(QUESTION)
    assert "attribution" not in (response.metadata or {})
    result = attribute_response(response, hashing_attributor, repair_citations=True)
    assert result.citation_check is not None
    assert_verdicts(response.metadata["attribution"]["citation_check"], response)
    assert response.response == response.metadata["attribution"]["citation_repair"]["text"]
    assert "[9]" in result.answer and "[9]" not in response.response


async def test_async_streaming_engine(index, repairing):
    """An async streaming CitationQueryEngine: the stream is the LLM's text, and once read
    the metadata holds the check and what the repair would change."""
    response = await engine(index, streaming=True).aquery(QUESTION)
    assert isinstance(response, AsyncStreamingResponse)
    text = "".join([t async for t in response.async_response_gen()])
    attribution = response.metadata["attribution"]
    assert text == attribution["answer"]
    assert_verdicts(attribution["citation_check"], response)
    assert attribution["citation_repair"]["text"] != text


class CitedAnswer(BaseModel):
    """An answer and the sources (1-based positions) it is based on."""

    answer: str
    citations: list[int]


class JsonCiter(CustomLLM):
    """Writes the structured output's JSON: the first context line, citing 1 and 7."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        lines = prompt.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("-----"))
        first = next(x for x in lines[start + 1 :] if x.strip() and not re.match(r"^\w+: ", x))
        return CompletionResponse(
            text=CitedAnswer(answer=first.strip(), citations=[1, 7]).model_dump_json()
        )

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        raise NotImplementedError


def test_structured_output_cls_citations(index, instrumented):
    """A query engine with `output_cls=CitedAnswer`: the answer field is attributed and each
    cited source position gets a verdict."""
    qe = index.as_query_engine(llm=JsonCiter(), output_cls=CitedAnswer, similarity_top_k=2)
    response = qe.query(QUESTION)
    assert isinstance(response, PydanticResponse)
    attribution = response.metadata["attribution"]
    assert attribution["answer"] == response.response.answer
    check = attribution["citation_check"]
    node = response.source_nodes[0].node.node_id
    assert [(m["label"], m["source_id"], m["verdict"]) for m in check["markers"]] == [
        ("1", node, "correct"),
        ("7", None, "dangling"),
    ]


# --- the citation options: citation_numbering= and exact_support= -----------------------------


def test_numbering_option_through_instrument(index, hashing_attributor):
    """instrument(citation_numbering="0-based") reads [1] as the second node although the
    nodes are labelled "Source 1:" onwards (and [2] as the third)."""
    instrument(hashing_attributor, citation_numbering="0-based")
    try:
        response = engine(index).query(QUESTION)
    finally:
        uninstrument()
    nodes = [n.node.node_id for n in response.source_nodes]
    check = response.metadata["attribution"]["citation_check"]
    assert check["numbering"] == "0-based"
    assert [(m["text"], m["source_id"], m["verdict"]) for m in check["markers"]] == [
        ("[1]", nodes[1], "wrong_source"),
        ("[1]", nodes[1], "correct"),
        ("[9]", None, "dangling"),
        ("[2]", nodes[2], "unsupported"),
    ]


def test_options_through_attribute_response(index, hashing_attributor):
    """attribute_response takes the same options: the numbering, and exact_support, whose
    supports are those `check_citations(exact_support=True)` gives for this result."""
    from rag_attrib import Source, check_citations

    response = engine(index).query(QUESTION)
    zero = attribute_response(response, hashing_attributor, citation_numbering="0-based")
    assert zero.citation_check is not None and zero.citation_check.numbering == "0-based"
    exact = attribute_response(response, hashing_attributor, exact_support=True)
    default = attribute_response(response, hashing_attributor)
    assert exact.citation_check is not None and default.citation_check is not None
    sources = [Source(s.id, s.text) for s in exact.sources]
    direct = check_citations(
        exact.answer, sources, result=exact, attributor=hashing_attributor, exact_support=True
    )
    supports = [m.support for m in exact.citation_check.markers]
    assert supports == pytest.approx([m.support for m in direct.markers], nan_ok=True)
    assert supports != pytest.approx(
        [m.support for m in default.citation_check.markers], nan_ok=True
    )


@pytest.mark.parametrize("bad", ["first", 1])
def test_a_bad_numbering_is_refused(index, hashing_attributor, bad):
    from rag_attrib.errors import ConfigError

    with pytest.raises(ConfigError, match="citation_numbering must be one of 'auto'"):
        instrument(hashing_attributor, citation_numbering=bad)
    response = engine(index).query(QUESTION)
    with pytest.raises(ConfigError, match="citation_numbering must be one of"):
        attribute_response(response, hashing_attributor, citation_numbering=bad)
    assert "attribution" not in (response.metadata or {})
