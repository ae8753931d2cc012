"""First run: what each task's model needs to be downloaded, its size and its state here, and downloading one task's
model or all of them before a demo (`studio download`, the app's Models panel), so the demo then runs offline."""

from __future__ import annotations

from pathlib import Path

from studio.errors import StudioError
from studio.progress import Progress, no_progress, scaled
from studio.registry import REGISTRY, ModelSpec


def size_words(spec: ModelSpec) -> str:
    """The first download's size in words: "about 605 MB", "nothing to download" (package), "size unknown"."""
    if spec.package is not None:
        return "nothing to download (ships in a Python package)"
    if spec.download_mb is None:
        return "size unknown"
    return f"about {spec.download_mb / 1000:.1f} GB" if spec.download_mb >= 1000 else f"about {spec.download_mb} MB"


def task_status(task: str, models_dir: Path, model: str | None = None) -> dict:
    """A task's model (its default unless `model` names one) and whether it is ready here.

    Returns:
        {"task", "model", "title", "download_mb", "size", "ready", "state"}: `ready` is True when nothing needs
        downloading (on disk, a local folder, or shipped in an installed package).
    """
    from studio.loading import model_state
    from studio.sources import resolve

    try:
        source = resolve(model or None, task, models_dir)
    except StudioError as exc:
        return {"task": task, "model": model, "title": model, "download_mb": None, "size": "", "ready": False,
                "state": str(exc)}  # fmt: skip
    spec = source.spec
    state = model_state(source, models_dir)
    return {
        "task": task,
        "model": source.display_name,
        "title": spec.title if spec else source.display_name,
        "download_mb": spec.download_mb if spec else None,
        "size": size_words(spec) if spec else "a folder on this computer",
        "ready": state.on_disk or bool(state.variants),
        "state": state.summary,
    }


def tasks_status(models_dir: Path, tasks: list[str] | None = None) -> list[dict]:
    """`task_status` of every task's default model (or of `tasks`), in the registry's order."""
    return [task_status(task, models_dir) for task in tasks or REGISTRY.tasks()]


def download(task: str, models_dir: Path, model: str | None = None, progress: Progress = no_progress) -> dict:
    """Downloads a task's model (its default unless `model` names a registry row) unless it is here already.

    Returns:
        The task's `task_status` after the download, with "downloaded": whether anything was fetched.

    Raises:
        ModelUnavailableError: It cannot be downloaded (no internet): a short sentence, the folder paths as details.
    """
    from studio.sources import fetch, resolve

    before = task_status(task, models_dir, model)
    if before["ready"]:
        progress(1.0, f"{before['title']} is on this computer already.")
        return {**before, "downloaded": False}
    progress(0.0, f"Downloading {before['title']} ({before['size']})…")
    fetch(resolve(model or None, task, models_dir), models_dir, on_progress=lambda message: progress(0.05, message))
    progress(1.0, f"Downloaded {before['title']}.")
    return {**task_status(task, models_dir, model), "downloaded": True}


def download_all(models_dir: Path, tasks: list[str] | None = None, progress: Progress = no_progress) -> dict:
    """Downloads every task's default model (or those of `tasks`) that is not here yet, one after another.

    A model that cannot be downloaded does not stop the others; each one's sentence is in "failed".

    Returns:
        {"models": [task_status + "downloaded"], "failed": [{"task", "model", "problem", "details"}]}.
    """
    tasks = tasks or REGISTRY.tasks()
    rows, failed = [], []
    for i, task in enumerate(tasks):
        step = scaled(progress, i / len(tasks), (i + 1) / len(tasks))
        count = f" ({i + 1} of {len(tasks)})"
        try:
            rows.append(download(task, models_dir, progress=lambda f, m, step=step, count=count: step(f, m + count)))
        except StudioError as exc:
            status = task_status(task, models_dir)
            rows.append({**status, "downloaded": False})
            failed.append(
                {"task": task, "model": status["model"], "problem": str(exc), "details": getattr(exc, "details", "")}
            )
    progress(1.0, f"{len(tasks) - len(failed)} of {len(tasks)} models ready.")
    return {"models": rows, "failed": failed}
