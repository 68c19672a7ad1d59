"""Foreign formats into ONNX: TensorFlow.js graph models (model.json + weight shards)."""
