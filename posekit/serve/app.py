"""The posekit HTTP service: `create_app` builds the ASGI app (FastAPI), `serve` runs it with uvicorn.

Endpoints: ``POST /v1/pose`` (an image -> people, the per-image JSON of `posekit predict`, plus timings),
``GET /v1/models``, ``GET /healthz``, WebSocket ``/v1/stream`` (JPEG frames in, tracked and smoothed people out,
one tracker per connection), ``POST /v1/search`` (with an index: pose similarity), the browser page at ``/`` and
the OpenAPI docs at ``/docs``.

Inference runs off the event loop on a pool of ``workers`` threads sharing one estimator per model (ONNX Runtime
sessions are safe to run from several threads; posekit estimators keep no per-call state) with
``cores // workers`` ONNX Runtime threads each, so threads x workers never exceed the cores.  At most
``workers + queue`` jobs are admitted at once; beyond that requests get 503 with Retry-After instead of
waiting in an unbounded queue.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations (Request, WebSocket) at runtime.
import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np

from posekit.defaults import DEFAULTS
from posekit.errors import PosekitError
from posekit.serve.guard import MAX_BYTES, MAX_PIXELS, AccessLog, BodyLimit, RequestError, read_header

#: Requests admitted beyond the ones running (waiting for a worker); more get 503.
QUEUE = 16
#: Seconds a request may wait and run before it gets 504 (the work is not cancelled mid-run: its slot stays
#: taken until it ends, so the queue bound holds).
TIMEOUT = 30.0
#: Seconds a client may take to send its request body before it gets 408.
READ_TIMEOUT = 30.0
#: WebSocket streams open at once; more are closed with code 1013 (try again later).
MAX_STREAMS = 8
#: Matches returned by /v1/search unless ``k`` is given.
SEARCH_K = 5

log = logging.getLogger("posekit.serve")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """ONNX Runtime intra-op threads for each of ``workers`` inference threads: the cores shared out, at least 1."""
    return max(1, (cores or usable_cores()) // max(1, workers))


class Gate:
    """A bounded pool: `run` executes a blocking function on one of ``workers`` threads, refusing (503) when
    ``workers + queue`` jobs are already admitted and answering 504 after ``timeout`` seconds."""

    def __init__(self, workers: int, queue: int, timeout: float) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="posekit-infer")
        self.capacity, self.timeout = workers + queue, timeout
        self.busy = 0  # touched on the event loop only
        self.served = self.refused = self.timed_out = 0

    def _release(self) -> None:
        self.busy -= 1

    async def run(self, fn: Callable[[], Any]) -> Any:
        if self.busy >= self.capacity:
            self.refused += 1
            raise RequestError(503, f"server busy: {self.busy} requests in progress; retry shortly",
                               {"retry-after": "1"})
        loop = asyncio.get_running_loop()
        self.busy += 1
        future = self.pool.submit(fn)

        def done(_: concurrent.futures.Future) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server is shutting down
                loop.call_soon_threadsafe(self._release)

        future.add_done_callback(done)
        try:
            result = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.timeout)
        except asyncio.TimeoutError:
            future.cancel()  # drops it if still queued; a running job ends on its own and frees its slot then
            self.timed_out += 1
            raise RequestError(504, f"request took longer than {self.timeout:g} s; retry, or send a smaller "
                                    "image") from None
        self.served += 1
        return result

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _decode(data: bytes, max_pixels: int) -> np.ndarray:
    """Header check, then the full decode exactly as `posekit predict` reads a file."""
    from posekit.io import decode_image

    read_header(data, max_pixels)
    rgb = decode_image(data)
    if rgb is None:
        raise RequestError(415, "cannot decode the image: the file is corrupt or truncated")
    return rgb


def _coco_keypoints(value: Any) -> np.ndarray:
    """(17, 3) COCO-17 keypoints from a JSON query: a list of 17 [x, y, score] rows, or a dict by joint name as
    the people in /v1/pose and /v1/stream answers have them."""
    from posekit.skeleton import COCO17_NAMES

    try:
        if isinstance(value, dict):
            missing = [n for n in COCO17_NAMES if n not in value]
            if missing:
                raise RequestError(400, f"keypoints miss COCO-17 joints {missing[:3]}...; send all 17 by name")
            value = [value[n] for n in COCO17_NAMES]
        kp = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise RequestError(400, "keypoints must be 17 [x, y, score] rows or a dict joint name -> [x, y, score]"
                           ) from None
    if kp.shape != (17, 3) or not np.isfinite(kp).all():
        raise RequestError(400, f"keypoints must be 17 finite [x, y, score] rows, got shape {kp.shape}")
    return kp


def load_index(index: Any) -> tuple[Any, str | None]:
    """(index object, None) for a path (opened with `posekit.search.PoseIndex.load`) or an object with
    ``search``; (None, why) when posekit.search is not installed."""
    if index is None or hasattr(index, "search"):
        return index, None
    try:
        from posekit.search import PoseIndex
    except ImportError as exc:
        return None, f"pose search is not available in this posekit ({exc}); install a posekit with posekit.search"
    return PoseIndex.load(index), None


def create_app(model: Any = None, index: Any = None, *, stream_model: Any = None, workers: int = 1,
               queue: int = QUEUE, timeout: float = TIMEOUT, read_timeout: float = READ_TIMEOUT,
               max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS, max_streams: int = MAX_STREAMS,
               cors_origins: list[str] | None = None, threads: int | None = None) -> Any:
    """The FastAPI app.

    model: estimator name or object for both /v1/pose and /v1/stream (None: ``DEFAULTS.model`` for photos and
    ``DEFAULTS.video_model`` for the stream, as `posekit predict` chooses); stream_model overrides the stream's.
    index: a pose index (path for `posekit.search.PoseIndex.load`, or an object with ``search``) to enable
    /v1/search.  workers: inference threads; threads: ONNX Runtime threads for models loaded by name (None:
    cores // workers).  queue, timeout, read_timeout, max_bytes, max_pixels, max_streams: the limits (see the
    module constants).  cors_origins: origins allowed cross-origin (None: CORS off).
    """
    from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException

    from posekit.estimators.registry import load, models
    from posekit.pipeline.video import FrameTracker

    if workers < 1:
        raise PosekitError(f"--workers must be at least 1, got {workers}")
    threads = threads or threads_per_worker(workers)

    def resolve(m: Any, default: str) -> Any:  # a name (or None: the default) is loaded; objects kept
        return load(m or default, threads=threads) if m is None or isinstance(m, str) else m

    photo_est = resolve(model, DEFAULTS.model)
    same = stream_model is None and model is not None
    stream_est = photo_est if same else resolve(stream_model, DEFAULTS.video_model)
    search_index, search_problem = load_index(index)
    if search_problem:
        log.warning("posekit serve: --index given but %s; /v1/search answers 501", search_problem)
    gate = Gate(workers, queue, timeout)
    streams = {"open": 0}
    static = resources.files("posekit.serve") / "static"

    @contextlib.asynccontextmanager
    async def lifespan(_: Any):
        yield
        gate.close()

    app = FastAPI(title="posekit", version=_version(), lifespan=lifespan,
                  description="Human pose estimation over HTTP: photos, live WebSocket streams, pose search.")
    app.state.gate, app.state.photo_model, app.state.stream_model = gate, photo_est, stream_est
    app.state.index = search_index
    app.add_middleware(BodyLimit, max_bytes=max_bytes)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["*"])
    app.add_middleware(AccessLog)

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail), "status": exc.status_code}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}", "status": 422},
                            status_code=422)

    @app.exception_handler(PosekitError)
    async def _posekit_error(_: Request, exc: PosekitError) -> JSONResponse:
        return JSONResponse({"error": str(exc), "status": 400}, status_code=400)

    @app.exception_handler(Exception)
    async def _server_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("posekit serve: internal error")
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server log", "status": 500},
                            status_code=500)

    async def read_upload(request: Request) -> tuple[bytes, str | None]:
        """The image bytes and their file name: a multipart form's ``image`` field (or its only file), else the
        raw body."""
        async def read() -> tuple[bytes, str | None]:
            kind = request.headers.get("content-type", "")
            if kind.startswith("multipart/form-data"):
                form = await request.form(max_files=1, max_fields=16)
                upload = form.get("image")
                if upload is None or isinstance(upload, str):
                    upload = next((v for v in form.values() if not isinstance(v, str)), None)
                if upload is None:
                    raise RequestError(400, "no file in the form: send the image as the multipart field 'image'")
                name = os.path.basename(upload.filename or "") or None  # a label only, never opened
                return await upload.read(), name
            return await request.body(), None

        try:
            return await asyncio.wait_for(read(), read_timeout)
        except asyncio.TimeoutError:
            raise RequestError(408, f"request body not received within {read_timeout:g} s") from None

    def check_options(min_score: float | None, max_people: int | None) -> None:
        if min_score is not None and not 0.0 <= min_score <= 1.0:
            raise RequestError(422, f"min_score must be between 0 and 1, got {min_score}")
        if max_people is not None and max_people < 1:
            raise RequestError(422, f"max_people must be at least 1, got {max_people}")

    upload_body = {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                           "properties": {"image": {"type": "string", "format": "binary"}}}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "image/png": {"schema": {"type": "string", "format": "binary"}}}}}

    @app.post("/v1/pose", openapi_extra=upload_body, summary="People in one image")
    async def pose(request: Request, min_score: float = DEFAULTS.min_score,
                   max_people: int | None = DEFAULTS.max_people) -> JSONResponse:
        """An image (multipart field ``image``, or the raw bytes) -> the per-image JSON `posekit predict` writes
        (image, width, height, model, milliseconds, speed per stage, people) plus ``server`` timings (ms spent
        reading, queued, decoding, in total)."""
        start = time.perf_counter()
        check_options(min_score, max_people)
        data, name = await read_upload(request)
        got = time.perf_counter()

        def work() -> tuple[dict, float, float]:
            began = time.perf_counter()
            rgb = _decode(data, max_pixels)
            decoded = time.perf_counter()
            result = photo_est(rgb)
            result.source, result.image = name, None
            return result.best(min_score, max_people).to_json(), began, decoded

        record, began, decoded = await gate.run(work)
        record["server"] = {"read": _ms(got - start), "queue": _ms(began - got), "decode": _ms(decoded - began),
                            "total": _ms(time.perf_counter() - start)}
        return JSONResponse(record)

    @app.get("/v1/models", summary="The models this server runs")
    async def list_models() -> dict[str, Any]:
        """The photo and stream models, their skeletons (joint names and limbs, for drawing), every model name
        posekit knows, and the search index when there is one."""
        from posekit.skeleton import COCO17

        skeletons = {COCO17.name: {"keypoints": list(COCO17.keypoints), "edges": [list(e) for e in COCO17.edges]}}
        for est in (photo_est, stream_est):
            sk = getattr(est, "skeleton", None)
            if sk is not None:
                skeletons[sk.name] = {"keypoints": list(sk.keypoints), "edges": [list(e) for e in sk.edges]}
        return {"image_model": _name(photo_est), "stream_model": _name(stream_est),
                "skeletons": skeletons, "stream_skeleton": getattr(getattr(stream_est, "skeleton", None), "name", None),
                "available": models(),
                "search": {"enabled": search_index is not None, "entries": _len(search_index),
                           "problem": search_problem}}

    @app.get("/healthz", summary="Liveness and load")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "busy": gate.busy, "capacity": gate.capacity, "streams": streams["open"],
                "served": gate.served, "refused": gate.refused, "timed_out": gate.timed_out}

    @app.post("/v1/search", openapi_extra={"requestBody": {"required": True, "content": {
        **upload_body["requestBody"]["content"],
        "application/json": {"schema": {"type": "object", "required": ["keypoints"], "properties": {
            "keypoints": {"description": "17 COCO [x, y, score] rows or joint name -> [x, y, score]"},
            "k": {"type": "integer"}, "mirror": {"type": "boolean"}}}}}}}, summary="Pose similarity search")
    async def search(request: Request, k: int = SEARCH_K, mirror: bool = False) -> JSONResponse:
        """The ``k`` indexed people whose pose is closest to the query's: JSON ``{"keypoints": ...}`` (a person
        from /v1/pose or /v1/stream) or an image (its best-scoring person).  Each match: source, frame, box,
        distance, score, keypoints (COCO-17, source pixels) and, when the index keeps one, a thumbnail URL and
        the region of the source it shows."""
        if search_index is None:
            raise RequestError(501, search_problem or "no pose index: start the server with --index INDEX "
                                                      "(built with `posekit index build`)")
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                body = await asyncio.wait_for(request.json(), read_timeout)
            except asyncio.TimeoutError:
                raise RequestError(408, f"request body not received within {read_timeout:g} s") from None
            except ValueError:
                raise RequestError(400, "body is not valid JSON") from None
            if not isinstance(body, dict) or "keypoints" not in body:
                raise RequestError(400, 'send {"keypoints": ...} as JSON, or an image')
            k = int(body.get("k", k)) if isinstance(body.get("k", k), (int, float)) else k
            mirror = bool(body.get("mirror", mirror))
            query, data = _coco_keypoints(body["keypoints"]), None
        else:
            data, _ = await read_upload(request)
            query = None
        if not 1 <= k <= 100:
            raise RequestError(422, f"k must be between 1 and 100, got {k}")

        def work() -> dict[str, Any]:
            person = None
            q = query
            if q is None:
                people = photo_est(_decode(data, max_pixels)).best(DEFAULTS.min_score, 1)
                if not people:
                    return {"query": None, "matches": []}
                person = people[0]
                q = person
            matches = []
            for m in search_index.search(q, k, mirror=mirror):
                item = m.to_dict(keypoints=True)
                item["source"] = os.path.basename(str(item["source"]))  # the name, not the server's folders
                thumb = search_index.thumbnail(m.entry) if hasattr(search_index, "thumbnail") else None
                if thumb is not None:
                    item["thumbnail"] = f"/v1/search/thumbnail/{int(m.entry)}"
                    item["thumbnail_region"] = [round(float(v), 2) for v in thumb[1]]
                matches.append(item)
            return {"query": None if person is None else person.to_dict(), "matches": matches}

        return JSONResponse(await gate.run(work))

    @app.get("/v1/search/thumbnail/{entry}", summary="Thumbnail of an indexed person",
             responses={200: {"content": {"image/jpeg": {}}}})
    async def thumbnail(entry: int) -> Response:
        import cv2

        if search_index is None:
            raise RequestError(501, search_problem or "no pose index: start the server with --index INDEX")
        if not 0 <= entry < _len(search_index):
            raise RequestError(404, f"no index entry {entry}")
        thumb = search_index.thumbnail(entry) if hasattr(search_index, "thumbnail") else None
        if thumb is None:
            raise RequestError(404, f"index entry {entry} has no thumbnail")
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(thumb[0], cv2.COLOR_RGB2BGR))
        return Response(buf.tobytes(), media_type="image/jpeg", headers={"cache-control": "max-age=3600"})

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        """Binary messages: one JPEG (or PNG) frame each.  Answer per frame: a JSON text message with the
        /v1/pose record of the tracked, smoothed people (``track_id`` set), ``frame`` (this connection's count)
        and ``time`` (seconds since it opened); a frame that cannot be used gets ``{"error", "status", "frame"}``
        and the stream goes on."""
        if streams["open"] >= max_streams:
            await ws.accept()
            await ws.close(code=1013, reason=f"at most {max_streams} streams at once; retry later")
            return
        streams["open"] += 1
        try:
            await ws.accept()
            tracker = FrameTracker(stream_est)
            lock = threading.Lock()
            opened = time.monotonic()
            frame = 0
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                data = msg.get("bytes")
                t = time.monotonic() - opened
                if data is None:
                    await ws.send_json({"frame": frame, "status": 400,
                                        "error": "send frames as binary messages (JPEG bytes), not text"})
                    frame += 1
                    continue

                def work(data: bytes = data, t: float = t) -> dict:
                    if not lock.acquire(blocking=False):  # the previous frame timed out and still runs
                        raise RequestError(503, "previous frame still in progress; frame dropped")
                    try:
                        result = tracker(_decode(data, max_pixels), t)
                    finally:
                        lock.release()
                    result.image = None
                    return result.to_json()

                try:
                    record = await gate.run(work)
                    record.update(frame=frame, time=round(t, 4))
                except RequestError as exc:
                    record = {**exc.to_dict(), "frame": frame}
                except Exception as exc:  # never let one frame end the server; tell the client
                    log.exception("posekit serve: stream frame failed")
                    record = {"frame": frame, "status": 500, "error": f"internal error ({type(exc).__name__})"}
                await ws.send_json(record)
                frame += 1
        except WebSocketDisconnect:
            pass
        except asyncio.CancelledError:  # the server is shutting down with this stream open: say so, quietly
            with contextlib.suppress(Exception):
                await ws.close(code=1001, reason="server shutting down")
        finally:
            streams["open"] -= 1

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> FileResponse:
        files = {f.name: f for f in static.iterdir() if f.is_file()}
        if name not in files:  # only the package's own files, by exact name: no paths from requests
            raise RequestError(404, f"no static file {name!r}")
        kinds = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".png": "image/png"}
        return FileResponse(str(files[name]), media_type=kinds.get(os.path.splitext(name)[1], "text/plain"))

    return app


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _name(est: Any) -> str:
    return str(getattr(est, "name", type(est).__name__))


def _len(index: Any) -> int:
    try:
        return len(index) if index is not None else 0
    except TypeError:
        return 0


def _version() -> str:
    from posekit import __version__

    return __version__


#: Host names that keep the server on this machine.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(model: Any = None, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, index: Any = None,
          log_level: str = "info", **options: Any) -> None:
    """Run the service with uvicorn until Ctrl-C (see `create_app` for model, index, workers and the limits).
    Binds 127.0.0.1 unless ``host`` says otherwise."""
    import uvicorn

    if host not in LOOPBACK:
        log.warning("posekit serve: listening on %s: reachable from other machines; there is no authentication",
                    host)
    app = create_app(model, index, workers=workers, **options)
    gate: Gate = app.state.gate
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                ws_max_size=options.get("max_bytes", MAX_BYTES),
                limit_concurrency=gate.capacity + options.get("max_streams", MAX_STREAMS) + 32,
                timeout_keep_alive=5, timeout_graceful_shutdown=3)
