"""A tiny random ASTForAudioClassification in the real Hugging Face format, with its feature extractor (family
"ast")."""

from __future__ import annotations

from pathlib import Path

# A few of AudioSet's 527 labels, spelled as in AST's config, for the tiny AST's head.
TINY_AUDIOSET_LABELS = (
    "Speech",
    "Music",
    "Dog",
    "Bark",
    "Knock",
    "Applause",
    "Siren",
    "Silence",
    "Door",
    "Clapping",
    "Laughter",
    "Vehicle",
)
# The tiny AST hears 128 frames (1.285 s) at a time with 32 mel bins.
TINY_AST_FRAMES = 128


def make_tiny_ast(out: Path, seed: int = 0) -> Path:
    """Saves a tiny random ASTForAudioClassification with `TINY_AUDIOSET_LABELS` and its feature extractor."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    torch.manual_seed(seed)
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        patch_size=16,
        frequency_stride=10,
        time_stride=10,
        max_length=TINY_AST_FRAMES,
        num_mel_bins=32,
        num_labels=len(TINY_AUDIOSET_LABELS),
        id2label=dict(enumerate(TINY_AUDIOSET_LABELS)),
        label2id={label: i for i, label in enumerate(TINY_AUDIOSET_LABELS)},
    )
    model = ASTForAudioClassification(config).eval()
    # At plain init every window scores about the same; a louder patch projection and head make the scores depend
    # on the sound, so tests can tell a tone from speech.
    with torch.no_grad():
        model.audio_spectrogram_transformer.embeddings.patch_embeddings.projection.weight.mul_(20)
        model.classifier.dense.weight.mul_(40)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    ASTFeatureExtractor(num_mel_bins=32, max_length=TINY_AST_FRAMES).save_pretrained(str(out))
    return out
