"""The one interface every backend implements, and the honest description of what it runs on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class RuntimeInfo:
    """What a graph really runs on, read back from the runtime rather than taken from the request.

    Attributes:
        engine: "ONNX Runtime" or "PyTorch".
        device: "CUDA" or "CPU": the device of the provider/tensor actually used.
        providers: ONNX Runtime's `session.get_providers()` (empty for PyTorch).
        requested: The device the user asked for ("auto", "cpu", "cuda").
        fallback_reason: Why CUDA is not used although it was asked for (None when it is, or was not asked for).
        variant: "fp32" or "int8".
    """

    engine: str
    device: str
    providers: tuple[str, ...] = ()
    requested: str = "auto"
    fallback_reason: str | None = None
    variant: str = "fp32"

    @property
    def label(self) -> str:
        """The badge text, e.g. "ONNX Runtime · CPU (CUDA unavailable: no NVIDIA GPU found)"."""
        text = f"{self.engine} · {self.device}"
        if self.variant != "fp32":
            text += f" · {self.variant}"
        if self.fallback_reason:
            text += f" (CUDA unavailable: {self.fallback_reason})"
        return text

    def as_dict(self) -> dict:
        return {
            "engine": self.engine,
            "device": self.device,
            "providers": list(self.providers),
            "requested": self.requested,
            "fallback_reason": self.fallback_reason,
            "variant": self.variant,
            "label": self.label,
        }


class Backend(Protocol):
    """Runs one graph. Tasks see only this."""

    runtime: RuntimeInfo
    input_names: tuple[str, ...]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the graph on named numpy inputs and returns named numpy outputs."""
        ...


@dataclass
class GraphSet:
    """The graphs of one model with the runtime they share, as handed to a task.

    Attributes:
        graphs: Backends by graph name (e.g. "image_encoder", "text_encoder").
        runtime: The runtime of the graphs (all graphs of one model run on one engine and device).
        files_dir: Where the tokenizer/processor files are.
        metadata: Family-specific values the graphs need around them (e.g. CLIP's logit scale).
        notices: Sentences for the user about how the model was loaded (fallbacks, exports made).
        family: The model family (`studio.families`) whose graphs these are: it knows the text length and the like.
        source: Where the graphs came from, as an export manifest records it ({"kind": "hub", "id", "revision"},
            {"kind": "directory", "path", ...} or {"kind": "package", "id", "package", "revision"}); empty if unknown.
    """

    graphs: dict[str, Backend]
    runtime: RuntimeInfo
    files_dir: object
    metadata: dict = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    family: str = ""
    source: dict = field(default_factory=dict)
