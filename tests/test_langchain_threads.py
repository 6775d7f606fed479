"""LangChain v1 agents in a thread with a checkpointer and `SummarizationMiddleware`: once the
earlier turns' messages (their tool results) are replaced by an LLM's summary, a follow-up
answered from that summary cites the documents the summary was made of, which the handler or
wrapper remembers per `thread_id`; the summary itself is never evidence, and threads never lend
each other documents. Also the docs' other ways of keeping a thread short: a `before_model`
middleware that trims the history, and `ContextEditingMiddleware` clearing old tool results.
Real `create_agent`, `InMemorySaver`, middleware and tool; only the chat models are fakes that
read their prompts (the summariser writes down the tool results).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("langchain.agents")

from _langchain import DOCS, QUESTION, ReaderChatModel, ReplyingChatModel, check
from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentState,
    ClearToolUsesEdit,
    ContextEditingMiddleware,
    SummarizationMiddleware,
    before_model,
)
from langchain_core.documents import Document
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from rag_attrib import Attributor
from rag_attrib.integrations.langchain import AttributionCallbackHandler, with_attribution

FERRY = "When does the Bergen ferry sail and what do tickets cost?"
FOLLOW_UP = "Tell me again, please. "
# The default summary prompt asks for the same sections every time: summaries open alike.
HEADER = (
    "## SESSION INTENT\nThe user wants facts about the places the search tool knows about, "
    "answered from the documents it returns, with nothing added from memory or guesswork.\n"
    "## SUMMARY\nThe search returned these passages:\n"
)
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower())) - {"the", "and", "when", "what", "did", "does", "do"}


@tool(response_format="content_and_artifact")
def search(query: str) -> tuple[str, list[Document]]:
    """Search the documents sharing two words with the query."""
    docs = [d for d in DOCS if len(_words(d.page_content) & _words(query)) >= 2]
    return "\n\n".join(d.page_content for d in docs), docs


class Summariser(ReplyingChatModel):
    """Writes the summary SummarizationMiddleware asks for: the tool results it was shown (as
    XML messages), and the passages of the summary it was shown, if any."""

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        shown = "\n".join(str(m.text) for m in messages)
        found = re.findall(r'<message type="tool"[^>]*>(.*?)</message>', shown, re.DOTALL)
        found += re.findall(r"passages:\n(.*?)</message>", shown, re.DOTALL)
        facts = [line for text in found for line in text.splitlines() if line.strip()]
        return AIMessage(content=HEADER + "\n".join(dict.fromkeys(facts)))


class ThreadReader(ReplyingChatModel):
    """Searches on a thread's first question; later answers from what the thread holds (its
    tool results, or the summary that replaced them), as `ReaderChatModel` answers."""

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        if len(messages) == 1:  # a new thread's question: search first
            call = {"name": "search", "args": {"query": str(messages[0].text)}, "id": "call-1"}
            message = AIMessage(content="", tool_calls=[call])
            return message
        return ReaderChatModel().reply(messages)


def summarising_agent() -> Any:
    """An agent whose thread is summarised once its history passes a few tokens: the second
    turn's first model call sees the summary and the new question, nothing else (turn 1 stays
    under 120 tokens, about 110, and a follow-up passes it, about 130-175)."""
    middleware = SummarizationMiddleware(
        model=Summariser(), trigger=("tokens", 120), keep=("messages", 1)
    )
    return create_agent(
        ThreadReader(), tools=[search], checkpointer=InMemorySaver(), middleware=[middleware]
    )


def _summarised(state: dict[str, Any]) -> None:
    """The tool results are gone: the state holds the summary, the question and the answer."""
    messages = state["messages"]
    assert not any(isinstance(m, ToolMessage) for m in messages)
    assert messages[0].additional_kwargs.get("lc_source") == "summarization"
    assert HEADER in str(messages[0].text)


def _turn(
    agent: Any,
    cited: Any,
    handler: AttributionCallbackHandler,
    config: Any,
    face: str,
    question: str,
) -> tuple[dict[str, Any], Any]:
    """Ask `question` in the thread of `config` through one face (the wrapper's invoke,
    ainvoke, stream or v3 event stream, or the agent with the handler): its state and result."""
    given = {"messages": [HumanMessage(question)]}
    if face == "invoke":
        return cited.invoke(given, config), cited.last_result
    if face == "ainvoke":
        return asyncio.run(cited.ainvoke(given, config)), cited.last_result
    if face == "stream":
        list(cited.stream(given, config, stream_mode="updates"))
        return agent.get_state(config).values, cited.last_result
    if face == "stream_events":
        for _ in cited.stream_events(given, config, version="v3"):
            pass
        return agent.get_state(config).values, cited.last_result
    state = agent.invoke(given, {**config, "callbacks": [handler]})
    return state, handler.last_result


@pytest.mark.parametrize(
    "face", ["invoke", "ainvoke", "stream", "stream_events", "mixed", "handler"]
)
def test_a_follow_up_answered_from_a_summary_cites_the_documents_under_it(
    attributor: Attributor, face: str
) -> None:
    """Turn 2 and 3 are answered from an LLM's summary of turn 1's tool results: each cites the
    documents turn 1 retrieved, and the invented sentence stays unsupported (it said "no
    retriever or tool returned documents" and cited nothing). "mixed" reads turn 1 as a v3
    event stream and the follow-ups with invoke and stream: one wrapper, one thread."""
    agent = summarising_agent()
    cited = with_attribution(agent, attributor)
    handler = AttributionCallbackHandler(attributor)
    config: Any = {"configurable": {"thread_id": f"summary-{face}"}}

    faces = iter(["stream_events", "invoke", "stream"] if face == "mixed" else [face] * 3)

    state, result = _turn(agent, cited, handler, config, next(faces), QUESTION)
    assert any(isinstance(m, ToolMessage) for m in state["messages"])
    check(result)
    for _ in range(2):  # turn 3's summary is made of turn 2's: it still rests on the documents
        state, result = _turn(agent, cited, handler, config, next(faces), FOLLOW_UP + QUESTION)
        _summarised(state)
        check(result)
        assert {s.id for s in result.sources} == {"doc-bridge", "doc-tower"}


def test_threads_never_lend_documents_to_each_other(attributor: Attributor) -> None:
    """Two threads through one wrapper and one handler, their follow-ups run at once (batch,
    abatch): each cites only what its own thread retrieved, though their summaries open
    alike."""
    agent = summarising_agent()
    cited = with_attribution(agent, attributor)
    handler = AttributionCallbackHandler(attributor)
    questions = {"halden": QUESTION, "bergen": FERRY}
    wanted = {"halden": {"doc-bridge", "doc-tower"}, "bergen": {"doc-ferry"}}

    def configs(prefix: str) -> list[Any]:
        return [{"configurable": {"thread_id": f"{prefix}-{name}"}} for name in questions]

    for prefix, extra in (("wrapped", {}), ("handled", {"callbacks": [handler]})):
        runner: Any = agent if extra else cited
        firsts = [{"messages": [HumanMessage(q)]} for q in questions.values()]
        follow_ups = [{"messages": [HumanMessage(FOLLOW_UP + q)]} for q in questions.values()]
        runner.batch(firsts, [{**c, **extra} for c in configs(prefix)])
        states = runner.batch(follow_ups, [{**c, **extra} for c in configs(prefix)])
        asyncio.run(runner.abatch(follow_ups, [{**c, **extra} for c in configs(prefix)]))
        for state in states:
            _summarised(state)
        results = list(handler.results.values())[-4:] if extra else None
        if results is None:
            results = [s["attribution"] for s in states]
            got = [{s["id"] for s in payload["sources"]} for payload in results]
            assert got == list(wanted.values())
        else:
            for r in results:
                about = "bergen" if "ferry" in r.answer else "halden"
                assert {s.id for s in r.sources} == wanted[about], r.answer
                assert r.error is None


@before_model
def keep_the_last_two(state: AgentState[Any], runtime: Any) -> dict[str, Any] | None:
    """The docs' "trim messages" middleware: before a follow-up, only the last answer and the
    new question stay (the tool results go)."""
    messages = state["messages"]
    if len(messages) <= 4 or isinstance(messages[-1], ToolMessage):
        return None
    return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *messages[-2:]]}


@pytest.mark.parametrize("face", ["invoke", "handler"])
def test_a_follow_up_answered_from_the_last_answer_after_trimming(
    attributor: Attributor, face: str
) -> None:
    """Trimmed to the last answer and the question, the follow-up is answered from the first
    answer, which an LLM wrote from the first turn's documents: it cites those documents."""
    agent = create_agent(
        ThreadReader(), tools=[search], checkpointer=InMemorySaver(), middleware=[keep_the_last_two]
    )
    cited = with_attribution(agent, attributor)
    handler = AttributionCallbackHandler(attributor)
    config: Any = {"configurable": {"thread_id": f"trimmed-{face}"}}
    for question in (QUESTION, FOLLOW_UP + QUESTION):
        state, result = _turn(agent, cited, handler, config, face, question)
        check(result)
    assert [type(m) for m in state["messages"]] == [AIMessage, HumanMessage, AIMessage]


@pytest.mark.parametrize("face", ["invoke", "handler"])
def test_a_follow_up_whose_tool_results_context_editing_cleared(
    attributor: Attributor, face: str
) -> None:
    """`ContextEditingMiddleware(ClearToolUsesEdit)` shows the follow-up's model "[cleared]" in
    place of turn 1's tool result (the state keeps it): answered from the first answer, it
    cites turn 1's documents."""
    seen: list[str] = []

    class Watching(ThreadReader):
        def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
            seen.extend(str(m.text) for m in messages if isinstance(m, ToolMessage))
            return super()._generate(messages, *args, **kwargs)

    editing = ContextEditingMiddleware(edits=[ClearToolUsesEdit(trigger=130, keep=0)])
    agent = create_agent(
        Watching(), tools=[search], checkpointer=InMemorySaver(), middleware=[editing]
    )
    cited = with_attribution(agent, attributor)
    handler = AttributionCallbackHandler(attributor)
    config: Any = {"configurable": {"thread_id": f"edited-{face}"}}
    for question in (QUESTION, FOLLOW_UP + QUESTION):
        check(_turn(agent, cited, handler, config, face, question)[1])
    assert seen[-1] == "[cleared]" and seen[0] != "[cleared]"


def test_a_follow_up_the_handler_did_not_see_begin_says_why_nothing_is_cited(
    attributor: Attributor,
) -> None:
    """A handler that sees only the summarised follow-up cannot know what the summary was made
    of: it cites nothing (never the summary), and `error` says the answer came from a summary
    and how to have its documents cited. A thread answered with no documents and no summary
    gets the plain "nothing to cite" error."""
    agent = summarising_agent()
    config: Any = {"configurable": {"thread_id": "unseen"}}
    agent.invoke({"messages": [HumanMessage(QUESTION)]}, config)
    handler = AttributionCallbackHandler(attributor)
    state = agent.invoke(
        {"messages": [HumanMessage(FOLLOW_UP + QUESTION)]}, {**config, "callbacks": [handler]}
    )
    _summarised(state)
    result = handler.last_result
    assert result is not None and result.sources == ()
    assert result.error is not None and "SummarizationMiddleware" in result.error
    assert "same handler or wrapper" in result.error and "add_sources" in result.error
    assert not any(s.citations for s in result.answer_sentences)

    plain = create_agent(ReaderChatModel(), tools=[], checkpointer=InMemorySaver())
    for _ in range(2):
        plain.invoke({"messages": [HumanMessage(QUESTION)]}, {**config, "callbacks": [handler]})
        result = handler.last_result
        assert result is not None and result.error is not None
        assert result.error.startswith("no retriever or tool returned documents in this call, so")
