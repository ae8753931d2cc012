"""Sound: any recording a user can give, decoded to mono float32 samples at the rate a model listens at.

Every recording is read by one reader, `open_sound`, block by block and never whole: WAV is read here with numpy (the
microphone and WAV files need nothing else); every other format (MP3, Ogg/Opus, FLAC, WebM, M4A, video files) is
decoded by ffmpeg, a Debian package that `scripts/bootstrap` installs, run as a subprocess without a shell and read
from its pipe. `load_audio` (a spoken question, whole) and `sound_windows` (a recording of any length, window by
window) both read those blocks the same way, so one recording gives the same samples through either.

ffmpeg only decodes, at the file's own rate and channels: mixing down to mono and resampling happen here for every
input, so one recording gives the same samples whichever container it came in.
"""

from __future__ import annotations

import codecs
import io
import math
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

import numpy as np

from studio.errors import StudioError

# Shorter than a syllable: nothing to transcribe, and usually a tap on the record button.
MIN_DURATION_S = 0.3
# A spoken question. Longer takes are refused while they are read, which bounds the time and memory one request can
# take (a task that transcribes whole files would pass its own, larger limit).
MAX_QUESTION_S = 60.0
# Sound events: long recordings are heard window by window and never held whole, so the limit is one of patience
# (about 20 minutes of CPU per hour of sound for AST), not of memory.
MAX_SOUND_S = 3 * 3600.0
# Sound files by name (a folder of sounds is indexed by these; videos have their own list in `studio.media.video`).
SOUND_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff", ".wma")
# A recording whose loudest 50 ms stays below this is a muted or unplugged microphone: speech, even quiet, peaks at
# -40 dBFS or more, a quiet room's noise sits around -60 to -50 dBFS, and a muted input is digital zeros or close.
SILENCE_DBFS = -60.0
_LOUDNESS_FRAME_S = 0.05
# Decoding a minute of sound takes ffmpeg well under a second; a minute means it is stuck.
FFMPEG_TIMEOUT_S = 60.0
_PROBE_TIMEOUT_S = 20.0

_INSTALL_HINT = "on Debian or Ubuntu: sudo apt-get install ffmpeg"

# Input frames decoded per read: a second of 48 kHz stereo float is 384 KB.
_BLOCK_FRAMES = 1 << 15
# How much of a file is looked at to tell WAV and text from the rest.
_SNIFF_BYTES = 4096
# WAVE format tags read here; anything else in a WAV (ADPCM, mu-law, MP3 inside RIFF...) goes to ffmpeg.
_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
# A data chunk size of 0 or 0xFFFFFFFF means "until the end": what streaming writers (ffmpeg to a pipe) put there.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
# (format tag, bits per sample) -> how the samples are stored; "i3" is 24-bit little-endian, unpacked by hand.
_WAV_DTYPES = {
    (_PCM, 8): "u1",
    (_PCM, 16): "<i2",
    (_PCM, 24): "i3",
    (_PCM, 32): "<i4",
    (_FLOAT, 32): "<f4",
    (_FLOAT, 64): "<f8",
}


class BadAudioError(StudioError):
    """A recording that cannot be listened to; the message says why in a sentence."""


class AudioNotFoundError(BadAudioError):
    """The file named does not exist (or is a folder)."""


class EmptyAudioError(BadAudioError):
    """No recording, a 0-byte file, or a file without a single sample."""


class UnreadableAudioError(BadAudioError):
    """Not a sound or video file, or a damaged one."""


class NoSoundTrackError(BadAudioError):
    """A video (or image) with no audio track."""


class RecordingTooShortError(BadAudioError):
    """Shorter than `MIN_DURATION_S`."""


class RecordingTooLongError(BadAudioError):
    """Longer than the caller's limit (`MAX_QUESTION_S` by default)."""


class SilentRecordingError(BadAudioError):
    """Nothing louder than `SILENCE_DBFS`: a muted or unplugged microphone."""


class FfmpegMissingError(BadAudioError):
    """The recording needs ffmpeg to be decoded and ffmpeg is not installed."""


# eq=False: the generated __eq__ would compare arrays, whose truth value is ambiguous.
@dataclass(frozen=True, eq=False)
class Waveform:
    """Decoded sound.

    Attributes:
        samples: float32 mono samples in [-1, 1], shape (n,).
        rate: Samples per second.
    """

    samples: np.ndarray
    rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate


@dataclass(frozen=True, eq=False)
class AudioWindow:
    """One window of a recording, mono at the model's rate.

    Attributes:
        index: 0 for the first window.
        start_s: Where it starts in the recording, in seconds.
        samples: float32 mono samples (the last window may be shorter than the others).
        rate: Samples per second.
    """

    index: int
    start_s: float
    samples: np.ndarray
    rate: int

    @property
    def end_s(self) -> float:
        return self.start_s + len(self.samples) / self.rate

    @property
    def waveform(self) -> Waveform:
        return Waveform(self.samples, self.rate)


def load_audio(source, target_rate: int, max_duration_s: float | None = MAX_QUESTION_S) -> Waveform:
    """Turns any recording a user can give into mono float32 samples at `target_rate`.

    The recording is read through `open_sound` block by block, as `sound_windows` reads it, and refused as soon as it
    passes `max_duration_s` (before anything is read when its length is known exactly: WAV files and arrays).

    Args:
        source: A file path (WAV, or through ffmpeg MP3, Ogg, FLAC, WebM, M4A and video files), the file's bytes, the
            `(rate, array)` tuple of Gradio's `gr.Audio(type="numpy")` (int16/int32/uint8/float samples, shape (n,)
            or (n, channels)), or a `Waveform`.
        target_rate: The rate the model listens at, e.g. 16000.
        max_duration_s: Longer recordings are refused (None: no limit).

    Returns:
        The channels averaged to mono, integers scaled to [-1, 1], resampled with a polyphase windowed-sinc filter.

    Raises:
        BadAudioError: (a subclass) the recording is missing, empty, unreadable, has no sound track, is too short, too
            long or silent, or needs ffmpeg, which is not installed.
    """
    if target_rate <= 0:
        raise ValueError("target_rate must be positive")
    limits = _Limits(
        math.inf if max_duration_s is None else float(max_duration_s),
        too_short="The recording is only {length} long; speak for at least a second.",
        advice="Record a shorter question, or trim the file.",
        limit_in_seconds=True,
    )
    # A question is read as fast as ffmpeg decodes it, so a time limit tells a stuck ffmpeg; a long recording heard
    # window by window waits on the model, and has none.
    with open_sound(source, timeout_s=FFMPEG_TIMEOUT_S) as reader:
        waveform = Waveform(np.concatenate(list(_resampled(reader, target_rate, limits))), int(target_rate))
    if is_silent(waveform):
        raise SilentRecordingError("The recording is silent — check that the microphone is on and not muted.")
    return waveform


def sound_windows(
    source,
    target_rate: int,
    window_samples: int,
    hop_samples: int | None = None,
    max_duration_s: float = MAX_SOUND_S,
    progress=None,
):
    """Decodes a recording of any length window by window, mono at `target_rate`, holding one window at a time.

    Args:
        source: A file path (WAV read here; MP3, Ogg, FLAC, M4A, WebM and videos streamed from ffmpeg), bytes,
            Gradio's `(rate, array)` tuple or a `Waveform`.
        target_rate: The model's rate.
        window_samples: Samples per window at `target_rate`.
        hop_samples: Samples from one window's start to the next (default: `window_samples`, no overlap).
        max_duration_s: Longer recordings are refused (when the length is known, before anything is decoded).
        progress: Called with (fraction, sentence) after each window when the length is known.

    Yields:
        `AudioWindow`s in order; the last one holds what is left (at least a tenth of a window, or the whole
        recording when it is shorter than one window).

    Raises:
        BadAudioError: (a subclass) missing, empty, unreadable, without a sound track, too short or too long.
    """
    hop = int(hop_samples or window_samples)
    limits = _Limits(
        max_duration_s,
        too_short="The sound is only {length} long; Studio needs at least {shortest:g} seconds to tell what it is.",
        advice="Cut it into shorter files.",
        limit_in_seconds=False,
    )
    # The reader is closed however the caller stops: ffmpeg must not outlive an abandoned listen.
    with open_sound(source) as reader:
        # The container's estimate (ffprobe's) is good enough to refuse hours of sound before decoding any. `load_audio`
        # trusts only exact lengths, so that a question just under its limit is never refused on an estimate.
        total = reader.duration_s
        limits.refuse_longer(total)
        pending = np.zeros(0, np.float32)
        start = 0  # output index of pending[0]
        index = 0

        def windows_ready(final: bool):
            nonlocal pending, start, index
            while len(pending) >= window_samples or (final and len(pending) > 0):
                if final and len(pending) < window_samples:
                    # The tail: a short last window is kept only if it holds enough sound to say something about.
                    if index > 0 and len(pending) < int(MIN_DURATION_S * target_rate):
                        pending = pending[:0]
                        return
                    window = pending
                else:
                    window = pending[:window_samples]
                yield AudioWindow(index, start / target_rate, np.ascontiguousarray(window), target_rate)
                index += 1
                step = min(hop, len(pending)) if len(pending) >= window_samples else len(pending)
                pending = pending[step:]
                start += step

        def report(window: AudioWindow) -> None:
            if progress is not None:
                fraction = min(1.0, window.end_s / total) if total else 0.0
                progress(fraction, f"Listened to {describe_duration(window.end_s)}…")

        for piece in _resampled(reader, target_rate, limits):
            pending = np.concatenate([pending, piece])
            for window in windows_ready(final=False):
                yield window
                report(window)
        for window in windows_ready(final=True):
            yield window
            report(window)


def check_sound(source) -> None:
    """Opens a recording and reads its header (ffmpeg starts decoding), to say what is wrong before a model loads.

    Raises:
        BadAudioError: (a subclass) missing, empty, not a sound file, damaged, or without a sound track.
    """
    open_sound(source).close()


@dataclass(frozen=True)
class _Limits:
    """How long a recording may be, and the sentences that refuse one (each entry point words them its own way)."""

    longest_s: float
    too_short: str  # the whole sentence, with {length} and {shortest}
    advice: str  # the last sentence of a refusal for length
    limit_in_seconds: bool  # the limit said as "90 seconds" (a question's) rather than "1.5 minutes"

    def refuse_longer(self, seconds: float | None) -> None:
        """Refuses a recording whose length (None: unknown) is known before it is read."""
        if seconds is not None and seconds > self.longest_s:
            raise self.too_long(describe_duration(seconds))

    def too_long(self, length: str | None = None) -> RecordingTooLongError:
        """The refusal of a recording `length` long (None: found to pass the limit while it was read)."""
        limit = f"{self.longest_s:g} seconds" if self.limit_in_seconds else describe_duration(self.longest_s)
        return RecordingTooLongError(
            f"The recording is {length or 'over ' + limit} long; Studio listens to at most {limit} at a time. "
            + self.advice
        )

    def check_heard(self, seconds: float) -> None:
        """Refuses a recording, once read, without a sample or shorter than `MIN_DURATION_S`."""
        if seconds == 0:
            raise EmptyAudioError("The recording has no sound in it (it is 0 seconds long).")
        if seconds < MIN_DURATION_S:
            raise RecordingTooShortError(
                self.too_short.format(length=describe_duration(seconds), shortest=MIN_DURATION_S)
            )


def _resampled(reader: SoundReader, target_rate: int, limits: _Limits):
    """The reader's sound, mono at `target_rate` in [-1, 1], block by block; refused as soon as it breaks `limits`."""
    limits.refuse_longer(None if reader.frames is None else reader.frames / reader.rate)
    resampler = StreamResampler(reader.rate, target_rate)
    seen = 0
    for block in reader.blocks:
        seen += len(block)
        if seen / reader.rate > limits.longest_s:
            raise limits.too_long()
        # Resampling rings a little past full scale on clipped input; the models' contract is [-1, 1].
        yield np.clip(resampler.push(to_mono(block)), -1.0, 1.0)
    limits.check_heard(seen / reader.rate)
    yield np.clip(resampler.flush(), -1.0, 1.0)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resamples mono samples with scipy's polyphase filter (Kaiser-windowed sinc, as `scipy.signal.resample_poly`).

    Args:
        samples: float32 samples, shape (n,).
        from_rate: Their rate.
        to_rate: The rate wanted.

    Returns:
        float32 samples, ceil(n * to_rate / from_rate) of them.
    """
    if from_rate == to_rate:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = math.gcd(int(from_rate), int(to_rate))
    return resample_poly(samples, int(to_rate) // g, int(from_rate) // g).astype(np.float32)


class StreamResampler:
    """Resamples a stream block by block to the same samples `resample` gives for the whole recording at once.

    Output sample j sits at input time j * down / up and depends only on input samples within the polyphase
    filter's half-length of it, which `scipy.signal.resample_poly` pads with zeros at both ends. Each block is
    resampled with `context` input samples on either side (zeros before the start, as resample_poly assumes) and the
    outputs that the context made exact are kept. Block starts are multiples of `down`, so they fall on output
    samples. Memory stays at one block plus context, whatever the recording's length.

    Args:
        from_rate: The input's rate.
        to_rate: The rate wanted.
        block: Input samples per resampled block (rounded to a multiple of `down`): what a live stream waits for
            beyond the filter's context before its output comes out.
    """

    def __init__(self, from_rate: int, to_rate: int, block: int = _BLOCK_FRAMES) -> None:
        g = math.gcd(int(from_rate), int(to_rate))
        self.up, self.down = int(to_rate) // g, int(from_rate) // g
        # resample_poly's filter spans 10 * max(up, down) upsampled samples on each side of a point.
        reach = math.ceil(10 * max(self.up, self.down) / self.up) + 2
        self.context = math.ceil(reach / self.down) * self.down
        self.block = max(self.down, (int(block) // self.down) * self.down)
        self._buffer = np.zeros(self.context, dtype=np.float32)  # zeros before the start, as resample_poly pads
        self._buffer_start = -self.context  # input index of _buffer[0]
        self._next = 0  # input index where the next output block starts (a multiple of down)
        self._seen = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Takes the next mono input samples; returns the output samples that are now final."""
        if self.up == self.down:
            self._seen += len(samples)
            return samples.astype(np.float32, copy=False)
        self._buffer = np.concatenate([self._buffer, samples.astype(np.float32, copy=False)])
        self._seen += len(samples)
        out = []
        while self._seen >= self._next + self.block + self.context:
            out.append(self._emit(self._next + self.block))
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def flush(self) -> np.ndarray:
        """The remaining output samples, once the input has ended."""
        if self.up == self.down or self._next >= self._seen:
            return np.zeros(0, np.float32)
        return self._emit(self._seen, final=True)

    def _emit(self, end: int, final: bool = False) -> np.ndarray:
        from scipy.signal import resample_poly

        lo = self._next - self.context - self._buffer_start
        segment = self._buffer[lo : end + (0 if final else self.context) - self._buffer_start]
        y = resample_poly(segment, self.up, self.down)
        skip = self.context * self.up // self.down
        if final:
            count = math.ceil(self._seen * self.up / self.down) - self._next * self.up // self.down
        else:
            count = (end - self._next) * self.up // self.down
        out = y[skip : skip + count].astype(np.float32)
        # Keep what the next block needs: its context before it, and everything after.
        self._buffer = self._buffer[end - self.context - self._buffer_start :]
        self._buffer_start = end - self.context
        self._next = end
        return out


def loudness_dbfs(waveform: Waveform) -> float:
    """The level of the loudest 50 ms of a recording, in dB relative to full scale (RMS, DC offset removed)."""
    samples = waveform.samples.astype(np.float64)
    if samples.size == 0:
        return -math.inf
    frame = max(1, int(waveform.rate * _LOUDNESS_FRAME_S))
    usable = (len(samples) // frame) * frame
    frames = samples[:usable].reshape(-1, frame) if usable else samples[None, :]
    # A microphone's DC offset is not sound; without removing it a muted input with an offset would read as loud.
    frames = frames - frames.mean(axis=1, keepdims=True)
    rms = float(np.sqrt(np.mean(frames**2, axis=1)).max())
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def is_silent(waveform: Waveform, threshold_dbfs: float = SILENCE_DBFS) -> bool:
    """Whether no 50 ms of the recording reaches `threshold_dbfs` (a muted or unplugged microphone)."""
    return loudness_dbfs(waveform) < threshold_dbfs


def describe_duration(seconds: float) -> str:
    """A duration as a person says it: "0.1 seconds", "45 seconds", "2 minutes", "2.5 minutes"."""
    if seconds < 0.05:
        return f"{seconds:.2f} seconds"
    if seconds < 10:
        return f"{seconds:.1f} seconds"
    if seconds < 90:
        return f"{round(seconds)} seconds"
    minutes = seconds / 60
    return f"{minutes:.0f} minutes" if abs(minutes - round(minutes)) < 0.05 else f"{minutes:.1f} minutes"


# Reading: one reader for every input ------------------------------------------------------------------------------


class SoundReader:
    """A recording opened by `open_sound`, read block by block without holding it whole.

    Attributes:
        rate: The recording's own sample rate.
        channels: How many channels each block has.
        blocks: An iterator of (n, channels) float32 blocks in [-1, 1].
        frames: How many frames `blocks` will give, when known before reading (WAV, arrays); None from ffmpeg.
    """

    def __init__(self, rate: int, channels: int, blocks, frames: int | None = None, closers=(), path=None) -> None:
        self.rate, self.channels, self.blocks, self.frames = rate, channels, blocks, frames
        self._closers = list(closers)
        self._path = path  # the file ffprobe reads the length of, when `frames` is unknown

    @cached_property
    def duration_s(self) -> float | None:
        """The length in seconds: exact from `frames`, else as ffprobe reads it from the container, or None."""
        if self.frames is not None:
            return self.frames / self.rate
        return probe_duration(self._path) if self._path is not None else None

    def close(self) -> None:
        """Ends the decoding (stops ffmpeg, closes the file, removes a temporary copy), whether or not all was read."""
        if hasattr(self.blocks, "close"):
            self.blocks.close()
        while self._closers:
            self._closers.pop(0)()

    def __enter__(self) -> SoundReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_sound(source, timeout_s: float | None = None) -> SoundReader:
    """Opens any recording for reading block by block: WAV is read here, other files stream through ffmpeg.

    Args:
        source: A file path, the file's bytes, Gradio's `(rate, array)` tuple or a `Waveform` (see `load_audio`).
        timeout_s: ffmpeg is stopped after this long, and the recording refused as too slow to decode (None: never).

    Returns:
        The reader; close it (or use it in a `with`) to stop ffmpeg and close the file.

    Raises:
        BadAudioError: (a subclass) missing, empty, not a sound file, damaged, without a sound track, or needing
            ffmpeg, which is not installed.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise AudioNotFoundError(f"The sound file {path} does not exist.")
        if path.is_dir():
            raise AudioNotFoundError(f"{path} is a folder, not a sound file.")
        what = f"The file {path.name}"
        size = path.stat().st_size
        if size == 0:
            raise EmptyAudioError(f"{what} is empty (0 bytes).")
        return _sniff(open(path, "rb"), size, what) or _ffmpeg_reader(path, what, timeout_s)  # noqa: SIM115
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise EmptyAudioError("The recording is empty (0 bytes).")
        return _sniff(io.BytesIO(data), len(data), "The recording") or _ffmpeg_bytes(data, timeout_s)
    # Already in memory (a microphone take, a Waveform): one block.
    rate, frames = _in_memory(source)
    return SoundReader(rate, frames.shape[1], iter([frames]), frames=len(frames))


def samples_to_float(array: np.ndarray) -> np.ndarray:
    """Samples as Gradio (or any caller) gives them, as float32 in [-1, 1].

    Args:
        array: Integer samples (scaled as WAV stores them; uint8 centred on 128) or float samples, shape (n,),
            (n, channels) or (channels, n).

    Returns:
        float32 samples, shape (n,) or (n, channels); floats louder than full scale are scaled down by the loudest.

    Raises:
        BadAudioError: Not a recording's shape or type. UnreadableAudioError: some samples are not numbers.
    """
    if array.ndim == 2 and array.shape[0] < array.shape[1] and array.shape[0] <= 16:
        # (channels, n), as librosa and torchaudio lay it out: no real recording has more channels than samples.
        array = array.T
    if array.ndim not in (1, 2):
        raise BadAudioError(f"This array is not a recording (shape {array.shape}).")
    if array.dtype == np.uint8:  # 8-bit WAV samples are unsigned, centred on 128
        return (array.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(array.dtype, np.integer):
        return (array.astype(np.float64) / float(2 ** (8 * array.dtype.itemsize - 1))).astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        out = array.astype(np.float32)
        if not np.all(np.isfinite(out)):
            raise UnreadableAudioError("The recording is damaged: some of its samples are not numbers.")
        peak = float(np.abs(out).max(initial=0.0))
        # Float samples are meant to lie in [-1, 1]; louder ones are scaled down rather than clipped into a buzz.
        return out / peak if peak > 1.0 else out
    raise BadAudioError(f"This array is not a recording (its samples are {array.dtype}).")


def to_mono(frames: np.ndarray) -> np.ndarray:
    """Averages the channels of (n, channels) float32 frames; (n,) input is already mono and returned as it is."""
    if frames.ndim == 1:
        return frames.astype(np.float32, copy=False)
    if frames.shape[1] == 1:
        return frames[:, 0].astype(np.float32, copy=False)
    return frames.mean(axis=1, dtype=np.float64).astype(np.float32)


def _in_memory(source) -> tuple[int, np.ndarray]:
    """A recording already in memory (Gradio's tuple, a `Waveform`) -> (rate, (n, channels) float32 frames)."""
    if source is None:
        raise EmptyAudioError("There is no recording yet. Record with the microphone or upload a sound file.")
    if isinstance(source, Waveform):
        rate, frames = source.rate, np.asarray(source.samples, dtype=np.float32)
    elif isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], np.ndarray):
        rate, array = source
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise BadAudioError(f"The recording's sample rate ({rate!r}) is not a positive whole number.")
        frames = samples_to_float(array)
    else:
        raise BadAudioError(f"This is not a recording (got {type(source).__name__}).")
    return int(rate), frames if frames.ndim == 2 else frames[:, None]


def _sniff(f: BinaryIO, size: int, what: str) -> SoundReader | None:
    """A reader of a WAV read here; None (with `f` closed) for what ffmpeg decodes instead. Refuses text."""
    try:
        head = f.read(_SNIFF_BYTES)
        reader = _wav_reader(f, size, what) if _is_wav(head) else None
    except BaseException:
        f.close()
        raise
    if reader is None:
        f.close()
        _refuse_text(head, what)
    return reader


def _refuse_text(head: bytes, what: str) -> None:
    """Text is refused before ffmpeg sees it: ffmpeg would open a .txt as a picture of text and find no sound in it.

    Every sound and video format has a zero byte or bytes that are not UTF-8 in its first kilobytes.
    """
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return
    if b"\x00" not in head:
        raise UnreadableAudioError(f"{what} is text, not a sound or video file.")


def _is_wav(head: bytes) -> bool:
    """Whether the first 12 bytes are a RIFF WAVE header."""
    return len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def _wav_reader(f: BinaryIO, size: int, what: str) -> SoundReader | None:
    """Reads PCM (8/16/24/32-bit) and float WAV of `size` bytes; None for other encodings, which ffmpeg decodes."""
    damaged = UnreadableAudioError(f"{what} is a damaged WAV file and cannot be read.")
    f.seek(12)
    data_size, fmt = _wav_header(f, damaged)
    tag, channels, rate, block_align, bits = fmt
    if (tag, bits) not in _WAV_DTYPES:
        return None  # ADPCM, mu-law...: ffmpeg decodes it
    if channels == 0 or rate == 0 or block_align != channels * bits // 8:
        raise damaged
    # A size the header gets wrong (a cut-off file) is bounded by what the file holds.
    data_bytes = size - f.tell() if data_size in _UNKNOWN_SIZES else min(data_size, size - f.tell())
    frames = data_bytes // block_align
    return SoundReader(rate, channels, _pcm_blocks(f, fmt, frames), frames=frames, closers=[f.close])


def _wav_header(f: BinaryIO, damaged: Exception) -> tuple[int, tuple]:
    """Reads a WAV's chunks after the RIFF header up to its data: (data size, (tag, channels, rate, block_align, bits)).

    Chunks before the data are skipped by reading, not seeking, so this works on a pipe too.
    """
    fmt = None
    while True:
        header = f.read(8)
        if len(header) < 8:
            raise damaged  # no data chunk
        chunk, size = header[:4], int.from_bytes(header[4:], "little")
        if chunk == b"fmt ":
            body = f.read(size)
            if len(body) < 16:
                raise damaged
            tag, channels = int.from_bytes(body[0:2], "little"), int.from_bytes(body[2:4], "little")
            rate = int.from_bytes(body[4:8], "little")
            block_align, bits = int.from_bytes(body[12:14], "little"), int.from_bytes(body[14:16], "little")
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = int.from_bytes(body[24:26], "little")  # the sub-format GUID starts with the plain tag
            fmt = (tag, channels, rate, block_align, bits)
            if size % 2:
                f.read(1)
        elif chunk == b"data":
            if fmt is None:
                raise damaged
            return size, fmt
        else:
            skip = size + size % 2
            while skip > 0:
                got = len(f.read(min(skip, 1 << 20)))
                if got == 0:
                    raise damaged
                skip -= got


def _pcm_blocks(f: BinaryIO, fmt: tuple, frames: int | None = None):
    """(n, channels) float32 blocks of WAV data from a file or a pipe: `frames` of them, or (None) to the end."""
    block_align = fmt[3]
    left = math.inf if frames is None else frames
    while left > 0:
        raw = f.read(int(min(left, _BLOCK_FRAMES)) * block_align)
        n = len(raw) // block_align
        if n == 0:
            return
        left -= n
        yield _pcm_to_float(raw[: n * block_align], fmt)


def _pcm_to_float(raw: bytes, fmt: tuple) -> np.ndarray:
    """Whole frames of WAV data -> (n, channels) float32 in [-1, 1]."""
    tag, channels, _, block_align, bits = fmt
    n = len(raw) // block_align
    dtype = _WAV_DTYPES[(tag, bits)]
    if dtype == "i3":
        triples = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        # Little-endian 24-bit to int32: shift into the top bytes, then back down to carry the sign.
        values = ((triples[:, 0] << 8) | (triples[:, 1] << 16) | (triples[:, 2] << 24)) >> 8
        frames = values.astype(np.float32) / float(2**23)
    else:
        stored = np.dtype(dtype)
        values = np.frombuffer(raw, stored).astype(stored.newbyteorder("="))
        if values.dtype.kind == "f" and np.all(np.isfinite(values)):
            # Codecs overshoot full scale a little. A block is clipped, where a whole array is scaled down by its
            # loudest sample: no block knows the loudest of the recording, and every block must be treated alike.
            values = np.clip(values, -1.0, 1.0)
        frames = samples_to_float(values)  # refuses samples that are not numbers
    return frames.reshape(n, channels)


def _ffmpeg_bytes(data: bytes, timeout_s: float | None) -> SoundReader:
    """ffmpeg's reader of a recording's bytes, from a temporary file removed when the reader is closed."""
    # A file, not a pipe: MP4/M4A keep their index at the end, which ffmpeg cannot seek to on stdin.
    tmp = tempfile.TemporaryDirectory(prefix="studio-audio-")
    path = Path(tmp.name) / "recording"
    try:
        path.write_bytes(data)
        reader = _ffmpeg_reader(path, "The recording", timeout_s)
    except BaseException:
        tmp.cleanup()
        raise
    reader._closers.append(tmp.cleanup)  # after ffmpeg has stopped reading it
    return reader


def _ffmpeg_reader(path: Path, what: str, timeout_s: float | None) -> SoundReader:
    """Streams the first audio track of any file ffmpeg reads, at its own rate and channels, as float WAV on a pipe."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        kind = f"{path.suffix.lstrip('.').upper()} files" if path.suffix.strip(".") else "this kind of recording"
        raise FfmpegMissingError(
            f"Reading {kind} needs ffmpeg, which is not installed on this computer ({_INSTALL_HINT}). "
            "WAV recordings work without it."
        )
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    # "file:" so that a name starting with "-" or looking like a URL ("http:...") is only ever a local file.
    command += ["-i", f"file:{path.resolve()}", "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1"]
    command += ["-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    errors = tempfile.TemporaryFile()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL)
    expired = threading.Event()
    too_slow = UnreadableAudioError(f"{what} took too long to decode; it may be damaged.")

    def expire() -> None:
        """Stops a stuck ffmpeg; its pipe then ends and the reader says why."""
        expired.set()
        process.kill()

    timer = threading.Timer(timeout_s, expire) if timeout_s else None

    def stop() -> str:
        """Ends ffmpeg; what it wrote to stderr."""
        if timer is not None:
            timer.cancel()
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
        errors.seek(0)
        text = errors.read().decode("utf-8", "replace")
        errors.close()
        return text

    if timer is not None:
        timer.daemon = True
        timer.start()
    head = process.stdout.read(12)
    if not _is_wav(head):
        stderr = stop()
        if expired.is_set():
            raise too_slow
        if "matches no streams" in stderr or "does not contain any stream" in stderr:
            raise NoSoundTrackError(f"{what} has no sound track, so there is nothing to listen to.")
        raise UnreadableAudioError(
            f"{what} is not a sound or video file Studio can read, or it is damaged "
            "(use WAV, MP3, Ogg, FLAC, WebM, M4A or a video with sound)."
        )
    try:
        _, fmt = _wav_header(process.stdout, UnreadableAudioError(f"{what} could not be decoded."))
    except BaseException:
        stop()
        raise

    def blocks():
        yield from _pcm_blocks(process.stdout, fmt)
        if expired.is_set():
            raise too_slow

    return SoundReader(fmt[2], fmt[1], blocks(), closers=[stop], path=path)


def probe_duration(path: Path) -> float | None:
    """A media file's duration in seconds as ffprobe reads it from the container, or None when it cannot tell."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    command = [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"]
    try:
        done = subprocess.run(
            [*command, f"file:{Path(path).resolve()}"], capture_output=True, timeout=_PROBE_TIMEOUT_S, check=False
        )
        value = float(done.stdout.decode().strip().splitlines()[0])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return None
    return value if math.isfinite(value) and value > 0 else None
