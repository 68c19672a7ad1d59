"""posekit.network.Network on a tiny hand-built ONNX graph: feeding, shape errors, runtime options."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from posekit.errors import PosekitError
from posekit.network import Network


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


def _spinning(net: Network) -> str:
    return net.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")


def test_run_casts_and_checks_shape(add_one):
    net = Network(add_one, threads=1)
    np.testing.assert_array_equal(net.run(np.array([[1, 2, 3]], np.int64))["y:0"], [[2, 3, 4]])
    with pytest.raises(PosekitError, match=r"expects shape \[1, 3\], got \[1, 4\]"):
        net.run(np.zeros((1, 4), np.float32))


def test_idle_threads_do_not_spin_unless_asked(add_one, monkeypatch):
    monkeypatch.delenv("POSEKIT_SPIN", raising=False)
    assert _spinning(Network(add_one)) == "0"
    assert _spinning(Network(add_one, spin=True)) == "1"
    monkeypatch.setenv("POSEKIT_SPIN", "1")
    assert _spinning(Network(add_one)) == "1"
    assert _spinning(Network(add_one, spin=False)) == "0"
    assert Network(add_one, threads=1).session.get_session_options().intra_op_num_threads == 1
