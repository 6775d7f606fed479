"""Claude with its server-side web search, as the real LlamaIndex `Anthropic` LLM sees it
against a stand-in HTTP server (an httpx mock transport answering with the Messages API's JSON
or its server-sent events), for test_llamaindex_web_search_citations.py and
test_llamaindex_completion_citations.py.

Import it after `pytest.importorskip("llama_index.llms.anthropic")`: it imports the anthropic
SDK and the LlamaIndex integration at the top.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import anthropic
from _web_pages import BIRDS, CLAIMS, ELSEWHERE, MUSEUM, PAGES, PORT, QUESTION
from llama_index.llms.anthropic import Anthropic

LEAD = "I searched the web."
# the answer LlamaIndex gives: ChatMessage.content joins the text blocks with newlines
ANSWER = "\n".join([LEAD, *(t for t, _ in CLAIMS)])
# the Anthropic integration needs a model it sends no `temperature` for: the anthropic SDK in
# this environment (1.17) no longer takes that argument
MODEL = "claude-opus-4-7"
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}


def web_citation(url: str) -> dict[str, Any]:
    title, text = PAGES.get(url, ("Elsewhere", "Penguins are flightless birds."))
    return {
        "type": "web_search_result_location",
        "url": url,
        "title": title,
        "encrypted_index": "Eo8BCioIAhgBIiQ",
        "cited_text": text,
    }


def search_blocks() -> list[dict[str, Any]]:
    """Claude's server-side search: its call and its results (no readable page text)."""
    results = [
        {
            "type": "web_search_result",
            "url": url,
            "title": url.rsplit("/", 1)[-1],
            "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1mZjM5LTQ1NGUtODgxNC1kNjNjNTk1ZWI3",
            "page_age": "April 30, 2025",
        }
        for url in (MUSEUM, PORT, BIRDS, ELSEWHERE)
    ]
    return [
        {
            "type": "server_tool_use",
            "id": "srvtoolu_1",
            "name": "web_search",
            "input": {"query": "x"},
        },
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": results},
    ]


def answer_content(claims: Sequence[tuple[str, str]] = CLAIMS) -> list[dict[str, Any]]:
    """The final message's content: the lead, the search, then a text block per claim."""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": LEAD}, *search_blocks()]
    for text, url in claims:
        blocks.append({"type": "text", "text": text, "citations": [web_citation(url)]})
    return blocks


def message(content: list[dict[str, Any]], stop: str = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 100,
            "output_tokens": 50,
            "server_tool_use": {"web_search_requests": 1},
        },
    }


def events(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same message as the Messages API streams it: a text block's citations arrive as
    `citations_delta`s before its text; the search result block arrives whole."""
    out: list[dict[str, Any]] = [
        {"type": "message_start", "message": {**message([]), "stop_reason": None}}
    ]
    for k, block in enumerate(content):
        if block["type"] == "text":
            out.append(
                {
                    "type": "content_block_start",
                    "index": k,
                    "content_block": {"type": "text", "text": ""},
                }
            )
            for note in block.get("citations", []):
                delta = {"type": "citations_delta", "citation": note}
                out.append({"type": "content_block_delta", "index": k, "delta": delta})
            delta = {"type": "text_delta", "text": block["text"]}
            out.append({"type": "content_block_delta", "index": k, "delta": delta})
        elif block["type"] == "server_tool_use":
            start = {**block, "input": {}}
            out.append({"type": "content_block_start", "index": k, "content_block": start})
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            out.append({"type": "content_block_delta", "index": k, "delta": delta})
        else:
            out.append({"type": "content_block_start", "index": k, "content_block": block})
        out.append({"type": "content_block_stop", "index": k})
    out.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 50},
        }
    )
    return [*out, {"type": "message_stop"}]


def _tool_call() -> dict[str, Any]:
    call = {"type": "tool_use", "id": "toolu_1", "name": "pages", "input": {"query": QUESTION}}
    return message([{"type": "text", "text": "Let me look."}, call], stop="tool_use")


def _has_tool_result(body: dict[str, Any]) -> bool:
    return any(
        isinstance(b, dict) and b.get("type") == "tool_result"
        for m in body["messages"]
        if isinstance(m.get("content"), list)
        for b in m["content"]
    )


class Server:
    """Claude's API as the client sees it: the final message (JSON or events); first a call
    of the app's `pages` tool when `tool_first` and no tool result was sent yet."""

    def __init__(self, content: list[dict[str, Any]], tool_first: bool = False) -> None:
        self.content = content
        self.tool_first = tool_first
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: Any) -> Any:
        body = json.loads(request.content)
        self.requests.append(body)
        if self.tool_first and not _has_tool_result(body):
            reply = _tool_call()
        else:
            reply = message(self.content)
        http = _httpx()
        if not body.get("stream"):
            return http.Response(200, json=reply)
        text = "".join(
            f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events(reply["content"])
        )
        return http.Response(200, text=text, headers={"content-type": "text/event-stream"})


def _httpx() -> Any:
    """The httpx the anthropic SDK is built on (`httpx2` from anthropic 1.x on)."""
    try:
        import httpx2

        return httpx2
    except ImportError:
        import httpx

        return httpx


def claude(server: Callable[[Any], Any]) -> Anthropic:
    """The real LlamaIndex Anthropic LLM with the web search tool, talking to `server`."""
    http = _httpx()

    async def ahandle(request: Any) -> Any:
        return server(request)

    llm = Anthropic(model=MODEL, api_key="test-key", max_retries=0, tools=[WEB_SEARCH])
    sync = http.Client(transport=http.MockTransport(server))
    both = http.AsyncClient(transport=http.MockTransport(ahandle))
    llm._client = anthropic.Anthropic(api_key="test-key", http_client=sync, max_retries=0)
    llm._aclient = anthropic.AsyncAnthropic(api_key="test-key", http_client=both, max_retries=0)
    return llm
