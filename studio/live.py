"""Live streams: process only the newest frame, drop the ones that went stale waiting, and measure the delay.

Camera frames can arrive faster than a model runs. Instead of queueing them (the delay would grow without bound), a
frame that is overtaken by a newer one from the same stream while waiting for the model is dropped unprocessed.
Nothing here knows about gradio: the UI passes a stream key (its session) and a function to run.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

_WINDOW = 30  # frames in the latency median


@dataclass(frozen=True)
class LiveStats:
    """A stream's recent history.

    Attributes:
        processed: Frames that were run through the model.
        dropped: Frames skipped because a newer one had arrived while they waited.
        p50_ms: Median delay from a frame's arrival to its result, over the last frames.
        last_ms: The delay of the newest result.
    """

    processed: int
    dropped: int
    p50_ms: float | None
    last_ms: float | None
    fps: float | None = None

    @property
    def summary(self) -> str:
        if self.p50_ms is None:
            return "Waiting for the first frame…"
        frames = min(self.processed, _WINDOW)
        text = f"Delay {self.p50_ms:.0f} ms from frame to result (median of the last {frames} frames)"
        if self.fps:
            text += f" · {self.fps:.1f} frames/s"
        if self.dropped:
            text += f" · {self.dropped} stale frame{'s' if self.dropped != 1 else ''} skipped to stay live"
        return text


class _Stream:
    def __init__(self) -> None:
        self.latest = 0
        self.processed = 0
        self.dropped = 0
        self.delays: deque[float] = deque(maxlen=_WINDOW)
        self.finished: deque[float] = deque(maxlen=_WINDOW)
        self.last_seen = time.monotonic()


class LatestFrameGate:
    """Runs one frame at a time, and per stream only the newest frame that arrived.

    Args:
        max_streams: Streams remembered at once (oldest forgotten first), so abandoned sessions do not pile up.
    """

    def __init__(self, max_streams: int = 256) -> None:
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._streams: dict[Hashable, _Stream] = {}
        self._max_streams = max_streams

    def _stream(self, key: Hashable) -> _Stream:
        stream = self._streams.get(key)
        if stream is None:
            if len(self._streams) >= self._max_streams:
                oldest = min(self._streams, key=lambda k: self._streams[k].last_seen)
                del self._streams[oldest]
            stream = self._streams[key] = _Stream()
        stream.last_seen = time.monotonic()
        return stream

    def submit(self, key: Hashable, frame: Any, fn: Callable[[Any], Any]) -> tuple[Any | None, LiveStats]:
        """Offers a frame; runs `fn(frame)` unless a newer frame of the same stream arrives while it waits.

        Args:
            key: The stream (e.g. a browser session).
            frame: The frame, passed to `fn` as is.
            fn: The work to do on it (preprocess + model + postprocess).

        Returns:
            `fn`'s result, or None when the frame was dropped as stale; and the stream's stats.
        """
        arrived = time.perf_counter()
        with self._lock:
            stream = self._stream(key)
            stream.latest += 1
            ticket = stream.latest
        with self._model_lock:
            with self._lock:
                if stream.latest != ticket:
                    stream.dropped += 1
                    return None, self.stats(key)
            result = fn(frame)
        with self._lock:
            stream.processed += 1
            now = time.perf_counter()
            stream.delays.append((now - arrived) * 1000)
            stream.finished.append(now)
        return result, self.stats(key)

    def stats(self, key: Hashable) -> LiveStats:
        """The stream's current stats."""
        stream = self._streams.get(key)
        if stream is None or not stream.delays:
            return LiveStats(
                0 if stream is None else stream.processed, 0 if stream is None else stream.dropped, None, None
            )
        span = stream.finished[-1] - stream.finished[0] if len(stream.finished) > 1 else 0.0
        fps = (len(stream.finished) - 1) / span if span > 0 else None
        return LiveStats(stream.processed, stream.dropped, float(np.median(stream.delays)), stream.delays[-1], fps)

    def reset(self, key: Hashable) -> None:
        """Forgets a stream (the camera was stopped)."""
        with self._lock:
            self._streams.pop(key, None)


def spread(timed: list[tuple[float, Any]], n: int) -> list[Any]:
    """n items of a time-ordered [(seconds, item)] list: the one nearest to each of n times spread evenly over it."""
    times = np.asarray([t for t, _ in timed])
    start, end = times[0], times[-1]
    targets = start + (np.arange(n) + 0.5) * (end - start) / n
    return [timed[int(np.abs(times - target).argmin())][1] for target in targets]


@dataclass(frozen=True)
class ClipRun:
    """One finished classification of a camera clip.

    Attributes:
        value: What the work returned (None when it raised).
        error: What it raised, if anything.
        span_s: Seconds of camera the clip covered.
        frames: Frames the buffer held when the clip was taken.
        took_ms: How long the work ran.
    """

    value: Any
    error: BaseException | None
    span_s: float
    frames: int
    took_ms: float


class RollingClip:
    """The last few seconds of one camera stream, for models that look at clips rather than single frames.

    Frames older than `seconds` are dropped as new ones arrive, and at most `max_frames` are kept (the oldest go
    first), so memory is bounded whatever the camera's rate. Every `interval` seconds (`due`), `start` hands a
    snapshot of the buffer to a worker thread, so frames keep arriving while the model runs (a browser sends no new
    camera frame while the previous one's event is pending) and the next clip has no hole where the model ran. At most
    one run per stream: while one runs nothing is due, so runs never queue up; `take` returns each finished run once.
    """

    def __init__(self, seconds: float = 3.0, max_frames: int = 96) -> None:
        self.seconds = seconds
        self.buffer: deque[tuple[float, Any]] = deque(maxlen=max_frames)
        self.last_run: float | None = None
        self._lock = threading.Lock()
        self._running = False
        self._finished: ClipRun | None = None

    def add(self, t: float, frame: Any) -> None:
        """Adds a frame taken at time `t` (seconds, monotonic) and forgets those out of the window."""
        with self._lock:
            self.buffer.append((t, frame))
            while self.buffer and self.buffer[0][0] < t - self.seconds:
                self.buffer.popleft()

    @property
    def span(self) -> float:
        """Seconds between the oldest and the newest frame held."""
        return self.buffer[-1][0] - self.buffer[0][0] if len(self.buffer) > 1 else 0.0

    @property
    def running(self) -> bool:
        """Whether a run is under way."""
        return self._running

    def due(self, now: float, interval: float) -> bool:
        """Whether to classify now: no run under way, `interval` passed since the last one, and the buffer holds
        `interval` seconds (or all the seconds asked for, if fewer) so the first clip is not a blink."""
        if self._running or self.span < min(interval, self.seconds) - 1e-9:
            return False
        return self.last_run is None or now - self.last_run >= interval

    def frames(self, n: int) -> list[Any]:
        """n frames, each the one nearest to n times spread evenly over the buffer."""
        with self._lock:
            timed = list(self.buffer)
        return spread(timed, n)

    def start(self, now: float, work: Callable[[list[tuple[float, Any]]], Any]) -> None:
        """Runs `work(snapshot of the buffer as [(seconds, frame)])` on a worker thread; see `take`."""
        with self._lock:
            timed = list(self.buffer)
            self._running, self.last_run = True, now
        span = timed[-1][0] - timed[0][0] if len(timed) > 1 else 0.0

        def run() -> None:
            started = time.perf_counter()
            value, error = None, None
            try:
                value = work(timed)
            except BaseException as exc:  # handed to the caller of `take`, who decides what the user sees
                error = exc
            finished = ClipRun(value, error, span, len(timed), (time.perf_counter() - started) * 1000)
            with self._lock:
                self._finished, self._running = finished, False

        threading.Thread(target=run, name="camera-clip", daemon=True).start()

    def take(self) -> ClipRun | None:
        """The run finished since the last call, if any (each run is returned once)."""
        with self._lock:
            finished, self._finished = self._finished, None
        return finished
