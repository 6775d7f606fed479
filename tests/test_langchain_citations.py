"""LangChain: the citations an answer carries are checked (and optionally repaired) in the chain.

Real LCEL chains, a real LangGraph graph, real `with_structured_output`; only the chat model is
a stand-in that reads its prompt and cites the way a careless LLM does.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langgraph")

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnablePassthrough
from langgraph.graph import START, StateGraph
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from rag_attrib import AttributionResult, Attributor, CitationReport
from rag_attrib.integrations import _citations, _given
from rag_attrib.integrations.langchain import AttributionCallbackHandler, with_attribution

DOCS = [
    Document(page_content="The Hobart harbour museum was founded in 1896.", id="doc-hobart"),
    Document(page_content="Bremen's river port handles the most cargo.", id="doc-bremen"),
    Document(
        page_content="Penguins live in the southern hemisphere and cannot fly.", id="doc-peng"
    ),
]
QUESTION = "Tell me about the museum, the port and penguins."
# Sentence 1 cites the right document, sentence 2 the wrong one, sentence 3 one that does not
# exist (three were retrieved).
MARKED = (
    "The Hobart harbour museum was founded in 1896 [1]. "
    "Bremen's river port handles the most cargo [1]. "
    "Penguins live in the southern hemisphere and cannot fly [7]."
)
REPAIRED = (
    "The Hobart harbour museum was founded in 1896 [1]. "
    "Bremen's river port handles the most cargo [2]. "
    "Penguins live in the southern hemisphere and cannot fly."
)
EXPECTED = [
    ("[1]", "doc-hobart", "correct"),
    ("[1]", "doc-hobart", "wrong_source"),
    ("[7]", None, "dangling"),
]


class StaticRetriever(BaseRetriever):
    """Returns the same documents for every query."""

    docs: list[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return list(self.docs)


def numbered(docs: list[Document]) -> str:
    return "\n\n".join(f"Source {i + 1}:\n{d.page_content}" for i, d in enumerate(docs))


PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer from the sources and cite them as [n].\n\n{context}"),
        ("human", "{question}"),
    ]
)


def lcel_chain(model: BaseChatModel, *, parse: bool = True) -> Runnable[Any, Any]:
    """The classic LCEL RAG chain: retriever | format | prompt | model (| StrOutputParser)."""
    retriever = StaticRetriever(docs=DOCS)
    chain = {"context": retriever | numbered, "question": RunnablePassthrough()} | PROMPT | model
    return chain | StrOutputParser() if parse else chain


def fake(*answers: Any) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter(answers))


def verdicts(check: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [(m["text"], m["source_id"], m["verdict"]) for m in check["markers"]]


# `attributor` (the hashing attributor) comes from conftest.py.


def test_lcel_chain_markers_get_verdicts(attributor):
    """A classic LCEL chain's [n] markers are checked: right, wrong (with the document that
    backs the claim), dangling; the typed report rides on the result as well."""
    seen: list[AttributionResult] = []
    cited = with_attribution(lcel_chain(fake(MARKED)), attributor, on_result=seen.append)
    out = cited.invoke(QUESTION)
    assert out["answer"] == MARKED  # not asked to repair: the text is the LLM's
    check = out["attribution"]["citation_check"]
    assert check["schema"] == "rag_attrib.citations/1"
    assert check["numbering"] == "1-based"
    assert verdicts(check) == EXPECTED
    assert check["markers"][1]["suggested_source_id"] == "doc-bremen"
    assert check["markers"][2]["suggested_source_id"] == "doc-peng"
    report = seen[0].citation_check
    assert isinstance(report, CitationReport)
    assert [m.verdict for m in report.markers] == [v for _, _, v in EXPECTED]
    assert report.result is not None and report.result.answer == MARKED
    assert "citation_repair" not in out["attribution"]


@pytest.mark.parametrize("stream", [False, True])
def test_source_n_markers_do_not_make_a_claim_unsupported(attributor, stream):
    """An LLM that cites "(Source 1)" as the prompt labels them: each sentence is attributed as
    its claim, with the supports the same answer without markers gets, and its marker checked
    as `check_citations` checks it; before, "1" read as a figure no source holds and flagged
    the true sentence. Invoked or streamed, the answer's offsets are those of the text the
    user got."""
    written = MARKED.replace("[1]", "(Source 1)").replace("[7]", "(Source 3)")
    plain = MARKED.replace(" [1]", "").replace(" [7]", "")
    cited = with_attribution(lcel_chain(fake(written)), attributor)
    if stream:
        assert "".join(cited.stream(QUESTION)) == written
    else:
        assert cited.invoke(QUESTION)["answer"] == written
    result = cited.last_result
    assert result is not None and result.answer == written
    alone = attributor.attribute(plain, [d.page_content for d in DOCS], QUESTION)
    assert [s.support for s in result.answer_sentences] == [
        s.support for s in alone.answer_sentences
    ]
    assert all(s.supported and not s.issues for s in result.answer_sentences)
    assert [written[s.start : s.end] for s in result.answer_sentences] == [
        s.text for s in result.answer_sentences
    ]
    assert [(m.text, m.verdict) for m in result.citation_check.markers] == [
        ("(Source 1)", "correct"),
        ("(Source 1)", "wrong_source"),
        ("(Source 3)", "correct"),
    ]


def test_no_markers_adds_nothing(attributor):
    """An answer without markers gets no citation_check, and its result none either."""
    plain = MARKED.replace(" [1]", "").replace(" [7]", "")
    cited = with_attribution(lcel_chain(fake(plain)), attributor, repair_citations=True)
    out = cited.invoke(QUESTION)
    assert out["answer"] == plain
    assert "citation_check" not in out["attribution"]
    assert "citation_repair" not in out["attribution"]
    assert cited.last_result is not None and cited.last_result.citation_check is None


def test_repair_option_rewrites_only_markers(attributor):
    """repair_citations=True returns the answer with the wrong marker replaced and the
    dangling one dropped, every other character as the LLM wrote it; the attribution keeps
    the LLM's text and lists each change with its offsets in both texts."""
    out = with_attribution(lcel_chain(fake(MARKED)), attributor, repair_citations=True).invoke(
        QUESTION
    )
    assert out["answer"] == REPAIRED
    attribution = out["attribution"]
    assert attribution["answer"] == MARKED
    repair = attribution["citation_repair"]
    assert repair["text"] == REPAIRED
    assert [(c["kind"], c["old_text"], c["new_text"]) for c in repair["changes"]] == [
        ("replaced", "1", "2"),
        ("dropped", " [7]", ""),
    ]
    for c in repair["changes"]:
        assert MARKED[c["old_start"] : c["old_end"]] == c["old_text"]
        assert REPAIRED[c["new_start"] : c["new_end"]] == c["new_text"]


def test_repair_option_on_a_message_chain(attributor):
    """A chain ending in the chat model returns a copy of its AIMessage whose content is
    repaired, carrying the check and the changes."""
    out = with_attribution(
        lcel_chain(fake(MARKED), parse=False), attributor, repair_citations=True
    ).invoke(QUESTION)
    assert isinstance(out, AIMessage)
    assert out.content == REPAIRED
    attribution = out.response_metadata["attribution"]
    assert attribution["citation_repair"]["text"] == REPAIRED
    assert verdicts(attribution["citation_check"]) == EXPECTED


def test_callback_handler_checks_markers_and_never_rewrites(attributor):
    """The passive handler on an unchanged chain: the returned message keeps the LLM's text
    and carries the check; `last_result` holds the typed report."""
    handler = AttributionCallbackHandler(attributor)
    out = lcel_chain(fake(MARKED), parse=False).invoke(QUESTION, config={"callbacks": [handler]})
    assert out.content == MARKED
    assert verdicts(out.response_metadata["attribution"]["citation_check"]) == EXPECTED
    report = handler.last_result.citation_check if handler.last_result else None
    assert report is not None
    assert [m.verdict for m in report.markers] == [v for _, _, v in EXPECTED]


class State(TypedDict):
    question: str
    context: list[Document]
    answer: Any


def tutorial_graph(model: BaseChatModel, *, structured: type | None = None) -> Any:
    """LangGraph's RAG tutorial graph: retrieve -> generate, state {question, context, answer}."""
    retriever = StaticRetriever(docs=DOCS)

    def retrieve(state: State) -> dict[str, Any]:
        return {"context": retriever.invoke(state["question"])}

    def generate(state: State) -> dict[str, Any]:
        if structured is None:
            messages = PROMPT.invoke(
                {"question": state["question"], "context": numbered(state["context"])}
            )
            return {"answer": model.invoke(messages).content}
        messages = ID_PROMPT.invoke(
            {"question": state["question"], "context": with_ids(state["context"])}
        )
        return {"answer": model.with_structured_output(structured).invoke(messages)}

    builder = StateGraph(State).add_sequence([retrieve, generate])
    builder.add_edge(START, "retrieve")
    return builder.compile()


def test_langgraph_tutorial_graph_markers_and_repair(attributor):
    """The tutorial graph's state answer is checked; with repair its `answer` is replaced in
    the returned state, the rest of the state untouched."""
    graph = tutorial_graph(fake(MARKED, MARKED))
    out = with_attribution(graph, attributor).invoke({"question": QUESTION})
    assert verdicts(out["attribution"]["citation_check"]) == EXPECTED
    assert out["answer"] == MARKED
    fixed = with_attribution(graph, attributor, repair_citations=True).invoke(
        {"question": QUESTION}
    )
    assert fixed["answer"] == REPAIRED
    assert fixed["context"] == DOCS and fixed["question"] == QUESTION


def test_messages_graph_repairs_its_last_answer(attributor):
    """A `MessagesState` graph: the last AI message is checked and, with repair, replaced by
    a copy with repaired markers; earlier messages are unchanged."""
    from langgraph.graph import MessagesState

    model = fake(MARKED)
    retriever = StaticRetriever(docs=DOCS)

    def answer(state: MessagesState) -> dict[str, Any]:
        question = state["messages"][-1].content
        context = numbered(retriever.invoke(str(question)))
        messages = PROMPT.invoke({"question": question, "context": context}).to_messages()
        return {"messages": [model.invoke(messages)]}

    builder = StateGraph(MessagesState)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    out = with_attribution(builder.compile(), attributor, repair_citations=True).invoke(
        {"messages": [("user", QUESTION)]}
    )
    first, last = out["messages"]
    assert first.content == QUESTION
    assert isinstance(last, AIMessage) and last.content == REPAIRED
    assert verdicts(out["attribution"]["citation_check"]) == EXPECTED


# --- structured citations -------------------------------------------------------------------

ID_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer from the articles and cite the Source IDs you used.\n\n{context}"),
        ("human", "{question}"),
    ]
)


def with_ids(docs: list[Document]) -> str:
    """LangChain's QA-with-citations how-to: 0-based "Source ID" labels."""
    return "\n\n".join(
        f"Source ID: {i}\nArticle Title: {d.id}\nArticle Snippet: {d.page_content}"
        for i, d in enumerate(docs)
    )


class CitedAnswer(BaseModel):
    """Answer the user question based only on the given sources, and cite the sources used."""

    answer: str = Field(description="The answer, based only on the given sources.")
    citations: list[int] = Field(description="The integer IDs of the SPECIFIC sources used.")


class CitedAnswerDict(TypedDict):
    """Answer the user question based only on the given sources, and cite the sources used."""

    answer: str
    citations: list[int]


class ToolCallingCiter(BaseChatModel):
    """Answers through the tool `with_structured_output` binds: the first snippet of its
    prompt, citing Source ID 0 (right), 1 (backs nothing said) and 9 (no such source)."""

    @property
    def _llm_type(self) -> str:
        return "tool-calling-citer"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Runnable[Any, BaseMessage]:
        self._tool = tools[0]
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        prompt = "\n".join(str(m.content) for m in messages)
        snippets = dict(re.findall(r"Source ID: (\d+)\n.*\nArticle Snippet: (.*)", prompt))
        args = {"answer": snippets["0"], "citations": [0, 1, 9]}
        name = getattr(self._tool, "__name__", "CitedAnswer")
        call = {"name": name, "args": args, "id": "call-1", "type": "tool_call"}
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage(content="", tool_calls=[call]))]
        )


@pytest.mark.parametrize("schema", [CitedAnswer, CitedAnswerDict])
def test_structured_cited_answer_in_the_tutorial_graph(attributor, schema):
    """`with_structured_output(CitedAnswer)` (pydantic or TypedDict): each cited Source ID
    gets a verdict, counted 0-based as the prompt's "Source ID: 0" labels say."""
    graph = tutorial_graph(ToolCallingCiter(), structured=schema)
    seen: list[AttributionResult] = []
    out = with_attribution(graph, attributor, on_result=seen.append).invoke({"question": QUESTION})
    answer = out["answer"]
    text = answer.answer if isinstance(answer, BaseModel) else answer["answer"]
    assert text == DOCS[0].page_content
    check = out["attribution"]["citation_check"]
    assert check["numbering"] == "0-based"
    assert verdicts(check) == [
        ("0", "doc-hobart", "correct"),
        ("1", "doc-bremen", "wrong_source"),
        ("9", None, "dangling"),
    ]
    assert check["markers"][1]["suggested_source_id"] == "doc-hobart"
    assert {m["style"] for m in check["markers"]} == {"structured"}
    assert check["markers"][0]["claim"]["text"] == text
    assert seen[0].citation_check is not None and seen[0].answer == text


def test_structured_output_as_the_chain_output(attributor):
    """An LCEL chain ending in `with_structured_output` returns the CitedAnswer object itself
    (nothing can be attached to it): the check is in the event, `last_result` and on_result;
    the repair option never touches a structured output."""
    chain = (
        {"context": StaticRetriever(docs=DOCS) | with_ids, "question": RunnablePassthrough()}
        | ID_PROMPT
        | ToolCallingCiter().with_structured_output(CitedAnswer)
    )
    cited = with_attribution(chain, attributor, repair_citations=True)
    out = cited.invoke(QUESTION)
    assert isinstance(out, CitedAnswer) and out.citations == [0, 1, 9]
    report = cited.last_result.citation_check if cited.last_result else None
    assert report is not None
    assert [m.verdict for m in report.markers] == ["correct", "wrong_source", "dangling"]


@pytest.mark.parametrize("schema", [CitedAnswer, CitedAnswerDict])
def test_structured_output_with_include_raw_carries_the_attribution(attributor, schema):
    """`with_structured_output(schema, include_raw=True)` returns `{"raw", "parsed",
    "parsing_error"}`: the answer and its ids are read from "parsed" and the dict gets
    "attribution" (it said "no answer found" for a pydantic schema and checked no ids)."""
    chain = (
        {"context": StaticRetriever(docs=DOCS) | with_ids, "question": RunnablePassthrough()}
        | ID_PROMPT
        | ToolCallingCiter().with_structured_output(schema, include_raw=True)
    )
    out = with_attribution(chain, attributor).invoke(QUESTION)
    parsed = out["parsed"]
    assert (parsed.citations if isinstance(parsed, BaseModel) else parsed["citations"]) == [0, 1, 9]
    attribution = out["attribution"]
    assert attribution["error"] is None
    assert attribution["answer"] == DOCS[0].page_content
    assert [m["verdict"] for m in attribution["citation_check"]["markers"]] == [
        "correct",
        "wrong_source",
        "dangling",
    ]


def anthropic_message() -> AIMessage:
    """Claude's answer with citations on its text blocks (document_index counts from 0)."""

    def cite(k: int) -> dict[str, Any]:
        text = DOCS[k].page_content
        return {
            "type": "char_location",
            "cited_text": text,
            "document_index": k,
            "document_title": DOCS[k].id,
            "start_char_index": 0,
            "end_char_index": len(text),
        }

    return AIMessage(
        content=[
            {"type": "text", "text": "According to the sources, "},
            {
                "type": "text",
                "text": "the Hobart harbour museum was founded in 1896.",
                "citations": [cite(0)],
            },
            {"type": "text", "text": " "},
            {
                "type": "text",
                "text": "Bremen's river port handles the most cargo.",
                "citations": [cite(2)],
            },
            {"type": "text", "text": " "},
            {
                "type": "text",
                "text": "Penguins cannot fly.",
                "citations": [{**cite(2), "document_index": 5}],
            },
        ],
        response_metadata={"model_provider": "anthropic"},
    )


def test_anthropic_citation_blocks(attributor):
    """Anthropic-style `citations` on AIMessage text blocks: each cited document_index gets a
    verdict for its block's text; the message (a content list) is never rewritten."""
    message = anthropic_message()
    chain = lcel_chain(fake(message), parse=False)
    out = with_attribution(chain, attributor, repair_citations=True).invoke(QUESTION)
    assert out.content == message.content
    check = out.response_metadata["attribution"]["citation_check"]
    assert check["numbering"] == "0-based"
    assert verdicts(check) == [
        ("0", "doc-hobart", "correct"),
        ("2", "doc-peng", "wrong_source"),
        ("5", None, "dangling"),
    ]
    assert check["markers"][1]["suggested_source_id"] == "doc-bremen"
    blocks = [b["text"] for b in message.content if isinstance(b, dict)]
    assert check["markers"][1]["claim"]["text"] == blocks[3]
    assert {m["style"] for m in check["markers"]} == {"provider"}
    assert "citation_repair" not in out.response_metadata["attribution"]


def test_v1_annotations_are_read_too():
    """LangChain v1 standard blocks (`annotations` of type "citation", document_index in
    extras) name the same documents as Anthropic's native blocks."""
    v1 = anthropic_message().content_blocks
    native = _given.from_blocks(anthropic_message().content)
    assert any("annotations" in b for b in v1)
    assert _given.from_blocks(v1) == native
    assert native is not None and [x.label for x in native.spans] == ["0", "2", "5"]


# --- streams and faults ----------------------------------------------------------------------


def test_stream_is_never_rewritten_and_never_breaks(attributor):
    """A message stream passes through unchanged even with repair on; its last chunk carries
    the check and says what the repair would change."""
    cited = with_attribution(
        lcel_chain(fake(MARKED), parse=False), attributor, repair_citations=True
    )
    chunks = list(cited.stream(QUESTION))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert isinstance(total, AIMessageChunk)
    assert total.content == MARKED
    attribution = total.response_metadata["attribution"]
    assert verdicts(attribution["citation_check"]) == EXPECTED
    assert attribution["citation_repair"]["text"] == REPAIRED
    text = "".join(with_attribution(lcel_chain(fake(MARKED)), attributor).stream(QUESTION))
    assert text == MARKED


async def test_async_invoke_and_astream(attributor):
    """ainvoke repairs like invoke; astream of a text chain stays joinable."""
    cited = with_attribution(lcel_chain(fake(MARKED)), attributor, repair_citations=True)
    out = await cited.ainvoke(QUESTION)
    assert out["answer"] == REPAIRED
    parts = [
        c async for c in with_attribution(lcel_chain(fake(MARKED)), attributor).astream(QUESTION)
    ]
    assert "".join(parts) == MARKED


@pytest.mark.parametrize(
    "answer",
    [
        "Use `items[1]` to read it, see [docs](https://x.org/a[2]).",
        "```python\nrow[0] = 1\n```\nThe Hobart harbour museum was founded in 1896 [1].",
        "[1][2][99]",
        "[1",
        '<cite id="2">Bremen\'s river port handles the most cargo.',
        "Penguins cannot fly [0] [3] [4] [-1].",
    ],
)
def test_bad_markers_never_raise(attributor, answer):
    """Dangling, unbalanced, code-block and marker-only answers give a defined check (or
    none) and the chain's output, never an exception; repair keeps text outside markers."""
    out = with_attribution(lcel_chain(fake(answer)), attributor, repair_citations=True).invoke(
        QUESTION
    )
    attribution = out["attribution"]
    assert attribution["error"] is None
    check = attribution.get("citation_check")
    if check is not None:
        json.dumps(check)
        assert all(
            m["verdict"] in ("correct", "wrong_source", "unsupported", "dangling")
            for m in check["markers"]
        )
    if "```" in answer or "`items" in answer:
        assert out["answer"] == answer  # brackets in code and links are no citations


def test_a_failing_check_goes_to_error_and_the_chain_goes_on(attributor, monkeypatch, caplog):
    """A fault in the citation check never breaks the chain: the output and the attribution
    come back, the fault is in `error`, and one warning is logged."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("marker parser exploded")

    monkeypatch.setattr(_citations, "check_citations", broken)
    with caplog.at_level(logging.WARNING, logger="rag_attrib"):
        out = with_attribution(lcel_chain(fake(MARKED)), attributor, repair_citations=True).invoke(
            QUESTION
        )
    assert out["answer"] == MARKED
    attribution = out["attribution"]
    assert attribution["answer_sentences"]  # the attribution itself is kept
    assert attribution["error"] == "citation check failed: RuntimeError: marker parser exploded"
    assert "citation_check" not in attribution
    warnings = [r for r in caplog.records if "citations failed" in r.getMessage()]
    assert len(warnings) == 1


def test_the_attribution_round_trips_with_its_check(attributor):
    """The attached payload reads back (`AttributionResult.from_dict`) with an equal report."""
    cited = with_attribution(lcel_chain(fake(MARKED)), attributor)
    out = cited.invoke(QUESTION)
    back = AttributionResult.from_dict(json.loads(json.dumps(out["attribution"])))
    assert back.citation_check == cited.last_result.citation_check  # type: ignore[union-attr]
    assert back.citation_check is not None and back.citation_check.result is not None
    assert back.to_dict()["citation_check"] == out["attribution"]["citation_check"]


@pytest.mark.slow
@pytest.mark.parametrize("verdict", ["similarity", "verifier"])
def test_real_model_verdicts_in_a_chain(verdict):
    """With the bundled model (either verdict), the LCEL chain's markers get the same
    verdicts and the same repair: the check does not depend on which verdict is the default."""
    from rag_attrib import AttributionConfig

    attributor = Attributor(config=AttributionConfig(verdict=verdict))
    out = with_attribution(lcel_chain(fake(MARKED)), attributor, repair_citations=True).invoke(
        QUESTION
    )
    assert verdicts(out["attribution"]["citation_check"]) == EXPECTED
    assert out["answer"] == REPAIRED
