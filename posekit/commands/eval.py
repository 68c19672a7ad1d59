"""`posekit eval`: COCO keypoint AP (pycocotools) and PCK of a model on a COCO-format set, or of a results file."""

from __future__ import annotations

import argparse
import json
from typing import Any

from posekit.errors import PosekitError

PROTOCOL_HELP = {
    "gt-boxes": "the pose model on ground-truth person boxes; isolates the pose model",
    "end-to-end": "whole images; people found by the model itself or its person detector",
    "results file": "an existing COCO results file, no model run",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score a model on COCO keypoint annotations (AP, AR, PCK)",
        description="Run a model over a COCO person-keypoints set and print COCOeval's keypoint AP/AR, PCK@0.2 "
        "(torso-normalised) and per-joint PCK. With --results, score an existing COCO results file instead.",
    )
    p.add_argument("--model", help="zoo model name (see `posekit models`)")
    p.add_argument("--results", metavar="JSON", help="score this COCO keypoint results file instead of a model")
    p.add_argument("--ann", required=True, metavar="JSON", help="COCO person_keypoints_*.json")
    p.add_argument("--images", metavar="DIR", help="folder with the annotation file's images (needed with --model)")
    p.add_argument("--boxes", choices=("gt", "detector"), default="gt",
                   help="gt: ground-truth person boxes (gt-boxes protocol, default); detector: whole images "
                   "(end-to-end protocol)")
    p.add_argument("--flip", action="store_true", help="flip test: also run on the mirrored image and average")
    p.add_argument("--margin", type=float, help="crop side as a multiple of the box size (model default if unset)")
    p.add_argument("--input-size", type=int, metavar="PX", help="network input size (model default if unset)")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other model option, e.g. -o threshold=0 (repeatable; see the model's docs)")
    p.add_argument("--min-score", type=float, help="end-to-end: drop people scoring below this (off if unset)")
    p.add_argument("--oks-nms", type=float, metavar="OKS",
                   help="end-to-end: drop a person whose OKS with a better one exceeds this (off if unset)")
    p.add_argument("--out", metavar="JSON", help="write the detections as a COCO results file")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from posekit.eval.cocoeval import coco, score_results

    if (args.model is None) == (args.results is None):
        raise PosekitError("give exactly one of --model NAME (run and score a model) or --results JSON (score a file)")
    if args.results is not None:
        report = score_results(args.ann, args.results)
    else:
        if args.images is None:
            raise PosekitError("--model needs --images DIR, the folder holding the annotation file's images")
        options = {**dict(_option(o) for o in args.option),
                   **{k: v for k, v in (("margin", args.margin), ("size", args.input_size)) if v is not None}}
        report = coco(args.model, args.ann, args.images, boxes=args.boxes, flip=args.flip, out=args.out,
                      min_score=args.min_score, oks_nms=args.oks_nms, progress=True, **options)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _option(text: str) -> tuple[str, Any]:
    """'KEY=VALUE' -> (key, value), the value read as JSON (numbers, true/false, null) or else kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise PosekitError(f"--option wants KEY=VALUE (e.g. threshold=0.1), got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _num(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _table(rows: list[list[str]], left: tuple[int, ...] = ()) -> list[str]:
    """Aligned columns: numbers right-aligned, the columns in ``left`` left-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
            .rstrip() for r in rows]


def format_report(report: dict[str, Any]) -> str:
    """Human-readable report: protocol, model and options, COCO keypoint table, PCK and per-joint PCK."""
    from posekit.eval.cocoeval import STAT_NAMES

    protocol = report["protocol"]
    lines = [f"protocol  {protocol} ({PROTOCOL_HELP[protocol]})"]
    if report["model"] is not None:
        opts = {"flip": "on" if report["flip"] else "off", **report["options"]}
        lines.append(f"model     {report['model']}")
        lines.append("options   " + ", ".join(f"{k} {'-' if v is None else v}" for k, v in opts.items()))
        timing = f"time      {report['seconds']:.1f} s, {_num(report['ms_per_image'], 1)} ms/image"
        if report["ms_per_person"] is not None:
            timing += f", {report['ms_per_person']:.1f} ms/person"
        lines.append(timing + " (model calls)")
    else:
        lines.append(f"results   {report['results']}")
    ran = f" ({report['images_run']} run)" if "images_run" in report else ""
    lines.append(f"data      {report['images']} images{ran}, {report['people']} people predicted")
    lines += ["", "COCO keypoints (pycocotools COCOeval, iouType='keypoints')"]
    lines += _table([list(STAT_NAMES), [_num(report[k]) for k in STAT_NAMES]])
    pck_key = next(k for k in report if k.startswith("PCK@"))
    lines += ["", f"{pck_key} (torso-normalised)  {_num(report[pck_key])} over {report['pck_people']} people"]
    joints = list(report["per_joint"].items())
    half = (len(joints) + 1) // 2
    pairs = [[*joints[i], *(joints[i + half] if i + half < len(joints) else ("", None))] for i in range(half)]
    lines += _table([[a, _num(x) + "    ", b, "" if not b else _num(y)] for a, x, b, y in pairs], left=(0, 2))
    if report["results"] is not None and report["model"] is not None:
        lines += ["", f"results written to {report['results']}"]
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)
