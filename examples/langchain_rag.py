"""Cited answers from a LangChain RAG chain, offline, with the bundled embedding model.

Run: HF_HUB_OFFLINE=1 .venv/bin/python examples/langchain_rag.py

The chain is ordinary LCEL: an InMemoryVectorStore retriever (embeddings from the bundled
all-MiniLM-L6-v2), a prompt, a chat model and a parser. The chat model is langchain-core's
GenericFakeChatModel, replaying a written answer, because no real LLM runs offline; swap in
any chat model and nothing else changes.
"""

from __future__ import annotations

from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from rag_attrib.integrations.langchain import (
    AttributionCallbackHandler,
    MiniLMEmbeddings,
    with_attribution,
)

QUESTION = "How did the Great Fire of London start, and what changed afterwards?"

DOCUMENTS = [
    Document(
        id="fire-origin",
        page_content=(
            "The Great Fire of London broke out in the early hours of Sunday 2 September 1666. "
            "It started in a bakery belonging to Thomas Farriner on Pudding Lane. "
            "A spark from the oven is thought to have set light to fuel stored nearby."
        ),
        metadata={"title": "Great Fire of London: origins"},
    ),
    Document(
        id="fire-spread",
        page_content=(
            "Strong easterly winds drove the flames across the tightly packed timber houses. "
            "The Lord Mayor, Sir Thomas Bludworth, hesitated to order firebreaks. "
            "By Tuesday the fire had reached St Paul's Cathedral, which was destroyed."
        ),
        metadata={"title": "How the fire spread"},
    ),
    Document(
        id="rebuilding",
        page_content=(
            "After the fire, the Rebuilding Act of 1667 required new houses to be built of "
            "brick or stone. Christopher Wren designed the new St Paul's Cathedral and dozens "
            "of city churches. The first fire insurance companies were founded in the "
            "following decades."
        ),
        metadata={"title": "Rebuilding London"},
    ),
    Document(
        id="plague",
        page_content=(
            "The Great Plague of London killed around 100,000 people in 1665 and 1666. "
            "It was the last major outbreak of bubonic plague in England."
        ),
        metadata={"title": "The Great Plague"},
    ),
    Document(
        id="thames",
        page_content=(
            "The Thames frost fairs were held on the frozen river in the 17th century. "
            "Stalls, skittles and even an elephant appeared on the ice in 1814."
        ),
        metadata={"title": "Frost fairs"},
    ),
]

# What a real LLM might have written from the retrieved context; the last sentence is made up.
ANSWER = (
    "The fire began in Thomas Farriner's bakery on Pudding Lane in September 1666. "
    "Driven by strong winds, it spread through the wooden houses and destroyed St Paul's "
    "Cathedral. Afterwards, a new law made Londoners rebuild their homes in brick or stone. "
    "The fire was started deliberately by foreign agents."
)

PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer the question from this context only.\n\nContext:\n{context}"),
        ("human", "{question}"),
    ]
)


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(d.page_content for d in docs)


def main() -> None:
    store = InMemoryVectorStore(MiniLMEmbeddings())  # bundled model, shared with attribution
    store.add_documents(DOCUMENTS)
    retriever = store.as_retriever(search_kwargs={"k": 3})

    # GenericFakeChatModel stands in for the LLM: it replays ANSWER (no LLM runs offline).
    llm = GenericFakeChatModel(messages=iter([ANSWER, ANSWER]))
    chain = (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | PROMPT
        | llm
        | StrOutputParser()
    )

    # 1. Wrap the chain: a str chain now returns {"answer": ..., "attribution": ...}.
    out = with_attribution(chain).invoke(QUESTION)
    attribution = out["attribution"]

    print("LLM: GenericFakeChatModel replaying a written answer (no real LLM offline)\n")
    print(f"Q: {QUESTION}\n")
    for sentence in attribution["answer_sentences"]:
        why = "; ".join(sentence["issues"]) or "no source backs this"
        verdict = "" if sentence["supported"] else f"   <- UNSUPPORTED: {why}"
        print(f"[{sentence['index'] + 1}] {sentence['text']}{verdict}")
        if sentence["citations"] and not sentence["supported"]:
            print("      closest, does not support:")
        for c in sentence["citations"]:
            print(f"      {c['score']:5.2f}  {c['source_id']}: {c['text']}")
    print(f"\n{len(attribution['citations'])} citations in LangChain Citation form; the first:")
    print(f"  {attribution['citations'][0]}")

    # 2. Or leave the chain unchanged and pass a handler in the call's config.
    handler = AttributionCallbackHandler()
    chain.invoke(QUESTION, config={"callbacks": [handler]})
    result = handler.last_result
    assert result is not None
    ranked = sorted(result.sources, key=lambda s: -s.score)
    shares = ", ".join(f"{s.id}={s.score:.2f}" for s in ranked)
    print(f"\nHandler on the unchanged chain: coverage {result.coverage:.0%}; shares {shares}")


if __name__ == "__main__":
    main()
