"""Export: model -> ONNX graphs + tokenizer/processor files + manifest, each graph checked against PyTorch."""
