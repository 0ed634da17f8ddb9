"""The REST API (digitrec.server) through FastAPI's TestClient: every endpoint, every error class.

The model is a real one (the paper's CNN trained briefly, exported to ONNX) injected
with create_app(model_path); inputs are real MNIST test images.
"""

from __future__ import annotations

import base64
import io
import os
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from starlette.datastructures import UploadFile

from digitrec import mnist
from digitrec.recognizer import Recognizer
from digitrec.server import Limits, create_app


def png_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def paper_style(a: np.ndarray) -> bytes:
    """An MNIST digit as a user would send it: dark ink on white paper, 4× larger."""
    im = Image.fromarray(255 - a).resize((112, 112), Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width×height pixels (a decompression bomb's header) and one tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def mnist_test():
    images, labels = mnist.load()["test"]
    return np.asarray(images[:40]), np.asarray(labels[:40])


@pytest.fixture(scope="module")
def client(tiny_onnx):
    with TestClient(create_app(tiny_onnx, limits=Limits(max_body_bytes=300_000, max_pixels=1_000_000))) as c:
        yield c


def err(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body.get("message"), str) and body["message"], body
    if code:
        assert body["error"] == code, body
    return body


# ---------------------------------------------------------------- the endpoints

def test_healthz_and_model(client, tiny_onnx):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "model": "paper_cnn"}
    m = client.get("/v1/model").json()
    assert m["name"] == "paper_cnn"
    assert m["metrics"] == Recognizer.load(tiny_onnx).metadata["metrics"]
    assert m["input"]["max_body_bytes"] == 300_000 and m["input"]["max_pixels"] == 1_000_000
    assert m["ocr"] in (True, False)


def test_page_static_and_docs(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for needle in ('<canvas id="pad"', 'aria-live="polite"', 'id="clear"', 'type="file"', "/static/app.js",
                   'name="viewport"'):
        assert needle in page.text
    number = client.get("/number")
    assert number.status_code == 200 and number.headers["content-type"].startswith("text/html")
    for needle in ('<canvas id="sheet"', 'aria-live="polite"', 'id="upload"', "/static/number.js", 'href="/"'):
        assert needle in number.text
    assert 'href="/number"' in page.text                       # each page links to the other
    for name in ("app.js", "pad.js", "number.js", "style.css"):
        assert client.get("/static/" + name).status_code == 200
    for docs, script in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = client.get(docs).text                            # the API docs load their scripts from here
        assert f'src="/static-offline-docs/{script}"' in html and "cdn." not in html
        assert len(client.get("/static-offline-docs/" + script).content) > 500_000
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/predict", "/v1/ocr", "/v1/model", "/healthz"} <= set(paths)
    content = paths["/v1/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json", "image/png"} <= set(content)


def test_predict_mnist_images_every_input_form(client, mnist_test, tiny_onnx):
    images, labels = mnist_test
    rec = Recognizer.load(tiny_onnx)
    correct = 0
    for a, y in zip(images[:20], labels[:20]):
        png = paper_style(a)
        multipart = client.post("/v1/predict", files={"file": ("d.png", png, "image/png")}).json()
        b64 = client.post("/v1/predict", json={"image": base64.b64encode(png).decode()}).json()
        data_url = client.post("/v1/predict", json={"image": "data:image/png;base64," + base64.b64encode(png).decode()}).json()
        raw = client.post("/v1/predict", content=png, headers={"content-type": "image/png"}).json()
        assert multipart == b64 == data_url == raw
        assert multipart["model"] == "paper_cnn" and len(multipart["probs"]) == 10
        assert abs(sum(multipart["probs"]) - 1) < 1e-4
        assert multipart["label"] == rec.predict(png).label          # the server adds nothing of its own
        assert multipart["not_one_digit"] == rec.predict(png).not_one_digit < 1e-4  # tiny has no such class
        correct += multipart["label"] == int(y)
    assert correct >= 17, f"only {correct}/20 MNIST test digits right"


def test_predict_pixels_matches_predict_normalized(client, mnist_test, tiny_onnx):
    images, labels = mnist_test
    expected = Recognizer.load(tiny_onnx).predict_normalized(images[:5].astype(np.float32) / 255)
    for a, p in zip(images[:5], expected):
        as_255 = client.post("/v1/predict", json={"pixels": a.tolist()}).json()
        as_unit = client.post("/v1/predict", json={"pixels": (a / 255).tolist()}).json()
        assert as_255["label"] == as_unit["label"] == int(p.argmax())
        np.testing.assert_allclose(as_255["probs"], p, atol=1e-5)
        np.testing.assert_allclose(as_unit["probs"], p, atol=1e-5)


def test_predict_returns_the_normalized_image(client, mnist_test):
    a = mnist_test[0][0]
    body = client.post("/v1/predict?normalized=true", files={"file": ("d.png", paper_style(a), "image/png")}).json()
    n = np.asarray(body["normalized"])
    assert n.shape == (28, 28) and n.min() >= 0 and n.max() == 255
    ys, xs = np.nonzero(n > 64)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) <= 21          # MNIST's 20-px box
    cy, cx = (np.indices(n.shape) * n).reshape(2, -1).sum(1) / n.sum()
    assert abs(cy - 14) < 1.5 and abs(cx - 14) < 1.5                   # centred by mass
    assert "normalized" not in client.post("/v1/predict", files={"file": ("d.png", paper_style(a), "image/png")}).json()


def test_blank_image_is_no_digit(client):
    body = client.post("/v1/predict", content=png_bytes(np.full((64, 64), 255, np.uint8)),
                       headers={"content-type": "image/png"}).json()
    assert body["status"] == "no_digit" and body["label"] is None and body["probs"] == [0.0] * 10
    body = client.post("/v1/predict", json={"pixels": [[0] * 28] * 28}).json()
    assert body["status"] == "no_digit"


def test_uncertain_when_threshold_is_high(tiny_onnx, mnist_test):
    with TestClient(create_app(tiny_onnx, min_confidence=1.0)) as c:
        body = c.post("/v1/predict", json={"pixels": mnist_test[0][0].tolist()}).json()
    assert body["status"] == "uncertain" and isinstance(body["label"], int)


def test_concurrent_requests_give_the_serial_answers(client, mnist_test):
    images, _ = mnist_test
    pngs = [paper_style(a) for a in images[:16]]
    serial = [client.post("/v1/predict", content=p, headers={"content-type": "image/png"}).json() for p in pngs]
    results: dict[int, dict] = {}

    def worker(i: int):
        r = client.post("/v1/predict", content=pngs[i % 16], headers={"content-type": "image/png"})
        results[i] = (r.status_code, r.json())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 48
    for i, (status, body) in results.items():
        assert status == 200 and body == serial[i % 16]


# ---------------------------------------------------------------- the error classes

def test_body_too_large_413(client):
    big = b"\x89PNG" + b"\0" * 400_000
    err(client.post("/v1/predict", content=big, headers={"content-type": "image/png"}), 413, "body_too_large")

    def chunks():  # no Content-Length: the cap is enforced on the bytes received
        for _ in range(40):
            yield b"\0" * 10_000
    err(client.post("/v1/predict", content=chunks(), headers={"content-type": "image/png"}), 413, "body_too_large")
    err(client.post("/v1/predict", files={"file": ("d.png", big, "image/png")}), 413, "body_too_large")


def test_pixel_count_cap_413(client):
    err(client.post("/v1/predict", content=png_header(2000, 1000), headers={"content-type": "image/png"}),
        413, "too_many_pixels")
    err(client.post("/v1/predict", content=png_header(50_000, 50_000), headers={"content-type": "image/png"}),
        413, "too_many_pixels")
    b64 = base64.b64encode(png_header(50_000, 50_000)).decode()
    err(client.post("/v1/predict", json={"image": b64}), 413, "too_many_pixels")


def test_wrong_content_type_415(client, mnist_test):
    png = paper_style(mnist_test[0][0])
    err(client.post("/v1/predict", content=png, headers={"content-type": "text/plain"}), 415, "unsupported_media_type")
    err(client.post("/v1/predict", content=b"a=1", headers={"content-type": "application/x-www-form-urlencoded"}), 415)
    err(client.post("/v1/predict", content=png), 415)      # no content type at all
    err(client.post("/v1/predict", files={"file": ("d.txt", b"hello", "text/plain")}), 415)


def test_corrupt_or_non_image_422(client, mnist_test):
    png = paper_style(mnist_test[0][0])
    post = lambda data: client.post("/v1/predict", content=data, headers={"content-type": "image/png"})  # noqa: E731
    err(post(b""), 422, "empty_image")
    err(post(png[: len(png) // 2]), 422, "bad_image")
    err(post(b"this is plain text, not a PNG at all"), 422, "not_an_image")
    err(post(bytes(range(256)) * 4), 422, "not_an_image")
    err(client.post("/v1/predict", files={"file": ("d.png", b"", "image/png")}), 422, "empty_image")
    err(client.post("/v1/predict", json={"image": base64.b64encode(b"GIF89a-not-really").decode()}), 422)


def test_bad_multipart(client):
    err(client.post("/v1/predict", files={"other": ("d.png", b"x", "image/png")}), 422, "missing_file")
    err(client.post("/v1/predict", data={"file": "just a string"},
                    headers={"content-type": "multipart/form-data; boundary=zzz"}), 400)
    err(client.post("/v1/predict", content=b"--zzz\r\nnot multipart",
                    headers={"content-type": "multipart/form-data"}), 400)


def test_uploaded_files_are_closed_on_every_path(client, mnist_test, monkeypatch):
    closed, close = [], UploadFile.close

    async def recording_close(self):
        closed.append(self.filename)
        await close(self)

    monkeypatch.setattr(UploadFile, "close", recording_close)
    png = paper_style(mnist_test[0][0])
    assert client.post("/v1/predict", files={"file": ("ok.png", png, "image/png")}).status_code == 200
    err(client.post("/v1/predict", files={"file": ("t.txt", b"hello", "text/plain")}), 415)
    err(client.post("/v1/predict", files={"other": ("o.png", png, "image/png")}), 422, "missing_file")
    err(client.post("/v1/predict", files={"file": ("e.png", b"", "image/png")}), 422, "empty_image")
    assert closed == ["ok.png", "t.txt", "o.png", "e.png"]


@pytest.mark.parametrize("body", [
    b"{not json", b"[]", b"null", b'"pixels"', b"{}",
    b'{"pixels": [[0]]}', b'{"pixels": [[0, 0]] }',
    b'{"image": "!!!not base64!!!"}', b'{"image": 42}',
    b'{"image": "AAAA", "pixels": []}', b'{"unknown": 1}',
])
def test_malformed_json_422(client, body):
    err(client.post("/v1/predict", content=body, headers={"content-type": "application/json"}), 422)


def test_wrong_array_shape_or_values_422(client):
    bad = [np.zeros((27, 28)), np.zeros((28, 29)), np.zeros((28, 28, 1)), np.zeros(784)]
    for a in bad:
        err(client.post("/v1/predict", json={"pixels": a.tolist()}), 422, "invalid_json")
    err(client.post("/v1/predict", json={"pixels": np.full((28, 28), 300).tolist()}), 422)
    err(client.post("/v1/predict", json={"pixels": np.full((28, 28), -1).tolist()}), 422)
    nan = ("[" + ",".join(["[" + ",".join(["NaN"] * 28) + "]"] * 28) + "]").encode()
    err(client.post("/v1/predict", content=b'{"pixels": ' + nan + b"}",
                    headers={"content-type": "application/json"}), 422)


def test_not_found_and_method_not_allowed_are_json(client):
    err(client.get("/v1/nope"), 404, "not_found")
    err(client.get("/v1/predict"), 405, "method_not_allowed")
    err(client.get("/v1/predict?normalized=maybe"), 405)
    err(client.post("/v1/predict?normalized=maybe", json={"pixels": [[0] * 28] * 28}), 422, "invalid_request")


class Slow:
    """Wraps a recognizer, making every prediction take `delay` seconds."""

    def __init__(self, inner, delay):
        self.inner, self.delay, self.name, self.metadata = inner, delay, inner.name, inner.metadata

    def predict(self, x):
        time.sleep(self.delay)
        return self.inner.predict(x)


def test_request_timeout_504(tiny_onnx):
    slow = Slow(Recognizer.load(tiny_onnx), delay=1.5)
    with TestClient(create_app(recognizer=slow, limits=Limits(timeout_s=0.3))) as c:
        t = time.perf_counter()
        body = err(c.post("/v1/predict", json={"pixels": [[0] * 28] * 28}), 504, "timeout")
        assert time.perf_counter() - t < 1.4
        assert "0.3 s" in body["message"]
        assert c.get("/healthz").status_code == 200     # the server is still serving


@pytest.mark.parametrize("limits, args, message", [
    (dict(timeout_s=0), ["--timeout", "0"], "--timeout must be above 0; got 0"),
    (dict(max_body_bytes=-1), ["--max-body-bytes", "-1"], "--max-body-bytes must be above 0; got -1"),
    (dict(max_pixels=0), ["--max-pixels", "0"], "--max-pixels must be above 0; got 0"),
    (None, ["--port", "70000"], "--port must be between 1 and 65535; got 70000"),
])
def test_limits_out_of_range_are_refused_before_serving(limits, args, message, capsys):
    from digitrec.cli import main
    from digitrec.errors import DigitrecError

    if limits is not None:
        with pytest.raises(DigitrecError, match=message):
            Limits(**limits)
    assert main(["serve", *args]) == 2  # refused before uvicorn starts (it would block here)
    assert message in capsys.readouterr().err


def test_ocr_501_until_available(tiny_onnx, mnist_test):
    """Without Recognizer.read, /v1/ocr answers 501 with a message."""
    plain = Slow(Recognizer.load(tiny_onnx), delay=0)     # has predict, not read
    with TestClient(create_app(recognizer=plain)) as c:
        err(c.post("/v1/ocr", content=paper_style(mnist_test[0][0]), headers={"content-type": "image/png"}),
            501, "not_implemented")
        assert c.get("/v1/model").json()["ocr"] is False


def test_ocr_reads_a_number(tiny_onnx, mnist_test):
    images, labels = mnist_test
    row = np.full((40, 8 + 36 * 3), 255, np.uint8)
    for i in range(3):                                   # three MNIST digits side by side, ink dark
        row[6:34, 8 + 36 * i:36 + 36 * i] = 255 - images[i]
    png = png_bytes(row)
    rec = Recognizer.load(tiny_onnx)
    with TestClient(create_app(tiny_onnx)) as c:
        assert c.get("/v1/model").json()["ocr"] is True
        body = c.post("/v1/ocr", files={"file": ("n.png", png, "image/png")}).json()
        assert set(body) == {"path", "text", "lines"} and body["path"] == "<upload>"
        expected = rec.read(png).to_dict()
        assert body["text"] == expected["text"] and body["lines"] == expected["lines"]
        assert len(body["text"]) == 3
        same = c.post("/v1/ocr", json={"image": base64.b64encode(png).decode()}).json()
        assert same == body
        err(c.post("/v1/ocr", json={"pixels": [[0] * 28] * 28}), 422)       # OCR takes images only
        err(c.post("/v1/ocr", content=b"", headers={"content-type": "image/png"}), 422)


def test_default_app_reads_numbers_with_the_ocr_reader(mnist_test):
    """The bundled default predicts with the paper's CNN and reads numbers with the bundled
    OCR reader, loaded in the lifespan (one instance for all requests)."""
    from digitrec.recognizer import OCR_MODEL

    images, _ = mnist_test
    row = np.full((40, 8 + 36 * 3), 255, np.uint8)
    for i in range(3):
        row[6:34, 8 + 36 * i:36 + 36 * i] = 255 - images[i]
    png = png_bytes(row)
    ocr_reader = Recognizer.load(OCR_MODEL)
    with TestClient(create_app()) as c:
        model = c.get("/v1/model").json()
        assert (model["name"], model["ocr_model"]) == ("paper_cnn", ocr_reader.name)
        assert c.app.state.recognizer._ocr.source == str(OCR_MODEL)
        body = c.post("/v1/ocr", files={"file": ("n.png", png, "image/png")}).json()
        assert body["lines"] == ocr_reader.read(png).to_dict()["lines"]


def test_cors_off_by_default_and_on_when_configured(client, tiny_onnx):
    r = client.get("/healthz", headers={"Origin": "https://example.org"})
    assert "access-control-allow-origin" not in r.headers
    pre = client.options("/v1/predict", headers={"Origin": "https://example.org",
                                                 "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers
    with TestClient(create_app(tiny_onnx, limits=Limits(cors_origins=["https://example.org"]))) as c:
        r = c.get("/healthz", headers={"Origin": "https://example.org"})
        assert r.headers["access-control-allow-origin"] == "https://example.org"
        r = c.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_missing_model_fails_at_startup(tmp_path):
    from digitrec.errors import DigitrecError

    with pytest.raises(DigitrecError, match="model not found"):
        with TestClient(create_app(tmp_path / "nope.onnx")):
            pass


def test_serve_cli_rejects_bad_arguments(capsys):
    from digitrec.cli import main

    assert main(["serve", "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert main(["serve", "--model", "/nonexistent/model.onnx"]) == 2
    assert "model not found" in capsys.readouterr().err


def test_serve_without_model_serves_the_bundled_one_whatever_the_shell_says(monkeypatch, tiny_onnx):
    """`digitrec serve` with no --model passes its workers the bundled model, not a DIGITREC_MODEL
    left in the caller's environment (that variable is for `uvicorn --factory` deployments)."""
    import uvicorn

    from digitrec import server

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.update(model=os.environ.get("DIGITREC_MODEL")))
    for name in ("DIGITREC_MAX_BODY_BYTES", "DIGITREC_MAX_PIXELS", "DIGITREC_TIMEOUT_S", "DIGITREC_CORS_ORIGINS"):
        monkeypatch.delenv(name, raising=False)  # serve() sets them: restored after the test
    monkeypatch.setenv("DIGITREC_MODEL", str(tiny_onnx))
    server.serve(port=8999)
    assert seen == {"model": None}
    server.serve(port=8999, model=tiny_onnx)
    assert seen == {"model": str(tiny_onnx.resolve())}


def test_pages_answer_head_and_are_revalidated(client):
    """HEAD works where GET does (uptime monitors, `curl -I`); pages and scripts carry no-cache, so a
    browser asks again (ETag) and never runs a new page with an old script after an upgrade."""
    for path in ("/", "/number", "/healthz", "/static/pad.js"):
        assert client.head(path).status_code == 200, path
    for path in ("/", "/number", "/static/pad.js", "/static/style.css"):
        assert client.get(path).headers["cache-control"] == "no-cache", path
    for path in ("/", "/number", "/static/pad.js"):               # a revalidation costs no body
        etag = client.get(path).headers["etag"]
        assert client.get(path, headers={"if-none-match": etag}).status_code == 304, path


def test_a_multipart_body_cut_short_is_malformed_and_pixels_must_be_numbers(client, mnist_test):
    png = paper_style(mnist_test[0][0])
    whole = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\n"
             b"Content-Type: image/png\r\n\r\n" + png + b"\r\n--XyZ--\r\n")
    headers = {"content-type": "multipart/form-data; boundary=XyZ"}
    assert client.post("/v1/predict", content=whole, headers=headers).status_code == 200
    assert client.post("/v1/predict", content=whole + b"an epilogue", headers=headers).status_code == 200
    body = err(client.post("/v1/predict", content=whole[:-9], headers=headers), 400, "bad_multipart")
    assert "closing boundary" in body["message"]
    err(client.post("/v1/predict", json={"pixels": [["1"] * 28] * 28}), 422, "invalid_json")
    err(client.post("/v1/predict", json={"pixels": [[True] * 28] * 28}), 422, "invalid_json")


def test_a_client_that_leaves_mid_body_is_no_internal_error(tiny_onnx, caplog):
    """The body ends early and the connection closes: nothing to answer, and no 'a bug' in the log."""
    import asyncio

    app = create_app(tiny_onnx)
    messages = iter([{"type": "http.request", "body": b"\x89PNG", "more_body": True}, {"type": "http.disconnect"}])

    async def receive():
        return next(messages)

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "path": "/v1/predict", "raw_path": b"/v1/predict", "query_string": b"", "root_path": "",
             "scheme": "http", "server": ("test", 80), "client": ("test", 1),
             "headers": [(b"content-type", b"image/png"), (b"content-length", b"1000")], "app": app}
    with caplog.at_level("INFO", logger="digitrec.server"):
        asyncio.run(app(scope, receive, send))
    assert "internal error" not in caplog.text and "client left" in caplog.text
