"""Fixtures of the Fine-tune tab's tests: a learnable synthetic picture set and a trained, saved classifier.

conftest.py imports every name here, so any test module can ask for these fixtures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

SHAPE_CLASSES = ("red", "green", "blue")
_COLOURS = {"red": (220, 30, 30), "green": (30, 190, 40), "blue": (30, 50, 220)}


def shape_picture(colour: str, seed: int, size: tuple[int, int] = (48, 48)) -> Image.Image:
    """A picture of one coloured shape (ellipse, rectangle or triangle) at a random place and size on a random light
    background: the class is the colour, everything else varies."""
    rng = np.random.default_rng(seed)
    w, h = size
    bg = tuple(int(v) for v in rng.integers(150, 256, 3))
    im = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(im)
    x0, y0 = int(rng.integers(0, w // 3)), int(rng.integers(0, h // 3))
    x1, y1 = x0 + int(rng.integers(w // 2, w - x0)), y0 + int(rng.integers(h // 2, h - y0))
    base = np.array(_COLOURS[colour])
    fill = tuple(int(v) for v in np.clip(base + rng.integers(-25, 26, 3), 0, 255))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    elif kind == 1:
        draw.rectangle((x0, y0, x1, y1), fill=fill)
    else:
        draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=fill)
    return im


def write_shape_folder(directory: Path, per_class: int, seed: int = 0, mixed_sizes: bool = False) -> Path:
    """An image folder, one sub-folder per colour class, `per_class` PNGs each (sizes vary when `mixed_sizes`)."""
    sizes = [(48, 48), (64, 40), (40, 72), (96, 96)] if mixed_sizes else [(48, 48)]
    for c, colour in enumerate(SHAPE_CLASSES):
        sub = directory / colour
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape_picture(colour, seed + 1000 * c + i, sizes[i % len(sizes)]).save(sub / f"{i:04d}.png")
    return directory


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> Path:
    """12 pictures of each colour class in an image folder (red/, green/, blue/), of mixed sizes."""
    return write_shape_folder(tmp_path_factory.mktemp("shapes"), 12, mixed_sizes=True)


@pytest.fixture(scope="session")
def reference_embeds(tiny_clip_dir):
    """transformers' normalized image features of PIL pictures (CLIPProcessor + CLIPModel.get_image_features)."""
    import torch
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(str(tiny_clip_dir)).eval()
    processor = CLIPProcessor.from_pretrained(str(tiny_clip_dir))

    def embed(images):
        with torch.inference_mode():
            pixels = processor(images=images, return_tensors="pt")["pixel_values"]
            feats = model.get_image_features(pixel_values=pixels)
            feats = getattr(feats, "pooler_output", feats)
        feats = feats.numpy()
        return feats / np.linalg.norm(feats, axis=1, keepdims=True)

    return embed


@pytest.fixture(scope="session")
def clip_task(tiny_clip_dir, tmp_path_factory):
    """The tiny CLIP's ZeroShotTask on PyTorch (CPU), shared by the fine-tune tests."""
    from studio.tasks.zero_shot import ZeroShotTask

    return ZeroShotTask.load(str(tiny_clip_dir), tmp_path_factory.mktemp("ft-task"), backend="torch", device="cpu")


@pytest.fixture(scope="session")
def trained_models_dir(tmp_path_factory, tiny_clip_dir, shapes_dir, clip_task) -> Path:
    """A models directory with one saved classifier, “Colours”, trained on `shapes_dir` with the tiny CLIP (linear
    probe, blend 0.8, ONNX graph exported). Read-only for tests: copy it to change it."""
    from studio.classifiers.store import ClassifierStore
    from studio.classifiers.training import save_run, train_classifier

    models_dir = tmp_path_factory.mktemp("ft-models") / "exported"
    models_dir.mkdir()
    store = ClassifierStore(models_dir)
    store.create("Colours", list(SHAPE_CLASSES), str(tiny_clip_dir))
    store.add_folder("Colours", shapes_dir)
    run = train_classifier(clip_task, store, "Colours", method="linear", blend=0.8)
    save_run(run, store)
    return models_dir
