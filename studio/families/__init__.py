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
    "ppocr": "studio.families.ppocr",
    "smolvlm": "studio.families.smolvlm",
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
    "SmolVLMForConditionalGeneration": "smolvlm",
}
FAMILY_BY_MODEL_TYPE = {"clip": "clip", "audio-spectrogram-transformer": "ast", "clap": "clap"}


def get_family(name: str):
    """The family module (`GRAPHS`, `load_model`, `random_model`, `metadata`, `parity_inputs`, `save_files`).

    A family with `EXPORTABLE = False` runs on PyTorch only (its graph wraps a loop ONNX cannot express yet).
    """
    if name not in _MODULES:
        raise KeyError(f"unknown model family {name!r}")
    return importlib.import_module(_MODULES[name])


def graph_module(model, parts: dict[str, str], forward: Callable):
    """A module for one graph: the model's `parts` it needs and a `forward` over them.

    Args:
        model: The loaded Hugging Face model.
        parts: Attribute of the module -> attribute path in the model ("" for the model itself), e.g.
            {"tower": "vision_model"}: submodules and parameters, registered so the exporter sees their weights.
        forward: `forward(self, *inputs)`: its parameters are the graph's inputs in order, its docstring the module's.
    """
    import torch

    module = type(forward.__name__.strip("_").title().replace("_", ""), (torch.nn.Module,), {"forward": forward})()
    module.__doc__ = forward.__doc__
    for name, path in parts.items():
        part = model
        for attribute in filter(None, path.split(".")):
            part = getattr(part, attribute)
        setattr(module, name, part)
    return module


def two_tower_graphs(
    name: str, input_name: str, output_name: str, towers: tuple[str, str], **more
) -> tuple[GraphSpec, GraphSpec]:
    """The graphs of a two-tower model (CLIP, CLAP): one projected encoder for pictures or sounds, with a batch axis,
    and the text encoder.

    Args:
        name: The encoder graph's name, e.g. "image_encoder".
        input_name: Its input, e.g. "pixel_values".
        output_name: Its output, e.g. "image_embeds".
        towers: The model's (encoder, projection) attribute names, e.g. ("vision_model", "visual_projection").
        **more: More `GraphSpec` fields of the encoder graph (quantizable, tolerance...).
    """
    encoder = lambda model: projected_encoder(model, *towers, (input_name,))  # noqa: E731
    return (
        batched_graph(name, (input_name,), (output_name,), encoder, **more),
        text_encoder_spec(("text_model", "text_projection")),
    )


def batched_graph(name: str, inputs: tuple[str, ...], outputs: tuple[str, ...], build: Callable, **more) -> GraphSpec:
    """A graph whose only dynamic axis is the batch (the first axis of every input and output).

    Args:
        name: File stem and key.
        inputs: Input names, in the module's forward order.
        outputs: Output names, in the module's return order.
        build: Makes the module from the loaded model.
        **more: More `GraphSpec` fields (quantizable, tolerance...).
    """
    axes = {n: {0: "batch"} for n in (*inputs, *outputs)}
    return GraphSpec(name=name, input_names=inputs, output_names=outputs, dynamic_axes=axes, build=build, **more)


def text_encoder_spec(towers: tuple[str, str], batch_axis: str = "batch") -> GraphSpec:
    """The text encoder graph of a two-tower family: input_ids, attention_mask (N, L) -> text_embeds (N, D).

    Args:
        towers: The model's (text tower, projection) attribute names, e.g. ("text_model", "text_projection").
        batch_axis: Name of the batch axis (X-CLIP calls it "labels": one row per typed action).
    """
    return GraphSpec(
        name="text_encoder",
        input_names=("input_ids", "attention_mask"),
        output_names=("text_embeds",),
        dynamic_axes={
            "input_ids": {0: batch_axis, 1: "sequence"},
            "attention_mask": {0: batch_axis, 1: "sequence"},
            "text_embeds": {0: batch_axis},
        },
        build=lambda model: projected_encoder(model, *towers, ("input_ids", "attention_mask")),
    )


def projected_encoder(model, tower: str, projection: str, input_names: tuple[str, ...]):
    """One tower of a two-tower model (CLIP, CLAP, X-CLIP): the tower's pooled output through its projection.

    The result is the unnormalized projected embedding, as `get_image_features` / `get_text_features` /
    `get_audio_features` return it; tasks normalize and scale it themselves, so one label set's text embeddings are
    computed once and reused for every picture or sound.

    Args:
        model: The loaded Hugging Face model.
        tower: Attribute name of the encoder, e.g. "vision_model".
        projection: Attribute name of its projection, e.g. "visual_projection".
        input_names: The encoder's keyword inputs, in the graph's input order.

    Returns:
        A module whose forward takes `input_names` positionally and returns (N, D) embeddings.
    """
    import torch

    class ProjectedEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tower = getattr(model, tower)
            self.projection = getattr(model, projection)

        def encode(self, **inputs):
            return self.projection(self.tower(**inputs).pooler_output)

    # Explicit positional parameters (no *args): the ONNX exporter maps the graph's inputs onto forward's signature.
    class OneInput(ProjectedEncoder):
        def forward(self, values):
            return self.encode(**{input_names[0]: values})

    class TextInputs(ProjectedEncoder):
        def forward(self, input_ids, attention_mask):
            return self.encode(input_ids=input_ids, attention_mask=attention_mask)

    if tuple(input_names) == ("input_ids", "attention_mask"):
        return TextInputs()
    if len(input_names) == 1:
        return OneInput()
    raise ValueError(f"no projected encoder takes the inputs {input_names}")


def pretrained_functions(config_class: str, model_class: str):
    """A family's `load_model(model_dir)` and `random_model(architecture, seed)` for one transformers model class.

    Args:
        config_class: The transformers config class, e.g. "CLIPConfig".
        model_class: The transformers model class, e.g. "CLIPModel".
    """

    def load_model(model_dir):
        return load_pretrained(model_class, model_dir)

    def random_model(architecture, seed: int = 0):
        return random_pretrained(config_class, model_class, architecture, seed)

    load_model.__doc__ = f"Loads the Hugging Face {model_class} from a model directory, in eval mode, float32."
    random_model.__doc__ = f"A {model_class} of a registry row's architecture with random weights (benchmarks)."
    return load_model, random_model


def random_pretrained(config_class: str, model_class: str, architecture, seed: int = 0):
    """A transformers model of a registry row's architecture with random weights (benchmarks: the compute cost does
    not depend on the weights' values), in eval mode."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = getattr(transformers, config_class)(**{k: v for k, v in dict(architecture).items() if k != "model_type"})
    return getattr(transformers, model_class)(config).eval()


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
