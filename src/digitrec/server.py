"""The web service: a FastAPI app that serves the recognizer as a REST API and a drawing page.

`create_app(model_path)` builds the app; the recognizer is loaded once, in the
lifespan, and shared by all requests (ONNX Runtime sessions are thread-safe;
inference runs in the threadpool so the event loop never blocks). Endpoints:

  POST /v1/predict   one digit: multipart file, raw image body, JSON {"image": base64}
                     or JSON {"pixels": 28×28 numbers, ink high}
  POST /v1/ocr       a multi-digit number (the default model reads with the bundled OCR model,
                     loaded in the lifespan too; 501 for a recognizer without `read`)
  GET  /v1/model     model name, metrics, calibration and the input spec
  GET  /healthz      health check
  GET  /             the drawing page for one digit (static/index.html); OpenAPI docs at /docs
  GET  /number       the page for writing a number, read by /v1/ocr (static/number.html)

Every error is a JSON body {"error": code, "message": text}. Bad input never gives
a 5xx: oversized bodies 413, too many pixels 413, unsupported content type 415,
corrupt or non-image data 422, malformed JSON or a wrong array shape 422, and a
request that runs past its time limit 504. CORS is off unless origins are given.

This module is not the recognizer (recognizer.py) nor the image normalization
(preprocess.py); it only turns HTTP into calls to them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import threading
import time
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from importlib import resources
from typing import Annotated

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .errors import DigitrecError

log = logging.getLogger("digitrec.server")
logging.getLogger("python_multipart").setLevel(logging.CRITICAL)  # its parse errors reach the client as 400s

STATIC_DIR = resources.files("digitrec") / "static"


@dataclass
class Limits:
    """The service's limits; every one is checked before any decoding work."""

    max_body_bytes: int = 4 * 1024 * 1024      # request body cap -> 413
    max_pixels: int = 16_000_000               # image width × height cap -> 413
    timeout_s: float = 10.0                    # whole-request time limit -> 504
    cors_origins: list[str] = field(default_factory=list)  # empty = CORS off

    def __post_init__(self):
        from .config import check_ranges

        check_ranges([(flag, v, v > 0, "above 0") for flag, v in [("--max-body-bytes", self.max_body_bytes),
                      ("--max-pixels", self.max_pixels), ("--timeout", self.timeout_s)]])


class ApiError(Exception):
    """An HTTP error with a JSON body {"error": code, "message": message}."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


# ---------------------------------------------------------------- request bodies

Pixel = Annotated[float, Field(ge=0, le=255, allow_inf_nan=False, strict=True)]  # numbers, not "1" or true
Row = Annotated[list[Pixel], Field(min_length=28, max_length=28)]


class PredictJSON(BaseModel):
    """JSON input: exactly one of `image` (base64, a data: URL is fine) or `pixels`."""

    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(None, description="the image file (PNG, JPEG, ...) in base64; "
                                                "a data: URL is accepted")
    pixels: Annotated[list[Row], Field(min_length=28, max_length=28)] | None = Field(
        None, description="28×28 numbers, ink high, already in MNIST form: "
                          "floats in [0, 1] or 0-255 (any value above 1 means 0-255)")

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.image is None) == (self.pixels is None):
            raise ValueError("give exactly one of 'image' (base64) or 'pixels' (28×28 array)")
        return self


class OcrJSON(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(..., description="the image file in base64; a data: URL is accepted")


def _body_spec(json_model: type[BaseModel], description: str) -> dict:
    binary = {"type": "string", "format": "binary"}
    content = {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": binary}}},
        "application/json": {"schema": json_model.model_json_schema(ref_template="#/components/schemas/{model}")},
    }
    content.update({t: {"schema": binary} for t in ("image/png", "image/jpeg", "application/octet-stream")})
    return {"requestBody": {"required": True, "description": description, "content": content}}


# ---------------------------------------------------------------- responses

class PredictResponse(BaseModel):
    status: str = Field(..., description="'ok', 'uncertain' (best guess below the confidence "
                                         "threshold) or 'no_digit' (no ink found)")
    label: int | None = Field(None, description="the digit; null when status is 'no_digit'")
    probability: float
    probs: list[float] = Field(..., description="calibrated probability of each digit 0-9 "
                                                 "(all 0 for 'no_digit')")
    top_k: list[list[float]]
    not_one_digit: float = Field(0.0, description="probability that the image is not one digit (several "
                                                  "digits, or a piece of one), from a model with a 'not one "
                                                  "digit' class such as the bundled one; else 0")
    model: str
    normalized: list[list[int]] | None = Field(
        None, description="the 28×28 image the model saw (0-255, ink high); "
                          "only with ?normalized=true")


class ErrorResponse(BaseModel):
    error: str
    message: str


ERRORS = {code: {"model": ErrorResponse} for code in (400, 413, 415, 422, 504)}


# ---------------------------------------------------------------- middleware

DRAIN_BYTES = 64 * 1024 * 1024  # an oversized body up to this size is read and dropped before its 413


class LimitsMiddleware:
    """Pure ASGI middleware: request body cap (413) and whole-request time limit (504).

    The cap is checked on Content-Length up front and on the bytes actually
    received (chunked bodies), so a large body is never decoded. Unless the
    client asked `Expect: 100-continue` (curl does, and then sends nothing), the
    rest of an oversized body, up to `DRAIN_BYTES`, is read and dropped before the
    413 goes out: a client that sends its whole body before reading the answer
    (Python's urllib, for one) would otherwise see the connection reset, not the 413.
    """

    def __init__(self, app, limits: Limits):
        self.app, self.limits = app, limits

    async def _drain(self, receive, scope):
        if (b"expect", b"100-continue") in [(k, v.lower()) for k, v in scope.get("headers", [])]:
            return
        seen = 0
        with suppress(TimeoutError):
            async with asyncio.timeout(self.limits.timeout_s):
                while seen <= DRAIN_BYTES:
                    message = await receive()
                    if message["type"] != "http.request" or not message.get("more_body"):
                        return
                    seen += len(message.get("body", b""))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cap = self.limits.max_body_bytes
        too_big = ApiError(413, "body_too_large", f"request body larger than the {cap:,}-byte limit")
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    n = int(value)
                except ValueError:
                    return await _error(400, "bad_request", "invalid Content-Length header")(scope, receive, send)
                if n > cap:
                    if n <= DRAIN_BYTES:
                        await self._drain(receive, scope)
                    return await _error(413, too_big.code, too_big.message,
                                        {"Connection": "close"})(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    if message.get("more_body"):
                        await self._drain(receive, scope)
                    raise too_big
            return message

        started = False

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.limits.timeout_s):
                await self.app(scope, limited_receive, tracked_send)
        except TimeoutError:
            if started:  # the response is under way: nothing sensible left to send
                raise
            await _error(504, "timeout", f"the request took longer than {self.limits.timeout_s:g} s")(
                scope, receive, send)


# ---------------------------------------------------------------- input decoding

def _b64(text: str) -> bytes:
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ApiError(422, "bad_base64", f"'image' is not valid base64 ({e})") from e


def check_image_bytes(data: bytes, max_pixels: int) -> None:
    """Refuse empty, undecodable or oversized images from the header alone (no pixel decoding)."""
    from .errors import EmptyImageError, ImageError, ImageTooLargeError
    from .preprocess import open_image

    try:
        open_image(data, "image", max_pixels).close()
    except EmptyImageError as e:
        raise ApiError(422, "empty_image", str(e)) from e
    except ImageTooLargeError as e:
        raise ApiError(413, "too_many_pixels", str(e)) from e
    except ImageError as e:
        raise ApiError(422, "not_an_image", str(e)) from e


async def _read_input(request: Request, limits: Limits, allow_pixels: bool):
    """The request's input: image bytes (checked) or a 28×28 float32 array (0-255 or [0, 1])."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        body = await request.body()
        try:
            payload = (PredictJSON if allow_pixels else OcrJSON).model_validate_json(body)
        except ValidationError as e:
            raise ApiError(422, "invalid_json", _validation_message(e.errors())) from e
        if getattr(payload, "pixels", None) is not None:
            return np.asarray(payload.pixels, dtype=np.float32)  # the Recognizer reads 0-255 or [0, 1]
        data = _b64(payload.image)
    elif ctype == "multipart/form-data":
        boundary = parse_options_header(request.headers["content-type"])[1].get(b"boundary", b"")
        if b"--" + boundary + b"--" not in await request.body():  # cut short: its parts are not all there
            raise ApiError(400, "bad_multipart", "malformed multipart body: it ends before its closing boundary")
        try:  # (the form is parsed from the body just read, kept by the request)
            form = await request.form(max_files=1, max_fields=10, max_part_size=limits.max_body_bytes)
        except StarletteHTTPException as e:
            raise ApiError(400, "bad_multipart", f"malformed multipart body: {e.detail}") from e
        try:  # the uploaded files (spooled to disk when large) are closed on every path
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise ApiError(422, "missing_file", "multipart body needs a file field named 'file'")
            upload_type = (upload.content_type or "").split(";")[0].strip().lower()
            if upload_type and not (upload_type.startswith("image/") or upload_type == "application/octet-stream"):
                raise ApiError(415, "unsupported_media_type",
                               f"the uploaded file is {upload_type!r}; send an image (image/png, image/jpeg, ...)")
            data = await upload.read()
        finally:
            await form.close()
    elif ctype.startswith("image/") or ctype == "application/octet-stream":
        data = await request.body()
    else:
        raise ApiError(415, "unsupported_media_type",
                       f"content type {ctype or '(none)'!r} not supported; send multipart/form-data "
                       "(field 'file'), application/json or a raw image/* body")
    check_image_bytes(data, limits.max_pixels)
    return data


def _validation_message(errors) -> str:
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid request: " + "; ".join(parts) + more


# Pillow's exceptions for data that passed the header check but fails while decoding.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError)


async def _call(fn, *args):
    try:
        return await run_in_threadpool(fn, *args)
    except DigitrecError as e:
        raise ApiError(422, "bad_image", str(e).removeprefix("<bytes>: ")) from e
    except _DECODE_ERRORS as e:
        raise ApiError(422, "bad_image", f"could not decode the image ({type(e).__name__}: {e})") from e


# ---------------------------------------------------------------- the app

def create_app(model_path=None, *, recognizer=None, limits: Limits | None = None,
               min_confidence: float = 0.6) -> FastAPI:
    """The app. `model_path`: a .onnx or .pt file (None = the bundled default model);
    `recognizer`: an already-built object with the Recognizer interface (tests)."""
    limits = limits or Limits()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if recognizer is not None:
            app.state.recognizer = recognizer
        else:
            from .recognizer import Recognizer

            app.state.recognizer = await run_in_threadpool(Recognizer.load, model_path, min_confidence)
        if callable(getattr(app.state.recognizer, "ocr_reader", None)):  # OCR's model loads now, not mid-request
            await run_in_threadpool(app.state.recognizer.ocr_reader)
        log.info("digitrec: serving model %s", app.state.recognizer.name)
        yield

    # FastAPIOffline: FastAPI whose /docs and /redoc pages load Swagger UI 5 and ReDoc from files
    # shipped with it, not a CDN, so they work on a machine without internet
    app = FastAPIOffline(title="digitrec", version=_version(), lifespan=lifespan,
                  description="Handwritten digit recognition: one digit (/v1/predict) or a "
                              "multi-digit number (/v1/ocr). The drawing page is at /.")
    app.state.limits = limits
    ocr_slots = threading.BoundedSemaphore(os.cpu_count() or 1)  # OCRs running at once: one per core
    app.add_middleware(LimitsMiddleware, limits=limits)
    if limits.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=limits.cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["Content-Type"])

    @app.exception_handler(ApiError)
    async def _api_error(request, exc: ApiError):
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc: RequestValidationError):
        return _error(422, "invalid_request", _validation_message(exc.errors()))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request, exc: ClientDisconnect):  # the client left mid-request: nobody to answer
        log.info("client left during %s %s", request.method, request.url.path)
        return JSONResponse({}, status_code=499)

    @app.exception_handler(Exception)
    async def _internal_error(request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", "internal server error (a bug: please report it)")

    def _recognizer(request: Request):
        return request.app.state.recognizer

    @app.post("/v1/predict", response_model=PredictResponse, responses=ERRORS,
              openapi_extra=_body_spec(PredictJSON, "an image (multipart field 'file', raw image/* "
                                                    "body or base64 JSON) or a 28×28 array"))
    async def predict(request: Request,
                      normalized: bool = Query(False, description="include the 28×28 image the model saw")):
        """Recognize one handwritten digit."""
        x = await _read_input(request, limits, allow_pixels=True)
        r = _recognizer(request)
        pred = await _call(r.predict, x)
        out = pred.to_dict(top_k=3)
        out["probs"] = [float(v) for v in pred.probs] or [0.0] * 10
        out["model"] = r.name
        if normalized and pred.normalized is not None:
            out["normalized"] = np.clip(np.rint(np.asarray(pred.normalized) * 255), 0, 255).astype(np.uint8).tolist()
        return JSONResponse(jsonable_encoder(out))

    @app.post("/v1/ocr", responses={**ERRORS, 501: {"model": ErrorResponse}},
              openapi_extra=_body_spec(OcrJSON, "an image of a number (multipart field 'file', "
                                                "raw image/* body or base64 JSON)"))
    async def ocr(request: Request):
        """Read a multi-digit number: {"path", "text", "lines"}, as `digitrec ocr --json`."""
        r = _recognizer(request)
        if not callable(getattr(r, "read", None)):
            raise ApiError(501, "not_implemented", "OCR is not available in this version of digitrec")
        data = await _read_input(request, limits, allow_pixels=False)
        # OCR takes a core for up to seconds: as many run at once as there are cores, the others
        # wait (and give up, unstarted, at the time limit); a read past the limit stops instead of
        # working on for a client that has had its 504
        deadline = time.monotonic() + limits.timeout_s

        def read_in_turn():
            if not ocr_slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise TimeoutError("no OCR slot came free within the time limit")
            try:
                return r.read(data, deadline=deadline)
            finally:
                ocr_slots.release()

        result = await _call(read_in_turn)
        out = result.to_dict() if hasattr(result, "to_dict") else result
        if isinstance(out, dict) and out.get("path") is None:
            out = {**out, "path": "<upload>"}
        return JSONResponse(jsonable_encoder(out))

    @app.get("/v1/model")
    async def model_info(request: Request):
        """The model's name, metrics, calibration and the input the API accepts."""
        r = _recognizer(request)
        meta = jsonable_encoder(getattr(r, "metadata", {}) or {})
        return {"name": r.name, "metadata": meta,
                "metrics": meta.get("metrics"), "calibration": meta.get("calibration"),
                "input": {"content_types": ["multipart/form-data (field 'file')", "application/json",
                                            "image/*", "application/octet-stream"],
                          "json": {"image": "base64 image file", "pixels": "28×28 numbers, ink high, "
                                   "[0,1] or 0-255, already MNIST-normalized"},
                          "max_body_bytes": limits.max_body_bytes, "max_pixels": limits.max_pixels,
                          "timeout_s": limits.timeout_s},
                "ocr": callable(getattr(r, "read", None)),
                "ocr_model": r.ocr_reader().name if callable(getattr(r, "ocr_reader", None)) else None}

    @app.get("/healthz")
    @app.head("/healthz", include_in_schema=False)  # uptime monitors often ask with HEAD
    async def healthz(request: Request):
        """Health check: 200 with the model's name once the model is loaded."""
        return {"status": "ok", "model": _recognizer(request).name}

    static = _Revalidated(directory=str(STATIC_DIR))  # the pages too: ETag, 304, no-cache

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index(request: Request):
        return await static.get_response("index.html", request.scope)

    @app.api_route("/number", methods=["GET", "HEAD"], include_in_schema=False)
    async def number_page(request: Request):
        return await static.get_response("number.html", request.scope)

    app.mount("/static", static, name="static")
    return app


class _Revalidated(StaticFiles):
    """Static files that a browser checks with the server on every load (ETag: usually a 304), so
    after an upgrade it never runs a new page with an old script."""

    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("digitrec")
    except Exception:
        return "0"


def create_app_from_env() -> FastAPI:
    """The app configured by DIGITREC_* environment variables: the factory that
    `digitrec serve` and `uvicorn --factory digitrec.server:create_app_from_env` use,
    so several worker processes build identical apps."""
    env = os.environ.get
    limits = Limits(max_body_bytes=int(env("DIGITREC_MAX_BODY_BYTES", Limits.max_body_bytes)),
                    max_pixels=int(env("DIGITREC_MAX_PIXELS", Limits.max_pixels)),
                    timeout_s=float(env("DIGITREC_TIMEOUT_S", Limits.timeout_s)),
                    cors_origins=[o for o in env("DIGITREC_CORS_ORIGINS", "").split(",") if o.strip()])
    return create_app(env("DIGITREC_MODEL") or None, limits=limits,
                      min_confidence=float(env("DIGITREC_MIN_CONFIDENCE", "0.6")))


def serve(host: str = "127.0.0.1", port: int = 8000, model=None, workers: int = 1,
          limits: Limits | None = None, log_level: str = "info") -> None:
    """Run the app under uvicorn (blocking). With workers > 1, uvicorn starts that many
    processes, each loading the model once."""
    import uvicorn

    from pathlib import Path

    from .recognizer import Recognizer

    limits = limits or Limits()
    Recognizer.load(model)  # fail here, with a clear message, rather than in every worker's start-up
    if model is not None:
        os.environ["DIGITREC_MODEL"] = str(Path(model).resolve())
    else:  # the bundled model, as asked: not one a DIGITREC_MODEL of the caller's shell names
        os.environ.pop("DIGITREC_MODEL", None)
    os.environ["DIGITREC_MAX_BODY_BYTES"] = str(limits.max_body_bytes)
    os.environ["DIGITREC_MAX_PIXELS"] = str(limits.max_pixels)
    os.environ["DIGITREC_TIMEOUT_S"] = str(limits.timeout_s)
    os.environ["DIGITREC_CORS_ORIGINS"] = ",".join(limits.cors_origins)
    uvicorn.run("digitrec.server:create_app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level=log_level, timeout_keep_alive=5)
