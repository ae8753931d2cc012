"""PyTorch backend: runs the same wrapper modules the ONNX graphs are exported from."""

from __future__ import annotations

import numpy as np

from studio.backends.base import RuntimeInfo
from studio.backends.providers import torch_cuda_reason


def torch_device(device: str) -> tuple[str, str | None]:
    """The torch device for a requested device, and why CUDA is not used when it was asked for."""
    if device == "cpu":
        return "cpu", None
    reason = torch_cuda_reason()
    return ("cpu", reason) if reason else ("cuda", None)


class TorchBackend:
    """Runs a `torch.nn.Module` whose forward takes the graph's named inputs and returns its outputs in order.

    Args:
        module: The wrapper module (see `studio.families`).
        input_names: Names of the forward arguments, in order.
        output_names: Names of the returned tensors, in order.
        device: "auto", "cuda" or "cpu".
    """

    def __init__(self, module, input_names: tuple[str, ...], output_names: tuple[str, ...], device: str = "auto"):
        import torch

        self._torch = torch
        self.torch_device, reason = torch_device(device)
        self.module = module.eval().to(self.torch_device)
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self.runtime = RuntimeInfo(
            engine="PyTorch",
            device="CUDA" if self.torch_device == "cuda" else "CPU",
            requested=device,
            fallback_reason=reason if device != "cpu" else None,
        )

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the module under `inference_mode` and returns numpy arrays by output name."""
        torch = self._torch
        with torch.inference_mode():
            args = [torch.from_numpy(np.ascontiguousarray(inputs[n])).to(self.torch_device) for n in self.input_names]
            out = self.module(*args)
            if not isinstance(out, (tuple, list)):
                out = (out,)
            return {name: t.detach().cpu().numpy() for name, t in zip(self.output_names, out)}
