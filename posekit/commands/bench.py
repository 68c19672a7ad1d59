"""`posekit bench`: latency of zoo networks (and, later, whole pipelines) on this machine."""

from __future__ import annotations

import argparse
import datetime as dt

from posekit.errors import PosekitError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure latency (median, p90) of zoo networks on this machine")
    p.add_argument("--network", nargs="*", metavar="NAME",
                   help="networks to time (default: every zoo model); network only, input prepared")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="ONNX Runtime thread counts (1 2)")
    p.add_argument("--runs", type=int, default=50, help="timed runs after warm-up (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs (default 5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from posekit.bench import machine_description, sample_input, time_call
    from posekit.hub.registry import REGISTRY, get_spec
    from posekit.network import load_network

    if args.runs < 1 or args.warmup < 0:
        raise PosekitError("--runs must be >= 1 and --warmup >= 0")
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
            shape = "x".join(str(d) for d in x.shape[1:3] if spec.layout == "NHWC") or "x".join(
                str(d) for d in x.shape[2:4])
            t = time_call(lambda net=net, x=x: net.run(x), runs=args.runs, warmup=args.warmup)
            cells.append(f"{t.median_ms:.1f} / {t.p90_ms:.1f}")
        print(f"| {spec.name} | {shape} | " + " | ".join(cells) + " |", flush=True)
    return 0
