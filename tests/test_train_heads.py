"""Acceptance: each head trains from scratch on CPU (the shipped synthetic configs, unchanged) to PCK@0.2 >= 0.9 on
held-out synthetic figures, and its ONNX export run through ONNX Runtime gives the torch model's keypoints."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need the extra: pip install 'posekit[train]'")
pytest.importorskip("yaml", reason="training tests need the extra: pip install 'posekit[train]'")
pytest.importorskip("safetensors", reason="training tests need the extra: pip install 'posekit[train]'")

from posekit.data.topdown import TopDownDataset  # noqa: E402
from posekit.export.metadata import input_spec  # noqa: E402
from posekit.export.onnx import export_onnx  # noqa: E402
from posekit.export.runtime import estimate, load_exported  # noqa: E402
from posekit.io import read_image  # noqa: E402
from posekit.train.checkpoint import load_checkpoint  # noqa: E402
from posekit.train.config import config_from_dict, load_config  # noqa: E402
from posekit.train.loop import load_splits, predict_batches, train  # noqa: E402
from posekit.train.model import build_model  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PARITY_PEOPLE = 24


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """One folder for the generated figures, shared by the three runs (their configs ask for the same data)."""
    return tmp_path_factory.mktemp("synthetic-data")


@pytest.mark.slow
@pytest.mark.parametrize("head", ["regression", "simplebaseline", "grmi"])
def test_head_trains_to_pck_and_export_matches(head, data_dir, tmp_path):
    torch.set_num_threads(2)
    cfg = load_config(CONFIGS / f"synthetic_{head}_resnet_64.yaml",
                      [f"data.synthetic.dir={data_dir}", f"train.out={tmp_path}"])
    start = time.perf_counter()
    summary = train(cfg, progress=False)
    seconds = time.perf_counter() - start
    best = summary["best"]
    print(f"{head}: PCK@0.2 {best['pck']:.3f} PCK@0.1 {best['pck@0.1']:.3f} AP {best['ap']:.3f} "
          f"in {seconds:.1f} s ({summary['step']} steps)")
    assert best["pck"] >= 0.9

    # the exported file alone (ONNX Runtime, metadata-driven crops and decoding) against the torch checkpoint
    onnx_path = export_onnx(tmp_path / "best.safetensors", tmp_path / f"{head}.onnx")
    session, meta = load_exported(onnx_path)
    assert meta["head"]["type"] == head and meta["skeleton"]["name"] == "person"
    ckpt = load_checkpoint(tmp_path / "best.safetensors")
    model, head_meta = build_model(config_from_dict(ckpt.info["config"]), 7)
    model.load_state_dict(ckpt.model_state())
    _, val = load_splits(cfg)
    spec = input_spec(meta)
    loader = torch.utils.data.DataLoader(TopDownDataset(val, spec, head_meta), batch_size=PARITY_PEOPLE)
    idx, torch_kps = predict_batches(model, [next(iter(loader))], head_meta, spec.size_hw, torch.device("cpu"))
    for i, expected in zip(idx, torch_kps):
        inst = val.instances[i]
        (person,) = estimate(session, meta, read_image(val.files[inst.image_id]), inst.box[None])
        np.testing.assert_allclose(person.keypoints[:, :2], expected[:, :2], atol=1e-3 * 96)
        np.testing.assert_allclose(person.keypoints[:, 2], expected[:, 2], atol=1e-3)
