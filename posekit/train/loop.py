"""The training loop: everything checked before the first step, AdamW with a warm-up + cosine / step schedule,
mixed precision on GPU, gradient clipping, periodic evaluation and checkpoints, exact resume, DDP via torchrun.

Run folder (``train.out``): ``last.safetensors`` (with optimizer state, for resume), ``best.safetensors`` (best
validation ``train.metric``), ``log.jsonl`` (one row per logged step and per evaluation) and ``metrics.csv``
(one row per epoch).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posekit.data.coco import KeypointDataset, load_coco
from posekit.data.synthetic import write_dataset
from posekit.data.topdown import InputSpec, TopDownDataset
from posekit.decode.heatmap import decode_outputs
from posekit.errors import PosekitError
from posekit.export.metadata import model_metadata
from posekit.io import write_atomic
from posekit.skeleton import get_skeleton
from posekit.train import ddp
from posekit.train.checkpoint import load_checkpoint, save_checkpoint
from posekit.train.config import Config
from posekit.train.evaluate import score, to_image
from posekit.train.losses import grmi_loss, heatmap_loss, regression_loss
from posekit.train.model import PoseModel, build_model

#: Config sections that must agree between a checkpoint and the run resuming it, and the keys in them that may not.
RESUME_MUST_MATCH = ("data", "input", "augment", "model", "head", "train")
RESUME_MAY_CHANGE = {
    "data": ("workers", "cache_images"),
    "train": ("epochs", "device", "amp", "eval_every", "checkpoint_every", "log_every", "out"),
}


def lr_at(step: int, total: int, cfg: Config) -> float:
    """Learning rate before optimizer step ``step`` (0-based) of ``total``: linear warm-up over
    train.warmup_steps, then cosine decay to 0, step decay (x gamma at each milestone fraction) or constant."""
    t = cfg.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    if t.schedule == "cosine":
        span = max(total - t.warmup_steps, 1)
        return 0.5 * t.lr * (1 + math.cos(math.pi * (step - t.warmup_steps) / span))
    if t.schedule == "step":
        return t.lr * t.gamma ** sum(step >= m * total for m in t.milestones)
    return t.lr


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; an unavailable cuda request is an error, never a silent fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise PosekitError(f"train.device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PosekitError(f"train.device is {name} but torch sees no CUDA GPU; set train.device=cpu")
    return device


def synthetic_split(cfg: Config, split: str) -> Path:
    """Folder of a generated split (train uses the seed, val seed + 1, so they never share images)."""
    s = cfg.data.synthetic
    count, seed = (s.train, s.seed) if split == "train" else (s.val, s.seed + 1)
    return Path(s.dir) / f"stick7-{split}-{count}-seed{seed}-{s.image_size}px"


def prepare_synthetic(cfg: Config) -> None:
    """Write the configured synthetic splits that are not on disk yet."""
    s = cfg.data.synthetic
    for split, count, seed in (("train", s.train, s.seed), ("val", s.val, s.seed + 1)):
        folder = synthetic_split(cfg, split)
        if count and not (folder / "annotations.json").is_file():
            write_dataset(folder, count, seed, s.image_size)


def load_splits(cfg: Config) -> tuple[KeypointDataset, KeypointDataset | None]:
    """The train and (optional) validation sets, fully checked: files, images, skeleton, sigmas."""
    d = cfg.data
    skeleton = None
    if d.skeleton:
        try:
            skeleton = get_skeleton(d.skeleton)
        except KeyError as exc:
            raise PosekitError(f"data.skeleton: {exc.args[0]}") from None
    splits: list[KeypointDataset | None] = []
    for split in ("train", "val"):
        if d.synthetic.train:
            count = d.synthetic.train if split == "train" else d.synthetic.val
            folder = synthetic_split(cfg, split)
            paths = (folder / "annotations.json", folder / "images") if count else None
        else:
            sc = getattr(d, split)
            if split == "train" and not sc.annotations:
                raise PosekitError("the config names no training data: set data.train.annotations and "
                                   "data.train.images (or data.synthetic.train)")
            paths = (sc.annotations, sc.images) if sc.annotations else None
        splits.append(load_coco(*paths, skeleton=skeleton, min_keypoints=d.min_keypoints) if paths else None)
    train, val = splits
    if not len(train):
        raise PosekitError(f"{train.annotations} has no person with labelled keypoints to train on")
    if val is not None and val.skeleton.keypoints != train.skeleton.keypoints:
        raise PosekitError(f"the validation keypoints ({val.annotations}) differ from the training keypoints "
                           f"({train.annotations}); both splits must use one skeleton")
    if val is not None and cfg.train.metric == "ap" and train.skeleton.sigmas is None:
        raise PosekitError(f"skeleton {train.skeleton.name} has no OKS sigmas, so AP cannot be computed; add "
                           "'sigmas' to the dataset's category or set train.metric=pck")
    return train, val


def _loss(kind: str, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
          cfg: Config) -> tuple[torch.Tensor, dict[str, float]]:
    h = cfg.head
    if kind == "regression":
        return regression_loss(out, batch, h.coord_weight, h.visibility_weight)
    if kind == "simplebaseline":
        return heatmap_loss(out, batch)
    return grmi_loss(out, batch, h.offset_weight)


def predict_batches(model: PoseModel, loader: Any, head: dict[str, Any], size_hw: tuple[int, int],
                    device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over an evaluation loader: (instance indices (N,), keypoints (N, K, 3) in image pixels)."""
    was_training = model.training
    model.eval()
    indices, preds = [], []
    with torch.no_grad():
        for batch in loader:
            outs = model(batch["image"].to(device))
            named = {k: v.float().cpu().numpy() for k, v in model.named(outs).items()}
            preds.append(to_image(decode_outputs(head, named, size_hw), batch["affine"].numpy()))
            indices.append(batch["index"].numpy())
    model.train(was_training)
    return np.concatenate(indices), np.concatenate(preds)


class RunLog:
    """log.jsonl (every row) and metrics.csv (epoch rows) in the run folder; rank 0 only."""

    CSV_FIELDS = ("epoch", "step", "loss", "lr", "pck", "pck@0.1", "ap", "seconds")

    def __init__(self, folder: Path, start_step: int) -> None:
        self.jsonl, self.csv = folder / "log.jsonl", folder / "metrics.csv"
        self._truncate(start_step)

    def _truncate(self, step: int) -> None:
        """Forget rows after ``step`` (left by an interrupted run that is now resumed)."""
        for path, keep in ((self.jsonl, lambda line: json.loads(line)["step"] <= step),
                           (self.csv, lambda line: line.startswith("epoch") or int(line.split(",")[1]) <= step)):
            if path.is_file():
                lines = [ln for ln in path.read_text().splitlines(keepends=True) if ln.strip() and keep(ln)]
                write_atomic(path, "".join(lines))

    def row(self, record: dict[str, Any]) -> None:
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(record) + "\n")

    def epoch(self, record: dict[str, Any]) -> None:
        new = not self.csv.is_file()
        with open(self.csv, "a", newline="") as f:
            w = csv.DictWriter(f, self.CSV_FIELDS, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(record)


def _check_resume(ckpt_config: dict[str, Any], cfg: Config, path: Path) -> None:
    """Refuse to resume with settings that change what is trained (loader settings may change)."""
    now = cfg.to_dict()
    for section in RESUME_MUST_MATCH:
        a, b = dict(ckpt_config[section]), dict(now[section])
        for free in RESUME_MAY_CHANGE.get(section, ()):
            a.pop(free, None)
            b.pop(free, None)
        if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            raise PosekitError(f"cannot resume from {path}: its '{section}' settings differ from this config; "
                               "resume with the config the run started with")


def train(cfg: Config, resume: str | os.PathLike | bool = False, progress: bool = True,
          on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train as ``cfg`` says and return a summary {"step", "epoch", "best", "last_eval", "out"}.

    resume: True to continue from ``train.out``/last.safetensors, or a checkpoint path.  on_step is called with
    every step's record on rank 0 (after the step is counted).  Ctrl-C saves last.safetensors before stopping.
    """
    out = Path(cfg.train.out)
    device = resolve_device(cfg.train.device)
    dist = ddp.setup(device.type)
    if device.type == "cuda" and dist.active:
        device = torch.device("cuda", dist.local_rank)
    try:
        return _train(cfg, out, device, dist, resume, progress, on_step)
    finally:
        ddp.cleanup(dist)


def _train(cfg: Config, out: Path, device: torch.device, dist: ddp.Dist, resume: str | os.PathLike | bool,
           progress: bool, on_step: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    t = cfg.train
    ckpt = None
    if resume:
        ckpt = load_checkpoint(out / "last.safetensors" if resume is True else resume)
        _check_resume(ckpt.info["config"], cfg, ckpt.path)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        prepare_synthetic(cfg)
    ddp.barrier(dist)
    train_set, val_set = load_splits(cfg)
    skeleton = train_set.skeleton
    spec = InputSpec(tuple(cfg.input.size), cfg.input.margin, tuple(cfg.input.mean), tuple(cfg.input.std))

    torch.manual_seed(t.seed)
    model, head = build_model(cfg, skeleton.num_keypoints)
    model.to(device)
    info_base = {"model": model_metadata(skeleton, spec, head), "config": cfg.to_dict()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    use_amp = t.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    step, best, last_eval = 0, None, None
    if ckpt is not None:
        model.load_state_dict(ckpt.model_state())
        ckpt.restore_optimizer(optimizer)
        step, best = ckpt.info["step"], ckpt.info.get("best")
        if ckpt.info.get("scaler"):
            scaler.load_state_dict(ckpt.info["scaler"])
    net = model
    if dist.active:
        ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    sampler = ddp.EpochBatches(len(train_set), t.batch, t.seed, dist)
    per_epoch = sampler.steps_per_epoch()
    if per_epoch < 1:
        raise PosekitError(f"{len(train_set)} training people make no full batch of {t.batch} per process; "
                           "lower train.batch")
    total = per_epoch * t.epochs
    workers = {"num_workers": cfg.data.workers, "persistent_workers": cfg.data.workers > 0}
    train_data = TopDownDataset(train_set, spec, head, cfg.augment, t.seed, cfg.data.cache_images)
    loader = DataLoader(train_data, batch_sampler=sampler, pin_memory=device.type == "cuda", **workers)
    val_loader = None
    if val_set is not None and dist.main:
        val_loader = DataLoader(TopDownDataset(val_set, spec, head, cache_images=cfg.data.cache_images),
                                batch_size=t.batch, **workers)
    log = RunLog(out, step) if dist.main else None

    def save(path: Path, with_optimizer: bool) -> None:
        info = {**info_base, "step": step, "epoch": step / per_epoch, "best": best,
                "scaler": scaler.state_dict() if use_amp else None}
        save_checkpoint(path, model, info, optimizer if with_optimizer else None)

    def evaluate(epoch: int) -> dict[str, Any] | None:
        nonlocal best
        if val_loader is None:
            return None
        idx, preds = predict_batches(model, val_loader, head, spec.size_hw, device)
        result = {"step": step, "epoch": epoch, **score(val_set, idx, preds, with_ap=t.metric == "ap")}
        log.row({"eval": True, **result})
        if best is None or result[t.metric] > best[t.metric]:
            best = result
            save(out / "best.safetensors", with_optimizer=False)
        return result

    bar = tqdm(total=total, initial=step, desc="train", unit="step", disable=not (progress and dist.main))
    started = time.perf_counter()
    try:
        while step < total:
            epoch, skip = divmod(step, per_epoch)
            sampler.set_epoch(epoch, skip)
            losses = []
            for batch in loader:
                lr = lr_at(step, total, cfg)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                amp = torch.autocast("cuda", dtype=torch.float16) if use_amp else nullcontext()
                with amp:
                    outs = net(batch["image"])
                loss, parts = _loss(head["type"], model.named(outs), batch, cfg)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if t.clip_grad > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip_grad)
                scaler.step(optimizer)
                scaler.update()
                step += 1
                record = {"step": step, "epoch": epoch + 1, "lr": lr,
                          **ddp.mean_across(dist, {"loss": loss.item(), **parts})}
                losses.append(record["loss"])
                if dist.main:
                    bar.update(1)
                    bar.set_postfix(loss=f"{record['loss']:.4g}", lr=f"{lr:.2e}")
                    if step % t.log_every == 0 or step == total:
                        log.row({**record, "seconds": round(time.perf_counter() - started, 3)})
                    if t.checkpoint_every and step % t.checkpoint_every == 0:
                        save(out / "last.safetensors", with_optimizer=True)
                    if on_step is not None:
                        on_step(record)
            if dist.main:
                done = epoch + 1
                evaluated = evaluate(done) if done % t.eval_every == 0 or step == total else None
                last_eval = evaluated or last_eval
                save(out / "last.safetensors", with_optimizer=True)
                log.epoch({**(evaluated or {}), "epoch": done, "step": step,
                           "loss": float(np.mean(losses)) if losses else None, "lr": lr_at(step - 1, total, cfg),
                           "seconds": round(time.perf_counter() - started, 3)})
            ddp.barrier(dist)
    except KeyboardInterrupt:
        if dist.main:
            save(out / "last.safetensors", with_optimizer=True)
        raise
    finally:
        bar.close()
    if dist.main and best is None:  # no validation set: the final weights are the ones to use
        save(out / "best.safetensors", with_optimizer=False)
    return {"step": step, "epoch": step / per_epoch, "best": best, "last_eval": last_eval, "out": str(out)}

