"""`posekit predict` end to end as a user runs it: real photos and video in, annotated files and JSON out;
bad input gives one line and a non-zero exit, never a traceback or a half-written file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from posekit.cli import main
from posekit.errors import OfflineError

SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")


def _sample(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} not found (Debian package opencv-doc)")
    return path


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except OfflineError as exc:  # pragma: no cover - only without network and cache
        pytest.skip(f"zoo files unavailable offline: {exc}")


@pytest.mark.network
def test_predict_folder_writes_images_json_and_coco_results(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(_sample("basketball1.png"), photos / "basketball1.png")
    shutil.copy(_sample("messi5.jpg"), photos / "000000000042.jpg")  # a COCO-style name: the id is the number
    (photos / "broken.jpg").write_bytes(b"not an image at all")
    out = tmp_path / "out"
    code = _run(["predict", str(photos), "--model", "centernet+movenet-lightning", "--out", str(out),
                 "--json", str(tmp_path / "results.json")])
    err = capsys.readouterr().err
    assert code == 1  # one input failed
    assert "broken.jpg" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["000000000042.jpg", "000000000042.json", "basketball1.jpg",
                                                     "basketball1.json"]
    per_image = json.loads((out / "basketball1.json").read_text())
    assert per_image["width"] == 640 and per_image["height"] == 480
    players = [p for p in per_image["people"] if p["score"] > 0.1]
    assert len(players) >= 2  # two players in the photo
    for person in players:
        x1, y1, x2, y2 = person["box"]
        for x, y, _ in person["keypoints"].values():
            assert -5 <= x <= 645 and -5 <= y <= 485  # image pixels, not network-input units
    results = json.loads((tmp_path / "results.json").read_text())
    assert {r["image_id"] for r in results} == {42, 1}
    assert all(r["category_id"] == 1 and len(r["keypoints"]) == 51 for r in results)
    drawn = cv2.imread(str(out / "basketball1.jpg"))
    assert drawn.shape == (480, 640, 3)
    assert np.abs(drawn.astype(int) - cv2.imread(str(_sample("basketball1.png"))).astype(int)).mean() > 0.5


def test_user_mistakes_are_one_line(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "missing.jpg")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("posekit predict: error:") and "Traceback" not in "\n".join(err)
    assert main(["predict", "x.jpg", "--model", "movenet-thundr"]) == 2
    assert "did you mean 'movenet-thunder'" in capsys.readouterr().err
    assert main(["predict", "x.jpg", "--threshold", "7"]) == 2
    assert main(["predict"]) == 2


@pytest.mark.network
def test_predict_video_tracks_and_survives_truncation(tmp_path, capsys):
    video = _sample("vtest.avi")
    cut = tmp_path / "cut.avi"
    data = video.read_bytes()
    cut.write_bytes(data[: len(data) // 40])  # a truncated copy: a few dozen frames, then garbage ends
    out = tmp_path / "out"
    code = _run(["predict", str(cut), "--model", "centernet+movenet-lightning", "--out", str(out), "--stats"])
    captured = capsys.readouterr()
    assert code == 1 and "warning" in captured.err  # ended early: frames kept, warning, non-zero exit
    records = [json.loads(line) for line in (out / "cut.jsonl").read_text().splitlines()]
    assert len(records) > 5 and [r["frame"] for r in records] == list(range(len(records)))
    ids = [p["track_id"] for r in records for p in r["people"]]
    assert ids and all(isinstance(i, int) for i in ids)
    assert len(set(ids)) < len(ids) / 2  # the same people carry their ids across frames
    cap = cv2.VideoCapture(str(out / "cut.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(records)
    assert "jitter" in captured.out
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_tracker_options_reach_the_tracker_and_bad_values_are_one_line(tmp_path, capsys, monkeypatch):
    import posekit
    import posekit.pipeline.video

    video = _sample("vtest.avi")
    for flag, value in (("--max-age", "-1"), ("--min-hits", "0"), ("--redetect-every", "0")):
        assert main(["predict", str(video), flag, value, "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and flag in err[0] and "at least" in err[0]
    seen = {}

    def fake_track_video(source, estimator, **options):  # a generator that yields no frame
        seen.update(options)
        yield from ()

    class Stub:
        name = "stub"

    monkeypatch.setattr(posekit, "load", lambda name: Stub())
    monkeypatch.setattr(posekit.pipeline.video, "track_video", fake_track_video)  # imported at call time
    main(["predict", str(video), "--min-hits", "5", "--redetect-every", "7", "--max-age", "9", "--no-draw",
          "--out", str(tmp_path)])
    assert (seen["min_hits"], seen["redetect_every"], seen["max_age"]) == (5, 7, 9)
