"""Tiny random video classifiers in the real Hugging Face format, with the checkpoints' image processor settings
(family "video_classifier"): VideoMAE (the registry's default) and TimeSformer."""

from __future__ import annotations

from pathlib import Path

from tests.tiny.stack import TINY_STACK

# Kinetics-style names, enough to tell labels apart in the UI.
ACTIONS = ("waving hand", "juggling balls", "drawing", "jumping", "clapping", "running on treadmill", "yoga")

# The preprocessor settings of the real checkpoints, at the tiny models' image size.
VIDEOMAE_NORM = dict(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
TIMESFORMER_NORM = dict(image_mean=[0.45, 0.45, 0.45], image_std=[0.225, 0.225, 0.225])


def make_tiny_video_classifier(out: Path, model_type: str, seed: int = 0, image_size: int = 32) -> Path:
    """Saves a tiny random VideoMAE ("videomae": 4 frames) or TimeSformer ("timesformer": 4 frames) classifier."""
    import torch
    import transformers
    from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil

    torch.manual_seed(seed)
    labels = {i: name for i, name in enumerate(ACTIONS)}
    common = dict(
        **TINY_STACK,
        image_size=image_size,
        patch_size=8,
        num_frames=4,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    if model_type == "videomae":
        config = transformers.VideoMAEConfig(**common, tubelet_size=2, use_mean_pooling=True)
        model = transformers.VideoMAEForVideoClassification(config)
        norm = VIDEOMAE_NORM
    else:
        config = transformers.TimesformerConfig(**common, attention_type="divided_space_time")
        model = transformers.TimesformerForVideoClassification(config)
        norm = TIMESFORMER_NORM
    model.eval().save_pretrained(out)
    processor = VideoMAEImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}, resample=2, **norm
    )
    processor.save_pretrained(out)
    return out


def make_tiny_videomae(out: Path) -> Path:
    """The tiny VideoMAE (`make_tiny_video_classifier`'s defaults): the family's model in `tests.tiny.MAKERS`."""
    return make_tiny_video_classifier(out, "videomae")


def make_tiny_timesformer(out: Path) -> Path:
    """The tiny TimeSformer (seed 1, so its weights differ from the tiny VideoMAE's)."""
    return make_tiny_video_classifier(out, "timesformer", seed=1)
