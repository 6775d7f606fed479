"""AttributionStream: sentences are encoded as they complete; the result equals attribute()."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from rag_attrib import Attributor
from rag_attrib.streaming import AttributionStream
from rag_attrib.testing import HashingEmbedder

SOURCES = ["The bridge opened in 1932. It spans the harbour.", "Tourists climb the arch."]
ANSWER = "The bridge opened in 1932. Visitors can climb its arch. It is grey."


def _tokens(text: str) -> list[str]:
    return [w + " " for w in text.split(" ")]


def test_stream_result_equals_one_shot_attribution() -> None:
    """Feeding tokens then finishing gives the same result as attributing the whole answer."""
    streamed = AttributionStream(Attributor(HashingEmbedder()), SOURCES)
    for token in _tokens(ANSWER):
        streamed.add(token)
    result = streamed.finish()
    direct = Attributor(HashingEmbedder()).attribute(streamed.text, SOURCES)
    assert result.answer_sentences == direct.answer_sentences
    assert result.sources == direct.sources


def test_only_the_last_sentence_is_left_to_encode() -> None:
    """Sources are encoded on open and each finished sentence during the stream."""
    embedder = HashingEmbedder()
    stream = AttributionStream(Attributor(embedder), SOURCES)
    assert embedder.texts_encoded == 3  # the source sentences
    added = sum(stream.add(t) for t in _tokens(ANSWER))
    assert added == 2  # "The bridge opened in 1932." is a cached source sentence
    before = embedder.texts_encoded
    stream.finish()
    assert embedder.texts_encoded - before == 1  # only "It is grey."


def test_finish_accepts_the_final_answer_and_rejects_non_text() -> None:
    """finish(answer) attributes the given text; add() needs str."""
    stream = AttributionStream(Attributor(HashingEmbedder()), SOURCES, prewarm=False)
    assert stream.finish("The bridge opened in 1932.").answer_sentences[0].supported
    with pytest.raises(TypeError, match="token must be str, got NoneType"):
        stream.add(None)  # type: ignore[arg-type]


def test_concurrent_streams_stay_apart() -> None:
    """Streams on one attributor in parallel threads keep their own answers."""
    attributor = Attributor(HashingEmbedder())

    def run(k: int) -> str:
        stream = AttributionStream(attributor, [f"Item {k} weighs {k} kg."])
        for token in _tokens(f"Item {k} weighs {k} kg. Done {k}."):
            stream.add(token)
        return stream.finish().answer

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(run, range(12))) == [f"Item {k} weighs {k} kg. Done {k}. " for k in range(12)]
