"""`posekit bench`: latency of zoo networks (and, later, whole pipelines) on this machine."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from posekit.errors import PosekitError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure latency (median, p90) of zoo networks on this machine")
    p.add_argument("--network", nargs="*", metavar="NAME",
                   help="networks to time (default: every zoo model); network only, input prepared")
    p.add_argument("--model", nargs="+", metavar="NAME",
                   help="estimators to time on --image, split into pre-processing, network, decoding")
    p.add_argument("--image", help="photo for --model (default: opencv-doc's messi5.jpg when installed)")
    p.add_argument("--video", nargs="?", const=DEFAULT_VIDEO, metavar="FILE",
                   help="end-to-end video fps (read, estimate, draw, write): per-frame loop vs posekit's "
                        "pipelined tracker, same frames, same run (default file: opencv-doc's vtest.avi)")
    p.add_argument("--frames", type=int, default=100, help="frames per --video pass (default: %(default)s)")
    p.add_argument("--video-model", default=None, help="estimator for --video (default: posekit's video default)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="ONNX Runtime thread counts (1 2)")
    p.add_argument("--runs", type=int, default=50, help="timed runs after warm-up (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs (default 5)")
    p.set_defaults(func=run)


DEFAULT_IMAGE = "/usr/share/doc/opencv-doc/examples/data/messi5.jpg"
DEFAULT_VIDEO = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"


def run(args: argparse.Namespace) -> int:
    if args.runs < 1 or args.warmup < 0:
        raise PosekitError("--runs must be >= 1 and --warmup >= 0")
    if args.video:
        return run_video(args)
    if args.model:
        return run_models(args)
    return run_networks(args)


def run_video(args: argparse.Namespace) -> int:
    """Frames per second of a plain per-frame loop and of `track_video`, alternating passes, medians."""
    import posekit
    from posekit.bench import machine_description, video_fps

    if not Path(args.video).is_file():
        raise PosekitError(f"video {args.video} not found: pass a file (or apt-get install opencv-doc)")
    model = args.video_model or posekit.DEFAULT_VIDEO_MODEL
    passes = max(1, min(args.runs, 5))
    base, piped = video_fps(posekit.load(model), args.video, args.frames, passes)
    print(f"# posekit bench --video, {dt.date.today().isoformat()}, {machine_description()}")
    print(f"# {Path(args.video).name}, {args.frames} frames, model {model}, median of {passes} alternating passes\n")
    print("| model | per-frame loop fps | posekit track_video fps | speed-up |")
    print("|---|---|---|---|")
    print(f"| {model} | {base:.2f} | {piped:.2f} | {piped / base:.2f}x |")
    return 0


def run_models(args: argparse.Namespace) -> int:
    """Per-stage medians of whole estimators on one photo."""
    import posekit
    from posekit.bench import machine_description, time_stages

    image_path = args.image or DEFAULT_IMAGE
    if not args.image and not Path(image_path).is_file():
        raise PosekitError(f"--image not given and {image_path} is missing: pass a photo "
                           "(or apt-get install opencv-doc)")
    image = posekit.read_image(image_path)
    print(f"# posekit bench --model, {dt.date.today().isoformat()}, {machine_description()}")
    print(f"# {Path(image_path).name} {image.shape[1]}x{image.shape[0]}; median ms over {args.runs} runs, "
          f"{posekit.network.default_threads()} threads\n")
    print("| model | people | person detector | pre-processing | network | decoding | other | total "
          "| (pre+dec)/network, median per call |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.model:
        est = posekit.load(name)
        found = len(est(image))
        t = time_stages(est, image, runs=args.runs, warmup=args.warmup)
        det, pre, net, dec = (t.get(k, 0.0) for k in ("detector", "preprocess", "network", "decode"))
        other = max(t["total"] - det - pre - net - dec, 0.0)
        ratio = f"{t['overhead']:.1%}" if "overhead" in t else "-"
        print(f"| {name} | {found} | {det:.1f} | {pre:.1f} | {net:.1f} | {dec:.1f} | {other:.1f} | {t['total']:.1f} "
              f"| {ratio} |", flush=True)
    return 0


def run_networks(args: argparse.Namespace) -> int:
    """Network-only latency for 1 and 2 threads."""
    from posekit.bench import machine_description, sample_input, time_call
    from posekit.hub.registry import REGISTRY, get_spec
    from posekit.network import load_network

    names = args.network or list(REGISTRY)
    specs = [get_spec(n) for n in names]
    print(f"# posekit bench, {dt.date.today().isoformat()}, {machine_description()}")
    print(f"# median / p90 ms over {args.runs} runs after {args.warmup} warm-up runs; network only\n")
    header = "| model | input | " + " | ".join(f"{t} thread{'s' * (t > 1)} median / p90" for t in args.threads)
    print(header + " |")
    print("|" + "---|" * (2 + len(args.threads)))
    for spec in specs:
        cells = []
        shape = None
        for threads in args.threads:
            net = load_network(spec.name, threads=threads)
            x = sample_input(net.inputs[0].shape, net.inputs[0].dtype)
            h, w = x.shape[1:3] if spec.layout == "NHWC" else x.shape[2:4]
            shape = f"{h}x{w}"
            t = time_call(lambda net=net, x=x: net.run(x), runs=args.runs, warmup=args.warmup)
            cells.append(f"{t.median_ms:.1f} / {t.p90_ms:.1f}")
        print(f"| {spec.name} | {shape} | " + " | ".join(cells) + " |", flush=True)
    return 0
