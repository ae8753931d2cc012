"""The one export path: get the model's files, export every graph (checked against PyTorch), add int8 if asked.

`studio export`, the tabs' "Export" button and `--backend onnx` (which exports on first use) all come here.
"""

from __future__ import annotations

from pathlib import Path

from studio.errors import ExportError, ModelUnavailableError, StudioError
from studio.families import get_family
from studio.progress import Progress, no_progress, scaled
from studio.sources import ModelSource, fetch, resolve


def has_int8(family: str) -> bool:
    """Whether a family offers an int8 variant (some graph is dominated by weight MatMuls)."""
    return any(g.quantizable for g in get_family(family).GRAPHS)


def check_variant(source: ModelSource, variant: str) -> None:
    """Refuses a variant the model does not have, before anything loads.

    Raises:
        StudioError: int8 for a model without an int8 variant.
    """
    if variant != "fp32" and not has_int8(source.family):
        raise StudioError(f"{source.display_name} has no int8 variant yet; run it in full precision (fp32).")


def export_source(
    source: ModelSource, models_dir: Path, quantize: bool = False, progress: Progress = no_progress
) -> Path:
    """Exports a resolved model: downloads its pinned files if needed, exports and checks every graph, and with
    `quantize` adds the int8 variant (checked against fp32).

    Returns:
        The export folder, `<models-dir>/<task>/<slug>/`.

    Raises:
        ModelUnavailableError: The model's files cannot be had.
        ExportError: A graph failed to export, disagrees with PyTorch, or int8 drifts too far.
    """
    from studio.export.exporter import export_model
    from studio.export.quantize import quantize_export

    if source.shipped:
        raise ExportError(
            f"{source.display_name} ships its graphs as ONNX in the {source.spec.package} package: there is nothing "
            "to export."
        )
    if quantize and not has_int8(source.family):
        raise ExportError(f"{source.display_name} has no int8 variant yet; export it without int8.")
    if source.local_dir is None and source.spec is None:
        raise ModelUnavailableError(f"The model {source.display_name} is not on this computer.")
    source = fetch(source, models_dir, on_progress=lambda message: progress(0.0, message))
    directory = export_model(source, models_dir, scaled(progress, 0.0, 0.7 if quantize else 1.0))
    if quantize:
        quantize_export(directory, scaled(progress, 0.7, 1.0))
    return directory


def export_for_task(
    task: str, model: str | None, models_dir: Path, quantize: bool = False, progress: Progress = no_progress
) -> Path:
    """Exports a task's model by name (hub id or folder; None for the task's default); see `export_source`."""
    return export_source(resolve(model or None, task, models_dir), models_dir, quantize, progress)
