"""Hearing sounds: our features equal transformers' extractors, our scores equal transformers' models on the same tiny
random weights (ONNX and PyTorch), and every kind of bad or unusual recording gets a sentence or the right samples.
(How long recordings are streamed in windows is tested in test_media_audio.py.)

References are independent of our code: transformers' ASTFeatureExtractor / ClapFeatureExtractor and models, and
`studio.media.audio.load_audio` (whole-file decoding, tested against scipy and ffmpeg in test_media_audio.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from studio.media.audio import (
    BadAudioError,
    EmptyAudioError,
    NoSoundTrackError,
    RecordingTooShortError,
    SilentRecordingError,
    UnreadableAudioError,
    load_audio,
    sound_windows,
)
from studio.media.sound_features import AstFeatures, ClapFeatures
from tests.helpers import assert_plain_sentence

LABELS = "dog barking, door knock, applause, speech"


@pytest.fixture(scope="module")
def ast_tasks(tiny_ast_dir, sound_exports_dir):
    from studio.tasks.sound_events import SoundEventsTask

    return {
        b: SoundEventsTask.load(str(tiny_ast_dir), sound_exports_dir, backend=b, device="cpu")
        for b in ("onnx", "torch")
    }


@pytest.fixture(scope="module")
def clap_tasks(tiny_clap_dir, sound_exports_dir):
    from studio.tasks.sound_events import SoundEventsTask

    return {
        b: SoundEventsTask.load(str(tiny_clap_dir), sound_exports_dir, backend=b, device="cpu")
        for b in ("onnx", "torch")
    }


# Features -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["speech", "knocks", "long"])
def test_ast_features_equal_transformers(sounds, tiny_ast_dir, name):
    from transformers import ASTFeatureExtractor

    theirs = ASTFeatureExtractor.from_pretrained(str(tiny_ast_dir))
    ours = AstFeatures.from_dir(tiny_ast_dir)
    samples = load_audio(sounds[name], 16000, None).samples
    for piece in (samples, samples[: ours.window_samples // 3], samples[:400]):  # longer, shorter than a window
        expected = theirs(piece, sampling_rate=16000, return_tensors="np")["input_values"][0]
        np.testing.assert_allclose(ours(piece), expected, atol=1e-5)
    # And at the full-size model's settings: 128 mel bins, 1024 frames.
    full = ASTFeatureExtractor()
    np.testing.assert_allclose(
        AstFeatures()(samples), full(samples, sampling_rate=16000, return_tensors="np")["input_values"][0], atol=1e-5
    )


@pytest.mark.parametrize("truncation", ["rand_trunc", "fusion"])
def test_clap_features_equal_transformers(sounds, truncation):
    from transformers import ClapFeatureExtractor

    settings = dict(feature_size=64, frequency_min=50, frequency_max=14000, truncation=truncation)
    theirs = ClapFeatureExtractor(**settings)
    ours = ClapFeatures(**settings)
    samples = load_audio(sounds["long"], 48000, None).samples
    for piece in (samples, samples[:30000], samples[: ours.window_samples]):  # repeat-padded, and a full window
        expected = theirs(piece, sampling_rate=48000, return_tensors="np")["input_features"][0]
        np.testing.assert_allclose(ours(piece), expected, atol=1e-4)


# Scores against transformers' models ----------------------------------------------------------------------------


def test_ast_scores_equal_transformers_per_window(ast_tasks, tiny_ast_dir, sounds):
    """Each window of a long recording: sigmoid(logits) of transformers' AST on the same window's samples."""
    import torch
    from transformers import ASTFeatureExtractor, ASTForAudioClassification

    model = ASTForAudioClassification.from_pretrained(str(tiny_ast_dir)).eval()
    extractor = ASTFeatureExtractor.from_pretrained(str(tiny_ast_dir))
    windows = list(sound_windows(sounds["long"], 16000, AstFeatures.from_dir(tiny_ast_dir).window_samples))
    assert len(windows) >= 6
    with torch.inference_mode():
        inputs = extractor([w.samples for w in windows], sampling_rate=16000, return_tensors="pt")
        expected = torch.sigmoid(model(**inputs).logits).numpy()
    for backend, task in ast_tasks.items():
        result = task(sounds["long"])
        assert [w.start_s for w in result.windows] == pytest.approx([w.start_s for w in windows])
        got = np.stack([w.scores for w in result.windows])
        np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=backend)
        assert result.labels == tuple(model.config.id2label[i] for i in range(model.config.num_labels))
    assert ast_tasks["onnx"].runtime.engine == "ONNX Runtime" and ast_tasks["torch"].runtime.engine == "PyTorch"
    # Different sounds are heard differently (the test could not tell a broken model apart otherwise).
    assert np.abs(expected[0] - expected[3]).max() > 0.01


def test_clap_scores_equal_transformers(clap_tasks, tiny_clap_dir, sounds):
    """CLAP's zero-shot scores: softmax of transformers' logits_per_audio for "This is a sound of {label}."."""
    import torch
    from transformers import ClapModel, ClapProcessor

    model = ClapModel.from_pretrained(str(tiny_clap_dir)).eval()
    processor = ClapProcessor.from_pretrained(str(tiny_clap_dir))
    labels = [x.strip() for x in LABELS.split(",")]
    samples = load_audio(sounds["knocks"], 48000, None).samples[:48000]  # one window (the tiny CLAP hears 1 s)
    with torch.inference_mode():
        inputs = processor(
            text=[f"This is a sound of {label}." for label in labels],
            audio=[samples],
            sampling_rate=48000,
            return_tensors="pt",
            padding=True,
        )
        expected = model(**inputs).logits_per_audio.softmax(-1)[0].numpy()
    for backend, task in clap_tasks.items():
        window = task.score_windows(
            list(sound_windows((48000, samples), 48000, task.window_samples)), task.encode_labels(labels)
        )[0]
        np.testing.assert_allclose(window.scores, expected, atol=1e-5, err_msg=backend)


def test_the_sound_exports_say_they_were_checked_on_synthesized_sounds(sound_exports_dir):
    """Not on the example photos (each graph's parity within its tolerance: test_families.py)."""
    import json

    manifests = [json.loads(p.read_text()) for p in sound_exports_dir.glob("av-events/*/manifest.json")]
    assert {m["family"] for m in manifests} == {"ast", "clap"}
    for m in manifests:
        assert "synthesized sounds" in m["parity_inputs"]


def test_ast_int8_variant_stays_close(tiny_ast_dir, sound_exports_dir, tmp_path, sounds):
    import shutil

    from studio.export.quantize import quantize_export
    from studio.tasks.sound_events import SoundEventsTask

    models_dir = shutil.copytree(sound_exports_dir, tmp_path / "exported")
    directory = next((models_dir / "av-events").glob("tiny-ast-*"))
    entry = quantize_export(directory)
    assert entry["graphs"]["audio_classifier"]["cosine_to_fp32_min"] >= 0.99
    task = SoundEventsTask.load(str(tiny_ast_dir), models_dir, backend="onnx", device="cpu", variant="int8")
    assert task.runtime.variant == "int8"
    assert task(sounds["speech"]).windows[0].scores.shape == (12,)


# Bad and unusual recordings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("silence", SilentRecordingError, ("silent",)),
        ("short", RecordingTooShortError, ("0.1 seconds",)),
        ("corrupt", UnreadableAudioError, ("broken.mp3",)),
        ("text", UnreadableAudioError, ("text",)),
        ("empty", EmptyAudioError, ("empty",)),
        ("video_no_sound", NoSoundTrackError, ("no sound track",)),
    ],
)
def test_bad_recordings_get_a_sentence(ast_tasks, sounds, name, error, words):
    with pytest.raises(error) as caught:
        ast_tasks["onnx"](sounds[name])
    assert isinstance(caught.value, BadAudioError)
    assert_plain_sentence(str(caught.value), *words)


def test_clap_needs_labels(clap_tasks, sounds):
    from studio.errors import BadLabelsError

    with pytest.raises(BadLabelsError) as caught:
        clap_tasks["onnx"](sounds["speech"], "")
    assert_plain_sentence(str(caught.value), "dog barking")


def test_silent_windows_are_not_sent_to_the_model(ast_tasks, sounds, tmp_path):
    """Sound, then silence: the silent windows are reported as silence, with no scores."""
    from tests.inputs import sox

    path = tmp_path / "then-quiet.wav"
    sox(sounds["speech"], path, "pad", "0", "4")
    result = ast_tasks["onnx"](path)
    assert not result.windows[0].silent and result.windows[0].scores is not None
    assert result.windows[-1].silent and result.windows[-1].scores is None
    assert result.events()[-1]["labels"] == [] and result.events()[-1]["silent"] is True
    summary = result.summary(3)
    assert summary[0]["windows"] >= 1 and summary[0]["first_s"] == 0.0


def test_rolling_listener_hears_the_last_seconds(ast_tasks, sounds):
    """Chunks from a file, as a microphone delivers them: every second, the last window is scored as the task scores
    those very samples."""
    from studio.tasks.sound_events import RollingListener, file_chunks, listen

    task = ast_tasks["onnx"]
    listener = RollingListener(task, None, window_s=1.0, every_s=0.5)
    events = list(listen(file_chunks(sounds["long"], chunk_s=0.1), listener))
    whole = load_audio(sounds["long"], 16000, None).samples
    assert len(events) == int(len(whole) / 8000)
    for event in events[:3] + events[-2:]:
        start, end = round(event["start_s"] * 16000), round(event["end_s"] * 16000)
        assert end - start <= 16000
        expected = task.listen_window(whole[start:end], None).top(task.model_labels)
        assert [e["label"] for e in event["labels"]] == [e["label"] for e in expected]
        assert [e["score"] for e in event["labels"]] == pytest.approx([e["score"] for e in expected], abs=1e-4)
