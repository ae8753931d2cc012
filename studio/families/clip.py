"""CLIP: an image encoder graph and a text encoder graph, each ending in the projected (unnormalized) embedding.

Scores are computed outside the graphs (`studio.tasks.zero_shot`) from normalized embeddings and the logit scale,
so text embeddings can be cached per label set and only the image encoder runs per frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.families import GraphSpec, load_pretrained, save_processor_files

TEXT_MAX_LENGTH = 77
# Files a model folder needs beside config and weights: each inner tuple is alternatives.
REQUIRED_FILES = (
    ("preprocessor_config.json", "processor_config.json"),
    ("tokenizer.json", "vocab.json"),
)


def _torch():
    import torch

    return torch


def _image_encoder(model):
    torch = _torch()

    class ClipImageEncoder(torch.nn.Module):
        """pixel_values (N, 3, H, W) -> image_embeds (N, D)."""

        def __init__(self, clip):
            super().__init__()
            self.vision_model = clip.vision_model
            self.visual_projection = clip.visual_projection

        def forward(self, pixel_values):
            pooled = self.vision_model(pixel_values=pixel_values).pooler_output
            return self.visual_projection(pooled)

    return ClipImageEncoder(model)


def _text_encoder(model):
    torch = _torch()

    class ClipTextEncoder(torch.nn.Module):
        """input_ids, attention_mask (N, L) -> text_embeds (N, D)."""

        def __init__(self, clip):
            super().__init__()
            self.text_model = clip.text_model
            self.text_projection = clip.text_projection

        def forward(self, input_ids, attention_mask):
            pooled = self.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
            return self.text_projection(pooled)

    return ClipTextEncoder(model)


GRAPHS = (
    GraphSpec(
        name="image_encoder",
        input_names=("pixel_values",),
        output_names=("image_embeds",),
        dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
        build=_image_encoder,
        quantizable=True,
    ),
    GraphSpec(
        name="text_encoder",
        input_names=("input_ids", "attention_mask"),
        output_names=("text_embeds",),
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "text_embeds": {0: "batch"},
        },
        build=_text_encoder,
    ),
)


def load_model(model_dir: Path):
    """Loads the Hugging Face CLIPModel from a model directory, in eval mode, float32."""
    return load_pretrained("CLIPModel", model_dir)


def random_model(architecture: dict, seed: int = 0):
    """A CLIPModel of the given architecture with random weights (benchmarks: cost does not depend on values)."""
    torch = _torch()
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(**{k: v for k, v in dict(architecture).items() if k != "model_type"})
    return CLIPModel(config).eval()


def metadata(model) -> dict:
    """Values the task needs beside the graphs: CLIP's learned temperature."""
    return {"logit_scale": float(model.logit_scale.detach().exp().item())}


save_files = save_processor_files


def parity_inputs(files_dir: Path, photos: list, model=None) -> dict[str, dict[str, np.ndarray]]:
    """Real inputs for checking each graph against PyTorch: photos through our preprocessing, prompts tokenized.

    Args:
        files_dir: Folder with the processor and tokenizer files.
        photos: RGB PIL images.
        model: Unused (CLIP's graphs need no intermediate results as inputs).
    """
    from studio.media.image import ImagePreprocessing
    from studio.media.text import TextTokenizer

    pixels = ImagePreprocessing.from_dir(files_dir).batch(photos)
    tokens = TextTokenizer(files_dir, TEXT_MAX_LENGTH)(
        ["a photo of a cat.", "a photo of an astronaut in a white suit.", "a cup of coffee on a saucer.", "dog"]
    )
    return {"image_encoder": {"pixel_values": pixels}, "text_encoder": tokens}
