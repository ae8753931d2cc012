"""`studio predict read-text` prints what `ReadTextService` returns (lines with boxes, text, confidence, runtime);
live reading says each line once; bad input, a bad setting and `studio export read-text` get one sentence; `studio
models` lists PP-OCR as shipped in its package."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.services.base import LoadedModels, Runtime
from tests.helpers import assert_plain_sentence, error_sentence, stdout_json, studio, write_test_files

TIMINGS = ("latency_ms", "detect_ms", "classify_ms", "recognize_ms")


def _without_timings(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in TIMINGS}


@pytest.fixture(scope="module")
def files(tmp_path_factory, text_pages, photos) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("read-text-files")
    out = write_test_files(folder, {"chelsea": photos["chelsea"]}, "empty", "text")
    for name in ("sign-sans-48", "two-columns"):
        out[name] = folder / f"{name}.png"
        Image.fromarray(text_pages[name][0]).save(out[name])
    return out


@pytest.fixture(scope="module")
def service(ocr_models_dir):
    from studio.services.read_text import ReadTextService

    return ReadTextService(LoadedModels(ocr_models_dir))


def test_the_command_prints_what_the_service_returns(files, service, ocr_models_dir, text_pages):
    from studio.cli import main

    result = service(files["two-columns"], runtime=Runtime(device="cpu"))
    assert json.loads(json.dumps(result)) == result
    out = io.StringIO()
    with redirect_stdout(out):
        argv = ["predict", "read-text", "--image", str(files["two-columns"]), "--device", "cpu"]
        assert main([*argv, "--models-dir", str(ocr_models_dir)]) == 0
    assert _without_timings(json.loads(out.getvalue())) == _without_timings(result)
    assert result["model_text"] == text_pages["two-columns"][1]  # the first column, then the second
    assert result["text"] == "Coffee 2.50. Tea 2.00. Juice 3.10. Soup of the day. Bread and butter. Apple pie."
    assert [line["text"] for line in result["lines"]] == result["model_text"].split("\n")
    assert result["rows"] == [[i] for i in range(6)]
    for line in result["lines"]:
        box = np.asarray(line["box"])
        assert box.shape == (4, 2) and 0.5 < line["confidence"] <= 1.0
        assert (box >= 0).all() and (box[:, 0] <= result["width"]).all() and (box[:, 1] <= result["height"]).all()
    assert result["certainty"] == "sure" and result["runtime"]["label"] == "ONNX Runtime · CPU"
    assert result["model"] == "rapidocr-onnxruntime/PP-OCRv4" and result["revision"] == "1.4.4"
    assert result["settings"]["min_confidence"] == 0.5 and result["notices"] == []


def test_a_sign_as_a_separate_command(cli_env, files):
    out = stdout_json(studio(cli_env, "predict", "read-text", "--image", files["sign-sans-48"]))
    assert out["model_text"] == "EMERGENCY EXIT\nKeep this door closed"
    assert out["text"] == "EMERGENCY EXIT. Keep this door closed."
    assert out["runtime"]["engine"] == "ONNX Runtime"


def test_live_reading_says_each_line_once(service, text_pages):
    sign = text_pages["sign-sans-48"][0]
    first = service.read_if_new(sign, runtime=Runtime(device="cpu"))
    assert first["new"] and first["announcement"] == "EMERGENCY EXIT. Keep this door closed."
    assert first["said"] == ["emergency exit", "keep this door closed"]
    again = service.read_if_new(sign, said=first["said"], runtime=Runtime(device="cpu"))
    assert not again["new"] and again["announcement"] == "" and again["said"] == first["said"]
    asked = service.read_if_new(sign, said=first["said"], again=True, runtime=Runtime(device="cpu"))
    assert asked["new"] and asked["announcement"] == first["announcement"]
    # Another sign beside the first: only its lines are new.
    label = text_pages["label-serif-24"][0]
    both = np.full((sign.shape[0] + label.shape[0], max(sign.shape[1], label.shape[1]), 3), 250, np.uint8)
    both[: sign.shape[0], : sign.shape[1]] = sign
    both[sign.shape[0] :, : label.shape[1]] = label
    more = service.read_if_new(both, said=first["said"], runtime=Runtime(device="cpu"))
    assert more["new"] and "EMERGENCY" not in more["announcement"] and "Best before" in more["announcement"]
    nothing = service.read_if_new(np.full((240, 320, 3), 200, np.uint8), said=more["said"], runtime=Runtime())
    assert not nothing["new"] and nothing["said"] == more["said"]


@pytest.mark.parametrize(
    "key, words",
    [("empty", ("empty",)), ("text", ("not an image",)), ("chelsea", None)],
)
def test_bad_pictures_and_pictures_without_text(cli_env, files, key, words):
    proc = studio(cli_env, "predict", "read-text", "--image", files[key])
    if words is None:
        out = stdout_json(proc)  # a cat: at most a guess (its eye can pass for an "O"), never said as sure
        assert out["certainty"] in ("none", "guessing"), out["text"]
        assert out["text"] == "No text found." or out["text"].startswith("I'm not sure what this says.")
    else:
        assert_plain_sentence(error_sentence(proc), *words)


def test_bad_settings_and_export_get_a_sentence(cli_env, files):
    proc = studio(cli_env, "predict", "read-text", "--image", files["sign-sans-48"], "--min-confidence", "1.5")
    assert_plain_sentence(error_sentence(proc), "between 0 and 1")
    proc = studio(cli_env, "predict", "read-text", "--image", files["sign-sans-48"], "--backend", "torch")
    assert_plain_sentence(error_sentence(proc), "ONNX Runtime only")
    assert_plain_sentence(error_sentence(studio(cli_env, "export", "read-text")), "nothing to export")


def test_models_lists_the_shipped_model(cli_env):
    out = stdout_json(studio(cli_env, "models", "--task", "read-text"))
    (row,) = out["models"]
    assert row["model"] == "rapidocr-onnxruntime/PP-OCRv4" and row["default"] and row["revision"] == "1.4.4"
    assert row["state"].startswith("in the installed package rapidocr-onnxruntime 1.4.4")
    assert Path(row["export_dir"]).name == "rapidocr_onnxruntime"
