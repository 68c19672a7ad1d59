"""ONNX Runtime thread settings A/B on one photo, alternating in one process: 1 thread, 2 threads without
spinning, 2 spinning threads (the settings `posekit.network.default_threads` / `default_spin` choose between).

    python benchmarks/threads.py [--model blazepose-full] [--rounds 5] [--calls 20]

Run it on an idle machine and again while another process keeps one core busy (e.g. ``--busy 1``, which starts
that many spinning processes for the duration of the run) to see which default holds up when cores are shared.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time


def _spin(stop) -> None:
    while not stop.is_set():
        sum(range(10000))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="blazepose-full")
    ap.add_argument("--image", default="/usr/share/doc/opencv-doc/examples/data/messi5.jpg")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--busy", type=int, default=0, help="background processes spinning on a core during the run")
    args = ap.parse_args()

    import posekit

    image = posekit.read_image(args.image)
    settings = {"1 thread": (1, "0"), "2 threads, no spin": (2, "0"), "2 threads, spin": (2, "1")}
    estimators = {}
    for label, (threads, spin) in settings.items():
        os.environ["POSEKIT_SPIN"] = spin
        estimators[label] = posekit.load(args.model, threads=threads)
        estimators[label](image)  # warm-up
    stop = mp.Event()
    hogs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for h in hogs:
        h.start()
    samples: dict[str, list[float]] = {k: [] for k in settings}
    try:
        for _ in range(args.rounds):
            for label, est in estimators.items():
                for _ in range(args.calls):
                    start = time.perf_counter()
                    est(image)
                    samples[label].append((time.perf_counter() - start) * 1000)
    finally:
        stop.set()
        for h in hogs:
            h.join()
    load = os.getloadavg()[0]
    print(f"{args.model} on {os.path.basename(args.image)}, {args.busy} busy process(es), load average {load:.1f}, "
          f"{os.cpu_count()} CPUs: median ms per photo over {args.rounds} alternating rounds of {args.calls}")
    for label, values in samples.items():
        print(f"  {label:20s} {statistics.median(values):7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
