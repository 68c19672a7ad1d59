"""Load test of `posekit serve` on 127.0.0.1: N concurrent clients post real photos back to back for a fixed time.

    python benchmarks/serve_load.py --clients 8 --seconds 30 --model centernet+movenet-thunder --workers 1 2

Starts one server per --workers value, warms it up, runs the clients, and prints one markdown row per run:
requests, answers by status (503 is the documented back-pressure answer; "connection" counts failed connections),
throughput of 200s, p50/p99 latency of 200s, the server's resident memory after warm-up, at half time and at the
end, and its peak.  Bounded: it stops by itself.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from posekit.serve.launch import load, start_server

DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="centernet+movenet-thunder")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--queue", type=int, default=16)
    p.add_argument("--images", nargs="*", type=Path, default=[DATA / "messi5.jpg", DATA / "basketball1.png"])
    args = p.parse_args()
    missing = [str(f) for f in args.images if not f.is_file()]
    if missing:
        print(f"serve_load: not found: {', '.join(missing)} (apt install opencv-doc)", file=sys.stderr)
        return 2
    images = [f.read_bytes() for f in args.images]
    print(f"model {args.model}, {args.clients} clients x {args.seconds:g} s, images: "
          + ", ".join(f.name for f in args.images))
    print("| workers | requests | 200 | other answers | throughput (req/s) | p50 ms | p99 ms | "
          "RSS MiB warm / half / end | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for workers in args.workers:
        log = Path(tempfile.mkdtemp(prefix="posekit-serve-")) / "server.log"
        server = start_server(["--model", args.model, "--workers", str(workers), "--queue", str(args.queue),
                               "--log-level", "warning"], log=log)
        try:
            load(server.url, images, clients=2, seconds=5)  # warm-up: sessions, allocator, caches
            warm = server.rss_mb()
            first = load(server.url, images, clients=args.clients, seconds=args.seconds / 2)
            half = server.rss_mb()
            second = load(server.url, images, clients=args.clients, seconds=args.seconds / 2)
            end, peak = server.rss_mb(), server.peak_mb()
        finally:
            server.stop()
        statuses: dict[str, int] = {}
        for r in (first, second):
            for k, v in r.statuses.items():
                statuses[k] = statuses.get(k, 0) + v
        first.statuses = statuses
        first.latencies_ms += second.latencies_ms
        first.seconds += second.seconds
        s = first.summary()
        other = ", ".join(f"{k}: {v}" for k, v in statuses.items() if k != "200") or "none"
        print(f"| {workers} | {s['requests']} | {s['ok']} | {other} | {s['throughput_rps']} | {s['p50_ms']} | "
              f"{s['p99_ms']} | {warm:.0f} / {half:.0f} / {end:.0f} | {peak:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
