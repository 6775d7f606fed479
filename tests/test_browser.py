"""The HTML view in a real headless Chromium: it paints, highlights exactly the cited
sentences, and renders hostile source text as text.

Chromium is driven over the DevTools protocol with a tiny stdlib WebSocket client, so the tests
need no browser-automation package. They skip with the reason when Chromium cannot start.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import runpy
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import pytest

from rag_attrib import AttributionResult, Attributor, Source
from rag_attrib.citations import check_citations
from rag_attrib.render._common import PALETTE
from rag_attrib.render.html import render_html, sentence_key

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)


# --- a minimal WebSocket client (RFC 6455, text frames only) ---------------------------------


class WebSocket:
    """Blocking WebSocket client: enough for the DevTools protocol on localhost."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlparse(url)
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        status, _, self._buffer = head.partition(b"\r\n\r\n")
        if b" 101 " not in status.split(b"\r\n")[0]:
            raise ConnectionError(f"websocket handshake failed: {status[:80]!r}")

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self._buffer)))
            if not chunk:
                raise ConnectionError("websocket closed")
            self._buffer += chunk
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        # XOR the whole payload with the repeated mask in one big-int operation.
        repeated = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
            n, "big"
        )
        self.sock.sendall(header + mask + masked)

    def send(self, text: str) -> None:
        """Send one text message."""
        self._send_frame(0x1, text.encode())

    def recv(self) -> str:
        """Return the next text message (answering pings, joining fragments)."""
        message = b""
        while True:
            b0, b1 = self._read(2)
            opcode, length = b0 & 0x0F, b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else b""
            payload = self._read(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("websocket closed by the browser")
            message += payload
            if b0 & 0x80:
                return message.decode()

    def close(self) -> None:
        """Close the socket."""
        with contextlib.suppress(OSError):
            self.sock.close()


# --- the DevTools protocol ---------------------------------------------------------------------


class Page:
    """One Chromium tab over the DevTools protocol; events are kept in `events`."""

    def __init__(self, ws_url: str) -> None:
        self.ws = WebSocket(ws_url)
        self.events: list[dict[str, Any]] = []
        self._id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and return its result (events that arrive meanwhile are kept)."""
        want = self._send(method, params)
        while True:
            msg = self._next()
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))

    def _send(self, method: str, params: dict[str, Any]) -> int:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        return self._id

    def _next(self) -> dict[str, Any]:
        """Receive one message; keep events, and dismiss any JS dialog so nothing blocks."""
        msg: dict[str, Any] = json.loads(self.ws.recv())
        if "method" in msg:
            self.events.append(msg)
            if msg["method"] == "Page.javascriptDialogOpening":
                self._send("Page.handleJavaScriptDialog", {"accept": False})
        return msg

    def dialogs(self) -> list[str]:
        """Messages of the JS dialogs (alert, confirm...) that opened so far."""
        return [
            m["params"].get("message", "")
            for m in self.events
            if m.get("method") == "Page.javascriptDialogOpening"
        ]

    def wait_for(self, event: str, timeout: float = 20.0) -> dict[str, Any]:
        """Return the first `event` seen (already kept, or arriving within `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            for msg in self.events:
                if msg.get("method") == event:
                    return msg
            if time.monotonic() > deadline:
                raise TimeoutError(event)
            self._next()

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events = [m for m in self.events if m.get("method") != "Page.loadEventFired"]
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        """Evaluate JavaScript in the page and return its JSON value."""
        out = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in out:
            raise RuntimeError(f"JS error: {out['exceptionDetails']}")
        return out["result"].get("value")

    def mouse_to(self, selector: str) -> None:
        """Move the mouse onto the centre of the first element matching `selector`."""
        box = self.js(
            f"(function(){{var e=document.querySelector({json.dumps(selector)});"
            "e.scrollIntoView({block:'center'});var r=e.getBoundingClientRect();"
            "return [r.left+r.width/2, r.top+r.height/2];})()"
        )
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=box[0], y=box[1])

    def click(self, selector: str) -> None:
        """Click the centre of the first element matching `selector`."""
        self.mouse_to(selector)
        centre = (
            f"(function(){{var r=document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect();return [r.left+r.width/2, r.top+r.height/2];})()"
        )
        # hovering may start a smooth scroll that moves the element: click where it settles
        x, y = self.js(centre)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.js(centre)
            if now == [x, y]:
                break
            x, y = now
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, *, full_page: bool = False) -> bytes:
        """Return a PNG of the viewport (or of the whole page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.js(
                "[document.documentElement.scrollWidth,document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        return base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])


def find_chromium() -> str | None:
    """Return the Chromium executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@contextlib.contextmanager
def launch(width: int = 1280, height: int = 860) -> Iterator[Page]:
    """Start headless Chromium on a blank tab and yield it as a `Page`.

    Raises:
        RuntimeError: Chromium is missing or did not start (the message says why).
    """
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("no chromium executable on PATH (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="rag-attrib-chromium-")
    proc = subprocess.Popen(
        [
            exe,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    page: Page | None = None
    try:
        port_file = Path(profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace")[-300:] if proc.stderr else ""
                raise RuntimeError(f"chromium did not start (exit {proc.poll()}): {err.strip()}")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            targets = json.load(resp)
        url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        page = Page(url)
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        yield page
    finally:
        if page is not None:
            page.ws.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        shutil.rmtree(profile, ignore_errors=True)


# --- PNG decoding (stdlib), to check a screenshot is not blank --------------------------------


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG; return (width, height, rows of RGB(A) bytes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack("!I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack("!IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), f"unsupported PNG: depth {depth}, {colour}"
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        filter_type = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if filter_type == 1:
                line[i] = (line[i] + a) & 0xFF
            elif filter_type == 2:
                line[i] = (line[i] + b) & 0xFF
            elif filter_type == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif filter_type == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def colour_census(data: bytes, step: int = 4) -> dict[tuple[int, ...], int]:
    """Count the RGB colours of every `step`-th pixel of a PNG (Pillow if present, else stdlib)."""
    try:
        from PIL import Image
    except ImportError:
        width, _, rows = png_pixels(data)
        channels = len(rows[0]) // width
        counts: dict[tuple[int, ...], int] = {}
        for row in rows[::step]:
            for x in range(0, width, step):
                px = tuple(row[x * channels : x * channels + 3])
                counts[px] = counts.get(px, 0) + 1
        return counts
    import io

    image = Image.open(io.BytesIO(data)).convert("RGB")
    small = image.resize((image.width // step, image.height // step), Image.Resampling.NEAREST)
    return {
        tuple(c): n for n, c in small.getcolors(maxcolors=1 << 24) or [] if isinstance(c, tuple)
    }


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    """One headless Chromium tab for the module; skips when Chromium cannot start."""
    try:
        cm = launch()
        tab = cm.__enter__()
    except (RuntimeError, OSError, ConnectionError, TimeoutError, StopIteration) as exc:
        pytest.skip(f"headless Chromium is not available: {exc}")
    try:
        yield tab
    finally:
        cm.__exit__(None, None, None)


SOURCES = [
    Source(
        "alpha",
        "The Eiffel Tower is in Paris.\nIt was finished in 1889 for a world fair.",
        {"title": "Eiffel Tower"},
    ),
    Source("beta", "Mount Everest is the highest mountain on Earth.  It lies in the Himalayas."),
    Source("gamma", "Bananas are rich in potassium. Many people eat bananas for breakfast."),
]
ANSWER = (
    "The Eiffel Tower was finished in 1889 for a world fair in Paris. "
    "Mount Everest lies in the Himalayas. "
    "Bananas are rich in potassium and people eat bananas for breakfast. "
    "Quantum chromodynamics describes gluon confinement."
)


@pytest.fixture
def result(hashing_attributor: Attributor) -> AttributionResult:
    """A small result with several citations and one unsupported sentence."""
    r = hashing_attributor.attribute(ANSWER, SOURCES, question="Tell me some facts.")
    assert sum(len(s.citations) for s in r.answer_sentences) >= 3
    assert [s.index for s in r.unsupported] == [3], "the fixture needs one unsupported sentence"
    return r


def _open(page: Page, tmp_path: Path, html: str, name: str = "view.html") -> str:
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    # park the mouse in a corner so no element starts hovered
    page.call("Input.dispatchMouseEvent", type="mouseMoved", x=0, y=0)
    page.open(path.as_uri())
    return str(path)


HIGHLIGHTED = "[...document.querySelectorAll('.ra-sent.highlight')].map(e => e.dataset.sid).sort()"


def _cited(result: AttributionResult, i: int) -> list[str]:
    keys = {
        sentence_key(c.source_index, c.sentence_index) for c in result.answer_sentences[i].citations
    }
    return sorted(keys)


# --- tests --------------------------------------------------------------------------------------


def test_screenshot_is_not_blank(page: Page, tmp_path: Path, result: AttributionResult) -> None:
    """The page paints text, colours and panels: many colours, not one flat background."""
    _open(page, tmp_path, render_html(result))
    png = page.screenshot()
    census = colour_census(png)
    total = sum(census.values())
    background, most = max(census.items(), key=lambda kv: kv[1])
    assert len(census) > 50, f"only {len(census)} colours: the page looks blank"
    assert most / total < 0.9, f"{most / total:.0%} of the screenshot is {background}"
    # Without hovering, each supported sentence's best source sentence shows in its own tint.
    for i, sentence in enumerate(result.answer_sentences):
        if sentence.supported and sentence.citations:
            tint = PALETTE[i % len(PALETTE)][1]
            rgb = tuple(int(tint[k : k + 2], 16) for k in (1, 3, 5))
            assert census.get(rgb, 0) > 20, f"answer sentence {i + 1}'s colour is not visible"


def test_source_text_is_rebuilt_exactly(
    page: Page, tmp_path: Path, result: AttributionResult
) -> None:
    """Each source's text in the page equals the original, newlines and double spaces included."""
    _open(page, tmp_path, render_html(result))
    texts = page.js("[...document.querySelectorAll('.ra-src-text')].map(e => e.textContent)")
    assert texts == [s.text for s in SOURCES]
    n_spans = page.js("document.querySelectorAll('.ra-sent').length")
    assert n_spans == sum(len(s.sentences) for s in result.sources)


def test_hover_highlights_exactly_the_cited_sentences(
    page: Page, tmp_path: Path, result: AttributionResult
) -> None:
    """Hovering answer sentence i highlights its citations and nothing else (an unsupported
    sentence's closest matches, which keep their grey dashed look); leaving clears."""
    _open(page, tmp_path, render_html(result))
    assert page.js(HIGHLIGHTED) == []
    for i, sentence in enumerate(result.answer_sentences):
        page.mouse_to(f".ra-ans[data-index='{i}']")
        assert page.js(HIGHLIGHTED) == _cited(result, i), f"answer sentence {i}"
        active = page.js("document.querySelector('.ra-root').classList.contains('ra-active')")
        assert active
        if not sentence.supported:
            assert sentence.citations and page.js(HIGHLIGHTED)  # closest, does not support
            chips = page.js(
                f"[...document.querySelectorAll(\".ra-ans[data-index='{i}'] .ra-cite\")]"
                ".map(e => e.classList.contains('ra-closest'))"
            )
            assert chips == [True] * len(sentence.citations)
    page.mouse_to(".ra-head h1")
    assert page.js(HIGHLIGHTED) == []


def test_click_pins_and_scrolls_to_the_first_citation(
    page: Page, tmp_path: Path, hashing_attributor: Attributor
) -> None:
    """Clicking pins the highlight (it survives moving away) and scrolls the citation into view."""
    filler = [
        Source(f"filler-{k}", f"Filler paragraph {k} about nothing in particular. " * 12)
        for k in range(8)
    ]
    sources = [*filler, Source("target", "Zebras have black and white stripes.")]
    r = hashing_attributor.attribute("Zebras have black and white stripes.", sources)
    assert _cited(r, 0) == [sentence_key(8, 0)]
    _open(page, tmp_path, render_html(r))
    in_view = (
        "(function(){var r=document.querySelector('.ra-sent[data-sid=\"s8-0\"]')"
        ".getBoundingClientRect();return r.top >= 0 && r.bottom <= innerHeight;})()"
    )
    assert not page.js(in_view), "the target should start below the fold"
    page.click(".ra-ans[data-index='0']")
    page.call("Input.dispatchMouseEvent", type="mouseMoved", x=2, y=2)  # off the card
    assert page.js(HIGHLIGHTED) == ["s8-0"]
    assert page.js("document.querySelector('.ra-ans').classList.contains('pinned')")
    deadline = time.monotonic() + 5
    while not page.js(in_view) and time.monotonic() < deadline:  # smooth scrolling
        time.sleep(0.05)
    assert page.js(in_view)
    page.call(
        "Input.dispatchKeyEvent",
        type="keyDown",
        key="Escape",
        code="Escape",
        windowsVirtualKeyCode=27,
    )
    page.call("Input.dispatchMouseEvent", type="mouseMoved", x=2, y=2)  # off the card
    assert page.js(HIGHLIGHTED) == []


def test_two_views_on_one_page_do_not_clash(
    page: Page, tmp_path: Path, result: AttributionResult, hashing_attributor: Attributor
) -> None:
    """Two fragments on one page (as in a notebook) each highlight only their own sources."""
    other = hashing_attributor.attribute("Bananas are rich in potassium.", SOURCES)
    html = render_html(result) + render_html(other)
    _open(page, tmp_path, html)
    ids = page.js("[...document.querySelectorAll('.ra-root')].map(e => e.id)")
    assert len(ids) == 2 and ids[0] != ids[1]
    page.mouse_to(f"#{ids[1]} .ra-ans[data-index='0']")
    first = page.js(f"[...document.querySelectorAll('#{ids[0]} .highlight')].length")
    second = page.js(
        f"[...document.querySelectorAll('#{ids[1]} .ra-sent.highlight')]"
        ".map(e => e.dataset.sid).sort()"
    )
    assert first == 0
    assert second == _cited(other, 0)


XSS_SOURCE = (
    "Safe facts come first. <script>window.__xss = 'script'; alert(1)</script> "
    "Then an image: <img src=x onerror=\"window.__xss = 'img'; document.title = 'pwned'\"> ok."
)


def test_hostile_source_renders_as_text(
    page: Page, tmp_path: Path, hashing_attributor: Attributor
) -> None:
    """`<script>` and `<img onerror>` in sources, answer and question stay text: no dialog, no
    element, no side effect."""
    r = hashing_attributor.attribute(
        "Safe facts come first. <img src=y onerror=alert(2)>",
        [Source("<b>evil</b>", XSS_SOURCE, {"title": "<script>alert(3)</script>"})],
        question="<script>alert(4)</script>?",
    )
    page.events.clear()
    _open(page, tmp_path, render_html(r, title="<i>title</i>"))
    time.sleep(0.3)  # give a stray onerror handler time to fire
    page.mouse_to(".ra-ans")
    assert page.dialogs() == []
    assert page.js("typeof window.__xss") == "undefined"
    assert page.js("document.title") == "<i>title</i>"
    assert page.js("document.querySelectorAll('img').length") == 0
    markup = ".ra-src-text *:not(.ra-sent):not(.ra-mark):not(.ra-tail), .ra-src-id *, .ra-src-title *, h1 *, .ra-ans-text *"
    assert page.js(f"document.querySelectorAll('{markup}').length") == 0
    assert page.js("document.querySelectorAll('script').length") == 1  # the view's own script
    assert page.js("document.querySelector('.ra-src-text').textContent") == XSS_SOURCE
    assert page.js("document.querySelector('.ra-src-id').textContent") == "<b>evil</b>"


def test_error_and_question_are_shown(
    page: Page, tmp_path: Path, result: AttributionResult
) -> None:
    """A result that records an error shows it; the question is shown."""
    _open(page, tmp_path, render_html(result.with_error("embedder failed: <boom>")))
    assert "embedder failed: <boom>" in page.js("document.querySelector('.ra-error').textContent")
    assert page.js("document.querySelector('.ra-question').textContent").endswith(
        "Tell me some facts."
    )


def test_sankey_embedded_renders_offline(
    page: Page, tmp_path: Path, hashing_attributor: Attributor
) -> None:
    """`sankey=True` embeds a working plotly Sankey (inlined plotly.js), hostile text included."""
    pytest.importorskip("plotly")
    r = hashing_attributor.attribute("Safe facts come first. Then an image.", [XSS_SOURCE])
    page.events.clear()
    _open(page, tmp_path, render_html(r, sankey=True), "flow.html")
    deadline = time.monotonic() + 10
    while (
        not page.js("document.querySelectorAll('.sankey-node').length")
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    n_nodes = page.js("document.querySelectorAll('.sankey-node').length")
    assert n_nodes == sum(len(s.sentences) for s in r.sources) + len(r.answer_sentences)
    assert page.js("document.querySelectorAll('.sankey-link').length") >= 1
    assert page.dialogs() == []
    assert page.js("typeof window.__xss") == "undefined"
    assert page.js("document.querySelectorAll('img').length") == 0


# --- crafted files: nothing runs, nothing is requested ------------------------------------------


class Hits(http.server.BaseHTTPRequestHandler):
    """Counts every request; a page that claims to be self-contained must send none."""

    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Hits.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/javascript")
        self.end_headers()
        self.wfile.write(b"window.__xss = 'fetched';")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    """A local HTTP server on 127.0.0.1 for the test's lifetime; yields its base URL."""
    Hits.paths = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hits)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def payload(url: str) -> str:
    """Markup that, if it ever became markup, would run script and fetch from `url`."""
    return (
        f'"><img src="{url}/img" onerror="window.__xss=1;document.title=\'pwned\'">'
        f'<script src="{url}/s.js"></script><script>window.__xss=2;fetch("{url}/f")</script>'
        f"<link rel=stylesheet href='{url}/c.css'><iframe src='{url}/i'></iframe>"
        f'<meta http-equiv="refresh" content="0;url={url}/r"><svg onload="alert(1)">'
        f"<style>@import '{url}/imp.css';</style>'<a href=\"javascript:alert(2)\">x</a>"
    )


def crafted_dict(r: AttributionResult, p: str) -> dict[str, Any]:
    """`r.to_dict()` with the payload where numbers, indices, flags, ids and texts belong."""
    data: dict[str, Any] = json.loads(json.dumps(r.to_dict()))
    data.update(question=p, error=p, model=p, config={"support_threshold": p})
    data["timings"] = {"total_ms": p}
    for s in data["answer_sentences"]:
        s.update(index=p, supported=p, support=p, start=p, text=s["text"] + p, issues=[p])
        for c in s["citations"]:
            c.update(source_index=p, sentence_index=p, score=p, similarity=p, source_id=p)
    for src in data["sources"]:
        src.update(index=p, score=p, id=src["id"] + p, metadata={"title": p})
        for x in src["sentences"]:
            x.update(index=p, start=p, score=p)
    return data


def crafted_texts(r: AttributionResult, p: str) -> dict[str, Any]:
    """`r.to_dict()` with well-typed values and the payload in every text: valid input."""
    data: dict[str, Any] = json.loads(json.dumps(r.to_dict()))
    data.update(question=p, error=p, model=p)
    for s in data["answer_sentences"]:
        s.update(issues=[p])
        for c in s["citations"]:
            c.update(source_id=p)
    for src in data["sources"]:
        src.update(id=src["id"] + p, metadata={"title": p, "url": f"javascript:alert(1)//{p}"})
    return data


def crafted_result(r: AttributionResult, p: str) -> AttributionResult:
    """The same payloads in an object built without any validation (defence in depth)."""
    sentences = tuple(
        replace(
            s,
            index=p,
            supported=p,
            support=p,
            issues=(p,),
            citations=tuple(
                replace(c, source_index=p, sentence_index=p, score=p, similarity=p)
                for c in s.citations
            ),
        )
        for s in r.answer_sentences
    )
    sources = tuple(
        replace(
            s,
            id=s.id + p,
            index=p,
            score=p,
            metadata={"title": p},
            sentences=tuple(replace(x, index=p, start=p, score=p) for x in s.sentences),
        )
        for s in r.sources
    )
    return replace(r, answer_sentences=sentences, sources=sources, question=p, error=p)


def load_and_watch(page: Page, path: Path) -> list[str]:
    """Open `path` with the network watched; return every URL the page asked for."""
    page.events.clear()
    page.call("Network.enable")
    try:
        page.call("Input.dispatchMouseEvent", type="mouseMoved", x=0, y=0)
        page.open(path.as_uri())
        time.sleep(0.5)  # give a stray handler, refresh or fetch time to fire
        for card in range(page.js("document.querySelectorAll('.ra-ans').length")):
            page.mouse_to(f".ra-ans[data-index='{card}']")
        time.sleep(0.2)
        page.js("1")  # drain events
    finally:
        page.call("Network.disable")
    urls = [
        m["params"]["request"]["url"]
        for m in page.events
        if m.get("method") == "Network.requestWillBeSent"
    ]
    return [u for u in urls if u != path.as_uri() and not u.startswith("data:")]


def test_the_request_detector_sees_a_request(page: Page, tmp_path: Path, server: str) -> None:
    """Control: a plain page with an image from the local server is seen twice over."""
    path = tmp_path / "control.html"
    path.write_text(f'<!DOCTYPE html><img src="{server}/control">', encoding="utf-8")
    assert load_and_watch(page, path) == [f"{server}/control"]
    assert Hits.paths == ["/control"]


def assert_inert(page: Page, path: Path, title: str = "Answer attribution") -> None:
    urls = load_and_watch(page, path)
    assert urls == [], urls
    assert Hits.paths == []
    assert page.dialogs() == []
    assert page.js("typeof window.__xss") == "undefined"
    assert page.js("document.title") == title
    assert (
        page.js(
            "document.querySelectorAll('img, iframe, link, meta[http-equiv=refresh], a').length"
        )
        == 0
    )
    errors = [m for m in page.events if m.get("method") == "Runtime.exceptionThrown"]
    assert errors == []


@pytest.mark.parametrize("where", ["values", "texts"])
def test_crafted_file_rendered_by_the_cli_runs_and_requests_nothing(
    page: Page, tmp_path: Path, server: str, result: AttributionResult, where: str
) -> None:
    """`rag-attrib render` on a JSON file with payloads in every number and flag (a one-line
    refusal, or a page) or in every text (a page): the page executes nothing and requests
    nothing. Never a traceback."""
    make = crafted_dict if where == "values" else crafted_texts
    source = tmp_path / "crafted.json"
    source.write_text(json.dumps(make(result, payload(server))), encoding="utf-8")
    out = tmp_path / "crafted.html"
    run = subprocess.run(
        [sys.executable, "-m", "rag_attrib", "render", str(source), "--html", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in run.stderr, run.stderr
    if run.returncode != 0:  # refused at the edge: one line naming the problem
        assert where == "values", run.stderr
        assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
        return
    assert_inert(page, out)


@pytest.mark.parametrize("sankey", [False, True])
def test_crafted_result_built_without_validation_runs_and_requests_nothing(
    page: Page, tmp_path: Path, server: str, result: AttributionResult, sankey: bool
) -> None:
    """Defence in depth: the renderer is safe even on an object no validator saw, with the
    Sankey (plotly.js under the page's policy) too."""
    if sankey:
        pytest.importorskip("plotly")
    r = crafted_result(result, payload(server))
    try:  # the file path too, when from_dict lets the payloads through
        r = AttributionResult.from_dict(crafted_dict(result, payload(server)))
    except ValueError:
        pass
    path = tmp_path / "crafted.html"
    path.write_text(render_html(r, sankey=sankey), encoding="utf-8")
    assert_inert(page, path)
    if sankey:  # plotly ran under the policy: the flow was drawn
        assert page.js("document.querySelectorAll('.sankey-node').length") >= 1


def test_broken_text_saves_and_renders(
    page: Page, tmp_path: Path, hashing_attributor: Attributor
) -> None:
    """Lone surrogates, NUL and escape codes: save_html writes a page the browser shows with
    the rest of the text intact."""
    broken = "Zebras \ud800 have \x00 black \x1b[31m stripes."
    r = hashing_attributor.attribute(broken, [Source("z\udfff", broken + " They live in Africa.")])
    path = tmp_path / "broken.html"
    r.save_html(path)
    page.open(path.as_uri())
    text = page.js("document.querySelector('.ra-src-text').textContent")
    assert text == r.sources[0].text.replace("\ud800", "\ufffd").replace("\x00", "\ufffd").replace(
        "\x1b", "\ufffd"
    )
    assert page.js("document.querySelectorAll('.ra-sent.ra-cited').length") >= 1


def save_screenshots(docs: Path) -> None:
    """Render the quickstart with the bundled model and the Sankey, unhovered, and save what a
    reader sees: docs/screenshot.png (1280 px wide), docs/screenshot-600.png, docs/sankey.png."""
    quickstart = runpy.run_path(str(Path(__file__).resolve().parents[1] / "examples/quickstart.py"))
    r = Attributor().attribute(quickstart["ANSWER"], quickstart["CHUNKS"], quickstart["QUESTION"])
    with tempfile.TemporaryDirectory() as tmp:
        view = Path(tmp, "quickstart.html")
        view.write_text(render_html(r, sankey=True), encoding="utf-8")
        for width, name in ((1280, "screenshot.png"), (600, "screenshot-600.png")):
            with launch(width, 900) as tab:
                tab.open(view.as_uri())
                time.sleep(1.0)  # let plotly lay out the flow
                shot = tab.screenshot(full_page=True)
                flow = tab.js(
                    "(function(){var r=document.querySelector('.ra-flow')"
                    ".getBoundingClientRect();return [r.top+scrollY, r.height];})()"
                )
                if width == 1280:
                    params = {"x": 0, "y": flow[0] - 12, "width": width, "height": flow[1] + 24}
                    sankey = tab.call(
                        "Page.captureScreenshot",
                        format="png",
                        captureBeyondViewport=True,
                        clip={**params, "scale": 1},
                    )
                    (docs / "sankey.png").write_bytes(base64.b64decode(sankey["data"]))
                    # the README's view ends above the flow, which has its own picture
                    height = int(flow[0] - 12)
                    full = tab.call(
                        "Page.captureScreenshot",
                        format="png",
                        captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                    )
                    shot = base64.b64decode(full["data"])
                (docs / name).write_bytes(shot)


if __name__ == "__main__":  # regenerate the screenshots in docs/: python tests/test_browser.py
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    save_screenshots(Path(__file__).resolve().parents[1] / "docs")


def test_check_citations_html_paints_each_marker_by_its_verdict(
    page: Page, tmp_path: Path, server: str
) -> None:
    """`rag-attrib check-citations --html`: in Chromium each reference of the answer as written
    is painted green (correct), amber (wrong source) or red (dangling) as its JSON verdict says,
    and the page runs and requests nothing."""
    answer = tmp_path / "answer.txt"
    answer.write_text(
        "The Eiffel Tower was finished in 1889 for a world fair [2]. "
        "Mount Everest lies in the Himalayas [2]. Bananas are rich in potassium [9].",
        encoding="utf-8",
    )
    sources = []
    for s in SOURCES:
        sources.append(tmp_path / f"{s.id}.txt")
        sources[-1].write_text(s.text, encoding="utf-8")
    out = tmp_path / "markers.html"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rag_attrib",
            "check-citations",
            "--answer",
            str(answer),
            "--source",
            *map(str, sources),
            "--model",
            "hashing",
            "--html",
            str(out),
            "--json",
            "-",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    verdicts = [m["verdict"] for m in json.loads(run.stdout)["markers"]]
    assert verdicts == ["wrong_source", "correct", "dangling"]
    assert_inert(page, out)
    painted = page.js(
        "[...document.querySelectorAll('.ra-mk-answer .ra-mk')]"
        ".map(e => [e.textContent, getComputedStyle(e).backgroundColor])"
    )
    assert [label for label, _ in painted] == ["2", "2", "9"]
    colours = [colour for _, colour in painted]
    legend = page.js(
        "Object.fromEntries(['ok', 'warn', 'bad'].map(k => [k, getComputedStyle("
        "document.querySelector('.ra-mk-legend .ra-mk-' + k)).backgroundColor]))"
    )
    assert len(set(legend.values())) == 3, legend  # three distinct paints, none transparent
    assert "rgba(0, 0, 0, 0)" not in legend.values()
    assert colours == [legend["warn"], legend["ok"], legend["bad"]]
    assert page.js("document.querySelector('.ra-mk-answer').textContent") == answer.read_text(
        encoding="utf-8"
    )


def test_check_citations_counts_keep_each_number_with_its_word(
    page: Page, tmp_path: Path, hashing_attributor: Attributor
) -> None:
    """However narrow the page, "2 correct" never breaks between the number and its word: in
    Chromium, at widths from 320 to 640 px, each count of the summary sits on one line."""
    answer = (
        "The Eiffel Tower was finished in 1889 for a world fair [1]. "
        "Mount Everest lies in the Himalayas [1]. Bananas are rich in potassium [9]."
    )
    report = check_citations(answer, SOURCES, attributor=hashing_attributor)
    _open(page, tmp_path, render_html(report.result, citations=report), "counts.html")
    lines = (
        "(() => { const el = document.querySelector('.ra-mk-counts');"
        " const node = document.createTreeWalker(el, NodeFilter.SHOW_TEXT); let text = '';"
        " const at = []; while (node.nextNode()) { const n = node.currentNode;"
        " for (let i = 0; i < n.data.length; i++) at.push([n, i]); text += n.data; }"
        " return [...text.matchAll(/\\d+ [a-z]+/g)].map(m => { const r = document.createRange();"
        " r.setStart(...at[m.index]); const [n, i] = at[m.index + m[0].length - 1];"
        " r.setEnd(n, i + 1); return [m[0], new Set([...r.getClientRects()]"
        ".filter(q => q.width > 0).map(q => Math.round(q.top))).size]; }); })()"
    )
    try:
        for width in range(320, 641, 20):
            page.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            counts = page.js(lines)
            assert len(counts) == 4, counts  # correct, wrong source, unsupported, names no source
            assert all(n == 1 for _, n in counts), (width, counts)
    finally:
        page.call("Emulation.clearDeviceMetricsOverride")


def test_talk_is_shown_apart_and_not_counted(
    page: Page, tmp_path: Path, hashing_attributor: Attributor
) -> None:
    """ "Great question!" and "I hope this helps!" are not claims: in Chromium their cards are
    grey with a "not a claim" tag (no red underline), and the summary counts claims only."""
    answer = f"Great question! {ANSWER} I hope this helps!"
    result = hashing_attributor.attribute(answer, SOURCES, question="Tell me some facts.")
    _open(page, tmp_path, render_html(result), "talk.html")
    cards = page.js(
        "[...document.querySelectorAll('.ra-ans')].map(e => [e.classList.contains('ra-talk'),"
        " (e.querySelector('.ra-tag') || {}).textContent,"
        " getComputedStyle(e.querySelector('.ra-ans-text')).textDecorationLine])"
    )
    assert [c[0] for c in cards] == [True] + [False] * (len(cards) - 2) + [True]
    for talk, tag, decoration in cards:
        if talk:
            assert tag.lower() == "not a claim" and decoration == "none"
    claims = len(result.answer_sentences) - 2
    supported = claims - len(result.unsupported)
    stats = page.js("document.querySelector('.ra-stats .ra-pill').textContent")
    assert f"({supported}/{claims} sentences, 2 not claims)" in stats
