"""LlamaIndex with cited answers, offline: a query engine, then a `FunctionAgent` with a tool.

A real `VectorStoreIndex` over a few documents, embedded with the all-MiniLM-L6-v2 bundled with
rag_attrib; `instrument()` attaches the attribution to every query response and every agent
run's `AgentOutput`, as LlamaIndex's starter tutorial builds them.

The LLMs are stand-ins: no LLM runs offline, so `ExtractiveLLM` answers by copying the context
sentences that share the most words with the question, and the agent's `MockFunctionCallingLLM`
calls the tool once, then answers with what it returned plus one invented sentence. Swap in any
real LlamaIndex LLM (`llm=OpenAI(...)`, `llm=Ollama(...)`) and nothing else changes.

Run: HF_HUB_OFFLINE=1 .venv/bin/python examples/llamaindex_rag.py
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms import CompletionResponse, CompletionResponseGen, CustomLLM, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import QueryEngineTool

from rag_attrib import Attributor
from rag_attrib.integrations.llamaindex import MiniLMEmbedding, instrument, uninstrument

QUESTION = "Where did the Great Fire of London start, and how was the city rebuilt?"

PAGES = [
    (
        "great_fire.txt",
        "1",
        "The Great Fire of London broke out in the early hours of Sunday 2 September 1666. "
        "It started in a bakery belonging to Thomas Farriner on Pudding Lane. "
        "A spark from the oven is thought to have set light to fuel stored nearby.",
    ),
    (
        "great_fire.txt",
        "2",
        "Strong easterly winds drove the flames across the tightly packed timber houses. "
        "By Tuesday the fire had reached St Paul's Cathedral, which was destroyed. "
        "About 13,200 houses and 87 parish churches burned.",
    ),
    (
        "rebuilding.txt",
        "1",
        "After the fire, the Rebuilding Act of 1667 required new houses to be built of brick or "
        "stone. Christopher Wren designed the new St Paul's Cathedral and dozens of city churches. "
        "The first fire insurance companies were founded in the following decades.",
    ),
    (
        "plague.txt",
        "1",
        "The Great Plague of London killed around 100,000 people in 1665 and 1666. "
        "It was the last major outbreak of bubonic plague in England.",
    ),
]

_WORD = re.compile(r"[a-z0-9']+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_METADATA_LINE = re.compile(r"^\w+: ")
_STOPWORDS = {"the", "of", "and", "a", "in", "to", "was", "how", "did", "where", "it", "by"}


def _stems(text: str) -> set[str]:
    # crude stemming by prefix, so "start" matches "started" and "rebuilt" "rebuilding"
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


class ExtractiveLLM(CustomLLM):
    """Stand-in LLM: answers with the context sentences that best match the question."""

    sentences: int = 3

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="extractive-stand-in")

    def _answer(self, prompt: str) -> str:
        context, _, rest = prompt.partition("---------------------\nGiven")
        question = rest.partition("Query:")[2].partition("\n")[0]
        wanted = _stems(question)
        lines = [
            line
            for line in context.partition("---------------------\n")[2].splitlines()
            if line.strip() and not _METADATA_LINE.match(line)
        ]
        candidates = [s for line in lines for s in _SENTENCE_END.split(line.strip())]
        ranked = sorted(
            range(len(candidates)),
            key=lambda i: -len(wanted & _stems(candidates[i])),
        )
        return " ".join(candidates[i] for i in sorted(ranked[: self.sentences]))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._answer(prompt))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        text = self._answer(prompt)

        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text=text, delta=text)

        return gen()


INVENTED = "The fire was started on purpose by foreign agents."


def agent_turn(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
    """The agent's stand-in LLM: call the `documents` tool with the question, then answer with
    the tool's reply and one sentence no document holds."""
    replies = [m for m in messages if m.role == MessageRole.TOOL]
    if not replies:
        question = [m for m in messages if m.role == MessageRole.USER][-1].content
        call = ToolCallBlock(
            tool_call_id="1", tool_name="documents", tool_kwargs={"input": question}
        )
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
    return ChatMessage(role=MessageRole.ASSISTANT, content=f"{replies[-1].content} {INVENTED}")


async def ask(agent: FunctionAgent) -> Any:
    return await agent.run(user_msg=QUESTION)  # the run starts on the running event loop


def show(attribution: dict[str, Any]) -> None:
    labels: dict[str, int] = {}
    for source in attribution["sources"]:
        labels[source["id"]] = len(labels) + 1
    for sentence in attribution["answer_sentences"]:
        marks = "".join(f"[{labels[c['source_id']]}]" for c in sentence["citations"])
        if sentence["supported"]:
            print(f"{sentence['text']} {marks}")
        else:  # its citations are only its closest sources: they do not back it
            closest = f" (closest, does not support: {marks})" if marks else ""
            print(f"{sentence['text']}  <- unsupported{closest}")
    print("\nSources:")
    for source in attribution["sources"]:
        meta = source["metadata"]
        print(
            f"  [{labels[source['id']]}] {meta['file_name']} p.{meta['page_label']}"
            f"  share {source['score']:.2f}  node {source['id'][:8]}"
        )


def main() -> None:
    attributor = Attributor()  # bundled all-MiniLM-L6-v2, loaded from site-packages
    # one loaded model serves both retrieval and attribution
    embed_model = MiniLMEmbedding(attributor.embedder)
    documents = [
        Document(text=text, metadata={"file_name": name, "page_label": page})
        for name, page, text in PAGES
    ]
    index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)

    instrument(attributor)
    try:
        engine = index.as_query_engine(llm=ExtractiveLLM(), similarity_top_k=3)
        response = engine.query(QUESTION)
        # the starter tutorial's shape: an agent with the query engine as a tool
        tool = QueryEngineTool.from_defaults(
            engine, name="documents", description="Pages about the Great Fire of London."
        )
        agent = FunctionAgent(
            tools=[tool], llm=MockFunctionCallingLLM(response_generator=agent_turn)
        )
        output = asyncio.run(ask(agent))
    finally:
        uninstrument()

    attribution = response.metadata["attribution"]
    print(f"Q: {QUESTION}")
    print("(the LLM is an offline stand-in that copies context sentences)\n")
    show(attribution)
    print("\nCitations (answer sentence -> cited source sentence):")
    for citation in attribution["citations"]:
        extras = citation["extras"]
        print(
            f"  {citation['start_index']:>3}-{citation['end_index']:<3} -> "
            f"{extras['metadata']['file_name']} p.{extras['metadata']['page_label']} "
            f"[{extras['source_start']}:{extras['source_end']}] score {extras['score']:.2f}: "
            f"{citation['cited_text']}"
        )
    if attribution["error"]:
        print(f"\nattribution error: {attribution['error']}")

    print("\nFunctionAgent with the query engine as its tool, output['attribution']:\n")
    show(output["attribution"])
    if output["attribution"]["error"]:
        print(f"\nattribution error: {output['attribution']['error']}")


if __name__ == "__main__":
    main()
