"""`posekit.predict`: one Python entry point for everything `posekit predict` does.

``for r in posekit.predict("photos/"): ...`` yields one `Result` per image (a path, folder, glob or a list of
them) or per video frame (a video file, a camera index such as 0, or a stream URL).  Images: each Result holds
the people scoring at least ``min_score`` (best first, at most ``max_people``).  Videos: people are tracked
(``track_id``) and smoothed, one Result per frame.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from posekit.defaults import DEFAULTS
from posekit.errors import PosekitError
from posekit.estimators.base import Estimator
from posekit.io import IMAGE_SUFFIXES, read_image
from posekit.results import Result

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def is_stream(source: Any) -> bool:
    """A video file, camera index (int or digits) or stream URL, as opposed to images."""
    if isinstance(source, int):
        return True
    text = os.fspath(source)
    return text.isdigit() or "://" in text or Path(text).suffix.lower() in VIDEO_SUFFIXES


def expand_sources(sources: Iterable[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """Image files to process (folders expanded to their images, globs resolved, sorted) and the sources that
    matched nothing (each with the reason)."""
    files: list[Path] = []
    missing: list[str] = []
    for src in sources:
        path = Path(src)
        text = os.fspath(src)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                missing.append(f"{text} (folder without images)")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif glob.has_magic(text):
            found = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not found:
                missing.append(f"{text} (glob matched nothing)")
            files.extend(found)
        else:
            missing.append(text)
    return files, missing


def image_id(path: Path, index: int) -> int:
    """COCO image id: the file name when it is a number (COCO's own files), else the position in the run."""
    return int(path.stem) if path.stem.isdigit() else index


def output_names(files: list[Path]) -> list[str]:
    """A distinct output base name per file: its stem; where stems collide (``a.png`` and ``a.jpg``), the stem and
    its extension (``a_png``, ``a_jpg``); where those still collide (same name in two folders), a counter."""
    stems = [f.stem for f in files]
    names = [f"{f.stem}_{f.suffix.lstrip('.').lower()}" if stems.count(f.stem) > 1 else f.stem for f in files]
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def resolve_model(model: str | Estimator | None, video: bool, flip: bool = False, **options: Any) -> Estimator:
    """An estimator from a name (None: the default for images or for video) or as given; flip test on if asked."""
    from posekit.estimators.registry import load

    if model is None:
        model = DEFAULTS.video_model if video else DEFAULTS.model
    est = load(model, **options) if isinstance(model, str) else model
    if options and not isinstance(model, str):
        raise PosekitError("model options go with a model name, not with an estimator object")
    return est.flipped() if flip else est


def predict(
    source: Any,
    model: str | Estimator | None = None,
    *,
    flip: bool = DEFAULTS.flip,
    min_score: float | None = DEFAULTS.min_score,
    max_people: int | None = DEFAULTS.max_people,
    smooth: bool = DEFAULTS.smooth,
    max_age: int = DEFAULTS.max_age,
    min_hits: int = DEFAULTS.min_hits,
    redetect_every: int | None = DEFAULTS.redetect_every,
    max_frames: int | None = DEFAULTS.max_frames,
    errors: str = "raise",
    **model_options: Any,
) -> Iterator[Result]:
    """Yield one `Result` per image or video frame of ``source``.

    source: an image path, folder, glob, a list of those, an RGB array, a video file, a camera index (0) or a
    stream URL.  model: an estimator name (`posekit.models()`; default: ``DEFAULTS.model`` for images,
    ``DEFAULTS.video_model`` for video) or an estimator object; model_options go to `posekit.load`.
    Images: people with score >= min_score (None: every candidate, as COCO AP needs), best first, at most
    max_people.  Video: tracked and smoothed people (see `posekit.pipeline.track_video` for the tracker options),
    at most max_people per frame, for at most max_frames frames.  errors: "raise" (a source that matches nothing
    or an unreadable image raises PosekitError) or "report" (each becomes an empty Result whose ``error`` says
    what went wrong, and the run goes on).
    """
    if errors not in ("raise", "report"):
        raise PosekitError(f"errors must be 'raise' or 'report', got {errors!r}")
    if max_people is not None and max_people < 1:
        raise PosekitError("max_people must be at least 1")
    if max_frames is not None and max_frames < 1:
        raise PosekitError("max_frames must be at least 1")
    if isinstance(source, np.ndarray) or hasattr(source, "mode"):  # one image: an array or a PIL image
        est = resolve_model(model, False, flip, **model_options)
        yield est(source).best(min_score, max_people)
        return
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    streams = [s for s in sources if is_stream(s)]
    if streams and len(streams) != len(sources):
        raise PosekitError("give either videos/cameras or images in one call, not both")
    if streams:
        est = resolve_model(model, True, flip, **model_options)
        for s in streams:
            yield from predict_video(s, est, smooth=smooth, max_age=max_age, min_hits=min_hits,
                                     redetect_every=redetect_every, max_frames=max_frames, max_people=max_people)
        return
    files, missing = expand_sources(sources)
    if missing and errors == "raise":
        raise PosekitError(f"not found: {', '.join(missing)}")
    if not files:
        raise PosekitError(f"no images to process (not found: {', '.join(missing)}); check the paths")
    est = resolve_model(model, False, flip, **model_options)
    for m in missing:
        yield Result(source=m, error="not found")
    for path in files:
        try:
            image = read_image(path)
        except PosekitError as exc:
            if errors == "raise":
                raise
            yield Result(source=str(path), error=str(exc))
            continue
        result = est(image)
        result.source = str(path)
        yield result.best(min_score, max_people)


def predict_video(source: Any, estimator: Estimator, *, max_frames: int | None = None,
                  max_people: int | None = None, **tracking: Any) -> Iterator[Result]:
    """One Result per frame of a video, camera or stream: tracked people (``track_id``), smoothed unless
    ``smooth=False``; ``tracking`` options go to `posekit.pipeline.track_video`.  Read ``source.warning`` of a
    `VideoSource` passed in to learn whether it ended early."""
    from posekit.pipeline.video import VideoSource, track_video

    name = str(source.spec if isinstance(source, VideoSource) else source)
    with contextlib.closing(track_video(source, estimator, **tracking)) as frames:
        for f in itertools.islice(frames, max_frames):
            people = sorted(f.people, key=lambda p: -p.score)[:max_people] if max_people else f.people
            yield Result(people, speed=f.speed, image_size=f.image.shape[:2], source=name, frame=f.index,
                         time_s=f.time_s, image=f.image, model=estimator.name)
