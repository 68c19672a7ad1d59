"""Data-parallel training: torchrun with 2 CPU processes (gloo) splits every epoch's batches between the ranks;
rank 0 alone logs, evaluates and writes checkpoints, and every process exits cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="training tests need the extra: pip install 'posekit[train]'")
yaml = pytest.importorskip("yaml", reason="training tests need the extra: pip install 'posekit[train]'")
pytest.importorskip("safetensors", reason="training tests need the extra: pip install 'posekit[train]'")

from posekit.data.synthetic import write_dataset  # noqa: E402
from posekit.train.checkpoint import load_checkpoint  # noqa: E402


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    write_dataset(tmp_path / "train", 128, seed=0, image_size=64)
    write_dataset(tmp_path / "val", 16, seed=1, image_size=64)
    out = tmp_path / "run"
    cfg = {
        "data": {"train": {"annotations": str(tmp_path / "train" / "annotations.json"),
                           "images": str(tmp_path / "train" / "images")},
                 "val": {"annotations": str(tmp_path / "val" / "annotations.json"),
                         "images": str(tmp_path / "val" / "images")}},
        "input": {"size": [32, 32]},
        "model": {"backbone": "resnet", "widths": [8, 16]},
        "head": {"type": "simplebaseline", "deconv_layers": 1, "deconv_channels": 8},
        "train": {"epochs": 1, "batch": 16, "device": "cpu", "log_every": 1, "out": str(out)},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "posekit.cli",
         "train", str(tmp_path / "c.yaml"), "--quiet"],
        env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == list(range(1, 128 // 16 // 2 + 1))  # two processes: half the steps per epoch, logged once
    assert [r for r in rows if r.get("eval")]  # rank 0 evaluated
    assert load_checkpoint(out / "last.safetensors").info["step"] == 4
