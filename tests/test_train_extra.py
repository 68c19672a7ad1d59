"""Without the [train] extra: importing posekit (and running exported models) never needs torch, and the training
commands say which extra to install instead of failing with an ImportError."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from posekit.cli import main


def test_inference_side_imports_no_torch():
    code = ("import sys, posekit, posekit.export.runtime, posekit.data.topdown, posekit.decode.heatmap, "
            "posekit.train.config, posekit.commands.train, posekit.commands.export; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("argv", [["train", "some.yaml"], ["export", "c.safetensors", "--onnx", "m.onnx"]])
def test_missing_extra_is_one_clear_error(monkeypatch, capsys, tmp_path, argv):
    real = importlib.import_module

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", no_torch)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pip install 'posekit[train]'" in err
