"""Train-side (claim, evidence, label) pairs for the verifier, split by group.

Only the train side of ../shared/evaldata/TRAINING.md is read: cg2c, summedits train groups
without samsum, expertqa train questions, begin dev, wice dev, hotpotqa train, musique. Real
labelled pairs come first; synthetic pairs are made from the same texts (a source sentence or a
light edit of it as positives; swapped figures, names, negations, a same-topic sentence from
another document, a spliced claim, another sentence of the same document as negatives).

A group (document, question, seed) sits wholly in "train" or in "val" (about 1 in 10), so the
validation AUC used for early stopping and the default threshold is on unseen texts.

    python -m training.verifier.data        # prints counts per set, kind and split
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag_attrib import split_sentences
from rag_attrib.evidence import evidence_window
from rag_attrib.lexical import lexical_matrix

SEED = 13
VAL_SHARE = 10  # one group in VAL_SHARE goes to validation
EVALDATA = Path(
    os.environ.get(
        "RAG_ATTRIB_EVALDATA", Path(__file__).resolve().parents[3] / "shared" / "evaldata"
    )
)


@dataclass(frozen=True)
class Pair:
    claim: str
    evidence: str
    label: int  # 1 supported, 0 not
    dataset: str
    kind: str  # "real" or the synthetic recipe ("copy", "number", "negation", ...)
    group: str
    split: str  # "train" or "val"


def _sha(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest(), 16)


def _split_of(group: str) -> str:
    return "val" if _sha(f"verifier-val:{group}") % VAL_SHARE == 0 else "train"


def _load(name: str, **kw: Any) -> list[dict[str, Any]]:
    sys.path.insert(0, str(EVALDATA / "common"))
    from load_all import load_dataset  # type: ignore[import-not-found]

    return list(load_dataset(name, **kw))


# --- which records are train side (TRAINING.md, verbatim rules) -----------------------------


def summedits_is_eval(rec: dict[str, Any]) -> bool:
    return _sha(rec["meta"]["seed_id"]) % 5 == 0


def expertqa_is_eval(rec: dict[str, Any]) -> bool:
    return _sha(rec["question"]) % 5 == 0


BEGIN_TRAIN = {"begin_dev_cmu", "begin_dev_tc", "begin_dev_wow"}

# Labels shared with benchmarks/verdict.py: a partly supported claim is not supported.
EXPERTQA_LABEL = {"Complete": 1, "Missing": 0, "Incomplete": 0}
BEGIN_LABEL = {"Fully attributable": 1, "Not fully attributable": 0}
WICE_LABEL = {"supported": 1, "partially_supported": 0, "not_supported": 0}


# --- documents as sentences -----------------------------------------------------------------


@dataclass
class Doc:
    dataset: str
    group: str
    sentences: list[str]


def _sentences(text: str) -> list[str]:
    return [s.text.strip() for s in split_sentences(text or "") if s.text.strip()]


def _best_window(claim: str, sentences: list[str], prefer: list[int] | None = None) -> str:
    """The evidence window around the sentence that shares most with the claim (as the engine's
    lexical ranking would pick it); `prefer` limits the choice to gold sentences."""
    if not sentences:
        return ""
    scores = lexical_matrix([claim], sentences)[0]
    if prefer:
        mask = np.full(len(sentences), -1.0, dtype=np.float32)
        mask[prefer] = 0.0
        scores = scores + mask
    return evidence_window(sentences, int(np.argmax(scores)))


# --- real labelled pairs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """One labelled claim with its sources as sentences (what the engine would be given)."""

    text: str
    sources: list[list[str]]
    label: int
    dataset: str
    group: str
    prefer: list[int] | None = None  # gold sentences of a single source, when the set has them

    @property
    def split(self) -> str:
        return _split_of(self.group)


def real_pairs(docs: list[Doc]) -> Iterator[Pair]:
    """Each real claim with the evidence window the lexical ranking picks for it."""
    for c in real_claims(docs):
        sents = [s for source in c.sources for s in source]
        window = _best_window(c.text, sents, c.prefer)
        yield Pair(c.text, window, c.label, c.dataset, "real", c.group, c.split)


def real_claims(docs: list[Doc]) -> Iterator[Claim]:
    """The train side's labelled claims; their documents are appended to `docs`."""

    for rec in _load("cg2c"):
        text = " ".join(c["text"] for c in rec["context"])
        group = f"cg2c:{_sha(text) % 10**12}"
        sents = _sentences(text)
        docs.append(Doc("cg2c", group, sents))
        yield Claim(rec["claim"], [sents], int(rec["label"]), "cg2c", group)

    seen: set[tuple[str, str]] = set()
    for rec in _load("summedits"):
        if summedits_is_eval(rec) or rec["meta"]["domain"] == "samsum":
            continue
        group = f"summedits:{rec['meta']['seed_id']}"
        text = " ".join(c["text"] for c in rec["context"])
        sents = _sentences(text)
        if (group, "") not in seen:
            seen.add((group, ""))
            docs.append(Doc("summedits", group, sents))
        original = {s.strip() for s in _sentences(rec["meta"].get("original_summary") or "")}
        for s in _sentences(rec["claim"]):
            # an edited summary is inconsistent in the sentences the edit changed
            label = 1 if rec["label"] == 1 or s in original else 0
            if (group, s) in seen:
                continue
            seen.add((group, s))
            yield Claim(s, [sents], label, "summedits", group)

    for rec in _load("expertqa"):
        if expertqa_is_eval(rec):
            continue
        group = f"expertqa:{rec['question']}"
        by_id = {s["id"]: _sentences(s["text"]) for s in rec["sources"]}
        for sents in by_id.values():
            docs.append(Doc("expertqa", group, sents))
        for a in rec["answer_sentences"]:
            label = EXPERTQA_LABEL.get(a.get("label") or "")
            if label is None or not a["text"].strip():
                continue
            # read against every retrieved passage, as the engine (and verdict.py) reads it
            chosen = [sents for sents in by_id.values() if sents]
            if chosen:
                yield Claim(a["text"].strip(), chosen, label, "expertqa", group)

    for rec in _load("begin"):
        if rec["split"] not in BEGIN_TRAIN:
            continue
        text = " ".join(s["text"] for s in rec["sources"])
        group = f"begin:{_sha(text) % 10**12}"
        sents = _sentences(text)
        docs.append(Doc("begin", group, sents))
        for a in rec["answer_sentences"]:
            label = BEGIN_LABEL.get(a.get("label") or "")
            if label is not None and a["text"].strip():
                yield Claim(a["text"].strip(), [sents], label, "begin", group)

    for rec in _load("wice", split="dev"):
        group = f"wice:{rec['meta'].get('claim_title') or rec['id']}"
        src = rec["sources"][0]
        sents = [s["text"].strip() for s in src.get("sentences") or []] or _sentences(src["text"])
        ids = [s["id"] for s in src.get("sentences") or []]
        docs.append(Doc("wice", group, sents))
        for a in rec["answer_sentences"]:
            label = WICE_LABEL.get(a.get("label") or "")
            gold = [ids.index(g) for g in a.get("gold_sentence_ids") or [] if g in ids]
            if label is not None:
                yield Claim(a["text"].strip(), [sents], label, "wice", group, gold or None)

    for name, kw in (("hotpotqa", {"split": "train"}), ("musique", {})):
        for rec in _load(name, **kw):
            group = f"{name}:{rec['id']}"
            claim = f"{rec['question']} {rec['answer']}"
            gold = set(rec["gold"].get("source_ids") or [])
            others = [s for s in rec["sources"] if s["id"] not in gold]
            rng = random.Random(f"{SEED}:{group}")
            keep = [s for s in rec["sources"] if s["id"] in gold] + rng.sample(
                others, min(2, len(others))
            )
            for src in keep:
                sents = _sentences(src["text"])
                if not sents:
                    continue
                docs.append(Doc(name, f"{group}", sents))
                # a gold paragraph backs question + answer; another paragraph on the topic not
                yield Claim(claim, [sents], 1 if src["id"] in gold else 0, name, group)


# --- synthetic pairs from train-side documents ----------------------------------------------

_NUM = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*")
_NEG = re.compile(r"\b(is|was|are|were|has|have|had|can|will|does|did|could|would|should)\b")
_NOT = re.compile(r"\b(is|was|are|were|has|have|had|can|will|does|did|could|would|should) not\b")
_NAME = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]+(?: [A-Z][a-z]+)*")
_MONTHS = (
    "January February March April May June July August September October November December".split()
)


def _swap_number(s: str, rng: random.Random) -> str | None:
    found = list(_NUM.finditer(s))
    if not found:
        return None
    m = rng.choice(found)
    value = m.group().replace(",", "")
    try:
        x = float(value)
    except ValueError:
        return None
    if 1800 <= x <= 2100 and "." not in value:
        new = str(int(x) + rng.choice([-12, -5, -3, -2, -1, 1, 2, 3, 7, 10]))
    elif x.is_integer():
        new = str(int(x * rng.choice([2, 3, 0.5, 10]) + rng.choice([1, 2, 3])))
    else:
        new = f"{x * rng.choice([1.5, 2, 0.5, 0.8]):.{len(value.split('.')[1])}f}"
    if new == value:
        return None
    return s[: m.start()] + new + s[m.end() :]


def _swap_month(s: str, rng: random.Random) -> str | None:
    hits = [m for m in _MONTHS if re.search(rf"\b{m}\b", s)]
    if not hits:
        return None
    old = rng.choice(hits)
    return re.sub(rf"\b{old}\b", rng.choice([m for m in _MONTHS if m != old]), s, count=1)


def _swap_name(s: str, names: list[str], rng: random.Random) -> str | None:
    found = list(_NAME.finditer(s))
    if not found or not names:
        return None
    m = rng.choice(found)
    new = rng.choice(names)
    if new == m.group() or new in s:
        return None
    return s[: m.start()] + new + s[m.end() :]


def _negate(s: str, rng: random.Random) -> str | None:
    m = _NOT.search(s)
    if m:
        return s[: m.start()] + m.group(1) + s[m.end() :]
    m = _NEG.search(s)
    if m:
        return s[: m.end()] + " not" + s[m.end() :]
    if " never " in s:
        return s.replace(" never ", " always ", 1)
    return None


def _light_edit(s: str, rng: random.Random) -> str | None:
    """A shorter claim the sentence still backs: one of its clauses, or without an aside."""
    parts = [p.strip() for p in re.split(r"[,;] ", s.rstrip(".")) if len(p.split()) >= 6]
    if len(parts) >= 2:
        p = rng.choice(parts)
        return p[0].upper() + p[1:] + "."
    inner = re.sub(r" \([^)]*\)", "", s)
    return inner if inner != s else None


def synthetic_pairs(docs: list[Doc], rng: random.Random, per_doc: int = 3) -> Iterator[Pair]:
    usable = [d for d in docs if len(d.sentences) >= 1]
    names = sorted({m.group() for d in usable for s in d.sentences for m in _NAME.finditer(s)})
    by_set: dict[str, list[tuple[int, int]]] = {}
    for i, d in enumerate(usable):
        for k, s in enumerate(d.sentences):
            if 6 <= len(s.split()) <= 45:
                by_set.setdefault(d.dataset, []).append((i, k))
    for d in usable:
        split = _split_of(d.group)
        ks = [k for k, s in enumerate(d.sentences) if 6 <= len(s.split()) <= 45]
        rng.shuffle(ks)
        for k in ks[:per_doc]:
            s = d.sentences[k]
            window = evidence_window(d.sentences, k)

            def out(
                claim: str | None,
                label: int,
                kind: str,
                evidence: str = window,
                s: str = s,
                d: Doc = d,
                split: str = split,
            ) -> Iterator[Pair]:
                # an edit must change the sentence; only the "copy" positive may equal it
                if claim and claim.strip() and (claim.strip() != s or (claim == s and label == 1)):
                    yield Pair(claim.strip(), evidence, label, d.dataset, kind, d.group, split)

            yield from out(s, 1, "copy")
            yield from out(_light_edit(s, rng), 1, "edit")
            edits = [
                ("number", _swap_number(s, rng)),
                ("month", _swap_month(s, rng)),
                ("name", _swap_name(s, names, rng)),
                ("negation", _negate(s, rng)),
            ]
            edits = [(kind, c) for kind, c in edits if c]
            rng.shuffle(edits)
            for kind, claim in edits[:2]:
                yield from out(claim, 0, kind)
            # a same-topic sentence from another document, read against this one's best window
            pool = by_set.get(d.dataset, [])
            if len(pool) > 10:
                sample = [pool[rng.randrange(len(pool))] for _ in range(60)]
                sample = [(a, b) for a, b in sample if usable[a].group != d.group]
                if sample:
                    texts = [usable[a].sentences[b] for a, b in sample]
                    best = int(np.argmax(lexical_matrix([s], texts)[0]))
                    other = texts[best]
                    yield from out(other, 0, "other_doc", _best_window(other, d.sentences))
                    # spliced: this sentence's start, another's end
                    w1, w2 = s.split(), other.split()
                    if len(w1) >= 6 and len(w2) >= 6:
                        spliced = " ".join(w1[: len(w1) // 2] + w2[len(w2) // 2 :])
                        yield from out(spliced, 0, "splice")
            # another sentence of the same document, far from this window
            far = [
                j
                for j in range(len(d.sentences))
                if abs(j - k) > 2 and 6 <= len(d.sentences[j].split())
            ]
            if far and rng.random() < 0.5:
                yield from out(d.sentences[rng.choice(far)], 0, "same_doc", window)


SYNTHETIC_PER_SET = 3000  # at most this many synthetic pairs from each set's documents


def build(seed: int = SEED) -> list[Pair]:
    rng = random.Random(seed)
    docs: list[Doc] = []
    real = [p for p in real_pairs(docs) if p.claim and p.evidence]
    unique: dict[tuple[str, ...], Doc] = {}
    for d in docs:  # a document cited by several records is one document
        unique.setdefault(tuple(d.sentences), d)
    synth = [p for p in synthetic_pairs(list(unique.values()), rng) if p.claim and p.evidence]
    by_set: dict[str, list[Pair]] = {}
    for p in synth:
        by_set.setdefault(p.dataset, []).append(p)
    kept: list[Pair] = []
    for ds in sorted(by_set):
        items = by_set[ds]
        rng.shuffle(items)
        kept.extend(items[:SYNTHETIC_PER_SET])
    return real + kept


def save(pairs: list[Pair], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")


def load(path: Path) -> list[Pair]:
    with path.open(encoding="utf-8") as f:
        return [Pair(**json.loads(line)) for line in f]


def counts(pairs: list[Pair]) -> str:
    c = Counter((p.dataset, p.kind == "real", p.split, p.label) for p in pairs)
    rows = []
    for ds in sorted({p.dataset for p in pairs}):
        for real in (True, False):
            cells = [c[(ds, real, sp, lb)] for sp in ("train", "val") for lb in (1, 0)]
            if any(cells):
                rows.append(
                    f"{ds:<11}{'real' if real else 'synthetic':<10}"
                    + "".join(f"{x:>8}" for x in cells)
                )
    kinds = Counter((p.kind, p.label) for p in pairs)
    head = f"{'set':<11}{'kind':<10}{'train+':>8}{'train-':>8}{'val+':>8}{'val-':>8}"
    return "\n".join(
        [
            head,
            *rows,
            "",
            "by recipe: " + ", ".join(f"{k}/{lb}={n}" for (k, lb), n in sorted(kinds.items())),
            f"total {len(pairs)}",
        ]
    )


if __name__ == "__main__":
    out = Path(__file__).with_name("cache") / "pairs.jsonl"
    pairs = build()
    save(pairs, out)
    print(counts(pairs))
    print(f"written to {out}")
