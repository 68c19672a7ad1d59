"""What the server checks before it spends memory or time on a request: body size, image header, pixel count.

Pure functions and a small ASGI middleware, no model: `read_header` sizes an image from its header alone (Pillow
reads a few bytes, decodes no pixels), so a 30000 x 30000 PNG of a few hundred bytes is refused before OpenCV
would allocate gigabytes for it.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

#: Largest request body accepted (bytes); larger ones get 413.
MAX_BYTES = 10 * 1024 * 1024
#: Largest image accepted (width x height); larger ones get 413 before any pixel is decoded.
MAX_PIXELS = 40_000_000
#: Image formats accepted (Pillow's names); other bytes get 415.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO")
#: At most this many bytes of a refused oversized body are read and thrown away, so the client can read the
#: 413 answer instead of a reset connection; beyond it the connection is closed.
DRAIN_BYTES = 64 * 1024 * 1024


class RequestError(Exception):
    """A request the server refuses: HTTP ``status`` and a one-line ``message`` naming problem and fix."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status}


def read_header(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[str, int, int]:
    """(format, width, height) of an encoded image from its header; RequestError 415 for bytes that are not an
    accepted image, 413 for an image over ``max_pixels``."""
    from PIL import Image

    if not data:
        raise RequestError(400, "empty body: send an image (multipart field 'image', or the raw bytes)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (width, height) = im.format or "", im.size
    except Image.DecompressionBombError:
        raise RequestError(413, f"image too large: more than {max_pixels} pixels; send a smaller image") from None
    except Exception:  # Pillow raises UnidentifiedImageError, SyntaxError, ValueError... on junk
        raise RequestError(415, "not an image: send a JPEG, PNG, WebP, BMP or TIFF file") from None
    if fmt not in FORMATS:
        raise RequestError(415, f"unsupported image format {fmt or 'unknown'}: send JPEG, PNG, WebP, BMP or TIFF")
    if width < 1 or height < 1:
        raise RequestError(400, f"image has no pixels ({width} x {height})")
    if width * height > max_pixels:
        raise RequestError(413, f"image too large: {width} x {height} = {width * height} pixels, at most "
                                f"{max_pixels}; send a smaller image")
    return fmt, width, height


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a body grows past the limit (the middleware answers 413)."""


Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


async def send_json(send: Send, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    """A complete JSON response through raw ASGI ``send``."""
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: HTTP bodies over ``max_bytes`` get 413 (JSON error), whether announced by Content-Length
    or streamed (chunked); at most ``DRAIN_BYTES`` of a refused body are read and dropped, for at most
    ``drain_seconds``, so the client reads the answer; then the connection closes."""

    def __init__(self, app: Any, max_bytes: int = MAX_BYTES, drain_seconds: float = 10.0) -> None:
        self.app, self.max_bytes, self.drain_seconds = app, max_bytes, drain_seconds

    def _error(self) -> dict[str, Any]:
        return RequestError(413, f"request body too large: at most {self.max_bytes} bytes; send a smaller "
                                 "image").to_dict()

    async def _drain(self, receive: Receive, already: int) -> None:
        seen, deadline = already, time.monotonic() + self.drain_seconds
        while seen <= DRAIN_BYTES and time.monotonic() < deadline:
            msg = await receive()
            if msg["type"] != "http.request":
                return
            seen += len(msg.get("body", b""))
            if not msg.get("more_body", False):
                return

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                announced = int(length)
            except ValueError:
                await send_json(send, 400, RequestError(400, "bad Content-Length header").to_dict())
                return
            if announced > self.max_bytes:
                await self._drain(receive, 0)
                await send_json(send, 413, self._error(), {"connection": "close"})
                return
        received = 0
        started = ended = False

        async def limited() -> dict:
            nonlocal received, ended
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                ended = not msg.get("more_body", False)
                if received > self.max_bytes:
                    raise BodyTooLarge
            return msg

        async def watched(msg: dict) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited, watched)
        except BodyTooLarge:
            if started:
                raise
            if not ended:  # a receive() after the body's end would wait for the disconnect
                await self._drain(receive, received)
            await send_json(send, 413, self._error(), {"connection": "close"})


class AccessLog:
    """ASGI middleware: one JSON line per HTTP request or WebSocket session on the ``posekit.serve.access`` logger
    (time, client, method, path, status, milliseconds, response bytes)."""

    def __init__(self, app: Any) -> None:
        import logging

        self.app, self.log = app, logging.getLogger("posekit.serve.access")

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        info: dict[str, Any] = {"status": None, "bytes": 0}

        async def watched(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                info["status"] = msg["status"]
            elif msg["type"] == "http.response.body":
                info["bytes"] += len(msg.get("body", b""))
            elif msg["type"] == "websocket.accept":
                info["status"] = 101
            elif msg["type"] == "websocket.close" and info["status"] is None:
                info["status"] = 403
            await send(msg)

        try:
            await self.app(scope, receive, watched)
        finally:
            client = scope.get("client") or ("-", 0)
            self.log.info(json.dumps({
                "time": round(time.time(), 3), "client": f"{client[0]}:{client[1]}",
                "method": scope.get("method", "WS"), "path": scope.get("path"), "status": info["status"] or 500,
                "ms": round((time.monotonic() - start) * 1000, 1), "bytes": info["bytes"]}))
