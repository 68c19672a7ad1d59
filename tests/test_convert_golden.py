"""Numerical parity of imported zoo graphs with TensorFlow.js itself (../shared/golden, see its README.md).

Model files come through the hub (`posekit.network.load_network`); the ONNX import is redone into a temporary
folder so the check always covers the current importer, never a cached conversion.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED

from posekit.errors import OfflineError
from posekit.hub.registry import get_spec

#: (model, input name) for every golden input, listed at collection; the `golden_dir` fixture skips without it.
CASES = [(meta.parent.name, name) for meta in sorted((SHARED / "golden").glob("*/meta.json"))
         for name in json.loads(meta.read_text())["inputs"]] or [("none", "none")]


def tolerance(model: str, key: str, spec: dict) -> float:
    """Largest allowed |import - TF.js cpu| for one output (the issue's limits).

    MoveNet outputs (keypoints, boxes, scores; normalised) and heatmaps: 1e-4.  Outputs in input pixels — PoseNet
    displacements / offsets and BlazePose ld_3d — 1e-2.  Any other: 10x the spread between TF.js's own cpu and wasm
    backends, at least 1e-4.
    """
    if "displacement" in key or "offset" in key or key == "ld_3d":
        return 1e-2
    if model.startswith("movenet") or "heatmap" in key:
        return 1e-4
    return max(10 * spec["max_abs_diff_cpu_vs_wasm"], 1e-4)


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory):
    """load_network with a fresh ONNX cache; one network per model, loaded on first use."""
    network = pytest.importorskip("posekit.network", reason="posekit.network not available")
    loaded: dict = {}

    def get(model: str):
        if model not in loaded:
            try:
                loaded[model] = network.load_network(model, input_shape=get_spec(model).input_shape)
            except OfflineError as exc:
                pytest.skip(f"model files not available offline: {exc}")
        return loaded[model]

    folder = tmp_path_factory.mktemp("onnx")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("posekit.hub.cache.onnx_dir", lambda: folder)
        yield get


@pytest.mark.shared
@pytest.mark.network  # fetches the model files unless cached
@pytest.mark.parametrize(("model", "input_name"), CASES)
def test_import_matches_tfjs(golden_dir: Path, networks, model: str, input_name: str) -> None:
    folder = golden_dir / model
    meta = json.loads((folder / "meta.json").read_text())
    net = networks(model)
    results = net.run(np.load(folder / meta["inputs"][input_name]["file"]))
    problems = []
    for key, spec in meta["outputs"].items():
        golden = np.load(folder / f"{input_name}.{spec['file_suffix']}")
        assert spec["node"] in results, f"{model} has no output {spec['node']}; it has {sorted(results)}"
        got = results[spec["node"]]
        assert got.shape == golden.shape, (key, got.shape, golden.shape)
        diff, limit = float(np.abs(got - golden).max()), tolerance(model, key, spec)
        if not diff <= limit:
            problems.append(f"{key}: max |diff| {diff:.3g} > {limit:.3g}")
    assert not problems, f"{model} / {input_name}: " + "; ".join(problems)
