"""Training configuration: a YAML file of six sections (data, input, augment, model, head, train) read into
dataclasses, with ``section.key=value`` overrides from the command line.  Unknown keys and bad values are
PosekitErrors naming the key.  Relative paths are relative to the current directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from posekit.data.augment import AugmentConfig
from posekit.defaults import DEFAULTS
from posekit.errors import PosekitError


@dataclass(frozen=True)
class SplitConfig:
    """One COCO-format split: the annotation json and the image folder."""

    annotations: str = ""
    images: str = ""


@dataclass(frozen=True)
class SyntheticConfig:
    """Generate stick-figure splits (`posekit.data.synthetic`) of ``train`` / ``val`` images instead of reading
    files; they are written once, in a sub-folder of ``dir`` named by these settings (shared between runs)."""

    train: int = 0
    val: int = 0
    image_size: int = 96
    seed: int = 0
    dir: str = "runs/synthetic-data"


@dataclass(frozen=True)
class DataConfig:
    """``skeleton``: a built-in skeleton name that must match the files, or "" to take it from the files.
    ``workers``: loader processes (0: load in the training process); ``cache_images``: keep decoded images in
    memory (in each worker), for small datasets."""

    train: SplitConfig = field(default_factory=SplitConfig)
    val: SplitConfig = field(default_factory=SplitConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    skeleton: str = ""
    workers: int = 0
    cache_images: bool = False
    min_keypoints: int = 1


@dataclass(frozen=True)
class InputConfig:
    """Network input: size [H, W], crop margin around the box, RGB mean / std in 0..255 units."""

    size: tuple[int, int] = (64, 64)
    margin: float = DEFAULTS.crop_margin
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class ModelConfig:
    """``backbone``: "mobilenetv2" (``width``), "resnet" (``widths`` per stage, ``blocks`` per stage, default one
    each) or "zoo:NAME" (a zoo network imported with its pretrained weights, cut at the tensor ``cut``)."""

    backbone: str = "mobilenetv2"
    width: float = 0.5
    widths: tuple[int, ...] = (32, 64, 128, 256)
    blocks: tuple[int, ...] = ()
    coordconv: bool = False
    output_stride: int = 32
    cut: str = ""


@dataclass(frozen=True)
class HeadConfig:
    """``type``: "regression" | "simplebaseline" | "grmi"; other keys apply to the type named in their comment."""

    type: str = "regression"
    reduce: int = 64  # regression
    hidden: int = 256  # regression
    coord_weight: float = 0.6  # regression
    visibility_weight: float = 0.4  # regression
    deconv_layers: int = 3  # simplebaseline
    deconv_channels: int = 256  # simplebaseline
    deconv_kernel: int = 4  # simplebaseline
    sigma: float = 2.0  # simplebaseline: Gaussian sigma in heatmap cells
    refine: str = "dark"  # simplebaseline: dark | quarter | none
    channels: int = 128  # grmi
    radius: float = 8.0  # grmi: disk radius in input pixels
    offset_weight: float = 1.0  # grmi


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping.  ``schedule``: cosine | step | constant (after ``warmup_steps`` of linear
    warm-up); ``milestones`` are fractions of all steps where the step schedule multiplies the lr by ``gamma``.
    ``device``: auto | cpu | cuda | cuda:N.  ``amp``: mixed precision on GPU.  ``eval_every`` in epochs,
    ``checkpoint_every`` in steps (0: at epoch ends only).  ``metric``: ap | pck, picks the best checkpoint."""

    epochs: int = 10
    batch: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_steps: int = 0
    milestones: tuple[float, ...] = (0.7, 0.9)
    gamma: float = 0.1
    clip_grad: float = 1.0
    amp: bool = True
    device: str = "auto"
    seed: int = 0
    eval_every: int = 1
    checkpoint_every: int = 0
    log_every: int = 10
    metric: str = "ap"
    out: str = "runs/train"


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    input: InputConfig = field(default_factory=InputConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CHOICES = {
    "head.type": ("regression", "simplebaseline", "grmi"),
    "head.refine": ("dark", "quarter", "none"),
    "train.schedule": ("cosine", "step", "constant"),
    "train.metric": ("ap", "pck"),
}


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check / convert one YAML value to the field's type."""
    origin = getattr(hint, "__origin__", None)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise PosekitError(f"config key {key} must be a list, got {value!r}")
        item = hint.__args__[0]
        if hint.__args__[-1] is not Ellipsis and len(value) != len(hint.__args__):
            raise PosekitError(f"config key {key} must have {len(hint.__args__)} entries, got {value!r}")
        return tuple(_coerce(v, item, key) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise PosekitError(f"config key {key} must be true or false, got {value!r}")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (hint is int and value != int(value)):
            raise PosekitError(f"config key {key} must be a{'n integer' if hint is int else ' number'}, "
                               f"got {value!r}")
        return hint(value)
    if hint is str:
        return "" if value is None else str(value)
    raise TypeError(f"unsupported config type {hint}")


def _build(cls: type, values: dict[str, Any] | None, prefix: str) -> Any:
    values = values or {}
    if not isinstance(values, dict):
        raise PosekitError(f"config section {prefix.rstrip('.') or 'top level'} must be a mapping, got {values!r}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise PosekitError(f"unknown config key {prefix}{unknown[0]}; known keys there: {', '.join(names)}")
    kwargs = {}
    for name, value in values.items():
        hint, key = hints[name], prefix + name
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, key + ".")
        else:
            kwargs[name] = _coerce(value, hint, key)
            if key in CHOICES and kwargs[name] not in CHOICES[key]:
                raise PosekitError(f"config key {key} must be one of {', '.join(CHOICES[key])}, got {value!r}")
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build and check a `Config` from nested dicts (missing keys take their defaults)."""
    cfg = _build(Config, values, "")
    t = cfg.train
    if t.epochs < 1 or t.batch < 1 or t.lr <= 0:
        raise PosekitError("train.epochs and train.batch must be >= 1 and train.lr > 0")
    if cfg.model.blocks and len(cfg.model.blocks) != len(cfg.model.widths):
        raise PosekitError(f"model.blocks {list(cfg.model.blocks)} needs one entry per stage of model.widths "
                           f"{list(cfg.model.widths)}")
    if min(cfg.input.size) < 16:
        raise PosekitError(f"input.size must be at least 16 x 16, got {list(cfg.input.size)}")
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    """'section.key=value' -> (['section', 'key'], value parsed as YAML)."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise PosekitError(f"override {text!r} must look like section.key=value, e.g. train.epochs=5")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of the nested dict ``values`` with each 'a.b.c=value' override set."""
    import copy

    out = copy.deepcopy(values)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise PosekitError(f"override {text!r}: {part} is not a section")
        node[path[-1]] = value
    return out


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config file and apply command-line overrides."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise PosekitError(f"config file {path} not found")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise PosekitError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return config_from_dict(apply_overrides(values, overrides or []))
