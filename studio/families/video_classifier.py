"""Video classifiers (VideoMAE, TimeSformer): one graph from a clip's frames to the action logits.

Both take `pixel_values` of shape (batch, frames, 3, height, width), prepared frame by frame like an image (resize the
shorter side, center-crop, normalize with the model's preprocessor settings), and return Kinetics-style logits. The
number of frames is fixed by the checkpoint (VideoMAE's tubelets and TimeSformer's time embeddings are trained for it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from studio.families import batched_graph, graph_module, load_pretrained

REQUIRED_FILES = (("preprocessor_config.json", "video_preprocessor_config.json"),)

_CLASS_BY_MODEL_TYPE = {
    "videomae": "VideoMAEForVideoClassification",
    "timesformer": "TimesformerForVideoClassification",
}

# Seconds of video one clip covers by default: the frame spacing each model was evaluated with on Kinetics (VideoMAE:
# 16 frames, every 4th of a 30 frames/s video ≈ 2.1 s; TimeSformer-base: 8 frames, every 32nd ≈ 8.5 s).
_FRAME_SPACING_AT_30FPS = {"videomae": 4, "timesformer": 32}


def _video_classifier(self, pixel_values):
    """pixel_values (N, T, 3, H, W) -> logits (N, classes)."""
    return self.inner(pixel_values=pixel_values).logits


GRAPHS = (
    batched_graph(
        "classifier",
        ("pixel_values",),
        ("logits",),
        lambda model: graph_module(model, {"inner": ""}, _video_classifier),
        tolerance={"atol": 2e-4, "rtol": 1e-3},
    ),
)


def _model_type(model_dir: Path) -> str:
    return json.loads((Path(model_dir) / "config.json").read_text()).get("model_type", "")


def load_model(model_dir: Path):
    """Loads the Hugging Face video classifier (VideoMAE or TimeSformer) from a folder, eval mode, float32."""
    return load_pretrained(_CLASS_BY_MODEL_TYPE[_model_type(model_dir)], model_dir)


def random_model(architecture: dict, seed: int = 0):
    """A video classifier of the given architecture with random weights (benchmarks)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model_type = architecture["model_type"]
    config_class = transformers.AutoConfig.for_model(model_type).__class__
    config = config_class(**{k: v for k, v in dict(architecture).items() if k != "model_type"})
    return getattr(transformers, _CLASS_BY_MODEL_TYPE[model_type])(config).eval()


def metadata(model) -> dict:
    """What the task needs beside the graph: labels, frames per clip and the default clip length."""
    config = model.config
    spacing = _FRAME_SPACING_AT_30FPS.get(config.model_type, 4)
    return {
        "labels": [config.id2label[i] for i in range(len(config.id2label))],
        "num_frames": int(config.num_frames),
        "model_type": config.model_type,
        "clip_seconds": round(config.num_frames * spacing / 30.0, 2),
    }


def save_files(model_dir, out_dir) -> None:
    """Copies the preprocessor settings (resize, crop, mean/std) the frames are prepared with."""
    for alternatives in REQUIRED_FILES:
        for name in alternatives:
            if (Path(model_dir) / name).is_file():
                shutil.copy2(Path(model_dir) / name, Path(out_dir) / name)
                break


def preprocessing(files_dir: Path):
    """The per-frame preparation of a model folder or export (`studio.media.image.ImagePreprocessing`)."""
    from studio.media.image import ImagePreprocessing

    files_dir = Path(files_dir)
    video_cfg = files_dir / "video_preprocessor_config.json"
    if not (files_dir / "preprocessor_config.json").is_file() and video_cfg.is_file():
        return ImagePreprocessing.from_config(json.loads(video_cfg.read_text()))
    return ImagePreprocessing.from_dir(files_dir)


def clip_pixels(prep, frames: list) -> np.ndarray:
    """One clip's frames (RGB uint8 arrays or PIL images) -> pixel_values (1, T, 3, H, W) float32."""
    from PIL import Image

    images = [f if isinstance(f, Image.Image) else Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    return prep.batch(images)[None]


def parity_inputs(files_dir: Path, photos: list, model=None) -> dict[str, dict[str, np.ndarray]]:
    """Two clips made of the real photos (cycled to the model's frame count, the second in reverse), prepared as the
    task prepares frames.

    Two, not one: the exporter traces with these, and a batch of 1 lets it specialize the batch size into
    TimeSformer's reshapes, leaving a graph that only takes one clip.
    """
    n = int(model.config.num_frames) if model is not None else 16
    frames = [photos[i % len(photos)] for i in range(n)]
    prep = preprocessing(files_dir)
    pixels = np.concatenate([clip_pixels(prep, frames), clip_pixels(prep, frames[::-1])])
    return {"classifier": {"pixel_values": pixels}}
