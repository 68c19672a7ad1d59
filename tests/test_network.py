"""posekit.network.Network on a tiny hand-built ONNX graph: feeding, shape errors, runtime options."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from posekit.convert.onnx_input import with_pixel_input
from posekit.errors import PosekitError
from posekit.network import Network


def _config(net: Network, key: str) -> str:
    return net.session.get_session_options().get_session_config_entry(key)


def test_run_casts_and_checks_shape(add_one):
    net = Network(add_one, threads=1)
    np.testing.assert_array_equal(net.run(np.array([[1, 2, 3]], np.int64))["y:0"], [[2, 3, 4]])
    with pytest.raises(PosekitError, match=r"expects shape \[1, 3\], got \[1, 4\]"):
        net.run(np.zeros((1, 4), np.float32))


def test_threads_spin_during_a_run_only_unless_told_not_to(add_one, monkeypatch):
    import posekit.network as network

    monkeypatch.delenv("POSEKIT_SPIN", raising=False)
    monkeypatch.setattr(network.os, "getloadavg", lambda: (0.1, 0.1, 0.1))  # idle: spin
    assert _config(Network(add_one), "session.intra_op.allow_spinning") == "1"
    assert _config(Network(add_one), "session.force_spinning_stop") == "1"  # never between runs
    monkeypatch.setattr(network.os, "getloadavg", lambda: (8.0, 8.0, 8.0))  # cores shared: no spinning
    assert _config(Network(add_one), "session.intra_op.allow_spinning") == "0"
    monkeypatch.setenv("POSEKIT_SPIN", "1")
    assert _config(Network(add_one), "session.intra_op.allow_spinning") == "1"
    assert _config(Network(add_one, spin=False), "session.intra_op.allow_spinning") == "0"
    monkeypatch.setenv("POSEKIT_SPIN", "0")
    assert _config(Network(add_one), "session.intra_op.allow_spinning") == "0"
    assert _config(Network(add_one, spin=True), "session.intra_op.allow_spinning") == "1"
    assert Network(add_one, threads=1).session.get_session_options().intra_op_num_threads == 1


def _identity(shape: list[int], dtype: int = TensorProto.FLOAT) -> onnx.ModelProto:
    """ONNX graph y = x (x of ``shape`` and ``dtype``), as the importer would emit a network's first layer."""
    graph = helper.make_graph([helper.make_node("Identity", ["input:0"], ["y:0"])], "identity",
                              [helper.make_tensor_value_info("input:0", dtype, shape)],
                              [helper.make_tensor_value_info("y:0", dtype, shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _pixels(tmp_path, model: onnx.ModelProto) -> Network:
    path = tmp_path / "pixels.onnx"
    onnx.save(model, path)
    return Network(path, threads=1)


def test_pixel_input_reorders_normalises_and_transposes_in_the_graph(tmp_path):
    """NanoDet's case: RGB uint8 NHWC in, BGR (x - mean) / std NCHW reaches the first layer."""
    mean, std = np.float32([103.53, 116.28, 123.675]), np.float32([57.375, 57.12, 58.395])
    model = with_pixel_input(_identity([1, 3, 4, 5]), 1 / std, -mean / std, bgr=True, nchw=True)
    net = _pixels(tmp_path, model)
    assert net.inputs[0].dtype == np.uint8 and net.inputs[0].shape == (1, 4, 5, 3)
    rgb = np.random.default_rng(0).integers(0, 256, (1, 4, 5, 3)).astype(np.uint8)
    expected = ((rgb[..., ::-1] - mean) / std).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(net.run(rgb)["y:0"], expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(PosekitError, match="takes uint8 pixels 0..255, got float32"):
        net.run(rgb.astype(np.float32))


def test_pixel_input_scalar_scale_and_int32_cast(tmp_path):
    net = _pixels(tmp_path, with_pixel_input(_identity([1, 2, 2, 3]), 1 / 127.5, -1.0))
    pixels = np.array([0, 255, 128], np.uint8).reshape(1, 1, 1, 3).repeat(2, 1).repeat(2, 2)
    np.testing.assert_allclose(net.run(pixels)["y:0"][0, 0, 0], [-1.0, 1.0, 128 / 127.5 - 1], atol=1e-6)
    as_int = _pixels(tmp_path, with_pixel_input(_identity([1, 2, 2, 3], TensorProto.INT32), 1.0, 0.0,
                                                dtype="int32"))
    out = as_int.run(pixels)["y:0"]
    assert out.dtype == np.int32 and out[0, 0, 0].tolist() == [0, 255, 128]
    with pytest.raises(ValueError, match="scale 1, offset 0"):
        with_pixel_input(_identity([1, 2, 2, 3], TensorProto.INT32), 0.5, 0.0, dtype="int32")


@pytest.mark.network
def test_a_damaged_onnx_import_is_rebuilt_with_one_line_of_notice(tmp_path, monkeypatch, capsys):
    from posekit.errors import OfflineError
    from posekit.hub import cache
    from posekit.hub.fetch import model_files
    from posekit.hub.registry import get_spec
    from posekit.network import load_network, onnx_for

    try:
        model_files("movenet-lightning", progress=False)  # the shared cache's weights (downloaded once)
    except OfflineError as exc:
        pytest.skip(f"zoo files unavailable offline: {exc}")
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / cache.models_dir().name).symlink_to(cache.models_dir())  # same weights, fresh ONNX dir
    monkeypatch.setenv("POSEKIT_HOME", str(home))
    spec = get_spec("movenet-lightning")
    path = onnx_for(spec)
    good = path.read_bytes()
    for damage in (good[: len(good) // 3], good[:100] + bytes([good[100] ^ 0xFF]) + good[101:]):  # cut, flipped
        path.write_bytes(damage)
        capsys.readouterr()
        net = load_network("movenet-lightning")
        assert "rebuilding" in capsys.readouterr().err
        assert path.read_bytes() == good and net.run(np.zeros((1, 192, 192, 3), np.int32))
    load_network("movenet-lightning")
    assert "rebuilding" not in capsys.readouterr().err  # intact: no notice, no rebuild


def test_a_corrupt_onnx_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "mine.onnx"
    bad.write_bytes(b"\x08\x07not a model")
    with pytest.raises(PosekitError, match="not a valid ONNX model"):
        Network(bad)
