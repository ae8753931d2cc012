"""Fixtures: tiny models built at test time, real photos, and isolated models directories."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.tiny_models import make_tiny_blip_caption, make_tiny_clip, write_clip_vocab

# No test may reach a model hub; a test that tries fails fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def clip_vocab_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clip-vocab")
    write_clip_vocab(out)
    return out


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory, clip_vocab_dir) -> Path:
    """A tiny random CLIP in Hugging Face format (config, safetensors, tokenizer, processor)."""
    return make_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip", clip_vocab_dir)


@pytest.fixture(scope="session")
def exported_models_dir(tmp_path_factory, tiny_clip_dir) -> Path:
    """A models directory holding the tiny CLIP's ONNX export (fp32 and int8), shared by read-only tests."""
    from studio.export.exporter import export_model
    from studio.export.quantize import quantize_export
    from studio.sources import resolve

    models_dir = tmp_path_factory.mktemp("exported")
    source = resolve(str(tiny_clip_dir), "zero-shot", models_dir)
    directory = export_model(source, models_dir)
    quantize_export(directory)
    return models_dir


@pytest.fixture(scope="session")
def tiny_blip_dir(tmp_path_factory) -> Path:
    """A tiny random BLIP captioner in Hugging Face format with the real BLIP (bert-base-uncased) tokenizer."""
    return make_tiny_blip_caption(tmp_path_factory.mktemp("models") / "tiny-blip")


@pytest.fixture(scope="session")
def caption_models_dir(tmp_path_factory, tiny_blip_dir) -> Path:
    """A models directory holding the tiny BLIP's ONNX export, shared by read-only tests."""
    from studio.export.exporter import export_model
    from studio.sources import resolve

    models_dir = tmp_path_factory.mktemp("exported-caption")
    export_model(resolve(str(tiny_blip_dir), "caption", models_dir), models_dir)
    return models_dir


@pytest.fixture
def models_dir(tmp_path) -> Path:
    """An empty models directory of the test's own."""
    d = tmp_path / "exported"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    """Real photos from scikit-image."""
    import skimage.data

    return {name: Image.fromarray(getattr(skimage.data, name)()) for name in ("astronaut", "chelsea", "coffee")}


@pytest.fixture(scope="session")
def photo_arrays(photos) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in photos.items()}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_server(tmp_path_factory, exported_models_dir, tiny_clip_dir):
    """The real app, launched on 127.0.0.1 with the tiny CLIP preselected; stopped when the module's tests end.

    Its models directory is a copy of the shared export, so tests may export or damage files in it.

    Yields:
        (base URL, models directory)
    """
    import shutil

    from studio.ui.app import launch

    models_dir = tmp_path_factory.mktemp("app-models") / "exported"
    shutil.copytree(exported_models_dir, models_dir)
    port = free_port()
    demo = launch(
        host="127.0.0.1",
        port=port,
        models_dir=models_dir,
        open_browser=False,
        models={"zero-shot": str(tiny_clip_dir)},
        block=False,
    )
    try:
        yield f"http://127.0.0.1:{port}/", models_dir
    finally:
        demo.close()


@pytest.fixture(scope="session")
def reference(tiny_clip_dir):
    """transformers' own zero-shot pipeline on the tiny CLIP: run(image, labels) -> [(label, score)], best first."""
    from transformers import pipeline

    pipe = pipeline("zero-shot-image-classification", model=str(tiny_clip_dir), device="cpu")

    def run(image, labels):
        out = pipe(str(image), candidate_labels=list(labels), hypothesis_template="a photo of a {}.")
        return [(o["label"], o["score"]) for o in out]

    return run


@pytest.fixture(scope="module")
def caption_app(tmp_path_factory, caption_models_dir, tiny_blip_dir, tiny_clip_dir):
    """The real app on 127.0.0.1 with the tiny CLIP and the tiny BLIP preselected; stopped when the module ends.

    Its models directory is a copy of the shared caption export, so tests may export or damage files in it. (The
    zero-shot export is left out: it would cost an export and a quantization, and the Caption tab never reads it.)

    Yields:
        (base URL, models directory)
    """
    import shutil

    from studio.ui.app import launch

    models_dir = tmp_path_factory.mktemp("caption-app-models") / "exported"
    shutil.copytree(caption_models_dir, models_dir)
    port = free_port()
    demo = launch(
        host="127.0.0.1",
        port=port,
        models_dir=models_dir,
        open_browser=False,
        models={"zero-shot": str(tiny_clip_dir), "caption": str(tiny_blip_dir)},
        block=False,
    )
    try:
        yield f"http://127.0.0.1:{port}/", models_dir
    finally:
        demo.close()


@pytest.fixture(scope="session")
def caption_reference(tiny_blip_dir, caption_models_dir):
    """CaptionTask on the tiny BLIP in PyTorch, run directly: run(image, prefix, settings, describe_people) -> result.

    The app and the CLI must say exactly what this says (ONNX decoding equals PyTorch's token for token, see
    test_caption_parity.py). Results are cached per arguments.
    """
    from studio.tasks.caption import VERBOSITY, CaptionTask

    task = CaptionTask.load(str(tiny_blip_dir), caption_models_dir, backend="torch", device="cpu")
    cache = {}

    def run(image, prefix=None, settings=VERBOSITY["short"], describe_people=False):
        key = (str(image), prefix, settings, describe_people)
        if key not in cache:
            cache[key] = task(str(image), prefix=prefix, settings=settings, describe_people=describe_people)
        return cache[key]

    return run
