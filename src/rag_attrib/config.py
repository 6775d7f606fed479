"""One explicit, frozen configuration for the engine."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from .errors import ConfigError

__all__ = ["AGGREGATIONS", "NORMALIZATIONS", "VERDICTS", "AttributionConfig"]

Normalization = Literal["softmax", "none", "minmax"]
Aggregation = Literal["max", "mean", "weighted"]
Verdict = Literal["verifier", "similarity"]

NORMALIZATIONS: tuple[str, ...] = ("softmax", "none", "minmax")
AGGREGATIONS: tuple[str, ...] = ("max", "mean", "weighted")
VERDICTS: tuple[str, ...] = ("verifier", "similarity")
# the similarity verdict's threshold on hybrid strength; the verifier's comes with its model
SIMILARITY_THRESHOLD = 0.40


@dataclass(frozen=True, slots=True)
class AttributionConfig:
    """How answer sentences are matched to source sentences.

    Args:
        normalization: per answer sentence, how raw strengths become scores over the source
            sentences: "softmax" (with `temperature`), "minmax", or "none" (raw strength).
        temperature: softmax temperature; below 1 sharpens the distribution towards the best match.
        aggregation: how a source sentence's scores combine across answer sentences: "max" (its
            best use), "mean" (the seed article's choice) or "weighted" (mean weighted by each
            answer sentence's support, so unsupported sentences count less).
        window: sliding window of k sentences per source; a window's strength maps back to each of
            its sentences (a sentence keeps its best window). 1 means single sentences.
        top_k: at most this many citations per answer sentence.
        min_score: a citation needs at least this normalised score.
        verdict: how `supported` is decided. "similarity" (default): `support` is the best
            hybrid strength (see `paraphrase_margin`, `check_numbers`). "verifier": the bundled
            trained verifier reads each sentence's best evidence candidates and `support` is its
            probability that they back the sentence. Under either, an unsupported sentence
            keeps its closest sources as citations (`supported=False` says they do not back
            it). "verifier" is not the default yet: it does not beat "similarity" on every
            evaluation set (README, *Verdict*).
        support_threshold: an answer sentence is supported when its `support` reaches this.
            None uses the verdict's default: the verifier's (chosen on held-out train-side
            data) or 0.40 for "similarity". `calibrate()` fits it to your own labels.
        citation_ratio: secondary citations need a strength of at least this fraction of the best
            one, so a sentence backed by one source is not padded with near-misses.
        lexical_weight: weight of the lexical (token overlap) strength mixed into the dense cosine
            strength; 0 gives the plain-cosine recipe.
        context_weight: a source sentence's strength also gets this fraction of its stronger
            neighbour's (same chunk), so the sentence beside a strong match, which often holds
            the rest of the claim, ranks above an unrelated one. It orders citations and scores
            only: `support` and the verdict come from each sentence's own strength. 0 turns it off.
        paraphrase_margin: a paraphrase shares few words with its source, so a sentence is also
            supported when its best plain cosine minus this margin reaches the threshold
            (support = max(hybrid strength, cosine - margin)); None turns this off.
        use_question: embed answer sentences that mean little alone with their context: very
            short ones ("Yes.", "Paris.") with the question, and ones opening with a pronoun
            ("They are...") with the previous answer sentence (the question for the first).
        check_numbers: an answer sentence with a figure (year, amount, count) that none of the
            chunks of its best matches contains is unsupported, however similar it reads.
        check_claims: a question, or a sentence in the speaker's own voice ("I loved it", "we
            recommend") when none of its best-matching chunks speaks so, states nothing a source
            backs; it is unsupported, however many words it shares with one. And a sentence
            that only talks to the reader ("Great question!", "Yes.", "I hope this helps!") is
            not a claim (`claim=False`, see `rag_attrib.claims`): it is not checked, and the
            result's `unsupported` and `coverage` leave it out. False checks every sentence.
        check_names: an answer sentence naming someone or something in full (two or more
            capitalised words: "Thomas Edison") that no source mentions, by any word of the
            name, is unsupported, however similar the rest reads.
        batch_size: encoder batch size.
        max_answer_chars: a longer answer raises `InputTooLargeError` (cost grows with answer
            sentences x source sentences; see README "Limits and bad input").
        max_source_chars: the same, for all sources' texts together.
    """

    normalization: Normalization = "softmax"
    temperature: float = 0.05
    aggregation: Aggregation = "max"
    window: int = 1
    top_k: int = 3
    min_score: float = 0.0
    verdict: Verdict = "similarity"
    support_threshold: float | None = None
    citation_ratio: float = 0.65
    lexical_weight: float = 0.7
    context_weight: float = 0.2
    paraphrase_margin: float | None = 0.2
    use_question: bool = True
    check_numbers: bool = True
    check_claims: bool = True
    batch_size: int = 32
    max_answer_chars: int = 50_000
    max_source_chars: int = 1_000_000
    check_names: bool = True

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            valid = _quoted(NORMALIZATIONS)
            msg = f"normalization must be one of {valid}; got {self.normalization!r}"
            raise ConfigError(msg)
        if self.aggregation not in AGGREGATIONS:
            msg = f"aggregation must be one of {_quoted(AGGREGATIONS)}; got {self.aggregation!r}"
            raise ConfigError(msg)
        _check_number("temperature", self.temperature, low=0.0, low_open=True)
        _check_int("window", self.window, low=1)
        _check_int("top_k", self.top_k, low=1)
        _check_int("batch_size", self.batch_size, low=1)
        _check_int("max_answer_chars", self.max_answer_chars, low=1)
        _check_int("max_source_chars", self.max_source_chars, low=1)
        _check_number("min_score", self.min_score, low=0.0, high=1.0)
        if self.verdict not in VERDICTS:
            msg = f"verdict must be one of {_quoted(VERDICTS)}; got {self.verdict!r}"
            raise ConfigError(msg)
        if self.support_threshold is not None:
            _check_number("support_threshold", self.support_threshold, low=-1.0, high=1.0)
        _check_number("citation_ratio", self.citation_ratio, low=0.0, high=1.0)
        _check_number("lexical_weight", self.lexical_weight, low=0.0, high=1.0)
        _check_number("context_weight", self.context_weight, low=0.0, high=1.0)
        if self.paraphrase_margin is not None:
            _check_number("paraphrase_margin", self.paraphrase_margin, low=0.0, high=2.0)
        for name in ("use_question", "check_numbers", "check_claims", "check_names"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                msg = f"{name} must be True or False; got {value!r}"
                raise ConfigError(msg)

    def to_dict(self) -> dict[str, Any]:
        """Return the options as a JSON-safe dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributionConfig:
        """Build a config from `to_dict()` output; unknown keys raise `ConfigError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            msg = f"unknown config option(s) {unknown}; valid options are {sorted(known)}"
            raise ConfigError(msg)
        return cls(**data)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(repr(v) for v in values)


def _check_int(name: str, value: object, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        msg = f"{name} must be an integer >= {low}; got {value!r}"
        raise ConfigError(msg)


def _check_number(
    name: str,
    value: object,
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        number = float(value)  # type: ignore[arg-type]
        # NaN and infinities cannot be written to JSON or read back, so no option takes them
        ok = math.isfinite(number) and (number > low if low_open else number >= low)
        ok = ok and (high is None or number <= high)
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        if high is not None:
            bound += f" and <= {high}"
        kind = "finite number" if high is None else "number"
        msg = f"{name} must be a {kind} {bound}; got {value!r}"
        raise ConfigError(msg)
