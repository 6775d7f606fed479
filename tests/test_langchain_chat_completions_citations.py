"""LangChain: OpenAI Chat Completions `url_citation` annotations, nested as that API returns
them: `message.annotations = [{"type": "url_citation", "url_citation": {"url", "title",
"start_index", "end_index"}}]`, offsets in the message's string content.

langchain-openai 1.7.4 drops them (`_convert_dict_to_message` reads no `annotations`);
langchain-litellm 0.11.2 keeps them on the AIMessage as `additional_kwargs["annotations"]`,
content a string (`_convert_dict_to_message`, and `_convert_delta_to_message_chunk` for a
stream). The stand-in chat model answers with such a message; chain, retriever, prompt,
parser and agent are real.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain_core")

from _checks import lone_marker
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnablePassthrough

from rag_attrib.integrations._given import from_annotations
from rag_attrib.integrations.langchain import with_attribution

MUSEUM = "https://www.hobart-museum.example/history/"
PORT = "https://news.example.com/bremen-port"
BIRDS = "https://birds.example.org/penguins"
PAGES = [
    Document(
        id="museum",
        page_content="The Hobart harbour museum was founded in 1896.",
        metadata={"url": MUSEUM},
    ),
    Document(
        id="port",
        page_content="Bremen's river port handles the most cargo.",
        metadata={"url": PORT},
    ),
    Document(
        id="birds",
        page_content="Penguins live in the southern hemisphere and cannot fly.",
        metadata={"url": BIRDS},
    ),
]
CLAIMS = [
    "The Hobart harbour museum was founded in 1896.",
    " Bremen's river port handles the most cargo.",
    " Penguins cannot fly.",
]
ANSWER = "".join(CLAIMS)
# the right page (OpenAI adds utm_source), the wrong page, a page never retrieved
CITED = [MUSEUM + "?utm_source=openai", BIRDS, "https://elsewhere.example/penguins"]
EXPECTED = [
    (CITED[0], "museum", "correct"),
    (CITED[1], "birds", "wrong_source"),
    (CITED[2], None, "dangling"),
]


def nested(url: str, start: Any, end: Any, title: str = "a page") -> dict[str, Any]:
    return {
        "type": "url_citation",
        "url_citation": {"url": url, "title": title, "start_index": start, "end_index": end},
    }


def annotations() -> list[dict[str, Any]]:
    out = []
    at = 0
    for claim, url in zip(CLAIMS, CITED, strict=True):
        out.append(nested(url, at, at + len(claim)))
        at += len(claim)
    return out


def litellm_message(content: str = ANSWER, notes: Any = None) -> AIMessage:
    """The AIMessage langchain-litellm builds from a Chat Completions reply."""
    return AIMessage(
        content=content,
        additional_kwargs={"annotations": annotations() if notes is None else notes},
        response_metadata={"model_name": "gpt-4o-search-preview", "model_provider": "litellm"},
    )


class PagesRetriever(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return list(PAGES)


PROMPT = ChatPromptTemplate.from_messages([("system", "{context}"), ("human", "{question}")])


def chain(message: AIMessage, parse: bool = False) -> Runnable[Any, Any]:
    context = PagesRetriever() | (lambda docs: "\n\n".join(d.page_content for d in docs))
    model = GenericFakeChatModel(messages=iter([message]))
    steps = {"context": context, "question": RunnablePassthrough()} | PROMPT | model
    return steps | StrOutputParser() if parse else steps


def verdicts(check: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [(m["label"], m["source_id"], m["verdict"]) for m in check["markers"]]


# `attributor` (the hashing attributor) comes from conftest.py.


def test_nested_url_citations_get_verdicts(attributor):
    """A chain ending in the model: each annotation's URL names the retrieved page holding
    it, its offsets the claim; the message comes back with its content untouched."""
    out = with_attribution(chain(litellm_message()), attributor).invoke("Tell me.")
    assert out.content == ANSWER
    assert out.additional_kwargs["annotations"] == annotations()
    check = out.response_metadata["attribution"]["citation_check"]
    assert verdicts(check) == EXPECTED
    assert check["markers"][1]["suggested_source_id"] == "port"
    assert [m["claim"]["text"] for m in check["markers"][:2]] == CLAIMS[:2]
    assert {m["style"] for m in check["markers"]} == {"provider"}


async def test_behind_a_parser_and_in_a_batch(attributor):
    """Behind StrOutputParser the answer is a str: the model's message still carries them."""
    cited = with_attribution(chain(litellm_message(), parse=True), attributor)
    out = await cited.ainvoke("Tell me.")
    assert out["answer"] == ANSWER
    assert verdicts(out["attribution"]["citation_check"]) == EXPECTED


def test_a_streamed_reply_with_its_annotations_last(attributor):
    """Streamed, the annotations come in a chunk of their own after the text (a delta's
    `annotations`); the stream's last chunk carries the check."""
    chunks = list(with_attribution(chain(litellm_message()), attributor).stream("Tell me."))
    text = "".join(c.content for c in chunks if isinstance(c, AIMessageChunk))
    assert text == ANSWER
    check = chunks[-1].response_metadata["attribution"]["citation_check"]
    assert verdicts(check) == EXPECTED


def test_the_flat_shape_beside_a_string_is_read_too(attributor):
    """Some OpenAI-compatible servers flatten the fields: read the same."""
    flat = [{"type": "url_citation", **a["url_citation"]} for a in annotations()]
    out = with_attribution(chain(litellm_message(notes=flat)), attributor).invoke("Tell me.")
    assert verdicts(out.response_metadata["attribution"]["citation_check"]) == EXPECTED


def test_the_openai_sdk_dumps_this_shape():
    """The OpenAI SDK's own ChatCompletionMessage dumps the nested shape read here."""
    chat = pytest.importorskip("openai.types.chat")
    message = chat.ChatCompletionMessage.model_validate(
        {"role": "assistant", "content": ANSWER, "annotations": annotations()}
    )
    dumped = message.model_dump(exclude_none=True)["annotations"]
    assert dumped == annotations()
    given = from_annotations(message.annotations, ANSWER)  # SDK objects read by their fields
    assert given is not None
    starts = [ANSWER.index(c) for c in CLAIMS]
    assert [(x.label, x.start, x.end) for x in given.spans] == [
        (url, a, a + len(c)) for url, a, c in zip(CITED, starts, CLAIMS, strict=True)
    ]


BAD: list[tuple[Any, Any]] = [
    ("oops", None),  # not a list
    ([42, None, "x"], None),  # no annotation objects
    ([{"type": "url_citation", "url_citation": "x"}], None),  # nested value no mapping
    ([nested("", 0, 10)], None),  # empty url
    ([{"type": "url_citation", "url_citation": {"title": "t"}}], None),  # no url
    ([{"type": "file_citation", "file_citation": {"file_id": "f"}}], None),  # cites no URL
    ([nested(MUSEUM, "0", 10)], ("correct", ANSWER)),  # offsets not ints: the whole text
    ([nested(MUSEUM, 500, 900)], ("correct", ANSWER)),  # offsets out of range: likewise
    ([nested(MUSEUM, 30, 5)], ("correct", ANSWER)),  # end before start: likewise
    ([nested(MUSEUM, True, False)], ("correct", ANSWER)),  # bools are no offsets
]


@pytest.mark.parametrize(("notes", "expected"), BAD)
def test_malformed_annotations_never_break_the_chain(attributor, notes, expected):
    """Odd annotations give a defined check (or none, with no error); the message stands."""
    out = with_attribution(chain(litellm_message(notes=notes)), attributor).invoke("Tell me.")
    assert out.content == ANSWER
    found = lone_marker(out.response_metadata["attribution"], claim=True)
    assert found == (None if expected is None else ("museum", *expected))
