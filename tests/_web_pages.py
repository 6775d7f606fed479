"""The web pages the provider-citation tests cite (test_llamaindex_given_citations.py,
test_llamaindex_web_search_citations.py, test_llamaindex_completion_citations.py): three pages
the app holds, one only a provider's search found, and an answer's claims citing them right,
wrong and dangling. Plain data; `pages_index` imports LlamaIndex when called."""

from __future__ import annotations

from typing import Any

MUSEUM = "https://www.hobart-museum.example/history"
PORT = "https://news.example.com/bremen-port"
BIRDS = "https://birds.example.org/penguins"
ELSEWHERE = "https://elsewhere.example/penguins"  # Claude's search found it; the app never did
PAGES = {
    MUSEUM: ("Museum history", "The Hobart harbour museum was founded in 1896."),
    PORT: ("Port news", "Bremen's river port handles the most cargo."),
    BIRDS: ("Penguins", "Penguins live in the southern hemisphere and cannot fly."),
}
QUESTION = "Tell me about the museum, the port and penguins."
# an answer's claims, each citing (right page, wrong page, a page the app does not hold)
CLAIMS = [
    (" The Hobart harbour museum was founded in 1896.", MUSEUM),
    (" Bremen's river port handles the most cargo.", BIRDS),
    (" Penguins cannot fly.", ELSEWHERE),
]


def url_annotations(text: str, nest: bool) -> list[dict[str, Any]]:
    """`url_citation`s of each claim in `text`: Chat Completions nests the fields under
    "url_citation", the Responses API does not."""
    out = []
    for claim, url in CLAIMS:
        at = text.index(claim)
        fields = {"url": url, "title": "a page", "start_index": at, "end_index": at + len(claim)}
        out.append({"type": "url_citation", **({"url_citation": fields} if nest else fields)})
    return out


def pages_index() -> Any:
    """A real VectorStoreIndex over the app's pages, each with its `url` in metadata."""
    from llama_index.core import Document, VectorStoreIndex

    from rag_attrib.integrations.llamaindex import MiniLMEmbedding
    from rag_attrib.testing import HashingEmbedder

    docs = [Document(text=text, metadata={"url": url}) for url, (_, text) in PAGES.items()]
    return VectorStoreIndex.from_documents(docs, embed_model=MiniLMEmbedding(HashingEmbedder()))
