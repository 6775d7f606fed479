"""Tests for `rag_attrib.splitting`: sentence spans, offsets, Markdown blocks, languages."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nltk
import pytest

from rag_attrib import splitting
from rag_attrib.results import Span
from rag_attrib.splitting import PunktSplitter, Splitter, split_sentences

SRC = Path(__file__).resolve().parents[1] / "src"

# Whitespace as the splitter strips it: str.isspace plus zero-width characters and the BOM.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"

CASES = [
    # English abbreviations, each in context.
    (
        "Dr. Smith met Mr. Jones and Mrs. Brown. Ms. Lee and Prof. Chen agreed.",
        ["Dr. Smith met Mr. Jones and Mrs. Brown.", "Ms. Lee and Prof. Chen agreed."],
    ),
    (
        "John Smith Jr. met Bob Sr. on St. Patrick's Day. They talked.",
        ["John Smith Jr. met Bob Sr. on St. Patrick's Day.", "They talked."],
    ),
    (
        "It was red vs. blue, etc. and more. The end.",
        ["It was red vs. blue, etc. and more.", "The end."],
    ),
    (
        "Use a tool, e.g. a hammer, i.e. something heavy. Then hit.",
        ["Use a tool, e.g. a hammer, i.e. something heavy.", "Then hit."],
    ),
    (
        "The U.S. and the U.K. joined the U.N. in 1945. It grew.",
        ["The U.S. and the U.K. joined the U.N. in 1945.", "It grew."],
    ),
    ("He moved to the U.S. He liked it.", ["He moved to the U.S.", "He liked it."]),
    (
        "See No. 5 and Nos. 6-7 in Fig. 2, Figs. 3-4 and Eq. 7. Read vol. 2, p. 10 and pp. 11-12.",
        [
            "See No. 5 and Nos. 6-7 in Fig. 2, Figs. 3-4 and Eq. 7.",
            "Read vol. 2, p. 10 and pp. 11-12.",
        ],
    ),
    (
        "Acme Inc. hired ca. 50 people, approx. 10 from Foo Ltd. and Bar Co. in May. "
        "Baz Corp. did not.",
        [
            "Acme Inc. hired ca. 50 people, approx. 10 from Foo Ltd. and Bar Co. in May.",
            "Baz Corp. did not.",
        ],
    ),
    (
        "On Jan. 5, Feb. 10, Mar. 3, Apr. 1, Jun. 2, Jul. 4, Aug. 8, Sep. 9, Sept. 10, Oct. 31, "
        "Nov. 5 and Dec. 25 we met. Done.",
        [
            "On Jan. 5, Feb. 10, Mar. 3, Apr. 1, Jun. 2, Jul. 4, Aug. 8, Sep. 9, Sept. 10, "
            "Oct. 31, Nov. 5 and Dec. 25 we met.",
            "Done.",
        ],
    ),
    (
        "Mt. Everest was climbed by Hillary et al. in 1953, cf. the Dept. of records, est. 1900. "
        "Next.",
        [
            "Mt. Everest was climbed by Hillary et al. in 1953, cf. the Dept. of records, "
            "est. 1900.",
            "Next.",
        ],
    ),
    (
        "Gen. Grant, Gov. Brown, Sen. Smith and Rep. Jones read the 2nd ed. of the book "
        "(eds. Lee and Kim). It sold.",
        [
            "Gen. Grant, Gov. Brown, Sen. Smith and Rep. Jones read the 2nd ed. of the book "
            "(eds. Lee and Kim).",
            "It sold.",
        ],
    ),
    (
        "She earned a Ph.D. in 2010 and works 9 a.m. to 5 p.m. daily. We met at 5 p.m. Then "
        "they left.",
        [
            "She earned a Ph.D. in 2010 and works 9 a.m. to 5 p.m. daily.",
            "We met at 5 p.m.",
            "Then they left.",
        ],
    ),
    (
        "The answer is no. The next question is easy.",
        ["The answer is no.", "The next question is easy."],
    ),
    ("It cost 5. The end.", ["It cost 5.", "The end."]),
    # Numbers, URLs, e-mail addresses.
    (
        "Pi is about 3.14159 and the total was 1,000.25 dollars. Upgrade to v2.1.3 today.",
        ["Pi is about 3.14159 and the total was 1,000.25 dollars.", "Upgrade to v2.1.3 today."],
    ),
    (
        "Visit https://example.com/a.b?x=1.2 for details. Or see www.example.org/docs. Thanks.",
        [
            "Visit https://example.com/a.b?x=1.2 for details.",
            "Or see www.example.org/docs.",
            "Thanks.",
        ],
    ),
    (
        "Write to jane.doe@mail.example.org with questions. We reply fast.",
        ["Write to jane.doe@mail.example.org with questions.", "We reply fast."],
    ),
    (
        "The page https://ex.com/a.(b) is odd. Fine.",
        ["The page https://ex.com/a.(b) is odd.", "Fine."],
    ),
    # Ellipses, initials, quotes.
    (
        "Well... maybe not. I think\u2026 we should go.",
        ["Well... maybe not.", "I think\u2026 we should go."],
    ),
    (
        "J. R. R. Tolkien wrote it. J.R.R. Tolkien was British.",
        ["J. R. R. Tolkien wrote it.", "J.R.R. Tolkien was British."],
    ),
    ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
    (
        '"Stop!" she said. He asked "Why?" and left.',
        ['"Stop!" she said.', 'He asked "Why?" and left.'],
    ),
    ("Really? Yes! Fine.", ["Really?", "Yes!", "Fine."]),
    # Markdown.
    (
        "# Title\nIntro text. More text.\n\n## Section ##\nBody.",
        ["Title", "Intro text.", "More text.", "Section", "Body."],
    ),
    (
        "- First item. It has two sentences.\n- Second item\n  wraps here.\n* Star item\n"
        "+ Plus item",
        [
            "First item.",
            "It has two sentences.",
            "Second item\n  wraps here.",
            "Star item",
            "Plus item",
        ],
    ),
    (
        "Steps:\n1. Open the box.\n2. Take it out\n3) Close it",
        ["Steps:", "Open the box.", "Take it out", "Close it"],
    ),
    ("- [ ] todo one\n  - [x] done two", ["todo one", "done two"]),
    (
        "Before code.\n```python\nx = 1.5. y = 2\n\nprint('a. B')\n```\nAfter code.",
        ["Before code.", "```python\nx = 1.5. y = 2\n\nprint('a. B')\n```", "After code."],
    ),
    ("Text.\n~~~\ncode. More\n\nstill code", ["Text.", "~~~\ncode. More\n\nstill code"]),
    (
        "| Name | Score. Note |\n|---|:---:|\n| Ann. B | 3.5 |\nAfter table.",
        ["| Name | Score. Note |", "| Ann. B | 3.5 |", "After table."],
    ),
    (
        "First paragraph without a period\n\nSecond paragraph.",
        ["First paragraph without a period", "Second paragraph."],
    ),
    (
        "This sentence is wrapped at\neighty columns and continues. The next one\nalso wraps.",
        ["This sentence is wrapped at\neighty columns and continues.", "The next one\nalso wraps."],
    ),
    ("Title\n=====\nText here.\n\n---\n\nMore text.", ["Title", "Text here.", "More text."]),
    ("> Quoted text. Second one.\n\nNormal.", ["Quoted text.", "Second one.", "Normal."]),
    # Other scripts and odd Unicode.
    (
        "今天天气很好。我们去公园吧\uff01你觉得呢\uff1f",
        ["今天天气很好。", "我们去公园吧\uff01", "你觉得呢\uff1f"],
    ),
    ("这是中文。This is English. 日本語です。", ["这是中文。", "This is English.", "日本語です。"]),
    ("Great job 🎉! Next step 🚀. Done. 👍", ["Great job 🎉!", "Next step 🚀.", "Done. 👍"]),
    (
        "Family 👨\u200d👩\u200d👧 here. Flags 🇫🇷 too.",
        ["Family 👨\u200d👩\u200d👧 here.", "Flags 🇫🇷 too."],
    ),
    (
        "Line one.\r\nStill line two. Three.\r\n\r\nFour.\r\n",
        ["Line one.", "Still line two.", "Three.", "Four."],
    ),
    ("مرحبا بالعالم. كيف حالك؟ أنا بخير.", ["مرحبا بالعالم.", "كيف حالك؟", "أنا بخير."]),
    ("שלום עולם. מה שלומך? הכל טוב.", ["שלום עולם.", "מה שלומך?", "הכל טוב."]),
    (
        "\ufeff\u200bHello\u200b world. Second\u200b sentence.\u200b",
        ["Hello\u200b world.", "Second\u200b sentence."],
    ),
    (
        "Cafe\u0301 is nice. Nai\u0308ve test.\xa0Price is 5\xa0USD.",
        ["Cafe\u0301 is nice.", "Nai\u0308ve test.", "Price is 5\xa0USD."],
    ),
]

LANGUAGE_CASES = [
    (
        "german",
        "Dr. Müller kam z.B. am 3. Oktober. Er sagte usw. Das war's. Vgl. S. 12 bzw. Nr. 5, "
        "d.h. alles. Es kostet ca. 5 Euro, u.a. für Brot. Im 19. Jh. war es evtl. anders.",
        [
            "Dr. Müller kam z.B. am 3. Oktober.",
            "Er sagte usw.",
            "Das war's.",
            "Vgl. S. 12 bzw. Nr. 5, d.h. alles.",
            "Es kostet ca. 5 Euro, u.a. für Brot.",
            "Im 19. Jh. war es evtl. anders.",
        ],
    ),
    (
        "spanish",
        "El Sr. García y la Sra. López llegaron. ¿Qué pasó? ¡Hola! Él dijo que no. La Dra. Ruiz "
        "vive en la pág. 5, p.ej. aquí, etc. y en el núm. 3. Ud. es amable.",
        [
            "El Sr. García y la Sra. López llegaron.",
            "¿Qué pasó?",
            "¡Hola!",
            "Él dijo que no.",
            "La Dra. Ruiz vive en la pág. 5, p.ej. aquí, etc. y en el núm. 3.",
            "Ud. es amable.",
        ],
    ),
    (
        "french",
        "M. Dupont et Mme Durand sont arrivés. Il a dit « Bonjour. » Puis il est parti. Voir "
        "p.ex. le chap. 3, cf. p. 5. « Stop ! » dit-il.",
        [
            "M. Dupont et Mme Durand sont arrivés.",
            "Il a dit « Bonjour. »",
            "Puis il est parti.",
            "Voir p.ex. le chap. 3, cf. p. 5.",
            "« Stop ! » dit-il.",
        ],
    ),
]

ALL_TEXTS = [text for text, _ in CASES] + [text for _, text, _ in LANGUAGE_CASES]


def check_spans(text: str, spans: list[Span]) -> None:
    """Assert the span invariants: exact offsets, stripped, non-empty, ordered, disjoint."""
    previous_end = 0
    for span in spans:
        assert isinstance(span, Span)
        assert text[span.start : span.end] == span.text
        assert span.start < span.end
        assert span.start >= previous_end
        assert span.text == span.text.strip().strip(ZERO_WIDTH).strip()
        previous_end = span.end


def random_text(rng: random.Random) -> str:
    """A random mix of prose, Markdown, odd Unicode and line endings."""
    pieces = [
        "Dr.",
        "e.g.",
        "U.S.",
        "Hello",
        "world",
        "the",
        "It",
        ".",
        "!",
        "?",
        "\u2026",
        "...",
        "\n",
        "\r\n",
        "\n\n",
        "# ",
        "## ",
        "- ",
        "* ",
        "1. ",
        "2) ",
        "| a | b. c |",
        "|---|---|",
        "```",
        "~~~",
        "> ",
        "😀",
        "👨\u200d👩\u200d👧",
        "漢字",
        "。",
        "\uff01",
        "\u200b",
        "\xa0",
        "e\u0301",
        "שלום",
        "مرحبا",
        "https://x.org/a.b?c=1.2",
        "a.b@c.example",
        "3.14",
        '"',
        "«",
        "»",
        "(",
        ")",
        " ",
        "  ",
        "\t",
        "\ufeff",
        "\u2028",
        "*",
        "#",
        "`",
        "\u2014",
        "J.",
        "[ ]",
        "===",
        "---",
        "etc.",
        "v2.1",
    ]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_split_table(text: str, expected: list[str]) -> None:
    """Each tricky input splits into exactly the expected sentences."""
    spans = split_sentences(text)
    assert [s.text for s in spans] == expected
    check_spans(text, spans)


@pytest.mark.parametrize(("language", "text", "expected"), LANGUAGE_CASES)
def test_split_languages(language: str, text: str, expected: list[str]) -> None:
    """German, Spanish and French paragraphs honour their own abbreviations."""
    spans = split_sentences(text, language=language)
    assert [s.text for s in spans] == expected
    check_spans(text, spans)


@pytest.mark.parametrize(
    ("alias", "language"),
    [
        ("de", "german"),
        ("DE-de", "german"),
        ("es", "spanish"),
        ("fr_FR", "french"),
        ("en", "english"),
        ("English", "english"),
    ],
)
def test_language_aliases(alias: str, language: str) -> None:
    """ISO codes and regional variants map to the language's built-in parameters."""
    text = next(
        text
        for lang, text, _ in [*LANGUAGE_CASES, ("english", ALL_TEXTS[0], [])]
        if lang == language
    )
    assert split_sentences(text, language=alias) == split_sentences(text, language=language)
    assert PunktSplitter(alias).language == language


@pytest.mark.parametrize("language", ["klingon", "pt-BR", "../../etc", "", "x"])
def test_unknown_language_falls_back_to_english(language: str) -> None:
    """Unknown languages do not raise; they split like English."""
    text = "Dr. Smith left at 5 p.m. Then he slept."
    assert split_sentences(text, language=language) == split_sentences(text)


def test_invalid_language_type() -> None:
    """A non-str language is a TypeError naming the type."""
    with pytest.raises(TypeError, match="language must be str, got int"):
        split_sentences("Hi.", language=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ALL_TEXTS)
def test_invariants_on_table_inputs(text: str) -> None:
    """Every table input yields exact, stripped, ordered, non-overlapping spans."""
    for language in ("english", "german", "spanish", "french"):
        check_spans(text, split_sentences(text, language=language))


def test_invariants_on_random_text() -> None:
    """Random Markdown/Unicode soup never breaks the span invariants."""
    rng = random.Random(20240521)
    for _ in range(400):
        text = random_text(rng)
        check_spans(text, split_sentences(text))


def _nltk_tokenizer(splitter: PunktSplitter) -> object:
    """NLTK's own Punkt with the splitter's parameters and language variables."""
    from collections import defaultdict

    from nltk.tokenize import punkt

    class LangVars(punkt.PunktLanguageVars):  # type: ignore[misc]
        sent_end_chars = splitting._SENT_END_CHARS
        re_boundary_realignment = splitter._realign

    params = punkt.PunktParameters()
    params.abbrev_types = set(splitter._params.abbrev_types)
    params.collocations = set(splitter._params.collocations)
    params.sent_starters = set(splitter._params.sent_starters)
    params.ortho_context = defaultdict(int, splitter._params.ortho_context)
    return punkt.PunktSentenceTokenizer(params, lang_vars=LangVars())


def test_matches_nltk_span_tokenize() -> None:
    """The inline candidate scan and the kept Punkt decision (`_punkt`) give the same
    boundaries as NLTK's own span_tokenize."""
    splitter = PunktSplitter()
    nltk_punkt: Any = _nltk_tokenizer(splitter)
    vocab = [
        "the",
        "Dr.",
        "e.g.",
        "U.S.",
        "He",
        "said",
        "Stop.",
        '"Stop."',
        "(see",
        "Fig.",
        "3.",
        "5",
        "It",
        "works.",
        "etc.",
        "Then",
        "what?",
        "Why!",
        "...",
        "wait...",
        "J.",
        "R.",
        "no.",
        "The",
        "end.",
        "a.m.",
        "!",
        "?",
        '"',
        ")",
        "(",
        "»",
        "«",
        "done!)",
        "word.)",
        "Inc.",
        "b.",
        "C.",
        "--",
        'end."',
        'ok?"',
        "i.e.",
        "3.14",
        "www.x.com.",
        "\u2026",
    ]
    rng = random.Random(7)
    for _ in range(1500):
        words = [rng.choice(vocab) for _ in range(rng.randint(1, 20))]
        text = "".join(w + rng.choice([" ", "  ", "\n", " \n ", "\t"]) for w in words).strip()
        mine: list[tuple[int, int]] = []
        splitter._punkt_spans(text, 0, len(text), mine)
        reference = [splitting._strip(text, a, b) for a, b in nltk_punkt.span_tokenize(text)]
        assert mine == [(a, b) for a, b in reference if a < b], text


def test_code_fence_and_table_rows_are_single_spans() -> None:
    """A fence with blank lines inside is one span; table rows are never split."""
    fence = "```\nfirst. Second.\n\nThird. Fourth.\n```"
    text = f"Intro.\n\n{fence}\n\n| x. Y | z! W |\n| --- | --- |\n| 1. A | 2? B |"
    assert [s.text for s in split_sentences(text)] == [
        "Intro.",
        fence,
        "| x. Y | z! W |",
        "| 1. A | 2? B |",
    ]


def test_list_items_never_merge() -> None:
    """Consecutive list items without final punctuation stay separate units."""
    text = "* alpha\n* beta\n* gamma\n10. delta\n11. epsilon"
    assert [s.text for s in split_sentences(text)] == ["alpha", "beta", "gamma", "delta", "epsilon"]


@pytest.mark.parametrize("text", ["", " ", "\n\n\t ", "\u200b\ufeff\xa0", "\r\n\r\n"])
def test_empty_and_whitespace(text: str) -> None:
    """Empty or whitespace-only text gives no spans."""
    assert split_sentences(text) == []
    assert PunktSplitter()(text) == []


@pytest.mark.parametrize(("value", "name"), [(None, "NoneType"), (b"Hi.", "bytes"), (3, "int")])
def test_type_error(value: object, name: str) -> None:
    """Non-str input raises a TypeError that names the type."""
    with pytest.raises(TypeError, match=f"text must be str, got {name}"):
        split_sentences(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=f"text must be str, got {name}"):
        PunktSplitter()(value)  # type: ignore[arg-type]


def test_splitter_protocol_and_exports() -> None:
    """PunktSplitter satisfies the Splitter protocol and the module exports its API."""
    assert set(splitting.__all__) == {"PunktSplitter", "Splitter", "split_sentences"}
    splitter = PunktSplitter("de")
    assert isinstance(splitter, Splitter)
    assert splitter("Erster Satz. Zweiter Satz.")[1] == Span("Zweiter Satz.", 13, 26)
    assert splitting._default_splitter("english") is splitting._default_splitter("english")


def test_thread_safety() -> None:
    """Concurrent calls on the shared splitter give the same results as sequential ones."""
    rng = random.Random(3)
    texts = ALL_TEXTS * 4 + [random_text(rng) for _ in range(100)]
    expected = [split_sentences(t) for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(split_sentences, texts)) == expected


def test_no_punkt_data_and_no_download(tmp_path: Path) -> None:
    """With no NLTK data at all, a fresh interpreter splits fine and never downloads."""
    script = textwrap.dedent(
        f"""
        import json, nltk, nltk.downloader

        def refuse(*args, **kwargs):
            raise AssertionError("nltk.download called")

        nltk.download = refuse
        nltk.downloader.download = refuse
        nltk.downloader.Downloader.download = refuse
        nltk.data.path[:] = [{str(tmp_path)!r}]
        from rag_attrib.splitting import PunktSplitter, split_sentences
        spans = split_sentences("Dr. Smith left. He came back e.g. later.")
        print(json.dumps({{"tab": PunktSplitter().uses_punkt_tab,
                          "texts": [s.text for s in spans]}}))
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("NLTK_DATA", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"tab": False, "texts": ["Dr. Smith left.", "He came back e.g. later."]}


def test_uses_punkt_tab_when_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed punkt_tab model is used (with the built-in abbreviations added)."""
    model = tmp_path / "tokenizers" / "punkt_tab" / "english"
    model.mkdir(parents=True)
    (model / "abbrev_types.txt").write_text("xyz\n", encoding="utf-8")
    (model / "collocations.tab").write_text("", encoding="utf-8")
    (model / "sent_starters.txt").write_text("however\n", encoding="utf-8")
    (model / "ortho_context.tab").write_text("the\t34\n", encoding="utf-8")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("nltk.download called")

    monkeypatch.setattr(nltk, "download", refuse)
    splitting._punkt_tab_available.cache_clear()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(nltk.data, "path", [str(tmp_path)])
            splitter = PunktSplitter("en")
            assert splitter.uses_punkt_tab
            assert [s.text for s in splitter("We met the xyz. Foo came. Dr. Who left.")] == [
                "We met the xyz. Foo came.",
                "Dr. Who left.",
            ]
            assert not PunktSplitter("german").uses_punkt_tab
    finally:
        splitting._punkt_tab_available.cache_clear()
    plain = PunktSplitter("en")
    assert not plain.uses_punkt_tab
    assert [s.text for s in plain("We met the xyz. Foo came.")] == ["We met the xyz.", "Foo came."]


def test_one_megabyte_document() -> None:
    """A 1 MB Markdown document splits in reasonable time (sanity run, not a benchmark)."""
    paragraph = (
        "Dr. Smith measured 3.5 units at https://example.com/a.b today, e.g. in the U.S. "
        "lab. The results were clear! Were they? Yes... mostly. 今天很好。\n"
        "It wraps onto a second line here.\n\n"
        "## Results\n- First point. Second point.\n1. Numbered item\n| a | b. c |\n\n"
    )
    copies = 1_000_000 // len(paragraph) + 1
    text = paragraph * copies
    started = time.perf_counter()
    spans = split_sentences(text)
    elapsed = time.perf_counter() - started
    assert len(text) >= 1_000_000
    assert [s.text for s in spans[:11]] == [s.text for s in split_sentences(paragraph)]
    assert len(spans) == 11 * copies
    check_spans(text, spans)
    print(f"1 MB split in {elapsed:.2f} s")


@pytest.mark.parametrize(
    "text",
    [
        "." * 200_000,
        "a" * 200_000,
        "!)" * 100_000,
        "a. " * 60_000,
        "`" * 200_000,
        "\n" * 200_000,
        "- " * 100_000,
        "\u2026 " * 60_000,
    ],
)
def test_adversarial_input_is_not_quadratic(text: str) -> None:
    """Long degenerate inputs finish (a quadratic scan would not) and keep the invariants."""
    check_spans(text, split_sentences(text))
