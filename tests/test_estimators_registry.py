"""The estimator registry: names, one-line errors, and one download for every network an estimator needs."""

from __future__ import annotations

import pytest

import posekit
from posekit.errors import PosekitError
from posekit.estimators import registry


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("name", "networks"), [
    ("centernet+movenet-thunder", ["centernet", "movenet-thunder"]),
    ("blazepose-lite", ["blazepose-detector", "blazepose-lite"]),
    ("nanodet+blazepose", ["nanodet", "blazepose-detector", "blazepose-full"]),
    ("posenet", ["posenet"]),
])
def test_all_networks_are_fetched_in_one_call(name, networks, monkeypatch):
    calls = []

    def fake_ensure(models, progress=True, full=False):
        calls.append(list(models))
        raise _Stop

    monkeypatch.setattr("posekit.hub.fetch.ensure_files", fake_ensure)
    with pytest.raises(_Stop):
        posekit.load(name)
    assert calls == [networks]


def test_names_and_options_are_checked_with_one_line_errors():
    assert registry.DEFAULT_MODEL == "centernet+movenet-thunder" and "movenet-thunder" in posekit.models()
    with pytest.raises(PosekitError, match="did you mean 'posenet'"):
        registry.check_name("posnet")
    with pytest.raises(PosekitError, match="not a person detector"):
        registry.check_name("posenet+movenet-thunder")
    with pytest.raises(PosekitError, match="not found"):
        registry.check_name("nowhere/model.onnx")
    with pytest.raises(PosekitError, match="detector_options"):
        posekit.load("movenet-thunder", detector_options={"score_threshold": 0.1})
