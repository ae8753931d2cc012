"""Video action classification: a video file window by window, or the live camera's last seconds."""

from __future__ import annotations

from collections.abc import Callable

from studio.errors import StudioError
from studio.progress import Progress, no_progress
from studio.services.base import Runtime, Service, ran_on

TASK = "video"
TIMELINE_LABELS = 5  # the overall top actions whose probability is given for every window


class VideoService(Service):
    """Recognizes actions: the whole job behind the Video tab and `studio predict video`."""

    TASK_CLASS = "studio.tasks.video:VideoTask"

    def wants_labels(self, model: str | None) -> bool:
        """Whether a model compares videos with typed actions (X-CLIP) rather than knowing its own actions."""
        from studio.sources import resolve

        try:
            self.models.sharing.check_model(model, TASK)  # before the name is looked up on disk
            return resolve(model or None, TASK, self.models.models_dir).family == "xclip"
        except StudioError:
            return False

    def __call__(
        self,
        video,
        *,
        window_seconds: float | None = None,
        stride_seconds: float | None = None,
        top_k: int = 5,
        labels: str | list[str] | None = None,
        runtime: Runtime = Runtime(),
        progress: Progress = no_progress,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> dict:
        """Classifies a video file, window by window.

        Args:
            video: The video file's path.
            window_seconds: Seconds per window (None: the model's clip length).
            stride_seconds: Seconds between window starts (None: the window, no overlap).
            top_k: Actions listed per window and overall.
            labels: The actions to look for, for X-CLIP models (others know their own, and say so if given some).
            runtime: Which model, and on what.
            progress: Receives fractions and sentences, window by window.
            cancelled: Polled between frames; the windows done so far are returned with "cancelled": true.

        Returns:
            {"task", "model", "backend", "provider", "runtime", "overall", "windows": [{"start_s", "end_s", "top"}],
            "window_seconds", "stride_seconds", "frames_per_clip", "model_ms_per_clip", "decode_ms_total",
            "cancelled", "notices", "timeline": {"labels" (the overall top actions), "scores" (one row per label:
            its probability in each window)}}.

        Raises:
            StudioError: A video or actions the model cannot take (checked before any model loads).
        """
        from studio.media.text import typed_items
        from studio.media.video import open_video
        from studio.tasks.video import check_labels

        self.models.sharing.check_labels(typed_items(labels), "actions")
        open_video(video)  # say what is wrong with the video and the actions before loading a model
        check_labels(labels, zero_shot=self.wants_labels(runtime.model))
        task = self.task(runtime, progress)
        result = task.classify_video(
            video, window_seconds, stride_seconds, top_k=top_k, progress=progress, cancelled=cancelled, labels=labels
        )
        top = [t["label"] for t in result.overall[:TIMELINE_LABELS]]
        index = [result.labels.index(label) for label in top]
        return {
            "task": TASK,
            **ran_on(task),
            **result.as_dict(),
            "notices": task.graphs.notices + result.notices,
            "timeline": {"labels": top, "scores": [[float(w.probabilities[i]) for w in result.windows] for i in index]},
        }

    def classify_frames(
        self,
        frames: list,
        *,
        top_k: int = 5,
        labels: str | list[str] | None = None,
        runtime: Runtime = Runtime(),
    ) -> dict:
        """Classifies one clip given as frames (the live camera's last seconds, picked evenly by the caller).

        Returns:
            {"task", "model", "backend", "provider", "runtime", "top": [{"label", "score"}], "frames_per_clip",
            "notices"}.
        """
        task = self.task(runtime)
        top = task.classify_frames(frames, top_k=top_k, labels=labels)
        notices = task.graphs.notices + task.resolve_labels(labels)[1]
        return {"task": TASK, **ran_on(task), "top": top, "frames_per_clip": task.frames_per_clip, "notices": notices}

    def frames_per_clip(self, runtime: Runtime = Runtime()) -> int:
        """How many frames the model looks at per clip (the camera picks that many from its buffer)."""
        return self.task(runtime).frames_per_clip
