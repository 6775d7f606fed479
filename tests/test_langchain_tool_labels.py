"""LangChain: an agent whose search tool runs twice, each `ToolMessage` labelling its passages
"Source 1:", "Source 2:", ... afresh, so the agent's `[1]` can name either call's first
passage. Each marker is read as the passage so labelled that backs its claim (else the latest
call's), and `citation_check.error` names the ambiguous numbers. Real `create_agent`, LangGraph
`ToolNode` graphs and tools; only the chat model is a stand-in that reads its prompt.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("langchain.agents")

from _langchain import DOCS, INVENTED, ReplyingChatModel
from langchain.agents import create_agent
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from rag_attrib import AttributionResult
from rag_attrib.integrations.langchain import AttributionCallbackHandler, with_attribution

MARKET = Document(
    id="doc-market",
    page_content="The Halden market opens at dawn. It sells fish and bread.",
    metadata={"source": "market.txt"},
)
BRIDGE, TOWER, FERRY = DOCS
# what each query finds, in the order the tool labels it: "1" names the bridge in the first
# call and the tower in the second, "2" the ferry in both, "3" the market in the first only
FOUND = {"bridge": [BRIDGE, FERRY, MARKET], "tower": [TOWER, FERRY]}
FACTS = {
    "bridge": "The Halden bridge opened in 1932.",
    "tower": "The Halden tower was painted red in 1950.",
    "market": "The Halden market opens at dawn.",
}


@tool(response_format="content_and_artifact")
def search(query: str) -> tuple[str, list[Document]]:
    """Search the town notes; each passage is labelled "Source n:"."""
    docs = FOUND[query]
    text = "\n\n".join(f"Source {k}:\n{d.page_content}" for k, d in enumerate(docs, 1))
    return text, docs


def label_of(shown: str, fact: str) -> int:
    """The label a tool output put on the passage holding `fact`."""
    return int(re.findall(r"Source (\d+):", shown[: shown.index(fact)])[-1])


class TwiceSearcher(ReplyingChatModel):
    """Searches each of `queries` in turn, then answers each fact cited by the label its own
    call gave it (`wrong`: the bridge cited [2]), and an invented sentence cited [2]."""

    queries: tuple[str, ...] = ("bridge", "tower")
    wrong: bool = False

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        shown = [str(m.text) for m in messages if isinstance(m, ToolMessage)]
        if len(shown) < len(self.queries):
            query = self.queries[len(shown)]
            call = {"name": "search", "args": {"query": query}, "id": f"call-{len(shown)}"}
            message = AIMessage(content="", tool_calls=[call])
        else:
            cited = []
            for topic in ("bridge", "tower", "market"):
                fact = FACTS[topic]
                where = next((text for text in shown if fact in text), None)
                if where is not None:
                    label = 2 if self.wrong and topic == "bridge" else label_of(where, fact)
                    cited.append(f"{fact[:-1]} [{label}].")
            message = AIMessage(content=" ".join([*cited, f"{INVENTED[:-1]} [2]."]))
        return message


def toolnode_graph(model: BaseChatModel) -> Any:
    """The LangGraph agent loop written out: a model node, a `ToolNode`, `tools_condition`."""

    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_node("tools", ToolNode([search]))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition)
    builder.add_edge("tools", "model")
    return builder.compile()


def app(shape: str, model: BaseChatModel) -> Any:
    return create_agent(model, [search]) if shape == "agent" else toolnode_graph(model)


def run(
    shape: str, face: str, mode: str, attributor: Any, model: BaseChatModel, **options: Any
) -> AttributionResult:
    """The result of one question to the app, through `face` ("handler" or "with_attribution")
    and `mode` ("invoke" or "stream")."""
    inputs = {"messages": [("user", "Tell me about the bridge and the tower.")]}
    graph = app(shape, model)
    if face == "handler":
        handler = AttributionCallbackHandler(attributor, **options)
        config: Any = {"callbacks": [handler]}
        out = (
            graph.invoke(inputs, config) if mode == "invoke" else list(graph.stream(inputs, config))
        )
        result = handler.last_result
    else:
        wrapped = with_attribution(graph, attributor, **options)
        out = wrapped.invoke(inputs) if mode == "invoke" else list(wrapped.stream(inputs))
        result = wrapped.last_result
    assert out
    assert result is not None
    return result


def verdicts(result: AttributionResult) -> list[tuple[str, str | None, str]]:
    check = result.citation_check
    assert check is not None
    return [(m.text, m.source_id, m.verdict) for m in check.markers]


@pytest.mark.parametrize("mode", ["invoke", "stream"])
@pytest.mark.parametrize("face", ["handler", "with_attribution"])
@pytest.mark.parametrize("shape", ["agent", "toolnode"])
def test_a_tool_called_twice_each_counting_from_1(attributor, shape, face, mode):
    """Each [1] is read as the call's passage 1 that backs its claim (the bridge in the first
    call, the tower in the second); [3], which only the first call used, is read without
    comment; the invented sentence's [2] is read as the ferry and is unsupported. The error
    names [1] alone."""
    result = run(shape, face, mode, attributor, TwiceSearcher())
    assert result.error is None
    assert verdicts(result)[:3] == [
        ("[1]", "doc-bridge", "correct"),
        ("[1]", "doc-tower", "correct"),
        ("[3]", "doc-market", "correct"),
    ]
    assert verdicts(result)[3][:2] == ("[2]", "doc-ferry")
    assert verdicts(result)[3][2] != "correct"
    check = result.citation_check
    assert check is not None and check.numbering == "1-based"
    assert check.error is not None and "ambiguous citation numbers [1]:" in check.error
    assert "[2]" not in check.error and "[3]" not in check.error
    # the latest call's passages first, in its label order, then those only the first showed
    assert [s.id for s in result.sources] == ["doc-tower", "doc-ferry", "doc-bridge", "doc-market"]


async def test_a_tool_called_twice_async(attributor):
    """The same reading through `ainvoke` of the wrapper and the handler."""
    inputs = {"messages": [("user", "Tell me about the bridge and the tower.")]}
    wrapped = with_attribution(create_agent(TwiceSearcher(), [search]), attributor)
    await wrapped.ainvoke(inputs)
    handler = AttributionCallbackHandler(attributor)
    await toolnode_graph(TwiceSearcher()).ainvoke(inputs, {"callbacks": [handler]})
    for result in (wrapped.last_result, handler.last_result):
        assert result is not None
        assert [v[1:] for v in verdicts(result)[:2]] == [
            ("doc-bridge", "correct"),
            ("doc-tower", "correct"),
        ]


@pytest.mark.parametrize("face", ["handler", "with_attribution"])
def test_a_number_that_backs_its_claim_in_neither_call_is_wrong(attributor, face):
    """The bridge cited [2]: the ferry in both calls, so no reading backs it."""
    result = run("agent", face, "invoke", attributor, TwiceSearcher(wrong=True))
    assert verdicts(result)[0][:2] == ("[2]", "doc-ferry")
    assert verdicts(result)[0][2] != "correct"
    assert verdicts(result)[1] == ("[1]", "doc-tower", "correct")


@pytest.mark.parametrize("shape", ["agent", "toolnode"])
def test_the_same_search_twice_stays_one_numbering(attributor, shape):
    """Both calls show the same passages under the same labels: one numbering, no ambiguity."""
    result = run(
        shape, "with_attribution", "invoke", attributor, TwiceSearcher(queries=("bridge",) * 2)
    )
    assert result.error is None
    check = result.citation_check
    assert check is not None and check.numbering == "1-based" and check.error is None
    assert verdicts(result)[:2] == [
        ("[1]", "doc-bridge", "correct"),
        ("[3]", "doc-market", "correct"),
    ]


@pytest.mark.parametrize("face", ["handler", "with_attribution"])
def test_a_users_numbering_wins(attributor, face):
    """citation_numbering="1-based": [n] is the n-th source (the latest call's first), with no
    reading by label and no note of ambiguity."""
    result = run("agent", face, "invoke", attributor, TwiceSearcher(), citation_numbering="1-based")
    check = result.citation_check
    assert check is not None and check.numbering == "1-based"
    assert check.error is None or "ambiguous" not in check.error
    assert [m.source_id for m in check.markers] == [
        "doc-tower",
        "doc-tower",
        "doc-bridge",
        "doc-ferry",
    ]
    assert verdicts(result)[0][2] != "correct"


@tool(response_format="content_and_artifact")
def sorted_search(query: str) -> tuple[str, list[Document]]:
    """Search the town notes; the passages are shown labelled by file name order."""
    docs = [BRIDGE, TOWER, FERRY]  # the artifact in retrieval order
    shown = sorted(docs, key=lambda d: d.metadata["source"], reverse=True)
    text = "\n\n".join(f"Source {k}:\n{d.page_content}" for k, d in enumerate(shown, 1))
    return text, docs


class SortedReader(TwiceSearcher):
    """Calls `sorted_search` once, then cites the bridge [3] and the tower [1], as its
    output labelled them."""

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        if any(isinstance(m, ToolMessage) for m in messages):
            text = f"{FACTS['bridge'][:-1]} [3]. {FACTS['tower'][:-1]} [1]."
            return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])
        call = {"name": "sorted_search", "args": {"query": "any"}, "id": "call-0"}
        message = AIMessage(content="", tool_calls=[call])
        return ChatResult(generations=[ChatGeneration(message=message)])


@pytest.mark.parametrize("face", ["handler", "with_attribution"])
def test_one_tool_output_labelling_in_its_own_order(attributor, face):
    """One call whose text labels its documents in another order than its artifact: the
    sources follow the labels, so [n] names the document labelled n."""
    agent = create_agent(SortedReader(), [sorted_search])
    inputs = {"messages": [("user", "Tell me about the bridge and the tower.")]}
    if face == "handler":
        handler = AttributionCallbackHandler(attributor)
        agent.invoke(inputs, {"callbacks": [handler]})
        result = handler.last_result
    else:
        wrapped = with_attribution(agent, attributor)
        wrapped.invoke(inputs)
        result = wrapped.last_result
    assert result is not None and result.error is None
    assert [s.id for s in result.sources] == ["doc-tower", "doc-ferry", "doc-bridge"]
    assert verdicts(result) == [("[3]", "doc-bridge", "correct"), ("[1]", "doc-tower", "correct")]
    check = result.citation_check
    assert check is not None and check.numbering == "1-based" and check.error is None
