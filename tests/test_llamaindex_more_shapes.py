"""More LlamaIndex shapes users write today: chat engines of every mode over several turns, a
`RouterQueryEngine`, `tree_summarize` over a `SummaryIndex`, and agent tools that return bare
nodes (image and empty ones too) or "Source n:"-labelled text (labelled by a `FunctionTool`
callback too, and one tool called twice, each output counting from 1). Real llama-index-core indexes, engines, selectors,
agents and tools; only the LLM is a stand-in that reads its prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from _llamaindex import (
    FACT,
    INVENTED,
    QUESTIONS,
    TOPICS,
    EchoContextLLM,
    ReActCaller,
    Recorder,
    check_facts,
    topic_documents,
)
from llama_index.core import Document, SummaryIndex, VectorStoreIndex
from llama_index.core.base.llms.types import LLMMetadata
from llama_index.core.chat_engine.types import BaseChatEngine
from llama_index.core.memory import ChatMemoryBuffer
from pydantic import Field

from rag_attrib import Attributor
from rag_attrib.integrations.llamaindex import MiniLMEmbedding
from rag_attrib.integrations.llamaindex.instrument import open_records
from rag_attrib.testing import HashingEmbedder

_META_LINE = re.compile(r"^\w+: ")
_WORD = re.compile(r"[a-z]{4,}")


# --- the stand-in LLM ------------------------------------------------------------------------


def _context_lines(prompt: str) -> list[str]:
    """The document lines of the context a prompt shows: between the first two "-----" rules
    (a QA or context-chat prompt), or after "relevant documents for the context:" up to
    "Instruction:" (condense_plus_context); metadata lines left out."""
    if "relevant documents for the context:" in prompt:
        block = prompt.partition("relevant documents for the context:")[2]
        lines = block.partition("Instruction:")[0].splitlines()
    else:
        all_lines = prompt.splitlines()
        rules = [i for i, line in enumerate(all_lines) if line.startswith("-----")]
        if len(rules) < 2:
            return []
        lines = all_lines[rules[0] + 1 : rules[1]]
    return [x.strip() for x in lines if x.strip() and not _META_LINE.match(x.strip())]


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _select(prompt: str) -> str:
    """A selector's prompt: the numbered choices sharing a word with the question, as the
    JSON list `SelectionOutputParser` reads (one choice unless asked for the top choices)."""
    choices = re.findall(r"^\((\d+)\) (.*)$", prompt, flags=re.MULTILINE)
    question = _words(prompt.rpartition("the question: '")[2])
    ranked = sorted(((len(question & _words(d)), int(n)) for n, d in choices), reverse=True)
    picks = [n for score, n in ranked if score] or [ranked[0][1]]
    picks = picks if "return the top choices" in prompt else picks[:1]
    return json.dumps([{"choice": n, "reason": "It names the question's topic."} for n in picks])


def _summary(prompt: str) -> str:
    """A tree_summarize prompt: the sentences of its context sharing a word with the query
    (word for word: an extractive summary), or "Nothing relevant." when none does."""
    query = _words(prompt.rpartition("Query: ")[2].partition("\n")[0])
    sentences = [s for line in _context_lines(prompt) for s in re.split(r"(?<=\.) ", line)]
    kept = [s for s in sentences if query & _words(s)]
    return " ".join(kept) or "Nothing relevant."


class ReaderLLM(EchoContextLLM):
    """Reads its prompt as LlamaIndex writes it: picks a router's choice, condenses a chat
    follow-up to itself (it stands alone already), summarises a tree_summarize level, and
    otherwise answers with the first document line of the context it is shown, then an
    invented sentence: never from the chat history, so a turn's answer depends on that turn's
    retrieval only. `prompts` keeps every prompt."""

    prompts: list[str] = Field(default_factory=list)

    def _answer(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if prompt.startswith("Some choices are given below."):
            return _select(prompt)
        if prompt.rstrip().endswith("Standalone question:"):  # condense_plus_context
            return prompt.rpartition("Follow Up Input: ")[2].split("\n", 1)[0].strip()
        if "<Follow Up Message>" in prompt:  # condense_question
            return prompt.rpartition("<Follow Up Message>\n")[2].split("\n\n", 1)[0].strip()
        if prompt.startswith("Context information from multiple sources is below."):
            return _summary(prompt)
        lines = _context_lines(prompt)
        return f"{lines[0]} {INVENTED}" if lines else "I do not know."


# --- checks ----------------------------------------------------------------------------------

# `index` (the topic documents, module-scoped) and `recorder` come from conftest.py.


def _ids(nodes: Sequence[Any]) -> set[str]:
    return {n.node.node_id for n in nodes}


def _cites(
    payload: dict[str, Any], topics: Sequence[str], *, reached: set[str], documents: bool = True
) -> None:
    """The answer is the topics' facts, in order, each citing its topic's node first; every
    source is among `reached` (and a document's node, unless `documents` is False)."""
    assert payload["error"] is None
    assert payload["answer"] == " ".join(FACT[t] for t in topics)
    assert {s["id"] for s in payload["sources"]} <= reached
    assert all(s["metadata"]["ref_doc_id"] for s in payload["sources"]) or not documents
    files = {s["id"]: s["metadata"]["file_name"] for s in payload["sources"]}
    for topic, sentence in zip(topics, payload["answer_sentences"], strict=True):
        assert sentence["supported"] is True
        assert files[sentence["citations"][0]["source_id"]] == f"{topic}.txt"


# --- chat engines by mode, over several turns ------------------------------------------------

MODES = ["condense_plus_context", "context", "condense_question"]
CALLS = ["chat", "stream_chat", "achat", "astream_chat"]


def _chat_engine(index: VectorStoreIndex, mode: str) -> BaseChatEngine:
    """`index.as_chat_engine(chat_mode=mode)` with an in-process memory (the default keeps
    history in aiosqlite, whose worker thread outlives a test's event loop)."""
    return index.as_chat_engine(
        chat_mode=mode,
        llm=ReaderLLM(),
        similarity_top_k=2,
        memory=ChatMemoryBuffer.from_defaults(token_limit=4000),
    )


async def _turn(engine: BaseChatEngine, call: str, question: str) -> Any:
    """One turn, the way a user reads it: a stream is consumed to its end."""
    if call == "chat":
        return engine.chat(question)
    if call == "achat":
        return await engine.achat(question)
    if call == "stream_chat":
        streamed = engine.stream_chat(question)
        text = "".join(streamed.response_gen)
        assert text.strip() == streamed.response
        return streamed
    streamed = await engine.astream_chat(question)
    text = "".join([t async for t in streamed.async_response_gen()])
    assert text.strip() == streamed.response
    return streamed


def _turn_nodes(response: Any) -> set[str]:
    """The nodes this turn retrieved: its `source_nodes`, else its tool output's (condense
    question's astream_chat leaves `source_nodes` empty)."""
    if response.source_nodes:
        return _ids(response.source_nodes)
    return _ids(response.sources[0].raw_output.source_nodes)


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("mode", MODES)
async def test_each_chat_turn_cites_its_own_retrieval(
    index: VectorStoreIndex, recorder: Recorder, mode: str, call: str
) -> None:
    """A chat engine of each mode, over four turns: each turn's `metadata["attribution"]`
    cites the nodes that turn retrieved, never the earlier turns' (the chat history holds
    their answers), and a question asked again cites its nodes again; the invented sentence
    is flagged every time."""
    engine = _chat_engine(index, mode)
    topics = ["honey", "saturn", "octopus", "honey"]
    seen: list[set[str]] = []
    for topic in topics:
        response = await _turn(engine, call, QUESTIONS[topic])
        assert response.response == f"{FACT[topic]} {INVENTED}"
        nodes = _turn_nodes(response)
        if len(seen) < 3:
            assert all(nodes.isdisjoint(before) for before in seen), "the turns retrieve apart"
        else:
            assert nodes == seen[0], "asked again, retrieved again"
        payload = response.metadata["attribution"]
        check_facts(payload, [topic], reached=nodes)
        assert {s["id"] for s in payload["sources"]} == nodes
        assert payload["question"] == QUESTIONS[topic]
        seen.append(nodes)
    assert len(engine.chat_history) == 2 * len(topics)
    assert len(recorder.calls) == len(topics)
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


# --- RouterQueryEngine -----------------------------------------------------------------------

ANIMALS = ["penguins", "octopus", "tortoise", "honey"]
SPACE = ["saturn", "telescope", "tides", "eiffel"]


def _topic_index(topics: Sequence[str]) -> VectorStoreIndex:
    documents = [Document(text=FACT[t], metadata={"file_name": f"{t}.txt"}) for t in topics]
    return VectorStoreIndex.from_documents(
        documents, embed_model=MiniLMEmbedding(HashingEmbedder())
    )


@pytest.fixture(scope="module")
def routed() -> dict[str, VectorStoreIndex]:
    """Two indexes a router chooses between."""
    return {"animals": _topic_index(ANIMALS), "space": _topic_index(SPACE)}


def _router(
    routed: dict[str, VectorStoreIndex], *, multi: bool = False, streaming: bool = False
) -> Any:
    from llama_index.core.query_engine import RouterQueryEngine
    from llama_index.core.selectors import LLMMultiSelector, LLMSingleSelector
    from llama_index.core.tools import QueryEngineTool

    llm = ReaderLLM()
    descriptions = {
        "animals": "Animals: penguins, octopus hearts, giant tortoises, honey bees.",
        "space": "Space and the sky: Saturn rings, the Hubble telescope, tides and the moon.",
    }
    tools = [
        QueryEngineTool.from_defaults(
            index.as_query_engine(llm=llm, similarity_top_k=2, streaming=streaming),
            name=name,
            description=descriptions[name],
        )
        for name, index in routed.items()
    ]
    selector = (LLMMultiSelector if multi else LLMSingleSelector).from_defaults(llm=llm)
    return RouterQueryEngine(selector=selector, query_engine_tools=tools, llm=llm)


def _node_ids_of(index: VectorStoreIndex) -> set[str]:
    return set(index.docstore.docs)


@pytest.mark.parametrize("mode", ["query", "aquery", "stream", "astream"])
async def test_router_cites_the_chosen_engines_nodes(
    routed: dict[str, VectorStoreIndex], recorder: Recorder, mode: str
) -> None:
    """RouterQueryEngine with an LLMSingleSelector: the answer cites the nodes the chosen
    sub-engine retrieved, from the chosen index only; one attribution for the router call."""
    router = _router(routed, streaming=mode.endswith("stream"))
    for topic, chosen in (("saturn", "space"), ("penguins", "animals")):
        if mode == "query":
            response = router.query(QUESTIONS[topic])
        elif mode == "aquery":
            response = await router.aquery(QUESTIONS[topic])
        elif mode == "stream":
            response = router.query(QUESTIONS[topic])
            "".join(response.response_gen)
        else:
            response = await router.aquery(QUESTIONS[topic])
            "".join([t async for t in response.async_response_gen()])
        assert response.metadata["selector_result"].ind == list(routed).index(chosen)
        nodes = _ids(response.source_nodes)
        assert nodes <= _node_ids_of(routed[chosen])
        payload = response.metadata["attribution"]
        check_facts(payload, [topic], reached=nodes)
        assert {s["id"] for s in payload["sources"]} == nodes
    assert [c[1]["span_name"].rpartition(".")[2] for c in recorder.calls] == [
        "aquery" if mode.startswith("a") else "query"
    ] * 2
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


async def test_router_with_a_pydantic_selector(
    routed: dict[str, VectorStoreIndex], recorder: Recorder
) -> None:
    """A PydanticSingleSelector driven by a function-calling LLM: the same, for the engine it
    names by its 1-based index."""
    from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
    from llama_index.core.llms.mock import MockFunctionCallingLLM
    from llama_index.core.query_engine import RouterQueryEngine
    from llama_index.core.selectors import PydanticSingleSelector
    from llama_index.core.tools import QueryEngineTool

    def choose(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        pick = json.loads(_select(messages[-1].content or ""))[0]["choice"]
        call = ToolCallBlock(
            tool_call_id="select",
            tool_name="SingleSelection",
            tool_kwargs={"index": pick, "reason": "It names the question's topic."},
        )
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])

    llm = ReaderLLM()
    tools = [
        QueryEngineTool.from_defaults(
            index.as_query_engine(llm=llm, similarity_top_k=2),
            name=name,
            description=f"{name.title()}: " + ", ".join(ANIMALS if name == "animals" else SPACE),
        )
        for name, index in routed.items()
    ]
    selector = PydanticSingleSelector.from_defaults(
        llm=MockFunctionCallingLLM(response_generator=choose)
    )
    router = RouterQueryEngine(selector=selector, query_engine_tools=tools, llm=llm)
    response = router.query(QUESTIONS["tides"])
    nodes = _ids(response.source_nodes)
    assert nodes <= _node_ids_of(routed["space"])
    check_facts(response.metadata["attribution"], ["tides"], reached=nodes)


@pytest.mark.parametrize("mode", ["query", "aquery"])
async def test_router_over_several_engines_cites_their_documents(
    routed: dict[str, VectorStoreIndex], recorder: Recorder, mode: str
) -> None:
    """An LLMMultiSelector choosing both engines: the summary of their answers cites the
    documents under them, never the sub-answers."""
    router = _router(routed, multi=True)
    question = "Where do penguins live and what are Saturn's rings made of?"
    if mode == "query":
        response = router.query(question)
    else:
        response = await router.aquery(question)
    assert len(response.metadata["selector_result"].inds) == 2
    nodes = _ids(response.source_nodes)
    assert nodes & _node_ids_of(routed["animals"]) and nodes & _node_ids_of(routed["space"])
    payload = response.metadata["attribution"]
    _cites(payload, ["saturn", "penguins"], reached=nodes)  # the selector ranks saturn first
    assert len(recorder.calls) == 1


# --- tree_summarize over a SummaryIndex -------------------------------------------------------

SUMMARY_QUERY = "Summarise what the documents say about rings, valleys and hearts."
SUMMARISED = ["saturn", "octopus", "glacier"]  # in the documents' order


class SmallWindowLLM(ReaderLLM):
    """A ReaderLLM with a context window that holds a few documents per prompt, so
    tree_summarize summarises in levels."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=250, num_output=16)


def _levels(prompts: Sequence[str]) -> int:
    """How many tree_summarize prompts summarised earlier summaries (no metadata lines)."""
    summaries = [p for p in prompts if p.startswith("Context information from multiple")]
    return sum("file_name:" not in p for p in summaries)


@pytest.mark.parametrize("mode", ["query", "aquery", "stream", "use_async"])
async def test_tree_summarize_cites_the_documents_not_the_summaries(
    recorder: Recorder, mode: str
) -> None:
    """SummaryIndex over the topic documents, response_mode="tree_summarize" with a small
    context window: the final summary (from summaries of summaries) cites the documents each
    sentence came from; every source is a document node."""
    index = SummaryIndex.from_documents(topic_documents())
    llm = SmallWindowLLM()
    engine = index.as_query_engine(
        llm=llm,
        response_mode="tree_summarize",
        streaming=mode == "stream",
        use_async=mode == "use_async",
    )
    if mode == "aquery":
        response = await engine.aquery(SUMMARY_QUERY)
    else:
        response = engine.query(SUMMARY_QUERY)
    if mode == "stream":
        "".join(response.response_gen)
    assert _levels(llm.prompts) >= 1, "the summary must be built from summaries"
    payload = response.metadata["attribution"]
    assert {s["id"] for s in payload["sources"]} == _ids(response.source_nodes)
    assert len(payload["sources"]) == len(TOPICS)
    _cites(payload, SUMMARISED, reached=_ids(response.source_nodes))


@pytest.mark.parametrize("given", ["documents", "text_nodes"])
@pytest.mark.parametrize("mode", ["synthesize", "asynthesize"])
async def test_a_summariser_over_given_texts_cites_them(
    recorder: Recorder, given: str, mode: str
) -> None:
    """The summarisation use without an index: a tree_summarize synthesizer given Documents
    or bare TextNodes (no document behind them, never retrieved). Its extractive summary
    quotes them word for word, yet they are the evidence, not text the pipeline wrote."""
    from llama_index.core.response_synthesizers import get_response_synthesizer
    from llama_index.core.schema import NodeWithScore, TextNode

    documents = topic_documents()
    if given == "text_nodes":
        documents = [TextNode(text=d.text, metadata=d.metadata) for d in documents]
    nodes = [NodeWithScore(node=d) for d in documents]
    llm = SmallWindowLLM()
    synthesizer = get_response_synthesizer(llm=llm, response_mode="tree_summarize")
    if mode == "synthesize":
        response = synthesizer.synthesize(SUMMARY_QUERY, nodes=nodes)
    else:
        response = await synthesizer.asynthesize(SUMMARY_QUERY, nodes=nodes)
    assert _levels(llm.prompts) >= 1
    payload = response.metadata["attribution"]
    _cites(payload, SUMMARISED, reached=_ids(nodes), documents=False)
    assert len(payload["sources"]) == len(TOPICS)


# --- agent tools that return nodes, or text that labels them -----------------------------------


def _facts_in(text: str) -> list[str]:
    """The topic facts a tool result shows, in the order it shows them."""
    found = [(text.find(fact), fact) for fact in FACT.values() if fact in text]
    return [fact for _, fact in sorted(found)]


def _asked(messages: Sequence[Any]) -> tuple[str, list[Any]]:
    """The last user message's text, and the tool results after it."""
    from llama_index.core.base.llms.types import MessageRole

    last = max(i for i, m in enumerate(messages) if m.role == MessageRole.USER)
    return messages[last].content or "", [m for m in messages[last:] if m.role == MessageRole.TOOL]


def _agent_llm(tool: str, answer: Any) -> Any:
    """A function-calling agent's LLM: call `tool` with the question, then answer with
    `answer(tool result text)`."""
    from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
    from llama_index.core.llms.mock import MockFunctionCallingLLM

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        question, results = _asked(messages)
        if not results:
            call = ToolCallBlock(tool_call_id="c1", tool_name=tool, tool_kwargs={"input": question})
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
        return ChatMessage(role=MessageRole.ASSISTANT, content=answer(results[-1].content or ""))

    return MockFunctionCallingLLM(response_generator=respond)


class ReActReader(ReActCaller):
    """A ReAct agent's LLM: one Action with the question, then an Answer made by `answer`
    from the Observation."""

    answer: Any = None

    def _final(self, observation: str) -> str:
        return f"Thought: I can answer now.\nAnswer: {self.answer(observation)}"


def _with_invention(shown: str) -> str:
    return f"{_facts_in(shown)[0]} {INVENTED}"


def _word_for_word(shown: str) -> str:
    return _facts_in(shown)[0]


# The notes a tool looks up itself: no index, no retriever, no document behind each node.
NOTES = {topic: f"{topic}-note" for topic, _ in TOPICS}


def _notes_tool(shape: str) -> Any:
    """A FunctionTool over NOTES returning, for the topics sharing a word with its input, bare
    `TextNode`s or `NodeWithScore`s (a list, or the best one alone)."""
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.core.tools import FunctionTool

    def facts(input: str) -> Any:
        """Look facts up in the notes."""
        asked = _words(input)
        ranked = sorted(TOPICS, key=lambda item: -len(asked & _words(item[1] + " " + item[0])))
        nodes = [
            NodeWithScore(
                node=TextNode(id_=NOTES[t], text=text, metadata={"file_name": f"{t}.txt"}),
                score=1.0 / (k + 1),
            )
            for k, (t, text) in enumerate(ranked[:2])
        ]
        if shape == "text_nodes":
            return [n.node for n in nodes]
        if shape == "text_node":
            return nodes[0].node
        if shape == "nodes_with_score":
            return nodes
        return nodes[0]

    return FunctionTool.from_defaults(fn=facts)


NODE_SHAPES = ["text_nodes", "text_node", "nodes_with_score", "node_with_score"]


def _agent(kind: str, tool: Any, answer: Any) -> Any:
    from llama_index.core.agent.workflow import FunctionAgent, ReActAgent

    if kind == "function":
        return FunctionAgent(tools=[tool], llm=_agent_llm(tool.metadata.name, answer))
    return ReActAgent(tools=[tool], llm=ReActReader(tool=tool.metadata.name, answer=answer))


@pytest.mark.parametrize("answer", [_with_invention, _word_for_word])
@pytest.mark.parametrize("shape", NODE_SHAPES)
@pytest.mark.parametrize("kind", ["function", "react"])
async def test_a_tool_returning_bare_nodes_is_cited(
    recorder: Recorder, kind: str, shape: str, answer: Any
) -> None:
    """A FunctionTool that returns bare TextNodes or NodeWithScores (its own, not a Response,
    no retriever run): its nodes are what the agent's answer cites, as a retriever's would be;
    also when the answer repeats a node word for word (an LLM's words inside a node mark it as
    the pipeline's own text only when they came before the node)."""
    output = await _agent(kind, _notes_tool(shape), answer).run(user_msg=QUESTIONS["honey"])
    (call,) = output.tool_calls
    raw = call.tool_output.raw_output
    returned = raw if isinstance(raw, list) else [raw]
    ids = {getattr(n, "node", n).node_id for n in returned}
    assert NOTES["honey"] in ids
    payload = output["attribution"]
    assert payload["error"] is None
    assert {s["id"] for s in payload["sources"]} == ids
    sentences = {s["text"]: s for s in payload["answer_sentences"]}
    assert sentences[FACT["honey"]]["supported"] is True
    assert sentences[FACT["honey"]]["citations"][0]["source_id"] == NOTES["honey"]
    if answer is _with_invention:
        assert sentences[INVENTED]["supported"] is False
    assert len(recorder.calls) == 1
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


async def test_attribute_response_reads_a_tools_bare_nodes(hashing_attributor: Attributor) -> None:
    """Without instrument(), attribute_response on the agent output reads them too."""
    from rag_attrib.integrations.llamaindex import attribute_response

    output = await _agent("function", _notes_tool("text_nodes"), _with_invention).run(
        user_msg=QUESTIONS["saturn"]
    )
    result = attribute_response(output, hashing_attributor)
    assert result.error is None
    assert NOTES["saturn"] in {s.id for s in result.sources}
    assert result.answer_sentences[0].citations[0].source_id == NOTES["saturn"]


# A 1x1 PNG, as an image node or block carries it.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def _textless(shape: str) -> Any:
    """What a tool returns that holds no text to cite, beside the honey fact or alone."""
    from llama_index.core.base.llms.types import ImageBlock, TextBlock
    from llama_index.core.schema import ImageNode, NodeWithScore, TextNode

    fact = TextNode(id_="honey-note", text=FACT["honey"])
    return {
        "image_nodes": [ImageNode(image=PNG), ImageNode(image=PNG, text=" \n")],
        "empty_nodes": [TextNode(text=""), NodeWithScore(node=TextNode(text="   "), score=0.5)],
        "image_and_text": [ImageNode(image=PNG), fact],
        "empty_and_text": [TextNode(text=""), NodeWithScore(node=fact, score=0.9)],
        "image_block": ImageBlock(image=PNG.encode()),
        "image_and_text_blocks": [ImageBlock(image=PNG.encode()), TextBlock(text=FACT["honey"])],
    }[shape]


@pytest.mark.parametrize("face", ["instrument", "attribute_response"])
@pytest.mark.parametrize(
    "shape",
    [
        "image_nodes",
        "empty_nodes",
        "image_and_text",
        "empty_and_text",
        "image_block",
        "image_and_text_blocks",
    ],
)
async def test_a_tool_returning_images_or_empty_nodes(
    hashing_attributor: Attributor, shape: str, face: str
) -> None:
    """A tool returning image nodes, empty nodes or an image block: the agent's answer stands;
    a node with no text is never a source (nor cited); a text node beside it is cited; with
    nothing but textless nodes (or blocks, which are no nodes) `error` says why nothing is."""
    from llama_index.core.tools import FunctionTool

    from rag_attrib.integrations._pipeline import NO_TEXT
    from rag_attrib.integrations.llamaindex import attribute_response, instrument, uninstrument
    from rag_attrib.integrations.llamaindex._read import NO_TOOL_NODES

    def facts(input: str) -> Any:
        """Look facts up, with their pictures."""
        return _textless(shape)

    answer = f"{FACT['honey']} {INVENTED}"
    agent = _agent("function", FunctionTool.from_defaults(fn=facts), lambda shown: answer)
    if face == "instrument":
        instrument(hashing_attributor)
    try:
        output = await agent.run(user_msg=QUESTIONS["honey"])
    finally:
        uninstrument()
    assert str(output) == answer
    if face == "attribute_response":
        attribute_response(output, hashing_attributor)
    payload = output["attribution"]
    assert payload["answer"] == answer
    assert all(s["text"].strip() for s in payload["sources"])
    cited = {c["source_id"] for s in payload["answer_sentences"] for c in s["citations"]}
    if shape.endswith("_text"):
        assert payload["error"] is None
        assert [s["id"] for s in payload["sources"]] == ["honey-note"]
        assert payload["answer_sentences"][0]["citations"][0]["source_id"] == "honey-note"
        return
    assert payload["sources"] == [] and not cited and payload["citations"] == []
    if shape.endswith("_nodes"):
        assert payload["error"] == NO_TEXT.format(n=2)
    else:
        assert payload["error"] == NO_TOOL_NODES.format(tools="facts")


def _labelled_tool(index: VectorStoreIndex) -> Any:
    """A FunctionTool that retrieves three nodes and returns their text labelled "Source 1:",
    "Source 2:", ... in its own order (by file name, not by retrieval score), with metadata."""
    from llama_index.core.schema import MetadataMode
    from llama_index.core.tools import FunctionTool

    retriever = index.as_retriever(similarity_top_k=3)

    async def search(input: str) -> str:
        """Search the notes; each passage is labelled "Source n:"."""
        found = await retriever.aretrieve(input)
        ordered = sorted(found, key=lambda n: n.node.metadata["file_name"])
        return "\n\n".join(
            f"Source {k}:\n{n.node.get_content(metadata_mode=MetadataMode.LLM)}"
            for k, n in enumerate(ordered, 1)
        )

    return FunctionTool.from_defaults(async_fn=search)


def _labelling_node_tool(index: VectorStoreIndex) -> Any:
    """A FunctionTool returning the three nodes it retrieves (in retrieval order), whose
    callback shows the LLM their text labelled "Source 1:", ... by file name instead."""
    from llama_index.core.schema import MetadataMode, NodeWithScore
    from llama_index.core.tools import FunctionTool

    retriever = index.as_retriever(similarity_top_k=3)

    def search(input: str) -> list[NodeWithScore]:
        """Search the notes; each passage is labelled "Source n:"."""
        return retriever.retrieve(input)

    def label(nodes: list[NodeWithScore]) -> str:
        ordered = sorted(nodes, key=lambda n: n.node.metadata["file_name"])
        return "\n\n".join(
            f"Source {k}:\n{n.node.get_content(metadata_mode=MetadataMode.LLM)}"
            for k, n in enumerate(ordered, 1)
        )

    return FunctionTool.from_defaults(fn=search, callback=label)


def _label_of(shown: str, fact: str) -> int:
    """The label the tool put on the passage holding `fact`."""
    head = shown[: shown.index(fact)]
    return int(re.findall(r"Source (\d+):", head)[-1])


def _citing_labels(topic: str) -> Any:
    """An answer citing the topic's passage by its label, and the invented sentence by the
    label of another passage (it backs nothing there)."""

    def answer(shown: str) -> str:
        right = _label_of(shown, FACT[topic])
        other = next(k for k in (1, 2, 3) if k != right)
        return f"{FACT[topic][:-1]} [{right}]. {INVENTED[:-1]} [{other}]."

    return answer


@pytest.mark.parametrize("kind", ["function", "react"])
async def test_source_labels_in_a_tool_result_number_the_agents_markers(
    index: VectorStoreIndex, recorder: Recorder, kind: str
) -> None:
    """A tool whose text labels its passages "Source 1:", "Source 2:" in an order of its own:
    the agent's [n] name the passage labelled n (the nodes are numbered as the tool showed
    them, not in retrieval order), so a right marker is correct and the other unsupported."""
    topic = "volcano"  # the retriever ranks it first; the tool's order puts it elsewhere
    tool = _labelled_tool(index)
    output = await _agent(kind, tool, _citing_labels(topic)).run(user_msg=QUESTIONS[topic])
    (call,) = output.tool_calls
    shown = call.tool_output.content
    right = _label_of(shown, FACT[topic])
    assert right != 1, "the tool's order must differ from the retrieval's for this test"
    payload = output["attribution"]
    assert payload["error"] is None
    files = [s["metadata"]["file_name"] for s in payload["sources"]]
    assert files == sorted(files), "the sources follow the tool's labels"
    check = payload["citation_check"]
    assert check["numbering"] == "1-based"
    volcano = next(s["id"] for s in payload["sources"] if FACT[topic] in s["text"])
    verdicts = [(m["text"], m["source_id"], m["verdict"]) for m in check["markers"]]
    assert verdicts[0] == (f"[{right}]", volcano, "correct")
    assert verdicts[1][2] == "unsupported"
    assert len(recorder.calls) == 1


async def test_an_agent_over_a_citation_query_engine_tool(
    index: VectorStoreIndex, recorder: Recorder
) -> None:
    """A QueryEngineTool over a CitationQueryEngine: its nodes carry the "Source n:" labels;
    the agent's [n] copied from the engine's answer name them."""
    tool = _citation_tool(index)

    def answer(shown: str) -> str:
        return f"{shown} {INVENTED}"

    output = await _agent("function", tool, answer).run(user_msg=QUESTIONS["copper"])
    (call,) = output.tool_calls
    nodes = [n.node.node_id for n in call.tool_output.raw_output.source_nodes]
    payload = output["attribution"]
    assert payload["error"] is None
    assert [s["id"] for s in payload["sources"]] == nodes
    check = payload["citation_check"]
    assert check["numbering"] == "1-based"
    (marker,) = check["markers"]
    assert (marker["text"], marker["source_id"], marker["verdict"]) == ("[2]", nodes[1], "correct")


def _citation_tool(index: VectorStoreIndex) -> Any:
    """A QueryEngineTool over a CitationQueryEngine whose LLM answers with the engine's last
    source, cited by its label."""
    from llama_index.core.query_engine import CitationQueryEngine
    from llama_index.core.tools import QueryEngineTool

    class CitingReader(ReaderLLM):
        def _answer(self, prompt: str) -> str:
            found = re.findall(r"^Source (\d+):\n(.*)$", prompt, flags=re.MULTILINE)
            if not found:
                return super()._answer(prompt)
            found = found[max(k for k, (n, _) in enumerate(found) if n == "1") :]
            n, text = found[-1]  # the engine's last source, cited by its label
            return f"{text.strip()} [{n}]"

    engine = CitationQueryEngine.from_args(index, llm=CitingReader(), similarity_top_k=2)
    return QueryEngineTool.from_defaults(engine, name="facts", description="Cited facts.")


def _repeating(shown: str) -> str:
    return f"{shown} {INVENTED}"


@pytest.mark.parametrize("kind", ["function", "react"])
async def test_attribute_response_reads_a_citation_tools_labels(
    index: VectorStoreIndex, hashing_attributor: Attributor, kind: str
) -> None:
    """Without instrument(), attribute_response(agent_output) over a CitationQueryEngine tool
    numbers the agent's [n] by the engine's "Source n:" labels, as instrument() does."""
    from rag_attrib.integrations.llamaindex import attribute_response

    output = await _agent(kind, _citation_tool(index), _repeating).run(user_msg=QUESTIONS["copper"])
    (call,) = output.tool_calls
    nodes = [n.node.node_id for n in call.tool_output.raw_output.source_nodes]
    result = attribute_response(output, hashing_attributor)
    assert result.error is None
    assert [s.id for s in result.sources] == nodes
    check = result.citation_check
    assert check is not None and check.numbering == "1-based"
    (marker,) = check.markers
    assert (marker.text, marker.source_id, marker.verdict) == ("[2]", nodes[1], "correct")


@pytest.mark.parametrize("face", ["instrument", "attribute_response"])
@pytest.mark.parametrize("kind", ["function", "react"])
async def test_a_tools_labels_over_its_own_nodes(
    index: VectorStoreIndex, hashing_attributor: Attributor, kind: str, face: str
) -> None:
    """A FunctionTool returning nodes whose callback shows them labelled in an order of its
    own: with or without instrument(), the agent's [n] name the node labelled n."""
    from rag_attrib.integrations.llamaindex import attribute_response, instrument, uninstrument

    topic = "volcano"
    if face == "instrument":
        instrument(hashing_attributor)
    try:
        agent = _agent(kind, _labelling_node_tool(index), _citing_labels(topic))
        output = await agent.run(user_msg=QUESTIONS[topic])
    finally:
        uninstrument()
    (call,) = output.tool_calls
    right = _label_of(call.tool_output.content, FACT[topic])
    assert right != 1 and FACT[topic] in call.tool_output.raw_output[0].node.text
    if face == "instrument":
        payload = output["attribution"]
    else:
        payload = attribute_response(output, hashing_attributor).to_dict()
    assert payload["error"] is None
    files = [s["metadata"]["file_name"] for s in payload["sources"]]
    assert files == sorted(files), "the sources follow the tool's labels"
    check = payload["citation_check"]
    assert check["numbering"] == "1-based" and check["error"] is None
    text = {s["id"]: s["text"] for s in payload["sources"]}
    marker = check["markers"][0]
    assert (marker["text"], text[marker["source_id"]], marker["verdict"]) == (
        f"[{right}]",
        FACT[topic],
        "correct",
    )
    assert check["markers"][1]["verdict"] == "unsupported"


# --- one labelling tool called twice ----------------------------------------------------------

TWICE = ("volcano", "honey")  # asked in this order; each call's passages labelled from 1


def _twice_answer(shown: Sequence[str], wrong: bool) -> str:
    """Each fact cited by the label its own call gave it (or, `wrong`, the first fact by a
    label no call gave its passage), then the invented sentence cited [1]."""
    first, second = (_label_of(text, FACT[t]) for text, t in zip(shown, TWICE, strict=True))
    if wrong:
        gave = {_label_of(text, FACT[TWICE[0]]) for text in shown if FACT[TWICE[0]] in text}
        first = next(k for k in (1, 2, 3) if k not in gave)
    return (
        f"{FACT[TWICE[0]][:-1]} [{first}]. {FACT[TWICE[1]][:-1]} [{second}]. {INVENTED[:-1]} [1]."
    )


def _twice_function_llm(tool: str, wrong: bool) -> Any:
    from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
    from llama_index.core.llms.mock import MockFunctionCallingLLM

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        _, results = _asked(messages)
        if len(results) < len(TWICE):
            topic = TWICE[len(results)]
            call = ToolCallBlock(
                tool_call_id=f"c{len(results)}",
                tool_name=tool,
                tool_kwargs={"input": QUESTIONS[topic]},
            )
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
        shown = [r.content or "" for r in results]
        return ChatMessage(role=MessageRole.ASSISTANT, content=_twice_answer(shown, wrong))

    return MockFunctionCallingLLM(response_generator=respond)


class ReActTwice(ReActCaller):
    """A ReAct agent's LLM asking `tool` about each of TWICE in turn, then answering."""

    wrong: bool = False

    def _answer(self, prompt: str) -> str:
        prompt = prompt.rpartition("## Current Conversation")[2]
        shown = prompt.split("Observation: ")[1:]
        if len(shown) < len(TWICE):
            asked = json.dumps({"input": QUESTIONS[TWICE[len(shown)]]})
            return f"Thought: I need the tool.\nAction: {self.tool}\nAction Input: {asked}"
        return f"Thought: I can answer now.\nAnswer: {_twice_answer(shown, self.wrong)}"


def _twice_agent(kind: str, tool: Any, wrong: bool = False) -> Any:
    from llama_index.core.agent.workflow import FunctionAgent, ReActAgent

    name = tool.metadata.name
    if kind == "function":
        return FunctionAgent(tools=[tool], llm=_twice_function_llm(name, wrong))
    return ReActAgent(tools=[tool], llm=ReActTwice(tool=name, wrong=wrong))


def _twice_payload(output: Any, face: str, attributor: Attributor) -> dict[str, Any]:
    from rag_attrib.integrations.llamaindex import attribute_response

    if face == "instrument":
        return dict(output["attribution"])
    return attribute_response(output, attributor).to_dict()


@pytest.mark.parametrize("face", ["instrument", "attribute_response"])
@pytest.mark.parametrize("kind", ["function", "react"])
async def test_a_labelling_tool_called_twice(
    index: VectorStoreIndex, hashing_attributor: Attributor, kind: str, face: str
) -> None:
    """A tool called twice, each output labelling its passages "Source 1:", "Source 2:":
    each [n] can name either call's passage n, so it is read as the one that backs its claim,
    and the check says the numbers were ambiguous. A marker backed by neither is wrong."""
    from rag_attrib.integrations.llamaindex import instrument, uninstrument

    tool = _labelling_node_tool(index)
    if face == "instrument":
        instrument(hashing_attributor)
    try:
        output = await _twice_agent(kind, tool).run(user_msg="Tell me about both.")
        wrong = await _twice_agent(kind, tool, wrong=True).run(user_msg="Tell me about both.")
    finally:
        uninstrument()
    shown = [c.tool_output.content for c in output.tool_calls]
    assert len(shown) == 2
    labels = [_label_of(text, FACT[t]) for text, t in zip(shown, TWICE, strict=True)]
    payload = _twice_payload(output, face, hashing_attributor)
    assert payload["error"] is None
    check = payload["citation_check"]
    assert check["numbering"] == "1-based"
    text = {s["id"]: s["text"] for s in payload["sources"]}
    verdicts = [(m["text"], text.get(m["source_id"]), m["verdict"]) for m in check["markers"]]
    assert verdicts[:2] == [
        (f"[{labels[0]}]", FACT[TWICE[0]], "correct"),
        (f"[{labels[1]}]", FACT[TWICE[1]], "correct"),
    ]
    assert verdicts[2][2] == "unsupported"
    assert "ambiguous citation numbers" in check["error"] and "[1]" in check["error"]
    # the latest call's passages come first, in its label order
    assert all(s["text"] in shown[1] for s in payload["sources"][:3])
    bad = _twice_payload(wrong, face, hashing_attributor)["citation_check"]
    assert bad["markers"][0]["verdict"] != "correct"
    assert [m["verdict"] for m in bad["markers"][1:]] == ["correct", "unsupported"]
