"""`posekit predict`: a thin command-line layer over `posekit.predict` (images, folders, globs, videos, cameras)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from posekit.defaults import DEFAULTS, add_option
from posekit.errors import PosekitError
from posekit.io import write_json
from posekit.pipeline.predict import expand_sources, image_id, is_stream, output_names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="find people and their joints in images, folders, globs or videos",
                       description="Writes annotated images and JSON (a per-image file, and COCO results with "
                                   "--json); videos write an annotated video and JSON lines.")
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="image, folder, glob or video file")
    p.add_argument("--source", dest="camera", metavar="CAMERA|URL",
                   help="a camera index (0) or a stream URL (rtsp://...) instead of files")
    p.add_argument("--model", default=None,
                   help=f"estimator name (`posekit models list`); default: {DEFAULTS.model} for images, "
                        f"{DEFAULTS.video_model} for videos and cameras")
    add_option(p, "out")
    p.add_argument("--json", dest="json_path", metavar="FILE",
                   help="COCO results-format JSON for all images (image_id, category_id, keypoints, score); "
                        "it keeps every candidate person, whatever --min-score, as COCO AP needs the low-scored ones")
    add_option(p, "min_score")
    add_option(p, "threshold")
    add_option(p, "max_people")
    add_option(p, "flip")
    p.add_argument("--no-draw", action="store_true", help="write JSON only, no annotated images")
    p.add_argument("--verbose", action="store_true", help="let OpenCV/FFmpeg print their own warnings")
    v = p.add_argument_group("video and camera")
    add_option(v, "smooth", "--no-smooth", action="store_false", help="turn off One-Euro keypoint smoothing")
    add_option(v, "max_age")
    add_option(v, "min_hits")
    add_option(v, "redetect_every", metavar="N")
    v.add_argument("--stats", action="store_true",
                   help="print tracks, median track length, jitter before/after smoothing (px/frame^2)")
    add_option(v, "max_frames")
    p.set_defaults(func=run)


def check_args(args: argparse.Namespace) -> None:
    """One clear line for each out-of-range option, before any model is loaded."""
    if args.max_people is not None and args.max_people < 1:
        raise PosekitError("--max-people must be at least 1")
    for flag, value in (("--threshold", args.threshold), ("--min-score", args.min_score)):
        if not 0.0 <= value <= 1.0:
            raise PosekitError(f"{flag} must be between 0 and 1, got {value}")
    for flag, value, least in (("--max-age", args.max_age, 0), ("--min-hits", args.min_hits, 1),
                               ("--redetect-every", args.redetect_every, 1), ("--max-frames", args.max_frames, 1)):
        if value is not None and value < least:
            raise PosekitError(f"{flag} must be at least {least}, got {value}")


def run(args: argparse.Namespace) -> int:
    import posekit
    from posekit.estimators.registry import check_name

    check_args(args)
    if args.camera is None and not args.sources:
        raise PosekitError("nothing to do: give an image, folder, glob or video (or --source 0 for a camera)")
    video_mode = args.camera is not None or any(is_stream(s) for s in args.sources)
    model = args.model or (DEFAULTS.video_model if video_mode else DEFAULTS.model)
    check_name(model)
    if not args.verbose:
        quiet_native_logs()
    if video_mode:
        if args.json_path:
            raise PosekitError("--json is for images; videos write a JSON-lines file per video into --out")
        if not all(is_stream(s) for s in args.sources):
            raise PosekitError("give either videos/cameras or images in one run, not both")
        est = posekit.load(model)
        if args.flip:
            est = est.flipped()
        sources = ([args.camera] if args.camera is not None else []) + list(args.sources)
        return max(run_video(args, est, src) for src in sources)

    files, missing = expand_sources(args.sources)
    for m in missing:
        print(f"posekit predict: not found: {m}", file=sys.stderr)
    if not files:
        raise PosekitError("no images to process (check the paths)")
    names = output_names(files)
    renamed = [(f, n) for f, n in zip(files, names) if n != f.stem]
    if renamed:
        print(f"posekit predict: {len(renamed)} file names collide; their outputs keep the extension "
              f"(e.g. {renamed[0][0].name} -> {renamed[0][1]}.json)", file=sys.stderr)
    out_dir = Path(args.out)
    coco: list[dict] = []
    failed = len(missing)
    results = posekit.predict(files, model, flip=args.flip, min_score=None, errors="report")
    for index, (path, name, result) in enumerate(zip(files, names, _progress(results, len(files)))):
        if result.error:
            failed += 1
            tqdm.write(f"posekit predict: skipped {path}: {result.error}", file=sys.stderr)
            continue
        img_id = image_id(path, index)
        coco.extend(result.to_coco(img_id))
        shown = result.best(args.min_score, args.max_people)
        write_json(out_dir / f"{name}.json", {**shown.to_json(), "image_id": img_id})
        if not args.no_draw:
            posekit.io.write_image(out_dir / f"{name}.jpg", shown.plot(args.threshold))
        if len(files) == 1:
            n = len(shown)
            print(f"{path}: {n} {'person' if n == 1 else 'people'} in {result.milliseconds:.0f} ms -> "
                  f"{out_dir / (name + ('.jpg' if not args.no_draw else '.json'))}")
    if args.json_path:
        write_json(Path(args.json_path), coco, indent=None)
    done = len(files) - (failed - len(missing))
    if len(files) > 1:
        print(f"{done} of {len(files)} images done -> {out_dir}/" + (f", {failed} failed" if failed else ""))
    return 1 if failed else 0


def quiet_native_logs() -> None:
    """OpenCV's and FFmpeg's own warnings off (``--verbose`` keeps them)."""
    import contextlib
    import os

    import cv2

    with contextlib.suppress(AttributeError):  # OpenCV builds without the logging module
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")


def _progress(results, total: int):
    """A tqdm bar for several files (on stderr; hidden when not a terminal), the plain iterator for one."""
    return results if total < 2 else tqdm(results, total=total, unit="img", disable=None, file=sys.stderr)


def run_video(args: argparse.Namespace, est, source: str) -> int:
    """Track people through one video or camera; write <out>/<name>.mp4 and <name>.jsonl. Exit code 1 when the
    source ended early (truncated file, lost camera)."""
    import contextlib

    from posekit.pipeline import JsonlSink, VideoSink, VideoSource, frame_record
    from posekit.pipeline.metrics import video_stats
    from posekit.pipeline.predict import predict_video

    src = VideoSource(source)
    stem = Path(args.out) / (Path(source).stem if not src.is_live else f"camera{Path(str(source)).name}")
    history: list[list] = []
    interrupted = False
    frames_done = 0
    total = min(filter(None, (src.frame_count, args.max_frames)), default=None)
    sinks = [] if args.no_draw else [VideoSink(stem.with_suffix(".mp4"), src.fps or 30.0)]
    with contextlib.ExitStack() as stack:
        for sink in sinks:
            stack.enter_context(sink)
        record = stack.enter_context(JsonlSink(stem.with_suffix(".jsonl")))
        results = stack.enter_context(contextlib.closing(
            predict_video(src, est, max_frames=args.max_frames, max_people=args.max_people, smooth=args.smooth,
                          max_age=args.max_age, min_hits=args.min_hits, redetect_every=args.redetect_every)))
        bar = tqdm(results, total=total, unit="frame", disable=None, file=sys.stderr, desc=Path(str(source)).name)
        try:
            for r in bar:
                for sink in sinks:
                    sink.write(r.plot(args.threshold))
                record.write(frame_record(r.frame, r.time_s, r))
                frames_done += 1
                if args.stats:
                    history.append(r)
        except KeyboardInterrupt:
            interrupted = True
    outputs = [s.path for s in sinks] + [record.path]
    print(f"{source}: {frames_done} frames -> "
          + ", ".join(str(o) for o in outputs) + (" (interrupted)" if interrupted else ""))
    for warning in [src.warning] + [s.warning for s in sinks]:
        if warning:
            print(f"posekit predict: warning: {warning}", file=sys.stderr)
    if args.stats and history:
        stats = video_stats(history)
        print("  " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in stats.items()))
    if interrupted:
        raise KeyboardInterrupt  # outputs are closed and kept; the CLI exits 130
    return 1 if src.warning else 0
