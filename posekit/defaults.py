"""Every user-facing default, declared once: name, type, value and a one-line meaning.

Estimators, pipelines, eval and the CLI read their defaults from here (``DEFAULTS.x`` or ``default("x")``), and
`add_option` builds an argparse flag from an entry, so ``--help`` always prints the value in force.  Ultralytics'
``cfg/default.yaml`` is the model: one table, read everywhere, so the Python API and the CLI cannot drift.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Knob:
    name: str
    type: type
    default: Any
    help: str


_KNOBS: tuple[Knob, ...] = (
    # models
    Knob("model", str, "centernet+movenet-thunder", "estimator or pipeline for images (`posekit models list`)"),
    Knob("video_model", str, "centernet+movenet-lightning", "estimator or pipeline for videos and cameras"),
    # people
    Knob("min_score", float, 0.15,
         "people scoring below this are left out of printed counts, per-image JSON and drawings"),
    Knob("max_people", int, None, "keep at most N people per image or frame, best first (None: all)"),
    Knob("threshold", float, 0.3, "keypoint score below which a joint is hidden in drawings"),
    Knob("box_min_score", float, 0.2, "keypoint score above which a joint counts when a box is drawn around joints"),
    Knob("crop_margin", float, 1.25, "top-down crops: side of the square crop as a multiple of the person box"),
    Knob("flip", bool, False, "flip test: also run each crop (or the whole image) mirrored and fuse the answers"),
    # video
    Knob("smooth", bool, True, "One-Euro keypoint smoothing of tracked people in videos"),
    Knob("max_age", int, 30, "frames a lost track is kept for re-identification"),
    Knob("min_hits", int, 3, "detections in a row before a new track gets an id"),
    Knob("redetect_every", int, None,
         "run the person detector on the whole frame every N frames at least (None: 5 for multi-person models, "
         "else only when a tracked person is lost)"),
    Knob("max_frames", int, None, "stop a video after N frames (None: the whole video)"),
    # runtime
    Knob("threads", int, None,
         "ONNX Runtime intra-op threads (None: POSEKIT_THREADS, else the usable cores, at most 4)"),
    # output
    Knob("out", str, "posekit_out", "folder for annotated images, videos and per-image JSON"),
)


class _Table(dict):
    """name -> default, with attribute access (``DEFAULTS.max_age``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


KNOBS: dict[str, Knob] = {k.name: k for k in _KNOBS}
DEFAULTS = _Table({k.name: k.default for k in _KNOBS})


def default(name: str) -> Any:
    """The default value of knob ``name``."""
    return KNOBS[name].default


def add_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, *flags: str,
               **overrides: Any) -> argparse.Action:
    """Add ``--name`` (dashes for underscores, or ``flags``) with the knob's type, default and help text, the
    default printed.  Booleans that default to False become ``store_true`` flags; ``overrides`` go to argparse."""
    knob = KNOBS[name]
    flags = flags or (f"--{name.replace('_', '-')}",)
    kwargs: dict[str, Any] = {"dest": name, "default": knob.default}
    if knob.type is bool:
        kwargs.update(action="store_true", help=knob.help)
    else:
        kwargs.update(type=knob.type, help=f"{knob.help} (default: %(default)s)")
    kwargs.update(overrides)
    return parser.add_argument(*flags, **kwargs)
