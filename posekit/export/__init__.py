"""Export of trained models to ONNX with skeleton and pre-processing metadata, and running the exported files."""

from posekit.export.runtime import estimate, load_exported, run_crops

__all__ = ["estimate", "load_exported", "run_crops"]
