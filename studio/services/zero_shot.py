"""Zero-shot classification of a picture, against labels typed by the user or a saved custom classifier."""

from __future__ import annotations

import threading
from dataclasses import replace

from studio.errors import StudioError
from studio.progress import Progress, no_progress
from studio.services.base import LoadedModels, Runtime, Service, ran_on

TASK = "zero-shot"


class ZeroShotService(Service):
    """Classifies pictures: the whole job behind the Zero-shot tab (photo and camera) and `studio predict zero-shot`."""

    TASK_CLASS = "studio.tasks.zero_shot:ZeroShotTask"

    def __init__(self, models: LoadedModels) -> None:
        super().__init__(models)
        self._classifiers: dict = {}
        self._lock = threading.Lock()

    def saved_classifier(self, name: str):
        """A saved custom classifier, its files verified once per saved version (not once per camera frame).

        Raises:
            ClassifierError: No classifier of that name, or none of its versions is intact.
        """
        from studio.classifiers.store import ClassifierStore

        store = ClassifierStore(self.models.models_dir)
        key = (name, tuple(store.versions(name)))
        with self._lock:
            if key not in self._classifiers:
                self._classifiers.clear()
                self._classifiers[key] = store.load(name)
            return self._classifiers[key]

    def classifier_names(self) -> list[str]:
        """The saved custom classifiers' names."""
        from studio.classifiers.store import ClassifierStore

        return ClassifierStore(self.models.models_dir).names()

    def __call__(
        self,
        image,
        labels: str | list[str] | None = None,
        *,
        classifier: str | None = None,
        template_mode: str = "single",
        template: str | None = None,
        runtime: Runtime = Runtime(),
        channel_order: str = "RGB",
        progress: Progress = no_progress,
    ) -> dict:
        """Classifies one picture.

        Args:
            image: Path, bytes, PIL image or array (a camera frame).
            labels: "mug, keys, phone" (commas or new lines) or a list; ignored with `classifier`.
            classifier: A saved custom classifier's name instead of typed labels (it keeps its own classes, prompts
                and model).
            template_mode: "single" or "ensemble" (CLIP's 8 averaged templates); ignored with `classifier`.
            template: The single template, with {} where the label goes (default "a photo of a {}.").
            runtime: Which model and on what (with `classifier`, its model is None or the classifier's own).
            channel_order: "RGB", or "BGR" for OpenCV frames.
            progress: Receives fractions and sentences while the model loads.

        Returns:
            {"task", "model", "backend", "provider", "runtime", "latency_ms", "labels": [{"label", "score"}] best
            first, "notices"}, with "text_encoding_ms" and "templates" for typed labels, "classifier" for a saved one.

        Raises:
            StudioError: Bad labels, template or picture, an unknown classifier, or a model that cannot be had; the
                inputs are checked before any model loads.
        """
        from studio.media.image import load_image
        from studio.tasks.zero_shot import parse_labels, templates_for

        if classifier:
            return self._with_classifier(image, classifier, runtime, channel_order, progress)
        self.models.sharing.check_labels(parse_labels(labels)[0])  # say what is wrong before loading a model
        templates = templates_for(template_mode, template)
        picture = load_image(image, channel_order)
        task = self.task(runtime, progress)
        result = task(picture, labels, templates=templates)
        return {
            "task": TASK,
            **ran_on(task),
            "latency_ms": round(result.latency_ms, 2),
            "text_encoding_ms": round(result.text_ms, 2),
            "templates": list(templates),
            "labels": result.labels,
            "notices": task.graphs.notices + result.notices,
        }

    def _with_classifier(self, image, name: str, runtime: Runtime, channel_order: str, progress: Progress) -> dict:
        from studio.classifiers.training import classify
        from studio.media.image import load_image

        picture = load_image(image, channel_order)  # say what is wrong with the picture before loading a model
        saved = self.saved_classifier(name)
        trained_on = saved.head.get("model")
        if runtime.model and runtime.model != trained_on:
            raise StudioError(
                f"“{saved.name}” was trained on {trained_on or 'the default model'}; leave the model unset (or choose "
                "that one) to use it."
            )
        task = self.task(replace(runtime, model=trained_on), progress)
        result = classify(task, saved, picture)
        return {
            "task": TASK,
            **ran_on(task),
            "latency_ms": round(result.latency_ms, 2),
            "classifier": {
                "name": saved.name,
                "version": saved.version,
                "method": saved.head["method"],
                "blend": saved.head["blend"],
            },
            "labels": result.labels,
            "notices": task.graphs.notices + result.notices,
        }
