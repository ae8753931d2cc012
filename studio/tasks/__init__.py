"""Tasks: preprocess -> forward -> postprocess, one module per tab. No gradio, no onnxruntime imports here."""
