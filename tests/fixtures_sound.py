"""Fixtures of the Sound & scene tab's tests: tiny random AST and CLAP models, their ONNX exports, real sounds and
videos made with sox, espeak-ng and ffmpeg, and the launched app (tests/conftest.py imports them all)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.tiny_sound import make_tiny_ast, make_tiny_clap, sox, write_roberta_vocab
from tests.tiny_whisper import ffmpeg, speak_wav


@pytest.fixture(scope="session")
def roberta_vocab_dir(tmp_path_factory) -> Path:
    """RoBERTa's tokenizer files, from GPT-2's BPE (see tests/tiny_sound.py)."""
    return write_roberta_vocab(tmp_path_factory.mktemp("roberta-vocab"))


@pytest.fixture(scope="session")
def tiny_ast_dir(tmp_path_factory) -> Path:
    """A tiny random ASTForAudioClassification with a dozen AudioSet labels and its feature extractor."""
    return make_tiny_ast(tmp_path_factory.mktemp("models") / "tiny-ast")


@pytest.fixture(scope="session")
def tiny_clap_dir(tmp_path_factory, roberta_vocab_dir) -> Path:
    """A tiny random unfused ClapModel with a RoBERTa tokenizer and its feature extractor."""
    return make_tiny_clap(tmp_path_factory.mktemp("models") / "tiny-clap", roberta_vocab_dir)


@pytest.fixture(scope="session")
def sound_exports_dir(tmp_path_factory, tiny_ast_dir, tiny_clap_dir) -> Path:
    """A models directory holding the ONNX exports of the tiny AST and the tiny CLAP, shared by read-only tests."""
    from studio.export.exporter import export_model
    from studio.sources import resolve

    models_dir = tmp_path_factory.mktemp("exported-sound")
    for model_dir in (tiny_ast_dir, tiny_clap_dir):
        export_model(resolve(str(model_dir), "av-events", models_dir), models_dir)
    return models_dir


@pytest.fixture(scope="session")
def sounds(tmp_path_factory) -> dict[str, Path]:
    """Real recordings and videos, and files that are no usable sound.

    speech (espeak-ng, mono 16-bit 22050 Hz), knocks (sox: five knocks, 44.1 kHz), tone_stereo (two tones, 44.1 kHz
    stereo), six_channels (96 kHz, 24-bit, 6 channels), speech_8k, speech as flac/ogg/mp3, long (speech, tones and
    knocks, about 12 s), silence (3 s of digital silence), short (0.1 s), corrupt (an .mp3 of noise bytes), text (a
    shopping list named .wav), empty, video (pictures and the speech), video_no_sound.
    """
    d = tmp_path_factory.mktemp("sounds")
    out = {"speech": speak_wav(d / "speech.wav", "the dog is barking at the door")}
    sox("-n", "-r", "44100", "-b", "16", d / "knock1.wav", "synth", "0.04", "sine", "180", "fade", "0", "0.04", "0.03")
    sox(d / "knock1.wav", d / "knocks.wav", "pad", "0", "0.3", "repeat", "4")
    out["knocks"] = d / "knocks.wav"
    out["tone_stereo"] = d / "tone-stereo.wav"
    sox("-n", "-r", "44100", "-c", "2", "-b", "16", out["tone_stereo"], "synth", "3", "sine", "440", "sine", "660")
    out["six_channels"] = d / "six-channels.wav"
    sox("-n", "-r", "96000", "-c", "6", "-b", "24", out["six_channels"], "synth", "2", "sine", "300", "sine", "500")
    out["speech_8k"] = d / "speech-8k.wav"
    sox(out["speech"], "-r", "8000", out["speech_8k"])
    for suffix, codec in ((".flac", "flac"), (".ogg", "libvorbis"), (".mp3", "libmp3lame")):
        out[f"speech{suffix}"] = d / f"speech{suffix}"
        ffmpeg(["-i", str(out["speech"]), "-c:a", codec, str(out[f"speech{suffix}"])])
    tone = d / "tone-mono.wav"
    sox("-n", "-r", "22050", "-b", "16", tone, "synth", "3", "sine", "440:880")
    knocks = d / "knocks-22k.wav"
    sox(out["knocks"], "-r", "22050", knocks)
    out["long"] = d / "long.wav"
    sox(out["speech"], tone, knocks, out["speech"], out["long"])
    out["silence"] = d / "silence.wav"
    sox("-n", "-r", "16000", "-b", "16", out["silence"], "trim", "0", "3")
    out["short"] = d / "short.wav"
    sox("-n", "-r", "16000", "-b", "16", out["short"], "synth", "0.1", "sine", "440")
    out["corrupt"] = d / "broken.mp3"
    out["corrupt"].write_bytes(bytes(np.random.default_rng(0).integers(128, 256, 4000, dtype=np.uint8)))
    out["text"] = d / "notes.wav"
    out["text"].write_text("shopping list: milk, eggs, coffee\n")
    out["empty"] = d / "empty.ogg"
    out["empty"].write_bytes(b"")
    out["video"] = d / "clip.mp4"
    picture = ["-f", "lavfi", "-i", "testsrc=size=96x64:rate=10"]
    ffmpeg([*picture, "-i", str(out["speech"]), "-shortest", "-pix_fmt", "yuv420p", "-c:a", "aac", str(out["video"])])
    out["video_no_sound"] = d / "silent-film.mp4"
    ffmpeg([*picture, "-t", "2", "-pix_fmt", "yuv420p", str(out["video_no_sound"])])
    return out


@pytest.fixture(scope="module")
def sound_app(tmp_path_factory, sound_exports_dir, tiny_ast_dir, tiny_clip_dir):
    """The real app (`launched_app`) with the tiny AST and the tiny CLIP preselected, on a copy of the sound exports.

    Yields:
        (base URL, models directory)
    """
    from tests.conftest import launched_app

    models = {"av-events": tiny_ast_dir, "zero-shot": tiny_clip_dir}
    yield from launched_app(tmp_path_factory, "sound-app-models", sound_exports_dir, models)
