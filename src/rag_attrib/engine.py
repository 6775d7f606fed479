"""`Attributor`: composes splitting, embedding and scoring into an `AttributionResult`."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from . import verifier
from ._types import FloatMatrix, FloatVector, IntVector
from .claims import LEADING_PRONOUN, is_claim, label
from .config import SIMILARITY_THRESHOLD, AttributionConfig
from .embedders import CachedEmbedder, Embedder, default_embedder
from .lexical import (
    content_tokens,
    first_person,
    is_question,
    lexical_matrix,
    missing_names,
    missing_numbers,
)
from .limits import check_size, unscored
from .markers import as_written, parse_markers, unmarked
from .markers import clean_text as without_markers
from .rerankers import Reranker, rerank
from .results import (
    AttributionResult,
    Citation,
    SentenceAttribution,
    Source,
    SourceAttribution,
    SourceSentence,
    Span,
)
from .scoring import (
    aggregate,
    chunk_shares,
    cosine_matrix,
    first_copies,
    neighbour_context,
    score_once,
    select_citations,
    sliding_windows,
    windows_to_sentences,
)
from .validate import EmbedderError, check_vectors, clean_metadata, clean_text

__all__ = [
    "Attributor",
    "SourceLike",
    "attribute",
    "default_attributor",
    "loaded_default_attributor",
    "to_sources",
]

SourceLike = Source | str
"""What `sources=` accepts: `Source` objects or plain strings (ids become their positions)."""

Splitter = Callable[[str], list[Span]]

logger = logging.getLogger(__name__)

WEAK_MATCH = "no source sentence is close enough to back it"
NO_SOURCE = verifier.NO_SOURCE
NOT_A_CLAIM = "it states nothing a source could back (it talks to the reader): not checked"

# Answers this short ("Yes.", "Paris.", "In 1889.") mean nothing without their question;
# longer ones must stand alone, or an invented claim would borrow the question's support.
_SHORT_ANSWER_WORDS = 4


class Attributor:
    """Attribute answers to sources, sentence by sentence.

    Holds no per-call state, so one instance may serve many threads and tasks at once.

    Args:
        embedder: any `Embedder`; None loads the bundled all-MiniLM-L6-v2 on first use
            (`embedders.default_embedder()`: int8 on ONNX Runtime when installed, else torch).
        config: an `AttributionConfig`; None uses the defaults.
        reranker: an optional cross-encoder (`CrossEncoderReranker`) that re-scores the best
            candidates of each answer sentence; set `support_threshold` for its scale.
        splitter: text -> sentence spans; None uses NLTK Punkt (English abbreviations).
        cache_size: embeddings kept in the LRU cache (0 disables caching).

    Example:
        >>> attributor = Attributor()
        >>> result = attributor.attribute(answer="Paris is France's capital.",
        ...                               sources=["The capital of France is Paris."])
        >>> result.answer_sentences[0].citations[0].source_id
        '0'
    """

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        config: AttributionConfig | None = None,
        reranker: Reranker | None = None,
        splitter: Splitter | None = None,
        cache_size: int = 50_000,
    ) -> None:
        if config is not None and not isinstance(config, AttributionConfig):
            msg = f"config must be an AttributionConfig; got {type(config).__name__}"
            raise TypeError(msg)
        base = embedder if embedder is not None else default_embedder()
        if not callable(getattr(base, "encode", None)):
            msg = f"embedder must have an encode(texts) method; got {type(base).__name__}"
            raise TypeError(msg)
        self.embedder: Embedder = (
            CachedEmbedder(base, maxsize=cache_size)
            if cache_size > 0 and not isinstance(base, CachedEmbedder)
            else base
        )
        self.config = config or AttributionConfig()
        self.reranker = reranker
        if splitter is None:
            # NLTK takes ~1 s to import: pay it when an Attributor is built, not on import.
            from .splitting import split_sentences

            splitter = split_sentences
        self.splitter: Splitter = splitter

    @property
    def model_id(self) -> str:
        """A name for the embedding model (recorded in results)."""
        return str(getattr(self.embedder, "model_id", type(self.embedder).__name__))

    def attribute(
        self,
        answer: str,
        sources: Sequence[SourceLike],
        question: str | None = None,
    ) -> AttributionResult:
        """Attribute each sentence of `answer` to the sentences of `sources`.

        Args:
            answer: the generated answer or summary.
            sources: retrieved chunks or input documents, `Source` objects or strings.
            question: the user's question; very short answer sentences ("Yes.", "1912.") are
                embedded together with it.

        Returns:
            An `AttributionResult`; an empty or whitespace answer gives one with no sentences,
            and no sources give every answer sentence `supported=False`. Citation markers the
            answer carries (`[1]`, `[^2]`, `<cite id="3">`, "(Source 4)") are no words of
            its claims: they are left out of what is scored, and each sentence keeps its
            offsets and text in `answer` as written (`check_citations` judges the markers).

        Raises:
            TypeError: `answer`, `question` or a source is not text (the message names it).
        """
        started = time.perf_counter()
        _check_text("answer", answer)
        if question is not None:
            _check_text("question", question)
            question = clean_text(question)
        answer = clean_text(answer)
        resolved, notes = _resolve(sources)
        check_size(answer, resolved, self.config)
        markers = parse_markers(answer, ids=[s.id for s in resolved])
        if not markers:
            return self._attribute(answer, resolved, notes, question, started)
        # "[1]" is no word of a claim, "(Source 2)" no figure 2, and "Lane.[1]" no sentence
        # "[1]": the text without them is attributed, then mapped back onto the answer
        clean, edits = without_markers(answer, markers)
        result = self._attribute(clean, resolved, notes, question, started)
        return as_written(result, answer, edits)

    def _attribute(
        self,
        answer: str,
        resolved: list[Source],
        notes: list[str],
        question: str | None,
        started: float,
    ) -> AttributionResult:
        timings: dict[str, float] = {}

        t = time.perf_counter()
        answer_spans = self.splitter(answer)
        source_spans = [self.splitter(s.text) for s in resolved]

        flat_spans = [span for spans in source_spans for span in spans]
        labels = [label(span.text) for span in answer_spans]
        need_words = self.config.check_names or any(labels)
        words = _source_words(resolved, flat_spans, question) if need_words else frozenset()
        statements = _statements(answer_spans, labels, words)
        timings["split_ms"] = _ms(t)

        t = time.perf_counter()
        owner = _owners(source_spans)
        try:
            strength, own, cosine, encode_ms = self._strength(
                statements, resolved, source_spans, owner, question
            )
        except EmbedderError as exc:  # a defined result that says why, not a crash or a NaN
            logger.warning("rag_attrib: attribution failed: %s", exc)
            result = unscored(answer, question, answer_spans, resolved, source_spans, str(exc))
            return replace(result, config=self.config.to_dict(), model=self.model_id)
        timings["encode_ms"] = encode_ms
        timings["score_ms"] = _ms(t) - encode_ms

        verdict = None
        if self.config.verdict == "verifier" and (model := verifier.load_verifier()) is not None:
            t = time.perf_counter()
            queries, _ = self._query_texts(statements, question, None)
            texts = [s.text for s in resolved]
            try:
                verdict = verifier.verify(
                    model, self.embedder, queries, source_spans, texts, owner, strength
                )
            except Exception as exc:  # a defined result, decided by similarity, that says why
                failed = f"{type(exc).__name__}: {exc}"
                notes.append(f"the verifier failed ({failed}); the similarity verdict decided")
            timings["verify_ms"] = _ms(t)

        t = time.perf_counter()
        result = self._assemble(
            answer,
            question,
            answer_spans,
            statements,
            resolved,
            source_spans,
            owner,
            strength,
            own,
            cosine,
            words,
            verdict,
        )
        timings["assemble_ms"] = _ms(t)
        timings["total_ms"] = _ms(started)
        if notes:
            logger.warning("rag_attrib: %s", "; ".join(notes))
        # record what decided: the verdict used (after a fallback too) and its threshold
        used = replace(
            self.config,
            verdict="verifier" if verdict is not None else "similarity",
            support_threshold=self._threshold(verdict),
        )
        return replace(
            result,
            config=used.to_dict(),
            model=self.model_id,
            timings=timings,
            error="; ".join(notes) or None,
        )

    def _threshold(self, verdict: verifier.Verdict | None) -> float:
        if self.config.support_threshold is not None:
            return self.config.support_threshold
        return verdict.threshold if verdict is not None else SIMILARITY_THRESHOLD

    async def aattribute(
        self,
        answer: str,
        sources: Sequence[SourceLike],
        question: str | None = None,
    ) -> AttributionResult:
        """`attribute` in a worker thread, so the event loop keeps running while it encodes."""
        return await asyncio.to_thread(self.attribute, answer, sources, question)

    def prewarm(self, sources: Sequence[SourceLike]) -> None:
        """Encode the sentences (or windows) of `sources` into the cache ahead of `attribute`."""
        resolved = to_sources(sources)
        units, _ = self._units(resolved, [self.splitter(s.text) for s in resolved])
        if units:
            self.embedder.encode(units)

    def prewarm_answer(
        self,
        sentences: Sequence[str],
        question: str | None = None,
        *,
        previous: str | None = None,
    ) -> None:
        """Encode answer sentences into the cache ahead of `attribute` (streaming answers).

        `previous` is the answer sentence before `sentences[0]`, if any: a sentence that opens
        with a pronoun is embedded with it, exactly as `attribute` will.
        """
        # as `attribute` reads them: without their citation markers
        sentences = [unmarked(s) for s in sentences]
        if previous is not None:
            previous = unmarked(previous)
        queries, extra = self._query_texts(sentences, question, previous)
        texts = [*queries, *(text for _, text in extra)]
        # whether a label is dropped depends on the sources, not known yet: warm both readings
        statements = [found[1] for found in map(label, sentences) if found]
        if statements:
            more, more_extra = self._query_texts(statements, question, None)
            texts += [*more, *(text for _, text in more_extra)]
        if texts:
            self.embedder.encode(texts)

    def _strength(
        self,
        statements: list[str],
        sources: list[Source],
        source_spans: list[list[Span]],
        owner: IntVector,
        question: str | None,
    ) -> tuple[FloatMatrix, FloatMatrix, FloatMatrix, float]:
        """Strength, the strength support is read from, plain cosine, and encode ms.

        Each matrix is answer sentences (their `statements`) x source sentences. The first
        orders citations and includes neighbour context; the second is each sentence's own
        match (or the reranker's scores), so a near-miss beside a near-miss is still a miss.
        """
        cfg = self.config
        n_sentences = sum(len(s) for s in source_spans)
        m = len(statements)
        if m == 0 or n_sentences == 0:
            empty = np.zeros((m, n_sentences), dtype=np.float32)
            return empty, empty, empty, 0.0
        queries, extra = self._query_texts(statements, question, None)
        units, windows = self._units(sources, source_spans)

        t = time.perf_counter()
        # one batched encode: the floor
        texts = [*queries, *(text for _, text in extra), *units]
        vectors = check_vectors(self.embedder.encode(texts), len(texts))
        encode_ms = _ms(t)
        k = m + len(extra)
        alone = cosine_matrix(vectors[:m], vectors[k:])
        cosine = alone
        # context may only help *find* a pronoun-led sentence's evidence (the better of plain and
        # in-context); its support is read from the sentence alone, so an invented "It was
        # started by foreign agents." after a true sentence does not borrow that one's support
        if extra:
            rows = np.array([i for i, _ in extra])
            cosine = alone.copy()
            cosine[rows] = np.maximum(cosine[rows], cosine_matrix(vectors[m:k], vectors[k:]))
        lex = lexical_matrix(queries, units) if cfg.lexical_weight > 0 else None
        strength, own = (self._mixed(c, lex, windows, n_sentences) for c in (cosine, alone))
        cosine = alone if windows is None else windows_to_sentences(alone, windows, n_sentences)
        # before the reranker, so neighbours also help choose the candidates it re-scores
        strength = neighbour_context(strength, owner, cfg.context_weight)
        if self.reranker is not None:
            sentences = [span.text for spans in source_spans for span in spans]
            top_n = int(getattr(self.reranker, "top_n", 5))
            strength = own = rerank(strength, queries, sentences, self.reranker, top_n=top_n)
        return strength, own, cosine, encode_ms

    def _mixed(
        self,
        cosine: FloatMatrix,
        lex: FloatMatrix | None,
        windows: list[tuple[int, int]] | None,
        n_sentences: int,
    ) -> FloatMatrix:
        """Cosine mixed with lexical strength, per source sentence."""
        w = self.config.lexical_weight
        strength = cosine if lex is None else (1.0 - w) * cosine + w * lex
        if windows is not None:
            strength = windows_to_sentences(strength, windows, n_sentences)
        return np.asarray(strength, dtype=np.float32)

    def _units(
        self, sources: list[Source], source_spans: list[list[Span]]
    ) -> tuple[list[str], list[tuple[int, int]] | None]:
        """The texts compared with answer sentences (sentences, or windows) and the windows."""
        k = self.config.window
        windows = sliding_windows([len(s) for s in source_spans], k) if k > 1 else None
        return _unit_texts(sources, source_spans, windows), windows

    def _query_texts(
        self, sentences: Sequence[str], question: str | None, previous: str | None
    ) -> tuple[list[str], list[tuple[int, str]]]:
        """The texts embedded for answer sentences, and (row, text) in-context variants.

        A very short answer ("Yes.", "1912.") means nothing without its question, so it is
        embedded with it. "They are flightless birds." says nothing about penguins without
        what "they" is, so a sentence opening with a pronoun is also embedded after the
        previous answer sentence (the question for the first) and keeps the better match.
        """
        queries: list[str] = []
        extra: list[tuple[int, str]] = []
        use = self.config.use_question
        for i, sentence in enumerate(sentences):
            if use and question and len(sentence.split()) < _SHORT_ANSWER_WORDS:
                queries.append(f"{question} {sentence}")
            else:
                queries.append(sentence)
                context = previous if previous is not None else question
                if use and context and LEADING_PRONOUN.match(sentence):
                    extra.append((i, f"{context} {sentence}"))
            previous = sentence
        return queries, extra

    def _assemble(
        self,
        answer: str,
        question: str | None,
        answer_spans: list[Span],
        statements: list[str],
        sources: list[Source],
        source_spans: list[list[Span]],
        owner: IntVector,
        strength: FloatMatrix,
        own: FloatMatrix,
        cosine: FloatMatrix,
        words: frozenset[str],
        verdict: verifier.Verdict | None = None,
    ) -> AttributionResult:
        cfg = self.config
        threshold = self._threshold(verdict)
        m, n = strength.shape
        local = np.concatenate(
            [np.arange(len(s), dtype=np.int64) for s in source_spans] or [np.zeros(0, np.int64)]
        )
        flat_spans = [span for spans in source_spans for span in spans]

        if verdict is not None:
            support: FloatVector = verdict.support
        elif n:
            support = own.max(axis=1).astype(np.float32)
            if cfg.paraphrase_margin is not None and cfg.lexical_weight > 0:
                support = np.maximum(support, cosine.max(axis=1) - cfg.paraphrase_margin)
        else:
            support = np.zeros(m, dtype=np.float32)
        supported = (support >= threshold) & (n > 0)
        # overlapping chunks repeat sentences: each is scored and cited once (its first copy)
        first = first_copies([span.text for span in flat_spans], owner)
        scores, ranked = score_once(strength, first, cfg.normalization, temperature=cfg.temperature)
        claims = [not cfg.check_claims or is_claim(span.text, question) for span in answer_spans]
        # a sentence that only talks to the reader is not checked: that is its one issue
        issues = [
            self._issues(text, strength[i], owner, sources, words) if claim else (NOT_A_CLAIM,)
            for i, (text, claim) in enumerate(zip(statements, claims, strict=True))
        ]
        supported &= np.array([not x for x in issues], dtype=bool)
        if verdict is not None:
            issues = [
                x or verifier.reasons(span.text, verdict, i, threshold)
                for i, (span, x) in enumerate(zip(answer_spans, issues, strict=True))
            ]
        else:
            issues = [x if supported[i] else x or _weak_match(n) for i, x in enumerate(issues)]

        answer_sentences = []
        for i, span in enumerate(answer_spans):
            cited: tuple[Citation, ...] = ()
            # neither verdict withholds evidence: an unsupported sentence still gets its
            # closest sources, best first, and supported=False says they do not back it; a
            # sentence that only talks to the reader ("Great question!") claims nothing to cite
            if n and claims[i]:
                picks = select_citations(
                    scores[i],
                    ranked[i],
                    top_k=cfg.top_k,
                    min_score=cfg.min_score,
                    ratio=cfg.citation_ratio,
                )
                cited = tuple(
                    Citation(
                        source_id=sources[owner[j]].id,
                        source_index=int(owner[j]),
                        sentence_index=int(local[j]),
                        text=flat_spans[j].text,
                        start=flat_spans[j].start,
                        end=flat_spans[j].end,
                        score=float(scores[i, j]),
                        similarity=float(ranked[i, j]),
                        also_in=_also_in(j, first, owner, sources),
                    )
                    for j in picks
                )
            answer_sentences.append(
                SentenceAttribution(
                    index=i,
                    text=span.text,
                    start=span.start,
                    end=span.end,
                    citations=cited,
                    supported=bool(supported[i]),
                    support=float(support[i]),
                    issues=issues[i],
                    claim=claims[i],
                )
            )

        # Only supported answer sentences move source scores: a softmax row always has a
        # winner, even for a sentence nothing backs.
        kept = scores[supported]
        sentence_scores = aggregate(kept, cfg.aggregation, weights=support[supported])[first]
        shares = chunk_shares(kept, owner, len(sources), weights=support[supported])
        best = strength.max(axis=0) if m else np.zeros(n, dtype=np.float32)

        source_results = []
        offset = 0
        for c, (source, spans) in enumerate(zip(sources, source_spans, strict=True)):
            block = slice(offset, offset + len(spans))
            offset += len(spans)
            source_results.append(
                SourceAttribution(
                    id=source.id,
                    index=c,
                    text=source.text,
                    score=float(shares[c]),
                    max_similarity=float(best[block].max()) if spans else 0.0,
                    sentences=tuple(
                        SourceSentence(k, sp.text, sp.start, sp.end, float(sentence_scores[j]))
                        for k, (sp, j) in enumerate(
                            zip(spans, range(block.start, block.stop), strict=True)
                        )
                    ),
                    metadata=source.metadata,
                )
            )
        return AttributionResult(
            answer=answer,
            answer_sentences=tuple(answer_sentences),
            sources=tuple(source_results),
            similarity=strength,
            question=question,
        )

    def _issues(
        self,
        sentence: str,
        row: FloatVector,
        owner: Any,
        sources: list[Source],
        source_words: frozenset[str],
    ) -> tuple[str, ...]:
        """Reasons a similar-looking sentence is still unsupported (see `check_numbers`,
        `check_claims`, `check_names`); `source_words`: every source's content tokens."""
        cfg = self.config
        if not (cfg.check_numbers or cfg.check_claims or cfg.check_names) or row.size == 0:
            return ()
        out: list[str] = []
        if cfg.check_claims and is_question(sentence):
            out.append("it is a question, not a statement a source can back")
        best = np.argsort(-row, kind="stable")[: cfg.top_k]
        # the whole chunk: a figure often sits in the sentence next to the best match
        chunks = [sources[c].text for c in sorted({int(owner[j]) for j in best})]
        if cfg.check_claims:
            voice = first_person(sentence).difference(*(first_person(t) for t in chunks))
            if voice:
                words = ", ".join(repr(w) for w in sorted(voice))
                out.append(f"it speaks in the first person ({words}); its best sources do not")
        if cfg.check_numbers:
            missing = missing_numbers(sentence, chunks)
            out.extend(f"{value} is in none of the best-matching sources" for value in missing)
        if cfg.check_names:
            out.extend(
                f"no source mentions {name}" for name in missing_names(sentence, source_words)
            )
        return tuple(out)


def _source_words(
    sources: list[Source], sentences: list[Span], question: str | None
) -> frozenset[str]:
    """Every source's words, its id's and its text metadata's (a chunk saying only "She won
    ..." under the title "Marie Curie" still mentions her), and the question's (chunks
    retrieved for "When did the Golden Gate Bridge open?" may say only "The bridge"): a full
    name none holds is invented.

    The text's words are read from its `sentences` (short cache keys, which the lexical
    strength has mostly tokenised already): a whole text as a key would keep every document
    seen in the token cache.
    """
    texts = [span.text for span in sentences] + [question or "", *(s.id for s in sources)]
    texts += [v for s in sources for v in s.metadata.values() if isinstance(v, str)]
    return frozenset(t for text in texts for t in content_tokens(text))


def _statements(
    answer_spans: list[Span], labels: list[tuple[str, str] | None], words: frozenset[str]
) -> list[str]:
    """What each answer sentence states: its text, or the statement after a Markdown label
    ("**Main cause:** ...", `claims.label`) holding a word no source, source id or question
    has. Such a label names a topic, not a fact: read with its statement it would lower the
    statement's match, and its figures ("**Step 1:**") read as figures no source holds. A
    label the sources echo ("**Eiffel's design:** ...") stays: it may be the subject.
    """
    out = []
    for span, found in zip(answer_spans, labels, strict=True):
        if found and not set(content_tokens(found[0])) <= words:
            out.append(found[1])
        else:
            out.append(span.text)
    return out


def _weak_match(n: int) -> tuple[str, ...]:
    """Why the similarity verdict rejects a sentence no rule flagged (its `support`, beside
    it, says by how much)."""
    return (WEAK_MATCH,) if n else (NO_SOURCE,)


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


def _also_in(j: int, first: IntVector, owner: IntVector, sources: list[Source]) -> tuple[str, ...]:
    """The ids of the other sources holding a copy of source sentence `j`, in order."""
    ids = [sources[owner[k]].id for k in np.flatnonzero(first == j) if owner[k] != owner[j]]
    return tuple(dict.fromkeys(ids))


def _owners(source_spans: list[list[Span]]) -> IntVector:
    """The source index of every source sentence, in order -> (n,)."""
    counts = [len(s) for s in source_spans]
    return np.repeat(np.arange(len(counts)), counts).astype(np.int64)


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        msg = f"{name} must be str, got {type(value).__name__}"
        raise TypeError(msg)


def _unit_texts(
    sources: list[Source],
    source_spans: list[list[Span]],
    windows: list[tuple[int, int]] | None,
) -> list[str]:
    flat = [(c, span) for c, spans in enumerate(source_spans) for span in spans]
    if windows is None:
        return [span.text for _, span in flat]
    # A window is the source text from its first sentence's start to its last one's end.
    return [
        sources[flat[lo][0]].text[flat[lo][1].start : flat[hi - 1][1].end] for lo, hi in windows
    ]


def to_sources(sources: Sequence[SourceLike] | None) -> list[Source]:
    """Normalise `sources=` input to `Source` objects; ids default to the position.

    Texts lose lone surrogates (see `validate.clean_text`) and metadata becomes a JSON-safe
    dict (`validate.clean_metadata`); what cannot be kept is dropped quietly here, and
    `Attributor.attribute` (given the same sources) names it in the result's `error`.

    Raises:
        TypeError: an item is not a `Source`, a string or a mapping with "text".
    """
    return _resolve(sources)[0]


def _resolve(sources: Sequence[SourceLike] | None) -> tuple[list[Source], list[str]]:
    """`to_sources`, and a note per source whose metadata lost something."""
    notes: list[str] = []
    out = []
    for i, source in enumerate(_to_sources(sources)):
        metadata, dropped = clean_metadata(source.metadata, f"sources[{i}].metadata")
        if dropped:
            more = f" and {len(dropped) - 3} more" if len(dropped) > 3 else ""
            shown = ", ".join(dropped[:3]) + more
            notes.append(f"dropped metadata that is not JSON-safe: {shown}")
        out.append(Source(clean_text(source.id), clean_text(source.text), metadata))
    return out, notes


def _to_sources(sources: Sequence[SourceLike] | None) -> list[Source]:
    if sources is None:
        return []
    if isinstance(sources, (str, bytes)):
        msg = "sources must be a list of Source objects or strings, not a single string"
        raise TypeError(msg)
    out = []
    for i, item in enumerate(sources):
        if isinstance(item, Source):
            _check_text(f"sources[{i}].text", item.text)
            out.append(
                item if isinstance(item.id, str) else Source(str(item.id), item.text, item.metadata)
            )
        elif isinstance(item, str):
            out.append(Source(id=str(i), text=item))
        elif isinstance(item, Mapping) and "text" in item:
            _check_text(f"sources[{i}]['text']", item["text"])
            meta: Any = item.get("metadata") or {}
            out.append(Source(id=str(item.get("id", i)), text=item["text"], metadata=meta))
        else:
            msg = f"sources[{i}] must be a Source or str, got {type(item).__name__}"
            raise TypeError(msg)
    return out


_default: Attributor | None = None
_default_lock = threading.Lock()


def default_attributor() -> Attributor:
    """The process-wide `Attributor()` over the bundled model, created on first use.

    `attribute()` and the integrations use it when given no attributor, so the model is
    loaded once and its embedding cache is shared.
    """
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Attributor()
    return _default


def loaded_default_attributor() -> Attributor | None:
    """The shared default `Attributor` if something already created it, else None.

    For callers that must not stall (a stream) on loading the model.
    """
    return _default


def attribute(
    answer: str,
    sources: Sequence[SourceLike],
    question: str | None = None,
) -> AttributionResult:
    """Attribute with a shared default `Attributor` (bundled model, default config).

    Example:
        >>> from rag_attrib import attribute
        >>> result = attribute("Paris is the capital.", ["Paris is France's capital city."])
    """
    return default_attributor().attribute(answer, sources, question)
