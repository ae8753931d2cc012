"""CLIP: an image encoder graph and a text encoder graph, each ending in the projected (unnormalized) embedding.

Scores are computed outside the graphs (`studio.tasks.zero_shot`) from normalized embeddings and the logit scale,
so text embeddings can be cached per label set and only the image encoder runs per frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.families import pretrained_functions, two_tower_graphs
from studio.families import save_processor_files as save_files  # noqa: F401 - the family's save_files

TEXT_MAX_LENGTH = 77
# Files a model folder needs beside config and weights: each inner tuple is alternatives.
REQUIRED_FILES = (
    ("preprocessor_config.json", "processor_config.json"),
    ("tokenizer.json", "vocab.json"),
)


GRAPHS = two_tower_graphs(
    "image_encoder", "pixel_values", "image_embeds", ("vision_model", "visual_projection"), quantizable=True
)


load_model, random_model = pretrained_functions("CLIPConfig", "CLIPModel")


def metadata(model) -> dict:
    """Values the task needs beside the graphs: CLIP's learned temperature."""
    return {"logit_scale": float(model.logit_scale.detach().exp().item())}


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
