"""Attributor: composition, citations, support, bad input, concurrency (deterministic embedder)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rag_attrib import AttributionConfig, Attributor, CachedEmbedder, ConfigError, Source
from rag_attrib.convert import to_langchain_citations
from rag_attrib.engine import NO_SOURCE, WEAK_MATCH
from rag_attrib.testing import HashingEmbedder

CHUNKS = [
    Source(
        "paris", "France is in Europe. Its capital is Paris, on the Seine.", {"title": "France"}
    ),
    Source("berlin", "Germany borders France. Berlin is the German capital."),
    Source("empty", ""),
]
ANSWER = (
    "The capital of France is Paris. Berlin is the capital of Germany. Cats sleep all day long."
)


@pytest.mark.parametrize("verdict", ["similarity", "verifier"])
def test_citations_point_to_the_matching_sentences(verdict: str) -> None:
    """Each supported answer sentence cites the source sentence sharing its words; neither
    verdict withholds evidence: an unsupported sentence keeps its closest sources, best first,
    the same under both, and supported=False says they do not back it."""
    config = AttributionConfig(verdict=verdict)  # type: ignore[arg-type]
    result = Attributor(HashingEmbedder(), config=config).attribute(ANSWER, CHUNKS)
    first, second, third = result.answer_sentences
    assert (first.citations[0].source_id, first.citations[0].sentence_index) == ("paris", 1)
    assert (second.citations[0].source_id, second.citations[0].sentence_index) == ("berlin", 1)
    assert first.supported and second.supported
    assert not third.supported and third.citations  # closest, does not support
    scores = [c.score for c in third.citations]
    assert scores == sorted(scores, reverse=True)
    assert result.unsupported == (third,)
    assert result.coverage == pytest.approx(2 / 3)
    # the closest sources are the verdict-free ranking: the other verdict shows the same ones
    other = "verifier" if verdict == "similarity" else "similarity"
    again = Attributor(HashingEmbedder(), config=AttributionConfig(verdict=other))  # type: ignore[arg-type]
    assert again.attribute(ANSWER, CHUNKS).answer_sentences[2].citations == third.citations
    # they are not citations: the converters leave them out
    assert {c["extras"]["answer_sentence_index"] for c in to_langchain_citations(result)} == {0, 1}


def test_offsets_index_the_original_texts(hashing_attributor: Attributor) -> None:
    """answer[a.start:a.end] == a.text and source.text[c.start:c.end] == c.text."""
    result = hashing_attributor.attribute(ANSWER, CHUNKS)
    for a in result.answer_sentences:
        assert ANSWER[a.start : a.end] == a.text
        for c in a.citations:
            assert CHUNKS[c.source_index].text[c.start : c.end] == c.text
    for s in result.sources:
        for x in s.sentences:
            assert s.text[x.start : x.end] == x.text


def test_citations_are_sorted_and_capped(hashing_attributor: Attributor) -> None:
    """Citations come best first and never exceed top_k."""
    attributor = Attributor(
        HashingEmbedder(), config=AttributionConfig(top_k=2, citation_ratio=0.0)
    )
    result = attributor.attribute(ANSWER, CHUNKS)
    for a in result.answer_sentences:
        scores = [c.score for c in a.citations]
        assert scores == sorted(scores, reverse=True) and len(scores) <= 2


def test_chunk_shares_sum_to_one_and_empty_source_scores_zero(
    hashing_attributor: Attributor,
) -> None:
    """Per-chunk shares sum to ~1; an empty source is kept with score 0 and no sentences."""
    result = hashing_attributor.attribute(ANSWER, CHUNKS)
    assert [s.id for s in result.sources] == ["paris", "berlin", "empty"]
    assert sum(s.score for s in result.sources) == pytest.approx(1.0, abs=1e-5)
    empty = result.sources[2]
    assert empty.score == 0.0 and empty.sentences == () and empty.max_similarity == 0.0
    assert result.sources[0].metadata == {"title": "France"}


def test_similarity_matrix_shape_and_support(hashing_attributor: Attributor) -> None:
    """similarity is answer sentences x source sentences; without neighbour context, support is
    at least each row's max, and exactly it without the paraphrase margin."""
    result = hashing_attributor.attribute(ANSWER, CHUNKS)
    assert result.similarity.shape == (3, 4)
    own = Attributor(
        HashingEmbedder(), config=AttributionConfig(verdict="similarity", context_weight=0.0)
    )
    result = own.attribute(ANSWER, CHUNKS)
    support = np.array([a.support for a in result.answer_sentences])
    assert (support >= result.similarity.max(axis=1) - 1e-6).all()
    strict = Attributor(
        HashingEmbedder(),
        config=AttributionConfig(verdict="similarity", paraphrase_margin=None, context_weight=0.0),
    )
    result = strict.attribute(ANSWER, CHUNKS)
    np.testing.assert_allclose(
        [a.support for a in result.answer_sentences], result.similarity.max(axis=1), rtol=1e-6
    )


def test_a_strong_paraphrase_is_supported_despite_few_shared_words() -> None:
    """The paraphrase margin lets a close dense match raise support above word overlap."""
    sources = ["Alpha beta gamma delta."]
    answer = "Alpha beta gamma delta epsilon zeta eta theta."
    lexical_only = AttributionConfig(
        verdict="similarity", lexical_weight=1.0, support_threshold=0.6
    )
    strict = Attributor(HashingEmbedder(), config=lexical_only).attribute(answer, sources)
    lenient = Attributor(
        HashingEmbedder(),
        config=AttributionConfig(
            verdict="similarity",
            lexical_weight=1.0,
            support_threshold=0.6,
            paraphrase_margin=0.0,
        ),
    ).attribute(answer, sources)
    assert strict.answer_sentences[0].support < lenient.answer_sentences[0].support


@pytest.mark.parametrize("answer", ["", "   \n\t "])
def test_empty_answer_gives_empty_result(hashing_attributor: Attributor, answer: str) -> None:
    """An empty or whitespace answer yields no sentences and zero scores, not an error."""
    result = hashing_attributor.attribute(answer, CHUNKS)
    assert result.answer_sentences == ()
    assert [s.score for s in result.sources] == [0.0, 0.0, 0.0]
    assert result.similarity.shape == (0, 4)
    assert result.coverage == 1.0


def test_no_sources_leaves_every_sentence_unsupported(hashing_attributor: Attributor) -> None:
    """With no documents every answer sentence is unsupported and uncited."""
    result = hashing_attributor.attribute(ANSWER, [])
    assert len(result.answer_sentences) == 3
    assert all(not a.supported and a.citations == () for a in result.answer_sentences)
    assert result.sources == () and result.top_source is None
    assert all(a.issues == (NO_SOURCE,) for a in result.answer_sentences)


def test_every_unsupported_sentence_says_why() -> None:
    """Under the similarity verdict too, a sentence rejected only for its weak match says so in
    `issues`; a supported one has none."""
    sources = ["The tower opened in 1889.", "Paris hosts the tower."]
    result = Attributor(
        HashingEmbedder(), config=AttributionConfig(verdict="similarity", support_threshold=0.3)
    ).attribute("The tower opened in 1889. Quantum gluons confine quarks.", sources)
    true, invented = result.answer_sentences
    assert true.supported and true.issues == ()
    assert not invented.supported and invented.support < 0.3
    assert invented.issues == (WEAK_MATCH,) and invented.citations  # closest sources kept


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"answer": None, "sources": []}, "answer must be str, got NoneType"),
        (
            {"answer": "x", "sources": [Source("a", None)]},
            r"sources\[0\].text must be str, got NoneType",
        ),  # type: ignore[arg-type]
        ({"answer": "x", "sources": ["ok", 3]}, r"sources\[1\] must be a Source or str, got int"),
        ({"answer": "x", "sources": "just one string"}, "not a single string"),
        ({"answer": "x", "sources": [], "question": 5}, "question must be str, got int"),
        ({"answer": b"bytes", "sources": []}, "answer must be str, got bytes"),
    ],
)
def test_non_text_input_raises_type_error(
    hashing_attributor: Attributor, kwargs: dict[str, object], message: str
) -> None:
    """A non-string where text is expected raises TypeError naming the field."""
    with pytest.raises(TypeError, match=message):
        hashing_attributor.attribute(**kwargs)  # type: ignore[arg-type]


def test_invalid_config_raises_config_error() -> None:
    """Invalid options fail at construction with the valid values listed."""
    with pytest.raises(ConfigError, match="'max', 'mean', 'weighted'"):
        AttributionConfig(aggregation="median")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config must be an AttributionConfig"):
        Attributor(HashingEmbedder(), config={"window": 2})  # type: ignore[arg-type]


def test_plain_strings_and_mappings_get_positional_ids(hashing_attributor: Attributor) -> None:
    """Plain strings get their position as id; mappings keep their id and metadata."""
    result = hashing_attributor.attribute(
        "Paris is the capital.",
        ["Paris is the capital.", {"id": "m", "text": "x", "metadata": {"k": 1}}],
    )
    assert [s.id for s in result.sources] == ["0", "m"]
    assert result.sources[1].metadata == {"k": 1}


def test_duplicate_sentences_do_not_collapse(hashing_attributor: Attributor) -> None:
    """Identical sentences keep separate entries keyed by index."""
    answer = "Paris is the capital. Paris is the capital."
    result = hashing_attributor.attribute(answer, ["Paris is the capital. Paris is the capital."])
    assert [a.index for a in result.answer_sentences] == [0, 1]
    assert [(a.start, a.end) for a in result.answer_sentences] == [(0, 21), (22, 43)]
    assert len(result.sources[0].sentences) == 2
    assert len(result.answer_sentences[0].citations) == 2


def test_window_scores_map_back_to_sentences() -> None:
    """With windows, a sentence inherits the strength of the best window containing it."""
    source = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota."
    one = Attributor(HashingEmbedder()).attribute("Alpha beta gamma.", [source])
    three = Attributor(HashingEmbedder(), config=AttributionConfig(window=3)).attribute(
        "Alpha beta gamma.", [source]
    )
    assert three.similarity.shape == one.similarity.shape == (1, 3)
    # a single window covers all three sentences, so they share one strength
    assert len(set(np.round(three.similarity[0], 6))) == 1
    assert one.similarity[0, 0] > one.similarity[0, 1]


def test_neighbour_context_reorders_citations_but_not_support() -> None:
    """A sentence beside the best match outranks an equally weak one elsewhere; the verdict and
    support come from the sentences' own strength."""
    sources = [
        "Ada Lovelace wrote notes on the engine. She published them in London. Rain fell.",
        "She published them in London.",
    ]
    answer = "Ada Lovelace wrote notes on the engine."
    plain = Attributor(HashingEmbedder(), config=AttributionConfig(context_weight=0.0))
    near = Attributor(HashingEmbedder(), config=AttributionConfig(context_weight=0.5))
    a, b = plain.attribute(answer, sources), near.attribute(answer, sources)
    # the same sentence text in both chunks: equal own strength, but only one sits beside the match
    assert a.similarity[0, 1] == pytest.approx(a.similarity[0, 3])
    assert b.similarity[0, 1] > b.similarity[0, 3]
    assert b.similarity[0, 0] >= a.similarity[0, 0]
    assert [x.support for x in b.answer_sentences] == [x.support for x in a.answer_sentences]
    assert [x.supported for x in b.answer_sentences] == [x.supported for x in a.answer_sentences]


def test_lexical_weight_mixes_in_word_overlap() -> None:
    """lexical_weight=1 gives pure word-overlap strength in [0, 1]."""
    cfg = AttributionConfig(lexical_weight=1.0)
    result = Attributor(HashingEmbedder(), config=cfg).attribute(
        "Berlin is the German capital.", ["Berlin is the German capital.", "Nothing shared here."]
    )
    assert result.similarity[0, 0] == pytest.approx(1.0)
    assert result.similarity[0, 1] == pytest.approx(0.0)


def test_question_sharpens_short_answers() -> None:
    """A one-word answer is embedded with its question, so it finds the relevant source."""
    sources = ["Ada Lovelace wrote the first program.", "Paris has many museums."]
    with_q = Attributor(HashingEmbedder()).attribute(
        "Yes.", sources, question="Did Ada Lovelace write a program?"
    )
    without = Attributor(HashingEmbedder(), config=AttributionConfig(use_question=False)).attribute(
        "Yes.", sources, question="Did Ada Lovelace write a program?"
    )
    assert with_q.similarity[0, 0] > with_q.similarity[0, 1]
    assert without.similarity[0, 0] == pytest.approx(0.0, abs=1e-6)


def test_result_records_config_model_and_timings(hashing_attributor: Attributor) -> None:
    """The result carries the config, the model id and per-stage timings."""
    result = hashing_attributor.attribute(ANSWER, CHUNKS, question="Capitals?")
    assert result.question == "Capitals?"
    assert result.model == "hashing-embedder"
    assert result.config["aggregation"] == hashing_attributor.config.aggregation
    assert {"split_ms", "encode_ms", "score_ms", "total_ms"} <= set(result.timings)


def test_cache_encodes_each_text_once() -> None:
    """Repeated sources and duplicate sentences are encoded only once."""
    inner = HashingEmbedder()
    attributor = Attributor(inner)
    assert isinstance(attributor.embedder, CachedEmbedder)
    attributor.attribute("Paris is big. Paris is big.", ["Paris is big. Rome is old."])
    first = inner.texts_encoded
    assert first == 2  # "Paris is big." once, "Rome is old." once
    attributor.attribute("Rome is old.", ["Paris is big. Rome is old."])
    assert inner.texts_encoded == first


def test_prewarmed_answer_sentences_need_no_encoding_label_or_not() -> None:
    """A streamed answer's sentences are encoded as they complete; whether a Markdown label is
    read depends on the sources, so both readings are warmed."""
    inner = HashingEmbedder()
    attributor = Attributor(inner)
    sources = ["The fire began in a bakery on Pudding Lane. It burned for days."]
    attributor.prewarm(sources)
    for answer in (
        "**Main cause:** The fire began in a bakery.",
        "**Fire:** The fire burned days.",
    ):
        attributor.prewarm_answer([answer])
        before = inner.texts_encoded
        attributor.attribute(answer, sources)
        assert inner.texts_encoded == before, answer


@pytest.mark.parametrize(
    "marked",
    [
        "Paris is big [1]. Rome is old [2].",
        "Paris is big.[1] Rome is old.[2][1]",
        "Paris is big [^1]. Rome is old (Source 2).",
        'Paris is big <cite id="a">. Rome is old [1, 2].',
    ],
)
def test_citation_markers_are_no_words_of_the_claims(marked: str) -> None:
    """An answer as LLMs write it, with its markers, scores as its text without them ("[1]"
    is no word, "(Source 2)" no figure 2, "big.[1]" no sentence "[1]"); each sentence keeps
    its offsets and text in the answer as written."""
    sources = [Source("a", "Paris is big."), Source("b", "Rome is old.")]
    attributor = Attributor(HashingEmbedder())
    plain = attributor.attribute("Paris is big. Rome is old.", sources)
    result = attributor.attribute(marked, sources)
    assert result.answer == marked
    assert len(result.answer_sentences) == 2
    for got, want in zip(result.answer_sentences, plain.answer_sentences, strict=True):
        assert got.support == want.support and got.supported and got.issues == ()
        assert [c.source_id for c in got.citations] == [c.source_id for c in want.citations]
        assert marked[got.start : got.end] == got.text
        assert got.text.startswith(want.text[:-1])  # as written: its own markers may stay in
    # a bracket that is no citation stays a word: an array index, a link's text
    for text in ("Set items[1] to zero.", "See [the docs](https://x.org/a[1])."):
        kept = attributor.attribute(text, sources)
        assert [s.text for s in kept.answer_sentences] == [text]


def test_prewarmed_marked_sentences_need_no_encoding() -> None:
    inner = HashingEmbedder()
    attributor = Attributor(inner)
    sources = ["Paris is big. Rome is old."]
    attributor.prewarm(sources)
    attributor.prewarm_answer(["Paris is big [1].", "Rome is old.[2]"])
    before = inner.texts_encoded
    attributor.attribute("Paris is big [1]. Rome is old.[2]", sources)
    assert inner.texts_encoded == before


def test_cache_is_bounded() -> None:
    """The LRU cache never holds more than maxsize vectors."""
    cached = CachedEmbedder(HashingEmbedder(), maxsize=3)
    cached.encode([f"text {i}" for i in range(10)])
    assert len(cached) == 3


def test_threads_never_mix_inputs(hashing_attributor: Attributor) -> None:
    """Concurrent calls on one Attributor each cite only their own sources."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]

    def run(word: str) -> set[str]:
        sources = [
            Source(f"{word}-doc", f"The {word} report is ready."),
            Source(f"{word}-x", "Noise only."),
        ]
        result = hashing_attributor.attribute(f"The {word} report is ready.", sources)
        return {c.source_id for a in result.answer_sentences for c in a.citations}

    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(run, words * 5))
    assert outs == [{f"{w}-doc"} for w in words * 5]


async def test_aattribute_runs_concurrently(hashing_attributor: Attributor) -> None:
    """aattribute works under asyncio.gather and keeps results apart."""
    results = await asyncio.gather(
        *(
            hashing_attributor.aattribute(
                f"Item {i} costs {i} euros.", [f"Item {i} costs {i} euros."]
            )
            for i in range(10)
        )
    )
    assert [r.answer for r in results] == [f"Item {i} costs {i} euros." for i in range(10)]
    assert threading.active_count() >= 1


def test_odd_unicode_and_non_english(hashing_attributor: Attributor) -> None:
    """Emoji, CJK, RTL and German text are attributed with valid offsets."""
    sources = [
        "Der Hund schläft im Garten. 🐶 Er ist müde.",
        "東京は日本の首都です。人口が多い。",
        "مرحبا بالعالم.",
    ]
    answer = "Der Hund schläft. 東京は日本の首都です。 🎉"
    result = hashing_attributor.attribute(answer, sources)
    for a in result.answer_sentences:
        assert answer[a.start : a.end] == a.text
        for c in a.citations:
            assert sources[c.source_index][c.start : c.end] == c.text
    assert result.answer_sentences[0].citations[0].source_index == 0


def test_huge_document_is_handled(hashing_attributor: Attributor) -> None:
    """A 3,000-sentence source is attributed and the matrix has the expected shape."""
    doc = " ".join(f"Sentence number {i} talks about topic {i % 17}." for i in range(3000))
    result = hashing_attributor.attribute("Sentence number 1234 talks about topic 10.", [doc])
    assert result.similarity.shape == (1, 3000)
    assert result.answer_sentences[0].citations[0].sentence_index == 1234


@pytest.mark.parametrize(
    ("answer", "supported", "issue"),
    [
        ("The tower opened in 1889 and is 330 metres tall.", True, None),
        ("The tower opened in 1899 and is 330 metres tall.", False, "1899"),
        ("The tower cost 7,800,000 francs.", True, None),  # "7800000" written differently below
        ("The tower cost 9,800,000 francs.", False, "9800000"),
    ],
)
def test_a_wrong_figure_makes_a_similar_sentence_unsupported(
    answer: str, supported: bool, issue: str | None
) -> None:
    """A year or amount that no best-matching source contains flips the verdict and says why."""
    sources = ["The tower opened in 1889. It is 330 metres tall. It cost 7800000 francs to build."]
    result = Attributor(
        HashingEmbedder(), config=AttributionConfig(verdict="similarity", support_threshold=0.3)
    ).attribute(answer, sources)
    sentence = result.answer_sentences[0]
    assert sentence.support > 0.3  # it reads like the source either way
    assert sentence.supported is supported
    if issue is None:
        assert sentence.issues == ()
    else:
        assert sentence.issues and issue in sentence.issues[0]
        # its closest sources are kept and include the sentence with the true figure
        true_figure = {"1899": "1889", "9800000": "7800000"}[issue]
        assert any(true_figure in c.text for c in sentence.citations)
        assert to_langchain_citations(result) == []  # they do not back it


def test_number_check_can_be_disabled() -> None:
    """check_numbers=False leaves the verdict to similarity alone."""
    cfg = AttributionConfig(verdict="similarity", support_threshold=0.3, check_numbers=False)
    result = Attributor(HashingEmbedder(), config=cfg).attribute(
        "The tower opened in 1899.", ["The tower opened in 1889."]
    )
    assert result.answer_sentences[0].supported and result.answer_sentences[0].issues == ()


@pytest.mark.parametrize(
    ("answer", "sources", "issue"),
    [
        # shares the film's name with the source, but it is the speaker's own taste
        (
            "I liked Batman Begins with Michael Caine.",
            ["Batman Begins stars Michael Caine."],
            "'i'",
        ),
        (
            "We recommend Batman Begins with Michael Caine.",
            ["Batman Begins stars Michael Caine."],
            "'we'",
        ),
        (
            "Did Michael Caine star in Batman Begins?",
            ["Batman Begins stars Michael Caine."],
            "question",
        ),
        # the source speaks in the first person too: quoting it is fine
        (
            "I liked Batman Begins with Michael Caine.",
            ["I liked Batman Begins with Michael Caine a lot."],
            None,
        ),
        # a Roman numeral is not the speaker
        (
            "World War I ended in 1918 with an armistice.",
            ["World War I ended in 1918 with an armistice."],
            None,
        ),
    ],
)
def test_questions_and_the_speakers_own_voice_are_not_supported(
    answer: str, sources: list[str], issue: str | None
) -> None:
    """check_claims: a question, or first person that no best source uses, is unsupported."""
    config = AttributionConfig(verdict="similarity", support_threshold=0.3)
    result = Attributor(HashingEmbedder(), config=config).attribute(answer, sources)
    sentence = result.answer_sentences[0]
    assert sentence.support > 0.3  # it shares most of its words with the source
    if issue is None:
        assert sentence.supported and not sentence.issues
    else:
        assert not sentence.supported
        # its closest source is shown, not cited
        assert sentence.citations[0].text == sources[0]
        assert to_langchain_citations(result) == []
        assert any(issue in text for text in sentence.issues), sentence.issues
        lenient = AttributionConfig(verdict="similarity", support_threshold=0.3, check_claims=False)
        again = Attributor(HashingEmbedder(), config=lenient).attribute(answer, sources)
        assert again.answer_sentences[0].supported and not again.answer_sentences[0].issues


def test_overlapping_chunks_cite_a_shared_sentence_once(hashing_attributor):
    """A sentence two chunks share is cited once (first chunk), the other in `also_in`, and the
    chunk shares equal those without the copy."""
    shared = "The Halden bridge opened to traffic in 1932."
    overlapping = [
        Source("c1", f"The ferry sails twice a day. {shared}"),
        Source("c2", f"{shared} The tower was painted red in 1950."),
    ]
    alone = [
        Source("c1", f"The ferry sails twice a day. {shared}"),
        Source("c2", "The tower was painted red in 1950."),
    ]
    answer = "The Halden bridge opened to traffic in 1932. The tower was painted red in 1950."
    result = hashing_attributor.attribute(answer, overlapping)
    baseline = hashing_attributor.attribute(answer, alone)
    first = result.answer_sentences[0].citations
    assert [(c.source_id, c.text, c.also_in) for c in first][:1] == [("c1", shared, ("c2",))]
    assert [c.text for c in first].count(shared) == 1
    assert [s.score for s in result.sources] == pytest.approx([s.score for s in baseline.sources])
    copy = result.sources[1].sentences[0]
    assert copy.text == shared and copy.score == result.sources[0].sentences[1].score
    data = result.to_dict()
    assert type(result).from_dict(data).answer_sentences == result.answer_sentences
    data["answer_sentences"][0]["citations"][0]["also_in"] = "c2"
    with pytest.raises(ValueError, match="also_in"):
        type(result).from_dict(data)
