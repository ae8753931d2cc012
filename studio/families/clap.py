"""CLAP: an audio encoder graph and a text encoder graph, each ending in the projected (unnormalized) embedding.

As with CLIP, scores are computed outside the graphs (`studio.tasks.sound_events`) from normalized embeddings and the
learned audio logit scale, so the label texts are encoded once per label set and only the audio encoder runs per
window. Fusion models (`enable_fusion`, e.g. laion/clap-htsat-fused) mix four views of recordings longer than their
window; Studio cuts recordings into windows itself, so it runs the unfused models, whose encoder takes one view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.errors import ModelUnavailableError
from studio.families import load_pretrained, pretrained_functions, two_tower_graphs
from studio.families import save_processor_files as save_files  # noqa: F401 - the family's save_files

# laion-clap tokenizes at most 77 tokens, as CLIP does; labels are far shorter.
TEXT_MAX_LENGTH = 77
REQUIRED_FILES = (
    ("preprocessor_config.json", "processor_config.json"),
    ("tokenizer.json", "vocab.json"),
)
PARITY_INPUTS = "synthesized sounds (tones, chirp, noise bursts, clicks) through our features; fixed label texts"


GRAPHS = two_tower_graphs(
    "audio_encoder",
    "input_features",
    "audio_embeds",
    ("audio_model", "audio_projection"),
    quantizable=True,
    tolerance={"atol": 2e-4, "rtol": 1e-3},
)


def _check_unfused(model) -> None:
    if getattr(model.config.audio_config, "enable_fusion", False):
        raise ModelUnavailableError(
            "This CLAP model is a fusion model (it mixes several views of long recordings); Studio runs the unfused "
            "CLAP models, such as laion/clap-htsat-unfused."
        )


def load_model(model_dir: Path):
    """Loads the Hugging Face ClapModel from a model directory, in eval mode, float32.

    Raises:
        ModelUnavailableError: It is a fusion model.
    """
    model = load_pretrained("ClapModel", model_dir)
    _check_unfused(model)
    return model


_, random_model = pretrained_functions("ClapConfig", "ClapModel")


def metadata(model) -> dict:
    """CLAP's learned temperature for audio-to-text scores (as `logits_per_audio` uses it)."""
    return {"logit_scale": float(model.logit_scale_a.detach().exp().item()), "kind": "zero-shot"}


def parity_inputs(files_dir: Path, photos: list, model=None) -> dict[str, dict[str, np.ndarray]]:
    """Real inputs for checking each graph against PyTorch: synthesized sounds through our features, labels tokenized.

    Args:
        files_dir: Folder with the processor and tokenizer files.
        photos: Unused (the exporter hands every family its example photos).
        model: Unused.
    """
    from studio.media.sound_features import ClapFeatures
    from studio.media.synthetic_sounds import synthetic_sounds
    from studio.media.text import TextTokenizer

    features = ClapFeatures.from_dir(files_dir)
    sounds = synthetic_sounds(features.sampling_rate, features.max_length_s)
    tokens = TextTokenizer(files_dir, TEXT_MAX_LENGTH)(
        ["This is a sound of a dog barking.", "This is a sound of applause.", "door knock", "a siren"]
    )
    return {"audio_encoder": {"input_features": features.batch(sounds)}, "text_encoder": tokens}
