"""Fixtures: tiny models built at test time, real photos, isolated models directories, the launched app, the `studio`
command's environment, and Debian chromium with playwright. Plain helpers are in tests/helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.fixtures_finetune import *  # noqa: F401,F403
from tests.fixtures_sound import *  # noqa: F401,F403
from tests.fixtures_video import *  # noqa: F401,F403
from tests.helpers import ARTIFACTS, launch_chromium
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


def launched_app(tmp_path_factory, name: str, exports: Path, models: dict[str, Path]):
    """Launches the real app on 127.0.0.1 with `models` ({task: model folder}) preselected; stops it when resumed.

    Its models directory is a fresh copy of `exports`, so tests may export or damage files in it. Module-scoped app
    fixtures `yield from` this.

    Yields:
        (base URL, models directory)
    """
    import shutil

    from studio.ui.app import launch

    models_dir = tmp_path_factory.mktemp(name) / "exported"
    shutil.copytree(exports, models_dir)
    port = free_port()
    demo = launch(
        host="127.0.0.1",
        port=port,
        models_dir=models_dir,
        open_browser=False,
        models={task: str(model) for task, model in models.items()},
        block=False,
    )
    try:
        yield f"http://127.0.0.1:{port}/", models_dir
    finally:
        demo.close()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory, exported_models_dir, tiny_clip_dir):
    """The real app (`launched_app`) with the tiny CLIP preselected, on a copy of the shared zero-shot export.

    Yields:
        (base URL, models directory)
    """
    yield from launched_app(tmp_path_factory, "app-models", exported_models_dir, {"zero-shot": tiny_clip_dir})


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
    """The real app (`launched_app`) with the tiny CLIP and the tiny BLIP preselected, on a copy of the shared caption
    export. (The zero-shot export is left out: it would cost an export and a quantization, and the Caption tab never
    reads it.)

    Yields:
        (base URL, models directory)
    """
    models = {"zero-shot": tiny_clip_dir, "caption": tiny_blip_dir}
    yield from launched_app(tmp_path_factory, "caption-app-models", caption_models_dir, models)


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


# Ask tab: visual question answering and spoken questions -----------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_vilt_dir(tmp_path_factory) -> Path:
    """A tiny random ViLT VQA model (tests/tiny_vilt.py) in Hugging Face format with the bert-base-uncased tokenizer."""
    from tests.tiny_vilt import make_tiny_vilt_vqa

    return make_tiny_vilt_vqa(tmp_path_factory.mktemp("models") / "tiny-vilt")


@pytest.fixture(scope="session")
def vilt_logits(tiny_vilt_dir):
    """transformers on the tiny ViLT: logits(photo, question, **processor_kwargs) -> (1, answers) numpy; `.model` is
    the ViltForQuestionAnswering."""
    import torch
    from transformers import AutoTokenizer, ViltForQuestionAnswering, ViltImageProcessorPil, ViltProcessor

    model = ViltForQuestionAnswering.from_pretrained(str(tiny_vilt_dir)).eval()
    processor = ViltProcessor(
        image_processor=ViltImageProcessorPil.from_pretrained(str(tiny_vilt_dir)),
        tokenizer=AutoTokenizer.from_pretrained(str(tiny_vilt_dir)),
    )

    def logits(photo, question, **kwargs):
        inputs = processor(images=photo, text=question, return_tensors="pt", **kwargs)
        with torch.inference_mode():
            return model(**inputs).logits.numpy()

    logits.model = model
    return logits


@pytest.fixture(scope="session")
def tiny_blip_vqa_dir(tmp_path_factory) -> Path:
    """A tiny random BlipForQuestionAnswering in Hugging Face format with the real BLIP tokenizer."""
    from tests.tiny_models import make_tiny_blip_vqa

    return make_tiny_blip_vqa(tmp_path_factory.mktemp("models") / "tiny-blip-vqa")


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory) -> Path:
    """A tiny random Whisper (tests/tiny_whisper.py) with Whisper tiny.en's tokenizer and feature extractor."""
    from tests.tiny_whisper import make_tiny_whisper

    return make_tiny_whisper(tmp_path_factory.mktemp("models") / "tiny-whisper")


@pytest.fixture(scope="session")
def vqa_exports_dir(tmp_path_factory, tiny_vilt_dir, tiny_blip_vqa_dir) -> Path:
    """A models directory holding the ONNX exports of the tiny ViLT and the tiny BLIP-VQA, shared by read-only tests."""
    from studio.export.exporter import export_model
    from studio.sources import resolve

    models_dir = tmp_path_factory.mktemp("exported-vqa-both")
    for model_dir in (tiny_vilt_dir, tiny_blip_vqa_dir):
        export_model(resolve(str(model_dir), "vqa", models_dir), models_dir)
    return models_dir


# Answers about people's age: whichever of them a tiny ViLT ranks first, "young" is in it.
YOUNG_ANSWERS = (
    "a young woman",
    "a young man",
    "young men",
    "a young boy",
    "two young girls",
    "young children",
    "a young lady",
    "young people",
    "a young child",
    "young women",
    "a young person",
    "young boys",
)


@pytest.fixture(scope="session")
def young_vilt_dir(tmp_path_factory, tiny_vilt_dir) -> Path:
    """The tiny ViLT (same weights) with its answer list renamed to `YOUNG_ANSWERS`, for "describe people" tests."""
    import json
    import shutil

    model_dir = shutil.copytree(tiny_vilt_dir, tmp_path_factory.mktemp("models") / "young-vilt")
    config = json.loads((model_dir / "config.json").read_text())
    assert len(config["id2label"]) == len(YOUNG_ANSWERS)
    config["id2label"] = {str(i): answer for i, answer in enumerate(YOUNG_ANSWERS)}
    config["label2id"] = {answer: i for i, answer in enumerate(YOUNG_ANSWERS)}
    (model_dir / "config.json").write_text(json.dumps(config))
    return model_dir


SPOKEN_QUESTION = "what color is the cup"


@pytest.fixture(scope="session")
def spoken_question_wav(tmp_path_factory) -> Path:
    """`SPOKEN_QUESTION` said by espeak-ng: a mono 16-bit WAV at 22050 Hz."""
    from tests.tiny_whisper import speak_wav

    return speak_wav(tmp_path_factory.mktemp("speech") / "question.wav", SPOKEN_QUESTION)


@pytest.fixture(scope="session")
def vqa_reference(tiny_vilt_dir, tiny_blip_vqa_dir, young_vilt_dir, vqa_exports_dir):
    """VqaTask run directly: run(image, question, model="vilt"|"blip"|"young", backend="onnx"|"torch", describe_people).

    The app and the CLI must say exactly what this says for the same weights and backend. Tasks are loaded once per
    (model, backend); the ONNX ones read the shared exports.
    """
    from studio.tasks.vqa import VqaTask

    dirs = {"vilt": tiny_vilt_dir, "blip": tiny_blip_vqa_dir, "young": young_vilt_dir}
    tasks = {}

    def run(image, question, model="vilt", backend="onnx", describe_people=False):
        key = (model, backend)
        if key not in tasks:
            tasks[key] = VqaTask.load(str(dirs[model]), vqa_exports_dir, backend=backend, device="cpu")
        return tasks[key](str(image) if isinstance(image, Path) else image, question, describe_people=describe_people)

    return run


@pytest.fixture(scope="session")
def transcriber(tiny_whisper_dir, tmp_path_factory):
    """TranscribeTask on the tiny Whisper (PyTorch on the CPU), run directly."""
    from studio.tasks.transcribe import TranscribeTask

    return TranscribeTask.load(str(tiny_whisper_dir), tmp_path_factory.mktemp("exported-stt"), device="cpu")


@pytest.fixture(scope="module")
def ask_app(tmp_path_factory, vqa_exports_dir, tiny_vilt_dir, tiny_whisper_dir):
    """The real app (`launched_app`) with the tiny ViLT and the tiny Whisper preselected, on a copy of the shared VQA
    exports (ViLT and BLIP-VQA).

    Yields:
        (base URL, models directory)
    """
    models = {"vqa": tiny_vilt_dir, "speech-to-text": tiny_whisper_dir}
    yield from launched_app(tmp_path_factory, "ask-app-models", vqa_exports_dir, models)


# The `studio` command --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory) -> dict[str, str]:
    """The environment `studio` commands run in (tests.helpers.studio): offline, as on a machine without internet."""
    home = tmp_path_factory.mktemp("cli-home")
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(home / "hf"),  # an empty Hugging Face cache: nothing downloaded on this "machine"
        "STUDIO_MODELS_DIR": str(home / "default-models"),  # never the checkout's exported/ folder
        "PYTHONWARNINGS": "ignore",
    }


# Debian chromium with playwright (browser tests) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium; its absence fails the tests (scripts/bootstrap --dev installs it)."""
    import shutil

    path = shutil.which("chromium")
    assert path, "chromium is not on PATH: install Debian's chromium (scripts/bootstrap --dev does)"
    return path


@pytest.fixture(scope="module")
def pw():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(pw, chromium):
    """Chromium launched with tests.helpers.CHROMIUM_ARGS, for the module's tests."""
    b = launch_chromium(pw, chromium)
    yield b
    b.close()


@pytest.fixture(scope="module")
def artifacts(request) -> Path:
    """test-artifacts/, for screenshots, without the module's failure screenshots from an earlier failed run.

    The module names its screenshots' prefix in `ARTIFACT_PREFIX` ("browser-caption": browser-caption-*-FAILED.png).
    """
    ARTIFACTS.mkdir(exist_ok=True)
    for stale in ARTIFACTS.glob(f"{request.module.ARTIFACT_PREFIX}-*-FAILED.png"):  # from an earlier failed run
        stale.unlink()
    return ARTIFACTS
