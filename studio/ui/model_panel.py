"""The "Model and runtime" panel every tab has: model picker with its state here, runtime choices, export button."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from studio.errors import StudioError
from studio.registry import REGISTRY
from studio.services.base import LoadedModels
from studio.sharing import LOCAL, SharingPolicy
from studio.ui.components import ui_progress

BACKEND_CHOICES = [("Automatic (ONNX Runtime once exported)", "auto"), ("ONNX Runtime", "onnx"), ("PyTorch", "torch")]
DEVICE_CHOICES = [("Automatic (GPU if there is one)", "auto"), ("GPU (CUDA)", "cuda"), ("CPU", "cpu")]
VARIANT_CHOICES = [("Full precision", "fp32"), ("Faster (int8, ONNX Runtime only)", "int8")]


# While a tab is built (`collect_panels`), the (task, model picker) of each panel it makes: what the tab needs.
_collected: list[list] = []


@contextlib.contextmanager
def collect_panels():
    """Collects the (task, model picker) of every model panel built inside the block: a tab's needs, for its
    first-run note (`studio.ui.models_view`)."""
    _collected.append([])
    try:
        yield _collected[-1]
    finally:
        _collected.pop()


@dataclass
class ModelPanel:
    """The panel's components, for wiring into a tab's events."""

    model: gr.Dropdown
    state: gr.Markdown
    backend: gr.Radio | None
    device: gr.Radio
    variant: gr.Radio | None


def describe_model(task: str, model: str | None, models_dir: Path, sharing: SharingPolicy = LOCAL) -> str:
    """The picked model's state on this machine, in words (a shared app's refusal, for a folder it does not open)."""
    from studio.loading import model_state
    from studio.sources import resolve

    try:
        sharing.check_model(model, task)
        state = model_state(resolve(model or None, task, models_dir), models_dir)
    except StudioError as exc:
        return f"⚠️ {exc}"
    text = f"**State on this computer:** {state.summary}."
    if not state.on_disk and not state.variants:
        text += (
            " It will be downloaded on first use (needs internet), or copy the model folder to "
            f"`{models_dir / (state.source.spec.hub_id if state.source.spec else '')}`."
        )
    return text


def export_model_ui(
    task: str, model: str | None, models_dir: Path, quantize: bool, progress: gr.Progress
) -> Path | None:
    """Exports a model (and its int8 variant where offered) with progress; warns and returns None on failure."""
    from studio.export.pipeline import export_for_task

    try:
        directory = export_for_task(task, model, models_dir, quantize, ui_progress(progress))
    except StudioError as exc:
        gr.Warning(str(exc))
        return None
    gr.Info(f"Exported to {directory} and checked against PyTorch{', with an int8 variant' if quantize else ''}.")
    return directory


def _picker_hint(sharing: SharingPolicy) -> str:
    if not sharing.shared:
        return "Pick a model, or type the path of a model folder on this computer."
    if not sharing.roots:
        return "Pick a model from the list (this app is shared)."
    return f"Pick a model, or type a model folder inside {' or '.join(map(str, sharing.roots))} (this app is shared)."


def _for(label: str, what: str) -> str:
    return f"{label} ({what.lower()})" if what else label


def build_model_panel(
    task: str,
    prefix: str,
    models_dir: Path,
    preselected: str | None,
    loaded: LoadedModels,
    quantize: bool = False,
    exportable: bool = True,
    what: str = "",
    runtime_note: str | None = None,
    also: tuple[tuple[str, str], ...] = (),
) -> ModelPanel:
    """Builds the panel (inside an open accordion) and wires its own events.

    Args:
        task: The task whose registry rows the picker offers.
        prefix: Element id prefix of the tab ("zs", "cap").
        models_dir: Root of exports and local copies.
        preselected: The model chosen on the command line, if any.
        loaded: The app's loaded models; a model's are dropped after it is exported again.
        quantize: Offer the int8 variant and make it on export.
        exportable: Offer the runtime choice and the export button (False for PyTorch-only models).
        what: What the model does, in the control labels ("Question answering" -> "Question answering model"),
            so a screen reader tells two pickers on one tab apart.
        runtime_note: With `exportable=False`, what to say about the runtime instead of "PyTorch" (a model whose
            graphs ship as ONNX).
        also: (task, family) pairs whose registry rows the picker offers too (the Search tab: CLAP for sounds).
    """
    kind = f"{what} model" if what else "Model"
    default = preselected or REGISTRY.default_for(task).hub_id
    rows = REGISTRY.for_task(task) + [s for t, f in also for s in REGISTRY.for_task(t) if s.family == f]
    choices = [(f"{spec.title} · {spec.licence}", spec.hub_id) for spec in rows]
    owner = {spec.hub_id: spec.task for spec in rows}
    if preselected and all(value != preselected for _, value in choices):
        choices.append((f"Local folder: {preselected}", preselected))
    model = gr.Dropdown(
        choices=choices,
        value=default,
        allow_custom_value=True,
        label=kind,
        info=_picker_hint(loaded.sharing),
        elem_id=f"{prefix}-model",
    )
    state = gr.Markdown(
        describe_model(owner.get(default, task), default, models_dir, loaded.sharing), elem_id=f"{prefix}-model-state"
    )
    with gr.Row():
        variant = backend = None
        if quantize:
            variant = gr.Radio(
                VARIANT_CHOICES, value="fp32", label=_for("Precision", what), elem_id=f"{prefix}-variant"
            )
        if exportable:
            backend = gr.Radio(BACKEND_CHOICES, value="auto", label=_for("Runtime", what), elem_id=f"{prefix}-backend")
        else:
            gr.Markdown(runtime_note or "**Runtime:** PyTorch (this model has no ONNX export yet).")
        device = gr.Radio(DEVICE_CHOICES, value="auto", label=_for("Device", what), elem_id=f"{prefix}-device")
    if _collected:
        _collected[-1].append((task, model))
    model.change(
        lambda m: describe_model(owner.get(m, task), m, models_dir, loaded.sharing),
        [model],
        [state],
        api_name=f"{prefix}_model_state",
    )
    if not exportable:
        return ModelPanel(model, state, backend, device, variant)
    export_btn = gr.Button(
        "Export this model to ONNX" + (" (with int8)" if quantize else ""), elem_id=f"{prefix}-export"
    )

    def export(model_name, progress=gr.Progress()):
        model_task = owner.get(model_name, task)
        try:
            loaded.sharing.check_model(model_name, model_task)
        except StudioError as exc:
            gr.Warning(str(exc))
            return describe_model(model_task, model_name, models_dir, loaded.sharing)
        if export_model_ui(model_task, model_name, models_dir, quantize, progress) is not None:
            loaded.drop(model_name)
        return describe_model(model_task, model_name, models_dir, loaded.sharing)

    export_btn.click(export, [model], [state], api_name=f"{prefix}_export_model")
    return ModelPanel(model, state, backend, device, variant)
