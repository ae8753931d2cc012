"""What every service shares: the loaded models of this process, and how a result says what ran it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.progress import Progress
from studio.sharing import LOCAL, SharingPolicy
from studio.task_cache import TaskCache


@dataclass(frozen=True)
class Runtime:
    """Which model does a job, and on what: the choices of the model panel or of --model/--backend/--device/--variant.

    Attributes:
        model: Hub id or local model folder; None for the task's default model.
        backend: "auto" (ONNX Runtime once exported, else PyTorch), "onnx" (export first if needed) or "torch".
        device: "auto" (CUDA if there is a GPU), "cuda" or "cpu".
        variant: "fp32", or "int8" (the quantized graphs, ONNX Runtime only).
    """

    model: str | None = None
    backend: str = "auto"
    device: str = "auto"
    variant: str = "fp32"


class LoadedModels:
    """The tasks this process has loaded, shared by every service (and so by every tab and command).

    One cache per task class, keyed by (model, backend, device, variant): the Zero-shot, Sound & scene and
    Fine-tune tabs picking the same CLIP share one loaded copy, and each task loads once even when many requests
    ask for it at the same moment.

    Args:
        models_dir: Root of exports and local model copies.
        size: How many loaded models of one task to keep (each holds its weights in memory).
        sharing: What a shared app lets visitors ask for (`studio.sharing`): which model folders, how many labels,
            how long a recording. Every service checks its inputs against it; locally it refuses nothing.
    """

    def __init__(self, models_dir: Path, size: int = 3, sharing: SharingPolicy = LOCAL) -> None:
        self.models_dir = Path(models_dir)
        self.sharing = sharing
        self._size = size
        self._caches: dict[type, TaskCache] = {}

    def _cache(self, task_class) -> TaskCache:
        if task_class not in self._caches:

            def load(model, backend, device, variant, progress=None):
                extra = {"progress": progress} if progress is not None else {}
                return task_class.load(model, self.models_dir, backend=backend, device=device, variant=variant, **extra)

            self._caches.setdefault(task_class, TaskCache(load, size=self._size))
        return self._caches[task_class]

    def get(self, task_class, runtime: Runtime = Runtime(), progress: Progress | None = None):
        """The loaded task for these choices, loading it (with progress) the first time.

        Args:
            task_class: A `studio.tasks.base.GraphTask` subclass.
            runtime: Which model, and on what.
            progress: Receives fractions and sentences while a model downloads, exports or loads.
        """
        self.sharing.check_model(runtime.model, getattr(task_class, "TASK", None))
        key = (runtime.model or None, runtime.backend, runtime.device, runtime.variant)
        return self._cache(task_class).get(key, progress=progress)

    def drop(self, model: str | None) -> None:
        """Forgets every loaded task of a model (after it was exported again), so the next request loads the new
        export."""
        for cache in self._caches.values():
            cache.drop(lambda key: key[0] == (model or None))


def model_name(task) -> str:
    """The name of the model a loaded task runs: the hub id, package row or folder its graphs came from, else their
    folder."""
    source = task.graphs.source
    if not source:
        from studio.export.manifest import read_manifest

        source = (read_manifest(Path(task.graphs.files_dir)) or {}).get("source", {})
    return source.get("id") or source.get("path") or str(task.graphs.files_dir)


def model_revision(task) -> str | None:
    """The revision of the model a loaded task runs: the pinned commit of a hub model, the version of the package
    that ships it, or the sha256 of a local folder's files recorded at export (None when unknown)."""
    source = task.graphs.source
    if not source:
        from studio.export.manifest import read_manifest

        source = (read_manifest(Path(task.graphs.files_dir)) or {}).get("source", {})
    return source.get("revision") or source.get("sha256")


def ran_on(task) -> dict:
    """What ran a result, for the result's dict: model and its revision, backend ("onnx"/"torch"), provider, and the
    runtime report read back from the session that ran (never the one requested)."""
    runtime = task.runtime
    return {
        "model": model_name(task),
        "revision": model_revision(task),
        "backend": "onnx" if runtime.engine == "ONNX Runtime" else "torch",
        "provider": runtime.providers[0] if runtime.providers else runtime.device.lower(),
        "runtime": runtime.as_dict(),
    }


class Service:
    """A capability's whole job, for any caller (a tab, a command, a serving replica): plain inputs in, plain data out.

    Args:
        models: The process's loaded models, shared with the other services.
    """

    # "module:Class" of the task the service runs (imported on first use: building the CLI's parser stays light).
    TASK_CLASS = ""

    def __init__(self, models: LoadedModels) -> None:
        self.models = models

    def task(self, runtime: Runtime = Runtime(), progress: Progress | None = None):
        """The loaded task for these choices: loaded on first use, then shared by every caller."""
        import importlib

        module, _, name = self.TASK_CLASS.partition(":")
        return self.models.get(getattr(importlib.import_module(module), name), runtime, progress)
