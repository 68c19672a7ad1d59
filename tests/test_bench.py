"""posekit.bench statistics on fake estimators whose stage timings are known (no real timing asserted), and the
network replay of benchmarks/cold_cost.py."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from posekit.bench import networks_of, replayed_networks, time_stages
from posekit.estimators.base import Estimator
from posekit.network import Network
from posekit.results import Result


class Staged:
    """Reports made-up stage timings, cycling through ``calls``."""

    def __init__(self, calls):
        self.calls = itertools.cycle(calls)

    def __call__(self, image):
        return Result(speed=dict(next(self.calls)))


def test_overhead_is_the_median_of_per_call_ratios():
    calls = [{"preprocess": 1.0, "network": 10.0, "decode": 1.0},  # 20 %
             {"preprocess": 2.0, "network": 40.0, "decode": 2.0},  # 10 %: a slow call, same share
             {"preprocess": 0.5, "network": 10.0, "decode": 0.5}]  # 10 %
    t = time_stages(Staged(calls), np.zeros((4, 4, 3), np.uint8), runs=3, warmup=0)
    assert t["overhead"] == pytest.approx(0.10)
    # a ratio of the separate medians would say (1 + 1) / 10 = 20 %
    assert (t["preprocess"] + t["decode"]) / t["network"] == pytest.approx(0.20)
    assert t["network"] == 10.0 and "total" in t


def test_no_overhead_without_a_network_stage():
    t = time_stages(Staged([{"detector": 3.0}]), np.zeros((4, 4, 3), np.uint8), runs=2, warmup=0)
    assert "overhead" not in t and t["detector"] == 3.0


class Twice(Estimator):
    """Runs ``network`` on the image's first row, and holds a sub-estimator sharing that network."""

    def __init__(self, network, inner=None):
        super().__init__()
        self.network, self.inner = network, inner

    def predict(self, image_rgb, boxes=None):
        return self.network.run(image_rgb[:1, :3, 0].astype(np.float32))["y:0"]


def test_replayed_networks_return_the_first_output_until_the_block_ends(add_one):
    net = Network(add_one, threads=1)
    est = Twice(net, inner=Twice(net))
    assert networks_of(est) == [net]  # the shared network counts once, found through the sub-estimator
    a, b = np.zeros((1, 3, 3), np.uint8), np.full((1, 3, 3), 7, np.uint8)
    with replayed_networks(est):
        np.testing.assert_array_equal(est(a), [[1, 1, 1]])
        np.testing.assert_array_equal(est(b), [[1, 1, 1]])  # replayed, not run on b
    assert "run" not in vars(net)
    np.testing.assert_array_equal(est(b), [[8, 8, 8]])
