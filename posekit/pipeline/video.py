"""Video in and out, and the streaming pipeline source -> estimator -> tracker -> smoother.

``VideoSource`` decodes a file, a camera index or a stream URL in a background thread into a small bounded queue
(flat memory, decoding overlaps inference) and yields ``(index, time_s, frame_rgb)``. ``VideoSink`` and
``JsonlSink`` write under a temporary name beside the target and rename on close, so an interrupted run never
leaves a half-written file under the final name. ``track_video`` is the generator that ties everything together.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import cv2
import numpy as np

from posekit.decode.detection import box_iou
from posekit.defaults import DEFAULTS
from posekit.errors import PosekitError
from posekit.estimators.base import Estimator
from posekit.pipeline.smooth import CENTRE_PARAMS, KEYPOINT_PARAMS, WORLD_PARAMS, OneEuroParams, PoseSmoother
from posekit.pipeline.track import Track, Tracker, pose_overlap
from posekit.results import Result
from posekit.types import Person, box_from_keypoints

#: Frame rate assumed when a source does not report a usable one.
DEFAULT_FPS = 30.0
#: Encoder per output suffix. MPEG-4 part 2 ("mp4v") plays in VLC, ffmpeg, QuickTime and the Windows players; H.264
#: ("avc1", which browsers play too) is missing from the opencv-python wheels, whose attempts at hardware H.264
#: only print errors, so it is used only when asked for (VideoSink's ``fourcc``).
VIDEO_CODECS: dict[str, str] = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG",
                                ".webm": "VP80"}
#: Last resort when the encoder for the requested suffix does not open: Motion-JPEG AVI, built into OpenCV itself.
FALLBACK_CODEC = (".avi", "MJPG")


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` VideoSource uses (inject a fake one through ``opener``)."""

    def isOpened(self) -> bool: ...  # OpenCV's name
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def get(self, prop: int) -> float: ...
    def release(self) -> None: ...


_END = object()


def parse_source(source: str | int | os.PathLike) -> tuple[str | int, str]:
    """(what to open, kind) for a file path, a camera index (int or digits) or a URL; kind is 'file', 'camera'
    or 'url'. Raises PosekitError for a path that does not exist."""
    if isinstance(source, int):
        return source, "camera"
    text = os.fspath(source)
    if text.isdigit():
        return int(text), "camera"
    if "://" in text:
        return text, "url"
    path = Path(text).expanduser()
    if not path.is_file():
        raise PosekitError(f"video {text} not found; give an existing video file, a camera index such as 0, "
                           "or a stream URL such as rtsp://host/stream")
    return str(path), "file"


class VideoSource:
    """Frames of a video file, camera or stream, decoded ahead in a background thread.

    Iterate once to get ``(index, time_s, frame_rgb)`` with frame_rgb (H, W, 3) uint8. ``time_s`` is index / fps
    for files and seconds since the first frame (wall clock) for live sources. ``drop_frames`` (default: on for
    live sources) discards the oldest queued frame when inference falls behind, so output stays real-time;
    indices then skip. After iteration ``warning`` is set when the stream ended early (truncated or corrupt
    file, camera gone) and ``frames_read`` / ``frames_dropped`` count frames.
    """

    def __init__(
        self,
        source: str | int | os.PathLike,
        *,
        queue_size: int = 4,
        drop_frames: bool | None = None,
        opener: Callable[[str | int], Capture] = cv2.VideoCapture,
    ) -> None:
        self.spec, self.kind = parse_source(source)
        self._cap = opener(self.spec)
        if not self._cap.isOpened():
            self._cap.release()
            raise PosekitError(self._open_error())
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if np.isfinite(fps) and 0 < fps <= 1000 else DEFAULT_FPS
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        known = self.kind != "camera" and np.isfinite(count) and count > 0
        self.frame_count: int | None = int(count) if known else None
        self.is_live = self.kind == "camera" or (self.kind == "url" and self.frame_count is None)
        self.drop_frames = self.is_live if drop_frames is None else drop_frames
        self.warning: str | None = None
        self.frames_read = 0
        self.frames_dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _open_error(self) -> str:
        if self.kind == "camera":
            return (f"cannot open camera {self.spec}; check that a camera is connected (ls /dev/video*) "
                    "and not in use by another program")
        if self.kind == "url":
            return f"cannot open stream {self.spec}; check the address, credentials and that the stream is up"
        return (f"cannot decode video {self.spec}; the file is not a video, uses a codec OpenCV lacks, or is "
                "truncated (an MP4 cut short loses the index it needs); re-encode it, e.g. "
                "ffmpeg -i in.mp4 -c:v libx264 out.mp4")

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        if self._thread is not None:
            raise RuntimeError("a VideoSource can be iterated only once; open a new one")
        self._thread = threading.Thread(target=self._read_loop, name="posekit-video-reader", daemon=True)
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    break
                yield item
        finally:
            self.close()
        if self._error is not None:
            raise self._error

    def _put(self, item: Any) -> bool:
        """Queue ``item``; False when the consumer stopped. Drops the oldest frame when full and dropping."""
        dropping = self.drop_frames and item is not _END
        while not self._stop.is_set():
            try:
                self._queue.put(item, block=not dropping, timeout=0.1)
                return True
            except queue.Full:
                if dropping:
                    try:
                        self._queue.get_nowait()
                        self.frames_dropped += 1
                    except queue.Empty:
                        pass
        return False

    def _read_loop(self) -> None:
        start = None
        index = 0
        try:
            while not self._stop.is_set():
                ok, bgr = self._cap.read()
                if not ok or bgr is None:
                    break
                now = time.monotonic()
                start = now if start is None else start
                t = now - start if self.is_live else index / self.fps
                if not self._put((index, t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))):
                    return
                index += 1
                self.frames_read += 1
            if not self._stop.is_set():
                self.warning = self._end_warning()
        except BaseException as exc:  # surfaced in the consumer thread
            self._error = exc
        finally:
            self._cap.release()
            self._put(_END)

    def _end_warning(self) -> str | None:
        n = self.frames_read
        if self.is_live:
            return f"{self.kind} {self.spec} stopped delivering frames after {n} frames"
        if n == 0:
            return f"no frame of {self.spec} could be decoded; the file is empty or corrupt"
        if self.frame_count is not None and n < self.frame_count:
            return (f"{self.spec} ended after {n} of {self.frame_count} frames; the file is truncated or corrupt "
                    "(the frames that could be read were processed)")
        return None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the reader thread, which releases the capture (safe to call twice). A reader stuck in a read
        for longer than ``timeout`` seconds (a hung stream) is left to finish on its own as a daemon thread."""
        self._stop.set()
        if self._thread is None:
            self._cap.release()
            return
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:  # unblock a reader waiting on a full queue
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(timeout=0.05)

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def partial_path(path: Path) -> Path:
    """Temporary name beside ``path`` with the same suffix (encoders pick the container from it)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")


class _AtomicOutput(ABC):
    """Output written to ``partial_path(path)`` and renamed to ``path`` on ``close()``; ``abort()`` deletes it.
    As a context manager it closes on success or Ctrl-C (keeping what was written) and aborts on other errors."""

    path: Path
    _tmp: Path | None = None

    @abstractmethod
    def _finish(self) -> None:
        """Flush and close the underlying writer (idempotent)."""

    def close(self) -> None:
        self._finish()
        if self._tmp is not None:
            os.replace(self._tmp, self.path)
            self._tmp = None

    def abort(self) -> None:
        self._finish()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self.close()
        else:
            self.abort()


class VideoSink(_AtomicOutput):
    """Writes RGB frames to a video file at ``fps``; the size comes from the first frame.

    The codec follows the suffix (see VIDEO_CODECS) unless ``fourcc`` (e.g. "avc1") is given; when it does not
    open, the suffix's own codec is tried, then a Motion-JPEG ``.avi`` beside the requested name; ``path`` and
    ``fourcc`` then tell what was written and ``warning`` says so. Nothing is created when no frame is written.
    """

    def __init__(self, path: str | os.PathLike, fps: float, fourcc: str | None = None) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_CODECS:
            raise PosekitError(f"cannot write video {self.path}: unknown suffix; use one of "
                               f"{', '.join(VIDEO_CODECS)}")
        self.fps = float(fps)
        self.fourcc = fourcc or VIDEO_CODECS[self.path.suffix.lower()]
        self.frames_written = 0
        self.warning: str | None = None
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def _open(self, size: tuple[int, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        wanted, requested = self.path, self.fourcc
        attempts = dict.fromkeys([(wanted, requested), (wanted, VIDEO_CODECS[wanted.suffix.lower()]),
                                  (wanted.with_suffix(FALLBACK_CODEC[0]), FALLBACK_CODEC[1])])
        for path, code in attempts:
            tmp = partial_path(path)
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*code), self.fps, size)
            if writer.isOpened():
                if (path, code) != (wanted, requested):
                    self.warning = (f"this OpenCV build cannot encode {wanted.name} as {requested}; "
                                    f"wrote {path} as {code} instead")
                self._writer, self._tmp, self.path, self.fourcc, self._size = writer, tmp, path, code, size
                return
            writer.release()
            tmp.unlink(missing_ok=True)
        raise PosekitError(f"cannot write video {wanted}: this OpenCV build has no working video encoder; "
                           "reinstall opencv-python-headless")

    def write(self, frame_rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame; every frame must have the first frame's size."""
        size = (frame_rgb.shape[1], frame_rgb.shape[0])
        if self._writer is None:
            self._open(size)
        elif size != self._size:
            raise ValueError(f"frame size {size} differs from the video's {self._size}")
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(frame_rgb), cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def _finish(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class JsonlSink(_AtomicOutput):
    """Writes one JSON object per line (see ``frame_record``)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = partial_path(self.path)
        self._file = open(self._tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in _finish
        self.records = 0

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.records += 1

    def _finish(self) -> None:
        if not self._file.closed:
            self._file.close()


def frame_record(index: int, time_s: float, people: list[Person]) -> dict[str, Any]:
    """JSON-lines record of one frame: {"frame", "time" (seconds), "people": [Person.to_dict()...]} (the same
    "people" key as the per-image JSON)."""
    return {"frame": int(index), "time": round(float(time_s), 4), "people": [p.to_dict() for p in people]}


class TrackedFrame(NamedTuple):
    """One processed frame: index in the source, (H, W, 3) uint8 RGB image, tracked (and smoothed) people with
    track ids, time in seconds, the estimator's milliseconds per stage."""

    index: int
    image: np.ndarray
    people: list[Person]
    time_s: float
    speed: dict[str, float] = {}


def follow_box(person: Person, shift: np.ndarray, expand: float, image_size: tuple[int, int],
             min_score: float = DEFAULTS.box_min_score) -> np.ndarray:
    """(4,) x1y1x2y2 person box for the next frame, like a detector's: the box around the joints scoring above
    min_score, moved by ``shift`` (x, y pixels), width and height times ``expand`` (at least 32 px), clipped to
    the (width, height) image."""
    box = box_from_keypoints(person.keypoints, min_score)
    centre = (box[:2] + box[2:]) / 2 + np.asarray(shift, np.float32)
    half = np.maximum((box[2:] - box[:2]) * expand, 32.0) / 2
    w, h = image_size
    return np.clip(np.concatenate([centre - half, centre + half]), 0, [w, h, w, h]).astype(np.float32)


def carry_box_score(person: Person, previous: Person) -> Person:
    """``person`` found in a crop around ``previous``, scored like a detection: an estimator that multiplies a
    detector's box score into Person.score records it in ``extras["box_score"]``; the crop inherits it."""
    box_score = previous.extras.get("box_score")
    if box_score is None or "box_score" in person.extras:
        return person
    return replace(person, score=person.score * box_score, extras={**person.extras, "box_score": box_score})


def drop_drifted(people: list[Person], tracks: list[Track], max_overlap: float = 0.5) -> list[Person]:
    """``people`` found in crops around ``tracks`` (one each, same order) less those whose crop drifted onto
    someone another crop found too (pose OKS above ``max_overlap``, as when two people walk side by side): of
    such a group, the person nearest to where their own track was expected is kept. Order is preserved."""
    if len(people) < 2:
        return people
    overlap = pose_overlap(people)
    drift = [np.linalg.norm(_joint_centre(p.keypoints) - _joint_centre(t.predicted_keypoints()))
             for p, t in zip(people, tracks)]
    kept: list[int] = []
    for i in np.argsort(drift, kind="stable"):
        if all(overlap[i, j] <= max_overlap for j in kept):
            kept.append(int(i))
    return [people[i] for i in sorted(kept)]


def _joint_centre(keypoints: np.ndarray) -> np.ndarray:
    """(2,) centre of the box around the joints scoring above 0.2."""
    box = box_from_keypoints(keypoints, 0.2)
    return (box[:2] + box[2:]) / 2


def estimate(estimator: Estimator, image: np.ndarray, tracks: list[Track], *, use_crops: bool,
             min_crop_score: float, crop_expand: float, max_crop_overlap: float = 1.0) -> tuple[Result, bool]:
    """People in ``image`` and whether the full-image path ran (see ``track_video`` for the crop strategy);
    ``tracks`` are the tracks matched in the previous frame. The default max_crop_overlap never refuses crops."""
    multi = estimator.multi_person
    if use_crops and tracks and (multi or all(t.person.score >= min_crop_score for t in tracks)):
        size = (image.shape[1], image.shape[0])
        boxes = np.stack([follow_box(t.person, t.velocity, crop_expand, size) for t in tracks])
        overlap = box_iou(boxes[:, None], boxes[None]) - np.eye(len(boxes))
        if overlap.max() > max_crop_overlap:  # people crossing: a crop may slide onto the other person
            return estimator(image), True
        people = (estimator.track(image, [t.person for t in tracks]) if estimator.can_track  # BlazePose's ROIs
                  else estimator(image, boxes=boxes))
        people = people if isinstance(people, Result) else Result(people)
        sure = [p.score >= min_crop_score for p in people]
        if people and (all(sure) or (multi and any(sure))):
            return people.replace(drop_drifted([carry_box_score(p, t.person) for p, t in zip(people, tracks)],
                                               tracks)), False
    return estimator(image), True


def track_video(
    source: str | int | os.PathLike | VideoSource,
    estimator: Estimator,
    *,
    smooth: bool = True,
    max_age: int = DEFAULTS.max_age,
    min_similarity: float = 0.2,
    high_score: float = 0.15,
    min_hits: int = DEFAULTS.min_hits,
    smoothing: OneEuroParams = KEYPOINT_PARAMS,
    smoothing_centre: OneEuroParams = CENTRE_PARAMS,
    smoothing_3d: OneEuroParams = WORLD_PARAMS,
    crop_from_previous: bool | None = None,
    redetect_every: int | None = None,
    min_crop_score: float = 0.3,
    crop_expand: float = 1.2,
    max_crop_overlap: float = 0.4,
) -> Iterator[TrackedFrame]:
    """Stream a video through ``estimator``, track people and smooth their keypoints, frame by frame.

    ``source`` is anything VideoSource opens, or a VideoSource (read its ``warning`` afterwards); it is closed
    when the generator ends, so wrap the generator in ``contextlib.closing`` to stop early (Ctrl-C) cleanly.
    Memory stays flat: one frame is in flight plus the reader's small queue.

    Tracking (see ``Tracker`` for max_age, min_similarity, high_score, min_hits): only people of confirmed
    tracks are yielded, so a person appears, with an id, from the frame their track is confirmed.

    Crop-from-previous-frame (MoveNet's video strategy; default: on when ``estimator.top_down``, i.e. it accepts
    boxes): the estimator runs on boxes around the people of last frame's tracks (tentative ones included),
    expanded by ``crop_expand`` and moved by their velocity, so a detector or whole-image pass is skipped; an
    estimator with a ``track`` method follows those people its own way instead (BlazePose: the ROIs their
    landmarks give, as MediaPipe does). A crop
    whose person the estimator scores below ``min_crop_score`` counts as lost; people found in crops keep the
    detector box score of their track (see ``carry_box_score``); a crop that found the same person as another
    one is dropped (``drop_drifted``). When two crops overlap by more than ``max_crop_overlap`` IoU (people
    crossing, where a crop slides onto the other person), the frame goes to the full image instead. A
    single-person estimator goes back to the full image (on the same frame) when its person is lost or was
    unsure; a multi-person one when every person is lost, and every ``redetect_every`` frames to find newcomers
    and drop people who left (default: never forced for single-person estimators, every 5 frames for
    multi-person ones; 1 = always the full image).
    """
    src = source if isinstance(source, VideoSource) else VideoSource(source)
    step = FrameTracker(estimator, smooth=smooth, max_age=max_age, min_similarity=min_similarity,
                        high_score=high_score, min_hits=min_hits, smoothing=smoothing,
                        smoothing_centre=smoothing_centre, smoothing_3d=smoothing_3d,
                        crop_from_previous=crop_from_previous, redetect_every=redetect_every,
                        min_crop_score=min_crop_score, crop_expand=crop_expand, max_crop_overlap=max_crop_overlap)
    try:
        for index, t, image in src:
            found = step(image, t)
            yield TrackedFrame(index, image, list(found), t, found.speed)
    finally:
        src.close()


class FrameTracker:
    """The per-frame step of ``track_video`` for frames that arrive one at a time (a WebSocket, a callback):
    ``step(image, t)`` runs the estimator (on crops from the previous frame where it can), tracks and smooths,
    and returns a `Result` of the confirmed people with their ``track_id``.  One instance per video or client:
    it holds the tracker's and the smoother's state.  Options as in ``track_video``."""

    def __init__(self, estimator: Estimator, *, smooth: bool = True, max_age: int = DEFAULTS.max_age,
                 min_similarity: float = 0.2, high_score: float = 0.15, min_hits: int = DEFAULTS.min_hits,
                 smoothing: OneEuroParams = KEYPOINT_PARAMS, smoothing_centre: OneEuroParams = CENTRE_PARAMS,
                 smoothing_3d: OneEuroParams = WORLD_PARAMS,
                 crop_from_previous: bool | None = None, redetect_every: int | None = None,
                 min_crop_score: float = 0.3, crop_expand: float = 1.2, max_crop_overlap: float = 0.4) -> None:
        self.estimator = estimator
        self.tracker = Tracker(max_age=max_age, min_similarity=min_similarity, high_score=high_score,
                               min_hits=min_hits)
        self.smoother = PoseSmoother(smoothing, smoothing_centre, smoothing_3d) if smooth else None
        self.crops = estimator.top_down if crop_from_previous is None else crop_from_previous
        self.redetect_every = (5 if estimator.multi_person else 0) if redetect_every is None else redetect_every
        self.min_crop_score, self.crop_expand, self.max_crop_overlap = min_crop_score, crop_expand, max_crop_overlap
        self._since_full = 0

    def __call__(self, image: np.ndarray, t: float) -> Result:
        """Tracked (and smoothed) people in ``image`` (H, W, 3 uint8 RGB) seen at ``t`` seconds."""
        due = self.redetect_every > 0 and self._since_full + 1 >= self.redetect_every
        found, full = estimate(self.estimator, image, self.tracker.active, use_crops=self.crops and not due,
                               min_crop_score=self.min_crop_score, crop_expand=self.crop_expand,
                               max_crop_overlap=self.max_crop_overlap)
        self._since_full = 0 if full else self._since_full + 1
        people = [p for p in self.tracker.update(found) if p.track_id is not None]
        if self.smoother is not None:
            self.smoother.retain(self.tracker.live_ids)
            people = self.smoother(people, t)
        return found.replace(people)
