"""How much of an estimator's pre-processing + decoding time is its own work, and how much is the cold caches a
network run leaves behind.

    python benchmarks/cold_cost.py [--model movenet-lightning blazepose-lite ...] [--runs 50] [--image PATH]

Per model, in one process, alternating: the stage medians of ``est(image)`` as `posekit bench` times them, and
the same calls with every network replaced by a replay of its first output (`posekit.bench.replayed_networks`):
the same pre-processing and decoding on the same arrays, back to back, so their code and data stay in the caches.
Then the first call of one small numpy operation after nothing, a busy Python loop of 1, 5 or 20 ms that touches
almost no memory, a sleep, or a network run: on a shared machine the caches go cold with time, whatever ran.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable

import numpy as np

import posekit
from posekit.bench import machine_description, replayed_networks, time_stages
from posekit.commands.bench import DEFAULT_IMAGE
from posekit.estimators.base import Estimator

#: Timing rounds each way (in the pipeline, replayed), alternating.
ROUNDS = 3
MODELS = ("movenet-lightning", "movenet-thunder", "blazepose-lite", "blazepose-full", "blazepose-heavy")


def stage_rows(name: str, est: Estimator, image: np.ndarray, runs: int, rounds: int = ROUNDS) -> str:
    """One markdown row: network ms, pre + dec ms in the pipeline and replayed, their ratio to the network."""
    piped, warm = [], []
    for _ in range(rounds):  # alternate, so both see the same machine load
        piped.append(time_stages(est, image, runs=runs))
        with replayed_networks(est):
            warm.append(time_stages(est, image, runs=runs))
    network = float(np.median([t["network"] for t in piped]))
    around = [float(np.median([t.get("preprocess", 0.0) + t.get("decode", 0.0) for t in ts])) for ts in (piped, warm)]
    return (f"| {name} | {network:.2f} | {around[0]:.3f} | {around[1]:.3f} | {around[0] / around[1]:.1f}x "
            f"| {around[0] / network:.1%} | {around[1] / network:.1%} |")


def first_call_us(before: Callable[[], object], runs: int = 200) -> tuple[float, float]:
    """Median microseconds of the first and of the second ``np.add`` on 1000 floats right after ``before()``."""
    a = np.ones(1000, np.float32)
    first, second = np.empty(runs), np.empty(runs)
    for i in range(runs):
        before()
        for out in (first, second):
            start = time.perf_counter()
            np.add(a, 1.0)
            out[i] = (time.perf_counter() - start) * 1e6
    return float(np.median(first)), float(np.median(second))


def busy(ms: float) -> None:
    """Keep the interpreter busy for ``ms`` milliseconds in a loop that touches almost no memory."""
    end = time.perf_counter() + ms / 1000.0
    while time.perf_counter() < end:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="+", default=list(MODELS))
    parser.add_argument("--runs", type=int, default=50, help=f"calls per timing round ({ROUNDS} rounds each way)")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="photo to run on (default: opencv-doc's messi5.jpg)")
    args = parser.parse_args()
    try:
        image = posekit.read_image(args.image)
        estimators = [posekit.load(name) for name in args.model]
    except posekit.PosekitError as exc:
        print(f"cold_cost.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"# {machine_description()}; {args.image} {image.shape[1]}x{image.shape[0]}; medians over {ROUNDS} "
          f"alternating rounds of {args.runs} calls\n")
    print("| model | network ms | pre + dec ms, in the pipeline | pre + dec ms, network replayed | cold factor "
          "| (pre + dec) / network | same, replayed |")
    print("|---|---|---|---|---|---|---|")
    for name, est in zip(args.model, estimators):
        print(stage_rows(name, est, image, args.runs), flush=True)

    net = posekit.load("movenet-lightning").network
    x = np.zeros((1, 192, 192, 3), np.uint8)
    print("\n| right after | first np.add, us | second, us |\n|---|---|---|")
    for label, before in (("nothing", lambda: None),
                          *((f"a {ms} ms busy Python loop", functools.partial(busy, ms)) for ms in (1, 5, 20)),
                          ("a 5 ms sleep", lambda: time.sleep(0.005)),
                          ("a movenet-lightning network run", lambda: net.run(x))):
        print("| {} | {:.1f} | {:.1f} |".format(label, *first_call_us(before)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
