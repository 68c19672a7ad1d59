"""The zoo registry: complete, self-consistent, and in agreement with the golden vectors and the graphs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from posekit.errors import PosekitError
from posekit.hub import cache
from posekit.hub.registry import EFFICIENTPOSE_CHANNELS, REGISTRY, get_spec, list_specs
from posekit.skeleton import MPII16_NAMES, get_skeleton

REQUIRED = (
    "movenet-lightning", "movenet-thunder", "movenet-multipose", "posenet", "blazepose-detector",
    "blazepose-lite", "blazepose-full", "blazepose-heavy", "efficientpose", "centernet", "nanodet",
)
TASKS = {"pose-single", "pose-multi", "pose-landmarks", "pose-detector", "person-detector"}
TENSOR = re.compile(r"^[\w/.-]+:\d+$")


def test_required_models_present():
    assert set(REQUIRED) <= set(REGISTRY)
    assert [s.name for s in list_specs()] == list(REGISTRY)


@pytest.mark.parametrize("spec", list_specs(), ids=lambda s: s.name)
def test_spec_is_self_consistent(spec):
    assert spec.name == REGISTRY[spec.name].name and spec.task in TASKS
    assert sorted(f.rsplit(".", 1)[1] for f in spec.files) == ["bin", "json"]
    assert spec.files.keys() == spec.sizes.keys() and all(n > 0 for n in spec.sizes.values())
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in spec.files.values())
    assert spec.graph_file.endswith(".json") and spec.license and spec.source
    assert spec.input_dtype in {"int32", "float32"} and spec.layout in {"NHWC", "NCHW"}
    assert spec.channels in {"RGB", "BGR"}
    for v in (spec.input_scale, spec.input_offset):
        assert isinstance(v, float) or (isinstance(v, tuple) and len(v) == 3)
    assert len(spec.input_shape) == 4
    assert spec.input_shape[spec.layout.index("C")] == 3
    for name in (spec.input_node, *spec.outputs, *spec.heads.values()):
        assert TENSOR.match(name), name
    assert spec.heads.keys() == spec.head_meanings.keys()
    if spec.keypoints is not None:
        k = get_skeleton(spec.keypoints).num_keypoints
        if spec.keypoint_channels is not None:
            assert sorted(spec.keypoint_channels) == list(range(k))
    else:
        assert spec.task in {"pose-detector", "person-detector"} and spec.keypoint_channels is None


@pytest.mark.parametrize(
    ("name", "lo", "hi"),
    [("movenet-thunder", 0, 255), ("posenet", -1, 1), ("blazepose-full", 0, 1), ("blazepose-detector", -1, 1),
     ("efficientpose", -1, 1), ("centernet", 0, 255)],
)
def test_normalisation_maps_pixels_to_model_range(name, lo, hi):
    spec = get_spec(name)
    assert spec.channels == "RGB"
    fed = np.array([0.0, 255.0]) * spec.input_scale + spec.input_offset
    np.testing.assert_allclose(fed, [lo, hi], atol=1e-9)


def test_nanodet_takes_upstream_bgr_mean_std():
    spec = get_spec("nanodet")
    assert spec.channels == "BGR" and spec.layout == "NCHW"
    bgr = np.array([[103.53, 116.28, 123.675], [103.53 + 57.375, 116.28 + 57.12, 123.675 + 58.395]])
    fed = bgr * np.asarray(spec.input_scale) + np.asarray(spec.input_offset)
    np.testing.assert_allclose(fed, [[0, 0, 0], [1, 1, 1]], atol=1e-9)


def test_efficientpose_channels_map_to_mpii16():
    spec = get_spec("efficientpose")
    heat = np.arange(16)  # channel c holds EfficientPose joint c
    in_mpii = heat[list(spec.keypoint_channels)]
    assert [EFFICIENTPOSE_CHANNELS[c] for c in in_mpii] == list(MPII16_NAMES)
    assert in_mpii[MPII16_NAMES.index("head_top")] == 0 and in_mpii[MPII16_NAMES.index("left_ankle")] == 15


def test_input_size_follows_layout():
    assert get_spec("nanodet").input_size == (416, 416)
    assert get_spec("movenet-lightning").input_size == (192, 192)
    assert get_spec("movenet-multipose").input_size == (None, None)


def test_unknown_name_suggests_and_lists():
    with pytest.raises(PosekitError) as err:
        get_spec("movenet-thunderr")
    msg = str(err.value)
    assert "did you mean 'movenet-thunder'" in msg and all(n in msg for n in REQUIRED)
    with pytest.raises(PosekitError, match="unknown model 'xyz'; valid names"):
        get_spec("xyz")


def test_registry_matches_golden_meta(golden_dir):
    metas = sorted(golden_dir.glob("*/meta.json"))
    assert metas
    for path in metas:
        meta = json.loads(path.read_text())
        spec = get_spec(meta["model"])
        sha = {f.rsplit("/", 1)[-1]: h for f, h in spec.files.items()}
        assert meta["source"]["sha256"] == sha
        assert meta["input"]["node"] == spec.input_node and meta["input"]["dtype"] == spec.input_dtype
        for out in meta["outputs"].values():
            assert out["node"] in spec.outputs
            assert str(out["shape"]).replace(" ", "") in spec.outputs[out["node"]].replace(" ", "")


@pytest.mark.parametrize("spec", list_specs(), ids=lambda s: s.name)
def test_tensor_names_exist_in_cached_graph(spec):
    paths = cache.cached_files(spec)
    if paths is None:
        pytest.skip(f"{spec.name} not cached: `posekit models pull {spec.name}` enables this check")
    graph = json.loads(paths[spec.graph_file].read_text())
    nodes = {n["name"]: n for n in graph["modelTopology"]["node"]}
    for tensor in (spec.input_node, *spec.outputs, *spec.heads.values()):
        assert tensor.rsplit(":", 1)[0] in nodes, tensor
    assert nodes[spec.input_node.rsplit(":", 1)[0]]["op"] == "Placeholder"
    signature = {v["name"] if ":" in v["name"] else v["name"] + ":0" for v in graph["signature"]["outputs"].values()}
    assert signature == set(spec.outputs)
    placeholder = nodes[spec.input_node.rsplit(":", 1)[0]]["attr"]
    shape = [int(d["size"]) for d in placeholder["shape"]["shape"]["dim"]]
    assert shape == [-1 if d is None else d for d in spec.input_shape]
    assert placeholder["dtype"]["type"] == {"float32": "DT_FLOAT", "int32": "DT_INT32"}[spec.input_dtype]
    weights = {p for group in graph["weightsManifest"] for p in group["paths"]}
    assert weights == {f.rsplit("/", 1)[-1] for f in spec.files if f.endswith(".bin")}
