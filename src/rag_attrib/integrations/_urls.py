"""Which sources a cited URL names; imports no framework.

Web-search citations (OpenAI `url_citation`, Anthropic `web_search_result_location` and
`search_result_location`, LangChain v1 `Citation.url`) name a page, not a position. A source
names its page in its metadata (`url`, `source` or `link`: web loaders, search tools, LlamaIndex
web readers) or in its id. Both sides are compared after a trivial normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from ..results import Source

__all__ = ["URL_KEYS", "normalise_url", "url_positions"]

URL_KEYS = ("url", "source", "link")
"""The metadata keys that hold a source's URL, in the order read."""


def normalise_url(url: str) -> str:
    """`url` without its scheme, fragment, trailing slash and `utm_*` query parameters, with
    its host in lower case; a string that is no URL is returned stripped of surrounding space.

    OpenAI's web search appends `?utm_source=openai` to the URLs it cites, which the page a
    search tool returned does not carry.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return text
    if not parts.netloc:
        return text.rstrip("/") or text
    kept = [p for p in parts.query.split("&") if p and not p.lower().startswith("utm_")]
    query = f"?{'&'.join(kept)}" if kept else ""
    return f"{parts.netloc.lower()}{parts.path.rstrip('/')}{query}"


def url_positions(sources: Sequence[Source]) -> dict[str, list[int]]:
    """The positions of the sources each normalised URL names (chunks of one page share it)."""
    out: dict[str, list[int]] = {}
    for k, source in enumerate(sources):
        values = [source.metadata.get(key) for key in URL_KEYS] + [source.id]
        for key in dict.fromkeys(normalise_url(v) for v in values if isinstance(v, str)):
            if key:
                out.setdefault(key, []).append(k)
    return out
