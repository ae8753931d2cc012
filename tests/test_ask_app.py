"""The Ask tab through its HTTP API (gradio_client), and `studio predict vqa|speech-to-text` / `studio export vqa`.

The tiny models have random weights, so nothing here expects particular words: every answer is compared with
`VqaTask` run directly on the same weights (the `vqa_reference` fixture) and every transcript with `TranscribeTask`
(the `transcriber` fixture). Bad input must give one plain sentence, shown in the tab's live region and as a warning,
and the app must keep serving.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file

from studio.tasks.vqa import MAX_QUESTION_CHARS
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

DEFAULT_HUB_MODEL = "dandelin/vilt-b32-finetuned-vqa"  # the registry's VQA model; not on this machine
QUESTION = "what is on the table?"
LONG_QUESTION = " ".join(["cat"] * 500) + "s"  # 2,000 characters
PHOTO_NAMES = ("astronaut", "chelsea", "coffee")
HEARD = re.compile(r"Heard: “(.+)”\. Check the question, then press Ask or Enter\.")


# Fixtures ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(ask_app) -> Client:
    return Client(ask_app[0], verbose=False)


@pytest.fixture(scope="module")
def app_models_dir(ask_app) -> Path:
    return ask_app[1]


@pytest.fixture(scope="module")
def files(
    tmp_path_factory, photos, spoken_question_wav, tiny_vilt_dir, tiny_blip_vqa_dir, tiny_blip_dir, tiny_whisper_dir
) -> dict:
    """Photos and recordings as files, files that are not usable, and the model folders the tests pick."""
    d = tmp_path_factory.mktemp("ask-files")
    out = write_test_files(d, photos, "corrupt")
    out["question"] = spoken_question_wav
    out["silence"] = d / "silence.wav"  # two seconds of digital silence, as a muted microphone records
    subprocess.run(
        ["sox", "-n", "-r", "16000", "-b", "16", "-c", "1", str(out["silence"]), "trim", "0", "2"], check=True
    )
    out["short"] = d / "short.wav"  # 0.1 s of the spoken question: a tap on the record button
    subprocess.run(["sox", str(spoken_question_wav), str(out["short"]), "trim", "0.3", "0.1"], check=True)
    out["text"] = d / "notes.wav"
    out["text"].write_text("shopping list: milk, eggs, coffee\n")
    out["vilt"], out["blip"], out["caption-blip"] = tiny_vilt_dir, tiny_blip_vqa_dir, tiny_blip_dir
    out["whisper"] = tiny_whisper_dir
    return out


# Helpers ----------------------------------------------------------------------------------------------------------


def ask(
    client,
    image,
    question,
    model,
    backend="onnx",
    device="cpu",
    describe_people=False,
    speak=False,
    source="server",
    wpm=175,
    voice="en-us",
    can_speak=False,
):
    """Calls /ask; returns its six outputs and the toasts."""
    job = client.submit(
        handle_file(str(image)) if image is not None else None,
        question,
        describe_people,
        str(model),
        backend,
        device,
        speak,
        source,
        wpm,
        voice,
        can_speak,
        api_name="/ask",
    )
    return outputs_and_toasts(job)


def transcribe(client, recording, model, device="cpu"):
    """Calls /transcribe; returns (question text, heard HTML) and the toasts."""
    job = client.submit(handle_file(str(recording)) if recording else None, str(model), device, api_name="/transcribe")
    return outputs_and_toasts(job)


def assert_answered(outputs, expected) -> None:
    """The /ask outputs show `expected` (a VqaResult): scores, live region, timing and the counted spoken text."""
    label, announce, _, timing, _, said = outputs
    assert label["label"] == expected.answers[0]["answer"]
    shown = [(c["label"], c["confidence"]) for c in label["confidences"]]
    assert [a for a, _ in shown] == [a["answer"] for a in expected.answers]
    assert [s for _, s in shown] == pytest.approx([a["score"] for a in expected.answers], abs=1e-9)
    assert text_of(announce) == expected.text
    assert 'role="status"' in announce and 'aria-live="polite"' in announce and "studio-problem" not in announce
    assert re.fullmatch(r"Took \d+ ms", timing), timing
    count, text = said.split("|", 1)
    assert count.isdigit() and text == expected.text


def assert_problem(region_html: str, toasts, *words) -> str:
    """A problem sentence in a live region, and not also as a toast (said once); returns the sentence."""
    sentence = text_of(region_html)
    assert_plain_sentence(sentence, *words)
    assert 'role="status"' in region_html and "studio-problem" in region_html  # read as a problem, not a result
    assert not [t for t in toasts if t[0] == sentence], toasts  # one announcement per message
    return sentence


def assert_still_asking(client, files, vqa_reference) -> None:
    outputs, toasts = ask(client, files["chelsea"], QUESTION, files["vilt"])
    assert_answered(outputs, vqa_reference(files["chelsea"], QUESTION))
    assert not [t for t in toasts if t[1] == "warning"], toasts


# /ask matches VqaTask ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "backend", "engine"),
    [("vilt", "onnx", "ONNX Runtime"), ("vilt", "torch", "PyTorch"), ("blip", "onnx", "ONNX Runtime")],
    ids=["vilt-onnx", "vilt-torch", "blip-onnx"],
)
def test_ask_matches_task(model, backend, engine, client, files, vqa_reference):
    answers = set()
    for name, question in zip(PHOTO_NAMES, (QUESTION, "what color is the cat?", QUESTION)):
        outputs, toasts = ask(client, files[name], question, files[model], backend=backend)
        expected = vqa_reference(files[name], question, model=model, backend=backend)
        assert_answered(outputs, expected)
        assert outputs[4] == f"**Runs on:** {engine} · CPU"
        assert outputs[2] is None  # speech off: no sound file
        assert not toasts, toasts
        answers.add(tuple(a["answer"] for a in expected.answers))
    if model == "vilt":
        assert len(answers) > 1, "every photo got the same answers: agreeing with VqaTask would prove little"


@pytest.mark.skipif(HAS_GPU, reason="this machine has an NVIDIA GPU, so there is no CUDA fallback to report")
def test_auto_device_says_cuda_unavailable(client, files, vqa_reference):
    outputs, _ = ask(client, files["coffee"], QUESTION, files["vilt"], backend="auto", device="auto")
    assert_answered(outputs, vqa_reference(files["coffee"], QUESTION))
    badge = outputs[4]
    assert badge.startswith("**Runs on:** ONNX Runtime · CPU (CUDA unavailable:"), badge
    assert badge.split("CUDA unavailable:", 1)[1].strip(" )"), badge  # and why


def test_describe_people_reaches_the_task(client, files, young_vilt_dir, vqa_reference):
    """With a model whose answers all speak of young people, only "Describe people's age and looks" keeps "young"."""
    said = {}
    for describe_people in (False, True):
        outputs, _ = ask(
            client, files["astronaut"], "who is this?", young_vilt_dir, backend="torch", describe_people=describe_people
        )
        expected = vqa_reference(files["astronaut"], "who is this?", "young", "torch", describe_people=describe_people)
        assert_answered(outputs, expected)
        said[describe_people] = text_of(outputs[1]).lower()
    assert "young" in said[True] and "young" not in said[False], said


def test_answers_list_leaves_out_age_and_looks_unless_asked(client, files, young_vilt_dir):
    outputs, _ = ask(client, files["astronaut"], "who is this?", young_vilt_dir, backend="torch")
    label, announce, *_ = outputs
    assert "young" not in text_of(announce).lower()  # the announced answer is phrased
    shown = [label["label"], *(c["label"] for c in label["confidences"])]
    assert not [answer for answer in shown if "young" in answer.lower()], shown


@pytest.mark.parametrize(("source", "can_speak"), [("server", False), ("server", True), ("auto", False)])
def test_server_speech_is_a_wav(source, can_speak, client, files, vqa_reference):
    outputs, _ = ask(client, files["chelsea"], QUESTION, files["vilt"], speak=True, source=source, can_speak=can_speak)
    assert_answered(outputs, vqa_reference(files["chelsea"], QUESTION))
    audio = outputs[2]
    assert isinstance(audio, str) and audio.endswith(".wav"), audio
    assert_speech_wav(audio)


@pytest.mark.parametrize(("source", "can_speak"), [("browser", False), ("auto", True)])
def test_no_server_speech_when_the_browser_speaks(source, can_speak, client, files, vqa_reference):
    outputs, _ = ask(client, files["chelsea"], QUESTION, files["vilt"], speak=True, source=source, can_speak=can_speak)
    assert_answered(outputs, vqa_reference(files["chelsea"], QUESTION))
    assert outputs[2] is None


# /transcribe matches TranscribeTask ------------------------------------------------------------------------------


def test_transcribe_matches_task(client, files, transcriber):
    expected = transcriber(files["question"]).text
    (question, heard), toasts = transcribe(client, files["question"], files["whisper"])
    assert question == expected
    match = HEARD.fullmatch(text_of(heard))
    assert match and match.group(1) == expected, text_of(heard)
    assert 'role="status"' in heard and 'aria-live="polite"' in heard and "studio-problem" not in heard
    assert not toasts, toasts


def test_tiny_whisper_transcripts_depend_on_the_recording(transcriber, files, tmp_path):
    from tests.inputs import speak_wav

    other = speak_wav(tmp_path / "other.wav", "how many people are sitting on the bench")
    noise = (16000, (np.random.default_rng(0).normal(0, 0.2, 32000) * 32767).clip(-32768, 32767).astype(np.int16))
    texts = {transcriber(recording).text for recording in (files["question"], other, noise)}
    assert len(texts) > 1, texts


# Bad input: a sentence, and the app keeps serving ------------------------------------------------------------------

BAD_QUESTIONS = {
    # case: (image key or None, question, model key or hub id, words the sentence must contain)
    "no-picture": (None, QUESTION, "vilt", ["no picture"]),
    "empty-question": ("chelsea", "   ", "vilt", ["question"]),
    "2000-character-question": ("chelsea", LONG_QUESTION, "vilt", ["2000 characters", str(MAX_QUESTION_CHARS)]),
    "corrupt-jpeg": ("corrupt", QUESTION, "vilt", ["corrupt.jpg", "damaged"]),
    "missing-hub-model": (
        "chelsea",
        QUESTION,
        DEFAULT_HUB_MODEL,
        [DEFAULT_HUB_MODEL, "not on this computer", "internet"],
    ),
    "caption-model-folder": ("chelsea", QUESTION, "caption-blip", ["blip", "cannot run"]),
}


@pytest.mark.parametrize("case", list(BAD_QUESTIONS))
def test_bad_question_gets_a_sentence_and_the_app_keeps_serving(case, client, files, vqa_reference, app_models_dir):
    image, question, model, words = BAD_QUESTIONS[case]
    outputs, toasts = ask(
        client, files[image] if image else None, question, files.get(model, model), backend="auto", device="cpu"
    )
    label, announce, audio, timing, badge, said = outputs
    assert_problem(announce, toasts, *words)
    assert [label, timing, badge, said] == [SKIPPED] * 4  # no answer shown or spoken for it
    assert audio in (SKIPPED, None), audio
    assert not (app_models_dir / DEFAULT_HUB_MODEL).exists()  # nothing half-downloaded
    assert_still_asking(client, files, vqa_reference)


BAD_RECORDINGS = [
    # (file key or None, words the sentence must contain)
    pytest.param("silence", ["silent", "microphone"], id="silent"),
    pytest.param("short", ["0.1 seconds", "at least a second"], id="0.1-seconds"),
    pytest.param(
        "text",
        ["notes.wav", "not a sound"],
        id="text-file",
    ),
    pytest.param(None, ["nothing was recorded"], id="no-recording"),
]


@pytest.mark.parametrize(("key", "words"), BAD_RECORDINGS)
def test_bad_recording_gets_a_sentence_and_the_app_keeps_serving(key, words, client, files, transcriber):
    (question, heard), toasts = transcribe(client, files[key] if key else None, files["whisper"])
    assert_problem(heard, toasts, *words)
    assert question == SKIPPED  # the question box keeps what the user typed
    (question, heard), _ = transcribe(client, files["question"], files["whisper"])
    assert question == transcriber(files["question"]).text
    assert HEARD.fullmatch(text_of(heard)), text_of(heard)


# Model state -------------------------------------------------------------------------------------------------------


def test_model_state_of_missing_default_model(client, app_models_dir):
    state = client.predict(DEFAULT_HUB_MODEL, api_name="/ask_model_state")
    assert_missing_model_state(state, app_models_dir, DEFAULT_HUB_MODEL)


@pytest.mark.parametrize("model", ["vilt", "blip"])
def test_model_state_of_exported_tiny_folders(model, client, files):
    state = client.predict(str(files[model]), api_name="/ask_model_state")
    assert "local folder" in state and "exported to ONNX (fp32)" in state
    assert "missing" not in state


def test_speech_model_state_of_tiny_folder(client, files):
    state = client.predict(str(files["whisper"]), api_name="/stt_model_state")
    assert "local folder" in state
    assert "missing" not in state and "exported" not in state  # Whisper runs with PyTorch: nothing to export


# Command line -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_models_dir(tmp_path_factory, vqa_exports_dir) -> Path:
    """A copy of the shared VQA exports, for commands that might write."""
    return shutil.copytree(vqa_exports_dir, tmp_path_factory.mktemp("ask-cli-models") / "exported")


def vqa_args(files, cli_models_dir, *extra) -> list:
    return [
        *("predict", "vqa", "--image", files["coffee"], "--model", files["vilt"]),
        *("--models-dir", cli_models_dir, "--backend", "onnx", "--device", "cpu", *extra),
    ]


def assert_same_answers(out: dict, expected) -> None:
    assert [a["answer"] for a in out["answers"]] == [a["answer"] for a in expected.answers]
    assert [a["score"] for a in out["answers"]] == pytest.approx([a["score"] for a in expected.answers], abs=1e-9)
    assert out["answer"] == expected.text


def test_cli_predict_vqa_equals_task(cli_env, files, cli_models_dir, vqa_reference):
    out = stdout_json(studio(cli_env, *vqa_args(files, cli_models_dir, "--question", QUESTION)))
    assert {"task", "model", "backend", "provider", "answers", "answer", "latency_ms"} <= set(out)
    assert out["task"] == "vqa"
    assert out["model"] == str(files["vilt"])
    assert out["backend"] == "onnx" and out["provider"] == "CPUExecutionProvider"
    assert out["runtime"]["engine"] == "ONNX Runtime" and out["runtime"]["fallback_reason"] is None
    assert isinstance(out["latency_ms"], (int, float)) and out["latency_ms"] > 0
    assert out["question"] == QUESTION
    assert_same_answers(out, vqa_reference(files["coffee"], QUESTION))
    assert "heard" not in out and out["notices"] == []


def test_cli_predict_vqa_with_a_spoken_question(cli_env, files, cli_models_dir, vqa_reference, transcriber):
    args = vqa_args(files, cli_models_dir, "--question-audio", files["question"], "--stt-model", files["whisper"])
    out = stdout_json(studio(cli_env, *args))
    heard = transcriber(files["question"])
    assert out["heard"]["text"] == heard.text
    assert out["heard"]["duration_s"] == pytest.approx(heard.duration_s, abs=1e-3)
    assert out["question"] == " ".join(heard.text.split())
    assert_same_answers(out, vqa_reference(files["coffee"], heard.text))


def test_cli_predict_speech_to_text_equals_task(cli_env, files, transcriber, models_dir):
    args = ["predict", "speech-to-text", "--audio", files["question"], "--model", files["whisper"]]
    out = stdout_json(studio(cli_env, *args, "--device", "cpu", "--models-dir", models_dir))
    assert out["task"] == "speech-to-text" and out["model"] == str(files["whisper"])
    assert out["backend"] == "torch" and out["provider"] == "cpu"
    assert out["text"] == transcriber(files["question"]).text
    assert out["windows"] == 1 and out["tokens"] > 0
    assert not any(models_dir.iterdir()), "speech to text wrote into the models directory"


BAD_PREDICTIONS = {
    # case: (arguments after the image's, model: "vilt" or None for the default, words the sentence must contain)
    "empty-question": (["--question", ""], "vilt", ["question"]),
    "2000-character-question": (["--question", LONG_QUESTION], "vilt", ["2000 characters", str(MAX_QUESTION_CHARS)]),
    "silent-spoken-question": (["--question-audio", "silence", "--stt-model", "whisper"], "vilt", ["silent"]),
    "missing-default-model": (["--question", QUESTION], None, [DEFAULT_HUB_MODEL, "not on this computer"]),
    "int8-variant": (["--question", QUESTION, "--variant", "int8"], "vilt", ["int8"]),
}


@pytest.mark.parametrize("case", list(BAD_PREDICTIONS))
def test_cli_bad_input_exits_2_with_a_sentence(case, cli_env, files, cli_models_dir, models_dir):
    extra, model, words = BAD_PREDICTIONS[case]
    extra = [files.get(arg, arg) for arg in extra]
    args = ["predict", "vqa", "--image", files["chelsea"], "--device", "cpu", *extra]
    if model:
        args += ["--model", files[model], "--models-dir", cli_models_dir, "--backend", "onnx"]
    else:
        args += ["--models-dir", models_dir]
    assert_plain_sentence(error_sentence(studio(cli_env, *args)), *words)


def test_cli_silent_recording_exits_2_with_a_sentence(cli_env, files):
    proc = studio(cli_env, "predict", "speech-to-text", "--audio", files["silence"], "--model", files["whisper"])
    assert_plain_sentence(error_sentence(proc), "silent")


def test_cli_export_vqa_writes_a_verified_manifest(cli_env, tiny_blip_vqa_dir, tmp_path, photos):
    import onnxruntime as ort
    import torch
    from transformers import BlipForQuestionAnswering, BlipProcessor

    copy = shutil.copytree(tiny_blip_vqa_dir, tmp_path / "my-blip-vqa")
    out_dir = tmp_path / "out"
    printed = stdout_json(studio(cli_env, "export", "vqa", "--model", copy, "--out", out_dir))
    graphs = {"image_encoder", "question_encoder", "text_decoder"}
    directory, manifest = read_verified_export(printed, out_dir, "vqa", "blip_vqa", copy, graphs)

    # What the manifest claims holds on its own: the exported question encoder reads a question about a photo as
    # BLIP's own text encoder does.
    model = BlipForQuestionAnswering.from_pretrained(str(copy)).eval()
    inputs = BlipProcessor.from_pretrained(str(copy))(images=photos["coffee"], text=QUESTION, return_tensors="pt")
    with torch.no_grad():
        image = model.vision_model(pixel_values=inputs["pixel_values"]).last_hidden_state
        expected = model.text_encoder(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], encoder_hidden_states=image
        ).last_hidden_state.numpy()
    session = ort.InferenceSession(str(directory / "question_encoder.onnx"), providers=["CPUExecutionProvider"])
    feed = {
        "input_ids": inputs["input_ids"].numpy(),
        "attention_mask": inputs["attention_mask"].numpy(),
        "image_embeds": image.numpy(),
    }
    (got,) = session.run(["question_embeds"], feed)
    np.testing.assert_allclose(got, expected, atol=manifest["graphs"]["question_encoder"]["tolerance"]["atol"])


def test_cli_export_speech_to_text_is_refused(cli_env, files, tmp_path):
    out_dir = tmp_path / "out"
    proc = studio(cli_env, "export", "speech-to-text", "--model", files["whisper"], "--out", out_dir)
    assert_plain_sentence(error_sentence(proc), "PyTorch only")
    assert not list(out_dir.glob("speech-to-text/*")), sorted(map(str, out_dir.rglob("*")))
