"""A tiny DOM over the stdlib HTML parser, for the tests that read `render_html`'s markup
(test_render_html.py, test_render_markers.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Element:
    """One parsed element: its tag, attributes and the text inside it."""

    tag: str
    attrs: dict[str, str]
    parts: list[str] = field(default_factory=list)
    ancestors: frozenset[str] = frozenset()  # the classes of the elements around it
    after: str = ""  # the data-sid of the last source sentence that started before it

    @property
    def text(self) -> str:
        """The text content, like the DOM's `textContent`."""
        return "".join(self.parts)


class Tree(HTMLParser):
    """Collect elements with the stdlib parser, like a tiny DOM."""

    VOID = frozenset({"meta", "br", "img", "input", "link", "hr"})

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self._last_sid = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        around = frozenset(c for e in self._open for c in e.attrs.get("class", "").split())
        element = Element(tag, values, ancestors=around, after=self._last_sid)
        if "ra-sent" in values.get("class", "").split():
            self._last_sid = values.get("data-sid", "")
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.parts.append(data)

    def find(self, cls: str) -> list[Element]:
        """Elements whose class list contains `cls`."""
        return [e for e in self.elements if cls in e.attrs.get("class", "").split()]

    def tag(self, name: str) -> Element:
        """The first element with tag `name`."""
        return next(e for e in self.elements if e.tag == name)
