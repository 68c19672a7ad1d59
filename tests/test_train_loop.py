"""The loop: resume after an interruption replays the same loss curve; bad configs fail before the first step with
one clear message; logs and checkpoints land in the run folder."""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch", reason="training tests need the extra: pip install 'posekit[train]'")
pytest.importorskip("yaml", reason="training tests need the extra: pip install 'posekit[train]'")
pytest.importorskip("safetensors", reason="training tests need the extra: pip install 'posekit[train]'")

from posekit.cli import main  # noqa: E402
from posekit.data.synthetic import write_dataset  # noqa: E402
from posekit.errors import PosekitError  # noqa: E402
from posekit.train.checkpoint import load_checkpoint  # noqa: E402
from posekit.train.config import config_from_dict  # noqa: E402
from posekit.train.loop import train  # noqa: E402

STEPS_PER_EPOCH = 12


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    write_dataset(root / "train", 16 * STEPS_PER_EPOCH, seed=0, image_size=64)
    write_dataset(root / "val", 24, seed=1, image_size=64)
    return root


def tiny_config(root, out, **train):
    return config_from_dict({
        "data": {"train": {"annotations": str(root / "train" / "annotations.json"), "images": str(root / "train" /
                                                                                                 "images")},
                 "val": {"annotations": str(root / "val" / "annotations.json"), "images": str(root / "val" / "images")},
                 "cache_images": True},
        "input": {"size": [32, 32]},
        "model": {"backbone": "resnet", "widths": [8, 16]},
        "head": {"type": "regression", "reduce": 8, "hidden": 32},
        "train": {"epochs": 2, "batch": 16, "lr": 0.003, "device": "cpu", "log_every": 1, "out": str(out), **train},
    })


def losses(out):
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def stop_at(step, exc):
    def on_step(record):
        if record["step"] == step:
            raise exc

    return on_step


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    summary = train(tiny_config(tiny, out), progress=False)
    return out, summary


def test_run_folder(reference):
    out, summary = reference
    assert summary["step"] == 2 * STEPS_PER_EPOCH
    assert sorted(losses(out)) == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    csv_rows = (out / "metrics.csv").read_text().splitlines()
    assert csv_rows[0].startswith("epoch,step,loss") and len(csv_rows) == 3
    evals = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if '"eval"' in line]
    assert [e["epoch"] for e in evals] == [1, 2] and all(0 <= e["ap"] <= 1 for e in evals)
    best = load_checkpoint(out / "best.safetensors")
    assert best.info["model"]["skeleton"]["keypoints"][0] == "head" and best.info["model"]["head"]["type"] == \
        "regression"
    assert summary["best"]["ap"] == max(e["ap"] for e in evals)
    last = load_checkpoint(out / "last.safetensors")
    assert last.info["step"] == 2 * STEPS_PER_EPOCH and any(k.startswith("optim.") for k in last.tensors)


def test_resume_after_ctrl_c_continues_the_same_curve(tiny, reference, tmp_path):
    ref = losses(reference[0])
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tiny, tmp_path), progress=False, on_step=stop_at(17, KeyboardInterrupt()))
    assert load_checkpoint(tmp_path / "last.safetensors").info["step"] == 17
    summary = train(tiny_config(tiny, tmp_path), resume=True, progress=False)
    assert summary["step"] == 2 * STEPS_PER_EPOCH
    got = losses(tmp_path)
    assert sorted(got) == sorted(ref)  # rows after the stop were not duplicated
    for step in range(18, 2 * STEPS_PER_EPOCH + 1):
        assert got[step] == pytest.approx(ref[step], rel=0.01), step


def test_resume_after_crash_restarts_from_last_checkpoint_with_workers(tiny, reference, tmp_path):
    ref = losses(reference[0])
    with pytest.raises(RuntimeError):
        train(tiny_config(tiny, tmp_path, checkpoint_every=5), progress=False, on_step=stop_at(22, RuntimeError()))
    assert load_checkpoint(tmp_path / "last.safetensors").info["step"] == 20
    cfg = tiny_config(tiny, tmp_path, checkpoint_every=5)
    cfg = config_from_dict({**cfg.to_dict(), "data": {**cfg.to_dict()["data"], "workers": 1}})
    with pytest.raises(PosekitError, match="'data' settings differ"):  # resuming with another dataset is refused
        train(config_from_dict({**cfg.to_dict(), "data": {**cfg.to_dict()["data"], "min_keypoints": 3}}),
              resume=True, progress=False)
    train(cfg, resume=tmp_path / "last.safetensors", progress=False)
    got = losses(tmp_path)
    for step in range(21, 2 * STEPS_PER_EPOCH + 1):
        assert got[step] == pytest.approx(ref[step], rel=0.01), step


def _bad(tiny, tmp_path, change):
    """A copy of the tiny training split with ``change(doc, folder)`` applied; returns the config dict."""
    folder = tmp_path / "data"
    shutil.copytree(tiny / "train", folder)
    doc = json.loads((folder / "annotations.json").read_text())
    change(doc, folder)
    (folder / "annotations.json").write_text(json.dumps(doc))
    cfg = tiny_config(tiny, tmp_path / "run").to_dict()
    cfg["data"]["train"] = {"annotations": str(folder / "annotations.json"), "images": str(folder / "images")}
    return cfg


def _no_change(doc, folder):
    return None


def _bad_flip(doc, folder):
    doc["categories"][0]["flip_pairs"] = [["left_hand", "left_knee"]]


def _delete_image(doc, folder):
    (folder / "images" / doc["images"][5]["file_name"]).unlink()


@pytest.mark.parametrize("change,override,message", [
    (_no_change, {"train": {"annotations": "/nonexistent/ann.json", "images": "/nonexistent"}}, "ann.json not found"),
    (_no_change, {"skeleton": "coco17"}, "skeleton 'coco17' .* does not match"),
    (_no_change, {"skeleton": "coco18"}, "unknown skeleton 'coco18'"),
    (_bad_flip, {}, "flip_pairs"),
    (_delete_image, {}, "1 image.* missing .*000005.png"),
])
def test_bad_configs_fail_before_training(tiny, tmp_path, change, override, message):
    cfg = _bad(tiny, tmp_path, change)
    cfg["data"].update(override)
    with pytest.raises(PosekitError, match=message):
        train(config_from_dict(cfg), progress=False)
    assert not (tmp_path / "run" / "last.safetensors").exists()


def test_cli_reports_a_bad_config_on_one_line(tiny, tmp_path, capsys):
    import yaml

    cfg = tiny_config(tiny, tmp_path / "run").to_dict()
    cfg["data"]["train"]["images"] = str(tmp_path / "nowhere")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "train.epochs=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "nowhere not found" in err
