"""Video action classification: clips -> top actions, per window of a long video and overall.

preprocess: each clip's frames (sampled evenly in real time over its window, see `studio.media.video`) are prepared
like images with the model's preprocessor settings and stacked to (1, frames, 3, H, W); forward: the one classifier
graph (X-CLIP: video encoder, then a scorer against the typed actions' cached text embeddings); postprocess: softmax
over the labels. A video longer than one window gives a timeline (top actions per window) and an overall ranking (the
mean of the windows' probabilities).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.backends.base import GraphSet
from studio.errors import BadLabelsError, StudioError
from studio.media.video import BadVideoError, Clip, DecodeReport, clips_of, clock, open_video, window_count
from studio.progress import Progress, no_progress
from studio.scores import ranked, softmax
from studio.tasks.base import GraphTask
from studio.tasks.zero_shot import parse_labels

TASK = "video"
TOP_K = 5
MIN_WINDOW_S = 0.2
MAX_WINDOW_S = 60.0
_TEXT_BATCH = 64
_TEXT_CACHE_SIZE = 16


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
        notices: Sentences about the input (parts of the file that could not be read, typed actions not used).
        labels: The actions scored, in the order of each window's `probabilities`.
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
    labels: list[str] = field(default_factory=list, repr=False)

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


def check_labels(labels: str | list[str] | None, zero_shot: bool, known: int = 0) -> tuple[list[str], list[str]]:
    """Typed actions for a model: X-CLIP needs at least two; a classifier ignores them and says so.

    Args:
        labels: "waving, clapping" (commas or new lines), a list, or None.
        zero_shot: Whether the model scores typed actions (X-CLIP).
        known: How many actions a classifier knows (for its notice).

    Returns:
        The parsed actions (empty for a classifier) and notices.

    Raises:
        BadLabelsError: X-CLIP without at least two actions.
    """
    typed = labels if isinstance(labels, str) else ",".join(labels or [])
    given = bool(typed.replace(",", "").strip())
    if not zero_shot:
        if not given:
            return [], []
        return [], [
            f"This model recognizes the {known} actions it was trained on; the actions you typed are used only by "
            "X-CLIP models."
        ]
    if not given:
        raise BadLabelsError(
            "X-CLIP compares the video with actions you type: type at least two, separated by commas, for example: "
            "waving, clapping, jumping."
        )
    return parse_labels(labels)


class VideoTask(GraphTask):
    """Classifies the action in video clips.

    Two kinds of models: classifiers (VideoMAE, TimeSformer: one "classifier" graph and the actions they were trained
    on, in metadata) and X-CLIP, which scores a clip against actions the user types ("video_encoder", "text_encoder"
    and "scorer" graphs; typed actions are encoded once per set and cached).

    Args:
        graphs: The model's graphs, with frames per clip and clip length (and a classifier's labels) in metadata.
    """

    TASK = TASK

    def __init__(self, graphs: GraphSet) -> None:
        from studio.families.video_classifier import preprocessing

        super().__init__(graphs)
        self.meta = dict(graphs.metadata)
        self.zero_shot = "video_encoder" in graphs.graphs
        self.labels: list[str] = list(self.meta.get("labels") or [])
        self.frames_per_clip = int(self.meta["num_frames"])
        self.clip_seconds = float(self.meta.get("clip_seconds", 2.0))
        self.prep = preprocessing(Path(graphs.files_dir))
        self._text_cache: OrderedDict[tuple[str, ...], np.ndarray] = OrderedDict()
        if self.zero_shot:
            self.tokenizer = self.text_tokenizer()

    def resolve_labels(self, labels: str | list[str] | None = None) -> tuple[list[str], list[str]]:
        """The actions to score and notices about them (see `check_labels`).

        Args:
            labels: Typed actions ("waving, clapping" or a list): required by X-CLIP; a classifier scores its own.
        """
        if not self.zero_shot:
            return self.labels, check_labels(labels, zero_shot=False, known=len(self.labels))[1]
        return check_labels(labels, zero_shot=True)

    def text_embeds(self, labels: list[str]) -> np.ndarray:
        """X-CLIP's text embeddings (K, D) of a label set, encoded once and cached."""
        key = tuple(labels)
        if key in self._text_cache:
            self._text_cache.move_to_end(key)
            return self._text_cache[key]
        graph = self.graphs.graphs["text_encoder"]
        embeds = np.concatenate(
            [
                graph.run(self.tokenizer(list(key[i : i + _TEXT_BATCH])))["text_embeds"]
                for i in range(0, len(key), _TEXT_BATCH)
            ]
        ).astype(np.float32)
        self._text_cache[key] = embeds
        if len(self._text_cache) > _TEXT_CACHE_SIZE:
            self._text_cache.popitem(last=False)
        return embeds

    def preprocess(self, frames: list) -> np.ndarray:
        """A clip's frames (RGB uint8 arrays or PIL images, any count >= 1) -> (1, T, 3, H, W).

        Frames are picked evenly over the list when it holds more or fewer than the model's frame count.
        """
        from studio.families.video_classifier import clip_pixels

        if not frames:
            raise BadVideoError("There are no frames to classify yet.")
        index = np.floor((np.arange(self.frames_per_clip) + 0.5) * len(frames) / self.frames_per_clip).astype(int)
        return clip_pixels(self.prep, [frames[i] for i in index])

    def forward(self, pixel_values: np.ndarray, labels: list[str] | None = None) -> np.ndarray:
        """Logits (N, labels); X-CLIP scores against `labels` (see `resolve_labels`)."""
        graphs = self.graphs.graphs
        if not self.zero_shot:
            return graphs["classifier"].run({"pixel_values": pixel_values})["logits"]
        video = graphs["video_encoder"].run({"pixel_values": pixel_values})
        inputs = {"video_embeds": video["video_embeds"], "img_features": video["img_features"]}
        return graphs["scorer"].run({**inputs, "text_embeds": self.text_embeds(list(labels or []))})["logits"]

    def postprocess(self, logits: np.ndarray, labels: list[str], top_k: int = TOP_K) -> tuple[list[dict], np.ndarray]:
        """Top-k [{"label", "score"}] and the full probabilities of one clip."""
        probs = softmax(np.asarray(logits, np.float64)[0])
        return self.top(probs, labels, top_k), probs

    @staticmethod
    def top(probs: np.ndarray, labels: list[str], top_k: int = TOP_K) -> list[dict]:
        """The k most probable labels."""
        return ranked(probs, labels, top_k)

    def classify_frames(self, frames: list, top_k: int = TOP_K, labels: str | list[str] | None = None) -> list[dict]:
        """Top actions of one clip given as frames (the live camera's buffer)."""
        names, _ = self.resolve_labels(labels)
        return self.postprocess(self.forward(self.preprocess(frames), names), names, top_k)[0]

    def classify_clip(self, clip: Clip, top_k: int = TOP_K, labels: str | list[str] | None = None) -> WindowResult:
        """Top actions of one sampled clip."""
        return self._classify_clip(clip, self.resolve_labels(labels)[0], top_k)

    def _classify_clip(self, clip: Clip, names: list[str], top_k: int) -> WindowResult:
        top, probs = self.postprocess(self.forward(self.preprocess(clip.frames), names), names, top_k)
        return WindowResult(clip.start_s, clip.end_s, top, probs)

    def classify_video(
        self,
        path: Path | str,
        window_s: float | None = None,
        stride_s: float | None = None,
        top_k: int = TOP_K,
        progress: Progress = no_progress,
        cancelled: Callable[[], bool] = lambda: False,
        labels: str | list[str] | None = None,
    ) -> VideoResult:
        """Classifies a video file window by window.

        Args:
            path: The video.
            window_s: Seconds per window (default: the model's clip length).
            stride_s: Seconds between window starts (default: the window, no overlap).
            top_k: Labels per window and overall.
            progress: Receives fractions and sentences.
            cancelled: Polled between frames; the windows done so far are returned with `cancelled=True`.
            labels: The actions to look for, for X-CLIP (see `resolve_labels`).

        Raises:
            BadVideoError: The file cannot be read, or holds fewer than two frames.
            BadLabelsError: X-CLIP without actions to look for.
        """
        window_s, stride_s = check_window(window_s, stride_s, self.clip_seconds)
        names, label_notices = self.resolve_labels(labels)
        info = open_video(path)
        total = window_count(info.duration_s, window_s, stride_s)
        progress(0.0, f"Reading {Path(path).name}…")
        windows: list[WindowResult] = []
        model_times: list[float] = []
        started = time.perf_counter()
        report = DecodeReport()
        for clip in clips_of(info, self.frames_per_clip, window_s, stride_s, cancelled, report):
            t0 = time.perf_counter()
            windows.append(self._classify_clip(clip, names, top_k))
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
            overall=self.top(mean, names, top_k),
            windows=windows,
            window_s=window_s,
            stride_s=stride_s,
            frames_per_clip=self.frames_per_clip,
            model_ms=model_ms,
            decode_ms=(elapsed - sum(model_times)) * 1000,
            cancelled=stopped,
            notices=label_notices + report.notices,
            labels=names,
        )
