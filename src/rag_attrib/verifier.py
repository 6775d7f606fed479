"""The trained verdict: the probability that an answer sentence's best evidence backs it.

Similarity says a sentence is *about* the same thing as a source sentence; it cannot tell
"opened in 1889" from "opened in 1899", or a true sentence from an invented one that reuses its
words. The verifier reads, for each answer sentence, its best few evidence candidates from the
engine's ranking (each a source sentence with its neighbours, plus its whole chunk) and computes
signals a reader would check: how many of the sentence's content words, figures and names the
evidence holds (in every clause, in order), whether one side negates, how close the embeddings
are. A small model (`verifier_model.py`: boosted trees, each signal allowed to push only one
way) trained on the train side of the project's evaluation data (`training/verifier/`) turns
them into a probability. It runs in numpy, in well under a millisecond per sentence.

The model is a JSON file inside the package (`models/verifier/verifier.json`). If it is missing
or unreadable, `load_verifier()` logs one WARNING naming the fix and the engine falls back to the
similarity verdict (the result's `config["verdict"]` then says "similarity").
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ._types import FloatMatrix, FloatVector, IntVector
from .evidence import evidence_window
from .lexical import content_tokens, numbers
from .verifier_model import FEATURES, VerifierModel

__all__ = ["FEATURES", "VerifierModel", "candidates", "load_verifier", "signals"]

logger = logging.getLogger(__name__)


CANDIDATES = 3  # evidence candidates read per answer sentence
# why a sentence is unsupported when no source has a sentence to compare it with (either verdict)
NO_SOURCE = "no source sentence to compare it with"
# the similarity verdict's paraphrase margin (config.paraphrase_margin's default)
_MARGIN = 0.2

_NEGATION = re.compile(r"\b(?:not|no|never|none|nothing|neither|nor|cannot|without)\b|n't\b", re.I)
_NAME = re.compile(r"(?<=[\w,;:] )[A-Z][\w'-]+")
# where one claim becomes two: an invented clause beside a true one
_CLAUSE = re.compile(r"[,;:()]|\s(?:and|but|while|whereas|which|who|although|because)\s", re.I)


MODEL_FILE = "verifier.json"
_loaded: dict[str, VerifierModel | None] = {}
_lock = threading.Lock()


def default_model_file() -> Path:
    """The bundled model's path (inside the installed package)."""
    return Path(str(resources.files("rag_attrib") / "models" / "verifier" / MODEL_FILE))


def load_verifier(path: str | Path | None = None) -> VerifierModel | None:
    """The verifier at `path` (None: the bundled one), loaded once per process.

    Returns None, after one logged WARNING naming the fix, when the file is missing or corrupt;
    the engine then uses the similarity verdict.
    """
    file = Path(path) if path is not None else default_model_file()
    key = str(file)
    if key not in _loaded:
        with _lock:
            if key not in _loaded:
                try:
                    model: VerifierModel | None = VerifierModel.from_dict(
                        json.loads(file.read_text(encoding="utf-8"))
                    )
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    logger.warning(
                        "the verifier model %s cannot be read (%s: %s); using the similarity "
                        "verdict instead. Reinstall rag-attrib (pip install --force-reinstall "
                        "rag-attrib) or pass AttributionConfig(verdict='similarity').",
                        file,
                        type(exc).__name__,
                        exc,
                    )
                    model = None
                _loaded[key] = model
    return _loaded[key]


def candidates(ranking: FloatMatrix, k: int = CANDIDATES) -> list[list[int]]:
    """The best `k` source sentences of each answer sentence by the engine's ranking."""
    if ranking.shape[1] == 0:
        return [[] for _ in range(ranking.shape[0])]
    order = np.argsort(-ranking, axis=1, kind="stable")[:, :k]
    return [[int(j) for j in row] for row in order]


def _recall(claim: set[str], text: str) -> float:
    return len(claim & set(content_tokens(text))) / len(claim) if claim else 0.0


def missing_names(sentence: str, evidence: str) -> int:
    """How many capitalised names of `sentence` (not its first word) `evidence` lacks."""
    lower = evidence.lower()
    # "Farriner's" is the name "Farriner"
    names = {
        m.group().lower().removesuffix("'s").removesuffix("\u2019s")
        for m in _NAME.finditer(sentence)
    }
    return sum(1 for name in names if name not in lower)


def _pairs(tokens: Sequence[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(tokens))


def _clause_recall(sentence: str, chunk_tokens: set[str]) -> float:
    """The weakest clause's share of content words in `chunk_tokens` (clauses of 2+ words)."""
    shares = []
    for part in _CLAUSE.split(sentence):
        words = set(content_tokens(part))
        if len(words) >= 2:
            shares.append(len(words & chunk_tokens) / len(words))
    return min(shares) if shares else 1.0


def _idf(source_sentences: Sequence[Sequence[str]]) -> tuple[dict[str, float], float]:
    """IDF of each content word over the source sentences, and the weight of an unseen word."""
    df: dict[str, int] = {}
    n = 0
    for sents in source_sentences:
        for text in sents:
            n += 1
            for token in set(content_tokens(text)):
                df[token] = df.get(token, 0) + 1
    return {t: math.log((n + 1.0) / (d + 0.5)) for t, d in df.items()}, math.log((n + 1.0) / 0.5)


def signals(
    sentences: Sequence[str],
    source_sentences: Sequence[Sequence[str]],
    source_texts: Sequence[str],
    owner: IntVector,
    local: IntVector,
    picks: list[list[int]],
    cosine: FloatMatrix,
    lexical: FloatMatrix,
) -> tuple[FloatMatrix, list[list[str]]]:
    """The `FEATURES` of each answer sentence -> (m, len(FEATURES)), and its evidence windows.

    Args:
        sentences: the answer sentences as scored (alone: no pronoun context, so an invented
            sentence cannot borrow its neighbour's support).
        source_sentences: each source's sentences; `source_texts` the sources' texts.
        owner, local: each flat source sentence's source and position in it.
        picks: each answer sentence's candidates (flat indices), best first.
        cosine, lexical: answer sentences x flat source sentences, for the sentences alone.
    """
    m = len(sentences)
    out = np.zeros((m, len(FEATURES)), dtype=np.float32)
    windows: list[list[str]] = []
    idf, unseen = _idf(source_sentences) if m else ({}, 0.0)
    for i, sentence in enumerate(sentences):
        ordered = content_tokens(sentence)
        claim = set(ordered)
        found = picks[i]
        texts = [evidence_window(source_sentences[owner[j]], int(local[j])) for j in found]
        windows.append(texts)
        figures = math.log1p(len(numbers(sentence)))
        if not found:
            out[i, FEATURES.index("length")] = math.log1p(len(claim))
            out[i, FEATURES.index("novel")] = math.log1p(len(claim))
            out[i, FEATURES.index("idf_novel")] = 1.0 if claim else 0.0
            out[i, FEATURES.index("figures")] = figures
            continue
        chunks = " ".join(source_texts[c] for c in sorted({int(owner[j]) for j in found}))
        chunk_sequence = content_tokens(chunks)
        chunk_tokens = set(chunk_sequence)
        hybrid = 0.3 * cosine[i] + 0.7 * lexical[i]
        pairs = _pairs(ordered)
        weight = {t: idf.get(t, unseen) for t in claim}
        total = sum(weight.values())
        top2 = np.sort(cosine[i])[-2:]
        out[i] = (
            float(hybrid.max()),
            float(cosine[i].max()),
            float(lexical[i].max()),
            max(_recall(claim, t) for t in texts),
            len(claim & chunk_tokens) / len(claim) if claim else 0.0,
            math.log1p(len(claim - chunk_tokens)),
            float(len(numbers(sentence) - numbers(chunks))),
            float(missing_names(sentence, chunks)),
            float(bool(_NEGATION.search(sentence)) != bool(_NEGATION.search(texts[0]))),
            math.log1p(len(claim)),
            max(float(hybrid.max()), float(cosine[i].max()) - _MARGIN),
            float(top2[0]) if len(top2) > 1 else 0.0,
            len(pairs & _pairs(chunk_sequence)) / len(pairs) if pairs else 1.0,
            _clause_recall(sentence, chunk_tokens),
            sum(w for t, w in weight.items() if t not in chunk_tokens) / total if total else 0.0,
            figures,
        )
    return out, windows


@dataclass(frozen=True)
class Verdict:
    """The verifier's reading of one answer: support per sentence and the candidates it read."""

    support: FloatVector
    picks: list[list[int]]
    signals: FloatMatrix
    threshold: float


def verify(
    model: VerifierModel,
    embedder: Any,
    queries: Sequence[str],
    source_spans: Sequence[Sequence[Any]],
    source_texts: Sequence[str],
    owner: IntVector,
    ranking: FloatMatrix,
) -> Verdict:
    """Score each answer sentence (`queries`, as embedded alone) against its best candidates.

    `ranking` (answer sentences x flat source sentences) only chooses the candidates; the
    signals are computed for the sentence alone, so context never lends support.
    """
    from .lexical import lexical_matrix
    from .scoring import cosine_matrix

    flat = [span.text for spans in source_spans for span in spans]
    m, n = len(queries), len(flat)
    local = np.concatenate(
        [np.arange(len(s), dtype=np.int64) for s in source_spans] or [np.zeros(0, np.int64)]
    )
    cosine = np.zeros((m, n), dtype=np.float32)
    lexical = np.zeros((m, n), dtype=np.float32)
    if m and n:
        # the engine just encoded these texts: its cache returns them without a second encode
        vectors = embedder.encode([*queries, *flat])
        # row by row: a sentence's signals must not move, even by float rounding, with the
        # other sentences of its answer
        for i, query in enumerate(queries):
            cosine[i] = cosine_matrix(vectors[i : i + 1], vectors[m:])[0]
            lexical[i] = lexical_matrix([query], flat)[0]
    picks = candidates(ranking) if n else [[] for _ in range(m)]
    per_source = [[span.text for span in spans] for spans in source_spans]
    x, _ = signals(queries, per_source, source_texts, owner, local, picks, cosine, lexical)
    support = model.probability(x)
    if not n:
        support = np.zeros(m, dtype=np.float32)
    return Verdict(support=support, picks=picks, signals=x, threshold=model.threshold)


def reasons(sentence: str, verdict: Verdict, i: int, threshold: float) -> tuple[str, ...]:
    """Readable reasons an answer sentence the verifier rejects is unsupported."""
    if verdict.support[i] >= threshold:
        return ()
    row = verdict.signals[i]
    if not verdict.picks[i]:
        return (NO_SOURCE,)
    if row[FEATURES.index("length")] == 0:
        # "Yes.", "Sure!": no word to look for, so word shares and negation say nothing here
        return ("it has no content word a source could back (a reply such as 'Yes.')",)
    out = []
    if row[FEATURES.index("missing_names")] > 0:
        out.append("it names something its best-matching sources do not")
    if row[FEATURES.index("negation")] > 0:
        out.append("it negates where its best match does not, or the reverse")
    share = row[FEATURES.index("chunk_recall")]
    out.append(
        f"the verifier finds no source that backs it (support {verdict.support[i]:.3f} < "
        f"{threshold:.3f}; {share:.0%} of its content words are in its best sources)"
    )
    return tuple(out)
