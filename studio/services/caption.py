"""Captioning: a picture described in words, phrased for listeners; for the live camera, only when the scene changed."""

from __future__ import annotations

from studio.progress import Progress, no_progress
from studio.scores import cosine_distance
from studio.services.base import LoadedModels, ran_on

TASK = "caption"
SETTINGS_REPORTED = ("num_beams", "max_new_tokens", "repetition_penalty", "no_repeat_ngram_size", "min_new_tokens")


class CaptionService:
    """Describes pictures: the whole job behind the Caption tab and `studio predict caption`.

    Args:
        models: The process's loaded models.
    """

    def __init__(self, models: LoadedModels) -> None:
        self.models = models

    def task(self, model=None, backend="auto", device="auto", variant="fp32", progress: Progress | None = None):
        """The loaded captioning task."""
        from studio.tasks.caption import CaptionTask

        return self.models.get(CaptionTask, model, backend, device, variant, progress)

    def __call__(
        self,
        image,
        *,
        prefix: str | None = None,
        verbosity: str = "short",
        beams: int | None = None,
        max_new_tokens: int | None = None,
        repetition_penalty: float | None = None,
        no_repeat_ngram_size: int | None = None,
        describe_people: bool = False,
        model: str | None = None,
        backend: str = "auto",
        device: str = "auto",
        variant: str = "fp32",
        channel_order: str = "RGB",
        progress: Progress = no_progress,
    ) -> dict:
        """Captions one picture.

        Args:
            image: Path, bytes, PIL image or array.
            prefix: Words the caption must start with ("a photograph of"), or None.
            verbosity: "short" or "detailed": the decoding preset.
            beams, max_new_tokens, repetition_penalty, no_repeat_ngram_size: Decoding values that replace the
                preset's (None: the preset's).
            describe_people: Keep words about people's age and looks.
            model, backend, device, variant: Which model runs, and on what.
            channel_order: "RGB", or "BGR" for OpenCV frames.
            progress: Receives fractions and sentences while the model loads.

        Returns:
            {"task", "model", "backend", "provider", "runtime", "caption" (phrased for listeners), "model_caption",
            "confidence", "certainty", "latency_ms", "encoder_ms", "decode_ms", "tokens", "settings", "notices"}.

        Raises:
            StudioError: A bad picture, prefix or setting (checked before any model loads), or no model.
        """
        from studio.media.image import load_image
        from studio.tasks.caption import check_prefix, settings_for

        picture = load_image(image, channel_order)
        check_prefix(prefix)
        settings = settings_for(verbosity, beams, max_new_tokens, repetition_penalty, no_repeat_ngram_size)
        task = self.task(model, backend, device, variant, progress)
        result = task(picture, prefix=prefix, settings=settings, describe_people=describe_people)
        return _as_dict(task, result, settings)

    def describe_if_changed(
        self,
        frame,
        *,
        since=None,
        change_threshold: float = 0.15,
        prefix: str | None = None,
        verbosity: str = "short",
        beams: int | None = None,
        max_new_tokens: int | None = None,
        repetition_penalty: float | None = None,
        no_repeat_ngram_size: int | None = None,
        describe_people: bool = False,
        model: str | None = None,
        backend: str = "auto",
        device: str = "auto",
        variant: str = "fp32",
        channel_order: str = "RGB",
    ) -> dict:
        """Live describe: encodes a camera frame, and writes a caption only if the scene changed since `since`.

        Args:
            frame: The camera frame.
            since: The scene embedding of the last description said (None: describe whatever it shows).
            change_threshold: Cosine distance from `since` above which the scene counts as changed.
            (the rest as `__call__`)

        Returns:
            {"task", "model", "backend", "provider", "runtime", "changed": False, "distance"} when the scene is the
            same; else `__call__`'s dict with "changed": True, "distance" and "scene_embedding" (the frame's summary
            vector, as a list, for the next call's `since`).
        """
        from studio.tasks.caption import check_prefix, scene_embedding, settings_for

        check_prefix(prefix)
        settings = settings_for(verbosity, beams, max_new_tokens, repetition_penalty, no_repeat_ngram_size)
        task = self.task(model, backend, device, variant)
        encoded = task.encode(task.preprocess(frame, channel_order))
        embedding = scene_embedding(encoded)
        distance = 2.0 if since is None else cosine_distance(_as_array(since), embedding)
        if distance <= change_threshold:
            return {"task": TASK, **ran_on(task), "changed": False, "distance": round(distance, 4)}
        result = task.describe(encoded, prefix=prefix, settings=settings, describe_people=describe_people)
        return {
            **_as_dict(task, result, settings),
            "changed": True,
            "distance": round(distance, 4),
            "scene_embedding": embedding.tolist(),
        }


def _as_dict(task, result, settings) -> dict:
    return {
        "task": TASK,
        **ran_on(task),
        **result.as_dict(),
        "settings": {k: getattr(settings, k) for k in SETTINGS_REPORTED},
        "notices": list(task.graphs.notices),
    }


def _as_array(vector):
    import numpy as np

    return np.asarray(vector, dtype=np.float32)
