"""Latency measurement: medians and p90 over repeated runs after warm-up (no timing in unit tests)."""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from posekit.network import Network


@dataclass(frozen=True)
class Timing:
    """Latency statistics in milliseconds over ``runs`` timed calls."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    runs: int


def time_call(fn: Callable[[], object], runs: int = 50, warmup: int = 5) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times timed with perf_counter."""
    for _ in range(warmup):
        fn()
    samples = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        fn()
        samples[i] = (time.perf_counter() - start) * 1000.0
    return Timing(float(np.median(samples)), float(np.percentile(samples, 90)), float(samples.mean()), runs)


def time_stages(estimator, image_rgb: np.ndarray, runs: int = 20, warmup: int = 3) -> dict[str, float]:
    """Median milliseconds per stage of ``estimator(image)`` (its Result's ``speed``) plus ``total`` (wall time), and
    ``overhead``: the median over calls of (preprocess + decode) / network, each call's stages measured together
    (steadier on a busy machine than a ratio of separate medians)."""
    for _ in range(warmup):
        estimator(image_rgb)
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        start = time.perf_counter()
        t = estimator(image_rgb).speed
        samples.setdefault("total", []).append((time.perf_counter() - start) * 1000.0)
        for stage, ms in t.items():
            samples.setdefault(stage, []).append(ms)
        if t.get("network"):
            samples.setdefault("overhead", []).append((t.get("preprocess", 0.0) + t.get("decode", 0.0)) / t["network"])
    return {stage: float(np.median(v)) for stage, v in samples.items()}


def networks_of(estimator) -> list[Network]:
    """Every `posekit.network.Network` an estimator holds, its sub-estimators' included (a pipeline's detector)."""
    from posekit.estimators.base import Estimator
    from posekit.network import Network

    found: dict[int, Network] = {}  # by id: a network shared by two estimators counts once
    todo, seen = [estimator], set()
    while todo:
        obj = todo.pop()
        if id(obj) not in seen:
            seen.add(id(obj))
            found.update((id(v), v) for v in vars(obj).values() if isinstance(v, Network))
            todo.extend(v for v in vars(obj).values() if isinstance(v, Estimator))
    return list(found.values())


@contextlib.contextmanager
def replayed_networks(estimator) -> Iterator[None]:
    """Within the block each network of ``estimator`` (`networks_of`) runs once, then returns that first output
    again without running: the estimator's pre-processing and decoding run back to back, with their code and data
    still in the caches (a network run between them evicts both), on the same inputs as long as the image is."""
    nets = networks_of(estimator)
    for net in nets:
        first: list[dict] = []

        def replay(x, _run=net.run, _first=first):
            if not _first:
                _first.append(_run(x))
            return _first[0]

        net.run = replay  # an instance attribute shadows the method until the block ends
    try:
        yield
    finally:
        for net in nets:
            del net.run


def video_fps(estimator, path: str, frames: int, passes: int = 3) -> tuple[float, float]:
    """Median end-to-end fps over ``passes`` of: (a) a per-frame loop (cv2 read, ``estimator(frame)``, draw,
    write) and (b) `posekit.pipeline.track_video` (threaded reading, tracking, crops from the previous frame,
    smoothing, draw, write), alternating so both see the same machine load."""
    import itertools
    import tempfile

    import cv2

    from posekit.draw import draw
    from posekit.pipeline import VideoSink, track_video

    def per_frame(out: str) -> None:
        cap = cv2.VideoCapture(path)
        with VideoSink(out, 10.0) as sink:
            for _ in range(frames):
                ok, bgr = cap.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                sink.write(draw(rgb, estimator(rgb)))
        cap.release()

    def pipelined(out: str) -> None:
        with VideoSink(out, 10.0) as sink, contextlib.closing(track_video(path, estimator)) as stream:
            for f in itertools.islice(stream, frames):
                sink.write(draw(f.image, f.people))

    rates: dict[str, list[float]] = {"base": [], "piped": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(passes):
            for key, fn in (("base", per_frame), ("piped", pipelined)):
                start = time.perf_counter()
                fn(f"{tmp}/{key}.mp4")
                rates[key].append(frames / (time.perf_counter() - start))
    return float(np.median(rates["base"])), float(np.median(rates["piped"]))


def sample_input(shape: tuple[int | None, ...], dtype: np.dtype, default_hw: int = 256) -> np.ndarray:
    """A random input for a network input of ``shape`` (dynamic dims: batch 1, spatial ``default_hw``)."""
    rng = np.random.default_rng(0)
    dims = [1 if i == 0 else default_hw for i, d in enumerate(shape) if d is None]
    filled = [d if d is not None else dims.pop(0) for d in shape]
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 256, filled).astype(dtype)
    return rng.uniform(0, 1, filled).astype(dtype)


def machine_description() -> str:
    """One line: CPU model, usable cores, OS and Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
