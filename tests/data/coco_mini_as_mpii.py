"""Make coco_mini_as_mpii.json: COCO people converted to MPII-format records. A converted test fixture, NOT MPII data.

Source: ../shared/data/coco-mini-train (COCO 2017 train images and person keypoints).  Run from the repo root:
``python tests/data/coco_mini_as_mpii.py ../shared/data/coco-mini-train tests/data/coco_mini_as_mpii.json``.

Conversion (documented so the numbers can be judged):
- people: non-crowd, at least `MIN_BODY` of the 12 body joints labelled, at least 3 face keypoints (nose, eyes,
  ears) labelled including an ear, box height >= `MIN_HEIGHT` px;
- joints: the 12 joints COCO-17 and MPII-16 share by name (shoulders, elbows, wrists, hips, knees, ankles) are
  copied; pelvis, thorax, upper neck and head top do not exist in COCO: joints_vis 0, joints [-1, -1].  COCO and
  MPII annotators place some joints differently (notably hips), so PCKh here is not comparable with MPII's;
- head box (PCKh uses only its size): a square of side `HEAD_SIDE` x the longest distance between two labelled
  face keypoints, centred on them.  On these people the resulting head size (0.6 x diagonal) is ~0.7 x the
  shoulder width, about what the head segment (head top to neck, ~22 cm) is to the shoulders (~34 cm);
- center / scale: scale = the COCO box's longer side / 200; center = the box centre moved 15 x scale up, so the
  protocol's +15 x scale shift puts the person box back on the COCO box;
- coordinates: +0.5 (MATLAB 1-based pixel centres, as MPII files are; COCO coordinates are posekit pixels).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from posekit.eval.mpiieval import CENTER_SHIFT, MATLAB_ORIGIN, SCALE_PX
from posekit.skeleton import MPII16_TO_COCO17

MIN_BODY = 6
MIN_HEIGHT = 64.0
HEAD_SIDE = 1.5
_EARS = (3, 4)


def _r(v: float) -> float:
    return round(float(v), 2)


def convert(coco_json: str | Path) -> list[dict[str, Any]]:
    """The MPII-format records of the COCO people that qualify, ordered by image file name then annotation id."""
    data = json.loads(Path(coco_json).read_text())
    files = {im["id"]: im["file_name"] for im in data["images"]}
    records = []
    for a in sorted(data["annotations"], key=lambda a: (files[a["image_id"]], a["id"])):
        kp = np.array(a["keypoints"], dtype=np.float64).reshape(17, 3)
        labelled = kp[:, 2] > 0
        face = kp[:5][labelled[:5], :2]
        x, y, w, h = a["bbox"]
        body = sum(labelled[c] for c in MPII16_TO_COCO17)
        if a.get("iscrowd") or body < MIN_BODY or len(face) < 3 or not labelled[list(_EARS)].any() or h < MIN_HEIGHT:
            continue
        joints = np.full((16, 2), -1.0)
        vis = np.zeros(16, dtype=int)
        for c, m in MPII16_TO_COCO17.items():
            if labelled[c]:
                joints[m] = kp[c, :2] + MATLAB_ORIGIN
                vis[m] = 1
        span = max(np.linalg.norm(p - q) for p in face for q in face)
        mid = (face.min(0) + face.max(0)) / 2 + MATLAB_ORIGIN
        scale = max(w, h) / SCALE_PX
        center = (x + w / 2 + MATLAB_ORIGIN, y + h / 2 - CENTER_SHIFT * scale + MATLAB_ORIGIN)
        records.append({
            "image": files[a["image_id"]], "center": [_r(center[0]), _r(center[1])], "scale": round(scale, 4),
            "joints": [[_r(u), _r(v)] for u, v in joints], "joints_vis": vis.tolist(),
            "headbox": [_r(v) for v in (*(mid - HEAD_SIDE * span / 2), *(mid + HEAD_SIDE * span / 2))],
            "converted_from": f"COCO train2017 annotation {a['id']} (not MPII)",
        })
    return records


def dumps(records: list[dict[str, Any]]) -> str:
    """One record per line, so diffs stay readable."""
    return "[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n"


if __name__ == "__main__":
    source, target = sys.argv[1:3]
    Path(target).write_text(dumps(convert(Path(source) / "annotations" / "person_keypoints_train2017.json")))
