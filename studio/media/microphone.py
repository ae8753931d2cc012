"""The local microphone, for `studio listen` on a desktop: chunks of sound from `sounddevice` (PortAudio).

The app itself records in the browser (servers and containers have no microphone of their own); this is the extra
for a laptop. Whatever is missing, the PortAudio library, the package or an input device, is said in one sentence.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator

import numpy as np

from studio.errors import StudioError

CHUNK_S = 0.1


class MicrophoneUnavailableError(StudioError):
    """There is no microphone to listen to on this computer (or no way to reach it)."""


NO_DEVICE = (
    "This computer has no microphone (no audio input device was found), so there is nothing to listen to. "
    "Use the app's Sound & scene tab, which records in the browser, or give a file: "
    "studio predict av-events --audio FILE."
)


def _sounddevice():
    try:
        import sounddevice
    except ImportError as exc:
        raise MicrophoneUnavailableError(
            "Listening on this computer needs the sounddevice package (pip install sounddevice)."
        ) from exc
    except OSError as exc:  # the package is there, PortAudio is not
        raise MicrophoneUnavailableError(
            "Listening on this computer needs the PortAudio library (on Debian or Ubuntu: sudo apt-get install "
            "libportaudio2)."
        ) from exc
    return sounddevice


def input_device(device: int | str | None = None) -> dict:
    """The input device to listen to (the system's default one when `device` is None).

    Raises:
        MicrophoneUnavailableError: No such device, or none at all.
    """
    sd = _sounddevice()
    try:
        info = sd.query_devices(device, kind="input")
    except (sd.PortAudioError, ValueError) as exc:
        if device is None:
            raise MicrophoneUnavailableError(NO_DEVICE) from exc
        raise MicrophoneUnavailableError(
            f"There is no microphone “{device}” on this computer; leave out --input-device to use the default one."
        ) from exc
    if not info or int(info.get("max_input_channels", 0)) < 1:
        raise MicrophoneUnavailableError(NO_DEVICE)
    return dict(info)


def microphone_chunks(device: int | str | None = None, rate: int | None = None) -> Iterator[tuple[np.ndarray, int]]:
    """Mono float32 chunks of about `CHUNK_S` from the microphone, with their rate, until the caller stops.

    Args:
        device: Device index or name (None: the default input).
        rate: Samples per second to ask for (None: the device's own).

    Raises:
        MicrophoneUnavailableError: No microphone, or it could not be opened.
    """
    sd = _sounddevice()
    info = input_device(device)
    rate = int(rate or info.get("default_samplerate") or 48000)
    chunks: queue.Queue = queue.Queue(maxsize=100)

    def callback(data, frames, when, status):
        try:
            chunks.put_nowait(data[:, 0].copy())
        except queue.Full:  # the model fell behind: drop the oldest sound rather than lag further
            chunks.get_nowait()
            chunks.put_nowait(data[:, 0].copy())

    try:
        stream = sd.InputStream(
            device=device,
            channels=1,
            samplerate=rate,
            dtype="float32",
            blocksize=int(rate * CHUNK_S),
            callback=callback,
        )
    except (sd.PortAudioError, ValueError) as exc:
        raise MicrophoneUnavailableError(f"The microphone could not be opened ({exc}).") from exc
    with stream:
        while True:
            yield chunks.get(), rate
