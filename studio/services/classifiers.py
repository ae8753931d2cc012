"""Custom image classifiers: train on a classifier's examples (compared on held-out ones), save, measure, and
fine-tune the whole model. The store itself (`studio.classifiers.store`) makes, fills, lists and moves classifiers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from studio.progress import Progress, no_progress
from studio.services.base import LoadedModels, Runtime, Service


class ClassifierService(Service):
    """Teaches the zero-shot model a user's classes: the whole job behind the Fine-tune tab and `studio finetune`.
    The classifiers' image encoder is the zero-shot model's."""

    TASK_CLASS = "studio.tasks.zero_shot:ZeroShotTask"

    def __init__(self, models: LoadedModels) -> None:
        from studio.classifiers.store import ClassifierStore

        super().__init__(models)
        self.store = ClassifierStore(models.models_dir)

    def _task(self, name: str, runtime: Runtime, progress: Progress | None):
        """The zero-shot task of the model the classifier was made on (its image encoder), in full precision."""
        model = self.store.meta(name).get("model")
        return self.task(replace(runtime, model=model, variant="fp32"), progress)

    def train_run(
        self,
        name: str,
        method: str = "linear",
        blend: float = 0.5,
        *,
        runtime: Runtime = Runtime(),
        progress: Progress = no_progress,
        should_stop=None,
    ):
        """Trains both heads on the classifier's examples and measures them on a held-out part.

        Args:
            name: The classifier.
            method: "linear" or "prototype": the head the run keeps as its choice.
            blend: 0 (zero-shot only) to 1 (the trained head only).
            runtime: What the image encoder runs on (its model is the classifier's own).
            progress: Receives fractions and sentences.
            should_stop: Returns True to cancel.

        Returns:
            The `studio.classifiers.training.TrainingRun`: measured again for another method or blend without
            retraining, and saved with `save`.

        Raises:
            ClassifierError: A bad blend, or a class without examples (checked before the model loads).
        """
        from studio.classifiers.training import check_blend, check_trainable, train_classifier

        check_blend(blend)
        check_trainable(self.store, name)  # say what is missing before loading a model
        task = self._task(name, runtime, progress)
        return train_classifier(task, self.store, name, method, blend, progress, should_stop)

    def save(
        self,
        run,
        method: str | None = None,
        blend: float | None = None,
        onnx: bool = True,
        progress: Progress = no_progress,
    ):
        """Saves a run as the classifier's next version (with its image encoder + head ONNX graph), saying each step
        to `progress`.

        Returns:
            The saved `studio.classifiers.store.SavedVersion`, loaded back and verified.
        """
        from studio.classifiers.training import save_run

        return save_run(run, self.store, method, blend, onnx=onnx, progress=progress)

    def train(
        self,
        name: str,
        method: str = "linear",
        blend: float = 0.5,
        *,
        save: bool = True,
        onnx: bool = True,
        runtime: Runtime = Runtime(),
        progress: Progress = no_progress,
    ) -> dict:
        """Trains, reports the held-out comparison, and saves a new version.

        Returns:
            The run's report ({"name", "classes", "method", "blend", "trained_on", "held_out", "accuracy",
            "confusion", "loss_curve", "seconds", "notices"}) with "runtime" and "saved" ({"version", "folder",
            "onnx"}, None with save=False).
        """
        run = self.train_run(name, method, blend, runtime=runtime, progress=progress)
        out = {**run.report(), "runtime": run.runtime.as_dict(), "saved": None}
        if save:
            saved = self.save(run, onnx=onnx)
            out["saved"] = {"version": saved.version, "folder": str(saved.directory), "onnx": saved.head.get("onnx")}
            out["notices"] = out["notices"] + saved.notices
        return out

    def evaluate(
        self,
        name: str,
        version: int | None = None,
        folder: Path | None = None,
        *,
        runtime: Runtime = Runtime(),
        progress: Progress = no_progress,
    ) -> dict:
        """A saved version's held-out accuracies, and with `folder` (one sub-folder of test pictures per class)
        the accuracies measured on it now."""
        from studio.classifiers.training import evaluate_folder

        saved = self.store.load(name, version)
        out = {
            "name": saved.name,
            "version": saved.version,
            "classes": saved.classes,
            "method": saved.head["method"],
            "blend": saved.head["blend"],
            "saved_held_out": {k: saved.head.get(k) for k in ("held_out", "accuracy", "confusion")},
            "notices": saved.notices,
        }
        if folder is not None:
            task = self._task(name, runtime, progress)
            out["folder"] = evaluate_folder(task, saved, folder)
        return out

    def fine_tune(
        self,
        name: str,
        *,
        epochs: int = 3,
        learning_rate: float = 1e-5,
        batch_size: int = 16,
        resume: bool = True,
        device: str = "auto",
        progress: Progress = no_progress,
        should_stop=None,
    ) -> dict:
        """Advanced: contrastive fine-tuning of the whole model on the examples, resumable, compared with the
        linear probe on the same held-out examples (`studio.classifiers.contrastive`)."""
        from studio.classifiers.contrastive import ContrastiveSettings, fine_tune

        # A classifier imported from a zip names its model itself: a shared app checks it like a typed one.
        self.models.sharing.check_model(self.store.meta(name).get("model"), "zero-shot")
        settings = ContrastiveSettings(epochs=int(epochs), learning_rate=float(learning_rate), batch_size=batch_size)
        report = fine_tune(
            self.store,
            name,
            self.models.models_dir,
            settings,
            device=device,
            resume=resume,
            progress=progress,
            should_stop=should_stop,
        )
        return report.as_dict()
