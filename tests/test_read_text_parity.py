"""PP-OCR through our registry row, loader, backend and pipeline against the package's own runner (`RapidOCR()`) on the
same graph files: the same lines, boxes and confidences on real and rendered pictures; our DB post-processing and CTC
decoding against the package's on the same model outputs; the package's settings are ours; the graphs run on our
`OnnxBackend` (the runtime badge); a changed graph file or a missing package is refused in a sentence."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from studio.errors import ModelUnavailableError, StudioError
from studio.families.ppocr import SETTINGS
from tests.helpers import assert_plain_sentence

PICTURES = ["page", "text", "label-serif-24", "bold-32-tilted-7", "condensed-22-upside-down", "label-on-photo-camera"]


def _picture(name, text_pages) -> np.ndarray:
    if name in text_pages:
        return text_pages[name][0]
    import skimage.data

    gray = getattr(skimage.data, name)()
    return np.stack([gray] * 3, axis=-1)


def test_the_settings_are_the_packages(rapidocr):
    import yaml
    from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH

    from studio.families.ppocr import package_config_values

    config = yaml.safe_load(DEFAULT_CFG_PATH.read_text())
    assert package_config_values(config) == SETTINGS
    assert config["Det"]["mean"] == config["Det"]["std"] == [0.5, 0.5, 0.5]  # our detector input is (x/255-0.5)/0.5
    assert config["Cls"]["label_list"] == ["0", "180"] and config["Det"]["score_mode"] == "fast"


@pytest.mark.parametrize("name", PICTURES)
def test_same_lines_as_the_package_runner(name, text_pages, read_text_task, rapidocr):
    """Every line the package reads, we read: same text, confidence and box (spaces left as the model gives them)."""
    rgb = _picture(name, text_pages)
    ours = read_text_task(rgb, restore_spaces=False)
    theirs, _ = rapidocr(np.ascontiguousarray(rgb[:, :, ::-1]))  # the package takes arrays as BGR
    theirs = theirs or []
    assert len(ours.lines) == len(theirs) > 0
    for box, text, confidence in theirs:
        match = min(ours.lines, key=lambda line: np.abs(np.asarray(line.box) - np.asarray(box)).max())
        assert np.abs(np.asarray(match.box) - np.asarray(box)).max() <= 1.0, (match, box)
        assert match.text == text.strip()
        assert match.confidence == pytest.approx(confidence, abs=1e-5)


def test_db_boxes_equal_the_packages_post_processing(text_pages, read_text_task):
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess

    from studio.tasks.read_text import db_boxes, detector_input

    bgr = np.ascontiguousarray(text_pages["bold-32-tilted-7"][0][:, :, ::-1])
    graph = read_text_task.graphs.graphs["detector"]
    prediction = graph.run({"x": detector_input(bgr, SETTINGS.detect_min_side)})["sigmoid_0.tmp_0"]
    reference = DBPostProcess(thresh=0.3, box_thresh=0.5, unclip_ratio=1.6, use_dilation=True)
    expected, _ = reference(prediction, bgr.shape[:2])
    ours = db_boxes(prediction[0, 0], bgr.shape[1], bgr.shape[0], SETTINGS)
    assert len(ours) == len(expected) >= 2
    np.testing.assert_array_equal(np.stack(ours), expected)


def test_ctc_decoding_equals_the_packages(read_text_task):
    """Random probabilities (peaked so that characters, repeats and blanks all occur) decode alike."""
    from rapidocr_onnxruntime.ch_ppocr_rec.utils import CTCLabelDecode

    from studio.tasks.read_text import ctc_greedy

    characters = read_text_task.characters
    reference = CTCLabelDecode(character=characters[1:-1])
    assert reference.character == ["blank", *characters[1:]]
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 40, len(characters))).astype(np.float32)
    logits[:, :, 0] += 3.0  # blanks win about half the steps
    logits[:, ::7, 1:40] += 6.0  # and some frequent characters repeat
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = reference(probabilities)
    for p, (text, confidence) in zip(probabilities, expected):
        ours = ctc_greedy(p, characters, restore_spaces=False)
        assert ours[0] == text and ours[1] == pytest.approx(confidence, rel=1e-6)


def test_the_graphs_run_on_our_backend_with_the_pinned_files(read_text_task):
    from studio.backends.onnx import OnnxBackend
    from studio.services.base import ran_on

    assert set(read_text_task.graphs.graphs) == {"detector", "classifier", "recognizer"}
    assert all(isinstance(g, OnnxBackend) for g in read_text_task.graphs.graphs.values())
    assert (
        read_text_task.runtime.engine == "ONNX Runtime"
        and read_text_task.runtime.providers[0] == "CPUExecutionProvider"
    )
    said = ran_on(read_text_task)
    assert said["model"] == "rapidocr-onnxruntime/PP-OCRv4" and said["revision"] == "1.4.4"
    assert said["runtime"]["label"] == "ONNX Runtime · CPU"
    assert len(read_text_task.characters) == 6625  # blank + the dictionary in the recognizer's metadata + space


def test_the_package_is_found_without_importing_it():
    import subprocess
    import sys

    from tests.helpers import REPO

    code = (
        "import sys; from studio.sources import resolve; from pathlib import Path; "
        "s = resolve(None, 'read-text', Path('.')); print(s.origin, s.local_dir.name, "
        "'rapidocr_onnxruntime' in sys.modules, 'onnxruntime' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.split() == ["package", "rapidocr_onnxruntime", "False", "False"]


def test_a_changed_graph_file_is_refused(tmp_path, monkeypatch, ocr_models_dir):
    from studio.sources import installed_package_dir
    from studio.tasks.read_text import ReadTextTask

    copy = tmp_path / "rapidocr_onnxruntime"
    shutil.copytree(installed_package_dir("rapidocr-onnxruntime") / "models", copy / "models")
    graph = copy / "models" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
    data = bytearray(graph.read_bytes())
    data[-10] ^= 0xFF
    graph.write_bytes(bytes(data))
    monkeypatch.setattr("studio.sources.installed_package_dir", lambda name: copy)
    with pytest.raises(ModelUnavailableError) as caught:
        ReadTextTask.load(None, ocr_models_dir, device="cpu")
    assert_plain_sentence(str(caught.value), "rapidocr-onnxruntime", "1.4.4", "pip install")


def test_a_missing_package_or_pytorch_is_said_in_a_sentence(monkeypatch, ocr_models_dir):
    from studio.loading import model_state
    from studio.sources import resolve
    from studio.tasks.read_text import ReadTextTask

    with pytest.raises(StudioError) as caught:
        ReadTextTask.load(None, ocr_models_dir, backend="torch", device="cpu")
    assert_plain_sentence(str(caught.value), "ONNX Runtime only")
    monkeypatch.setattr("studio.sources.installed_package_dir", lambda name: None)
    with pytest.raises(ModelUnavailableError) as caught:
        ReadTextTask.load(None, ocr_models_dir, device="cpu")
    assert_plain_sentence(str(caught.value), "not installed", "pip install --no-deps rapidocr-onnxruntime==1.4.4")
    state = model_state(resolve(None, "read-text", ocr_models_dir), ocr_models_dir)
    assert state.summary == "missing (the package rapidocr-onnxruntime is not installed)"
