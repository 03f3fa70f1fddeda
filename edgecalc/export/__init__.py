"""Export of trained weights to TorchScript, ONNX, FP16/INT8 and TensorRT bundles."""
