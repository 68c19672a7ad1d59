"""Starting from the zoo: the torch emitter reproduces the ONNX import (and TF.js) on the golden inputs, and an
imported network becomes a trainable backbone under a new head that trains, checkpoints and exports."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need the extra: pip install 'posekit[train]'")
pytest.importorskip("yaml", reason="training tests need the extra: pip install 'posekit[train]'")
pytest.importorskip("safetensors", reason="training tests need the extra: pip install 'posekit[train]'")

from posekit.convert.onnx_emit import emit_onnx  # noqa: E402
from posekit.convert.tfjs import load_tfjs  # noqa: E402
from posekit.convert.torch_emit import TorchGraph, same_padding  # noqa: E402
from posekit.errors import OfflineError, PosekitError  # noqa: E402
from posekit.hub.registry import get_spec  # noqa: E402

#: model -> tensors compared: PoseNet's own outputs, MoveNet's four raw heads (its graph outputs decode further)
CASES = {"posenet": None, "movenet-lightning": "heads"}


def zoo_graph(model: str):
    from posekit.hub.fetch import model_files

    spec = get_spec(model)
    try:
        return spec, load_tfjs(model_files(spec.name, progress=False)[spec.graph_file])
    except OfflineError as exc:
        pytest.skip(f"model files not available offline: {exc}")


def test_same_padding_matches_tf():
    assert same_padding(385, 3, 2, 1) == (1, 1)  # out 193: (192 * 2 + 3 - 385) = 2
    assert same_padding(64, 3, 2, 1) == (0, 1)  # the odd pixel goes after
    assert same_padding(10, 5, 1, 2) == (4, 4)


@pytest.mark.shared
@pytest.mark.network  # fetches the model files unless cached
@pytest.mark.parametrize("model", list(CASES))
def test_torch_emitter_matches_onnx_on_golden_inputs(golden_dir, model):
    spec, graph = zoo_graph(model)
    meta = json.loads((golden_dir / model / "meta.json").read_text())
    outputs = list(spec.heads.values()) if CASES[model] == "heads" else [o["node"] for o in meta["outputs"].values()]
    net = TorchGraph(graph, outputs, trace_shape=spec.input_shape)
    node = spec.input_node.rpartition(":")[0]
    import onnxruntime as ort

    session = ort.InferenceSession(emit_onnx(graph, outputs, {node: list(spec.input_shape)}).SerializeToString())
    for name, info in meta["inputs"].items():
        x = np.load(golden_dir / model / info["file"])
        with torch.no_grad():
            got = {k: v.numpy() for k, v in net(torch.from_numpy(x).float()).items()}
        onnx_out = dict(zip([o.name for o in session.get_outputs()], session.run(None, {spec.input_node: x})))
        for ref in outputs:
            scale = float(np.abs(onnx_out[ref]).max())
            diff = float(np.abs(got[ref] - onnx_out[ref]).max())
            assert diff <= 1e-5 * scale + 1e-5, f"{model}/{name} {ref}: |torch - onnx| {diff:.3g} (range {scale:.3g})"
        if CASES[model] is None:  # the graph's own outputs: TF.js golden values too (its README's tolerances)
            for out in meta["outputs"].values():
                golden = np.load(golden_dir / model / f"{name}.{out['file_suffix']}")
                assert np.abs(got[out["node"]] - golden).max() <= 1e-3


@pytest.mark.network
def test_zoo_backbone_trains_under_a_new_head_and_exports(tmp_path):
    zoo_graph("movenet-lightning")  # skips offline
    from posekit.data.synthetic import write_dataset
    from posekit.export.onnx import export_onnx
    from posekit.export.runtime import load_exported
    from posekit.train.checkpoint import load_checkpoint
    from posekit.train.config import config_from_dict
    from posekit.train.loop import train
    from posekit.train.model import build_model

    write_dataset(tmp_path / "d", 32, seed=0, image_size=96)
    split = {"annotations": str(tmp_path / "d" / "annotations.json"), "images": str(tmp_path / "d" / "images")}
    cfg = config_from_dict({
        "data": {"train": split, "val": split}, "input": {"size": [64, 64]},
        "model": {"backbone": "zoo:movenet-lightning"}, "head": {"type": "grmi", "channels": 16, "radius": 6},
        "augment": {"rotation": 0, "flip": 0}, "train": {"epochs": 1, "batch": 16, "lr": 1e-3, "device": "cpu",
                                                         "log_every": 1, "out": str(tmp_path / "run")}})
    pretrained, _ = build_model(cfg, 7)
    summary = train(cfg, progress=False)
    assert summary["step"] == 2
    ckpt = load_checkpoint(tmp_path / "run" / "last.safetensors")
    name = next(k for k in ckpt.model_state() if k.startswith("backbone.graph.weights."))
    assert not torch.equal(ckpt.model_state()[name], pretrained.state_dict()[name])  # the imported weights trained
    assert not any(".c_" in k for k in ckpt.model_state())  # graph constants are rebuilt, not stored

    model, _ = build_model(config_from_dict(ckpt.info["config"]), 7)
    model.load_state_dict(ckpt.model_state())
    model.eval()
    session, _ = load_exported(export_onnx(tmp_path / "run" / "last.safetensors", tmp_path / "zoo.onnx"))
    x = np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(x))]
    for got, want in zip(session.run(None, {"image": x}), expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    with pytest.raises(PosekitError, match="cannot serve as a backbone"):
        build_model(config_from_dict({"model": {"backbone": "zoo:blazepose-full"}}), 7)
