"""The Ask tab's spoken questions: speech to text on a tiny random Whisper with the real tiny.en tokenizer, where our
task agrees with transformers.

The weights are random, so no transcript is fixed in advance: our features, token ids and text must equal what
transformers' own WhisperProcessor, `generate()` and ASR pipeline give for the same model and recording.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from studio.errors import ModelUnavailableError, StudioError
from studio.media.audio import BadAudioError, RecordingTooShortError, SilentRecordingError
from studio.tasks.transcribe import NOTHING_HEARD, NoWordsError, TranscribeTask, split_into_windows
from tests.inputs import ffmpeg_decode, speak_wav

RATE = 16000


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    return speak_wav(tmp_path_factory.mktemp("speech") / "question.wav")


@pytest.fixture(scope="module")
def task(tiny_whisper_dir, tmp_path_factory) -> TranscribeTask:
    return TranscribeTask.load(str(tiny_whisper_dir), tmp_path_factory.mktemp("exported"), backend="auto", device="cpu")


@pytest.fixture(scope="module")
def reference(tiny_whisper_dir):
    """transformers' own WhisperProcessor and model on the same folder."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    processor = WhisperProcessor.from_pretrained(str(tiny_whisper_dir))
    model = WhisperForConditionalGeneration.from_pretrained(str(tiny_whisper_dir)).eval()
    return processor, model


def test_runs_with_pytorch_on_the_cpu(task):
    assert task.runtime.label == "PyTorch · CPU"
    assert task.runtime.engine == "PyTorch" and task.runtime.device == "CPU"
    assert task.graphs.notices == []  # PyTorch is the only way for Whisper: not a fallback worth a notice
    assert task.sampling_rate == RATE


def test_features_equal_the_feature_extractor(task, reference, speech_wav):
    processor, _ = reference
    with wave.open(str(speech_wav)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0
        assert w.getframerate() == 22050
    # Our decoding (int16 scaling, mono, resampling) against the stdlib reader and scipy, through WhisperProcessor.
    expected = processor(resample_poly(samples, 320, 441), sampling_rate=RATE, return_tensors="np").input_features
    ours = task.preprocess(speech_wav)
    assert ours.shape == (1, 80, 3000) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=1e-4)
    # Gradio's microphone gives (rate, int16 array (n, channels)): the same recording in stereo gives the same features.
    stereo = np.repeat((samples * 32768).astype(np.int16)[:, None], 2, axis=1)
    np.testing.assert_allclose(task.preprocess((22050, stereo)), expected, atol=1e-4)
    # ffmpeg's resampler is a different filter: the same features up to its small differences.
    from_ffmpeg = processor(ffmpeg_decode(speech_wav, RATE), sampling_rate=RATE, return_tensors="np").input_features
    assert np.abs(ours - from_ffmpeg).mean() < 0.01


def test_transcript_equals_generate(task, reference, speech_wav):
    import torch

    processor, model = reference
    waveform = task.waveform(speech_wav)
    features = processor(waveform.samples, sampling_rate=RATE, return_tensors="pt").input_features
    with torch.no_grad():
        expected_ids = model.generate(features)
    expected_text = processor.batch_decode(expected_ids, skip_special_tokens=True)[0].strip()
    assert expected_text, "the tiny model wrote no words for this seed: pick another seed in make_tiny_whisper"

    ids = task.forward(task.preprocess(speech_wav))
    np.testing.assert_array_equal(ids, expected_ids.numpy())
    result = task(speech_wav)
    assert result.text == expected_text
    assert result.windows == 1 and result.duration_s == pytest.approx(waveform.duration_s)
    assert result.token_ids == expected_ids[0].tolist()
    assert result.latency_ms > 0 and result.as_dict()["text"] == expected_text


def test_transcript_equals_the_asr_pipeline(task, tiny_whisper_dir, speech_wav):
    from transformers import pipeline

    waveform = task.waveform(speech_wav)
    pipe = pipeline("automatic-speech-recognition", model=str(tiny_whisper_dir), device="cpu")
    # The pipeline's own defaults (5 beams, 256 new tokens) would override the model's generation config, which our
    # task follows (greedy, its max_length): ask for the model's settings explicitly.
    config = pipe.model.generation_config
    settings = {"num_beams": config.num_beams, "max_length": config.max_length}
    out = pipe({"raw": waveform.samples, "sampling_rate": RATE}, generate_kwargs=settings)
    assert task(waveform).text == out["text"].strip()


def test_onnx_backend_is_refused_with_a_sentence(tiny_whisper_dir, tmp_path):
    with pytest.raises(StudioError, match="runs with PyTorch only") as raised:
        TranscribeTask.load(str(tiny_whisper_dir), tmp_path, backend="onnx", device="cpu")
    assert "choose PyTorch or Automatic" in str(raised.value)


def test_default_model_not_downloaded_says_so(tmp_path):
    with pytest.raises(ModelUnavailableError, match="openai/whisper-tiny.en is not on this computer"):
        TranscribeTask.load(None, tmp_path, device="cpu")


def test_bad_audio_surfaces_as_sentences(task):
    with pytest.raises(RecordingTooShortError, match="only 0.1 seconds long; speak for at least a second"):
        task((RATE, (np.sin(np.arange(1600) / 3) * 10000).astype(np.int16)))
    with pytest.raises(SilentRecordingError, match="The recording is silent"):
        task((RATE, np.zeros(2 * RATE, np.int16)))
    with pytest.raises(BadAudioError, match="There is no recording yet"):
        task(None)


def test_no_words_is_a_sentence(task, monkeypatch, speech_wav):
    eos = task.tokenizer.eos_token_id

    class Mute:
        """A transcriber that writes only the end of the transcript."""

        def run(self, inputs):
            return {"token_ids": np.full((len(inputs["input_features"]), 3), eos, np.int64)}

    monkeypatch.setitem(task.graphs.graphs, "transcriber", Mute())
    with pytest.raises(NoWordsError) as raised:
        task(speech_wav)
    assert str(raised.value) == NOTHING_HEARD


def test_long_recording_is_cut_in_pauses(task, speech_wav):
    said = task.waveform(speech_wav).samples
    pause = np.zeros(int(0.7 * RATE), np.float32)
    # 40 seconds of the question said again and again with pauses between: more than one 30-second window.
    long = np.tile(np.concatenate([said, pause]), 20)[: 40 * RATE]
    windows = split_into_windows(long, RATE, 30.0)
    assert len(windows) == 2 and len(windows[0]) <= 30 * RATE
    np.testing.assert_array_equal(np.concatenate(windows), long)
    cut = len(windows[0])
    assert np.abs(long[cut - 160 : cut + 160]).max() == 0  # in a pause, not in a word
    result = task((RATE, long))
    assert result.windows == 2 and result.duration_s == pytest.approx(40.0)
    assert task.preprocess((RATE, long)).shape == (2, 80, 3000)


def test_split_into_windows_keeps_short_recordings_whole():
    samples = np.ones(10 * RATE, np.float32)
    assert len(split_into_windows(samples, RATE, 30.0)) == 1
    pieces = split_into_windows(np.ones(65 * RATE, np.float32), RATE, 30.0)
    assert len(pieces) == 3 and all(len(p) <= 30 * RATE for p in pieces)
    assert sum(len(p) for p in pieces) == 65 * RATE
