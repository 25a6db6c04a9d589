"""The HTTP API and the live page of `fer-edge serve` (FastAPI, the serve extra).

    POST /v1/classify         one image (raw body or multipart) -> its faces, as `classify --format jsonl`
    POST /v1/classify/batch   several images (multipart) -> one result per image, in order
    WS   /v1/stream           the live page's frames (binary JPEG) -> their faces (JSON), one reply a frame
    GET  /healthz, /v1/info, /metrics, / (the page), /docs (OpenAPI)

Every refusal is a JSON `{"error": ...}` with its status: 400 no image, 401 bad token, 413 too large (bytes,
or pixels read from the header), 415 unsupported type, 422 not a decodable image, 503 overloaded (with
Retry-After). The server reads only what a request carries: it never opens a path a client names.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from dataclasses import dataclass
from importlib import resources

import cv2
from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, Response

from fer_edge.errors import FerEdgeError
from fer_edge.imageio import to_bgr_u8
from fer_edge.render import annotate
from fer_edge.writers import face_record

from .metrics import Metrics
from .pool import Overloaded, RecognizerPool

IMAGE_TYPES = ("image/", "application/octet-stream")
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
KNOWN = ("/v1/classify", "/v1/classify/batch", "/v1/info", "/metrics")  # named in metrics before routing (401s)


@dataclass
class ServeConfig:
    token: str | None = None
    max_upload_mb: float = 20.0
    max_batch_images: int = 32
    retry_after_s: int = 1


class Refused(Exception):
    def __init__(self, status: int, message: str, kind: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.kind, self.headers = status, kind, headers or {}


class _Service:
    """What every route shares: the worker pool, the counters, the upload limit and the token."""

    def __init__(self, pool: RecognizerPool, config: ServeConfig):
        self.pool, self.config = pool, config
        self.metrics = Metrics(lambda: pool.depth)
        self.limit = int(config.max_upload_mb * 1024 * 1024)

    def authorised(self, header: str | None, query_token: str | None = None) -> bool:
        if not self.config.token:
            return True
        given = query_token if query_token is not None else (header or "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), self.config.token.encode())

    async def classify_image(self, data: bytes, detect: bool, min_face: int) -> tuple:
        try:
            future = self.pool.submit(data, detect, min_face)
        except Overloaded:
            raise Refused(503, "the server is busy: try again shortly", "overloaded",
                          {"Retry-After": str(self.config.retry_after_s)}) from None
        try:
            image, faces = await asyncio.wrap_future(future)
        except FerEdgeError as e:
            too_big = "pixel limit" in str(e) and "exceeds" in str(e)
            raise Refused(413 if too_big else 422, str(e), "pixels" if too_big else "not an image") from None
        self.metrics.images.inc()
        self.metrics.faces.inc(len(faces))
        return image, faces


def create_app(pool: RecognizerPool, info: dict, config: ServeConfig) -> FastAPI:
    app = FastAPI(title="fer-edge", version=info["versions"]["fer-edge"],
                  description="Facial expressions of the faces in an image: boxes, labels and probabilities.")
    service = _Service(pool, config)
    _accounting(app, service)
    _api(app, service, info)
    _stream(app, service)
    _page(app)
    app.state.metrics = service.metrics
    return app


def _accounting(app: FastAPI, service: _Service) -> None:
    metrics = service.metrics

    @app.middleware("http")
    async def account(request: Request, call_next):
        """Token check, the JSON error shape, and the counters, for every HTTP request."""
        path = request.scope.get("path", "")
        t0 = time.perf_counter()
        if path.startswith(("/v1/", "/metrics")) and not service.authorised(request.headers.get("authorization")):
            response = _error(Refused(401, "missing or wrong token: send Authorization: Bearer TOKEN", "token",
                                      {"WWW-Authenticate": "Bearer"}), metrics)
        else:
            try:
                response = await call_next(request)
            except Refused as e:
                response = _error(e, metrics)
        route = request.scope.get("route")  # the route's template, so that odd paths do not each get a series
        endpoint = getattr(route, "path", None) or (path if path in KNOWN else "other")
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)
        return response

    @app.exception_handler(Refused)
    async def refused(_request: Request, e: Refused):
        return _error(e, metrics)


def _api(app: FastAPI, service: _Service, info: dict) -> None:
    pool, metrics, limit, config = service.pool, service.metrics, service.limit, service.config

    @app.get("/healthz", summary="Liveness: 200 while the server runs")
    async def healthz():
        return {"status": "ok", "queue_depth": pool.depth}

    @app.get("/v1/info", summary="What this server runs: versions, providers, model, detector")
    async def v1_info():
        return info

    @app.get("/metrics", summary="Prometheus counters: requests, errors, latency, faces, queue depth")
    async def prometheus():
        return Response(metrics.text(), media_type=metrics.content_type)

    @app.post("/v1/classify", summary="The faces in one image",
              description="Send the image as the raw body (Content-Type image/* or application/octet-stream) or "
                          "as a multipart form's file. With annotate=true the answer is the image as JPEG with "
                          "the faces drawn on it.")
    async def v1_classify(request: Request, detect: bool = Query(True, description="false: the image is one face crop"),
                          min_face: int = Query(0, ge=0, description="leave out faces smaller than this (px)"),
                          annotate_image: bool = Query(False, alias="annotate", description="answer with a JPEG")):
        files = await _images(request, limit, max_files=1)
        image, faces = await service.classify_image(files[0][1], detect, min_face)
        if annotate_image:
            ok, jpeg = cv2.imencode(".jpg", annotate(to_bgr_u8(image), faces), [cv2.IMWRITE_JPEG_QUALITY, 90])
            return Response(jpeg.tobytes(), media_type="image/jpeg")
        return {"faces": [face_record(i, f) for i, f in enumerate(faces)]}

    @app.post("/v1/classify/batch", summary="The faces in several images, one result per image in order",
              description="A multipart form with one file part per image. A bad image gets an error entry; the "
                          "others are answered.")
    async def v1_batch(request: Request, detect: bool = Query(True), min_face: int = Query(0, ge=0)):
        files = await _images(request, limit, max_files=config.max_batch_images)

        async def one(name: str, data: bytes) -> dict:
            try:
                _, faces = await service.classify_image(data, detect, min_face)
                return {"name": name, "faces": [face_record(i, f) for i, f in enumerate(faces)]}
            except Refused as e:
                if e.status == 503:
                    raise
                metrics.errors.labels(e.kind).inc()
                return {"name": name, "error": str(e), "status": e.status}

        return {"results": list(await asyncio.gather(*(one(n, d) for n, d in files)))}


def _stream(app: FastAPI, service: _Service) -> None:
    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket, token: str | None = None):
        """The live page: each binary message is one JPEG frame; each reply is that frame's faces. The page
        sends the next frame only when the reply has come, so a slow server drops frames, never queues them."""
        if not service.authorised(None, token or ""):
            await ws.close(code=4401, reason="missing or wrong token")
            return
        await ws.accept()
        try:
            while True:
                data = await ws.receive_bytes()
                t0 = time.perf_counter()
                try:
                    image, faces = await service.classify_image(data, True, 0)
                    reply = {"faces": [face_record(i, f) for i, f in enumerate(faces)],
                             "width": image.shape[1], "height": image.shape[0]}
                except Refused as e:
                    service.metrics.errors.labels(e.kind).inc()
                    reply = {"error": str(e), "status": e.status}
                reply["server_ms"] = round(1000 * (time.perf_counter() - t0), 1)
                await ws.send_text(json.dumps(reply))
        except WebSocketDisconnect:
            return


def _page(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(_page_file("index.html"))

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        if name not in PAGE_FILES:  # a fixed set: no path from the client reaches the filesystem
            raise Refused(404, f"no such file: {name}", "not found")
        return Response(_page_file(name), media_type=PAGE_FILES[name])


def _page_file(name: str) -> str:
    return resources.files("fer_edge.serve").joinpath("page", name).read_text(encoding="utf-8")


def _error(e: Refused, metrics: Metrics) -> JSONResponse:
    metrics.errors.labels(e.kind).inc()
    return JSONResponse({"error": str(e)}, status_code=e.status, headers=e.headers)


async def _images(request: Request, limit: int, max_files: int) -> list[tuple[str, bytes]]:
    """(name, bytes) of each image the request carries: the raw body, or a multipart form's file parts. The
    body is read up to `limit` bytes and refused beyond it, whatever Content-Length says."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    multipart = kind == "multipart/form-data"
    if not multipart and not kind.startswith(IMAGE_TYPES):
        raise Refused(415, f"unsupported Content-Type {kind or '(none)'}: send an image (image/*, "
                           "application/octet-stream) or multipart/form-data", "type")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"the upload is {int(declared):,} bytes, over the {limit:,}-byte limit (--max-upload)", "size")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(413, f"the upload is over the {limit:,}-byte limit (--max-upload)", "size")
    if not multipart:
        if not body:
            raise Refused(400, "the request has no image in its body", "no image")
        return [("body", bytes(body))]
    request._body = bytes(body)  # the form parser reads the body already received
    try:
        form = await request.form(max_files=max_files, max_fields=max_files)
    except Exception as e:  # a malformed form, or more files than allowed
        raise Refused(400, f"cannot read the multipart form: {e}", "form") from None
    files = [(v.filename or k, await v.read()) for k, v in form.multi_items() if hasattr(v, "read")]
    if not files:
        raise Refused(400, "the form has no file part", "no image")
    return files
