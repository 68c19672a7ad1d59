"""`posekit serve`: the HTTP service and live browser page (a thin layer over `posekit.serve.serve`)."""

from __future__ import annotations

import argparse

from posekit.defaults import DEFAULTS
from posekit.errors import PosekitError


def register(sub: argparse._SubParsersAction) -> None:
    from posekit.serve.app import QUEUE, READ_TIMEOUT, TIMEOUT  # plain constants: no FastAPI needed to build the parser
    from posekit.serve.guard import MAX_BYTES, MAX_PIXELS

    p = sub.add_parser("serve", help="HTTP service: POST /v1/pose, WebSocket /v1/stream, a live webcam page at /",
                       description="Serves pose estimation over HTTP on 127.0.0.1 (open http://127.0.0.1:8000/ "
                                   "for the live page, /docs for the API). Needs `pip install posekit[serve]`.")
    p.add_argument("--model", default=None,
                   help=f"estimator for photos and the live stream (default: {DEFAULTS.model} for photos, "
                        f"{DEFAULTS.video_model} for the stream)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; anything but 127.0.0.1 exposes the service to the network, "
                        "without authentication (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1,
                   help="inference threads; each gets cores/workers ONNX Runtime threads (default: %(default)s)")
    p.add_argument("--index", default=None, metavar="INDEX",
                   help="pose index (from `posekit index build`) for POST /v1/search and the Move Mirror panel")
    p.add_argument("--queue", type=int, default=QUEUE,
                   help="requests admitted beyond those running; more get 503 (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=TIMEOUT,
                   help="seconds a request may wait and run before 504 (default: %(default)s)")
    p.add_argument("--read-timeout", type=float, default=READ_TIMEOUT,
                   help="seconds a client may take to send its request body before 408 (default: %(default)s)")
    p.add_argument("--max-bytes", type=int, default=MAX_BYTES,
                   help="largest request body; larger get 413 (default: %(default)s)")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                   help="largest image (width x height); larger get 413 (default: %(default)s)")
    p.add_argument("--cors", nargs="*", default=None, metavar="ORIGIN",
                   help="origins allowed to call the API from other sites (default: none, CORS off)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="server log level; access log lines are JSON (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise PosekitError(f"posekit serve needs the serve extra ({exc.name} is missing): "
                           "pip install 'posekit[serve]'") from None
    from posekit.estimators.registry import check_name
    from posekit.serve import serve

    for flag, value, least in (("--port", args.port, 0), ("--workers", args.workers, 1), ("--queue", args.queue, 0),
                               ("--max-bytes", args.max_bytes, 1), ("--max-pixels", args.max_pixels, 1)):
        if value < least:
            raise PosekitError(f"{flag} must be at least {least}, got {value}")
    for flag, value in (("--timeout", args.timeout), ("--read-timeout", args.read_timeout)):
        if value <= 0:
            raise PosekitError(f"{flag} must be positive, got {value}")
    if args.model:
        check_name(args.model)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), format="%(message)s")
    serve(args.model, host=args.host, port=args.port, workers=args.workers, index=args.index, queue=args.queue,
          timeout=args.timeout, read_timeout=args.read_timeout, max_bytes=args.max_bytes, max_pixels=args.max_pixels,
          cors_origins=args.cors,
          log_level=args.log_level)
    return 0
