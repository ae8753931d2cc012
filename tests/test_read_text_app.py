"""The Read text tab and the trial log in the launched app, through its HTTP API (gradio_client), and the tab's live
handler called directly with camera frames (a stream, which gradio_client cannot call; test_read_text_browser.py
drives it in chromium).

Results are compared with `ReadTextService` on the same picture (whose pipeline test_read_text_parity.py compares with
the package's own runner); the trial log is read back from its file.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from studio.services.base import LoadedModels, Runtime
from tests.helpers import SKIPPED, assert_plain_sentence, free_port, outputs_and_toasts, text_of

MODEL = "rapidocr-onnxruntime/PP-OCRv4"
QUIET = [False, "browser", 175, "en-us", False]  # Speech panel: not spoken


@pytest.fixture(scope="module")
def sign_file(tmp_path_factory, text_pages) -> Path:
    path = tmp_path_factory.mktemp("read-text-app") / "sign.png"
    Image.fromarray(text_pages["sign-sans-48"][0]).save(path)
    return path


@pytest.fixture(scope="module")
def trial_app(tmp_path_factory, caption_models_dir, tiny_blip_dir, tiny_clip_dir):
    """The app started as `studio --trial-log DIR --participant P07`, with the tiny BLIP for the Caption tab.

    Yields:
        (client, trial log folder, models directory)
    """
    import shutil

    from studio.ui.app import launch

    root = tmp_path_factory.mktemp("trial-app")
    models_dir = root / "exported"
    shutil.copytree(caption_models_dir, models_dir)
    port = free_port()
    demo = launch(
        port=port,
        models_dir=models_dir,
        open_browser=False,
        models={"caption": str(tiny_blip_dir), "zero-shot": str(tiny_clip_dir)},
        block=False,
        trial_log=root / "trial",
        participant="P07",
    )
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False), root / "trial", models_dir
    finally:
        demo.close()


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "trial-log.jsonl").read_text().splitlines() if line.strip()]


def test_read_a_photo_equals_the_service(trial_app, sign_file):
    from studio.services.read_text import ReadTextService

    client, folder, models_dir = trial_app
    boxed, text, announce, audio, lines, timing, badge, said = client.predict(
        handle_file(str(sign_file)), 0.5, True, MODEL, "cpu", *QUIET, api_name="/read_text"
    )
    expected = ReadTextService(LoadedModels(models_dir))(sign_file, runtime=Runtime(MODEL, device="cpu"))
    assert text == expected["model_text"] == "EMERGENCY EXIT\nKeep this door closed"
    assert text_of(announce) == expected["text"] and said.endswith(f"|{expected['text']}")
    assert lines.splitlines()[0] == f"1. {expected['lines'][0]['text']} ({expected['lines'][0]['confidence']:.0%} sure)"
    assert badge == "**Runs on:** ONNX Runtime · CPU" and timing.startswith("Took ")
    assert audio is None  # the browser's voice was chosen
    shown, original = np.asarray(Image.open(boxed)), np.asarray(Image.open(sign_file).convert("RGB"))
    assert shown.shape == original.shape and (shown != original).any(axis=-1).mean() > 0.002  # the boxes drawn
    x, y = np.round(expected["lines"][0]["box"][0]).astype(int)
    r, g, b = shown[y, x].astype(int)  # a box corner, in the box colour (magenta; the image may come back compressed)
    assert r > 180 and g < 80 and b > 110, (r, g, b)


def test_no_photo_is_said_in_a_sentence(trial_app):
    client, _, _ = trial_app
    outputs, toasts = outputs_and_toasts(client.submit(None, 0.5, True, MODEL, "cpu", *QUIET, api_name="/read_text"))
    assert_plain_sentence(text_of(outputs[2]), "no photo")
    assert outputs[1] == SKIPPED


def test_every_output_is_logged_and_rated(trial_app, sign_file, photos, tmp_path, tiny_blip_dir):
    from studio.trial import export, summary

    client, folder, _ = trial_app
    before = len(_records(folder))
    client.predict(handle_file(str(sign_file)), 0.5, True, MODEL, "cpu", *QUIET, api_name="/read_text")
    photo = tmp_path / "coffee.jpg"
    photos["coffee"].save(photo)
    decoding = ["", False, 1, 12, 1.0, 0, str(tiny_blip_dir), "auto", "cpu"]
    speech = [True, "browser", 160, "en-us", True]  # spoken by the browser's voice
    caption = client.predict(handle_file(str(photo)), *decoding, *speech, api_name="/caption")[0]
    rated = client.predict(api_name="/trial_rate_3")[0]
    assert text_of(rated) == "Rated 3, right."
    records = _records(folder)[before:]
    assert [r["kind"] for r in records] == ["output", "output", "rating"]
    read, described, rating = records
    assert read["tab"] == "Read text" and read["participant"] == "P07" and read["delivery"] == "shown"
    assert read["model"] == MODEL and read["revision"] == "1.4.4" and read["runtime"] == "ONNX Runtime · CPU"
    assert read["text"] == "EMERGENCY EXIT. Keep this door closed." and read["certainty"] == "sure"
    assert read["settings"]["min_confidence"] == 0.5 and read["settings"]["speak"] is False
    assert read["latency_ms"] > 0 and read["picture"] is None
    assert described["tab"] == "Caption" and described["text"] == caption and described["delivery"] == "spoken"
    assert described["settings"]["rate_wpm"] == 160 and described["settings"]["num_beams"] == 1
    assert 0 < described["confidence"] <= 1
    assert rating["output_id"] == described["id"] and rating["rating"] == 3 and rating["label"] == "right"
    assert not (folder / "pictures").exists()  # nothing personal kept unless asked

    data = summary(folder)
    assert data["by_tab"]["Caption"]["ratings"]["right"] >= 1 and data["by_tab"]["Read text"]["outputs"] >= 1
    markdown, plot = client.predict(api_name="/trial_summary")
    assert "| Read text |" in markdown and "| Caption |" in markdown and plot is not None
    written = export(folder, tmp_path / "export")
    assert Path(written["csv"]).read_text().splitlines()[0].startswith("id,time,participant,tab,model,revision")


def test_the_switch_participant_and_pictures(trial_app, sign_file):
    client, folder, _ = trial_app
    *_, said, status = client.predict(True, str(folder), "Jane Doe", False, api_name="/trial_switch")
    assert_plain_sentence(text_of(said), "participant code", "never a name")
    *_, said, status = client.predict(True, str(folder), "P08", True, api_name="/trial_switch")
    assert "participant P08" in text_of(said) and "press 1" in text_of(said) and "(pictures kept)" in status
    client.predict(handle_file(str(sign_file)), 0.5, True, MODEL, "cpu", *QUIET, api_name="/read_text")
    last = _records(folder)[-1]
    assert last["participant"] == "P08" and last["picture"].startswith("pictures/")
    assert Image.open(folder / last["picture"]).size == Image.open(sign_file).size
    *_, said, status = client.predict(False, str(folder), "P08", True, api_name="/trial_switch")
    assert status == "The trial log is off."
    count = len(_records(folder))
    client.predict(handle_file(str(sign_file)), 0.5, True, MODEL, "cpu", *QUIET, api_name="/read_text")
    assert len(_records(folder)) == count  # off: nothing logged
    assert_plain_sentence(text_of(client.predict(api_name="/trial_rate_1")[0]), "trial log is off")
    client.predict(True, str(folder), "P07", False, api_name="/trial_switch")


def test_live_reading_says_new_text_once_and_again_when_asked(ocr_models_dir, text_pages):
    """The tab's stream handler on camera frames: a sign is said once; "Read again" says it again; a new sign is
    said; another viewer's session is independent."""
    from studio.ui.read_text_tab import ReadTextTab

    tab = ReadTextTab(LoadedModels(ocr_models_dir))
    viewer, other = SimpleNamespace(session_hash="viewer"), SimpleNamespace(session_hash="other")
    sign, label = text_pages["sign-sans-48"][0], text_pages["label-serif-24"][0]

    def look(frame, request=viewer):
        return tab.read_frame(frame, True, 0, 0.5, True, MODEL, "cpu", *QUIET, request)

    first = look(sign)
    assert text_of(first[2]) == "EMERGENCY EXIT. Keep this door closed."
    assert first[1] == "EMERGENCY EXIT\nKeep this door closed"
    repeat = look(sign)
    assert repeat[2] == SKIPPED or isinstance(repeat[2], dict)  # gr.skip(): nothing announced
    assert repeat[1] == first[1]  # the text stays shown
    tab.read_again(viewer)
    assert text_of(look(sign)[2]) == "EMERGENCY EXIT. Keep this door closed."
    assert text_of(look(label)[2]).startswith("Best before 12 MAY 2025.")
    assert text_of(look(sign, other)[2]) == "EMERGENCY EXIT. Keep this door closed."
    tab.stop_stream(viewer)
    assert text_of(look(sign)[2]) == "EMERGENCY EXIT. Keep this door closed."  # the camera was restarted
