"""Tiny random video classifiers (VideoMAE, TimeSformer) in the real Hugging Face format, and test clips.

The clips are written with OpenCV's VideoWriter from drawn frames, so their frame counts and rates are known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.tiny_models import TINY_STACK

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


def make_tiny_xclip(out: Path, vocab_dir: Path, seed: int = 2, image_size: int = 32) -> Path:
    """Saves a tiny random X-CLIP (4 frames) with the real CLIP tokenizer and a VideoMAE image processor, as the
    microsoft/xclip checkpoints have.

    Args:
        out: The model directory to write.
        vocab_dir: Folder with vocab.json and merges.txt (`tests.tiny_models.write_clip_vocab`).
        seed: Weight seed.
        image_size: Frame resolution.
    """
    import torch
    import transformers
    from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil

    torch.manual_seed(seed)
    config = transformers.XCLIPConfig(
        text_config=dict(
            vocab_size=49408, **TINY_STACK, max_position_embeddings=77, bos_token_id=0, eos_token_id=2, pad_token_id=1
        ),
        vision_config=dict(
            **TINY_STACK,
            image_size=image_size,
            patch_size=8,
            num_frames=4,
            mit_hidden_size=16,
            mit_intermediate_size=32,
            mit_num_hidden_layers=1,
            mit_num_attention_heads=2,
        ),
        projection_dim=16,
        prompt_layers=1,
        prompt_attention_dropout=0.0,
        prompt_projection_dropout=0.0,
    )
    model = transformers.XCLIPModel(config).eval()
    with torch.no_grad():  # random projections give near-equal scores; a wider logit range tells labels apart
        model.logit_scale.fill_(4.0)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer = transformers.CLIPTokenizer(
        str(vocab_dir / "vocab.json"), str(vocab_dir / "merges.txt"), model_max_length=77
    )
    tokenizer.save_pretrained(out)
    VideoMAEImageProcessorPil(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        resample=2,
        **VIDEOMAE_NORM,
    ).save_pretrained(out)
    return out


def drawn_frames(count: int, width: int = 96, height: int = 72, seed: int = 0) -> list[np.ndarray]:
    """RGB frames of a moving coloured square on a gradient (each frame different)."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, width, dtype=np.float32)[None, :, None] * np.ones((height, 1, 3), np.float32)
    base = (base * rng.uniform(0.3, 1.0, size=3)).astype(np.uint8)
    frames = []
    for i in range(count):
        frame = base.copy()
        x = int((i * 7) % max(1, width - 20))
        y = int((i * 5) % max(1, height - 20))
        frame[y : y + 20, x : x + 20] = ((i * 40) % 256, 200, 255 - (i * 30) % 256)
        frames.append(frame)
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 10.0, fourcc: str = "mp4v") -> Path:
    """Writes RGB frames as a video with OpenCV."""
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {path.suffix} with {fourcc}"
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    return path
