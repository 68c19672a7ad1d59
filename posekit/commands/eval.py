"""`posekit eval`: COCO keypoint AP (pycocotools) and PCK of a model on a COCO-format set, PCKh on an MPII-format
set (MPII-16 models), or the same scores of a results file."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from posekit.errors import PosekitError

PROTOCOL_HELP = {
    "gt-boxes": "the pose model on ground-truth person boxes; isolates the pose model",
    "end-to-end": "whole images; people found by the model itself or its person detector",
    "results file": "an existing results file, no model run",
}
MPII_PROTOCOL = ("gt-boxes (MPII single-person protocol: square person box of side 200 x scale around the record's "
                 "center moved 15 x scale down, as HRNet/MMPose crop it)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score a model on COCO keypoint annotations (AP, AR, PCK) or MPII-format ones (PCKh)",
        description="Run a model over a COCO person-keypoints set and print COCOeval's keypoint AP/AR, PCK@0.2 "
        "(torso-normalised) and per-joint PCK; or run an MPII-16 model (efficientpose) over an MPII-format set "
        "(HRNet/MMPose JSON) and print the MPII PCKh table. With --results, score an existing results file instead.",
    )
    p.add_argument("--model", help="zoo model name (see `posekit models`)")
    p.add_argument("--results", metavar="JSON", help="score this COCO keypoint results file instead of a model")
    p.add_argument("--ann", required=True, metavar="JSON",
                   help="COCO person_keypoints_*.json, or MPII-format JSON (HRNet/MMPose mpii_val.json)")
    p.add_argument("--format", choices=("auto", "coco", "mpii"), default="auto",
                   help="annotation format (auto: a JSON list is MPII-format, an object COCO)")
    p.add_argument("--headboxes", metavar="MAT",
                   help="MPII: head boxes from MPII's ground-truth .mat (mpii_gt_val.mat) when the records have none")
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
    p.add_argument("--out", metavar="JSON",
                   help="write the detections as a COCO results file (MPII: one prediction per record)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from posekit.eval.cocoeval import coco, score_results
    from posekit.eval.mpiieval import detect_format, mpii, score_predictions

    if (args.model is None) == (args.results is None):
        raise PosekitError("give exactly one of --model NAME (run and score a model) or --results JSON (score a file)")
    if args.model is not None and args.images is None:
        raise PosekitError("--model needs --images DIR, the folder holding the annotation file's images")
    options = {**dict(_option(o) for o in args.option),
               **{k: v for k, v in (("margin", args.margin), ("size", args.input_size)) if v is not None}}
    if (args.format if args.format != "auto" else detect_format(args.ann)) == "mpii":
        if args.boxes != "gt" or args.min_score is not None or args.oks_nms is not None:
            raise PosekitError("MPII-format evaluation uses the gt-boxes protocol only (person boxes from each "
                               "record's center and scale); drop --boxes detector, --min-score and --oks-nms")
        if args.results is not None:
            report = score_predictions(args.ann, args.results, args.headboxes)
        else:
            report = mpii(args.model, args.ann, args.images, flip=args.flip, out=args.out, headboxes=args.headboxes,
                          progress=True, **options)
        print(json.dumps(report, indent=2) if args.json else format_mpii_report(report))
        return 0
    if args.headboxes is not None:
        raise PosekitError("--headboxes applies to MPII-format annotations only (PCKh); drop it for COCO annotations")
    if args.results is not None:
        report = score_results(args.ann, args.results)
    else:
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


def _run_lines(report: dict[str, Any]) -> list[str]:
    """Model, options and timing lines, or the results file scored."""
    lines = []
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
    return lines


def _joint_columns(per_joint: dict[str, float | None], fmt: Callable[[float | None], str]) -> list[str]:
    """Per-joint values in two name/value column pairs."""
    joints = list(per_joint.items())
    half = (len(joints) + 1) // 2
    pairs = [[*joints[i], *(joints[i + half] if i + half < len(joints) else ("", None))] for i in range(half)]
    return _table([[a, fmt(x) + "    ", b, "" if not b else fmt(y)] for a, x, b, y in pairs], left=(0, 2))


def format_report(report: dict[str, Any]) -> str:
    """Human-readable report: protocol, model and options, COCO keypoint table, PCK and per-joint PCK."""
    from posekit.eval.cocoeval import STAT_NAMES

    protocol = report["protocol"]
    lines = [f"protocol  {protocol} ({PROTOCOL_HELP[protocol]})", *_run_lines(report)]
    ran = f" ({report['images_run']} run)" if "images_run" in report else ""
    lines.append(f"data      {report['images']} images{ran}, {report['people']} people predicted")
    lines += ["", "COCO keypoints (pycocotools COCOeval, iouType='keypoints')"]
    lines += _table([list(STAT_NAMES), [_num(report[k]) for k in STAT_NAMES]])
    pck_key = next(k for k in report if k.startswith("PCK@"))
    lines += ["", f"{pck_key} (torso-normalised)  {_num(report[pck_key])} over {report['pck_people']} people"]
    lines += _joint_columns(report["per_joint"], _num)
    return "\n".join(lines + _tail(report))


def _tail(report: dict[str, Any]) -> list[str]:
    lines = ["", f"results written to {report['results']}"] if report["model"] and report["results"] else []
    return lines + [f"note: {n}" for n in report["notes"]]


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def format_mpii_report(report: dict[str, Any]) -> str:
    """Human-readable MPII report: protocol, model and options, the PCKh table (%) at each alpha, per-joint PCKh."""
    from posekit.eval.mpiieval import ALPHAS

    protocol = MPII_PROTOCOL if report["protocol"] == "gt-boxes" else report["protocol"]
    lines = [f"protocol  {protocol}", *_run_lines(report)]
    lines.append(f"data      {report['people']} people in {report['images']} images, {report['joints_labelled']} "
                 f"labelled joints (MPII-format annotations)")
    keys = [f"PCKh@{a:g}" for a in ALPHAS]
    columns = list(report[keys[0]])
    lines += ["", "PCKh, % of labelled joints within alpha x head size (0.6 x head box diagonal); left/right "
              "averaged; Mean leaves out pelvis and thorax (as HRNet/MMPose report)"]
    lines += _table([["", *columns], *[[k, *(_pct(report[k][c]) for c in columns)] for k in keys]], left=(0,))
    lines += ["", f"per joint {keys[0]} (%)"]
    lines += _joint_columns(report["per_joint"], _pct)
    return "\n".join(lines + _tail(report))
