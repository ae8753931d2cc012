"""Speech to text with Whisper: a recording in, the words said out.

The recording is decoded by `studio.media.audio` (any format, mono, at the feature extractor's rate), turned into
log-mel features by the model's own WhisperFeatureExtractor, transcribed by the family's "transcriber" graph and
decoded by the model's tokenizer, so a transcript is what transformers gives for the same model and recording.

Whisper hears 30 seconds at a time. A longer recording (a question may be up to `MAX_QUESTION_S`) is cut into windows
at its quietest moments near each 30-second mark, so no word is cut in half, and the windows run as one batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.backends.base import GraphSet
from studio.errors import StudioError
from studio.media.audio import MAX_QUESTION_S, Waveform, load_audio
from studio.tasks.base import GraphTask

TASK = "speech-to-text"
NOTHING_HEARD = "I did not catch any words; try again closer to the microphone."
# Where to cut a long recording: the quietest 20 ms in the last 5 seconds before each window's end.
_CUT_SEARCH_S = 5.0
_CUT_FRAME_S = 0.02


class NoWordsError(StudioError):
    """The model heard no words in the recording."""


@dataclass
class TranscriptResult:
    """One transcript.

    Attributes:
        text: The words said, as the model wrote them (capitals and punctuation included).
        latency_ms: Whole call: decoding the recording, features, the model, the tokenizer.
        duration_s: Length of the recording.
        token_ids: The generated token ids of each window, end-of-text padding removed, one after the other.
        windows: How many 30-second windows the recording was cut into.
    """

    text: str
    latency_ms: float
    duration_s: float
    token_ids: list[int] = field(default_factory=list)
    windows: int = 1

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "latency_ms": round(self.latency_ms, 2),
            "duration_s": round(self.duration_s, 3),
            "tokens": len(self.token_ids),
            "windows": self.windows,
        }


class TranscribeTask(GraphTask):
    """Writes down what is said in a recording.

    Args:
        graphs: The Whisper graph ("transcriber"); `files_dir` holds the feature extractor and tokenizer files.
    """

    TASK = TASK

    def __init__(self, graphs: GraphSet) -> None:
        from transformers import AutoTokenizer, WhisperFeatureExtractor

        from studio.families import quiet_transformers

        quiet_transformers()
        super().__init__(graphs)
        files = Path(graphs.files_dir)
        self.feature_extractor = WhisperFeatureExtractor.from_pretrained(str(files))
        self.tokenizer = AutoTokenizer.from_pretrained(str(files))
        self.sampling_rate = int(self.feature_extractor.sampling_rate)
        self.window_s = float(self.feature_extractor.chunk_length)

    def waveform(self, audio) -> Waveform:
        """Decodes a recording at the feature extractor's rate (see `media.audio.load_audio` for what it takes).

        Raises:
            BadAudioError: Missing, unreadable, too short, too long or silent.
        """
        return load_audio(audio, self.sampling_rate, max_duration_s=MAX_QUESTION_S)

    def preprocess(self, audio) -> np.ndarray:
        """Log-mel features of a recording, one row per 30-second window: (N, 80, 3000) float32."""
        waveform = audio if _at_rate(audio, self.sampling_rate) else self.waveform(audio)
        windows = split_into_windows(waveform.samples, waveform.rate, self.window_s)
        features = self.feature_extractor(windows, sampling_rate=waveform.rate, return_tensors="np").input_features
        return np.ascontiguousarray(features, dtype=np.float32)

    def forward(self, input_features: np.ndarray) -> np.ndarray:
        """Runs the transcriber: (N, T) generated token ids, rows padded with end-of-text."""
        return self.graphs.graphs["transcriber"].run({"input_features": input_features})["token_ids"]

    def postprocess(self, token_ids: np.ndarray) -> str:
        """The transcript: each window's tokens decoded without special tokens, joined with spaces.

        Raises:
            NoWordsError: No window has a word in it.
        """
        texts = self.tokenizer.batch_decode(np.asarray(token_ids).tolist(), skip_special_tokens=True)
        text = " ".join(t.strip() for t in texts if t.strip())
        if not text:
            raise NoWordsError(NOTHING_HEARD)
        return text

    def __call__(self, audio) -> TranscriptResult:
        """Transcribes one recording.

        Args:
            audio: A file path, its bytes, Gradio's (rate, array) tuple, or a `Waveform`.

        Raises:
            BadAudioError: The recording cannot be listened to (the sentence says why).
            NoWordsError: The model heard no words.
        """
        started = time.perf_counter()
        waveform = self.waveform(audio)
        token_ids = self.forward(self.preprocess(waveform))
        text = self.postprocess(token_ids)
        return TranscriptResult(
            text=text,
            latency_ms=(time.perf_counter() - started) * 1000,
            duration_s=waveform.duration_s,
            token_ids=[t for row in token_ids.tolist() for t in _without_padding(row, self.tokenizer.eos_token_id)],
            windows=len(token_ids),
        )


def split_into_windows(samples: np.ndarray, rate: int, window_s: float) -> list[np.ndarray]:
    """Cuts a recording into pieces of at most `window_s`, each cut at the quietest 20 ms before the window's end.

    Args:
        samples: Mono samples.
        rate: Their rate.
        window_s: The longest piece (Whisper's 30 seconds).

    Returns:
        Consecutive pieces that together are the whole recording.
    """
    window = int(window_s * rate)
    frame = max(1, int(_CUT_FRAME_S * rate))
    search = min(int(_CUT_SEARCH_S * rate), window // 2)
    pieces, start = [], 0
    while len(samples) - start > window:
        region = samples[start + window - search : start + window].astype(np.float64)
        usable = (len(region) // frame) * frame
        energy = (region[:usable].reshape(-1, frame) ** 2).mean(axis=1)
        # The last of the quietest frames: the longest window that still ends in a pause.
        quietest = len(energy) - 1 - int(np.argmin(energy[::-1]))
        cut = start + window - search + quietest * frame + frame // 2
        pieces.append(samples[start:cut])
        start = cut
    pieces.append(samples[start:])
    return pieces


def _at_rate(audio, rate: int) -> bool:
    return isinstance(audio, Waveform) and audio.rate == rate


def _without_padding(row: list[int], eos: int | None) -> list[int]:
    """A window's generated ids up to and including its end-of-text token (the rest is batch padding)."""
    return row[: row.index(eos) + 1] if eos is not None and eos in row else row
