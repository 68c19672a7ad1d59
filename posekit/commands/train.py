"""`posekit train CONFIG.yaml [section.key=value ...] [--resume [CHECKPOINT]]`: train a top-down pose model."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a top-down pose model from a YAML config (extra: posekit[train])",
        description="Train a top-down pose model. Everything (data, skeleton, model, head, schedule) comes from the "
                    "YAML config; KEY=VALUE arguments override it, e.g. train.epochs=5 head.type=grmi. "
                    "Outputs go to train.out: best.safetensors, last.safetensors, log.jsonl, metrics.csv. "
                    "Several GPUs or processes: torchrun --nproc_per_node N -m posekit.cli train CONFIG.")
    parser.add_argument("config", metavar="CONFIG", help="YAML config, e.g. configs/synthetic_grmi_resnet_64.yaml")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (values in YAML)")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                        help="continue an interrupted run (default: train.out/last.safetensors)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from posekit.train import require_train_extra

    require_train_extra()
    from posekit.train.config import load_config
    from posekit.train.loop import train

    cfg = load_config(args.config, args.overrides)
    summary = train(cfg, resume=args.resume, progress=not args.quiet)
    best = summary["best"]
    if best is not None:
        scores = ", ".join(f"{k} {best[k]:.4f}" for k in ("ap", "pck") if k in best)
        print(f"best at epoch {best['epoch']} (step {best['step']}): {scores}")
    print(f"checkpoints: {summary['out']}/best.safetensors, {summary['out']}/last.safetensors")
    return 0
