"""Regenerate the README's accuracy table: every zoo pose model and pipeline, both protocols, flip off/on, speed.

    python benchmarks/accuracy.py --ann ../shared/data/coco-mini-train/annotations/person_keypoints_train2017.json \
        --images ../shared/data/coco-mini-train/train2017 --out accuracy.md

AP/AR are pycocotools COCOeval (keypoints) over every image of the set; PCK@0.2 is torso-normalised; speed is the
mean time of the model calls (after one warm-up call), per image and, under gt-boxes, per person.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import posekit
from posekit.bench import machine_description
from posekit.eval.cocoeval import coco
from posekit.hub.cache import write_atomic

COLUMNS = ("model", "protocol", "flip", "AP", "AP50", "AP75", "AR", "PCK@0.2", "ms/image", "ms/person")


def _cell(v: Any, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def table_row(report: dict[str, Any]) -> str:
    """One markdown row of an evaluation report (see `posekit.eval.coco`)."""
    cells = [report["model"], report["protocol"], "on" if report["flip"] else "off",
             *(_cell(report[k]) for k in ("AP", "AP50", "AP75", "AR", "PCK@0.2")),
             _cell(report["ms_per_image"], 1), _cell(report["ms_per_person"], 1)]
    return "| " + " | ".join(cells) + " |"


def default_models() -> list[str]:
    """Every zoo pose estimator, then every detector+pose pipeline over the single-person top-down ones."""
    from posekit.estimators.registry import entry

    names = list(posekit.models())
    detectors = [n for n in names if entry(n).kind == "detector"]
    by_name: dict[str, tuple[str, Any]] = {}  # estimator.name -> (zoo name, estimator): aliases count once
    for n in (n for n in names if entry(n).kind == "pose"):
        est = posekit.load(n)
        if est.name not in by_name or n == est.name:
            by_name[est.name] = (n, est)
    estimators = dict(sorted(by_name.values(), key=lambda item: names.index(item[0])))
    single = [n for n, e in estimators.items() if e.top_down and not e.multi_person and e.skeleton.to_coco is not None]
    return list(estimators) + [f"{d}+{p}" for d in detectors for p in single]


def evaluate_model(name: str, ann: Path, images: Path, flips: list[bool]) -> tuple[list[dict[str, Any]], str | None]:
    """Reports for every protocol that tells something new x flip setting, or a note on why it cannot be scored.

    gt-boxes needs a model that takes boxes; a detector+pose pipeline on ground-truth boxes is its pose model
    alone, so pipelines are scored end-to-end only.
    """
    estimator = posekit.load(name)
    if estimator.skeleton.to_coco is None:
        return [], f"{name}: {estimator.skeleton.name} keypoints have no COCO-17 mapping; not scored on COCO"
    gt = getattr(estimator, "top_down", True) and "+" not in name
    reports = []
    for boxes in ["gt", "detector"] if gt else ["detector"]:
        for flip in flips:
            report = coco(estimator, ann, images, boxes=boxes, flip=flip)
            report["model"] = name
            print(table_row(report), file=sys.stderr, flush=True)
            reports.append(report)
    return reports, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ann", type=Path, required=True, help="COCO person_keypoints_*.json")
    parser.add_argument("--images", type=Path, required=True, help="folder with its images")
    parser.add_argument("--models", nargs="*", help="model or detector+pose names (default: every zoo pose model "
                        "and every detector+pose pipeline)")
    parser.add_argument("--flip", choices=("off", "on", "both"), default="both", help="flip test setting(s)")
    parser.add_argument("--out", type=Path, help="write the markdown table here (default: stdout)")
    parser.add_argument("--json", type=Path, help="also write every full report as JSON")
    args = parser.parse_args(argv)

    names = args.models or default_models()
    flips = {"off": [False], "on": [True], "both": [False, True]}[args.flip]
    reports, notes = [], []
    try:
        for name in names:
            model_reports, note = evaluate_model(name, args.ann, args.images, flips)
            reports += model_reports
            notes += [note] if note else []
    except posekit.PosekitError as exc:
        print(f"accuracy.py: error: {exc}", file=sys.stderr)
        return 2
    command = "python benchmarks/accuracy.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    lines = [
        f"Accuracy on `{args.ann.name}` ({reports[0]['images'] if reports else 0} images), "
        f"{dt.date.today().isoformat()}, posekit {posekit.__version__}, {machine_description()}.",
        f"Regenerate: `{command}`",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *(table_row(r) for r in reports),
        *([""] + [f"- {n}" for n in notes] if notes else []),
    ]
    text = "\n".join(lines) + "\n"
    if args.out:
        write_atomic(args.out, text.encode("utf-8"))
    else:
        print(text, end="")
    if args.json:
        write_atomic(args.json, json.dumps(reports, indent=1).encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
