"""Log-mel features for the sound models, as their own feature extractors compute them, in vectorized numpy.

AST (`ASTFeatureExtractor`) and CLAP (`ClapFeatureExtractor`) compute their spectrograms with transformers'
`audio_utils.spectrogram`, which runs one FFT per frame in a Python loop (about 1,000 frames per 10-second window).
Here the frames are cut with a strided view and transformed in one batched FFT, with the same arithmetic (float64
frames, the spectrum stored as complex64 as transformers stores it, the same mel filter banks), so the features are
those of the models' own extractors to float rounding (tests compare them on the same waveforms) at a fraction of
the time. The settings come from the model's `preprocessor_config.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from studio.errors import ModelUnavailableError

PREPROCESSOR_CONFIG = "preprocessor_config.json"
# transformers 5 saves a processor's settings here, the feature extractor's under "feature_extractor".
PROCESSOR_CONFIG = "processor_config.json"


def _read_config(directory: Path) -> dict:
    """The feature extractor settings of a model folder (hub checkpoints' flat file, or transformers 5's nested one)."""
    for name, key in ((PREPROCESSOR_CONFIG, None), (PROCESSOR_CONFIG, "feature_extractor")):
        try:
            config = json.loads((Path(directory) / name).read_text())
        except (OSError, ValueError):
            continue
        if key is not None:
            config = config.get(key) if isinstance(config, dict) else None
        if isinstance(config, dict):
            return config
    raise ModelUnavailableError(f"The model folder {directory} has no readable sound settings ({PREPROCESSOR_CONFIG}).")


_CASTS = {"int": int, "float": float, "bool": bool, "str": str}


def _settings_from_dir(cls, directory: Path):
    """A feature extractor's settings dataclass from a model folder: each field the config names, as the field's
    type; the others keep their defaults (the values transformers' extractors default to)."""
    config = _read_config(directory)
    return cls(**{f.name: _CASTS[f.type](config[f.name]) for f in fields(cls) if f.name in config})


def _frames(samples: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """(n_frames, frame_length) float64 frames starting every `hop_length` samples (a copy, safe to modify)."""
    n_frames = 1 + (len(samples) - frame_length) // hop_length
    view = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float64, copy=False), frame_length)
    return view[::hop_length][:n_frames].copy()


def _power_spectrum(frames: np.ndarray, window: np.ndarray, fft_length: int) -> np.ndarray:
    """|rfft|^2 of windowed frames, (n_frames, bins) float64; the spectrum is rounded to complex64 first, as
    transformers' `spectrogram` stores it."""
    spectrum = np.fft.rfft(frames * window, n=fft_length, axis=1).astype(np.complex64)
    return np.abs(spectrum, dtype=np.float64) ** 2


@dataclass(frozen=True)
class AstFeatures:
    """Kaldi-style log-mel filter banks for AST (`ASTFeatureExtractor` without torchaudio).

    25 ms frames every 10 ms at 16 kHz (400-sample symmetric Hann window, 512-point FFT), DC offset removed and
    pre-emphasis 0.97 per frame, a Kaldi-scale mel bank from 20 Hz, natural log; padded with zeros or cut to
    `max_length` frames, then normalized with the AudioSet mean and standard deviation.
    """

    sampling_rate: int = 16000
    num_mel_bins: int = 128
    max_length: int = 1024
    do_normalize: bool = True
    mean: float = -4.2677393
    std: float = 4.5689974

    FRAME = 400
    HOP = 160
    FFT = 512

    @classmethod
    def from_dir(cls, directory: Path) -> AstFeatures:
        """Reads the settings of a model folder's `preprocessor_config.json`."""
        return _settings_from_dir(cls, directory)

    @property
    def window_samples(self) -> int:
        """How many samples fill the model's `max_length` frames (10.255 s for AST's 1024 frames)."""
        return self.FRAME + (self.max_length - 1) * self.HOP

    @property
    def _filters(self) -> tuple[np.ndarray, np.ndarray]:
        return _ast_filters(self.num_mel_bins, self.sampling_rate)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """One window's features, (max_length, num_mel_bins) float32.

        Args:
            samples: Mono float samples at `sampling_rate`, at least 400 of them (25 ms).
        """
        samples = np.asarray(samples, dtype=np.float32)
        if len(samples) < self.FRAME:  # fewer samples than one frame: the extractor would fail; pad the frame
            samples = np.pad(samples, (0, self.FRAME - len(samples)))
        window, mel = self._filters
        frames = _frames(samples, self.FRAME, self.HOP)[: self.max_length]
        frames -= frames.mean(axis=1, keepdims=True)
        frames[:, 1:] -= 0.97 * frames[:, :-1]
        frames[:, 0] *= 1 - 0.97
        power = _power_spectrum(frames, window, self.FFT)
        fbank = np.log(np.maximum(1.192092955078125e-07, power @ mel)).astype(np.float32)
        if len(fbank) < self.max_length:
            fbank = np.pad(fbank, ((0, self.max_length - len(fbank)), (0, 0)))
        if self.do_normalize:
            fbank = (fbank - self.mean) / (self.std * 2)
        return fbank.astype(np.float32, copy=False)

    def batch(self, windows: list[np.ndarray]) -> np.ndarray:
        """Features of several windows, (N, max_length, num_mel_bins) float32: the graph's `input_values`."""
        return np.stack([self(w) for w in windows])


_FILTER_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _ast_filters(num_mel_bins: int, sampling_rate: int) -> tuple[np.ndarray, np.ndarray]:
    key = ("ast", num_mel_bins, sampling_rate)
    if key not in _FILTER_CACHE:
        from transformers.audio_utils import mel_filter_bank, window_function

        mel = mel_filter_bank(
            num_frequency_bins=257,
            num_mel_filters=num_mel_bins,
            min_frequency=20,
            max_frequency=sampling_rate // 2,
            sampling_rate=sampling_rate,
            norm=None,
            mel_scale="kaldi",
            triangularize_in_mel_space=True,
        )
        _FILTER_CACHE[key] = (window_function(400, "hann", periodic=False).astype(np.float64), mel)
    return _FILTER_CACHE[key]


@dataclass(frozen=True)
class ClapFeatures:
    """CLAP's log-mel spectrogram in decibels (`ClapFeatureExtractor`) for one window of at most `max_length_s`.

    Shorter sound is repeated to fill the window and padded with zeros ("repeatpad"), or only padded ("pad"), or
    repeated and cut ("repeat"). "rand_trunc" models (clap-htsat-unfused) take one spectrogram with the Slaney mel
    bank; "fusion" models take the HTK-bank spectrogram four times. Windows are never longer than `max_length_s`
    here (long recordings are cut into windows first), so the extractors' random crops never happen.
    """

    sampling_rate: int = 48000
    feature_size: int = 64
    hop_length: int = 480
    max_length_s: float = 10.0
    fft_window_size: int = 1024
    frequency_min: float = 0.0
    frequency_max: float = 14000.0
    truncation: str = "fusion"
    padding: str = "repeatpad"

    @classmethod
    def from_dir(cls, directory: Path) -> ClapFeatures:
        """Reads the settings of a model folder's `preprocessor_config.json`."""
        return _settings_from_dir(cls, directory)

    @property
    def window_samples(self) -> int:
        """Samples in one full window (480,000: 10 s at 48 kHz)."""
        return int(self.max_length_s * self.sampling_rate)

    @property
    def _filters(self) -> tuple[np.ndarray, np.ndarray]:
        key = ("clap", self.fft_window_size, self.feature_size, self.frequency_min, self.frequency_max)
        key += (self.sampling_rate, self.truncation)
        if key not in _FILTER_CACHE:
            from transformers.audio_utils import mel_filter_bank, window_function

            slaney = self.truncation != "fusion"
            mel = mel_filter_bank(
                num_frequency_bins=(self.fft_window_size >> 1) + 1,
                num_mel_filters=self.feature_size,
                min_frequency=self.frequency_min,
                max_frequency=self.frequency_max,
                sampling_rate=self.sampling_rate,
                norm="slaney" if slaney else None,
                mel_scale="slaney" if slaney else "htk",
            )
            _FILTER_CACHE[key] = (window_function(self.fft_window_size, "hann").astype(np.float64), mel)
        return _FILTER_CACHE[key]

    def _filled(self, samples: np.ndarray) -> np.ndarray:
        """The window's samples after CLAP's padding rule."""
        n = self.window_samples
        samples = np.asarray(samples, dtype=np.float64)[:n]
        if len(samples) == 0:
            return np.zeros(n)
        if len(samples) < n:
            if self.padding == "repeat":
                samples = np.tile(samples, n // len(samples) + 1)[:n]
            elif self.padding == "repeatpad":
                samples = np.tile(samples, n // len(samples))
            samples = np.pad(samples, (0, n - len(samples)))
        return samples

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """One window's features, (channels, frames, feature_size) float32 (channels: 1, or 4 for fusion models)."""
        window, mel = self._filters
        half = self.fft_window_size // 2
        padded = np.pad(self._filled(samples), (half, half), mode="reflect")
        power = _power_spectrum(_frames(padded, self.fft_window_size, self.hop_length), window, self.fft_window_size)
        mel_power = np.maximum(1e-10, power @ mel)
        db = (10.0 * np.log10(np.maximum(mel_power, 1e-10))).astype(np.float32)
        return np.stack([db] * (4 if self.truncation == "fusion" else 1))

    def batch(self, windows: list[np.ndarray]) -> np.ndarray:
        """Features of several windows, (N, channels, frames, feature_size) float32: the graph's `input_features`."""
        return np.stack([self(w) for w in windows])
