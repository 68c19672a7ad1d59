"""BlazePose decoding: SSD anchors, detector decode, detection -> rotated ROI, landmark decode and
back-projection through rotated crops; plausibility on the golden blazepose-full outputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from posekit.decode import blazepose as bp
from posekit.errors import OfflineError
from posekit.io import as_rgb
from posekit.skeleton import COCO17
from posekit.transforms import apply_affine

ANCHORS = bp.generate_anchors()


def test_anchor_count_and_layout():
    assert ANCHORS.shape == (2254, 2)  # 28*28*2 + 14*14*2 + 7*7*6
    np.testing.assert_allclose(ANCHORS[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(ANCHORS[1], ANCHORS[0])  # 2 anchors per stride-8 cell
    np.testing.assert_allclose(ANCHORS[2], [1.5 / 28, 0.5 / 28])  # then the next column
    np.testing.assert_allclose(ANCHORS[1567], [27.5 / 28, 27.5 / 28])  # last stride-8 anchor
    np.testing.assert_allclose(ANCHORS[1568], [0.5 / 14, 0.5 / 14])  # first stride-16 anchor
    np.testing.assert_allclose(ANCHORS[1960:1966], [[0.5 / 7, 0.5 / 7]] * 6)  # 3 stride-32 layers x 2
    np.testing.assert_allclose(ANCHORS[-1], [6.5 / 7, 6.5 / 7])


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _raw_hit(raw: np.ndarray, index: int, score: float, box_xyxy, keypoints) -> None:
    """Write the detector output row that decodes to the given box / keypoints (pixels of the 224 input)."""
    origin = ANCHORS[index] * 224
    x1, y1, x2, y2 = box_xyxy
    raw[index, 0] = _logit(score)
    raw[index, 1:3] = np.array([(x1 + x2) / 2, (y1 + y2) / 2]) - origin
    raw[index, 3:5] = [x2 - x1, y2 - y1]
    raw[index, 5:13] = (np.asarray(keypoints, dtype=np.float32) - origin).reshape(-1)


def _empty_raw() -> np.ndarray:
    raw = np.zeros((2254, 13), dtype=np.float32)
    raw[:, 0] = -50.0
    return raw


def test_decode_detections_recovers_box_keypoints_and_score():
    raw = _empty_raw()
    kps = [[100, 150], [100, 50], [102, 80], [101, 40]]
    _raw_hit(raw, 1600, 0.9, (80, 30, 130, 170), kps)
    _raw_hit(raw, 2000, 0.7, (160, 160, 200, 210), [[180, 200], [180, 170], [181, 180], [180, 165]])
    _raw_hit(raw, 300, 0.3, (10, 10, 20, 20), [[15, 15]] * 4)  # below the score threshold
    dets = bp.decode_detections(raw[None], ANCHORS, score_thr=0.5)
    assert [round(d.score, 4) for d in dets] == [0.9, 0.7]
    np.testing.assert_allclose(dets[0].box, [80, 30, 130, 170], atol=1e-3)
    np.testing.assert_allclose(dets[0].keypoints, kps, atol=1e-3)
    np.testing.assert_allclose(dets[1].box, [160, 160, 200, 210], atol=1e-3)


def test_decode_detections_merges_overlaps_and_drops_negative_sizes():
    raw = _empty_raw()
    _raw_hit(raw, 1600, 0.8, (80, 30, 130, 170), [[100, 150]] * 4)
    _raw_hit(raw, 1601, 0.2, (85, 35, 135, 175), [[110, 160]] * 4)  # same cell, heavily overlapping
    _raw_hit(raw, 500, 0.9, (10, 10, 20, 20), [[15, 15]] * 4)
    raw[500, 3] = -10.0  # negative width: MediaPipe drops such boxes
    dets = bp.decode_detections(raw, ANCHORS, score_thr=0.1)
    assert len(dets) == 1
    assert dets[0].score == pytest.approx(0.8, abs=1e-6)
    np.testing.assert_allclose(dets[0].box, [81, 31, 131, 171], atol=1e-3)  # 0.8 / 0.2 weighted mean
    np.testing.assert_allclose(dets[0].keypoints[0], [102, 152], atol=1e-3)


def test_decode_detections_rejects_wrong_shape():
    with pytest.raises(ValueError, match="2254, 13"):
        bp.decode_detections(np.zeros((1, 896, 13), dtype=np.float32), ANCHORS)


def test_normalize_radians():
    assert bp.normalize_radians(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert bp.normalize_radians(math.pi) == pytest.approx(-math.pi)
    assert bp.normalize_radians(-math.pi) == pytest.approx(-math.pi)
    assert bp.normalize_radians(0.25) == pytest.approx(0.25)


def _det(kp0, kp1) -> bp.Detection:
    return bp.Detection(np.zeros(4, dtype=np.float32), 0.9, np.array([kp0, kp1, kp0, kp1], dtype=np.float32))


@pytest.mark.parametrize(
    ("scale_point", "rotation"),
    [((100, 50), 0.0), ((200, 150), math.pi / 2), ((0, 150), -math.pi / 2), ((100, 250), -math.pi)],
    ids=["upright", "lying-head-right", "lying-head-left", "upside-down"],
)
def test_detection_to_roi_rotation_and_size(scale_point, rotation):
    roi = bp.detection_to_roi(_det((100, 150), scale_point))
    np.testing.assert_allclose(roi.center, [100, 150])
    assert roi.size == pytest.approx(2 * 100 * 1.25)
    assert roi.rotation == pytest.approx(rotation)
    np.testing.assert_allclose(roi.box, [-25, 25, 225, 275])


def _peak(crop: np.ndarray) -> np.ndarray:
    """Continuous x, y of the brightest crop pixel's centre."""
    row, col = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
    return np.array([col + 0.5, row + 0.5])


def test_roi_crop_puts_the_head_up():
    """A person lying with the head to the right: in the ROI crop the head must be above the hips."""
    image = np.zeros((300, 300, 3), np.uint8)
    image[150, 200] = 255  # the "head" pixel; hips at (100.5, 150.5)
    roi = bp.detection_to_roi(_det((100.5, 150.5), (200.5, 150.5)))
    x, back = bp.preprocess_landmarks(image, roi)
    assert x.shape == (1, 256, 256, 3) and x.dtype == np.uint8  # pixels: the network divides by 255
    np.testing.assert_allclose(_peak(x[0]), [128, 128 - 256 / 2.5], atol=1.0)  # straight up, 0.8 of half a side
    np.testing.assert_allclose(apply_affine(np.array([[128.0, 128.0]]), back), [[100.5, 150.5]], atol=1e-6)


@pytest.mark.parametrize("rotation", [0.0, 0.7, math.pi / 2, -2.5])
def test_back_projection_round_trip_through_rotated_crop(rotation):
    image = np.zeros((240, 320, 3), np.uint8)
    image[96, 171] = 255  # pixel centre (171.5, 96.5)
    roi = bp.Roi(np.array([160.0, 110.0]), 130.0, rotation)
    x, back = bp.preprocess_landmarks(image, roi)
    found = _peak(x[0])
    # image -> crop -> image: the bright pixel comes back to where it was (within the crop's pixel size)
    ld = np.zeros((39, 5), np.float32)
    ld[0, :2] = found
    lm = bp.landmarks_to_image(bp.decode_landmarks(ld, np.zeros(117, np.float32), 1.0), back)
    assert np.hypot(*(lm.keypoints[0, :2] - [171.5, 96.5])) < 130 / 256 * 1.5
    assert math.atan2(back[1, 0], back[0, 0]) == pytest.approx(bp.normalize_radians(rotation))


def test_preprocess_detector_letterboxes_pixels():
    image = np.full((100, 200, 3), 255, np.uint8)
    x, back = bp.preprocess_detector(image)
    assert x.shape == (1, 224, 224, 3) and x.dtype == np.uint8  # the network maps them to [-1, 1]
    assert x[0, 112, 112, 0] == 255 and x[0, 0, 112, 0] == 0  # image / zero padding above it
    np.testing.assert_allclose(apply_affine(np.array([[0.0, 56.0], [224.0, 168.0]]), back), [[0, 0], [200, 100]])
    raw = _empty_raw()
    _raw_hit(raw, 1600, 0.8, (0, 56, 112, 112), [[112, 112]] * 4)
    (det,) = bp.decode_detections(raw, ANCHORS, back=back)  # detector pixels -> image pixels
    np.testing.assert_allclose(det.box, [0, 0, 100, 50], atol=1e-4)
    np.testing.assert_allclose(det.keypoints, [[100, 50]] * 4, atol=1e-4)
    assert det.score == pytest.approx(0.8)


@pytest.mark.parametrize(("rotation", "expected"), [(math.pi / 2, [[0, 1, 0.3], [-2, 0, -0.1]]),
                                                     (0.0, [[1, 0, 0.3], [0, 2, -0.1]])])
def test_world_landmarks_follow_roi_rotation(rotation, expected):
    """World x, y turn with the ROI (whatever its size), z stays."""
    _, back = bp.preprocess_landmarks(np.zeros((50, 50, 3), np.uint8), bp.Roi(np.array([20.0, 30.0]), 37.0, rotation))
    world = np.zeros((39, 3), np.float32)
    world[:2] = [[1.0, 0.0, 0.3], [0.0, 2.0, -0.1]]
    lm = bp.landmarks_to_image(bp.decode_landmarks(np.zeros(195, np.float32), world, 1.0), back)
    np.testing.assert_allclose(lm.world[:2], expected, atol=1e-6)


def test_refine_with_heatmap_moves_points_to_the_blob():
    hm = np.zeros((64, 64, 3), np.float32)
    hm[9:12, 19:22, 0] = [[0.2, 0.4, 0.2], [0.4, 0.9, 0.4], [0.2, 0.4, 0.2]]  # symmetric blob at cell (10, 20)
    hm[9:12, 19:22, 1] = 0.3  # peak below 0.5: no refinement
    xy = np.array([[83.0, 42.0], [83.0, 42.0], [-5.0, 42.0]], dtype=np.float32)
    out = bp.refine_with_heatmap(xy, hm[None])
    np.testing.assert_allclose(out[0], [80, 40], atol=1e-5)  # cell (row 10, col 20) -> (20, 10) * 256 / 64
    np.testing.assert_allclose(out[1:], xy[1:])
    with pytest.raises(ValueError, match="3 channels"):
        bp.refine_with_heatmap(xy[:2], hm)


def _refine_reference(xy, hm, input_size=256, ks=7, min_conf=0.5):
    """MediaPipe's refinement, one point and one cell at a time."""
    rows, cols, _ = hm.shape
    out = xy.astype(np.float64).copy()
    for k, (x, y) in enumerate(xy):
        col, row = math.floor(x / input_size * cols), math.floor(y / input_size * rows)
        if not (0 <= col < cols and 0 <= row < rows):
            continue
        total = sx = sy = peak = 0.0
        for r in range(row - ks // 2, row + ks // 2 + 1):
            for c in range(col - ks // 2, col + ks // 2 + 1):
                if 0 <= r < rows and 0 <= c < cols:
                    v = float(hm[r, c, k])
                    total, sx, sy, peak = total + v, sx + v * c, sy + v * r, max(peak, v)
        if peak >= min_conf and total > 0:
            out[k] = sx / total / cols * input_size, sy / total / rows * input_size
    return out


def test_refine_with_heatmap_matches_a_per_cell_reference_at_the_edges():
    rng = np.random.default_rng(3)
    hm = rng.uniform(0, 1, (64, 64, 39)).astype(np.float32) ** 4  # sparse-ish peaks, some windows below 0.5
    xy = rng.uniform(-20, 276, (39, 2)).astype(np.float32)  # inside, on the border strip and outside
    xy[:4] = [[0.0, 0.0], [255.9, 255.9], [1.0, 250.0], [-0.1, 3.0]]
    out = bp.refine_with_heatmap(xy, hm)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _refine_reference(xy, hm), atol=1e-4)


def test_decode_landmarks_synthetic():
    ld = np.zeros((39, 5), np.float32)
    ld[:, 0] = np.arange(39)
    ld[:, 1] = 2 * np.arange(39)
    ld[:, 3] = 0.0  # visibility 0.5
    ld[5, 3] = 100.0
    ld[:, 4] = math.log(3)  # presence 0.75
    world = np.arange(117, dtype=np.float32).reshape(1, 117) / 100
    lm = bp.decode_landmarks(ld.reshape(1, 195), world, np.array([[0.8]], np.float32))
    assert lm.keypoints.shape == (33, 3)
    np.testing.assert_allclose(lm.keypoints[:, :2], ld[:33, :2])
    np.testing.assert_allclose(lm.keypoints[[0, 5], 2], [0.5, 1.0])
    np.testing.assert_allclose(lm.presence, 0.75, rtol=1e-6)
    np.testing.assert_allclose(lm.world, world.reshape(39, 3)[:33])
    np.testing.assert_allclose(lm.aux, [[33, 66], [34, 68]])
    assert lm.pose_score == pytest.approx(0.8)


def test_landmarks_to_image_maps_points_and_rotates_world():
    roi = bp.detection_to_roi(_det((100, 150), (200, 150)))  # lying, head right: rotation +90 deg
    _, back = bp.preprocess_landmarks(np.zeros((300, 300, 3), np.uint8), roi)
    ld = np.zeros((39, 5), np.float32)
    ld[0, :2] = [128, 128 - 256 / 2.5]  # "nose" straight above the crop centre
    ld[0, 3] = 2.0
    ld[33:35, :2] = [[128, 128], [128, 0]]
    world = np.zeros((39, 3), np.float32)
    world[0] = [0.0, -0.6, 0.1]  # head up in the crop's frame
    lm = bp.landmarks_to_image(bp.decode_landmarks(ld, world, 1.0), back)
    np.testing.assert_allclose(lm.keypoints[0], [200, 150, 1 / (1 + math.exp(-2))], atol=1e-3)
    np.testing.assert_allclose(lm.aux, [[100, 150], [225, 150]], atol=1e-3)
    np.testing.assert_allclose(lm.world[0], [0.6, 0.0, 0.1], atol=1e-6)  # head towards image +x


def _golden(golden_dir, name: str) -> bp.BlazePoseLandmarks:
    g = golden_dir / "blazepose-full"
    if not (g / f"{name}.ld_3d.npy").is_file():
        pytest.skip(f"{g} lacks {name}.ld_3d.npy")
    heads = ("ld_3d", "world_3d", "output_poseflag", "activation_heatmap")
    outputs = [np.load(g / f"{name}.{head}.npy") for head in heads]
    return bp.decode_landmarks(*outputs)


def test_golden_photo_landmarks_are_plausible(golden_dir):
    lm = _golden(golden_dir, "photo")  # one standing adult facing the camera, 256x256 input
    k = {name: lm.keypoints[i] for i, name in enumerate(bp.BLAZEPOSE33.keypoints)}
    assert lm.pose_score > 0.9
    assert np.all((lm.keypoints[:, :2] > 0) & (lm.keypoints[:, :2] < 256))
    assert k["nose"][2] > 0.9
    for side in ("left", "right"):
        ys = [k["nose"][1]] + [k[f"{side}_{part}"][1] for part in ("shoulder", "hip", "knee", "ankle")]
        assert ys == sorted(ys), f"{side} side not top-to-bottom: {ys}"
    for part in ("shoulder", "hip", "ankle"):  # facing the camera: the person's left is on the image's right
        assert k[f"left_{part}"][0] > k[f"right_{part}"][0]
    # the tracking ROI from the auxiliary points is upright and holds the whole body
    roi = bp.alignment_roi(lm.aux[0], lm.aux[1])
    assert abs(roi.rotation) < math.radians(20)
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    local = (lm.keypoints[:, :2] - roi.center) @ np.array([[c, -s], [s, c]])
    assert np.all(np.abs(local) < roi.size / 2)
    # world landmarks: metres around the hip centre, y down, a body 1-2 m tall
    hips = lm.world[[23, 24]].mean(0)
    assert np.all(np.abs(hips) < 0.1)
    height = lm.world[[27, 28], 1].mean() - lm.world[0, 1]
    assert 1.0 < height < 2.0


def test_golden_random_input_has_no_pose(golden_dir):
    assert _golden(golden_dir, "random").pose_score < 0.5


def _coco_person(coco_mini, file_name: str) -> tuple[np.ndarray, dict]:
    """The image (RGB) and its single person annotation."""
    data = json.loads((coco_mini / "annotations" / "person_keypoints_train2017.json").read_text())
    image_id = next(im["id"] for im in data["images"] if im["file_name"] == file_name)
    (ann,) = [a for a in data["annotations"] if a["image_id"] == image_id and a["num_keypoints"] > 0]
    return as_rgb(coco_mini / "train2017" / file_name), ann


def _load(*names: str):
    network = pytest.importorskip("posekit.network", reason="posekit.network (graph importer) not available yet")
    try:
        return [network.load_network(name, pixels=True) for name in names]
    except OfflineError as e:
        pytest.skip(f"model files not available offline: {e}")


@pytest.mark.network  # fetches the model files unless cached
def test_detector_roi_landmarks_chain_on_a_real_photo(coco_mini):
    """Detector -> ROI -> rotated crop -> landmarks -> image pixels on a COCO photo of one standing woman."""
    detector, landmarks = _load("blazepose-detector", "blazepose-full")
    image, ann = _coco_person(coco_mini, "000000535506.jpg")
    x, back = bp.preprocess_detector(image)
    dets = bp.decode_detections(detector.run(x), ANCHORS, back=back)
    assert len(dets) == 1 and dets[0].score > 0.5
    roi = bp.detection_to_roi(dets[0])
    assert abs(roi.rotation) < math.radians(20)  # standing
    crop, back = bp.preprocess_landmarks(image, roi)
    lm = bp.landmarks_to_image(bp.decode_landmark_outputs(landmarks.run(crop)), back)
    assert lm.pose_score > 0.9
    gt = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
    labelled = gt[:, 2] > 0
    dist2 = ((bp.BLAZEPOSE33.map_to_coco(lm.keypoints)[:, :2] - gt[:, :2]) ** 2).sum(1)
    sigmas = np.asarray(COCO17.sigmas)
    oks = np.exp(-dist2 / (2 * ann["area"] * (2 * sigmas) ** 2))[labelled].mean()
    assert oks > 0.6  # measured 0.80
