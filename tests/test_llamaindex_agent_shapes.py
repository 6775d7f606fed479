"""LlamaIndex's current agent shapes, as its tutorials use them: a structured `output_cls`
that cites its sources, several turns over one `Context` or memory, runs of one agent side by
side, tools that return plain text, agents handing off in an `AgentWorkflow`, a tool waiting
for a human, and nodes a similarity cutoff drops. Real llama-index-core agents, tools, retrievers and
memory; only the LLM is a stand-in (`MockFunctionCallingLLM` answering from its messages).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from _llamaindex import (
    FACT,
    INVENTED,
    QUESTIONS,
    ReadingLLM,
    Recorder,
    check_facts,
    facts_tool,
    tool_call_nodes,
    tool_caller,
)
from llama_index.core import VectorStoreIndex
from llama_index.core.agent.workflow import AgentOutput, AgentWorkflow, FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.tools import FunctionTool, RetrieverTool
from llama_index.core.workflow import Context
from pydantic import BaseModel

from rag_attrib import Attributor
from rag_attrib.integrations.llamaindex import (
    attribute_response,
    instrument,
    uninstrument,
)
from rag_attrib.integrations.llamaindex._read import NO_TOOL_CALL, NO_TOOL_NODES
from rag_attrib.integrations.llamaindex.instrument import open_records

REPEAT = "Please repeat your last answer."
_TOOL_TEXT = re.compile(r"<tool>\s*<message>(.*?)</message>", re.DOTALL)


# `index` (the topic documents, module-scoped) and `recorder` come from conftest.py.


def _attribution(output: AgentOutput) -> dict[str, Any]:
    payload: dict[str, Any] = output["attribution"]
    return payload


# --- structured output: output_cls=CitedAnswer ---------------------------------------------


class CitedAnswer(BaseModel):
    """An answer and the 1-based positions of the passages it is based on."""

    answer: str
    citations: list[int]


def _citing_caller(tool: str, cite: Sequence[int]) -> Any:
    """The agent's LLM: call `tool`, answer from it, and when asked for a `CitedAnswer` (a
    function call, as `as_structured_llm` asks a function-calling LLM) give the first passage
    the tool showed as the answer, citing `cite`."""
    plain = tool_caller(tool)

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        if "CitedAnswer" not in [t.metadata.name for t in kwargs.get("tools") or ()]:
            return plain(messages, **kwargs)
        shown = _TOOL_TEXT.findall(messages[-1].content or "")[-1]  # the conversation as XML
        passages = [p.strip() for p in shown.split("\n\n") if p.strip()]
        first = next(p for p in passages if not p.startswith("file_name:"))
        call = ToolCallBlock(
            tool_call_id="structured",
            tool_name="CitedAnswer",
            tool_kwargs={"answer": first, "citations": list(cite)},
        )
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])

    return respond


def _retriever_tool(index: VectorStoreIndex) -> RetrieverTool:
    return RetrieverTool.from_defaults(
        index.as_retriever(similarity_top_k=2), name="facts", description="Facts about topics."
    )


@pytest.mark.parametrize("shape", ["agent", "workflow"])
@pytest.mark.parametrize("how", ["instrument", "attribute_response"])
async def test_output_cls_source_ids_are_checked(
    index: VectorStoreIndex, hashing_attributor: Attributor, shape: str, how: str
) -> None:
    """An agent (or AgentWorkflow) with `output_cls=CitedAnswer`: its structured answer is the
    one attributed, and each cited position gets a verdict, as `[n]` markers do. The ids went
    unchecked: the agent's `structured_response` was never read."""
    llm = MockFunctionCallingLLM(response_generator=_citing_caller("facts", [1, 2, 9]))
    tools = [_retriever_tool(index)]
    runner: Any
    if shape == "agent":
        runner = FunctionAgent(tools=tools, llm=llm, output_cls=CitedAnswer)
    else:
        agent = FunctionAgent(name="researcher", description="Looks up.", tools=tools, llm=llm)
        runner = AgentWorkflow(agents=[agent], output_cls=CitedAnswer)
    if how == "instrument":
        instrument(hashing_attributor)
    try:
        output = await runner.run(user_msg=QUESTIONS["honey"])
    finally:
        uninstrument()
    if how == "attribute_response":
        assert "attribution" not in output
        attribute_response(output, hashing_attributor)
    structured = output.get_pydantic_model(CitedAnswer)
    assert isinstance(structured, CitedAnswer) and structured.answer == FACT["honey"]
    payload = _attribution(output)
    assert payload["error"] is None
    assert payload["answer"] == structured.answer
    nodes = [n.node.node_id for call in output.tool_calls for n in call.tool_output.raw_output]
    assert [s["id"] for s in payload["sources"]] == nodes
    markers = payload["citation_check"]["markers"]
    assert [(m["label"], m["source_id"], m["style"]) for m in markers] == [
        ("1", nodes[0], "structured"),
        ("2", nodes[1], "structured"),
        ("9", None, "structured"),
    ]
    assert [m["verdict"] for m in markers] == ["correct", "wrong_source", "dangling"]
    assert markers[1]["suggested_source_id"] == nodes[0]


async def test_output_cls_without_citations_keeps_the_message(
    index: VectorStoreIndex, recorder: Recorder
) -> None:
    """A structured output with no source ids leaves the agent's message as the answer."""

    class Summary(BaseModel):
        title: str

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        if "Summary" in [t.metadata.name for t in kwargs.get("tools") or ()]:
            call = ToolCallBlock(tool_call_id="s", tool_name="Summary", tool_kwargs={"title": "x"})
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
        return tool_caller("facts")(messages, **kwargs)

    llm = MockFunctionCallingLLM(response_generator=respond)
    agent = FunctionAgent(tools=[facts_tool(index)], llm=llm, output_cls=Summary)
    output = await agent.run(user_msg=QUESTIONS["saturn"])
    assert output.structured_response == {"title": "x"}
    payload = _attribution(output)
    assert payload["answer"] == str(output)
    assert "citation_check" not in payload
    check_facts(payload, ["saturn"], reached=tool_call_nodes(output))


# --- several turns --------------------------------------------------------------------------


def _chatting_caller(tool: str) -> Any:
    """`tool_caller`, except that asked to repeat itself it repeats its last answer from the
    chat history (no tool call), or says it has none."""
    plain = tool_caller(tool)

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        if messages[-1].role == MessageRole.USER and messages[-1].content == REPEAT:
            said = [m.content for m in messages if m.role == MessageRole.ASSISTANT and m.content]
            return ChatMessage(role=MessageRole.ASSISTANT, content=(said or ["Nothing yet."])[-1])
        return plain(messages, **kwargs)

    return respond


# LlamaIndex warns that a Context's default memory cannot be serialised between runs (with
# llama-index-workflows 2.26 the next run over that Context starts without it: not ours).
@pytest.mark.filterwarnings("ignore::workflows.context.state_store.UnserializableKeyWarning")
@pytest.mark.parametrize("keep", ["ctx", "memory"])
async def test_each_turn_cites_only_its_own_run(
    index: VectorStoreIndex, recorder: Recorder, keep: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One agent over several turns (a shared `Context`, or a shared memory): each turn cites
    the nodes of its own tool calls only; a turn that calls no tool cites nothing and says so
    in `error`, and the user's loop goes on."""
    llm = MockFunctionCallingLLM(response_generator=_chatting_caller("facts"))
    agent = FunctionAgent(tools=[facts_tool(index)], llm=llm)
    memory = ChatMemoryBuffer.from_defaults()
    ctx = Context(agent)
    kept: dict[str, Any] = {"ctx": ctx} if keep == "ctx" else {"memory": memory}
    outputs = []
    with caplog.at_level(logging.WARNING, logger="rag_attrib"):
        for question in (QUESTIONS["honey"], QUESTIONS["saturn"], REPEAT, REPEAT):
            outputs.append(await agent.run(user_msg=question, **kept))
    first, second, third, fourth = outputs
    assert tool_call_nodes(first).isdisjoint(tool_call_nodes(second)), "the turns retrieve apart"
    check_facts(_attribution(first), ["honey"], reached=tool_call_nodes(first))
    check_facts(_attribution(second), ["saturn"], reached=tool_call_nodes(second))
    assert _attribution(second)["question"] == QUESTIONS["saturn"]
    if keep == "memory":  # the LLM read the second turn's answer in its chat history
        assert str(third) == str(second)
    for output in (third, fourth):
        assert output.tool_calls == []
        payload = _attribution(output)
        assert payload["error"] == NO_TOOL_CALL
        assert payload["sources"] == [] and payload["citations"] == []
        assert payload["answer"] == str(output) and payload["question"] == REPEAT
    assert [r.getMessage() for r in caplog.records if r.name.startswith("rag_attrib")] == [
        f"rag_attrib: {NO_TOOL_CALL} (logged once per handler)"
    ]
    assert len(recorder.calls) == 4
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


@pytest.mark.parametrize("separate", [False, True])
async def test_runs_of_one_agent_side_by_side_never_mix(
    index: VectorStoreIndex, recorder: Recorder, separate: bool
) -> None:
    """`asyncio.gather` over runs of the same agent on different questions (each with its own
    `Context`, or none given): each cites its own tool calls' nodes."""
    topics = ["copper", "violin", "glacier", "bamboo"]
    llm = MockFunctionCallingLLM(response_generator=tool_caller("facts"))
    agent = FunctionAgent(tools=[facts_tool(index)], llm=llm)
    runs = [
        agent.run(user_msg=QUESTIONS[t], **({"ctx": Context(agent)} if separate else {}))
        for t in topics
    ]
    outputs = await asyncio.gather(*runs)
    for topic, output in zip(topics, outputs, strict=True):
        check_facts(_attribution(output), [topic], reached=tool_call_nodes(output))
        assert _attribution(output)["question"] == QUESTIONS[topic]
    assert len(recorder.calls) == len(topics)
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


# --- tools that return plain text -----------------------------------------------------------


def _weather(city: str) -> str:
    """Today's weather in a city."""
    return f"It is sunny and mild in {city} today."


def _weather_caller(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
    if messages[-1].role == MessageRole.TOOL:
        return ChatMessage(role=MessageRole.ASSISTANT, content=messages[-1].content)
    call = ToolCallBlock(tool_call_id="w", tool_name="_weather", tool_kwargs={"city": "Oslo"})
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])


@pytest.mark.parametrize("how", ["instrument", "attribute_response"])
async def test_a_tool_returning_plain_text_gets_a_defined_result(
    hashing_attributor: Attributor, how: str
) -> None:
    """An agent whose tool returns a plain string (no nodes, nothing retrieved): the answer is
    untouched and the result says the tools returned text only, naming them; no exception."""
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(fn=_weather)],
        llm=MockFunctionCallingLLM(response_generator=_weather_caller),
    )
    if how == "instrument":
        instrument(hashing_attributor)
    try:
        output = await agent.run(user_msg="What is the weather in Oslo?")
    finally:
        uninstrument()
    assert str(output) == "It is sunny and mild in Oslo today."
    if how == "attribute_response":
        result = attribute_response(output, hashing_attributor)
        assert result.error == NO_TOOL_NODES.format(tools="_weather")
        assert result.sources == ()
    payload = _attribution(output)
    assert payload["error"] == NO_TOOL_NODES.format(tools="_weather")
    assert payload["answer"] == str(output)
    assert payload["sources"] == [] and payload["citations"] == []


async def test_attribute_response_on_a_run_with_no_tool_call(
    hashing_attributor: Attributor,
) -> None:
    """attribute_response on an agent output whose run called no tool says so in `error`."""
    llm = MockFunctionCallingLLM(
        response_generator=lambda messages, **kwargs: ChatMessage(
            role=MessageRole.ASSISTANT, content="Hello there."
        )
    )
    output = await FunctionAgent(tools=[_weather], llm=llm).run(user_msg="Hi!")
    result = attribute_response(output, hashing_attributor)
    assert result.error == NO_TOOL_CALL
    assert _attribution(output)["error"] == NO_TOOL_CALL


# --- several agents handing off, human in the loop, postprocessed retrievers ---------------


def _researcher(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
    """The researcher's LLM: call `facts` with the question, then hand off to the writer."""
    if not [m for m in messages if m.role == MessageRole.TOOL]:
        question = [m for m in messages if m.role == MessageRole.USER][-1].content
        call = ToolCallBlock(tool_call_id="r", tool_name="facts", tool_kwargs={"input": question})
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
    handoff = {"to_agent": "writer", "reason": "The facts are in; write the answer."}
    call = ToolCallBlock(tool_call_id="h", tool_name="handoff", tool_kwargs=handoff)
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])


def _writer(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
    """The writer's LLM (no tools): the facts the history shows, then an invented sentence."""
    seen = " ".join(m.content or "" for m in messages)
    facts = [f for f in FACT.values() if f in seen]
    return ChatMessage(role=MessageRole.ASSISTANT, content=" ".join([*facts[:1], INVENTED]))


@pytest.mark.parametrize("how", ["instrument", "attribute_response"])
async def test_agents_handing_off_cite_the_researchers_nodes(
    index: VectorStoreIndex, hashing_attributor: Attributor, how: str
) -> None:
    """AgentWorkflow with two agents: the researcher's tool retrieves, then it hands off to
    a writer with no tools, whose answer ends the run. The answer cites the researcher's
    nodes of that run (the workflow's output lists every agent's tool calls), once."""
    recorder = Recorder()
    researcher = FunctionAgent(
        name="researcher",
        description="Looks facts up.",
        tools=[facts_tool(index)],
        llm=MockFunctionCallingLLM(response_generator=_researcher),
        can_handoff_to=["writer"],
    )
    writer = FunctionAgent(
        name="writer",
        description="Writes the answer from the facts found.",
        llm=MockFunctionCallingLLM(response_generator=_writer),
    )
    workflow = AgentWorkflow(agents=[researcher, writer], root_agent="researcher")
    if how == "instrument":
        instrument(hashing_attributor, exporters=[recorder])
    try:
        handler = workflow.run(user_msg=QUESTIONS["octopus"])
        outputs = [e async for e in handler.stream_events() if isinstance(e, AgentOutput)]
        output = await handler
    finally:
        uninstrument()
    assert [o.current_agent_name for o in outputs][-1] == "writer"
    assert str(output) == f"{FACT['octopus']} {INVENTED}"
    facts = [c for c in output.tool_calls if c.tool_name == "facts"]
    assert len(facts) == 1 and [c.tool_name for c in output.tool_calls][-1] == "handoff"
    reached = {n.node.node_id for n in facts[0].tool_output.raw_output.source_nodes}
    if how == "attribute_response":
        attribute_response(output, hashing_attributor)
    else:
        assert len(recorder.calls) == 1
    check_facts(_attribution(output), ["octopus"], reached=reached)
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


@pytest.mark.parametrize("wait", ["in_stream", "paused"])
async def test_a_tool_waiting_for_a_human_is_attributed(
    index: VectorStoreIndex, recorder: Recorder, wait: str
) -> None:
    """A tool that asks a human first (`ctx.wait_for_event(HumanResponseEvent, waiter_event=
    InputRequiredEvent(...))`, as LlamaIndex's human-in-the-loop tutorial writes it), then
    queries. The caller answers from `stream_events()`, or ("paused") saves the Context,
    cancels the run and resumes it later from the saved Context: the run that ends cites the
    nodes the query engine read after the wait; the cancelled one exports nothing. A refusal
    leaves nothing to cite, and says so."""
    from llama_index.core.workflow import (
        HumanResponseEvent,
        InputRequiredEvent,
        JsonPickleSerializer,
    )

    engine = index.as_query_engine(llm=ReadingLLM(), similarity_top_k=2)
    sources: list[str] = []

    async def ask(ctx: Context, input: str) -> str:
        """Look facts up once a human agrees."""
        waiter = InputRequiredEvent(prefix=f"Look up {input!r}? ")
        answer = await ctx.wait_for_event(HumanResponseEvent, waiter_id=input, waiter_event=waiter)
        if answer.response != "yes":
            return "The user said no."
        response = await engine.aquery(input)
        sources.extend(n.node.node_id for n in response.source_nodes)
        return str(response)

    # FunctionTool finds its Context parameter by comparing the annotation with `Context`;
    # this module's `from __future__ import annotations` made it the string "Context".
    ask.__annotations__["ctx"] = Context

    async def run(reply: str) -> AgentOutput:
        exported, read = len(recorder.calls), len(sources)
        llm = MockFunctionCallingLLM(response_generator=tool_caller("ask"))
        agent = FunctionAgent(tools=[FunctionTool.from_defaults(async_fn=ask)], llm=llm)
        handler = agent.run(user_msg=QUESTIONS["violin"])
        async for event in handler.stream_events():
            if isinstance(event, InputRequiredEvent) and wait == "paused":
                # the app stores the run while the human decides (the pickle serializer:
                # the agent's memory is no JSON)
                saved = handler.ctx.to_dict(serializer=JsonPickleSerializer())
                await handler.cancel_run()
                break
            if isinstance(event, InputRequiredEvent):
                await asyncio.sleep(0.01)  # the human takes a while
                handler.ctx.send_event(HumanResponseEvent(response=reply))
        if wait == "paused":
            assert (len(recorder.calls), len(sources)) == (exported, read)
            restored = Context.from_dict(agent, saved, serializer=JsonPickleSerializer())
            handler = agent.run(ctx=restored)
            handler.ctx.send_event(HumanResponseEvent(response=reply))
        output: AgentOutput = await handler
        return output

    output = await run("yes")
    check_facts(_attribution(output), ["violin"], reached=set(sources))
    assert len(recorder.calls) == 1
    refused = await run("no")
    assert _attribution(refused)["error"] == NO_TOOL_NODES.format(tools="ask")
    assert len(recorder.calls) == 2
    assert open_records() == {"units": 0, "spans": 0, "writers": 0}


@pytest.mark.parametrize("shape", ["query_engine", "retriever_tool"])
async def test_nodes_a_similarity_cutoff_drops_are_never_cited(
    index: VectorStoreIndex, recorder: Recorder, shape: str
) -> None:
    """`SimilarityPostprocessor` on a query engine, or on an agent's `RetrieverTool`: only
    the nodes above the cutoff are sources; with every node dropped, `error` says that the
    postprocessors left none (the answer is LlamaIndex's "Empty Response"), not that the
    engine returned no nodes."""
    from llama_index.core.postprocessor import SimilarityPostprocessor

    from rag_attrib.integrations.llamaindex._read import NO_NODES_KEPT

    def ask(cutoff: float) -> Any:
        cut = [SimilarityPostprocessor(similarity_cutoff=cutoff)]
        if shape == "query_engine":
            engine = index.as_query_engine(
                llm=ReadingLLM(), similarity_top_k=4, node_postprocessors=cut
            )
            return engine.aquery(QUESTIONS["coffee"])
        tool = RetrieverTool.from_defaults(
            index.as_retriever(similarity_top_k=4), name="facts", node_postprocessors=cut
        )
        llm = MockFunctionCallingLLM(response_generator=tool_caller("facts"))
        return FunctionAgent(tools=[tool], llm=llm).run(user_msg=QUESTIONS["coffee"])

    def kept(output: Any) -> set[str]:
        if shape == "query_engine":
            return {n.node.node_id for n in output.source_nodes}
        return {n.node.node_id for n in output.tool_calls[0].tool_output.raw_output}

    output = await ask(0.2)
    payload = output.metadata["attribution"] if shape == "query_engine" else output["attribution"]
    assert 0 < len(kept(output)) < 4, "the cutoff must drop some of the four nodes"
    assert {s["id"] for s in payload["sources"]} == kept(output)
    sentence = next(s for s in payload["answer_sentences"] if s["text"] == FACT["coffee"])
    files = {s["id"]: s["metadata"]["file_name"] for s in payload["sources"]}
    assert files[sentence["citations"][0]["source_id"]] == "coffee.txt"
    if shape == "query_engine":
        empty = await ask(0.999)
        assert str(empty) == "Empty Response" and not empty.source_nodes
        assert empty.metadata["attribution"]["error"] == NO_NODES_KEPT.format(n=4)
