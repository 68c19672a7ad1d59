"""COCO keypoint loading with any skeleton, the synthetic generator and top-down samples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posekit.data.coco import load_coco
from posekit.data.synthetic import _EDGE_COLORS, STICK7, write_dataset
from posekit.data.topdown import InputSpec, TopDownDataset
from posekit.errors import PosekitError
from posekit.io import read_image
from posekit.skeleton import COCO17


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    return write_dataset(folder, 24, seed=3, image_size=96), folder / "images"


def test_generator_is_deterministic(synth, tmp_path):
    ann, _ = synth
    again = write_dataset(tmp_path, 24, seed=3, image_size=96)
    assert ann.read_text() == again.read_text()
    np.testing.assert_array_equal(read_image(tmp_path / "images" / "000005.png"),
                                  read_image(ann.parent / "images" / "000005.png"))


def test_generator_keypoints_sit_on_their_limbs(synth):
    """The hand / foot keypoint pixel has the colour of the limb ending there (exact keypoints)."""
    ann, images = synth
    doc = json.loads(ann.read_text())
    hits = total = 0
    for a, im in zip(doc["annotations"], doc["images"]):
        img = read_image(images / im["file_name"]).astype(int)
        kps = np.array(a["keypoints"]).reshape(7, 3)
        for joint, edge in ((3, 2), (4, 3), (5, 4), (6, 5)):
            if kps[joint, 2] > 0:
                x, y = kps[joint, :2].astype(int)
                hits += np.abs(img[y, x] - _EDGE_COLORS[edge]).max() < 40
                total += 1
    assert total > 80 and hits / total > 0.9


def test_load_coco_takes_the_skeleton_from_the_category(synth):
    data = load_coco(*synth)
    assert len(data) == 24 and len(data.files) == 24
    assert data.skeleton.keypoints == STICK7.keypoints
    assert data.skeleton.flip_pairs == STICK7.flip_pairs and data.skeleton.sigmas == STICK7.sigmas
    inst = data.instances[0]
    assert inst.keypoints.shape == (7, 3) and inst.box[2] > inst.box[0]
    labelled = inst.keypoints[inst.keypoints[:, 2] > 0, :2]
    assert (labelled >= inst.box[:2] - 1e-3).all() and (labelled <= inst.box[2:] + 1e-3).all()


def _rewrite(ann, tmp_path, change):
    doc = json.loads(ann.read_text())
    change(doc)
    out = tmp_path / "ann.json"
    out.write_text(json.dumps(doc))
    return out


def test_load_coco_errors(synth, tmp_path):
    ann, images = synth
    with pytest.raises(PosekitError, match="not found"):
        load_coco(tmp_path / "missing.json", images)
    with pytest.raises(PosekitError, match="does not match"):
        load_coco(ann, images, skeleton=COCO17)

    def bad_flip(doc):
        doc["categories"][0]["flip_pairs"] = [["left_hand", "right_elbow"]]

    with pytest.raises(PosekitError, match="flip_pairs"):
        load_coco(_rewrite(ann, tmp_path, bad_flip), images)

    def short(doc):
        doc["annotations"][2]["keypoints"] = doc["annotations"][2]["keypoints"][:-3]

    with pytest.raises(PosekitError, match="has 6 keypoints"):
        load_coco(_rewrite(ann, tmp_path, short), images)

    def missing_image(doc):
        doc["images"][1]["file_name"] = "nope.png"

    with pytest.raises(PosekitError, match="1 image.* missing.*nope.png"):
        load_coco(_rewrite(ann, tmp_path, missing_image), images)


def test_topdown_samples(synth):
    data = load_coco(*synth)
    head = {"type": "simplebaseline", "stride": 4.0, "sigma": 2.0}
    ds = TopDownDataset(data, InputSpec((64, 48)), head, augment=None, cache_images=True)
    item = ds[3]
    assert item["image"].shape == (3, 64, 48) and item["image"].dtype == np.float32
    assert item["heatmaps"].shape == (7, 16, 12) and item["affine"].shape == (2, 3)
    # un-normalising gives back the crop's pixel range
    spec = ds.spec
    rgb = item["image"] * np.array(spec.std, np.float32)[:, None, None] + np.array(spec.mean, np.float32)[:, None,
                                                                                                         None]
    assert rgb.min() > -1 and rgb.max() < 256
    from posekit.data.augment import AugmentConfig

    aug = TopDownDataset(data, InputSpec((64, 48)), head, AugmentConfig(), seed=1)
    np.testing.assert_array_equal(aug[(2, 5)]["image"], aug[(2, 5)]["image"])  # (epoch, index) fixes the draw
    assert not np.array_equal(aug[(2, 5)]["image"], aug[(3, 5)]["image"])


def test_real_coco_images_load_as_coco17(coco_mini):
    data = load_coco(coco_mini / "annotations" / "person_keypoints_train2017.json", coco_mini / "train2017")
    assert data.skeleton.keypoints == COCO17.keypoints and data.skeleton.sigmas == COCO17.sigmas
    assert data.skeleton.flip_pairs == COCO17.flip_pairs and len(data) > 50
