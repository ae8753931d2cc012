"""The Caption tab through its HTTP API (gradio_client) and `studio predict caption` / `studio export caption`.

The tiny BLIP has random weights, so nothing here expects particular words from the model: every caption is compared
with `CaptionTask` run directly on the same weights (the `caption_reference` fixture). Only the phrasing functions,
which are plain text in and text out, are checked against fixed strings.

/caption_frame (live describe) is a stream, which gradio_client cannot call; test_caption_browser.py covers it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file

from studio.tasks.caption import VERBOSITY
from studio.tasks.phrasing import GUESSING_BELOW, UNSURE_BELOW, hedged, without_age_and_looks
from tests.helpers import (
    HAS_GPU,
    SKIPPED,
    assert_missing_model_state,
    assert_plain_sentence,
    assert_speech_wav,
    error_sentence,
    outputs_and_toasts,
    read_verified_export,
    stdout_json,
    studio,
    text_of,
    write_test_files,
)

DEFAULT_HUB_MODEL = "Salesforce/blip-image-captioning-base"  # the registry's caption model; not on this machine
LONG_PREFIX = " ".join(["cat"] * 500) + "s"  # 2,000 characters: "cat cat ... cats"


# Fixtures ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(caption_app):
    url, _ = caption_app
    return Client(url, verbose=False)


@pytest.fixture(scope="module")
def app_models_dir(caption_app) -> Path:
    return caption_app[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory, photos, tiny_clip_dir) -> dict[str, Path]:
    """Photos as files, files that are not usable photos, and a zero-shot (CLIP) model folder."""
    out = write_test_files(tmp_path_factory.mktemp("caption-files"), photos, "empty", "corrupt", "text")
    out["clip"] = tiny_clip_dir
    return out


# Helpers ----------------------------------------------------------------------------------------------------------


def caption(
    client,
    image,
    model,
    prefix="",
    describe_people=False,
    beams=1,
    max_new_tokens=12,
    repetition_penalty=1.0,
    no_repeat_ngram=0,
    backend="onnx",
    device="cpu",
    speak=False,
    source="server",
    wpm=175,
    voice="en-us",
    can_speak=False,
):
    """Calls /caption; returns its five outputs and the (message, level) toasts the handler raised."""
    job = client.submit(
        handle_file(str(image)) if image is not None else None,
        prefix,
        describe_people,
        beams,
        max_new_tokens,
        repetition_penalty,
        no_repeat_ngram,
        str(model),
        backend,
        device,
        speak,
        source,
        wpm,
        voice,
        can_speak,
        api_name="/caption",
    )
    return outputs_and_toasts(job)


def assert_described(outputs, expected) -> None:
    """The /caption outputs show `expected` (a CaptionResult): text, live region, timing, and the counted text the
    browser speaks."""
    text, announce, _, timing, _, said = outputs
    assert said.split("|", 1)[1] == expected.text
    assert text == expected.text
    assert text_of(announce) == expected.text
    assert 'role="status"' in announce and 'aria-live="polite"' in announce and "studio-problem" not in announce
    assert re.fullmatch(r"Took \d+ ms \(image \d+ ms, words \d+ ms\)", timing), timing


def assert_still_serving(client, files, tiny_blip_dir, caption_reference) -> None:
    outputs, toasts = caption(client, files["chelsea"], tiny_blip_dir)
    assert_described(outputs, caption_reference(files["chelsea"]))
    assert not [t for t in toasts if t[1] == "warning"], toasts


# The tiny model itself ---------------------------------------------------------------------------------------------


def test_tiny_blip_captions_depend_on_the_photo(files, caption_reference):
    """The comparisons with CaptionTask below only prove the right photo was described if photos read differently."""
    captions = {caption_reference(files[name]).caption for name in ("astronaut", "chelsea", "coffee")}
    assert len(captions) > 1, captions


# /caption matches CaptionTask --------------------------------------------------------------------------------------

# The app's sliders set to the "Length" presets: Short (greedy) and Detailed (beam search with 3 beams).
PRESETS = {
    "greedy": dict(beams=1, max_new_tokens=12, repetition_penalty=1.0, no_repeat_ngram=0),
    "beams3": dict(beams=3, max_new_tokens=40, repetition_penalty=1.2, no_repeat_ngram=0),
}
PRESET_SETTINGS = {"greedy": VERBOSITY["short"], "beams3": VERBOSITY["detailed"]}


@pytest.mark.parametrize("decoding", list(PRESETS))
@pytest.mark.parametrize(("backend", "engine"), [("onnx", "ONNX Runtime"), ("torch", "PyTorch")])
def test_caption_matches_task(backend, engine, decoding, client, files, tiny_blip_dir, caption_reference):
    for name in ("astronaut", "chelsea", "coffee"):
        outputs, toasts = caption(client, files[name], tiny_blip_dir, backend=backend, **PRESETS[decoding])
        expected = caption_reference(files[name], settings=PRESET_SETTINGS[decoding])
        assert_described(outputs, expected)
        assert outputs[4] == f"**Runs on:** {engine} · CPU"
        assert outputs[2] is None  # speech off: no sound file
        assert not toasts, toasts


def test_prefix_starts_the_caption(client, files, tiny_blip_dir, caption_reference):
    prefix = "a picture of"
    for name in ("astronaut", "coffee"):
        outputs, _ = caption(client, files[name], tiny_blip_dir, prefix=prefix)
        expected = caption_reference(files[name], prefix=prefix)
        assert expected.caption.startswith(prefix), expected.caption
        assert expected.caption in outputs[0]  # the model's words, prefix first, inside the phrasing
        assert_described(outputs, expected)


@pytest.mark.skipif(HAS_GPU, reason="this machine has an NVIDIA GPU, so there is no CUDA fallback to report")
@pytest.mark.parametrize(("backend", "engine"), [("auto", "ONNX Runtime"), ("torch", "PyTorch")])
def test_auto_device_says_cuda_unavailable(backend, engine, client, files, tiny_blip_dir, caption_reference):
    outputs, _ = caption(client, files["coffee"], tiny_blip_dir, backend=backend, device="auto")
    assert_described(outputs, caption_reference(files["coffee"]))
    badge = outputs[4]
    assert badge.startswith(f"**Runs on:** {engine} · CPU (CUDA unavailable:"), badge
    assert badge.split("CUDA unavailable:", 1)[1].strip(" )"), badge  # and why


# Describe people ---------------------------------------------------------------------------------------------------


def test_describe_people_keeps_or_drops_age_and_looks(client, files, tiny_blip_dir, caption_reference):
    """A prefix puts a person's age in the model's caption; only "Describe people's age and looks" keeps it."""
    prefix = "an old man and"
    plain, _ = caption(client, files["astronaut"], tiny_blip_dir, prefix=prefix, describe_people=False)
    full, _ = caption(client, files["astronaut"], tiny_blip_dir, prefix=prefix, describe_people=True)
    assert_described(plain, caption_reference(files["astronaut"], prefix=prefix, describe_people=False))
    assert_described(full, caption_reference(files["astronaut"], prefix=prefix, describe_people=True))
    assert "an old man and" in full[0]
    assert "a man and" in plain[0] and "old man" not in plain[0]


# Speech ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "can_speak"), [("server", False), ("server", True), ("auto", False)])
def test_server_speech_is_a_wav(source, can_speak, client, files, tiny_blip_dir, caption_reference):
    """The server speaks when asked to, or when the browser says it cannot; slower speech lasts longer."""
    durations = {}
    for wpm in (120, 300):
        outputs, _ = caption(
            client, files["chelsea"], tiny_blip_dir, speak=True, source=source, wpm=wpm, can_speak=can_speak
        )
        assert_described(outputs, caption_reference(files["chelsea"]))
        audio = outputs[2]
        assert isinstance(audio, str) and audio.endswith(".wav"), audio
        durations[wpm] = assert_speech_wav(audio)["seconds"]
    assert durations[120] >= 1.5 * durations[300], durations


@pytest.mark.parametrize(
    ("speak", "source", "can_speak"),
    [(True, "browser", False), (True, "browser", True), (True, "auto", True), (False, "server", False)],
    ids=["browser-voice", "browser-voice-available", "auto-with-browser-voice", "speech-off"],
)
def test_no_server_speech_when_the_browser_speaks_or_speech_is_off(
    speak, source, can_speak, client, files, tiny_blip_dir, caption_reference
):
    outputs, _ = caption(client, files["chelsea"], tiny_blip_dir, speak=speak, source=source, can_speak=can_speak)
    assert_described(outputs, caption_reference(files["chelsea"]))
    assert outputs[2] is None


# Bad input: a sentence, and the app keeps serving ------------------------------------------------------------------

BAD_INPUTS = {
    # case: (image key or None, changes to the request, words the sentence must contain)
    "no-photo": (None, {}, ["no photo"]),
    "empty-file": ("empty", {}, ["empty.jpg", "empty"]),
    "corrupt-jpeg": ("corrupt", {}, ["corrupt.jpg", "damaged"]),
    "text-file-named-png": ("text", {}, ["notes.png", "not an image"]),
    "2000-character-prefix": ("chelsea", {"prefix": LONG_PREFIX}, ["2000", "200"]),
    "missing-hub-model": (
        "chelsea",
        {"model": DEFAULT_HUB_MODEL, "backend": "auto"},
        [DEFAULT_HUB_MODEL, "not on this computer", "internet"],
    ),
    "missing-hub-model-onnx": (
        "chelsea",
        {"model": DEFAULT_HUB_MODEL, "backend": "onnx"},
        [DEFAULT_HUB_MODEL, "not on this computer", "internet"],
    ),
    "zero-shot-model-folder": ("chelsea", {"model": "clip", "backend": "auto"}, ["clip", "cannot run"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_a_sentence_and_the_app_keeps_serving(
    case, client, files, tiny_blip_dir, caption_reference, app_models_dir
):
    image, changes, words = BAD_INPUTS[case]
    request = {"model": tiny_blip_dir, **changes}
    request["model"] = files.get(request["model"], request["model"])
    outputs, toasts = caption(client, files[image] if image else None, **request)
    text, announce, audio, _, _, _ = outputs
    sentence = text_of(announce)
    assert_plain_sentence(sentence, *words)
    assert 'role="status"' in announce and "studio-problem" in announce  # read as a problem, not a result
    assert not [t for t in toasts if t[0] == sentence], toasts  # said once: not also as a toast
    assert audio in (SKIPPED, None), audio  # nothing spoken
    assert text == SKIPPED, text  # no description shown for it
    assert not (app_models_dir / DEFAULT_HUB_MODEL).exists()  # nothing half-downloaded
    assert_still_serving(client, files, tiny_blip_dir, caption_reference)


def test_bad_server_voice_still_shows_the_description(client, files, tiny_blip_dir, caption_reference):
    """Speech failing must not hide the description: it is shown and announced, and the voice problem is a warning."""
    outputs, toasts = caption(
        client, files["chelsea"], model=tiny_blip_dir, speak=True, source="server", voice="xx-nope"
    )
    text, announce, audio, _, _, _ = outputs
    expected = caption_reference(files["chelsea"])
    assert text == expected.text and text_of(announce) == expected.text
    assert audio is None
    warnings = [message for message, kind in toasts if kind == "warning"]
    assert len(warnings) == 1
    assert_plain_sentence(warnings[0], "xx-nope", "voice")


# Model state and export --------------------------------------------------------------------------------------------


def test_model_state_of_missing_default_model(client, app_models_dir):
    state = client.predict(DEFAULT_HUB_MODEL, api_name="/cap_model_state")
    assert_missing_model_state(state, app_models_dir, DEFAULT_HUB_MODEL)


def test_model_state_of_exported_tiny_folder(client, tiny_blip_dir):
    state = client.predict(str(tiny_blip_dir), api_name="/cap_model_state")
    assert "local folder" in state
    assert "exported to ONNX (fp32)" in state
    assert "missing" not in state


def test_export_of_missing_model_says_why(client, app_models_dir):
    exports = set(app_models_dir.glob("caption/*"))
    state, toasts = outputs_and_toasts(client.submit(DEFAULT_HUB_MODEL, api_name="/cap_export_model"))
    assert "missing" in state
    warnings = [m for m, level in toasts if level == "warning"]
    assert len(warnings) == 1, toasts
    assert_plain_sentence(warnings[0], DEFAULT_HUB_MODEL, "not on this computer")
    assert set(app_models_dir.glob("caption/*")) == exports, "an export was started for a missing model"


# Phrasing for listeners (plain text functions: fixed expected strings) ---------------------------------------------

WITHOUT_AGE_AND_LOOKS = [
    ("an old man", "a man"),  # the article follows the word after it
    ("an old building", "an old building"),  # things keep their adjectives
    ("a tall building next to a tall man", "a tall building next to a man"),
    ("a man with a small dog", "a man with a small dog"),
    ("a small child and a big dog", "a child and a big dog"),
    ("An old man sitting on a bench", "A man sitting on a bench"),  # a capital article stays capital
    ("A young woman", "A woman"),
    ("A Young Woman", "A Woman"),
    ("a beautiful, young woman", "a woman"),  # several words, with commas or "and"
    ("a beautiful , young woman", "a woman"),
    ("a young and beautiful woman", "a woman"),
    ("an attractive young lady", "a lady"),
    ("an old man, a young woman", "a man, a woman"),
    ("two old men", "two men"),  # plurals
    ("young children playing", "children playing"),
    ("a group of old people", "a group of people"),
    ("a little girl and an elderly woman", "a girl and a woman"),
    ("a middle-aged man", "a man"),  # a hyphenated word as a whole, not "middle-"
    ("a young boy's old car", "a boy's old car"),
    ("the old lady", "the lady"),
    ("a smiling young woman", "a smiling woman"),  # what people do is not how they look
    ("an old manhole cover", "an old manhole cover"),  # "man" only as a whole word
    ("an old mango", "an old mango"),
    ("a cat on a sofa", "a cat on a sofa"),
    ("", ""),
]


@pytest.mark.parametrize(
    ("text", "expected"), WITHOUT_AGE_AND_LOOKS, ids=[t or "empty" for t, _ in WITHOUT_AGE_AND_LOOKS]
)
def test_without_age_and_looks(text, expected):
    assert without_age_and_looks(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a very old man", "a man"), ("a really cute baby", "a baby"), ("a very old building", "a very old building")],
)
def test_without_age_and_looks_drops_intensifiers_too(text, expected):
    """An intensifier goes with the looks word it strengthens ("a very man" is nonsense); things keep both."""
    assert without_age_and_looks(text) == expected


HEDGED = [
    # (confidence, phrasing, level): thresholds are inclusive on the surer side
    (1.0, "A cat on a sofa.", "sure"),
    (UNSURE_BELOW, "A cat on a sofa.", "sure"),
    (np.nextafter(UNSURE_BELOW, 0.0), "Probably a cat on a sofa.", "unsure"),
    (GUESSING_BELOW, "Probably a cat on a sofa.", "unsure"),
    (np.nextafter(GUESSING_BELOW, 0.0), "I'm not sure what this shows. It might be a cat on a sofa.", "guessing"),
    (0.0, "I'm not sure what this shows. It might be a cat on a sofa.", "guessing"),
]


@pytest.mark.parametrize(("confidence", "phrased", "level"), HEDGED)
def test_hedged_levels_at_the_thresholds(confidence, phrased, level):
    assert 0.0 < GUESSING_BELOW < UNSURE_BELOW < 1.0
    assert hedged("a cat on a sofa", float(confidence)) == (phrased, level)
    assert hedged("  a cat on a sofa \n", float(confidence)) == (phrased, level)  # surrounding space dropped


@pytest.mark.parametrize(
    ("text", "sure", "unsure"),
    [("a cat.", "A cat.", "Probably a cat."), ("is it a cat?", "Is it a cat?", "Probably is it a cat?")],
)
def test_hedged_does_not_double_the_full_stop(text, sure, unsure):
    """A model that ended its own sentence gets no second full stop."""
    assert hedged(text, 0.9) == (sure, "sure")
    assert hedged(text, (GUESSING_BELOW + UNSURE_BELOW) / 2) == (unsure, "unsure")
    phrased, level = hedged(text, GUESSING_BELOW / 2)
    assert level == "guessing" and phrased.endswith(f"It might be {text}"), phrased


# Command line -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_models_dir(tmp_path_factory, caption_models_dir) -> Path:
    """A copy of the shared caption export, for commands that might write."""
    return shutil.copytree(caption_models_dir, tmp_path_factory.mktemp("caption-cli-models") / "exported")


def test_cli_predict_caption_with_speech(cli_env, files, cli_models_dir, tiny_blip_dir, caption_reference, tmp_path):
    wav = tmp_path / "out.wav"
    out = stdout_json(
        studio(
            cli_env,
            *("predict", "caption", "--image", files["astronaut"], "--model", tiny_blip_dir),
            *("--models-dir", cli_models_dir, "--backend", "onnx", "--device", "cpu"),
            *("--speak", wav, "--rate", "300"),
        )
    )
    expected = caption_reference(files["astronaut"])
    assert {"task", "model", "backend", "provider", "latency_ms", "caption", "model_caption", "confidence"} <= set(out)
    assert out["task"] == "caption"
    assert out["model"] == str(tiny_blip_dir)
    assert out["backend"] == "onnx" and out["provider"] == "CPUExecutionProvider"
    assert out["runtime"]["engine"] == "ONNX Runtime" and out["runtime"]["fallback_reason"] is None
    assert isinstance(out["latency_ms"], (int, float)) and out["latency_ms"] > 0
    assert out["caption"] == expected.text
    assert out["model_caption"] == expected.caption
    assert out["confidence"] == pytest.approx(expected.confidence, abs=1e-4)
    assert out["tokens"] == len(expected.token_ids)
    assert out["speech"] == str(wav)
    assert_speech_wav(wav)
    assert not list(tmp_path.glob(".speech-*")), "a temporary speech file was left beside the WAV"


def test_cli_predict_caption_beams_and_prefix(cli_env, files, tiny_blip_dir, caption_reference, models_dir):
    from dataclasses import replace

    prefix = "a picture of"
    out = stdout_json(
        studio(
            cli_env,
            *("predict", "caption", "--image", files["coffee"], "--model", tiny_blip_dir),
            *("--models-dir", models_dir, "--backend", "torch", "--device", "cpu"),
            *("--beams", "3", "--prefix", prefix),
        )
    )
    expected = caption_reference(files["coffee"], prefix=prefix, settings=replace(VERBOSITY["short"], num_beams=3))
    assert out["backend"] == "torch" and out["provider"] == "cpu"
    assert out["settings"]["num_beams"] == 3 and out["settings"]["max_new_tokens"] == 12
    assert out["model_caption"].startswith(prefix)
    assert out["model_caption"] == expected.caption
    assert out["caption"] == expected.text
    assert "speech" not in out
    assert not any(models_dir.iterdir()), "--backend torch wrote into the models directory"


BAD_PREDICTIONS = {
    # case: (image key, extra arguments, model: "tiny" or None for the default, words the sentence must contain)
    "corrupt-image": ("corrupt", [], "tiny", ["corrupt.jpg", "damaged"]),
    "2000-character-prefix": ("chelsea", ["--prefix", LONG_PREFIX], "tiny", ["2000", "200"]),
    "missing-default-model": ("chelsea", [], None, [DEFAULT_HUB_MODEL, "not on this computer", "internet"]),
    "int8-variant": ("chelsea", ["--variant", "int8"], "tiny", ["int8"]),
}


@pytest.mark.parametrize("case", list(BAD_PREDICTIONS))
def test_cli_bad_input_exits_2_with_a_sentence(case, cli_env, files, cli_models_dir, tiny_blip_dir, models_dir):
    image, extra, model, words = BAD_PREDICTIONS[case]
    args = ["predict", "caption", "--image", files[image], "--device", "cpu", *extra]
    if model == "tiny":
        args += ["--model", tiny_blip_dir, "--models-dir", cli_models_dir, "--backend", "onnx"]
    else:
        args += ["--models-dir", models_dir]
    assert_plain_sentence(error_sentence(studio(cli_env, *args)), *words)


def test_cli_export_caption_writes_a_verified_manifest(cli_env, tiny_blip_dir, tmp_path, photos):
    import onnxruntime as ort
    import torch
    from transformers import BlipForConditionalGeneration, BlipProcessor

    copy = shutil.copytree(tiny_blip_dir, tmp_path / "my-blip")
    out_dir = tmp_path / "out"
    printed = stdout_json(studio(cli_env, "export", "caption", "--model", copy, "--out", out_dir))
    directory, manifest = read_verified_export(
        printed, out_dir, "caption", "blip", copy, {"image_encoder", "text_decoder"}
    )
    assert manifest["variants"] == {}

    # What the manifest claims holds on its own: the exported image encoder gives PyTorch's vision features.
    model = BlipForConditionalGeneration.from_pretrained(str(copy)).eval()
    pixels = BlipProcessor.from_pretrained(str(copy)).image_processor(images=list(photos.values()), return_tensors="np")
    pixels = pixels["pixel_values"].astype(np.float32)
    with torch.no_grad():
        expected = model.vision_model(pixel_values=torch.from_numpy(pixels)).last_hidden_state.numpy()
    session = ort.InferenceSession(str(directory / "image_encoder.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(["image_embeds"], {"pixel_values": pixels})
    np.testing.assert_allclose(got, expected, atol=manifest["graphs"]["image_encoder"]["tolerance"]["atol"])


def test_cli_export_caption_int8_is_refused_before_exporting(cli_env, tiny_blip_dir, tmp_path):
    """Captioning has no int8 variant: said at once, with nothing exported (an export takes minutes for real BLIP)."""
    out_dir = tmp_path / "out"
    proc = studio(cli_env, "export", "caption", "--model", tiny_blip_dir, "--out", out_dir, "--quantize", "int8")
    assert_plain_sentence(error_sentence(proc), "int8")
    assert not list(out_dir.glob("caption/*")), sorted(map(str, out_dir.rglob("*")))
