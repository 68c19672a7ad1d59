"""Training building blocks on tiny tensors: backbones, heads, losses, schedule, config, checkpoints, sharding."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need the extra: pip install 'posekit[train]'")
pytest.importorskip("yaml", reason="training tests need the extra: pip install 'posekit[train]'")
pytest.importorskip("safetensors", reason="training tests need the extra: pip install 'posekit[train]'")

from posekit.errors import PosekitError  # noqa: E402
from posekit.train.backbones import CoordConv, build_backbone  # noqa: E402
from posekit.train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from posekit.train.config import config_from_dict, load_config  # noqa: E402
from posekit.train.ddp import Dist, EpochBatches  # noqa: E402
from posekit.train.loop import lr_at  # noqa: E402
from posekit.train.losses import grmi_loss, heatmap_loss, regression_loss  # noqa: E402
from posekit.train.model import build_model  # noqa: E402


@pytest.mark.parametrize("name", ["mobilenetv2", "resnet"])
@pytest.mark.parametrize("stride", [8, 16, 32])
def test_backbone_strides(name, stride):
    net = build_backbone(name, output_stride=stride, width=0.35, widths=(8, 16, 16, 24))
    out = net.eval()(torch.zeros(1, 3, 64, 96))
    assert out.shape == (1, net.out_channels, 64 // stride, 96 // stride) and net.stride == stride


def test_coordconv_channels():
    x = CoordConv()(torch.zeros(2, 3, 4, 5))
    assert x.shape == (2, 5, 4, 5)
    assert x[0, 3, 0, 0] == -1 and x[0, 3, 0, -1] == 1 and x[0, 4, -1, 0] == 1
    net = build_backbone("resnet", coordconv=True, widths=(8, 16))
    assert net(torch.zeros(2, 3, 32, 32)).shape[1] == net.out_channels == 16


@pytest.mark.parametrize("head,shapes", [
    ({"type": "regression"}, [(2, 5, 2), (2, 5)]),
    ({"type": "simplebaseline", "deconv_layers": 2, "deconv_channels": 16}, [(2, 5, 16, 12)]),
    ({"type": "grmi", "channels": 16}, [(2, 5, 8, 6), (2, 10, 8, 6)]),
])
def test_model_outputs_and_head_description(head, shapes):
    stride = 8 if head["type"] == "grmi" else 16
    cfg = config_from_dict({"input": {"size": [64, 48]}, "head": head,
                            "model": {"backbone": "resnet", "widths": [8, 16, 16], "blocks": [1, 1, 1],
                                      "output_stride": stride}})
    model, meta = build_model(cfg, 5)
    outs = model(torch.zeros(2, 3, 64, 48))
    assert [tuple(o.shape) for o in outs] == shapes
    assert meta["type"] == head["type"] and meta["num_keypoints"] == 5
    if head["type"] != "regression":
        assert meta["stride"] == 64 / shapes[0][2]


def test_regression_loss_masks_unlabelled_and_weights_parts():
    out = {"coords": torch.tensor([[[0.5, 0.5], [9.0, 9.0]]]), "visibility": torch.zeros(1, 2)}
    batch = {"coords": torch.tensor([[[0.3, 0.5], [0.0, 0.0]]]), "coord_weight": torch.tensor([[1.0, 0.0]]),
             "visible": torch.tensor([[1.0, 0.0]])}
    loss, parts = regression_loss(out, batch)
    assert parts["mse"] == pytest.approx(0.02)  # (0.2^2 + 0) / 2 coordinates, one labelled joint
    assert parts["bce"] == pytest.approx(math.log(2))
    assert loss.item() == pytest.approx(0.6 * 0.02 + 0.4 * math.log(2))


def test_heatmap_loss_is_target_weighted():
    pred = torch.ones(1, 2, 2, 2)
    batch = {"heatmaps": torch.zeros(1, 2, 2, 2), "heatmap_weight": torch.tensor([[1.0, 0.0]])}
    loss, _ = heatmap_loss({"heatmaps": pred}, batch)
    assert loss.item() == pytest.approx(0.5 * 4 / 8)


def test_grmi_offsets_count_only_inside_disks():
    disks = torch.zeros(1, 1, 2, 2)
    disks[0, 0, 0, 0] = 1
    target = torch.zeros(1, 1, 2, 2, 2)
    pred_off = torch.zeros(1, 2, 2, 2)
    pred_off[0, 0, 1, 1] = 100.0  # outside the disk: ignored
    pred_off[0, 1, 0, 0] = 0.2  # inside: dy error 0.2 -> Huber 0.5 * 0.04
    logits = torch.full((1, 1, 2, 2), -50.0)
    logits[0, 0, 0, 0] = 50.0
    loss, parts = grmi_loss({"heatmaps": logits, "offsets": pred_off}, {"disks": disks, "offsets": target})
    assert parts["offset"] == pytest.approx(0.02, rel=1e-5) and parts["bce"] < 1e-6


def test_lr_schedules():
    cfg = config_from_dict({"train": {"lr": 1.0, "warmup_steps": 10, "schedule": "cosine"}})
    assert lr_at(0, 110, cfg) == pytest.approx(0.1) and lr_at(9, 110, cfg) == pytest.approx(1.0)
    assert lr_at(60, 110, cfg) == pytest.approx(0.5) and lr_at(110, 110, cfg) == pytest.approx(0.0, abs=1e-12)
    step = config_from_dict({"train": {"lr": 1.0, "schedule": "step", "milestones": [0.5, 0.75], "gamma": 0.1}})
    assert [lr_at(s, 100, step) for s in (0, 49, 50, 75, 99)] == pytest.approx([1, 1, 0.1, 0.01, 0.01])


def test_config_overrides_and_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("head: {type: grmi}\ntrain: {epochs: 3}\n")
    cfg = load_config(path, ["train.epochs=5", "input.size=[96, 80]", "head.radius=12"])
    assert cfg.train.epochs == 5 and cfg.input.size == (96, 80) and cfg.head.radius == 12.0
    assert cfg.head.type == "grmi" and cfg.train.batch == 32  # defaults fill the rest
    for override, message in [("train.epoch=5", "unknown config key train.epoch"),
                              ("head.type=hrnet", "must be one of"), ("train.batch=two", "must be an integer"),
                              ("input.size=[64]", "must have 2 entries"), ("nonsense", "section.key=value")]:
        with pytest.raises(PosekitError, match=message):
            load_config(path, [override])
    with pytest.raises(PosekitError, match="not found"):
        load_config(tmp_path / "none.yaml")


def test_checkpoint_round_trip(tmp_path):
    cfg = config_from_dict({"model": {"backbone": "resnet", "widths": [8, 8]}, "input": {"size": [32, 32]}})
    model, _ = build_model(cfg, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sum(o.sum() for o in model(torch.randn(2, 3, 32, 32))).backward()
    opt.step()
    path = save_checkpoint(tmp_path / "c.safetensors", model, {"step": 7, "config": cfg.to_dict()}, opt)
    ckpt = load_checkpoint(path)
    assert ckpt.info["step"] == 7
    model2, _ = build_model(cfg, 3)
    model2.load_state_dict(ckpt.model_state())
    opt2 = torch.optim.AdamW(model2.parameters(), lr=0.5)
    ckpt.restore_optimizer(opt2)
    assert opt2.param_groups[0]["lr"] == 0.1
    before, after = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert before.keys() == after.keys()
    for i in before:
        torch.testing.assert_close(before[i]["exp_avg_sq"], after[i]["exp_avg_sq"])
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        torch.testing.assert_close(a, b)
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(PosekitError, match="not a safetensors checkpoint"):
        load_checkpoint(tmp_path / "junk.safetensors")


def test_epoch_batches_shard_and_skip():
    single = EpochBatches(20, 4, seed=1, d=Dist())
    single.set_epoch(2)
    batches = list(single)
    assert len(batches) == 5 and sorted(i for b in batches for _, i in b) == list(range(20))
    assert all(e == 2 for b in batches for e, _ in b)
    single.set_epoch(2, skip=3)
    assert list(single) == batches[3:]
    ranks = [EpochBatches(20, 4, seed=1, d=Dist(r, 2)) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(2)
    shards = [list(r) for r in ranks]
    assert [len(s) for s in shards] == [2, 2]
    seen = [i for s in shards for b in s for _, i in b]
    assert len(set(seen)) == 16 and np.isin(seen, range(20)).all()


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.train.out.endswith(path.stem)  # each run writes to a folder named after its config
