"""Attribute a RAG answer to its retrieved chunks with the bundled model (offline).

Run: HF_HUB_OFFLINE=1 .venv/bin/python examples/quickstart.py
Writes quickstart.html (the coloured-sources view) next to the current directory.
"""

from __future__ import annotations

from pathlib import Path

from rag_attrib import Attributor, Source

QUESTION = "How did the Great Fire of London start, and what changed afterwards?"

# Five retrieved chunks, as a vector store would return them; the last is a same-topic distractor.
CHUNKS = [
    Source(
        id="fire-origin",
        text=(
            "The Great Fire of London broke out in the early hours of Sunday 2 September 1666. "
            "It started in a bakery belonging to Thomas Farriner on Pudding Lane. "
            "A spark from the oven is thought to have set light to fuel stored nearby."
        ),
        metadata={"title": "Great Fire of London: origins"},
    ),
    Source(
        id="fire-spread",
        text=(
            "Strong easterly winds drove the flames across the tightly packed timber houses. "
            "The Lord Mayor, Sir Thomas Bludworth, hesitated to order firebreaks. "
            "By Tuesday the fire had reached St Paul's Cathedral, which was destroyed."
        ),
        metadata={"title": "How the fire spread"},
    ),
    Source(
        id="fire-damage",
        text=(
            "The fire consumed about 13,200 houses and 87 parish churches. "
            "Tens of thousands of Londoners were left homeless. "
            "The recorded death toll was low, although the true number is unknown."
        ),
        metadata={"title": "Damage"},
    ),
    Source(
        id="rebuilding",
        text=(
            "After the fire, the Rebuilding Act of 1667 required new houses to be built of brick or stone. "
            "Christopher Wren designed the new St Paul's Cathedral and dozens of city churches. "
            "The first fire insurance companies were founded in the following decades."
        ),
        metadata={"title": "Rebuilding London"},
    ),
    Source(
        id="plague",
        text=(
            "The Great Plague of London killed around 100,000 people in 1665 and 1666. "
            "It was the last major outbreak of bubonic plague in England. "
            "Some historians once claimed the fire ended the plague, but this is doubted today."
        ),
        metadata={"title": "The Great Plague (distractor)"},
    ),
]

ANSWER = (
    "The fire began in Thomas Farriner's bakery on Pudding Lane in September 1666. "
    "Driven by strong winds, it spread through the wooden houses and destroyed St Paul's Cathedral. "
    "Afterwards, a new law made Londoners rebuild their homes in brick or stone. "
    "The fire was started deliberately by foreign agents."
)


def main() -> None:
    attributor = Attributor()  # bundled all-MiniLM-L6-v2, loaded from site-packages
    result = attributor.attribute(answer=ANSWER, sources=CHUNKS, question=QUESTION)

    print(f"Q: {QUESTION}\n")
    for sentence in result.answer_sentences:
        why = "; ".join(sentence.issues) or "no source backs this"
        verdict = "" if sentence.supported else f"   <- UNSUPPORTED: {why}"
        print(f"[{sentence.index + 1}] {sentence.text}{verdict}")
        if sentence.citations and not sentence.supported:
            print("      closest, does not support:")
        for c in sentence.citations:
            print(f"      {c.score:5.2f}  (strength {c.similarity:.2f})  {c.source_id}: {c.text}")
    print("\nShare of the answer per chunk:")
    for source in sorted(result.sources, key=lambda s: -s.score):
        bar = "#" * round(source.score * 40)
        print(f"  {source.id:<12} {source.score:5.2f} {bar}")
    timings = ", ".join(f"{k}={v:.1f}" for k, v in result.timings.items())
    print(f"\ntimings (ms; the first call also loads the model): {timings}")

    out = Path("quickstart.html")
    try:
        result.save_html(out)
        print(f"HTML view written to {out.resolve()}")
    except ImportError:  # the HTML renderer lands with the views
        pass


if __name__ == "__main__":
    main()
