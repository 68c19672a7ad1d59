"""`posekit predict`: people and their joints in images, folders, globs (and videos, see `posekit.pipeline`)."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from posekit.errors import PosekitError
from posekit.io import IMAGE_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="find people and their joints in images, folders, globs or videos",
                       description="Writes annotated images and JSON (COCO results + a per-image file).")
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="image, folder, glob or video file")
    p.add_argument("--source", dest="camera", metavar="CAMERA|URL",
                   help="a camera index (0) or a stream URL (rtsp://...) instead of files")
    p.add_argument("--model", default=None, help="estimator name (`posekit models list`); default: %(default)s")
    p.add_argument("--out", default="posekit_out", help="folder for annotated images/videos (default: %(default)s)")
    p.add_argument("--json", dest="json_path", metavar="FILE",
                   help="COCO results-format JSON for all images (image_id, category_id, keypoints, score)")
    p.add_argument("--threshold", type=float, default=0.3,
                   help="keypoint score below which a joint is hidden in drawings (default: %(default)s)")
    p.add_argument("--max-people", type=int, default=None, help="keep at most N people per image (best first)")
    p.add_argument("--flip", action="store_true",
                   help="flip test: also run each crop (or the whole image) mirrored and fuse the answers")
    p.add_argument("--no-draw", action="store_true", help="write JSON only, no annotated images")
    v = p.add_argument_group("video and camera")
    v.add_argument("--no-smooth", action="store_true", help="turn off One-Euro keypoint smoothing (on for video)")
    v.add_argument("--max-age", type=int, default=30,
                   help="frames a lost track is kept for re-identification (default: %(default)s)")
    v.add_argument("--min-hits", type=int, default=3,
                   help="detections in a row before a new track gets an id (default: %(default)s)")
    v.add_argument("--redetect-every", type=int, default=None, metavar="N",
                   help="run the person detector on the whole frame every N frames at least (default: 5 for "
                        "multi-person models; otherwise only when a tracked person is lost)")
    v.add_argument("--stats", action="store_true",
                   help="print tracks, median track length, jitter before/after smoothing (px/frame^2)")
    v.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    p.set_defaults(func=run)


def expand_sources(sources: list[str]) -> tuple[list[Path], list[str]]:
    """Files to process (folders expanded to their images, globs resolved) and sources that matched nothing."""
    files: list[Path] = []
    missing: list[str] = []
    for src in sources:
        path = Path(src)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                missing.append(f"{src} (folder without images)")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif glob.has_magic(src):
            found = sorted(Path(p) for p in glob.glob(src, recursive=True) if Path(p).is_file())
            if not found:
                missing.append(f"{src} (glob matched nothing)")
            files.extend(found)
        else:
            missing.append(src)
    return files, missing


def image_id(path: Path, index: int) -> int:
    """COCO image id: the file name when it is a number (COCO's own files), else the position in the run."""
    return int(path.stem) if path.stem.isdigit() else index


def coco_results(people: list, img_id: int) -> list[dict[str, Any]]:
    """COCO results-format records (category 1 = person) for people with a COCO-17 mapping."""
    out = []
    for p in people:
        if p.skeleton.to_coco is None:
            continue
        kp = p.to_coco()
        out.append({"image_id": img_id, "category_id": 1, "score": round(float(p.score), 5),
                    "keypoints": [round(float(v), 2) for v in kp.reshape(-1)]})
    return out


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write: temp file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> int:
    import posekit

    video_mode = args.camera is not None or any(Path(s).suffix.lower() in VIDEO_SUFFIXES for s in args.sources)
    model = args.model or (posekit.DEFAULT_VIDEO_MODEL if video_mode else posekit.DEFAULT_MODEL)
    from posekit.estimators.registry import check_name

    check_name(model)
    if args.max_people is not None and args.max_people < 1:
        raise PosekitError("--max-people must be at least 1")
    if not 0.0 <= args.threshold <= 1.0:
        raise PosekitError("--threshold must be between 0 and 1")
    if args.camera is None and not args.sources:
        raise PosekitError("nothing to do: give an image, folder, glob or video (or --source 0 for a camera)")
    if video_mode:
        videos = [s for s in args.sources if Path(s).suffix.lower() in VIDEO_SUFFIXES]
        if args.json_path:
            raise PosekitError("--json is for images; videos write a JSON-lines file per video into --out")
        if len(videos) != len(args.sources):
            raise PosekitError("give either videos/cameras or images in one run, not both")
        if args.max_frames is not None and args.max_frames < 1:
            raise PosekitError("--max-frames must be at least 1")
        for flag, value, least in (("--max-age", args.max_age, 0), ("--min-hits", args.min_hits, 1),
                                   ("--redetect-every", args.redetect_every, 1)):
            if value is not None and value < least:
                raise PosekitError(f"{flag} must be at least {least}, got {value}")
        est = posekit.load(model)
        sources = ([args.camera] if args.camera is not None else []) + videos
        return max(run_video(args, est, src) for src in sources)

    files, missing = expand_sources(args.sources)
    for m in missing:
        print(f"posekit predict: not found: {m}", file=sys.stderr)
    if not files:
        raise PosekitError("no images to process (check the paths)")
    est = posekit.load(model)
    if args.flip:
        from posekit.pipeline.flip import flip_test

        est = flip_test(est)
    out_dir = Path(args.out)
    results: list[dict[str, Any]] = []
    failed = len(missing)
    progress = _progress(files)
    for index, path in enumerate(progress):
        try:
            image = posekit.read_image(path)
        except PosekitError as exc:
            failed += 1
            tqdm.write(f"posekit predict: skipped {path}: {exc}", file=sys.stderr)
            continue
        start = time.perf_counter()
        people = est(image)
        people.sort(key=lambda p: -p.score)
        if args.max_people:
            people = people[: args.max_people]
        ms = (time.perf_counter() - start) * 1000.0
        img_id = image_id(path, index)
        results.extend(coco_results(people, img_id))
        stem = out_dir / path.stem
        write_json(stem.with_suffix(".json"), {
            "image": str(path), "image_id": img_id, "width": image.shape[1], "height": image.shape[0],
            "model": model, "milliseconds": round(ms, 1), "people": [p.to_dict() for p in people],
        })
        if not args.no_draw:
            posekit.io.write_image(stem.with_suffix(".jpg"), posekit.draw(image, people, threshold=args.threshold))
        if len(files) == 1:
            print(f"{path}: {len(people)} {'person' if len(people) == 1 else 'people'} in {ms:.0f} ms -> "
                  f"{stem.with_suffix('.jpg' if not args.no_draw else '.json')}")
    if args.json_path:
        write_json(Path(args.json_path), results)
    done = len(files) - (failed - len(missing))
    if len(files) > 1:
        print(f"{done} of {len(files)} images done -> {out_dir}/" + (f", {failed} failed" if failed else ""))
    return 1 if failed else 0


def _progress(files: list[Path]):
    """A tqdm bar for several files (on stderr; hidden when not a terminal), the plain list for one."""
    return files if len(files) < 2 else tqdm(files, unit="img", disable=None, file=sys.stderr)


def run_video(args: argparse.Namespace, est, source: str) -> int:
    """Track people through one video or camera; write <out>/<name>.mp4 and <name>.jsonl. Exit code 1 when the
    source ended early (truncated file, lost camera)."""
    import contextlib
    import itertools

    import posekit
    from posekit.pipeline import JsonlSink, VideoSink, VideoSource, frame_record, track_video
    from posekit.pipeline.metrics import video_stats

    src = VideoSource(source)
    stem = Path(args.out) / (Path(source).stem if not src.is_live else f"camera{Path(str(source)).name}")
    history: list[list] = []
    interrupted = False
    total = min(filter(None, (src.frame_count, args.max_frames)), default=None)
    sinks = [] if args.no_draw else [VideoSink(stem.with_suffix(".mp4"), src.fps or 30.0)]
    with contextlib.ExitStack() as stack:
        for sink in sinks:
            stack.enter_context(sink)
        record = stack.enter_context(JsonlSink(stem.with_suffix(".jsonl")))
        frames = stack.enter_context(contextlib.closing(
            track_video(src, est, smooth=not args.no_smooth, max_age=args.max_age, min_hits=args.min_hits,
                        redetect_every=args.redetect_every)))
        bar = tqdm(itertools.islice(frames, args.max_frames), total=total, unit="frame", disable=None,
                   file=sys.stderr, desc=Path(str(source)).name)
        try:
            for f in bar:
                if args.max_people:
                    f.people.sort(key=lambda p: -p.score)
                    del f.people[args.max_people:]
                for sink in sinks:
                    sink.write(posekit.draw(f.image, f.people, threshold=args.threshold))
                record.write(frame_record(f.index, f.time_s, f.people))
                if args.stats:
                    history.append(f.people)
        except KeyboardInterrupt:
            interrupted = True
    outputs = [s.path for s in sinks] + [record.path]
    print(f"{source}: {len(history) if args.stats else src.frames_read} frames -> "
          + ", ".join(str(o) for o in outputs) + (" (interrupted)" if interrupted else ""))
    for warning in [src.warning] + [s.warning for s in sinks]:
        if warning:
            print(f"posekit predict: warning: {warning}", file=sys.stderr)
    if args.stats and history:
        stats = video_stats(history)
        print("  " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in stats.items()))
    return 1 if src.warning or interrupted else 0
