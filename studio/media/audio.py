"""Sound: any recording a user can give, decoded to mono float32 samples at the rate a model listens at.

Everything a speech model hears goes through `load_audio`, so a microphone take, a WAV, an MP3 or the sound of a video
all end up as samples the same way. WAV is read here with numpy (the microphone and WAV files need nothing else);
every other format (MP3, Ogg/Opus, FLAC, WebM, M4A, video files) is decoded by ffmpeg, a Debian package that
`scripts/bootstrap` installs, run as a subprocess without a shell.

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
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from studio.errors import StudioError

# Shorter than a syllable: nothing to transcribe, and usually a tap on the record button.
MIN_DURATION_S = 0.3
# A spoken question. Longer takes are refused rather than decoded whole, which bounds the time and memory one request
# can take (a task that transcribes whole files would pass its own, larger limit).
MAX_QUESTION_S = 60.0
# A recording whose loudest 50 ms stays below this is a muted or unplugged microphone: speech, even quiet, peaks at
# -40 dBFS or more, a quiet room's noise sits around -60 to -50 dBFS, and a muted input is digital zeros or close.
SILENCE_DBFS = -60.0
_LOUDNESS_FRAME_S = 0.05
# Decoding a minute of sound takes ffmpeg well under a second; a minute means it is stuck.
FFMPEG_TIMEOUT_S = 60.0

_INSTALL_HINT = "on Debian or Ubuntu: sudo apt-get install ffmpeg"

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


def load_audio(source, target_rate: int, max_duration_s: float | None = MAX_QUESTION_S) -> Waveform:
    """Turns any recording a user can give into mono float32 samples at `target_rate`.

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
    limit = math.inf if max_duration_s is None else float(max_duration_s)
    rate, frames = _decode(source, limit)
    samples = _to_mono(frames)
    _check_duration(len(samples) / rate, limit)
    samples = resample(samples, rate, target_rate)
    # Resampling rings a little past full scale on clipped input; the model's contract is [-1, 1].
    waveform = Waveform(np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False), int(target_rate))
    if is_silent(waveform):
        raise SilentRecordingError("The recording is silent — check that the microphone is on and not muted.")
    return waveform


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


def _check_duration(seconds: float, limit: float) -> None:
    if seconds == 0:
        raise EmptyAudioError("The recording has no sound in it (it is 0 seconds long).")
    if seconds < MIN_DURATION_S:
        raise RecordingTooShortError(
            f"The recording is only {describe_duration(seconds)} long; speak for at least a second."
        )
    if seconds > limit:
        raise _too_long(f"is {describe_duration(seconds)}", limit)


def _too_long(how_long: str, limit: float) -> RecordingTooLongError:
    return RecordingTooLongError(
        f"The recording {how_long} long; Studio listens to at most {limit:g} seconds at a time. "
        "Record a shorter question, or trim the file."
    )


def _decode(source, limit: float) -> tuple[int, np.ndarray]:
    """Any input -> (rate, samples as (n, channels) float32 in [-1, 1], or (n,))."""
    if source is None:
        raise EmptyAudioError("There is no recording yet. Record with the microphone or upload a sound file.")
    if isinstance(source, Waveform):
        return source.rate, np.asarray(source.samples, dtype=np.float32)
    if isinstance(source, (str, Path)):
        return _read_path(Path(source), limit)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _read_bytes(bytes(source), limit)
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], np.ndarray):
        rate, array = source
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise BadAudioError(f"The recording's sample rate ({rate!r}) is not a positive whole number.")
        return int(rate), _array_to_float(array)
    raise BadAudioError(f"This is not a recording (got {type(source).__name__}).")


def _array_to_float(array: np.ndarray) -> np.ndarray:
    """Samples as Gradio (or any caller) gives them -> float32 in [-1, 1], shape (n,) or (n, channels)."""
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


def _to_mono(frames: np.ndarray) -> np.ndarray:
    """Averages the channels (mono input is returned as it is)."""
    if frames.ndim == 1:
        return frames.astype(np.float32, copy=False)
    if frames.shape[1] == 1:
        return frames[:, 0].astype(np.float32, copy=False)
    return frames.mean(axis=1, dtype=np.float64).astype(np.float32)


def _read_path(path: Path, limit: float) -> tuple[int, np.ndarray]:
    if not path.exists():
        raise AudioNotFoundError(f"The sound file {path} does not exist.")
    if path.is_dir():
        raise AudioNotFoundError(f"{path} is a folder, not a sound file.")
    what = f"The file {path.name}"
    if path.stat().st_size == 0:
        raise EmptyAudioError(f"{what} is empty (0 bytes).")
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
        if _is_wav(head):
            f.seek(0)
            decoded = _read_wav(f, what, limit)
            if decoded is not None:
                return decoded
    _refuse_text(head, what)
    return _ffmpeg_decode(path, what, path.suffix, limit)


def _read_bytes(data: bytes, limit: float) -> tuple[int, np.ndarray]:
    what = "The recording"
    if not data:
        raise EmptyAudioError(f"{what} is empty (0 bytes).")
    if _is_wav(data[:12]):
        decoded = _read_wav(io.BytesIO(data), what, limit)
        if decoded is not None:
            return decoded
    _refuse_text(data[:_SNIFF_BYTES], what)
    # A file, not a pipe: MP4/M4A keep their index at the end, which ffmpeg cannot seek to on stdin.
    with tempfile.TemporaryDirectory(prefix="studio-audio-") as tmp:
        path = Path(tmp) / "recording"
        path.write_bytes(data)
        return _ffmpeg_decode(path, what, "", limit)


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
    return len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def _read_wav(f: BinaryIO, what: str, limit: float) -> tuple[int, np.ndarray] | None:
    """Reads PCM (8/16/24/32-bit) and float WAV; None for other encodings, which ffmpeg decodes instead."""
    damaged = UnreadableAudioError(f"{what} is a damaged WAV file and cannot be read.")
    size, fmt = _wav_header(f, damaged)
    return _read_wav_data(f, size, fmt, limit, damaged)


def _wav_header(f: BinaryIO, damaged: Exception) -> tuple[int, tuple]:
    """Reads a WAV's chunks up to its data: (data size, (tag, channels, rate, block_align, bits)).

    Chunks before the data are skipped by reading, not seeking, so this works on a pipe too.
    """
    f.read(12)
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


def _read_wav_data(f: BinaryIO, size: int, fmt: tuple, limit: float, damaged: Exception):
    """The samples of a data chunk as (n, channels) float32; None for an encoding read by ffmpeg instead."""
    tag, channels, rate, block_align, bits = fmt
    if (tag, bits) not in _WAV_DTYPES:
        return None
    if channels == 0 or rate == 0 or block_align != channels * bits // 8:
        raise damaged
    known_size = size not in _UNKNOWN_SIZES
    if known_size and size / block_align / rate > limit:
        raise _too_long(f"is {describe_duration(size / block_align / rate)}", limit)
    frames_wanted = size // block_align if known_size else None
    if limit != math.inf:
        # One frame past the limit at most, so a long streamed WAV (size unknown) is refused without being read whole.
        cap = int(limit * rate) + 1
        frames_wanted = cap if frames_wanted is None else min(frames_wanted, cap)
    raw = f.read() if frames_wanted is None else f.read(frames_wanted * block_align)
    n = len(raw) // block_align
    if n > limit * rate:
        raise _too_long(f"is over {limit:g} seconds", limit)
    return int(rate), _pcm_to_float(raw[: n * block_align], fmt)


def _pcm_to_float(raw: bytes, fmt: tuple, stream: bool = False) -> np.ndarray:
    """Whole frames of WAV data -> (n, channels) float32 in [-1, 1].

    Float samples beyond full scale (codecs overshoot a little) are scaled down by the loudest one for a whole
    recording; a `stream`ed block is clipped instead, so every block of a long recording is treated alike.
    """
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
        if stream and values.dtype.kind == "f":
            if not np.all(np.isfinite(values)):
                raise UnreadableAudioError("The recording is damaged: some of its samples are not numbers.")
            values = np.clip(values, -1.0, 1.0)
        frames = _array_to_float(values)
    return frames.reshape(n, channels)


def _ffmpeg_decode(path: Path, what: str, suffix: str, limit: float) -> tuple[int, np.ndarray]:
    """Decodes the first audio stream of any file ffmpeg reads, at its own rate and channels, as float WAV."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        kind = f"{suffix.lstrip('.').upper()} files" if suffix.strip(".") else "this kind of recording"
        raise FfmpegMissingError(
            f"Reading {kind} needs ffmpeg, which is not installed on this computer ({_INSTALL_HINT}). "
            "WAV recordings work without it."
        )
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    # "file:" so that a name starting with "-" or looking like a URL ("http:...") is only ever a local file.
    command += ["-i", f"file:{path.resolve()}", "-map", "0:a:0", "-vn", "-sn", "-dn"]
    if limit != math.inf:
        command += ["-t", f"{limit + 1:g}"]  # a second past the limit: enough to tell that it is too long
    command += ["-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise UnreadableAudioError(f"{what} took too long to decode; it may be damaged.") from exc
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0 or not _is_wav(done.stdout[:12]):
        if "matches no streams" in stderr or "does not contain any stream" in stderr:
            raise NoSoundTrackError(f"{what} has no sound track, so there is nothing to listen to.")
        raise UnreadableAudioError(
            f"{what} is not a sound or video file Studio can read, or it is damaged "
            "(use WAV, MP3, Ogg, FLAC, WebM, M4A or a video with sound)."
        )
    decoded = _read_wav(io.BytesIO(done.stdout), what, limit)
    if decoded is None:  # ffmpeg was asked for float samples, which _read_wav reads
        raise UnreadableAudioError(f"{what} could not be decoded.")
    return decoded


# Long recordings, window by window ---------------------------------------------------------------------------------

# Sound events: long recordings are heard window by window and never held whole, so the limit is one of patience
# (about 20 minutes of CPU per hour of sound for AST), not of memory.
MAX_SOUND_S = 3 * 3600.0
# Input frames decoded per read: a second of 48 kHz stereo float is 384 KB.
_BLOCK_FRAMES = 1 << 15
_PROBE_TIMEOUT_S = 20.0


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


class _SoundReader:
    """Frames of a sound file (or bytes, or an array) in blocks, without holding the whole recording.

    `close()` ends the decoding (stops ffmpeg, closes the file) whether or not every block was read.
    """

    def __init__(self, rate: int, channels: int, duration_s: float | None, blocks, close=None) -> None:
        self.rate, self.channels, self.duration_s, self.blocks = rate, channels, duration_s, blocks
        self._close = close

    def close(self) -> None:
        if hasattr(self.blocks, "close"):
            self.blocks.close()
        if self._close is not None:
            self._close()
            self._close = None


def _open_sound(source, what_kind: str = "sound") -> _SoundReader:
    """Opens any input for block reading: WAV files are read here, other files stream through ffmpeg."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise AudioNotFoundError(f"The {what_kind} file {path} does not exist.")
        if path.is_dir():
            raise AudioNotFoundError(f"{path} is a folder, not a {what_kind} file.")
        what = f"The file {path.name}"
        if path.stat().st_size == 0:
            raise EmptyAudioError(f"{what} is empty (0 bytes).")
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
        if _is_wav(head):
            reader = _wav_reader(path, what)
            if reader is not None:
                return reader
        _refuse_text(head, what)
        return _ffmpeg_reader(path, what)
    if isinstance(source, (bytes, bytearray, memoryview)) and not _is_wav(bytes(source[:12])):
        # Compressed bytes (a browser's recording): through a temporary file, which ffmpeg can seek in.
        data = bytes(source)
        if not data:
            raise EmptyAudioError("The recording is empty (0 bytes).")
        _refuse_text(data[:_SNIFF_BYTES], "The recording")
        tmp = tempfile.TemporaryDirectory(prefix="studio-audio-")
        path = Path(tmp.name) / "recording"
        path.write_bytes(data)
        try:
            reader = _ffmpeg_reader(path, "The recording")
        except BaseException:
            tmp.cleanup()
            raise
        stop = reader._close

        def close():
            stop()
            tmp.cleanup()

        reader._close = close
        return reader
    # Already in memory (a microphone take, a Waveform, WAV bytes): nothing to stream.
    rate, frames = _decode(source, math.inf)
    frames = frames.reshape(len(frames), -1)
    return _SoundReader(rate, frames.shape[1], len(frames) / rate, iter([frames]))


def _wav_reader(path: Path, what: str) -> _SoundReader | None:
    damaged = UnreadableAudioError(f"{what} is a damaged WAV file and cannot be read.")
    f = open(path, "rb")  # noqa: SIM115 - closed by the reader's close()
    try:
        size, fmt = _wav_header(f, damaged)
    except BaseException:
        f.close()
        raise
    tag, channels, rate, block_align, bits = fmt
    if (tag, bits) not in _WAV_DTYPES:
        f.close()
        return None  # ADPCM, mu-law...: ffmpeg decodes it
    if channels == 0 or rate == 0 or block_align != channels * bits // 8:
        f.close()
        raise damaged
    data_bytes = size if size not in _UNKNOWN_SIZES else path.stat().st_size - f.tell()
    frames_total = min(data_bytes, path.stat().st_size - f.tell()) // block_align

    def blocks():
        left = frames_total
        while left > 0:
            raw = f.read(min(left, _BLOCK_FRAMES) * block_align)
            n = len(raw) // block_align
            if n == 0:
                return
            left -= n
            yield _pcm_to_float(raw[: n * block_align], fmt, stream=True)

    return _SoundReader(rate, channels, frames_total / rate, blocks(), close=f.close)


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


def _ffmpeg_reader(path: Path, what: str) -> _SoundReader:
    """Streams the first audio track of any file ffmpeg reads as float WAV through a pipe, block by block."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        kind = f"{path.suffix.lstrip('.').upper()} files" if path.suffix.strip(".") else "this kind of recording"
        raise FfmpegMissingError(
            f"Reading {kind} needs ffmpeg, which is not installed on this computer ({_INSTALL_HINT}). "
            "WAV recordings work without it."
        )
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    command += ["-i", f"file:{path.resolve()}", "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1"]
    command += ["-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    errors = tempfile.TemporaryFile()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL)

    def stop() -> str:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
        errors.seek(0)
        text = errors.read().decode("utf-8", "replace")
        errors.close()
        return text

    head = process.stdout.read(12)
    if not _is_wav(head):
        stderr = stop()
        if "matches no streams" in stderr or "does not contain any stream" in stderr:
            raise NoSoundTrackError(f"{what} has no sound track, so there is nothing to listen to.")
        raise UnreadableAudioError(
            f"{what} is not a sound or video file Studio can read, or it is damaged "
            "(use WAV, MP3, Ogg, FLAC, WebM, M4A or a video with sound)."
        )
    damaged = UnreadableAudioError(f"{what} could not be decoded.")
    try:
        _, fmt = _wav_header(_Prefixed(head, process.stdout), damaged)
    except BaseException:
        stop()
        raise
    block_align = fmt[3]

    def blocks():
        while True:
            raw = process.stdout.read(_BLOCK_FRAMES * block_align)
            n = len(raw) // block_align
            if n == 0:
                return
            yield _pcm_to_float(raw[: n * block_align], fmt, stream=True)

    stopped = []

    def close():
        if not stopped:
            stopped.append(True)
            stop()

    return _SoundReader(fmt[2], fmt[1], probe_duration(path), blocks(), close=close)


class _Prefixed:
    """A pipe with bytes already read from it put back in front (the WAV header parser reads from the start)."""

    def __init__(self, head: bytes, stream) -> None:
        self.head, self.stream = head, stream

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out, self.head = self.head[:n], self.head[n:]
            return out + (self.stream.read(n - len(out)) if n > len(out) else b"")
        return self.stream.read(n)


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
    reader = _open_sound(source)
    blocks = reader.blocks
    try:  # the reader is closed however the caller stops: ffmpeg must not outlive an abandoned listen
        if reader.duration_s is not None and reader.duration_s > max_duration_s:
            raise _too_long_sound(describe_duration(reader.duration_s), max_duration_s)
        resampler = StreamResampler(reader.rate, target_rate)
        pending = np.zeros(0, np.float32)
        start = 0  # output index of pending[0]
        index = 0
        seen = 0
        total = reader.duration_s

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

        for block in blocks:
            seen += len(block)
            if seen / reader.rate > max_duration_s:
                raise _too_long_sound(f"over {describe_duration(max_duration_s)}", max_duration_s)
            # Clipped as `load_audio` clips: resampling rings a little past full scale on clipped input.
            pending = np.concatenate([pending, np.clip(resampler.push(_to_mono(block)), -1.0, 1.0)])
            for window in windows_ready(final=False):
                yield window
                report(window)
        if seen == 0:
            raise EmptyAudioError("The recording has no sound in it (it is 0 seconds long).")
        if seen / reader.rate < MIN_DURATION_S:
            raise RecordingTooShortError(
                f"The sound is only {describe_duration(seen / reader.rate)} long; Studio needs at least "
                f"{MIN_DURATION_S:g} seconds to tell what it is."
            )
        pending = np.concatenate([pending, np.clip(resampler.flush(), -1.0, 1.0)])
        for window in windows_ready(final=True):
            yield window
            report(window)
    finally:
        reader.close()


def _too_long_sound(how_long: str, limit: float) -> RecordingTooLongError:
    return RecordingTooLongError(
        f"The recording is {how_long} long; Studio listens to at most {describe_duration(limit)} at a time. "
        "Cut it into shorter files."
    )


def check_sound(source) -> None:
    """Opens a recording and reads its header (ffmpeg starts decoding), to say what is wrong before a model loads.

    Raises:
        BadAudioError: (a subclass) missing, empty, not a sound file, damaged, or without a sound track.
    """
    _open_sound(source).close()
