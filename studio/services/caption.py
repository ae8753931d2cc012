"""Captioning: a picture described in words, phrased for listeners; for the live camera, only when the scene changed."""

from __future__ import annotations

from studio.progress import Progress, no_progress
from studio.scores import cosine_distance
from studio.services.base import Runtime, Service, ran_on

TASK = "caption"
SETTINGS_REPORTED = ("num_beams", "max_new_tokens", "repetition_penalty", "no_repeat_ngram_size", "min_new_tokens")


class CaptionService(Service):
    """Describes pictures: the whole job behind the Caption tab and `studio predict caption`."""

    TASK_CLASS = "studio.tasks.caption:CaptionTask"

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
        runtime: Runtime = Runtime(),
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
            runtime: Which model, and on what.
            channel_order: "RGB", or "BGR" for OpenCV frames.
            progress: Receives fractions and sentences while the model loads.

        Returns:
            {"task", "model", "backend", "provider", "runtime", "caption" (phrased for listeners), "model_caption",
            "confidence", "certainty", "latency_ms", "encoder_ms", "decode_ms", "tokens", "settings", "notices"}.

        Raises:
            StudioError: A bad picture, prefix or setting (checked before any model loads), or no model.
        """
        from studio.media.image import load_image

        picture = load_image(image, channel_order)
        settings = _checked(prefix, verbosity, beams, max_new_tokens, repetition_penalty, no_repeat_ngram_size)
        task = self.task(runtime, progress)
        result = task(picture, prefix=prefix, settings=settings, describe_people=describe_people)
        return _as_dict(task, result, settings)

    def describe_if_changed(
        self,
        frame,
        *,
        since=None,
        change_threshold: float = 0.15,
        runtime: Runtime = Runtime(),
        channel_order: str = "RGB",
        **options,
    ) -> dict:
        """Live describe: encodes a camera frame, and writes a caption only if the scene changed since `since`.

        Args:
            frame: The camera frame.
            since: The scene embedding of the last description said (None: describe whatever it shows).
            change_threshold: Cosine distance from `since` above which the scene counts as changed.
            runtime: Which model, and on what.
            channel_order: "RGB", or "BGR" for OpenCV frames.
            **options: `__call__`'s prefix, verbosity, decoding values and describe_people.

        Returns:
            {"task", "model", "backend", "provider", "runtime", "changed": False, "distance"} when the scene is the
            same; else `__call__`'s dict with "changed": True, "distance" and "scene_embedding" (the frame's summary
            vector, as a list, for the next call's `since`).
        """
        from studio.tasks.caption import scene_embedding

        describe_people = bool(options.pop("describe_people", False))
        prefix = options.get("prefix")
        settings = _checked(**options)
        task = self.task(runtime)
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


def _checked(
    prefix=None, verbosity="short", beams=None, max_new_tokens=None, repetition_penalty=None, no_repeat_ngram_size=None
):
    """The decoding settings for the user's choices, after the prefix is checked (before any model loads)."""
    from studio.tasks.caption import check_prefix, settings_for

    check_prefix(prefix)
    return settings_for(verbosity, beams, max_new_tokens, repetition_penalty, no_repeat_ngram_size)


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
