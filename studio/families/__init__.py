"""Model families: what graphs an architecture is split into, as PyTorch wrappers with their ONNX names and axes.

Both the PyTorch backend and the exporter use these wrappers, so "our PyTorch path" and "our ONNX path" are the same
computation by construction, and parity checks compare like with like.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GraphSpec:
    """One exported graph.

    Attributes:
        name: File stem and key, e.g. "image_encoder".
        input_names: Forward arguments of the wrapper, in order.
        output_names: Returned tensors, in order.
        dynamic_axes: Per input/output, the axes whose size may vary, by axis name.
        build: Makes the wrapper module from the loaded Hugging Face model.
        quantizable: Whether an int8 variant is offered (weights dominated by MatMuls).
        int8_weights_only: Quantize only the MatMuls with a weight operand, leaving activation-by-activation ones
            (attention scores over long sequences) in float: quantizing those on the fly costs more than it saves.
    """

    name: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]
    build: Callable
    quantizable: bool = False
    int8_weights_only: bool = False
    tolerance: dict = field(default_factory=lambda: {"atol": 1e-4, "rtol": 1e-3})


_MODULES = {
    "clip": "studio.families.clip",
    "blip": "studio.families.blip",
    "blip_vqa": "studio.families.blip_vqa",
    "vilt": "studio.families.vilt",
    "whisper": "studio.families.whisper",
    "video_classifier": "studio.families.video_classifier",
    "ast": "studio.families.ast",
    "clap": "studio.families.clap",
    "xclip": "studio.families.xclip",
}

# Which family runs a model folder, by the class named in its config.json ("architectures"), else its model_type.
FAMILY_BY_ARCHITECTURE = {
    "CLIPModel": "clip",
    "BlipForConditionalGeneration": "blip",
    "BlipForQuestionAnswering": "blip_vqa",
    "ViltForQuestionAnswering": "vilt",
    "WhisperForConditionalGeneration": "whisper",
    "VideoMAEForVideoClassification": "video_classifier",
    "TimesformerForVideoClassification": "video_classifier",
    "ASTForAudioClassification": "ast",
    "ClapModel": "clap",
    "XCLIPModel": "xclip",
}
FAMILY_BY_MODEL_TYPE = {"clip": "clip", "audio-spectrogram-transformer": "ast", "clap": "clap"}


def get_family(name: str):
    """The family module (`GRAPHS`, `load_model`, `random_model`, `metadata`, `parity_inputs`, `save_files`).

    A family with `EXPORTABLE = False` runs on PyTorch only (its graph wraps a loop ONNX cannot express yet).
    """
    if name not in _MODULES:
        raise KeyError(f"unknown model family {name!r}")
    return importlib.import_module(_MODULES[name])


def save_processor_files(model_dir, out_dir) -> None:
    """Copies what preprocessing and tokenization need (the model's processor and tokenizer files) into a folder."""
    from transformers import AutoProcessor

    AutoProcessor.from_pretrained(str(model_dir)).save_pretrained(str(out_dir))


def load_pretrained(class_name: str, model_dir):
    """Loads a transformers model class by name from a model directory, in eval mode, float32, quietly."""
    import transformers

    quiet_transformers()
    return getattr(transformers, class_name).from_pretrained(str(model_dir), dtype="float32").eval()


def quiet_transformers() -> None:
    """Keeps transformers' and torch.onnx's console chatter (weight-loading bars, torchvision notes) off our output."""
    import logging

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
