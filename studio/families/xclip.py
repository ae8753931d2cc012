"""X-CLIP: zero-shot video classification against actions the user types.

Three graphs, so that typed labels are encoded once per label set and each window of a video costs one video
encoder run and a small scoring graph:

- video_encoder: pixel_values (N, T, 3, H, W) -> video_embeds (N, D) (frame encoder with cross-frame attention, then
  the multi-frame integration transformer) and img_features (N, P, D) (the frames' patch features, averaged over time,
  which X-CLIP's video-specific prompt generator attends to);
- text_encoder: input_ids, attention_mask (K, L) -> text_embeds (K, D) (before the video-specific prompt);
- scorer: video_embeds, img_features, text_embeds -> logits (N, K): the prompt generator adds a video-specific
  prompt to every text embedding, then scaled cosine similarities, exactly as `XCLIPModel.forward`.

Frames are prepared like VideoMAE's (the checkpoint's preprocessor is a VideoMAE image processor); text like CLIP's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.families import GraphSpec, batched_graph, graph_module, pretrained_functions, text_encoder_spec

TEXT_MAX_LENGTH = 77
REQUIRED_FILES = (("preprocessor_config.json",), ("tokenizer.json", "vocab.json"))
# Seconds of video one clip covers by default: X-CLIP samples its 8 frames sparsely over a Kinetics clip (about 10 s);
# one frame per second of video at 30 frames/s gives 8 s windows.
_FRAME_SPACING_AT_30FPS = 30


_VIDEO_PARTS = ("vision_model", "visual_projection", "mit", "prompts_visual_layernorm", "prompts_visual_projection")


def _video_embeds(self, pixel_values):
    """pixel_values (N, T, 3, H, W) -> video_embeds (N, D), img_features (N, P, D)."""
    batch, frames, channels, height, width = pixel_values.shape
    vision = self.vision_model(pixel_values=pixel_values.reshape(-1, channels, height, width))
    cls_features = self.visual_projection(vision.pooler_output).view(batch, frames, -1)
    video_embeds = self.mit(cls_features).pooler_output
    img_features = self.prompts_visual_layernorm(vision.last_hidden_state[:, 1:, :])
    img_features = img_features @ self.prompts_visual_projection
    img_features = img_features.view(batch, frames, -1, video_embeds.shape[-1]).mean(dim=1)
    return video_embeds, img_features


def _video_encoder(model):
    return graph_module(model, {name: name for name in _VIDEO_PARTS}, _video_embeds)


def _scores(self, video_embeds, img_features, text_embeds):
    """video_embeds (N, D), img_features (N, P, D), text_embeds (K, D) -> logits (N, K)."""
    import torch

    text = text_embeds.unsqueeze(0).expand(video_embeds.shape[0], -1, -1)
    text = text + self.prompts_generator(text, img_features)
    video = video_embeds / video_embeds.norm(p=2, dim=-1, keepdim=True)
    text = text / text.norm(p=2, dim=-1, keepdim=True)
    return torch.einsum("bd,bkd->bk", video, self.logit_scale.exp() * text)


def _scorer(model):
    return graph_module(model, {"prompts_generator": "prompts_generator", "logit_scale": "logit_scale"}, _scores)


GRAPHS = (
    batched_graph(
        "video_encoder",
        ("pixel_values",),
        ("video_embeds", "img_features"),
        _video_encoder,
        tolerance={"atol": 2e-4, "rtol": 1e-3},
    ),
    text_encoder_spec(("text_model", "text_projection"), batch_axis="labels"),
    GraphSpec(
        name="scorer",
        input_names=("video_embeds", "img_features", "text_embeds"),
        output_names=("logits",),
        dynamic_axes={
            "video_embeds": {0: "batch"},
            "img_features": {0: "batch"},
            "text_embeds": {0: "labels"},
            "logits": {0: "batch", 1: "labels"},
        },
        build=_scorer,
        tolerance={"atol": 2e-4, "rtol": 1e-3},
    ),
)


load_model, random_model = pretrained_functions("XCLIPConfig", "XCLIPModel")


def metadata(model) -> dict:
    """What the task needs beside the graphs: frames per clip and the default clip length (labels are typed)."""
    frames = int(model.config.vision_config.num_frames)
    return {
        "labels": None,
        "num_frames": frames,
        "model_type": model.config.model_type,
        "clip_seconds": round(frames * _FRAME_SPACING_AT_30FPS / 30.0, 2),
    }


def save_files(model_dir, out_dir) -> None:
    """Copies the frame preparation settings and saves the tokenizer beside the graphs.

    The checkpoints name a VideoMAE image processor, which `AutoProcessor` does not pair with the tokenizer, so the two
    are saved separately.
    """
    import shutil

    from transformers import AutoTokenizer

    shutil.copy2(Path(model_dir) / "preprocessor_config.json", Path(out_dir) / "preprocessor_config.json")
    AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(out_dir))


def preprocessing(files_dir: Path):
    """The per-frame preparation of a model folder or export (`studio.media.image.ImagePreprocessing`)."""
    from studio.media.image import ImagePreprocessing

    return ImagePreprocessing.from_dir(Path(files_dir))


def parity_inputs(files_dir: Path, photos: list, model=None) -> dict[str, dict[str, np.ndarray]]:
    """Two clips of the real photos, fixed action prompts, and the scorer's inputs computed from them by PyTorch."""
    import torch

    from studio.families.video_classifier import clip_pixels
    from studio.media.text import TextTokenizer

    n = int(model.config.vision_config.num_frames) if model is not None else 8
    frames = [photos[i % len(photos)] for i in range(n)]
    prep = preprocessing(files_dir)
    pixels = np.concatenate([clip_pixels(prep, frames), clip_pixels(prep, frames[::-1])])
    tokens = TextTokenizer(files_dir, TEXT_MAX_LENGTH)(
        ["waving a hand", "juggling balls", "drinking coffee", "an astronaut floating in space"]
    )
    with torch.inference_mode():
        video_embeds, img_features = _video_encoder(model)(torch.from_numpy(pixels))
        text_encoder = GRAPHS[1].build(model)
        text_embeds = text_encoder(*(torch.from_numpy(tokens[k]) for k in ("input_ids", "attention_mask")))
    return {
        "video_encoder": {"pixel_values": pixels},
        "text_encoder": tokens,
        "scorer": {
            "video_embeds": video_embeds.numpy(),
            "img_features": img_features.numpy(),
            "text_embeds": text_embeds.numpy(),
        },
    }
