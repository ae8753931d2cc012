"""AST (Audio Spectrogram Transformer): one graph from a window's log-mel features to a score for every AudioSet label.

The graph also returns the pooled audio embedding (the mean of AST's [CLS] and distillation tokens, the input of its
classifier), which the fusion heads (`studio.fusion`) learn from. Scores are sigmoids of the logits: AST was
trained multi-label (binary cross-entropy over AudioSet's 527 labels), so a window can be "Speech" and "Music" at once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.families import batched_graph, graph_module, pretrained_functions

# Files a model folder needs beside config and weights: each inner tuple is alternatives.
REQUIRED_FILES = (("preprocessor_config.json",),)
# What the export's parity check listens to (`studio.media.synthetic_sounds`).
PARITY_INPUTS = "synthesized sounds (tones, chirp, noise bursts, clicks) through our feature extraction"


def _audio_classifier(self, input_values):
    """input_values (N, frames, mel bins) -> logits (N, labels), audio_embeds (N, hidden)."""
    pooled = self.ast(input_values=input_values).pooler_output
    return self.classifier(pooled), pooled


GRAPHS = (
    batched_graph(
        "audio_classifier",
        ("input_values",),
        ("logits", "audio_embeds"),
        lambda model: graph_module(
            model, {"ast": "audio_spectrogram_transformer", "classifier": "classifier"}, _audio_classifier
        ),
        quantizable=True,
        int8_weights_only=True,
        tolerance={"atol": 2e-4, "rtol": 1e-3},
    ),
)


load_model, random_model = pretrained_functions("ASTConfig", "ASTForAudioClassification")


def metadata(model) -> dict:
    """The label names, in logit order (AudioSet's 527 for the MIT checkpoints)."""
    id2label = model.config.id2label
    return {"labels": [str(id2label[i]) for i in range(len(id2label))], "kind": "tagging"}


def save_files(model_dir: Path, out_dir: Path) -> None:
    """Copies the feature extractor settings (preprocessor_config.json) into a folder."""
    from transformers import ASTFeatureExtractor

    ASTFeatureExtractor.from_pretrained(str(model_dir)).save_pretrained(str(out_dir))


def parity_inputs(files_dir: Path, photos: list, model=None) -> dict[str, dict[str, np.ndarray]]:
    """Real sound for checking the graph against PyTorch: synthesized test sounds through our feature extraction.

    Args:
        files_dir: Folder with preprocessor_config.json.
        photos: Unused (the exporter hands every family its example photos).
        model: Unused.
    """
    from studio.media.sound_features import AstFeatures
    from studio.media.synthetic_sounds import synthetic_sounds

    features = AstFeatures.from_dir(files_dir)
    sounds = synthetic_sounds(features.sampling_rate, features.window_samples / features.sampling_rate)
    return {"audio_classifier": {"input_values": features.batch(sounds)}}
