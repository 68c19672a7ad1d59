"""Export of trained models to ONNX with skeleton and pre-processing metadata."""
