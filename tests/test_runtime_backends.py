"""Backends report the runtime they really use; asking for CUDA on a machine without it says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from studio.backends.onnx import OnnxBackend
from studio.backends.providers import cuda_unavailable_reason, requested_providers


def _graph(models_dir: Path) -> Path:
    return next(models_dir.glob("zero-shot/*/image_encoder.onnx"))


def test_device_to_providers_mapping():
    assert requested_providers("cpu") == ["CPUExecutionProvider"]
    assert requested_providers("cuda")[0] == "CUDAExecutionProvider"
    assert requested_providers("auto") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(ValueError):
        requested_providers("tpu")


@pytest.mark.skipif(cuda_unavailable_reason() is None, reason="this machine has a working CUDA provider")
@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_cuda_request_without_gpu_reports_the_cpu_fallback(exported_models_dir, device):
    backend = OnnxBackend(_graph(exported_models_dir), device=device)
    used = backend.session.get_providers()
    assert "CUDAExecutionProvider" not in used
    assert backend.runtime.providers == tuple(used)
    assert backend.runtime.device == "CPU"
    assert backend.runtime.fallback_reason
    assert backend.runtime.label.startswith("ONNX Runtime · CPU (CUDA unavailable: ")
    out = backend.run({"pixel_values": np.zeros((1, 3, 32, 32), np.float32)})
    assert out["image_embeds"].shape == (1, 16)


def test_onnxruntime_gpu_package_offers_cuda_here():
    """The project installs onnxruntime-gpu on x86-64 Linux, so CUDA is offered and its fallback is what we test."""
    assert "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def test_cpu_request_has_no_fallback_note(exported_models_dir):
    backend = OnnxBackend(_graph(exported_models_dir), device="cpu")
    assert backend.runtime.label == "ONNX Runtime · CPU"
    assert backend.runtime.fallback_reason is None


def test_inputs_are_cast_to_the_graph_types(exported_models_dir):
    text = OnnxBackend(next(exported_models_dir.glob("zero-shot/*/text_encoder.onnx")), device="cpu")
    ids = np.array([[49406, 320, 2368, 49407]], dtype=np.int32)  # int32 in, graph wants int64
    out = text.run({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    assert out["text_embeds"].shape == (1, 16)
