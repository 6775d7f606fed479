"""LlamaIndex agents, workflows, sub-questions and missing nodes: real llama-index-core objects.

Only the LLMs are stand-ins, and they read their prompts: `ReadingLLM` (in _llamaindex.py)
answers from the context it is given (and ranks, splits and condenses questions as LlamaIndex
asks it to), and the agent LLMs call the tool with the user's question, then answer from what
the tool returned.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from _llamaindex import (
    FACT,
    INVENTED,
    QUESTIONS,
    EchoContextLLM,
    ReActCaller,
    ReadingLLM,
    Recorder,
    check_facts,
    facts_tool,
    tool_call_nodes,
    tool_caller,
    topic_documents,
)
from llama_index.core import VectorStoreIndex
from llama_index.core.agent.workflow import AgentOutput, AgentWorkflow, FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.base.response.schema import Response
from llama_index.core.chat_engine import CondenseQuestionChatEngine
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.postprocessor import LLMRerank
from llama_index.core.query_engine import CustomQueryEngine, SubQuestionQueryEngine
from llama_index.core.question_gen import LLMQuestionGenerator
from llama_index.core.response_synthesizers import CompactAndRefine, get_response_synthesizer
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.core.tools import FunctionTool, QueryEngineTool
from llama_index.core.workflow import Context, Event, StartEvent, StopEvent, Workflow, step

from rag_attrib import Attributor
from rag_attrib.integrations.llamaindex import (
    MiniLMEmbedding,
    attribute_response,
    instrument,
    uninstrument,
)
from rag_attrib.integrations.llamaindex.instrument import open_records
from rag_attrib.testing import FailingEmbedder

# --- the stand-in LLMs ---------------------------------------------------------------------


class ReActLLM(ReActCaller):
    """A ReAct agent's LLM: one Action with the question, then an Answer from the Observation."""

    def _final(self, observation: str) -> str:
        observation = observation.strip().splitlines()[0]
        return (
            f"Thought: I can answer without using any more tools.\nAnswer: {observation} {INVENTED}"
        )


# `index` (the topic documents, module-scoped) and `recorder` come from conftest.py; the
# agent tool and checks from _llamaindex.py.


# --- agents ----------------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [True, False])
async def test_function_agent_output_carries_attribution(
    index: VectorStoreIndex, recorder: Recorder, streaming: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A FunctionAgent's AgentOutput gets ["attribution"] from its tool call's nodes."""
    llm = MockFunctionCallingLLM(response_generator=tool_caller("facts"))
    agent = FunctionAgent(tools=[facts_tool(index)], llm=llm, streaming=streaming)
    with caplog.at_level(logging.DEBUG, logger="rag_attrib"):
        output = await agent.run(user_msg=QUESTIONS["honey"])
    assert not [r for r in caplog.records if r.name.startswith("rag_attrib")]
    assert isinstance(output, AgentOutput)
    assert str(output).startswith(FACT["honey"])
    payload = output["attribution"]
    check_facts(payload, ["honey"], reached=tool_call_nodes(output))
    assert payload["answer"] == str(output)
    assert payload["question"] == QUESTIONS["honey"]
    # one export per agent run, on the agent's span: the tool's own query is not exported
    assert [c[1]["span_name"] for c in recorder.calls] == ["FunctionAgent.run"]
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


@pytest.mark.parametrize("read", ["run", "stream_events"])
async def test_react_agent_output_carries_attribution(
    index: VectorStoreIndex, recorder: Recorder, read: str
) -> None:
    """A ReActAgent's final AgentOutput is attributed to the nodes its Action retrieved, also
    when the caller reads its events (`stream_events()`: AgentStream deltas) first."""
    agent = ReActAgent(tools=[facts_tool(index)], llm=ReActLLM())
    handler = agent.run(user_msg=QUESTIONS["saturn"])
    if read == "stream_events":
        events = [type(e).__name__ async for e in handler.stream_events()]
        assert {"AgentStream", "ToolCallResult"} <= set(events)
    output = await handler
    assert str(output).startswith(FACT["saturn"]) and str(output).endswith(INVENTED)
    check_facts(output["attribution"], ["saturn"], reached=tool_call_nodes(output))
    assert len(recorder.calls) == 1


async def test_agent_workflow_output_carries_attribution(
    index: VectorStoreIndex, recorder: Recorder
) -> None:
    """AgentWorkflow's handler result is attributed to its agents' tool nodes of that run."""
    researcher = FunctionAgent(
        name="researcher",
        description="Looks facts up.",
        tools=[facts_tool(index)],
        llm=MockFunctionCallingLLM(response_generator=tool_caller("facts")),
    )
    workflow = AgentWorkflow(agents=[researcher], root_agent="researcher")
    handler = workflow.run(user_msg=QUESTIONS["octopus"])
    events = [type(e).__name__ async for e in handler.stream_events()]
    output = await handler
    assert "ToolCallResult" in events
    check_facts(output["attribution"], ["octopus"], reached=tool_call_nodes(output))
    assert [c[1]["span_name"] for c in recorder.calls] == ["AgentWorkflow.run"]


async def test_concurrent_agents_cite_only_their_own_nodes(
    index: VectorStoreIndex, recorder: Recorder
) -> None:
    """Agent runs interleaved on one loop each cite the nodes of their own tool calls."""
    topics = ["copper", "violin", "glacier", "coffee", "diamond", "pyramid"]

    async def ask(topic: str) -> AgentOutput:
        llm = MockFunctionCallingLLM(response_generator=tool_caller("facts"))
        agent = FunctionAgent(tools=[facts_tool(index)], llm=llm)
        return await agent.run(user_msg=QUESTIONS[topic])

    outputs = await asyncio.gather(*(ask(t) for t in topics))
    for topic, output in zip(topics, outputs, strict=True):
        check_facts(output["attribution"], [topic], reached=tool_call_nodes(output))
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


@pytest.mark.parametrize("read", ["run", "stream_events"])
async def test_agent_tool_that_retrieves_and_returns_text_cites_what_it_showed(
    index: VectorStoreIndex, recorder: Recorder, caplog: pytest.LogCaptureFixture, read: str
) -> None:
    """A FunctionTool that calls a retriever and returns its nodes' text (no nodes reach the
    AgentOutput) is attributed to the retrieved nodes that text shows; a node retrieved but
    left out of the tool's text is not cited. It said "no source nodes" and cited nothing."""
    retriever = index.as_retriever(similarity_top_k=2)
    dropped: list[str] = []

    async def facts(input: str) -> str:
        """Look facts up."""
        nodes = await retriever.aretrieve(input)
        dropped.append(nodes[1].node.node_id)
        return nodes[0].node.get_content()

    llm = MockFunctionCallingLLM(response_generator=tool_caller("facts"))
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(async_fn=facts)], llm=llm)
    with caplog.at_level(logging.WARNING, logger="rag_attrib"):
        handler = agent.run(user_msg=QUESTIONS["honey"])
        if read == "stream_events":
            events = [type(e).__name__ async for e in handler.stream_events()]
            assert "ToolCallResult" in events
        output = await handler
    assert not caplog.records
    payload = output["attribution"]
    ids = {s["id"] for s in payload["sources"]}
    assert ids and dropped[0] not in ids
    check_facts(payload, ["honey"], reached=ids)
    assert len(recorder.calls) == 1


async def test_attribute_response_accepts_an_agent_output(
    index: VectorStoreIndex, hashing_attributor: Attributor
) -> None:
    """Without instrument(), attribute_response(agent_output) reads the run's tool calls."""
    llm = MockFunctionCallingLLM(response_generator=tool_caller("facts"))
    output = await FunctionAgent(tools=[facts_tool(index)], llm=llm).run(
        user_msg=QUESTIONS["bamboo"]
    )
    assert "attribution" not in output
    result = attribute_response(output, hashing_attributor, question=QUESTIONS["bamboo"])
    assert result.error is None
    assert output["attribution"]["answer"] == str(output)
    check_facts(output["attribution"], ["bamboo"], reached=tool_call_nodes(output))


# --- workflows and bare synthesizers -----------------------------------------------------------


class RetrieverEvent(Event):
    nodes: list[NodeWithScore]


class RerankEvent(Event):
    nodes: list[NodeWithScore]


class RAGWorkflow(Workflow):
    """The RAG workflow of LlamaIndex's docs: retrieve, LLMRerank, CompactAndRefine."""

    def __init__(self, index: VectorStoreIndex, llm: CustomLLM, streaming: bool) -> None:
        super().__init__(timeout=30)
        self.index, self.llm, self.streaming = index, llm, streaming

    @step
    async def retrieve(self, ctx: Context, ev: StartEvent) -> RetrieverEvent:
        await ctx.store.set("query", ev.get("query"))
        nodes = await self.index.as_retriever(similarity_top_k=4).aretrieve(ev.get("query"))
        return RetrieverEvent(nodes=nodes)

    @step
    async def rerank(self, ctx: Context, ev: RetrieverEvent) -> RerankEvent:
        ranker = LLMRerank(choice_batch_size=5, top_n=3, llm=self.llm)
        query = await ctx.store.get("query")
        return RerankEvent(nodes=ranker.postprocess_nodes(ev.nodes, query_str=query))

    @step
    async def synthesize(self, ctx: Context, ev: RerankEvent) -> StopEvent:
        synthesizer = CompactAndRefine(llm=self.llm, streaming=self.streaming)
        query = await ctx.store.get("query")
        return StopEvent(result=await synthesizer.asynthesize(query, nodes=ev.nodes))


@pytest.mark.parametrize("streaming", [False, True])
async def test_rag_workflow_response_carries_attribution(
    index: VectorStoreIndex, recorder: Recorder, streaming: bool
) -> None:
    """The docs' RAG workflow's Response gets metadata["attribution"]; reranked-out nodes are
    never cited."""
    question = "Why is copper used in wiring and why do penguins not fly?"
    retrieved = await index.as_retriever(similarity_top_k=4).aretrieve(question)
    llm = ReadingLLM(invent=INVENTED)
    result = await RAGWorkflow(index, llm, streaming).run(query=question)
    if streaming:
        text = "".join([t async for t in result.async_response_gen()])
        assert text == result.metadata["attribution"]["answer"]
    kept = {n.node.node_id for n in result.source_nodes}
    assert kept < {n.node.node_id for n in retrieved}, "the rerank must drop a retrieved node"
    check_facts(result.metadata["attribution"], ["copper", "penguins"], reached=kept)
    assert [c[1]["span_name"] for c in recorder.calls] == ["CompactAndRefine.asynthesize"]


class DirectLLMWorkflow(Workflow):
    """A workflow whose last step completes its own prompt (no synthesizer) and returns the
    reply with its nodes, as the README's Workflows section shows."""

    def __init__(self, index: VectorStoreIndex) -> None:
        super().__init__(timeout=30)
        self.index = index

    @step
    async def retrieve(self, ctx: Context, ev: StartEvent) -> RetrieverEvent:
        await ctx.store.set("query", ev.get("query"))
        nodes = await self.index.as_retriever(similarity_top_k=2).aretrieve(ev.get("query"))
        return RetrieverEvent(nodes=nodes)

    @step
    async def synthesize(self, ctx: Context, ev: RetrieverEvent) -> StopEvent:
        context = "\n".join(n.node.get_content() for n in ev.nodes)
        prompt = f"Context:\n-----\n{context}\n-----\nQuery: {await ctx.store.get('query')}"
        reply = await ReadingLLM(invent=INVENTED).acomplete(prompt)
        return StopEvent(result=Response(response=str(reply), source_nodes=ev.nodes))


async def test_workflow_step_calling_the_llm_itself_as_the_readme_shows(
    index: VectorStoreIndex, hashing_attributor: Attributor
) -> None:
    """The README's recipe for a step that calls the LLM itself: its Response, given to
    attribute_response, cites the step's nodes and flags the invention."""
    question = QUESTIONS["honey"]
    result = await DirectLLMWorkflow(index).run(query=question)
    attribute_response(result, hashing_attributor, question=question)
    check_facts(
        result.metadata["attribution"],
        ["honey"],
        reached={n.node.node_id for n in result.source_nodes},
    )


def test_bare_synthesizer_is_attributed(index: VectorStoreIndex, recorder: Recorder) -> None:
    """synthesize() called on its own attributes its Response to the nodes it was given."""
    nodes = index.as_retriever(similarity_top_k=2).retrieve(QUESTIONS["tides"])
    synthesizer = get_response_synthesizer(llm=ReadingLLM(invent=INVENTED))
    response = synthesizer.synthesize(QUESTIONS["tides"], nodes=nodes)
    assert isinstance(response, Response)
    check_facts(
        response.metadata["attribution"], ["tides"], reached={n.node.node_id for n in nodes}
    )
    assert response.metadata["attribution"]["question"] == QUESTIONS["tides"]


# --- evidence only: sub-questions -------------------------------------------------------------


def _sub_question_engine(index: VectorStoreIndex, invent: str = INVENTED) -> SubQuestionQueryEngine:
    llm = ReadingLLM(invent=invent)
    return SubQuestionQueryEngine.from_defaults(
        query_engine_tools=[facts_tool(index)],
        question_gen=LLMQuestionGenerator.from_defaults(llm=llm),
        llm=llm,
        use_async=True,
        verbose=False,
    )


@pytest.mark.parametrize("mode", ["query", "aquery"])
async def test_sub_question_engine_cites_documents_not_sub_answers(
    index: VectorStoreIndex, recorder: Recorder, mode: str
) -> None:
    """The "Sub question: ...\\nResponse: ..." nodes are not evidence; the documents are."""
    question = "Why is copper used in wiring and how fast does bamboo grow"
    engine = _sub_question_engine(index)
    if mode == "query":
        response = engine.query(question)
    else:
        response = await engine.aquery(question)
    generated = {n.node.node_id for n in response.source_nodes if n.node.ref_doc_id is None}
    documents = {n.node.node_id for n in response.source_nodes} - generated
    assert generated and documents, "the engine returns both kinds of nodes"
    payload = response.metadata["attribution"]
    check_facts(payload, ["copper", "bamboo"], reached=documents)
    # the invented sentence the final LLM copied from a sub-answer is still flagged
    assert response.response.count(INVENTED) >= 1
    assert len(recorder.calls) == 1


def test_sub_question_nodes_alone_are_cited_and_said(hashing_attributor: Attributor) -> None:
    """With only generated nodes, they are cited, and the result says so in error."""
    node = TextNode(text=f"Sub question: Why copper?\nResponse: {FACT['copper']}")
    response = Response(response=FACT["copper"], source_nodes=[NodeWithScore(node=node)])
    result = attribute_response(response, hashing_attributor)
    assert result.sources[0].id == node.node_id
    assert result.answer_sentences[0].supported is True
    assert result.error is not None and "generated" in result.error


# --- missing nodes ---------------------------------------------------------------------------


async def test_condense_question_astream_chat_uses_tool_output_nodes(
    index: VectorStoreIndex, recorder: Recorder
) -> None:
    """astream_chat leaves source_nodes empty; the tool output's nodes are cited instead."""
    engine = index.as_query_engine(llm=ReadingLLM(invent=INVENTED), similarity_top_k=2)
    # in-process memory: the default keeps history in aiosqlite, whose worker thread outlives
    # the test's event loop and fails in a later test ("Event loop is closed")
    chat = CondenseQuestionChatEngine.from_defaults(
        query_engine=engine, llm=ReadingLLM(), memory=ChatMemoryBuffer.from_defaults()
    )
    streamed = await chat.astream_chat(QUESTIONS["vaccine"])
    text = "".join([t async for t in streamed.async_response_gen()])
    assert text.startswith(FACT["vaccine"]) and text.endswith(INVENTED)
    assert streamed.source_nodes == [], "the upstream gap this test is about"
    tool_nodes = {n.node.node_id for n in streamed.sources[0].raw_output.source_nodes}
    check_facts(streamed.metadata["attribution"], ["vaccine"], reached=tool_nodes)
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


class EchoQuestionEngine(CustomQueryEngine):
    """A custom engine that answers with a plain string and keeps no nodes."""

    def custom_query(self, query_str: str) -> str:
        return f"You asked: {query_str}"


def test_custom_engine_without_nodes_reports_and_warns_once(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """A CustomQueryEngine returning str: error says why and how to fix; one WARNING."""
    engine = EchoQuestionEngine()
    with caplog.at_level(logging.WARNING, logger="rag_attrib"):
        first = engine.query(QUESTIONS["honey"])
        second = engine.query(QUESTIONS["chess"])
    for response in (first, second):
        payload = response.metadata["attribution"]
        assert "no source nodes" in payload["error"]
        assert "CustomQueryEngine must return a Response with source_nodes" in payload["error"]
        assert payload["sources"] == [] and payload["citations"] == []
    warnings = [r for r in caplog.records if r.name.startswith("rag_attrib")]
    assert len(warnings) == 1 and "no source nodes" in warnings[0].getMessage()


async def test_agent_over_a_sub_question_tool_cites_documents(
    index: VectorStoreIndex, recorder: Recorder
) -> None:
    """An agent whose tool is a SubQuestionQueryEngine cites the documents under the
    sub-answers, never the sub-answers themselves."""
    question = "Why is copper used in wiring and how fast does bamboo grow"
    engine = _sub_question_engine(index, invent="")
    tool = QueryEngineTool.from_defaults(engine, name="research", description="Splits questions.")
    llm = MockFunctionCallingLLM(response_generator=tool_caller("research"))
    output = await FunctionAgent(tools=[tool], llm=llm).run(user_msg=question)
    (call,) = output.tool_calls
    nodes = call.tool_output.raw_output.source_nodes
    documents = {n.node.node_id for n in nodes if n.node.ref_doc_id is not None}
    assert len(documents) < len(nodes), "the tool's response holds generated nodes too"
    check_facts(output["attribution"], ["copper", "bamboo"], reached=documents)
    assert len(recorder.calls) == 1


async def test_attribution_failure_never_breaks_an_agent_or_a_workflow(
    index: VectorStoreIndex, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing engine leaves the agent's and the workflow's answers intact, with error set."""
    instrument(Attributor(FailingEmbedder()))
    try:
        with caplog.at_level(logging.WARNING, logger="rag_attrib"):
            llm = MockFunctionCallingLLM(response_generator=tool_caller("facts"))
            output = await FunctionAgent(tools=[facts_tool(index)], llm=llm).run(
                user_msg=QUESTIONS["sahara"]
            )
            result = await RAGWorkflow(index, ReadingLLM(), streaming=False).run(
                query=QUESTIONS["sahara"]
            )
    finally:
        uninstrument()
    assert str(output).startswith(FACT["sahara"]) and result.response.startswith(FACT["sahara"])
    for payload in (output["attribution"], result.metadata["attribution"]):
        assert "embedder failed on purpose" in payload["error"]
        assert payload["citations"] == []
    assert len([r for r in caplog.records if r.name.startswith("rag_attrib")]) == 2


@pytest.mark.slow
async def test_real_model_agent_cites_its_tool_nodes(real_attributor: Attributor) -> None:
    """With MiniLM for retrieval and attribution, an agent's fact cites its own node first and
    its invented sentence is flagged."""
    real_index = VectorStoreIndex.from_documents(
        topic_documents(), embed_model=MiniLMEmbedding(real_attributor)
    )
    instrument(real_attributor)
    try:
        llm = MockFunctionCallingLLM(response_generator=tool_caller("facts"))
        output = await FunctionAgent(tools=[facts_tool(real_index)], llm=llm).run(
            user_msg=QUESTIONS["penguins"]
        )
    finally:
        uninstrument()
    check_facts(output["attribution"], ["penguins"], reached=tool_call_nodes(output))


class DraftingEngine(CustomQueryEngine):
    """Streams an LLM's draft over the retrieved nodes and returns it as one more node: a node
    the pipeline wrote (no document behind it, never retrieved)."""

    retriever: Any
    llm: Any
    complete: bool = False  # stream_complete rather than stream_chat

    def custom_query(self, query_str: str) -> Response:
        nodes = self.retriever.retrieve(query_str)
        context = "\n".join(n.node.get_content() for n in nodes)
        prompt = f"Context:\n-----\n{context}\n-----\nQuestion: {query_str}"
        if self.complete:
            stream: Any = self.llm.stream_complete(prompt)
        else:
            stream = self.llm.stream_chat([ChatMessage(role=MessageRole.USER, content=prompt)])
        draft = "".join(chunk.delta or "" for chunk in stream)
        return Response(
            response=draft, source_nodes=[*nodes, NodeWithScore(node=TextNode(text=draft))]
        )


@pytest.mark.parametrize("complete", [False, True])
def test_a_streamed_llm_draft_node_is_not_evidence(
    index: VectorStoreIndex, recorder: Recorder, complete: bool
) -> None:
    """An LLM stream's span closes before its end event: what it said still marks the node
    holding it as written by the pipeline, so the documents are cited, not the draft."""
    retriever = index.as_retriever(similarity_top_k=2)
    engine = DraftingEngine(retriever=retriever, llm=EchoContextLLM(), complete=complete)
    response = engine.query(QUESTIONS["copper"])
    draft = response.source_nodes[-1].node
    assert draft.ref_doc_id is None and draft.get_content() == response.response
    payload = response.metadata["attribution"]
    assert payload["error"] is None
    ids = {s["id"] for s in payload["sources"]}
    assert draft.node_id not in ids
    assert ids == {n.node.node_id for n in response.source_nodes[:-1]}
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}
