"""Shared fixtures: locating ../shared (golden vectors, real COCO images) and skipping cleanly without it; a tiny
ONNX graph."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

SHARED = Path(os.environ.get("POSEKIT_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
SKIP_SHARED = "../shared not found: golden/real-data checks need the shared folder beside the repo (or POSEKIT_SHARED)"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(SKIP_SHARED)
    return SHARED


@pytest.fixture(scope="session")
def golden_dir(shared_dir: Path) -> Path:
    path = shared_dir / "golden"
    if not path.is_dir():
        pytest.skip(f"{path} not found: golden parity checks need it")
    return path


@pytest.fixture(scope="session")
def coco_mini(shared_dir: Path) -> Path:
    """Folder with train2017/*.jpg and annotations/person_keypoints_train2017.json."""
    path = shared_dir / "data" / "coco-mini-train"
    if not (path / "annotations" / "person_keypoints_train2017.json").is_file():
        pytest.skip(f"{path} not found: real-image checks need it")
    return path


@pytest.fixture()
def add_one(tmp_path):
    """ONNX graph y = x + 1 for x float32 [1, 3]."""
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y:0"])], "add_one",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y:0", TensorProto.FLOAT, [1, 3])], [one])
    path = tmp_path / "add_one.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path
