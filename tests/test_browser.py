"""The drawing page in a real browser: Playwright drives Debian's chromium (headless) against
`digitrec serve` running on 127.0.0.1, draws digits with mouse events and reads the answer.

Playwright never downloads a browser here: it launches /usr/bin/chromium (`make browser`
installs it). Screenshots go to $DIGITREC_ARTIFACTS, or to a pytest temporary folder.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

from digitrec.recognizer import DEFAULT_MODEL


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model_path(request) -> Path:
    """The bundled default model (what users get); the tiny test model only if it is missing."""
    return DEFAULT_MODEL if DEFAULT_MODEL.is_file() else request.getfixturevalue("tiny_onnx")


@pytest.fixture(scope="module")
def server(model_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "digitrec", "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--model", str(model_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("digitrec serve did not start:\n" + proc.stdout.read().decode(errors="replace"))
            time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    proc.stdout.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    d = Path(os.environ.get("DIGITREC_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _open(browser, server, path: str, ready: str, width: int):
    """A fresh page at `path`, once `ready` matches; fails the test on any JavaScript error."""
    ctx = browser.new_context(viewport={"width": width, "height": 900})
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server + path)
    pg.wait_for_selector(ready)
    yield pg
    ctx.close()
    assert not errors, errors


@pytest.fixture
def page(browser, server):
    yield from _open(browser, server, "/", "#bar-9", 900)


# Strokes in units of the canvas (0-1): each digit as a user would draw it.
def _ellipse(cx, cy, rx, ry, n=40):
    return [(cx + rx * math.sin(2 * math.pi * i / n), cy - ry * math.cos(2 * math.pi * i / n)) for i in range(n + 1)]


DIGITS = {
    "1": [[(0.52, 0.18), (0.50, 0.82)]],
    "0": [_ellipse(0.5, 0.5, 0.2, 0.32)],
    "7": [[(0.28, 0.2), (0.72, 0.2), (0.42, 0.82)]],
}


def draw(pg, strokes, canvas="#pad"):
    box = pg.locator(canvas).bounding_box()
    at = lambda x, y: (box["x"] + x * box["width"], box["y"] + y * box["height"])  # noqa: E731
    for stroke in strokes:
        pg.mouse.move(*at(*stroke[0]))
        pg.mouse.down()
        for x, y in stroke[1:]:
            pg.mouse.move(*at(x, y), steps=8)
        pg.mouse.up()


def draw_touch(pg, strokes):
    """The same strokes with a finger: raw touch events through the DevTools protocol."""
    cdp = pg.context.new_cdp_session(pg)
    box = pg.locator("#pad").bounding_box()
    at = lambda x, y: {"x": box["x"] + x * box["width"], "y": box["y"] + y * box["height"]}  # noqa: E731
    for stroke in strokes:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [at(*stroke[0])]})
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
            for t in np.linspace(0.125, 1, 8):
                cdp.send("Input.dispatchTouchEvent",
                         {"type": "touchMove", "touchPoints": [at(x0 + t * (x1 - x0), y0 + t * (y1 - y0))]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def draw_number(pg, text, top=0.1, height=0.8):
    """Write `text` on the number page's sheet: each digit in a square cell `height` of the sheet high."""
    box = pg.locator("#sheet").bounding_box()
    cell = height * box["height"] / box["width"]            # a cell's width in units of the sheet's
    for k, digit in enumerate(text):
        draw(pg, [[((0.3 + 0.85 * k + x) * cell, top + y * height) for x, y in stroke] for stroke in DIGITS[digit]],
             "#sheet")


def read_shown(pg) -> dict:
    return pg.evaluate("""() => ({
        status: document.querySelector('#text').dataset.status,
        text: document.querySelector('#text').dataset.text,
        digits: [...document.querySelectorAll('#digits li .digit')].map(d => d.textContent),
        boxInk: (() => { const c = document.querySelector('#boxes');
                         const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                         let s = 0; for (let i = 3; i < d.length; i += 4) s += d[i] > 0; return s; })(),
    })""")


READ = "() => !['empty', 'reading'].includes(document.querySelector('#text').dataset.status)"


def shown(pg) -> dict:
    return pg.evaluate("""() => ({
        status: document.querySelector('#result').dataset.status,
        label: document.querySelector('#result').dataset.label,
        text: document.querySelector('#result').textContent,
        best: [...document.querySelectorAll('#bars li.best')].map(li => li.id),
        widths: [...document.querySelectorAll('#bars .fill')].map(f => parseFloat(f.style.width) || 0),
        seenInk: (() => { const d = document.querySelector('#seen').getContext('2d').getImageData(0, 0, 28, 28).data;
                          let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s; })(),
    })""")


def test_draw_digits_shows_the_prediction(page, artifacts):
    for digit, strokes in DIGITS.items():
        page.click("#clear")
        assert shown(page)["status"] == "empty"
        draw(page, strokes)
        page.wait_for_function("d => document.querySelector('#result').dataset.label === d", arg=digit, timeout=10_000)
        s = shown(page)
        assert s["status"] == "ok", s
        assert s["text"] == digit and s["best"] == [f"bar-{digit}"]
        assert max(s["widths"]) == s["widths"][int(digit)] > 50        # the winning bar is the longest
        assert s["seenInk"] > 255 * 20                                  # the 28×28 the model saw is drawn
        page.wait_for_timeout(300)                                     # let the bars finish growing
        page.screenshot(path=str(artifacts / f"draw_{digit}.png"), full_page=True)
    assert (artifacts / "draw_7.png").stat().st_size > 5000


def test_two_digits_on_the_one_digit_page_say_so(page, artifacts):
    """The model's "not one digit" class: a 7 and a 0 side by side are not read as one digit."""
    draw(page, [[(0.04 + 0.46 * k + 0.46 * x, y) for x, y in stroke] for k, d in enumerate("70") for stroke in DIGITS[d]])
    page.wait_for_function("() => document.querySelector('#result').dataset.status === 'uncertain'", timeout=10_000)
    detail = page.text_content("#detail")
    assert "looks like more than one digit" in detail and "A number" in detail, detail
    assert shown(page)["text"] == "?"  # no digit named as if it were a guess
    page.wait_for_timeout(300)  # let the bars finish moving
    page.screenshot(path=str(artifacts / "draw_two_digits.png"), full_page=True)


def test_clear_with_the_keyboard(page):
    draw(page, DIGITS["1"])
    page.wait_for_function("() => document.querySelector('#result').dataset.status === 'ok'", timeout=10_000)
    page.focus("#pad")
    page.keyboard.press("Tab")                                  # the tab order: pad, Clear, upload
    assert page.evaluate("document.activeElement.id") == "clear"
    page.keyboard.press("Enter")
    s = shown(page)
    assert s["status"] == "empty" and s["label"] == "" and max(s["widths"]) == 0 and s["seenInk"] == 0
    assert page.get_attribute("#result", "aria-live") == "polite"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "upload"
    draw(page, DIGITS["1"])
    page.wait_for_function("() => document.querySelector('#result').dataset.status === 'ok'", timeout=10_000)
    page.focus("#pad")
    page.keyboard.press("Escape")                               # clears from the drawing area itself
    assert shown(page)["status"] == "empty"
    assert page.locator("label[for=upload]").count() == 1


def test_upload_an_image(page, tmp_path):
    a = np.full((200, 200), 255, np.uint8)
    a[30:170, 92:108] = 0                                  # a photographed '1': dark ink on white paper
    path = tmp_path / "one.png"
    Image.fromarray(a).save(path)
    page.set_input_files("#upload", str(path))
    page.wait_for_function("() => document.querySelector('#result').dataset.label === '1'", timeout=10_000)
    page.set_input_files("#upload", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"}])
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)         # the API's message, shown
    assert "not an image" in page.inner_text("#error")


def test_no_old_answer_outlives_a_clear_an_upload_or_an_error(page):
    """Escape right after the pen lifts (the pad has the focus once drawn on), an upload after a
    drawing, a failed upload: each leaves no earlier answer on screen. A tap is too small to read."""
    draw(page, DIGITS["7"])
    page.keyboard.press("Escape")                   # no click on the pad first: drawing gave it the focus
    page.wait_for_timeout(1500)                     # longer than any answer in flight takes
    s = shown(page)
    assert s["status"] == "empty" and s["label"] == "" and max(s["widths"]) == 0 and s["seenInk"] == 0, s
    draw(page, DIGITS["1"])
    page.set_input_files("#upload", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"}])
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    page.wait_for_timeout(1000)
    s = shown(page)
    assert s["status"] == "empty" and s["label"] == "" and max(s["widths"]) == 0, s  # not the drawing's 1
    assert page.evaluate("""() => { const c = document.querySelector('#pad');  // the drawing went with it
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 128) return false; return true; }""")
    draw(page, [[(0.5, 0.5), (0.51, 0.5)]])          # a tap
    page.wait_for_function("() => document.querySelector('#result').textContent === 'Too small'", timeout=5_000)
    assert shown(page)["label"] == ""


def test_phone_sized_screen(browser, server, artifacts):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True,
                              device_scale_factor=2)
    pg = ctx.new_page()
    pg.goto(server + "/")
    pad = pg.locator("#pad").bounding_box()
    assert pad["x"] >= 0 and pad["x"] + pad["width"] <= 390 and pad["width"] >= 300
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390         # no sideways scrolling
    draw_touch(pg, DIGITS["7"])                                               # a finger, not a mouse
    pg.wait_for_function("() => document.querySelector('#result').dataset.label === '7'", timeout=10_000)
    assert pg.evaluate("window.scrollY") == 0                                 # drawing did not scroll the page
    pg.wait_for_timeout(300)
    pg.screenshot(path=str(artifacts / "phone_7.png"), full_page=True)
    pg.goto(server + "/number")
    sheet = pg.locator("#sheet").bounding_box()
    assert sheet["x"] >= 0 and sheet["x"] + sheet["width"] <= 390
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    ctx.close()


def test_api_docs_render_without_internet(browser, server, artifacts):
    """/docs draws every endpoint of the OpenAPI 3.1 schema with requests leaving the server refused."""
    ctx = browser.new_context(viewport={"width": 1100, "height": 900})
    ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server) else route.abort())
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server + "/docs")
    pg.wait_for_selector(".opblock-summary-path[data-path='/v1/ocr']", timeout=15_000)
    shown = pg.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.dataset.path)")
    assert {"/v1/predict", "/v1/ocr", "/v1/model", "/healthz"} <= set(shown)
    pg.screenshot(path=str(artifacts / "api_docs.png"))
    ctx.close()
    assert not errors, errors


def test_an_oversized_body_sent_whole_gets_its_413_not_a_reset(server):
    """urllib sends the whole body before it reads the answer; the live server reads and drops it, then
    answers 413 (refusing at once, with the body unread, reset the connection: ConnectionResetError)."""
    for body in (b"\0" * (5 << 20), iter([b"\0" * (1 << 20)] * 6)):  # Content-Length, then chunked
        request = urllib.request.Request(server + "/v1/predict", data=body, headers={"Content-Type": "image/png"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(request, timeout=30)
        assert e.value.code == 413
        assert json.loads(e.value.read())["error"] == "body_too_large"


@pytest.fixture
def number_page(browser, server):
    yield from _open(browser, server, "/number", "#model:not(:empty)", 1100)


def test_write_a_number_and_read_it(number_page, artifacts):
    pg = number_page
    assert "Read by" in pg.inner_text("#model")                 # the server's OCR reader is named
    draw_number(pg, "1707")
    pg.wait_for_function(READ, timeout=15_000)
    s = read_shown(pg)
    assert s["status"] == "ok" and s["text"] == "1707", s
    assert s["digits"] == list("1707") and s["boxInk"] > 1000      # a box and label drawn per digit
    pg.screenshot(path=str(artifacts / "number_1707.png"), full_page=True)
    pg.click("#clear")
    s = read_shown(pg)
    assert s["status"] == "empty" and s["digits"] == [] and s["boxInk"] == 0
    draw_number(pg, "1")                                         # read again after clearing
    pg.wait_for_function(READ, timeout=15_000)
    assert read_shown(pg)["text"] == "1"
    pg.focus("#sheet")
    pg.keyboard.press("Escape")
    assert read_shown(pg)["status"] == "empty"
    draw_number(pg, "70")
    pg.keyboard.press("Escape")                     # at once, before the reading is sent or answered
    pg.wait_for_timeout(1500)
    s = read_shown(pg)
    assert s["status"] == "empty" and s["digits"] == [] and s["boxInk"] == 0, s


def _photo_of_lines(lines: list[str], cell: int = 120) -> Image.Image:
    """Dark digits on light paper, one row per line, drawn with the same strokes as DIGITS."""
    from PIL import ImageDraw

    img = Image.new("L", (cell * (max(map(len, lines)) + 1), cell * len(lines) + cell // 2), 235)
    pen = ImageDraw.Draw(img)
    for row, line in enumerate(lines):
        for k, digit in enumerate(line):
            for stroke in DIGITS[digit]:
                pts = [((0.5 + k + x * 0.9) * cell, (0.25 + row + y * 0.9) * cell) for x, y in stroke]
                pen.line(pts, fill=20, width=cell // 12, joint="curve")
    return img


def test_upload_a_photo_of_two_lines(number_page, tmp_path):
    pg = number_page
    path = tmp_path / "two_lines.jpg"
    _photo_of_lines(["170", "71"]).save(path, quality=90)
    pg.set_input_files("#upload", str(path))
    pg.wait_for_function(READ, timeout=15_000)
    s = read_shown(pg)
    assert s["text"] == "170\n71" and s["digits"] == list("17071"), s
    assert pg.locator("#digits li.line-break").count() == 1          # the second line's digits on a row of their own
    draw_number(pg, "7")                                          # writing after an upload starts a fresh sheet
    pg.wait_for_function("() => document.querySelector('#text').dataset.text === '7'", timeout=15_000)
    assert read_shown(pg)["digits"] == ["7"]
    assert s["boxInk"] > 1000                                     # boxes land on the photo shown in the sheet
    pg.set_input_files("#upload", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"}])
    pg.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert "not an image" in pg.inner_text("#error") and read_shown(pg)["status"] == "error"
    blank = tmp_path / "blank.png"
    Image.new("L", (400, 150), 240).save(blank)
    pg.set_input_files("#upload", str(blank))
    pg.wait_for_function("() => document.querySelector('#text').dataset.status === 'none'", timeout=15_000)
    assert pg.inner_text("#text") == "No digits found" and pg.locator("#error").is_hidden()
