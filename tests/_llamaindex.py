"""LlamaIndex helpers shared by the test_llamaindex*.py files: the topic documents, the
stand-in LLMs that read their prompts, a recording exporter, and the agents' tool and check.

Import it after `pytest.importorskip("llama_index.core")`: it imports llama-index at the top.
The `index` and `recorder` fixtures built from it are in conftest.py.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import AgentOutput
from llama_index.core.base.llms.types import (
    ChatMessage,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.instrumentation.span import active_span_id
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.tools import QueryEngineTool

from rag_attrib import AttributionResult

# One document per topic; each question shares its distinctive words with one document only.
TOPICS = [
    ("copper", "Copper conducts electricity well and is used in household wiring."),
    ("penguins", "Penguins live in the southern hemisphere and cannot fly."),
    ("eiffel", "The Eiffel Tower was completed in 1889 for the Paris world fair."),
    ("volcano", "Volcano eruptions push molten rock called lava onto the surface."),
    ("honey", "Honey never spoils because its sugar content starves bacteria."),
    ("saturn", "Saturn has bright rings made mostly of ice particles."),
    ("chess", "Chess players move a knight in an L shaped jump."),
    ("bamboo", "Bamboo grows remarkably fast, sometimes almost a metre per day."),
    ("octopus", "An octopus has three hearts and blue blood."),
    ("sahara", "The Sahara desert covers much of northern Africa."),
    ("violin", "A violin has four strings tuned in perfect fifths."),
    ("glacier", "Glaciers carve valleys as slowly moving ice grinds bedrock."),
    ("coffee", "Coffee beans are roasted seeds of the coffea plant cherries."),
    ("tides", "Tides rise and fall mainly because of the moon gravity pulling oceans."),
    ("tortoise", "Giant tortoises on Galapagos islands can live beyond a century."),
    ("diamond", "Diamond is pure carbon arranged in a rigid crystal lattice."),
    ("marathon", "A marathon race measures forty two kilometres and change."),
    ("telescope", "The Hubble telescope orbits Earth above the blurring atmosphere."),
    ("vaccine", "Vaccines train immune systems by showing them harmless antigens."),
    ("pyramid", "The great pyramid at Giza was built for pharaoh Khufu."),
]
QUESTIONS = {
    "copper": "Why is copper used in wiring?",
    "penguins": "Where do penguins live?",
    "eiffel": "When was the Eiffel Tower completed?",
    "volcano": "What do volcano eruptions push out?",
    "honey": "Why does honey never spoil?",
    "saturn": "What are Saturn's rings made of?",
    "chess": "How does a chess knight move?",
    "bamboo": "How fast does bamboo grow?",
    "octopus": "How many hearts does an octopus have?",
    "sahara": "Where is the Sahara desert?",
    "violin": "How many strings does a violin have?",
    "glacier": "How do glaciers carve valleys?",
    "coffee": "What are coffee beans?",
    "tides": "Why do tides rise and fall?",
    "tortoise": "How long can giant tortoises live?",
    "diamond": "What is diamond made of?",
    "marathon": "How long is a marathon race?",
    "telescope": "Where does the Hubble telescope orbit?",
    "vaccine": "How do vaccines train immune systems?",
    "pyramid": "Who was the great pyramid at Giza built for?",
}
FACT = dict(TOPICS)
# what the agents' stand-in LLMs add to an answer: no document supports it
INVENTED = "Purple unicorns quietly govern the lunar parliament."
_META_LINE = re.compile(r"^\w+: ")
_WORD = re.compile(r"[a-z]{4,}")


def topic_documents() -> list[Document]:
    """One document per topic, named and paged as a file loader would."""
    return [
        Document(text=text, metadata={"file_name": f"{topic}.txt", "page_label": str(i + 1)})
        for i, (topic, text) in enumerate(TOPICS)
    ]


class Recorder:
    """An exporter that records each result, its context and the active LlamaIndex span."""

    def __init__(self) -> None:
        self.calls: list[tuple[AttributionResult, dict[str, Any], str | None]] = []

    def export(self, result: AttributionResult, context: Mapping[str, Any]) -> None:
        self.calls.append((result, dict(context), active_span_id.get()))


# --- the stand-in LLMs ---------------------------------------------------------------------


class PromptReadingLLM(CustomLLM):
    """A stand-in LLM whose answer is `_answer(prompt)`, streamed word by word."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata()

    def _answer(self, prompt: str) -> str:
        raise NotImplementedError

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._answer(prompt))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        words = self._answer(prompt).split(" ")

        def gen() -> CompletionResponseGen:
            text = ""
            for i, word in enumerate(words):
                delta = word if i == 0 else " " + word
                text += delta
                yield CompletionResponse(text=text, delta=delta)

        return gen()


class EchoContextLLM(PromptReadingLLM):
    """Answers with the first text line of its context, so the answer depends on retrieval."""

    delay: float = 0.0

    def _answer(self, prompt: str) -> str:
        lines = prompt.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("-----"):
                for following in lines[i + 1 :]:
                    if following.strip() and not _META_LINE.match(following):
                        return following.strip()
        return "I do not know."

    def _pause(self, prompt: str) -> float:
        # varied but deterministic, so concurrent calls finish out of order
        return self.delay * (len(prompt) % 7)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        await asyncio.sleep(self._pause(prompt))
        return CompletionResponse(text=self._answer(prompt))

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        async def gen() -> CompletionResponseAsyncGen:
            await asyncio.sleep(self._pause(prompt))
            for response in self.stream_complete(prompt, formatted=formatted):
                yield response

        return gen()


def _context_facts(prompt: str) -> list[str]:
    """The text lines between the two "-----" rules of a QA prompt (sub-answers unwrapped)."""
    lines = prompt.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("-----")]
    if len(rules) < 2:
        return []
    facts = []
    for line in lines[rules[0] + 1 : rules[1]]:
        line = line.strip()
        if line.startswith("Response: "):
            facts.append(line.removeprefix("Response: "))
        elif line and not line.startswith("Sub question:") and not _META_LINE.match(line):
            facts.append(line)
    return facts


def _rerank(prompt: str) -> str:
    """LLMRerank's choice prompt: documents sharing a content word with the question, ranked."""
    body, _, tail = prompt.rpartition("Question: ")
    question = set(_WORD.findall(tail.lower()))
    docs = re.findall(r"Document (\d+):\n(.*?)(?=\n\nDocument \d+:|\n*$)", body, re.DOTALL)
    scored = [(len(question & set(_WORD.findall(text.lower()))), n) for n, text in docs]
    return "\n".join(f"Doc: {n}, Relevance: {s}" for s, n in sorted(scored, reverse=True) if s)


def _sub_questions(prompt: str) -> str:
    """LLMQuestionGenerator's prompt: one sub-question per "and"-joined part, to the first tool."""
    tools = prompt.rpartition("<Tools>")[2]
    tool = json.loads(tools.split("```json", 1)[1].split("```", 1)[0])
    question = prompt.rpartition("<User Question>\n")[2].split("\n\n", 1)[0].rstrip("?")
    parts = [p.strip() for p in question.split(" and ")]
    items = [
        {"sub_question": f"{p[0].upper()}{p[1:]}?", "tool_name": next(iter(tool))} for p in parts
    ]
    return "```json\n" + json.dumps({"items": items}) + "\n```"


class ReadingLLM(EchoContextLLM):
    """Answers from the context in its prompt: the facts there, then `invent` if set."""

    invent: str = ""

    def _answer(self, prompt: str) -> str:
        if prompt.startswith("A list of documents is shown below"):
            return _rerank(prompt)
        if "<User Question>" in prompt:
            return _sub_questions(prompt)
        if "<Follow Up Message>" in prompt:  # condense: the question stands alone already
            return prompt.rpartition("<Follow Up Message>\n")[2].split("\n\n", 1)[0]
        parts = [*_context_facts(prompt), *([self.invent] if self.invent else [])]
        return " ".join(parts) or "I do not know."


class ReActCaller(EchoContextLLM):
    """A ReAct agent's LLM: one Action calling `tool` with the question; once it has an
    Observation, the Answer `_final` makes from it (the prompt after "Observation: ")."""

    tool: str = "facts"

    def _answer(self, prompt: str) -> str:
        prompt = prompt.rpartition("## Current Conversation")[2]  # past the format examples
        if "Observation:" not in prompt:
            question = prompt.rpartition("user: ")[2].strip().splitlines()[0]
            return (
                "Thought: I need to use a tool to help me answer the question.\n"
                f"Action: {self.tool}\nAction Input: {json.dumps({'input': question})}"
            )
        return self._final(prompt.rpartition("Observation: ")[2])

    def _final(self, observation: str) -> str:
        raise NotImplementedError


def tool_caller(tool: str) -> Any:
    """A function-calling agent's LLM: call `tool` with the question, then answer from it
    (the tool results after the last user message: earlier turns' are history)."""

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        last = max(i for i, m in enumerate(messages) if m.role == MessageRole.USER)
        results = [m for m in messages[last:] if m.role == MessageRole.TOOL]
        if not results:
            question = messages[last].content
            call = ToolCallBlock(
                tool_call_id="call-1", tool_name=tool, tool_kwargs={"input": question}
            )
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
        return ChatMessage(role=MessageRole.ASSISTANT, content=f"{results[-1].content} {INVENTED}")

    return respond


# --- agent tools and checks -----------------------------------------------------------------


def facts_tool(index: VectorStoreIndex, llm: CustomLLM | None = None) -> QueryEngineTool:
    """The agents' `facts` tool: a query engine over `index` (a ReadingLLM answers)."""
    engine = index.as_query_engine(llm=llm or ReadingLLM(), similarity_top_k=2)
    return QueryEngineTool.from_defaults(engine, name="facts", description="Facts about topics.")


def _file(payload: dict[str, Any], source_id: str) -> str:
    return next(s["metadata"]["file_name"] for s in payload["sources"] if s["id"] == source_id)


def check_facts(payload: dict[str, Any], topics: Sequence[str], *, reached: set[str]) -> None:
    """Each topic's fact cites that topic's node first; the invented sentence is unsupported;
    every source is a document node among `reached` (the nodes that reached an LLM)."""
    assert payload["error"] is None
    assert {s["id"] for s in payload["sources"]} <= reached
    assert all(s["metadata"]["ref_doc_id"] for s in payload["sources"])
    sentences = {s["text"]: s for s in payload["answer_sentences"]}
    for topic in topics:
        sentence = sentences[FACT[topic]]
        assert sentence["supported"] is True
        assert _file(payload, sentence["citations"][0]["source_id"]) == f"{topic}.txt"
    assert sentences[INVENTED]["supported"] is False


def tool_call_nodes(output: AgentOutput) -> set[str]:
    """The ids of the nodes an agent run's tool calls returned."""
    return {
        n.node.node_id
        for call in output.tool_calls
        for n in call.tool_output.raw_output.source_nodes
    }
