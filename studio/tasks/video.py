"""Video action classification: clips -> top actions, per window of a long video and overall.

preprocess: each clip's frames (sampled evenly in real time over its window, see `studio.media.video`) are prepared
like images with the model's preprocessor settings and stacked to (1, frames, 3, H, W); forward: the one classifier
graph; postprocess: softmax over the model's labels. A video longer than one window gives a timeline (top actions per
window) and an overall ranking (the mean of the windows' probabilities).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.backends.base import GraphSet
from studio.errors import StudioError
from studio.media.video import BadVideoError, Clip, DecodeReport, clips_of, clock, open_video, window_count
from studio.progress import Progress, no_progress
from studio.tasks.base import GraphTask

TASK = "video"
TOP_K = 5
MIN_WINDOW_S = 0.2
MAX_WINDOW_S = 60.0


class VideoCancelled(StudioError):
    """The user stopped a long video before its end."""


@dataclass
class WindowResult:
    """Top actions of one window.

    Attributes:
        start_s: Window start, seconds from the first frame.
        end_s: Window end.
        top: [{"label", "score"}] best first.
        probabilities: Softmax over all labels (kept for the overall mean, not serialized).
    """

    start_s: float
    end_s: float
    top: list[dict]
    probabilities: np.ndarray = field(repr=False)

    def as_dict(self) -> dict:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "top": self.top}


@dataclass
class VideoResult:
    """A whole video's classification.

    Attributes:
        overall: Top actions over the whole video (mean of the windows' probabilities).
        windows: One result per window, in time order.
        window_s: Window length used.
        stride_s: Step between windows used.
        frames_per_clip: Frames the model saw per window.
        model_ms: Median time of one clip through the model.
        decode_ms: Total decoding + sampling + preparing time.
        cancelled: Whether the user stopped it before the end (then `windows` holds those done).
        notices: Sentences about parts of the file that could not be read.
    """

    overall: list[dict]
    windows: list[WindowResult]
    window_s: float
    stride_s: float
    frames_per_clip: int
    model_ms: float
    decode_ms: float
    cancelled: bool = False
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "overall": self.overall,
            "windows": [w.as_dict() for w in self.windows],
            "window_seconds": self.window_s,
            "stride_seconds": self.stride_s,
            "frames_per_clip": self.frames_per_clip,
            "model_ms_per_clip": round(self.model_ms, 1),
            "decode_ms_total": round(self.decode_ms, 1),
            "cancelled": self.cancelled,
            "notices": self.notices,
        }


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def check_window(window_s: float | None, stride_s: float | None, default_window: float) -> tuple[float, float]:
    """The window and stride to use (defaults: the model's clip length, stride = window).

    Raises:
        BadVideoError: Out of range.
    """
    window = float(window_s) if window_s else default_window
    stride = float(stride_s) if stride_s else window
    if not MIN_WINDOW_S <= window <= MAX_WINDOW_S:
        raise BadVideoError(
            f"The window must be between {MIN_WINDOW_S:g} and {MAX_WINDOW_S:g} seconds (you asked for {window:g})."
        )
    if not MIN_WINDOW_S <= stride <= MAX_WINDOW_S:
        raise BadVideoError(
            f"The step between windows must be between {MIN_WINDOW_S:g} and {MAX_WINDOW_S:g} seconds "
            f"(you asked for {stride:g})."
        )
    return window, stride


class VideoTask(GraphTask):
    """Classifies the action in video clips.

    Args:
        graphs: The "classifier" graph, with labels, frames per clip and clip length in metadata.
    """

    TASK = TASK

    def __init__(self, graphs: GraphSet) -> None:
        from studio.families.video_classifier import preprocessing

        super().__init__(graphs)
        self.meta = dict(graphs.metadata)
        self.labels: list[str] = list(self.meta["labels"])
        self.frames_per_clip = int(self.meta["num_frames"])
        self.clip_seconds = float(self.meta.get("clip_seconds", 2.0))
        self.prep = preprocessing(Path(graphs.files_dir))

    def preprocess(self, frames: list) -> np.ndarray:
        """A clip's frames (RGB uint8 arrays or PIL images, any count >= 1) -> (1, T, 3, H, W).

        Frames are picked evenly over the list when it holds more or fewer than the model's frame count.
        """
        from studio.families.video_classifier import clip_pixels

        if not frames:
            raise BadVideoError("There are no frames to classify yet.")
        index = np.floor((np.arange(self.frames_per_clip) + 0.5) * len(frames) / self.frames_per_clip).astype(int)
        return clip_pixels(self.prep, [frames[i] for i in index])

    def forward(self, pixel_values: np.ndarray) -> np.ndarray:
        """Logits (N, labels)."""
        return self.graphs.graphs["classifier"].run({"pixel_values": pixel_values})["logits"]

    def postprocess(self, logits: np.ndarray, top_k: int = TOP_K) -> tuple[list[dict], np.ndarray]:
        """Top-k [{"label", "score"}] and the full probabilities of one clip."""
        probs = _softmax(np.asarray(logits, np.float64)[0])
        return self.top(probs, top_k), probs

    def top(self, probs: np.ndarray, top_k: int = TOP_K) -> list[dict]:
        """The k most probable labels."""
        order = np.argsort(-probs, kind="stable")[:top_k]
        return [{"label": self.labels[i], "score": float(probs[i])} for i in order]

    def classify_frames(self, frames: list, top_k: int = TOP_K) -> list[dict]:
        """Top actions of one clip given as frames (the live camera's buffer)."""
        return self.postprocess(self.forward(self.preprocess(frames)), top_k)[0]

    def classify_clip(self, clip: Clip, top_k: int = TOP_K) -> WindowResult:
        """Top actions of one sampled clip."""
        top, probs = self.postprocess(self.forward(self.preprocess(clip.frames)), top_k)
        return WindowResult(clip.start_s, clip.end_s, top, probs)

    def classify_video(
        self,
        path: Path | str,
        window_s: float | None = None,
        stride_s: float | None = None,
        top_k: int = TOP_K,
        progress: Progress = no_progress,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> VideoResult:
        """Classifies a video file window by window.

        Args:
            path: The video.
            window_s: Seconds per window (default: the model's clip length).
            stride_s: Seconds between window starts (default: the window, no overlap).
            top_k: Labels per window and overall.
            progress: Receives fractions and sentences.
            cancelled: Polled between frames; the windows done so far are returned with `cancelled=True`.

        Raises:
            BadVideoError: The file cannot be read, or holds fewer than two frames.
        """
        window_s, stride_s = check_window(window_s, stride_s, self.clip_seconds)
        info = open_video(path)
        total = window_count(info.duration_s, window_s, stride_s)
        progress(0.0, f"Reading {Path(path).name}…")
        windows: list[WindowResult] = []
        model_times: list[float] = []
        started = time.perf_counter()
        report = DecodeReport()
        for clip in clips_of(info, self.frames_per_clip, window_s, stride_s, cancelled, report):
            t0 = time.perf_counter()
            windows.append(self.classify_clip(clip, top_k))
            model_times.append(time.perf_counter() - t0)
            span = f"{clock(clip.start_s)}–{clock(clip.end_s)}"
            if info.duration_s:
                progress(min(0.99, len(windows) / total), f"Window {len(windows)} of about {total} ({span})")
            else:  # the container does not say how long it is (e.g. a browser recording): creep towards the end
                progress(len(windows) / (len(windows) + 20), f"Window {len(windows)} ({span})")
        elapsed = time.perf_counter() - started
        stopped = cancelled()
        if not windows:
            if stopped:
                raise VideoCancelled("Stopped before the first window was classified.")
            raise BadVideoError(f"No window of {Path(path).name} could be classified.")
        mean = np.mean([w.probabilities for w in windows], axis=0)
        model_ms = float(np.median(model_times) * 1000)
        return VideoResult(
            overall=self.top(mean, top_k),
            windows=windows,
            window_s=window_s,
            stride_s=stride_s,
            frames_per_clip=self.frames_per_clip,
            model_ms=model_ms,
            decode_ms=(elapsed - sum(model_times)) * 1000,
            cancelled=stopped,
            notices=list(report.notices),
        )
