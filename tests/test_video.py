"""Video sources and sinks end to end on generated clips (moving shapes), a fake camera, and the tracking
pipeline with a fake single-person estimator that really looks at the pixels."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from posekit.errors import PosekitError
from posekit.estimators.base import Estimator
from posekit.pipeline.topdown import TopDown
from posekit.pipeline.track import Tracker
from posekit.pipeline.video import (
    VIDEO_CODECS,
    JsonlSink,
    VideoSink,
    VideoSource,
    carry_box_score,
    drop_drifted,
    estimate,
    follow_box,
    frame_record,
    parse_source,
    partial_path,
    track_video,
)
from posekit.skeleton import COCO17
from posekit.types import Person, box_from_keypoints

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
W, H, FPS, N = 128, 96, 15.0, 30
RING = np.stack([np.cos(np.linspace(0, 2 * np.pi, 17, endpoint=False)),
                 np.sin(np.linspace(0, 2 * np.pi, 17, endpoint=False))], axis=1) * 8


def _disc_centre(i: int) -> tuple[int, int]:
    return 20 + 3 * i, 30 + i


def _frame_bgr(i: int) -> np.ndarray:
    frame = np.full((H, W, 3), 40, np.uint8)
    cv2.rectangle(frame, (100 - 2 * i, 70), (115 - 2 * i, 85), (255, 0, 0), -1)  # a blue square going left
    cv2.circle(frame, _disc_centre(i), 9, (0, 0, 255), -1)  # a red disc going right and down
    return frame


def _make_video(path: Path, frames: int = N) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(_frame_bgr(i))
    writer.release()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return _make_video(tmp_path_factory.mktemp("video") / "clip.avi")


class DiscEstimator(Estimator):
    """Single-person 'pose model': 17 joints on a ring around the red disc's centroid (RGB input)."""

    name = "disc"
    skeleton = COCO17
    multi_person = False

    def __init__(self, low_score_frames: tuple[int, ...] = ()) -> None:
        self.calls: list[np.ndarray | None] = []
        self.low_score_frames = low_score_frames

    def _find(self, image: np.ndarray, box: np.ndarray) -> Person:
        x1, y1, x2, y2 = np.round(box).astype(int)
        crop = image[y1:y2, x1:x2].astype(int)
        ys, xs = np.nonzero((crop[..., 0] > 150) & (crop[..., 1] < 100) & (crop[..., 2] < 100))
        if len(xs) == 0:
            return Person(np.zeros((17, 3)), score=0.0)
        score = 0.1 if len(self.calls) - 1 in self.low_score_frames else 0.9
        xy = RING + [xs.mean() + x1, ys.mean() + y1]
        return Person(np.concatenate([xy, np.full((17, 1), score)], axis=1), score=score)

    def predict(self, image: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
        self.calls.append(boxes)
        if boxes is None:
            person = self._find(image, np.array([0, 0, image.shape[1], image.shape[0]]))
            return [person] if person.score > 0 else []
        return [self._find(image, b) for b in boxes]


def _no_reader_threads() -> bool:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if not any(t.name == "posekit-video-reader" for t in threading.enumerate()):
            return True
        time.sleep(0.02)
    return False


def test_parse_source_kinds(clip):
    assert parse_source(0) == (0, "camera")
    assert parse_source("1") == (1, "camera")
    assert parse_source("rtsp://cam.local/stream") == ("rtsp://cam.local/stream", "url")
    assert parse_source(clip) == (str(clip), "file")
    with pytest.raises(PosekitError, match="not found"):
        parse_source(clip.with_name("missing.mp4"))


def test_source_reads_every_frame_in_order_as_rgb(clip):
    with VideoSource(clip) as src:
        assert (src.width, src.height, src.fps, src.frame_count, src.is_live) == (W, H, FPS, N, False)
        frames = list(src)
    assert [i for i, _, _ in frames] == list(range(N))
    np.testing.assert_allclose([t for _, t, _ in frames], np.arange(N) / FPS)
    _, _, last = frames[-1]
    cx, cy = _disc_centre(N - 1)
    assert last.shape == (H, W, 3) and last.dtype == np.uint8
    assert last[cy, cx, 0] > 200 and last[cy, cx, 2] < 60  # the red disc is red in RGB order
    assert src.warning is None and src.frames_read == N
    with pytest.raises(RuntimeError, match="only once"):
        next(iter(src))
    assert _no_reader_threads()


def test_source_reads_ahead_only_a_few_frames(clip):
    src = VideoSource(clip, queue_size=2)
    frames = iter(src)
    next(frames)
    time.sleep(0.3)  # plenty of time to decode the whole clip if the queue were unbounded
    assert src.frames_read <= 2 + 2  # queue + the frame in hand + the one waiting to be queued
    assert len(list(frames)) == N - 1


def test_undecodable_file_raises_a_user_error(tmp_path):
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("this is not a video")
    with pytest.raises(PosekitError, match="cannot decode video"):
        VideoSource(bogus)


def _truncate(src: Path, dst: Path, keep: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def test_truncated_video_gives_its_frames_a_warning_and_valid_outputs(clip, tmp_path):
    cut = _truncate(clip, tmp_path / "cut.avi", keep=0.6)
    source = VideoSource(cut)
    out_video, out_json = tmp_path / "out" / "annotated.mp4", tmp_path / "out" / "poses.jsonl"
    with VideoSink(out_video, source.fps) as sink, JsonlSink(out_json) as records:
        for frame in track_video(source, DiscEstimator()):
            sink.write(frame.image)
            records.write(frame_record(frame.index, frame.time_s, frame.people))
    read = sink.frames_written
    assert 0 < read < N and source.frames_read == read
    assert "truncated" in source.warning and f"{read} of {N}" in source.warning
    check = cv2.VideoCapture(str(sink.path))
    assert check.isOpened() and int(check.get(cv2.CAP_PROP_FRAME_COUNT)) == read
    assert sum(check.read()[0] for _ in range(read + 1)) == read
    lines = out_json.read_text().splitlines()
    assert len(lines) == read
    assert not list(out_video.parent.glob(".*partial*"))


def test_video_sink_is_atomic_and_readable(tmp_path):
    path = tmp_path / "out.mp4"
    sink = VideoSink(path, fps=12.0)
    for i in range(8):
        sink.write(cv2.cvtColor(_frame_bgr(i), cv2.COLOR_BGR2RGB))
        assert not path.exists() and partial_path(path).exists()
    sink.close()
    assert path.exists() and not partial_path(path).exists()
    assert sink.fourcc == "mp4v" and sink.warning is None
    cap = cv2.VideoCapture(str(path))
    assert (cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)) == (8, 12.0)
    ok, frame = cap.read()
    assert ok and frame.shape == (H, W, 3)
    cx, cy = _disc_centre(0)
    assert frame[cy, cx, 2] > 200  # still red (BGR on disk)
    other = VideoSink(tmp_path / "sizes.mp4", 10)
    other.write(np.zeros((H, W, 3), np.uint8))
    with pytest.raises(ValueError, match="size"):
        other.write(np.zeros((H, W + 2, 3), np.uint8))
    other.abort()
    assert not (tmp_path / "sizes.mp4").exists() and not partial_path(tmp_path / "sizes.mp4").exists()


def test_sinks_keep_nothing_after_a_crash_and_everything_after_ctrl_c(tmp_path):
    frame = np.zeros((H, W, 3), np.uint8)
    with pytest.raises(RuntimeError), VideoSink(tmp_path / "crash.avi", 10) as sink, \
            JsonlSink(tmp_path / "crash.jsonl") as records:
        sink.write(frame)
        records.write({"frame": 0})
        raise RuntimeError("model blew up")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt), VideoSink(tmp_path / "stop.avi", 10) as sink, \
            JsonlSink(tmp_path / "stop.jsonl") as records:
        for i in range(3):
            sink.write(frame)
            records.write({"frame": i})
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stop.avi", "stop.jsonl"]
    assert int(cv2.VideoCapture(str(tmp_path / "stop.avi")).get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert (tmp_path / "stop.jsonl").read_text() == '{"frame":0}\n{"frame":1}\n{"frame":2}\n'


def test_video_sink_falls_back_to_motion_jpeg(tmp_path, monkeypatch):
    monkeypatch.setitem(VIDEO_CODECS, ".mp4", "XXXX")  # as if this build had no MPEG-4 encoder
    sink = VideoSink(tmp_path / "out.mp4", 10, fourcc="YYYY")
    sink.write(np.zeros((H, W, 3), np.uint8))
    sink.close()
    assert sink.path == tmp_path / "out.avi" and sink.fourcc == "MJPG"
    assert "cannot encode out.mp4 as YYYY" in sink.warning
    assert [p.name for p in tmp_path.iterdir()] == ["out.avi"]
    assert cv2.VideoCapture(str(sink.path)).read()[0]


def test_video_sink_rejects_unknown_suffix(tmp_path):
    with pytest.raises(PosekitError, match="unknown suffix"):
        VideoSink(tmp_path / "out.gif", 10)


class FakeCamera:
    """Stands in for cv2.VideoCapture(0): a 200 fps camera that unplugs after ``frames`` frames."""

    def __init__(self, frames: int) -> None:
        self.frames, self.served, self.released = frames, 0, False

    def isOpened(self) -> bool:  # OpenCV's name
        return True

    def read(self):
        time.sleep(0.005)
        if self.served == self.frames:
            return False, None
        self.served += 1
        return True, _frame_bgr(self.served % N)

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 0.0, cv2.CAP_PROP_FRAME_WIDTH: W, cv2.CAP_PROP_FRAME_HEIGHT: H}.get(prop, -1.0)

    def release(self) -> None:
        self.released = True


def test_webcam_path_with_a_fake_camera():
    camera = FakeCamera(frames=40)
    src = VideoSource("0", opener=lambda spec: camera if spec == 0 else None)
    assert src.is_live and src.drop_frames and src.frame_count is None and src.fps == 30.0
    seen = []
    for index, t, frame in src:
        seen.append((index, t))
        time.sleep(0.02)  # inference slower than the camera: old frames get dropped, latency stays low
        assert frame.shape == (H, W, 3)
    indices, times = np.array(seen).T
    assert np.all(np.diff(indices) > 0) and np.all(np.diff(times) > 0)
    assert src.frames_dropped > 0 and len(seen) + src.frames_dropped == src.frames_read == 40
    assert "stopped delivering frames after 40" in src.warning and camera.released


def test_webcam_ctrl_c_stops_the_reader(tmp_path):
    camera = FakeCamera(frames=10_000)
    out = tmp_path / "live.avi"
    with pytest.raises(KeyboardInterrupt), VideoSink(out, 30) as sink, \
            contextlib.closing(track_video(VideoSource(0, opener=lambda spec: camera), DiscEstimator())) as frames:
        for frame in frames:
            sink.write(frame.image)
            if sink.frames_written == 5:
                raise KeyboardInterrupt
    assert _no_reader_threads() and camera.released
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def test_camera_that_does_not_open_raises_a_user_error():
    class Closed(FakeCamera):
        def isOpened(self) -> bool:
            return False

    with pytest.raises(PosekitError, match="cannot open camera 3"):
        VideoSource(3, opener=lambda spec: Closed(0))


def test_track_video_tracks_and_smooths_a_moving_disc_with_crops(clip):
    est = DiscEstimator()
    frames = list(track_video(clip, est))
    assert [f.index for f in frames] == list(range(N))
    assert all(len(f.people) == 1 and f.people[0].track_id == 1 for f in frames)
    assert est.calls[0] is None and all(b is not None and b.shape == (1, 4) for b in est.calls[1:])
    for f in frames:
        raw = f.people[0].extras["raw_keypoints"][:, :2].mean(axis=0)
        np.testing.assert_allclose(raw, _disc_centre(f.index), atol=1.0)  # found the disc in the RGB frame
        np.testing.assert_allclose(f.people[0].keypoints[:, :2].mean(axis=0), raw, atol=4.0)  # smoothed, close
    assert _no_reader_threads()


def test_track_video_falls_back_to_the_full_image_when_a_crop_scores_low(clip):
    est = DiscEstimator(low_score_frames=(3,))  # the 4th call (a crop) comes back unsure
    frames = list(track_video(clip, est, redetect_every=10, smooth=False))
    full = [i for i, b in enumerate(est.calls) if b is None]
    assert est.calls[3] is not None and full[:2] == [0, 4]  # the same frame is re-run on the full image
    assert len(est.calls) == N + 1
    assert full[2:] == [14, 24]  # forced every 10 frames after the last full-image run
    assert {f.people[0].track_id for f in frames} == {1}
    assert "raw_keypoints" not in frames[0].people[0].extras


class TrackingDiscEstimator(DiscEstimator):
    """DiscEstimator that follows its people its own way: from the previous person's joints, no box."""

    can_track = True

    def __init__(self) -> None:
        super().__init__()
        self.tracked: list[list[Person]] = []

    def track(self, image: np.ndarray, people: list[Person]) -> list[Person]:
        self.tracked.append(list(people))
        return [self._find(image, box_from_keypoints(p.keypoints) + [-12, -12, 12, 12]) for p in people]


def test_estimators_with_a_track_method_follow_their_people_with_it(clip):
    est = TrackingDiscEstimator()
    frames = list(track_video(clip, est, smooth=False))
    assert est.calls == [None]  # one full-image run; every later frame went through track()
    assert len(est.tracked) == N - 1 and all(len(people) == 1 for people in est.tracked)
    for previous, people in zip(frames, est.tracked):  # track() gets the people of the previous frame
        np.testing.assert_array_equal(people[0].keypoints, previous.people[0].keypoints)
    for f in frames:
        np.testing.assert_allclose(f.people[0].keypoints[:, :2].mean(axis=0), _disc_centre(f.index), atol=1.0)


def test_bottom_up_estimators_get_the_full_image_every_frame(clip):
    est = DiscEstimator()
    est.multi_person, est.top_down = True, False  # boxes are no use to it
    list(track_video(clip, est))
    assert est.calls == [None] * N


def test_multi_person_top_down_estimators_look_for_newcomers_every_5_frames(clip):
    est = DiscEstimator()
    est.multi_person = True
    list(track_video(clip, est))
    assert [i for i, b in enumerate(est.calls) if b is None] == list(range(0, N, 5))


def test_multi_person_estimators_go_back_to_the_full_image_when_every_crop_is_lost(clip):
    est = DiscEstimator(low_score_frames=(2,))
    est.multi_person = True
    frames = list(track_video(clip, est))
    assert [i for i, b in enumerate(est.calls) if b is None] == [0, 3, 8, 13, 18, 23, 28]
    assert all(len(f.people) == 1 for f in frames)


def test_crop_box_is_grown_moved_and_clipped():
    person = Person(np.array([[10, 20, 0.9], [30, 60, 0.9], [500, 500, 0.0]]))  # confident joints span 20 x 40
    np.testing.assert_allclose(follow_box(person, np.array([5, 0]), 1.5, (640, 480)), [9, 10, 41, 70])  # w >= 32
    np.testing.assert_allclose(follow_box(person, np.array([-30, 0]), 2.0, (640, 480)), [0, 0, 10, 80])


@pytest.mark.skipif(not VTEST.is_file(), reason=f"{VTEST} not found (apt-get install opencv-doc)")
def test_reads_the_real_vtest_clip_and_notices_when_it_is_cut_short(tmp_path):
    with VideoSource(VTEST) as src:
        assert (src.width, src.height, src.fps, src.frame_count) == (768, 576, 10.0, 795)
        count = sum(1 for _ in src)
    assert count == 795 and src.warning is None
    with VideoSource(_truncate(VTEST, tmp_path / "vtest.avi", keep=0.3)) as cut:
        count = sum(1 for _ in cut)
    assert 0 < count < 795 and f"ended after {count} of 795 frames" in cut.warning


class DiscPose(Estimator):
    """Single-person pose model on boxes (top-down): the disc's ring with every joint scoring 0.5."""

    name, skeleton = "disc-pose", COCO17

    def predict(self, image_rgb: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
        people = DiscEstimator()(image_rgb, boxes)
        return [replace(p, keypoints=np.concatenate([p.keypoints[:, :2], np.full((17, 1), 0.5)], axis=1),
                        score=0.5) for p in people]


class DiscDetector:
    """Person detector that boxes the red disc with score 0.8."""

    name = "disc-detector"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        ys, xs = np.nonzero((image_rgb[..., 0] > 150) & (image_rgb[..., 1] < 100) & (image_rgb[..., 2] < 100))
        return np.array([[xs.min() - 4, ys.min() - 4, xs.max() + 4, ys.max() + 4]], np.float32), np.array([0.8])


def test_top_down_person_scores_are_the_same_on_detector_and_crop_frames(clip):
    detector = DiscDetector()
    frames = list(track_video(clip, TopDown(detector, DiscPose()), smooth=False))
    assert detector.calls == len(range(0, N, 5))  # most frames came from crops
    assert [f.people[0].score for f in frames] == pytest.approx([0.8 * 0.5] * N)
    assert all(f.people[0].extras["box_score"] == pytest.approx(0.8) for f in frames)


def test_carry_box_score_only_adds_a_missing_box_score():
    kp = np.zeros((17, 3))
    previous = Person(kp, score=0.4, extras={"box_score": 0.8})
    assert carry_box_score(Person(kp, score=0.5), previous).score == pytest.approx(0.4)
    assert carry_box_score(Person(kp, score=0.5), Person(kp, score=0.5)).score == 0.5  # no detector: unchanged
    fresh = Person(kp, score=0.3, extras={"box_score": 0.6})
    assert carry_box_score(fresh, previous) is fresh


def _ring_person(cx: float, cy: float) -> Person:
    return Person(np.concatenate([RING * 4 + [cx, cy], np.full((17, 1), 0.9)], axis=1), score=0.9)


def test_a_crop_that_slid_onto_someone_else_is_dropped():
    tracker = Tracker()
    tracker.update([_ring_person(100, 100), _ring_person(160, 100), _ring_person(400, 100)])
    tracks = tracker.active
    found = [_ring_person(150, 100), _ring_person(158, 100), _ring_person(400, 100)]  # crop 1 found person 2
    assert drop_drifted(found, tracks) == [found[1], found[2]]
    assert drop_drifted(found[:1], tracks[:1]) == found[:1]


def test_crossing_people_send_the_frame_to_the_full_image():
    image = np.zeros((200, 600, 3), np.uint8)
    est = DiscEstimator()
    est.multi_person = True
    tracker = Tracker()
    tracker.update([_ring_person(100, 100), _ring_person(300, 100)])
    options = {"use_crops": True, "min_crop_score": 0.3, "crop_expand": 1.2, "max_crop_overlap": 0.4}
    estimate(est, image, tracker.active, **options)
    assert est.calls[0].shape == (2, 4)  # apart: crops first (on this empty image, then the full image)
    tracker.update([_ring_person(110, 100), _ring_person(125, 100)])
    est.calls.clear()
    _, full = estimate(est, image, tracker.active, **options)
    assert full and est.calls == [None]  # crossing: straight to the full image


@pytest.mark.network
@pytest.mark.skipif(not VTEST.is_file(), reason=f"{VTEST} not found (apt-get install opencv-doc)")
def test_ids_stay_stable_on_the_real_vtest_clip():
    import posekit
    from posekit.pipeline.metrics import video_stats

    frames = [f.people for f in track_video(VTEST, posekit.load(posekit.DEFAULT_VIDEO_MODEL))]
    stats = video_stats(frames)
    # the whole clip (795 frames, about 25 people by hand count): 29 ids, median track 107-108 frames; 112 ids and
    # 19.5 before two-stage association, confirmation and the crop guards.  Not a shorter stretch: over the first
    # 150 frames the counts flip with 1e-5 px changes (11 or 13 ids, median 67 or 49 frames, for the single-image
    # and the batched MoveNet graph, whose keypoints agree within 0.001 px)
    assert stats["frames"] == 795
    assert stats["tracks"] <= 35 and stats["median_track_frames"] >= 80
    assert stats["jitter_cut"] >= 0.3
