"""CLIP: an image encoder graph and a text encoder graph, each ending in the projected (unnormalized) embedding.

Scores are computed outside the graphs (`studio.tasks.zero_shot`) from normalized embeddings and the logit scale,
so text embeddings can be cached per label set and only the image encoder runs per frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.families import (
    GraphSpec,
    load_pretrained,
    projected_encoder,
    random_pretrained,
    save_processor_files,
    text_encoder_spec,
)

TEXT_MAX_LENGTH = 77
# Files a model folder needs beside config and weights: each inner tuple is alternatives.
REQUIRED_FILES = (
    ("preprocessor_config.json", "processor_config.json"),
    ("tokenizer.json", "vocab.json"),
)


GRAPHS = (
    GraphSpec(
        name="image_encoder",
        input_names=("pixel_values",),
        output_names=("image_embeds",),
        dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
        build=lambda model: projected_encoder(model, "vision_model", "visual_projection", ("pixel_values",)),
        quantizable=True,
    ),
    text_encoder_spec(("text_model", "text_projection")),
)


def load_model(model_dir: Path):
    """Loads the Hugging Face CLIPModel from a model directory, in eval mode, float32."""
    return load_pretrained("CLIPModel", model_dir)


def random_model(architecture: dict, seed: int = 0):
    """A CLIPModel of the given architecture with random weights (benchmarks: cost does not depend on values)."""
    return random_pretrained("CLIPConfig", "CLIPModel", architecture, seed)


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
