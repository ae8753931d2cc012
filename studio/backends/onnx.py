"""ONNX Runtime backend: one InferenceSession per graph."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from studio.backends.base import RuntimeInfo
from studio.backends.providers import cuda_unavailable_reason, requested_providers

log = logging.getLogger(__name__)
_warned: set[str] = set()  # fallback reasons already logged, so each is said once per process

_ORT_TO_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


class OnnxBackend:
    """Runs one ONNX graph with ONNX Runtime on the device asked for, reporting the provider really used.

    Args:
        path: The .onnx file.
        device: "auto", "cuda" or "cpu" (see `providers.requested_providers`).
        variant: "fp32" or "int8", for the runtime badge.
        threads: Intra-op threads; 0 takes STUDIO_ONNX_THREADS (set per Ray Serve replica from its CPU share), else
            lets ONNX Runtime use one per physical core.
    """

    def __init__(self, path: Path, device: str = "auto", variant: str = "fp32", threads: int = 0) -> None:
        import onnxruntime as ort

        # The CUDA provider's failure to load is reported by us, in words; keep ORT's own C++ error off the console.
        ort.set_default_logger_severity(4)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or int(os.environ.get("STUDIO_ONNX_THREADS") or 0)
        wanted = requested_providers(device)
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=wanted)
        used = tuple(self.session.get_providers())
        on_cuda = "CUDAExecutionProvider" in used
        reason = None
        if "CUDAExecutionProvider" in wanted and not on_cuda:
            reason = cuda_unavailable_reason() or "ONNX Runtime could not start its CUDA provider"
            if reason not in _warned:
                _warned.add(reason)
                log.warning("CUDA was requested but ONNX Runtime runs on %s: %s", ", ".join(used), reason)
        log.info("%s runs on %s (requested %s)", Path(path).name, list(used), wanted)
        self.runtime = RuntimeInfo(
            engine="ONNX Runtime",
            device="CUDA" if on_cuda else "CPU",
            providers=used,
            requested=device,
            fallback_reason=reason,
            variant=variant,
        )
        self._inputs = {i.name: _ORT_TO_NUMPY.get(i.type, np.float32) for i in self.session.get_inputs()}
        self.input_names = tuple(self._inputs)
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        # The graph's own key/value metadata (e.g. PP-OCR's recognizer keeps its character dictionary there).
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the graph.

        Args:
            inputs: Arrays by input name; cast to the graph's input types.

        Returns:
            Arrays by output name.
        """
        feed = {name: np.ascontiguousarray(inputs[name], dtype=dtype) for name, dtype in self._inputs.items()}
        return dict(zip(self.output_names, self.session.run(None, feed)))
