"""`posekit export CHECKPOINT --onnx OUT.onnx`: a trained model as an ONNX file that carries its own metadata."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a training checkpoint to ONNX (extra: posekit[train])",
        description="Export a checkpoint written by posekit train. The ONNX file carries the skeleton, input size, "
                    "normalisation and head type, so posekit predict/eval --model OUT.onnx run it like a zoo model.")
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="e.g. runs/x/best.safetensors")
    parser.add_argument("--onnx", required=True, metavar="OUT", help="ONNX file to write")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from posekit.export.onnx import export_onnx
    from posekit.export.runtime import load_exported

    path = export_onnx(args.checkpoint, args.onnx, args.opset)
    _, meta = load_exported(path)
    h, w = meta["input"]["size"]
    print(f"{path}: {meta['head']['type']} head, {len(meta['skeleton']['keypoints'])} keypoints "
          f"({meta['skeleton']['name']}), input {h}x{w}")
    return 0
