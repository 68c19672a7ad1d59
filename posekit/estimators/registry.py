"""Estimator names -> factories: what `posekit.load(name)` and `posekit predict --model` accept.

Networks are declared in `posekit.hub.registry`; this table declares the estimators built on them
(a network plus its pre-processing and decoder, or a detector + pose-model pipeline written ``det+pose``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from posekit.defaults import DEFAULTS
from posekit.errors import PosekitError
from posekit.estimators.base import Estimator

#: Images: the most accurate pipeline on COCO (README table). Video: a detector + pose pipeline gains most
#: from tracking (crops from the previous frame); Lightning keeps it real-time on a laptop CPU.
DEFAULT_MODEL: str = DEFAULTS.model
DEFAULT_VIDEO_MODEL: str = DEFAULTS.video_model


@dataclass(frozen=True)
class EstimatorEntry:
    name: str
    description: str
    factory: Callable[..., Estimator]
    #: "pose" estimators return keypoints; "detector" ones return person boxes (``detect(image)``).
    kind: str = "pose"
    #: Zoo networks the estimator loads (fetched together, in one download, before it is built).
    networks: tuple[str, ...] = ()


ESTIMATORS: dict[str, EstimatorEntry] = {}


def register(name: str, description: str, kind: str = "pose", networks: tuple[str, ...] | None = None
             ) -> Callable[[Callable[..., Estimator]], Callable[..., Estimator]]:
    """Decorator: declare an estimator factory ``factory(**options) -> Estimator`` under ``name``; ``networks``
    lists the zoo networks it loads (default: the network of the same name)."""

    def wrap(factory: Callable[..., Estimator]) -> Callable[..., Estimator]:
        ESTIMATORS[name] = EstimatorEntry(name, description, factory, kind, (name,) if networks is None else networks)
        return factory

    return wrap


def _import_families() -> None:
    """Import every model family module so their ``@register`` lines run."""
    import importlib
    import pkgutil

    import posekit.estimators as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in ("base", "registry"):
            importlib.import_module(f"posekit.estimators.{info.name}")


def entry(name: str) -> EstimatorEntry:
    _import_families()
    if name not in ESTIMATORS:
        close = difflib.get_close_matches(name, ESTIMATORS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PosekitError(f"unknown model {name!r}{hint}; choose one of: {', '.join(sorted(ESTIMATORS))}")
    return ESTIMATORS[name]


#: Detector + pose pipelines worth listing (any ``detector+pose`` pair of the registry loads).
PIPELINES: dict[str, str] = {
    "centernet+movenet-thunder": "CenterNet person boxes + MoveNet Thunder per person: most accurate COCO-17 "
                                 "(default for images)",
    "centernet+movenet-lightning": "CenterNet person boxes + MoveNet Lightning per person: fast, tracked crops "
                                   "(default for video)",
    "nanodet+movenet-thunder": "NanoDet person boxes + MoveNet Thunder per person",
    "nanodet+movenet-lightning": "NanoDet person boxes + MoveNet Lightning per person",
}


@dataclass(frozen=True)
class ModelInfo:
    """What `posekit.load` accepts under one name: description, keypoint set, input size, networks loaded."""

    name: str
    description: str
    keypoints: str
    input: str
    networks: tuple[str, ...]
    default: str | None  # "images", "video" or None


def model_info(name: str) -> ModelInfo:
    """Listing metadata of an estimator or ``detector+pose`` pipeline name (no download)."""
    from posekit.hub.registry import get_spec

    check_name(name)
    parts = name.split("+") if "+" in name else [name]
    networks = tuple(n for part in parts for n in entry(part).networks)
    pose = entry(parts[-1])
    spec = get_spec(pose.networks[-1]) if pose.networks else None
    h, w = spec.input_size if spec else (None, None)
    default = "images" if name == DEFAULT_MODEL else "video" if name == DEFAULT_VIDEO_MODEL else None
    return ModelInfo(name, PIPELINES.get(name) or entry(name).description, (spec.keypoints if spec else None) or "-",
                     f"{h}x{w}" if h and w else "any", networks, default)


def models(detectors: bool = False) -> dict[str, str]:
    """Name -> one-line description of everything `load` accepts by name: estimators and the listed
    ``detector+pose`` pipelines (person detectors too, which pipelines are built from, with ``detectors``)."""
    _import_families()
    found = {n: e.description for n, e in ESTIMATORS.items() if detectors or e.kind == "pose"}
    return dict(sorted({**found, **PIPELINES}.items()))


def _is_model_file(name: str) -> bool:
    from posekit.estimators.exported import MODEL_FILE_SUFFIXES

    return name.lower().endswith(MODEL_FILE_SUFFIXES)


def check_name(name: str) -> None:
    """Raise PosekitError for an unknown estimator name (``det+pose`` names: both parts) without loading it."""
    if _is_model_file(name):
        if not Path(name).is_file():
            raise PosekitError(f"model file {name} not found")
    elif "+" in name:
        detector, pose = name.split("+", 1)
        if entry(detector).kind != "detector":
            raise PosekitError(f"{detector!r} is not a person detector; detectors: "
                               + ", ".join(n for n, e in sorted(ESTIMATORS.items()) if e.kind == "detector"))
        check_name(pose)
    else:
        entry(name)


def load(name: str = DEFAULT_MODEL, detector_options: dict | None = None, **options) -> Estimator:
    """Build the estimator ``name`` (see `models`; or a ``.onnx`` / ``.safetensors`` file from ``posekit export`` /
    ``posekit train``); options go to its class (e.g. ``threads``, ``margin``).

    ``"detector+pose"`` composes a person detector with a single-person model; ``detector_options`` go to the
    detector (e.g. ``{"score_threshold": 0.2}``), the other options to the pose model.
    """
    if "+" in name:
        from posekit.pipeline.topdown import TopDown

        detector, pose = name.split("+", 1)
        check_name(name)
        _fetch_networks(entry(detector), entry(pose))
        return TopDown(_build(entry(detector), detector_options or {}), load(pose, **options))
    if detector_options:
        raise PosekitError(f"detector_options are for 'detector+pose' names, and {name!r} is not one")
    if _is_model_file(name):
        from posekit.estimators.exported import TrainedModel

        check_name(name)
        return TrainedModel(name, **options)
    e = entry(name)
    if e.kind != "pose":
        raise PosekitError(f"{name!r} is a person detector, not a pose estimator; pair it with a pose model, e.g. "
                           f"{name}+movenet-thunder")
    _fetch_networks(e)
    return _build(e, options)


def _fetch_networks(*entries: EstimatorEntry) -> None:
    """Download every zoo network the estimators need in one pass (the package tarball is fetched once)."""
    from posekit.hub.fetch import ensure_files

    ensure_files([n for e in entries for n in e.networks])


def _build(e: EstimatorEntry, options: dict) -> Estimator:
    """Call a factory; an option it does not take becomes one clear PosekitError."""
    try:
        return e.factory(**options)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        bad = str(exc).rsplit("argument", 1)[-1].strip()
        raise PosekitError(f"model {e.name!r} has no option {bad}; see help(posekit.load) and the model's "
                           "class for its options") from None
