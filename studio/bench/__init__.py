"""Benchmarks: full-size architectures with random weights, ONNX Runtime against PyTorch in one run."""
