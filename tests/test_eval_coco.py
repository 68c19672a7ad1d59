"""COCO evaluation machinery on tiny hand-made sets with fake estimators whose AP is known, plus the CLI and flip."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import posekit
from posekit.cli import main
from posekit.errors import PosekitError
from posekit.estimators.base import Estimator
from posekit.estimators.flip import FlipTest, mirror_boxes, unmirror_person
from posekit.eval.cocoeval import coco, load_annotations, score_results, write_results
from posekit.pipeline.topdown import TopDown
from posekit.skeleton import BLAZEPOSE33, COCO17, MPII16
from posekit.types import Person

pytest.importorskip("pycocotools")

H, W = 240, 320
#: A standing person in box-relative coordinates, COCO-17 order.
TEMPLATE = np.array([
    [0.5, 0.1], [0.45, 0.08], [0.55, 0.08], [0.4, 0.1], [0.6, 0.1], [0.3, 0.25], [0.7, 0.25], [0.25, 0.4],
    [0.75, 0.4], [0.2, 0.55], [0.8, 0.55], [0.4, 0.55], [0.6, 0.55], [0.4, 0.75], [0.6, 0.75], [0.4, 0.95],
    [0.6, 0.95],
])


def _person(box_xywh, labelled=17):
    x, y, w, h = box_xywh
    kp = np.concatenate([TEMPLATE * [w, h] + [x, y], np.full((17, 1), 2.0)], axis=1)
    kp[labelled:] = 0
    return {"bbox": list(box_xywh), "area": float(w * h), "keypoints": kp.ravel().tolist(),
            "num_keypoints": labelled, "iscrowd": 0}


def _image(index: int) -> np.ndarray:
    """R channel = image index (so a fake estimator knows the image), G marks the left column (mirroring)."""
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = index
    img[:, 0, 1] = 255
    return img


def make_set(root: Path, people: list[list[dict]]) -> tuple[Path, Path]:
    """Write one PNG per entry of people (a list of annotations per image) and the COCO json; returns (ann, dir)."""
    images_dir = root / "images"
    images_dir.mkdir(parents=True)
    images, anns = [], []
    for i, image_people in enumerate(people, start=1):
        cv2.imwrite(str(images_dir / f"{i:04d}.png"), _image(i)[..., ::-1])
        images.append({"id": i, "file_name": f"{i:04d}.png", "width": W, "height": H})
        anns += [{**p, "id": 100 * i + j, "image_id": i, "category_id": 1} for j, p in enumerate(image_people)]
    data = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.keypoints), "skeleton": []}]}
    ann = root / "ann.json"
    ann.write_text(json.dumps(data))
    return ann, images_dir


class Fake(Estimator):
    """Returns the ground truth of the image (found from its R channel), plus extra people per image id.

    With boxes: the ground-truth person whose box matches each box best. Mirrored images are answered mirrored.
    """

    skeleton = COCO17
    name = "fake"

    def __init__(self, ann: Path, extra: dict[int, list[Person]] | None = None, score: float = 0.9):
        data = json.loads(ann.read_text())
        self.people: dict[int, list[Person]] = {}
        for a in data["annotations"]:
            if a.get("iscrowd"):
                continue
            kp = np.array(a["keypoints"], dtype=float).reshape(17, 3)
            x, y, w, h = a["bbox"]
            kp[kp[:, 2] == 0, :2] = (x + w / 2, y + h / 2)  # a model puts unlabelled joints somewhere in the box
            kp[:, 2] = score
            self.people.setdefault(a["image_id"], []).append(Person(kp, box=[x, y, x + w, y + h], score=score))
        for image_id, extra_people in (extra or {}).items():
            self.people.setdefault(image_id, []).extend(extra_people)
        self.calls: list[tuple[int, np.ndarray | None]] = []

    def predict(self, image: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
        image_id = int(image[0, W // 2, 0])
        mirrored = image[0, -1, 1] == 255
        self.calls.append((image_id, boxes))
        people = self.people.get(image_id, [])
        if boxes is not None:
            own = np.array([p.box for p in people])
            query = mirror_boxes(boxes, W) if mirrored else np.asarray(boxes)
            people = [people[int(np.argmin(np.abs(own - b).sum(1)))] for b in query]
        return [unmirror_person(p, W) for p in people] if mirrored else list(people)


@pytest.fixture()
def two_people(tmp_path):
    """Image 1: two separated people; image 2: nobody; image 3: one person and a crowd region."""
    crowd = {**_person((200, 20, 100, 200), labelled=0), "iscrowd": 1}
    return make_set(tmp_path, [[_person((10, 20, 100, 200)), _person((200, 20, 100, 200))], [],
                               [_person((30, 30, 120, 200)), crowd]])


def test_exact_ground_truth_scores_one_under_both_protocols(two_people):
    ann, images = two_people
    for boxes in ("gt", "detector"):
        report = coco(Fake(ann), ann, images, boxes=boxes)
        assert report["AP"] == pytest.approx(1.0) and report["AR"] == pytest.approx(1.0)
        assert report["APm"] is None  # no medium-sized person: undefined, as pycocotools' -1
        assert report["PCK@0.2"] == 1.0 and report["pck_people"] == 3
        assert set(report["per_joint"]) == set(COCO17.keypoints)
        assert report["protocol"] == {"gt": "gt-boxes", "detector": "end-to-end"}[boxes]
        assert report["images"] == 3 and report["people"] == 3


def test_gt_boxes_protocol_passes_non_crowd_boxes_only(two_people):
    ann, images = two_people
    fake = Fake(ann)
    report = coco(fake, ann, images, boxes="gt")
    timed = {image_id: b for image_id, b in fake.calls}  # the last call per image (the first is a warm-up)
    assert sorted(timed) == [1, 3]  # image 2 has no person: not run
    assert timed[1].tolist() == [[10, 20, 110, 220], [200, 20, 300, 220]]
    assert timed[3].tolist() == [[30, 30, 150, 230]]  # the crowd region is not a person box
    assert report["images_run"] == 2 and report["ms_per_person"] is not None


def test_known_ap_with_a_false_positive_ranked_first(two_people):
    """3 people; found: two exactly (score 0.9), one missed, plus a false positive (0.95) on the empty image.

    Ranked: FP, TP, TP -> precision 0, 1/2, 2/3 at recall 0, 1/3, 2/3; interpolated precision is 2/3 at the
    67 COCO recall points 0.00..0.66 and 0 above, at every OKS threshold: AP = 2/3 * 67/101.
    """
    ann, images = two_people
    fake = Fake(ann)
    fake.people[1] = fake.people[1][:1]  # the second person of image 1 is missed
    junk = np.tile([5.0, 5.0, 0.95], (17, 1))
    fake.people[2] = [Person(junk, box=[0, 0, 10, 10], score=0.95)]  # on the empty image: a false positive
    report = coco(fake, ann, images, boxes="detector")
    assert report["AP"] == pytest.approx((2 / 3) * 67 / 101)
    assert report["AR"] == pytest.approx(2 / 3)
    assert report["PCK@0.2"] == pytest.approx(2 / 3)  # the missed person's 17 joints count as misses


def test_zero_keypoint_person_and_crowd_detections_are_ignored(tmp_path):
    crowd = {**_person((180, 20, 120, 200), labelled=0), "iscrowd": 1}
    ann, images = make_set(tmp_path, [[_person((10, 20, 100, 200)), _person((120, 150, 40, 60), labelled=0), crowd]])
    fake = Fake(ann)
    on_crowd = np.concatenate([TEMPLATE * [120, 200] + [180, 20], np.full((17, 1), 0.99)], axis=1)
    fake.people[1].append(Person(on_crowd, score=0.99))
    for boxes in ("gt", "detector"):
        report = coco(fake, ann, images, boxes=boxes)
        assert report["AP"] == pytest.approx(1.0), boxes
    assert report["people"] == 3 and report["pck_people"] == 1


def test_written_results_equal_what_pycocotools_scores_by_hand(two_people, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ann, images = two_people
    fake = Fake(ann)
    rng = np.random.default_rng(0)
    for people in fake.people.values():
        for p in people:
            p.keypoints[:, :2] += rng.normal(0, 6, (17, 2))
            p.score = float(rng.uniform(0.3, 1))
    out = tmp_path / "sub" / "results.json"
    report = coco(fake, ann, images, boxes="gt", out=out)
    results = json.loads(out.read_text())
    assert len(results) == 3 and set(results[0]) == {"image_id", "category_id", "keypoints", "score"}
    gt = COCO(str(ann))
    evaluator = COCOeval(gt, gt.loadRes(str(out)), "keypoints")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert 0 < report["AP"] < 1
    assert [report[k] for k in ("AP", "AP50", "AP75", "AR")] == [evaluator.stats[i] for i in (0, 1, 2, 5)]
    assert score_results(ann, out)["AP"] == report["AP"]
    assert not list(out.parent.glob(".*"))  # no temporary file left behind


def test_empty_results_score_zero(two_people, tmp_path):
    ann, images = two_people
    report = score_results(ann, write_results(tmp_path / "empty.json", []))
    assert report["AP"] == 0.0 and report["AR"] == 0.0 and report["PCK@0.2"] == 0.0


def test_end_to_end_score_threshold_and_oks_nms(two_people):
    ann, images = two_people
    fake = Fake(ann)
    duplicate = fake.people[1][0]
    fake.people[1].append(Person(duplicate.keypoints + [1.0, 0.0, 0.0], box=duplicate.box, score=0.5))
    assert coco(fake, ann, images, boxes="detector")["people"] == 4
    assert coco(fake, ann, images, boxes="detector", oks_nms=0.9)["people"] == 3
    report = coco(fake, ann, images, boxes="detector", min_score=0.95)
    assert report["people"] == 0 and report["AP"] == 0.0
    assert report["options"] == {"min_score": 0.95, "oks_nms": None}
    with pytest.raises(PosekitError, match="end-to-end protocol only"):
        coco(fake, ann, images, boxes="gt", oks_nms=0.9)


def test_flip_test_round_trip_keeps_exact_poses(two_people):
    ann, images = two_people
    for boxes in ("gt", "detector"):
        report = coco(Fake(ann), ann, images, boxes=boxes, flip=True)
        assert report["flip"] and report["AP"] == pytest.approx(1.0)


def test_flip_helpers_mirror_and_swap_left_right():
    boxes = np.array([[10.0, 5.0, 30.0, 50.0]])
    assert mirror_boxes(boxes, 100).tolist() == [[70.0, 5.0, 90.0, 50.0]]
    kp = np.zeros((33, 3), np.float32)
    kp[BLAZEPOSE33.index("left_wrist")] = [20, 30, 0.8]
    p = unmirror_person(Person(kp, skeleton=BLAZEPOSE33, keypoints_3d=np.ones((33, 3))), width=100)
    assert p.keypoints[BLAZEPOSE33.index("right_wrist")].tolist() == pytest.approx([80, 30, 0.8])
    assert p.keypoints_3d[0].tolist() == [-1.0, 1.0, 1.0]

    class Twice(Estimator):
        skeleton = COCO17

        def predict(self, image, boxes=None):
            mirrored = image[0, -1, 1] == 255
            kp = np.tile([W - 12.0 if mirrored else 10.0, 50.0, 0.5], (17, 1))
            kp[:, 2] = 0.25 if mirrored else 0.75  # the mirrored answer (x 12) weighs a third of the other (x 10)
            if mirrored:
                kp[1, 0] = W - 90.0  # left_eye here is right_eye once un-mirrored; far from x 10: the surer one wins
            box = [W - 20.0, 0.0, W, 100.0] if mirrored else [0.0, 0.0, 20.0, 100.0]
            return [Person(kp, box=box, score=kp[0, 2])]

    fused = FlipTest(Twice())(_image(1))
    assert len(fused) == 1
    assert fused[0].keypoints[0].tolist() == pytest.approx([10.5, 50.0, 0.5])  # close: score-weighted mean
    assert fused[0].keypoints[2].tolist() == pytest.approx([10.0, 50.0, 0.5])
    assert fused[0].keypoints[1].tolist() == pytest.approx([10.5, 50.0, 0.5])


def test_blazepose_maps_to_coco_mpii_and_bottom_up_gt_boxes_are_refused(two_people):
    ann, images = two_people
    coco_fake = Fake(ann)

    class Blaze(Estimator):
        skeleton = BLAZEPOSE33

        def predict(self, image, boxes=None):
            out = []
            for p in coco_fake(image, boxes):
                kp = np.zeros((33, 3), np.float32)
                kp[list(BLAZEPOSE33.to_coco)] = p.keypoints
                out.append(Person(kp, box=p.box, score=p.score, skeleton=BLAZEPOSE33))
            return out

    assert coco(Blaze(), ann, images, boxes="gt")["AP"] == pytest.approx(1.0)

    class Mpii(Estimator):
        skeleton = MPII16

    with pytest.raises(PosekitError, match="no mapping to COCO-17"):
        coco(Mpii(), ann, images)

    with pytest.raises(PosekitError, match="not a posekit Estimator"):
        coco(lambda image, boxes=None: [], ann, images)

    class BottomUp(Fake):
        top_down = False

    with pytest.raises(PosekitError, match="whole-image"):
        coco(BottomUp(ann), ann, images, boxes="gt")
    assert coco(BottomUp(ann), ann, images, boxes="detector")["AP"] == pytest.approx(1.0)


def test_bad_inputs_give_one_clear_error(tmp_path, two_people):
    ann, images = two_people
    with pytest.raises(PosekitError, match="not found"):
        load_annotations(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PosekitError, match="not valid JSON"):
        load_annotations(bad)
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(PosekitError, match="not a COCO annotation file"):
        load_annotations(bad)
    bad.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "cat"}]}))
    with pytest.raises(PosekitError, match="17 keypoints"):
        load_annotations(bad)
    with pytest.raises(PosekitError, match="image folder"):
        coco(Fake(ann), ann, tmp_path / "no-images")
    (images / "0002.png").unlink()
    with pytest.raises(PosekitError, match="1 of the 3 images .* not in"):
        coco(Fake(ann), ann, images)
    with pytest.raises(PosekitError, match="boxes must be one of"):
        coco(Fake(ann), ann, images, boxes="yolo")


def test_results_for_unknown_images_and_orphan_annotations(two_people, tmp_path):
    ann, _ = two_people
    stray = tmp_path / "stray.json"
    stray.write_text(json.dumps([{"image_id": 999, "category_id": 1, "keypoints": [0] * 51, "score": 1.0}]))
    with pytest.raises(PosekitError, match="1 image ids that are not in"):
        score_results(ann, stray)
    data = json.loads(ann.read_text())
    data["annotations"].append({**_person((0, 0, 50, 50)), "id": 7, "image_id": 12345, "category_id": 1})
    ann.write_text(json.dumps(data))
    dataset = load_annotations(ann)
    assert dataset.notes and "1 annotations refer to image ids not in" in dataset.notes[0]


def test_cli_prints_labelled_table_and_writes_results(two_people, tmp_path, monkeypatch, capsys):
    ann, images = two_people
    options = {}

    def load(name, **kw):
        options.update(kw)
        return Fake(ann)

    monkeypatch.setattr(posekit, "load", load)
    out = tmp_path / "r.json"
    assert main(["eval", "--model", "fake", "--ann", str(ann), "--images", str(images), "--flip", "--margin", "1.5",
                 "-o", "threshold=0", "-o", "mode=fast", "--out", str(out)]) == 0
    assert options == {"margin": 1.5, "threshold": 0, "mode": "fast"}
    text = capsys.readouterr().out
    assert "gt-boxes" in text and "flip on" in text and "margin 1.5" in text and "AP50" in text and "PCK@0.2" in text
    assert json.loads(out.read_text())
    assert main(["eval", "--results", str(out), "--ann", str(ann), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["AP"] == pytest.approx(1.0)
    assert main(["eval", "--model", "fake", "--ann", str(tmp_path / "missing.json"), "--images", str(images)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--ann" in err[0]


def test_cli_option_mistakes_are_one_line_errors(two_people, monkeypatch, capsys):
    ann, images = two_people

    def load(name, **kw):
        raise TypeError("__init__() got an unexpected keyword argument 'size'")

    monkeypatch.setattr(posekit, "load", load)
    base = ["eval", "--model", "fake", "--ann", str(ann), "--images", str(images)]
    for extra, message in ((["--input-size", "300"], "does not take the option(s) size"),
                           (["-o", "oops"], "KEY=VALUE"), (["--results", str(ann)], "exactly one of")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]


@pytest.mark.shared
@pytest.mark.slow
def test_real_coco_ap_printed_equals_pycocotools_on_the_results_file(coco_mini, tmp_path, capsys):
    """movenet-lightning on ../shared's real COCO images, gt-boxes: the table's AP is pycocotools' on --out."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from posekit.hub.cache import cached_files
    from posekit.hub.registry import get_spec

    if cached_files(get_spec("movenet-lightning")) is None:
        pytest.skip("movenet-lightning not cached: `posekit models pull movenet-lightning` enables this check")
    ann = coco_mini / "annotations" / "person_keypoints_train2017.json"
    out = tmp_path / "lightning.json"
    assert main(["eval", "--model", "movenet-lightning", "--ann", str(ann), "--images", str(coco_mini / "train2017"),
                 "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["AP", "AP50"])
    printed = dict(zip(lines[header].split(), lines[header + 1].split()))
    gt = COCO(str(ann))
    evaluator = COCOeval(gt, gt.loadRes(str(out)), "keypoints")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert printed["AP"] == f"{evaluator.stats[0]:.3f}" and printed["AR"] == f"{evaluator.stats[5]:.3f}"
    assert score_results(ann, out)["AP"] == evaluator.stats[0]
    assert evaluator.stats[0] > 0.25  # TF.js itself: 0.306 on this set (../shared/golden/README.md)


def test_flip_test_uses_an_estimators_own_flip_and_top_down_detects_once():
    class Detector:
        name = "boxes"
        calls = 0

        def detect(self, image):
            Detector.calls += 1
            return np.array([[0.0, 0.0, 20.0, 100.0]], np.float32), np.array([0.9], np.float32)

    class Pose(Estimator):
        skeleton = COCO17
        name = "pose"
        seen: list = []

        def predict(self, image, boxes=None):
            Pose.seen.append(boxes.copy())
            kp = np.tile([10.0, 50.0, 0.5], (17, 1))
            if image[0, -1, 1] == 255:  # mirrored: the same point, seen from the other side
                kp[:, 0] = image.shape[1] - 10.0
            return [Person(kp, box=b, score=0.5) for b in boxes]

    generic = Pose().flipped()
    assert isinstance(generic, FlipTest) and generic.skeleton is COCO17
    pipeline = TopDown(Detector(), Pose()).flipped()
    assert isinstance(pipeline, TopDown) and isinstance(pipeline.pose, FlipTest)
    result = pipeline(_image(1))
    (person,) = result
    assert Detector.calls == 1  # the detector is not run on the mirrored image
    assert [b.tolist() for b in Pose.seen] == [[[0, 0, 20, 100]], [[W - 20, 0, W, 100]]]
    assert person.keypoints[:, 0] == pytest.approx(10.0) and person.score == pytest.approx(0.9 * 0.5)
    assert set(result.speed) >= {"detector"}
