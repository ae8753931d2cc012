"""Recordings in every form a user can give decode to the same 16 kHz mono samples, and bad ones to sentences; long
recordings are streamed in windows that are the whole recording put together, in bounded memory.

References are independent of `studio.media.audio`: the stdlib `wave` reader with `scipy.signal.resample_poly`, and
ffmpeg's own decoding, mix-down and resampling (`ffmpeg -ac 1 -ar 16000`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from studio.media import audio
from studio.media.audio import (
    AudioNotFoundError,
    BadAudioError,
    EmptyAudioError,
    FfmpegMissingError,
    NoSoundTrackError,
    RecordingTooLongError,
    RecordingTooShortError,
    SilentRecordingError,
    StreamResampler,
    UnreadableAudioError,
    Waveform,
    is_silent,
    load_audio,
    sound_windows,
)
from tests.inputs import ffmpeg, ffmpeg_decode, speak_wav

RATE = 16000
SPEECH_RATE = 22050  # espeak-ng's


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    """|ours - reference| / |reference| over their common length (resamplers may differ by a sample at the end)."""
    assert abs(len(ours) - len(reference)) <= 2, (len(ours), len(reference))
    n = min(len(ours), len(reference))
    return float(np.linalg.norm(ours[:n] - reference[:n]) / np.linalg.norm(reference[:n]))


def write_wav(path: Path, rate: int, samples: np.ndarray) -> Path:
    """16-bit PCM WAV with the stdlib writer; samples int16, shape (n,) or (n, channels)."""
    frames = samples.reshape(len(samples), -1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(frames.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.ascontiguousarray(frames, dtype="<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="module")
def speech_wav(folder) -> Path:
    """ "what colour is the cup" said by espeak-ng: mono 16-bit at 22050 Hz."""
    return speak_wav(folder / "speech.wav")


@pytest.fixture(scope="module")
def speech(speech_wav) -> np.ndarray:
    """The recording's int16 samples, read with the stdlib."""
    with wave.open(str(speech_wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (SPEECH_RATE, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").copy()


@pytest.fixture(scope="module")
def expected(speech) -> np.ndarray:
    """What every form of the recording must decode to: scaled to [-1, 1] and resampled 22050 -> 16000 Hz by scipy."""
    return resample_poly(speech / 32768.0, 320, 441)


def test_wav_decodes_to_scipy_reference(speech_wav, expected):
    waveform = load_audio(speech_wav, RATE)
    assert waveform.rate == RATE and waveform.samples.dtype == np.float32 and waveform.samples.ndim == 1
    assert waveform.duration_s == pytest.approx(len(expected) / RATE)
    np.testing.assert_allclose(waveform.samples, expected, atol=1e-6)
    assert waveform.samples.max() <= 1.0 and waveform.samples.min() >= -1.0


@pytest.mark.parametrize(
    ("suffix", "codec", "lossy"),
    [
        (".flac", "flac", False),
        (".mp3", "libmp3lame", True),
        (".ogg", "libvorbis", True),
        (".webm", "libopus", True),
        (".m4a", "aac", True),
    ],
)
def test_compressed_formats_match_ffmpeg_and_wav(folder, speech_wav, expected, suffix, codec, lossy):
    path = folder / f"speech{suffix}"
    ffmpeg(["-i", str(speech_wav), "-c:a", codec, str(path)])
    ours = load_audio(path, RATE).samples
    # ffmpeg's own mix-down and resampler on the same decoded sound: a different filter, so close, not equal.
    assert relative_error(ours, ffmpeg_decode(path, RATE)) < 0.01
    if lossy:  # the codec changed the sound itself; it must still be the same recording, in time
        n = min(len(ours), len(expected))
        assert abs(len(ours) - len(expected)) < 0.05 * RATE
        assert np.corrcoef(ours[:n], expected[:n])[0, 1] > 0.95
    else:
        np.testing.assert_allclose(ours, expected, atol=1e-6)


@pytest.mark.parametrize("channels", [2, 6])
def test_channels_are_averaged(folder, speech, channels):
    # Each channel different (delayed and scaled), so a decoder that kept one channel would fail.
    frames = np.stack([(np.roll(speech, 50 * k) * (k + 1) // channels) for k in range(channels)], axis=1)
    frames = frames.astype(np.int16)
    mono = resample_poly(frames.astype(np.float64).mean(axis=1) / 32768.0, 320, 441)
    path = write_wav(folder / f"speech-{channels}ch.wav", SPEECH_RATE, frames)
    flac = folder / f"speech-{channels}ch.flac"
    ffmpeg(["-i", str(path), str(flac)])
    # The reference is the plain mean: ffmpeg's own `-ac 1` weights channels by its downmix matrix, so it is no
    # reference here. WAV (read by numpy), FLAC (decoded by ffmpeg), (n, channels) and (channels, n) arrays.
    for source in (path, flac, (SPEECH_RATE, frames), (SPEECH_RATE, frames.T.copy())):
        np.testing.assert_allclose(load_audio(source, RATE).samples, mono, atol=1e-5, err_msg=str(type(source)))


@pytest.mark.parametrize("rate", [8000, 96000])
def test_other_sample_rates(folder, speech, expected, rate):
    at_rate = np.clip(np.round(resample_poly(speech.astype(np.float64), rate, SPEECH_RATE)), -32768, 32767)
    path = write_wav(folder / f"speech-{rate}.wav", rate, at_rate.astype(np.int16))
    ours = load_audio(path, RATE).samples
    g = np.gcd(rate, RATE)
    np.testing.assert_allclose(ours, resample_poly(at_rate / 32768.0, RATE // g, rate // g), atol=1e-6)
    assert relative_error(ours, ffmpeg_decode(path, RATE)) < 0.01
    if rate > RATE:  # nothing below 8 kHz was lost on the way: the same samples as from the 22050 Hz original
        assert relative_error(ours, expected) < 0.005


def test_arrays_tuples_and_bytes_agree(speech, speech_wav, expected):
    as_float = (speech / 32768.0).astype(np.float32)
    sources = {
        "int16": (SPEECH_RATE, speech),
        "int16 (n, 1)": (SPEECH_RATE, speech[:, None]),
        "int32": (SPEECH_RATE, speech.astype(np.int32) << 16),
        "float32": (SPEECH_RATE, as_float),
        "float64": (SPEECH_RATE, as_float.astype(np.float64)),
        "numpy rate": (np.int64(SPEECH_RATE), speech),
        "wav bytes": speech_wav.read_bytes(),
        "path as str": str(speech_wav),
        "waveform": Waveform(as_float, SPEECH_RATE),
    }
    for name, source in sources.items():
        np.testing.assert_allclose(load_audio(source, RATE).samples, expected, atol=1e-6, err_msg=name)
    # 8-bit samples keep 8 bits: the same recording, coarser.
    as_uint8 = ((speech.astype(np.int32) >> 8) + 128).astype(np.uint8)
    assert relative_error(load_audio((SPEECH_RATE, as_uint8), RATE).samples, expected) < 0.05


@pytest.mark.parametrize("codec", ["pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_f64le", "pcm_u8"])
def test_wav_sample_formats(folder, speech_wav, expected, codec):
    path = folder / f"speech-{codec}.wav"
    ffmpeg(["-i", str(speech_wav), "-c:a", codec, str(path)])
    tolerance = 0.05 if codec == "pcm_u8" else 1e-6
    assert relative_error(load_audio(path, RATE).samples, expected) < tolerance


def test_compressed_bytes_and_video_sound(folder, speech_wav, expected):
    mp3 = folder / "bytes.mp3"
    ffmpeg(["-i", str(speech_wav), str(mp3)])
    np.testing.assert_allclose(load_audio(mp3.read_bytes(), RATE).samples, load_audio(mp3, RATE).samples)
    video = folder / "with-sound.mp4"
    ffmpeg(
        ["-f", "lavfi", "-i", "testsrc=size=64x64:rate=10", "-i", str(speech_wav), "-map", "0:v", "-map", "1:a"]
        + ["-c:v", "mpeg4", "-c:a", "aac", "-shortest", str(video)]
    )
    ours = load_audio(video, RATE).samples
    assert relative_error(ours, ffmpeg_decode(video, RATE)) < 0.01


def test_no_temporary_files_are_left(folder, speech_wav, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mp3 = folder / "temp.mp3"
    ffmpeg(["-i", str(speech_wav), str(mp3)])
    load_audio(mp3.read_bytes(), RATE)
    with pytest.raises(UnreadableAudioError):
        load_audio(bytes(range(256)) * 16, RATE)  # not text, so ffmpeg gets to try, from a temporary file
    with pytest.raises(BadAudioError):  # a cut-off MP3: too short or unreadable, depending on where it was cut
        load_audio(mp3.read_bytes()[:300], RATE)
    assert list(tmp_path.iterdir()) == []


def _silence(seconds: float, dbfs: float = -np.inf, offset: float = 0.0) -> tuple[int, np.ndarray]:
    noise = np.random.default_rng(0).standard_normal(int(seconds * RATE))
    level = 0.0 if dbfs == -np.inf else 10 ** (dbfs / 20)
    return RATE, (noise * level + offset).astype(np.float32)


@pytest.mark.parametrize(
    ("make", "error", "sentence"),
    [
        (lambda d: None, EmptyAudioError, "There is no recording yet."),
        (lambda d: d / "missing.wav", AudioNotFoundError, "does not exist"),
        (lambda d: d, AudioNotFoundError, "is a folder, not a sound file"),
        (lambda d: _file(d / "empty.wav", b""), EmptyAudioError, "The file empty.wav is empty (0 bytes)."),
        (lambda d: _file(d / "notes.txt", "milk, eggs, café\n".encode() * 9), UnreadableAudioError, "is text, not a"),
        (lambda d: _file(d / "notes.mp3", b"milk, eggs\n" * 20), UnreadableAudioError, "is text, not a sound"),
        (lambda d: b"milk, eggs\n" * 20, UnreadableAudioError, "The recording is text, not a sound or video file."),
        (lambda d: _file(d / "noise.ogg", bytes(range(256)) * 9), UnreadableAudioError, "not a sound or video file"),
        (lambda d: _file(d / "cut.wav", b"RIFF\x24\x00\x00\x00WAVEfmt "), UnreadableAudioError, "damaged WAV"),
        (lambda d: b"", EmptyAudioError, "The recording is empty (0 bytes)."),
        (lambda d: (RATE, np.zeros(0, np.int16)), EmptyAudioError, "no sound in it"),
        (lambda d: (RATE, np.zeros((10, 3, 2))), BadAudioError, "not a recording"),
        (lambda d: (0, np.zeros(RATE)), BadAudioError, "sample rate"),
        (lambda d: (RATE, np.array([0.1, np.nan] * RATE)), UnreadableAudioError, "not numbers"),
        (
            lambda d: (RATE, (np.sin(np.arange(1600) / 5) * 8000).astype(np.int16)),
            RecordingTooShortError,
            "The recording is only 0.1 seconds long; speak for at least a second.",
        ),
        (
            lambda d: _silence(2.0),
            SilentRecordingError,
            "The recording is silent — check that the microphone is on and not muted.",
        ),
        (lambda d: _silence(2.0, dbfs=-75.0), SilentRecordingError, "The recording is silent"),
        (lambda d: _silence(2.0, dbfs=-90.0, offset=0.2), SilentRecordingError, "The recording is silent"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_bad_recordings_are_sentences(tmp_path, make, error, sentence):
    with pytest.raises(error) as raised:
        load_audio(make(tmp_path), RATE)
    assert sentence in str(raised.value)
    assert isinstance(raised.value, BadAudioError)


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_two_minute_recordings_are_refused(folder, speech):
    two_minutes = np.resize(speech, SPEECH_RATE * 120)
    path = write_wav(folder / "two-minutes.wav", SPEECH_RATE, two_minutes)
    with pytest.raises(RecordingTooLongError, match="The recording is 2 minutes long; Studio listens to at most 60"):
        load_audio(path, RATE)
    with pytest.raises(RecordingTooLongError, match="2 minutes long"):
        load_audio((SPEECH_RATE, two_minutes), RATE)
    mp3 = folder / "two-minutes.mp3"
    ffmpeg(["-i", str(path), str(mp3)])
    with pytest.raises(RecordingTooLongError, match="over 60 seconds long"):
        load_audio(mp3, RATE)
    # The limit is the caller's: a task that transcribes files may allow more.
    assert load_audio(path, RATE, max_duration_s=None).duration_s == pytest.approx(120, abs=0.01)
    assert load_audio(mp3, RATE, max_duration_s=180).duration_s == pytest.approx(120, abs=0.1)


@pytest.fixture(scope="module")
def stereo_44k(folder) -> tuple[Path, np.ndarray]:
    """3.5 s of 44.1 kHz stereo WAV (a tone in one channel, a square wave near full scale in the other, both with
    noise) and its int16 frames. Lossy codecs overshoot full scale on the square wave."""
    rng = np.random.default_rng(3)
    t = np.arange(int(44100 * 3.5)) / 44100
    frames = np.stack([0.8 * np.sin(2 * np.pi * 330 * t), 0.9 * np.sign(np.sin(2 * np.pi * 200 * t))], axis=1)
    frames = np.clip(np.round((frames + rng.standard_normal(frames.shape) * 0.03) * 32768), -32768, 32767)
    return write_wav(folder / "stereo-44k.wav", 44100, frames.astype(np.int16)), frames.astype(np.int16)


def decoded_by_ffmpeg(path: Path, channels: int) -> np.ndarray:
    """ffmpeg's own decoding at the file's rate and channels, as (n, channels) float32: a reference."""
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "f32le", "pipe:1"]
    done = subprocess.run(command, capture_output=True, timeout=60, check=True)
    return np.frombuffer(done.stdout, np.float32).reshape(-1, channels)


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".ogg"])
def test_load_audio_is_the_windows_put_together(folder, stereo_44k, suffix):
    """`load_audio` and `sound_windows` read through one reader: the non-overlapping windows of a 44.1 kHz stereo
    recording, end to end, are `load_audio`'s samples exactly; and both are the whole recording mixed down and
    resampled at once by scipy (decoded samples past full scale clipped, as every block is)."""
    wav, frames = stereo_44k
    path = folder / f"stereo-44k{suffix}"
    if suffix == ".wav":
        decoded = frames / 32768.0
    else:
        ffmpeg(["-i", str(wav), str(path)])
        decoded = np.clip(decoded_by_ffmpeg(path, 2), -1.0, 1.0)
    whole = load_audio(path, RATE).samples
    windows = list(sound_windows(path, RATE, RATE))
    assert len(windows) == 4 and [w.start_s for w in windows] == [0.0, 1.0, 2.0, 3.0]  # the last one is 0.5 s
    np.testing.assert_array_equal(np.concatenate([w.samples for w in windows]), whole)
    reference = np.clip(resample_poly(decoded.astype(np.float64).mean(axis=1), 160, 441), -1.0, 1.0)
    assert len(whole) == len(reference)
    np.testing.assert_allclose(whole, reference, atol=1e-6)


def test_a_long_question_is_refused_while_it_is_read(folder):
    """Twenty minutes of FLAC given as a question: refused once a minute of it is read, never decoded whole."""
    path = folder / "twenty-minutes.flac"
    ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=1200", str(path)])
    tracemalloc.start()
    try:
        with pytest.raises(RecordingTooLongError, match="over 60 seconds long"):
            load_audio(path, RATE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole_bytes = 1200 * RATE * 4  # the recording decoded whole at 16 kHz: 77 MB
    assert peak < whole_bytes / 8, f"peak {peak / 1e6:.0f} MB"


@pytest.mark.parametrize("header", [False, True], ids=["before-the-header", "after-the-header"])
def test_a_stuck_ffmpeg_is_stopped(tmp_path, monkeypatch, header):
    """An ffmpeg that stops writing, before or after the WAV header it streams, is ended after FFMPEG_TIMEOUT_S."""
    # The header of a float WAV, mono at 16 kHz, of unknown length (as ffmpeg writes to a pipe).
    wav_header = b"RIFF\xff\xff\xff\xffWAVEfmt \x10\0\0\0\x03\0\x01\0\x80>\0\0\0\xfa\0\0\x04\0 \0data\xff\xff\xff\xff"
    stuck = tmp_path / "bin" / "ffmpeg"
    stuck.parent.mkdir()
    stuck.write_text(
        f"#!{sys.executable}\nimport sys, time\n"
        f"sys.stdout.buffer.write({wav_header if header else b''!r})\nsys.stdout.flush()\ntime.sleep(60)\n"
    )
    stuck.chmod(0o755)
    monkeypatch.setenv("PATH", str(stuck.parent))
    monkeypatch.setattr(audio, "FFMPEG_TIMEOUT_S", 0.5)
    with pytest.raises(UnreadableAudioError, match="The file song.mp3 took too long to decode; it may be damaged."):
        load_audio(_file(tmp_path / "song.mp3", bytes(range(256)) * 9), RATE)


def test_video_without_sound(tmp_path):
    video = tmp_path / "silent-film.mp4"
    ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x64:rate=10", "-t", "1", "-c:v", "mpeg4", str(video)])
    with pytest.raises(NoSoundTrackError, match="The file silent-film.mp4 has no sound track"):
        load_audio(video, RATE)


def test_without_ffmpeg_wav_still_works(folder, speech_wav, expected, monkeypatch, tmp_path):
    mp3 = folder / "no-ffmpeg.mp3"
    ffmpeg(["-i", str(speech_wav), str(mp3)])
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no ffmpeg on the PATH
    with pytest.raises(FfmpegMissingError) as raised:
        load_audio(mp3, RATE)
    assert "Reading MP3 files needs ffmpeg" in str(raised.value)
    assert "sudo apt-get install ffmpeg" in str(raised.value) and "WAV recordings work without it" in str(raised.value)
    np.testing.assert_allclose(load_audio(speech_wav, RATE).samples, expected, atol=1e-6)


def test_is_silent(expected):
    assert not is_silent(Waveform(expected.astype(np.float32), RATE))
    assert is_silent(Waveform(np.zeros(RATE, np.float32), RATE))
    rng = np.random.default_rng(0)
    quiet_room = rng.standard_normal(RATE).astype(np.float32) * 10 ** (-70 / 20)
    assert is_silent(Waveform(quiet_room, RATE))
    whisper = quiet_room * 10 ** (30 / 20)  # -40 dBFS: as quiet as speech gets into a microphone
    assert not is_silent(Waveform(whisper, RATE))
    assert audio.loudness_dbfs(Waveform(whisper, RATE)) == pytest.approx(-40, abs=1.5)


# Long recordings, window by window --------------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "to"), [(44100, 16000), (8000, 48000), (96000, 16000), (22050, 48000)])
def test_stream_resampler_equals_whole_resampling(rate, to):
    x = np.random.default_rng(rate).standard_normal(rate * 3 + 17).astype(np.float32)
    g = np.gcd(rate, to)
    expected = resample_poly(x, to // g, rate // g)
    resampler = StreamResampler(rate, to)
    rng = np.random.default_rng(0)
    pieces, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 9000))
        pieces.append(resampler.push(x[i : i + n]))
        i += n
    got = np.concatenate([*pieces, resampler.flush()])
    assert len(got) == len(expected)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "rate"),
    [
        ("long", 16000),
        ("speech.flac", 48000),
        ("speech.mp3", 16000),
        ("speech_8k", 48000),
        ("six_channels", 16000),
        ("tone_stereo", 48000),
        ("video", 16000),
    ],
)
def test_windows_are_the_whole_recording(sounds, name, rate):
    """Streamed windows, put back together, are what decoding the whole file gives (8 and 96 kHz, 2 and 6 channels,
    compressed, a video's sound track)."""
    whole = load_audio(sounds[name], rate, None).samples
    window = rate // 2
    windows = list(sound_windows(sounds[name], rate, window))
    assert [w.index for w in windows] == list(range(len(windows)))
    assert all(len(w.samples) == window for w in windows[:-1])
    assert windows[1].start_s == pytest.approx(0.5)
    got = np.concatenate([w.samples for w in windows])
    n = len(got)
    assert len(whole) - int(0.3 * rate) <= n <= len(whole)  # a tail under 0.3 s may be left out
    np.testing.assert_allclose(got, whole[:n], atol=1e-5)


def test_long_recording_is_streamed_with_bounded_memory(tmp_path):
    """Ten minutes at 44.1 kHz stereo, heard as 48 kHz windows: never more than a few windows in memory at once."""
    path = tmp_path / "ten-minutes.wav"
    rate, seconds = 44100, 600
    rng = np.random.default_rng(0)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        for _ in range(seconds // 10):
            out.writeframes((rng.standard_normal((rate * 10, 2)) * 3000).astype("<i2").tobytes())
    whole_bytes = seconds * 48000 * 4  # what holding the decoded recording would take: 115 MB
    fractions = []
    tracemalloc.start()
    try:
        count = 0
        for window in sound_windows(path, 48000, 480000, progress=lambda f, m: fractions.append(f)):
            count += 1
            assert len(window.samples) == 480000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 60
    assert peak < whole_bytes / 8, f"peak {peak / 1e6:.0f} MB"
    assert fractions[-1] == pytest.approx(1.0) and fractions == sorted(fractions)
