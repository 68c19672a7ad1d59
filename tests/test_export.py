"""ONNX export of checkpoints: metadata travels in the file, ONNX Runtime reproduces the torch outputs, and the
exported file runs on images and boxes by itself."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch", reason="export tests need the extra: pip install 'posekit[train]'")
pytest.importorskip("yaml", reason="export tests need the extra: pip install 'posekit[train]'")
pytest.importorskip("safetensors", reason="export tests need the extra: pip install 'posekit[train]'")

from posekit.cli import main  # noqa: E402
from posekit.data.synthetic import STICK7  # noqa: E402
from posekit.data.topdown import InputSpec  # noqa: E402
from posekit.errors import PosekitError  # noqa: E402
from posekit.export.metadata import model_metadata, skeleton_from_dict, skeleton_to_dict  # noqa: E402
from posekit.export.onnx import export_onnx  # noqa: E402
from posekit.export.runtime import estimate, load_exported, run_crops  # noqa: E402
from posekit.skeleton import COCO17  # noqa: E402
from posekit.train.checkpoint import save_checkpoint  # noqa: E402
from posekit.train.config import config_from_dict  # noqa: E402
from posekit.train.model import build_model  # noqa: E402

HEADS = {
    "regression": {"type": "regression", "reduce": 8, "hidden": 16},
    "simplebaseline": {"type": "simplebaseline", "deconv_layers": 2, "deconv_channels": 8},
    "grmi": {"type": "grmi", "channels": 8},
}


def make_checkpoint(path, head: str):
    cfg = config_from_dict({"input": {"size": [48, 32], "mean": [100, 110, 120], "std": [50, 60, 70]},
                            "model": {"backbone": "resnet", "widths": [8, 16], "output_stride": 8},
                            "head": HEADS[head]})
    torch.manual_seed(0)
    model, meta = build_model(cfg, STICK7.num_keypoints)
    model.eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so that eval mode matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    spec = InputSpec((48, 32), 1.25, (100.0, 110.0, 120.0), (50.0, 60.0, 70.0))
    save_checkpoint(path, model, {"model": model_metadata(STICK7, spec, meta), "config": cfg.to_dict(), "step": 0})
    return model


@pytest.mark.parametrize("head", list(HEADS))
def test_onnx_matches_torch_and_carries_metadata(head, tmp_path):
    model = make_checkpoint(tmp_path / "c.safetensors", head)
    path = export_onnx(tmp_path / "c.safetensors", tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["posekit"])
    assert meta["head"]["type"] == head and meta["input"]["size"] == [48, 32] and meta["input"]["std"] == [50, 60, 70]
    assert skeleton_from_dict(meta["skeleton"]) == STICK7

    session, meta2 = load_exported(path)
    assert meta2 == meta
    x = np.random.default_rng(0).normal(size=(3, 3, 48, 32)).astype(np.float32)  # dynamic batch
    got = session.run(None, {"image": x})
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(x))]
    assert [o.name for o in session.get_outputs()] == list(model.named(model(torch.from_numpy(x))))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)


def test_estimate_maps_keypoints_back_to_the_image(tmp_path):
    make_checkpoint(tmp_path / "c.safetensors", "regression")
    session, meta = load_exported(tmp_path / "c.safetensors")  # a checkpoint runs too (exported in memory)
    image = np.random.default_rng(1).integers(0, 255, (120, 90, 3)).astype(np.uint8)
    boxes = np.array([[10, 20, 50, 100], [40, 5, 80, 60]], np.float32)
    people = estimate(session, meta, image, boxes)
    assert len(people) == 2 and all(p.skeleton == STICK7 and p.keypoints.shape == (7, 3) for p in people)
    from posekit.transforms import apply_affine, crop_box, invert_affine

    crop, m = crop_box(image, boxes[1], (48, 32), margin=1.25)
    in_crop = run_crops(session, meta, crop[None])[0]
    np.testing.assert_allclose(people[1].keypoints, apply_affine(in_crop, invert_affine(m)), atol=1e-4)
    assert people[1].score == pytest.approx(float(in_crop[:, 2].mean()), abs=1e-6)
    (whole,) = estimate(session, meta, image)
    np.testing.assert_allclose(whole.box, [0, 0, 90, 120])
    assert estimate(session, meta, image, np.zeros((0, 4))) == []


def test_export_errors_and_cli(tmp_path, capsys):
    make_checkpoint(tmp_path / "c.safetensors", "grmi")
    with pytest.raises(PosekitError, match="must end in .onnx"):
        export_onnx(tmp_path / "c.safetensors", tmp_path / "m.bin")
    with pytest.raises(PosekitError, match="not found"):
        load_exported(tmp_path / "none.onnx")
    plain = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])]))
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    with pytest.raises(PosekitError, match="no posekit metadata"):
        load_exported(tmp_path / "plain.onnx")
    assert main(["export", str(tmp_path / "c.safetensors"), "--onnx", str(tmp_path / "cli.onnx")]) == 0
    assert "grmi head, 7 keypoints" in capsys.readouterr().out
    assert (tmp_path / "cli.onnx").is_file()


def test_skeleton_json_round_trip():
    assert skeleton_from_dict(json.loads(json.dumps(skeleton_to_dict(COCO17)))) == COCO17


def test_trained_model_works_like_a_zoo_model(tmp_path, capsys):
    import posekit

    make_checkpoint(tmp_path / "c.safetensors", "simplebaseline")
    onnx_path = export_onnx(tmp_path / "c.safetensors", tmp_path / "mine.onnx")
    image = np.random.default_rng(2).integers(0, 255, (90, 120, 3)).astype(np.uint8)
    boxes = np.array([[10, 10, 60, 80]], np.float32)
    for source in (onnx_path, tmp_path / "c.safetensors"):
        est = posekit.load(str(source))
        assert est.skeleton == STICK7 and est.top_down
        people = est(image, boxes)
        assert len(people) == 1 and people[0].keypoints.shape == (7, 3)
        np.testing.assert_array_equal(people[0].box, boxes[0])
    photo = tmp_path / "photo.png"
    import cv2

    cv2.imwrite(str(photo), image)
    assert main(["predict", str(photo), "--model", str(onnx_path), "--out", str(tmp_path / "out"),
                 "--min-score", "0"]) == 0  # a model trained for a few steps scores low
    saved = json.loads((tmp_path / "out" / "photo.json").read_text())
    assert len(saved["people"]) == 1 and set(saved["people"][0]["keypoints"]) == set(STICK7.keypoints)
    assert main(["predict", str(photo), "--model", str(tmp_path / "missing.onnx")]) == 2
    assert "missing.onnx not found" in capsys.readouterr().err
