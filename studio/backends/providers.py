"""Device → ONNX Runtime execution providers, and why CUDA is not available when it is not.

This is the one place that maps devices to providers (HOUSE_STYLE: optimum's ORTModel). What is reported to users
comes from the session (`get_providers()`), never from this request list.
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda")


def requested_providers(device: str) -> list[str]:
    """The providers to ask for, in order of preference.

    Args:
        device: "auto" (CUDA, then CPU), "cuda" (CUDA, then CPU so the app keeps serving) or "cpu".
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, not {device!r}")
    if device == "cpu":
        return ["CPUExecutionProvider"]
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def _ort_capi_dir() -> Path:
    import onnxruntime

    return Path(onnxruntime.__file__).parent / "capi"


@functools.lru_cache(maxsize=1)
def cuda_unavailable_reason() -> str | None:
    """A short phrase saying why ONNX Runtime cannot use CUDA here, or None when nothing obvious stops it."""
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return "this ONNX Runtime package has no CUDA support (install onnxruntime-gpu)"
    if not any(Path("/dev").glob("nvidia[0-9]*")) and not os.environ.get("STUDIO_ASSUME_GPU"):
        return "no NVIDIA GPU found"
    lib = _ort_capi_dir() / "libonnxruntime_providers_cuda.so"
    if lib.exists():
        try:
            ctypes.CDLL(str(lib))
        except OSError as exc:
            missing = str(exc).split(":")[0]
            return f"CUDA libraries missing ({missing})"
    return None


def torch_cuda_reason() -> str | None:
    """Why PyTorch cannot use CUDA here, or None when it can."""
    import torch

    if torch.version.cuda is None:
        return "this PyTorch build has no CUDA support"
    if not torch.cuda.is_available():
        return "no NVIDIA GPU found"
    return None
