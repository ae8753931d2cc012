"""Zero-shot tab: type labels, point the camera (or give a photo), see live scores and what runs them."""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from studio.errors import StudioError
from studio.live import LatestFrameGate
from studio.paths import assets_dir
from studio.registry import REGISTRY
from studio.task_cache import TaskCache
from studio.ui.components import LenientImage, WarnOnce, live_region, runtime_badge, ui_progress

log = logging.getLogger(__name__)

TASK = "zero-shot"
DEFAULT_LABELS = "mug, keys, phone, person, cat"
BACKEND_CHOICES = [("Automatic (ONNX Runtime once exported)", "auto"), ("ONNX Runtime", "onnx"), ("PyTorch", "torch")]
DEVICE_CHOICES = [("Automatic (GPU if there is one)", "auto"), ("GPU (CUDA)", "cuda"), ("CPU", "cpu")]
VARIANT_CHOICES = [("Full precision", "fp32"), ("Faster (int8, ONNX Runtime only)", "int8")]
EXAMPLE_NAMES = {"astronaut": "Astronaut portrait", "chelsea": "Cat (Chelsea)", "coffee": "Cup of coffee"}
TEMPLATE_CHOICES = [
    ("One template", "single"),
    ("Average of 8 templates (steadier, slower to change labels)", "ensemble"),
]


class ZeroShotTab:
    """The tab's state shared by all sessions: loaded models, the live-frame gate, shown warnings."""

    def __init__(self, models_dir: Path) -> None:
        from studio.tasks.zero_shot import ZeroShotTask

        self.models_dir = models_dir
        self.tasks = TaskCache(
            lambda model, backend, device, variant, progress=None: ZeroShotTask.load(
                model,
                models_dir,
                backend=backend,
                device=device,
                variant=variant,
                **({"progress": progress} if progress else {}),
            )
        )
        self.gate = LatestFrameGate()
        self.warn_once = WarnOnce()

    def task(self, model, backend, device, variant, progress=None):
        return self.tasks.get((model or None, backend, device, variant), progress=progress)

    # Events -------------------------------------------------------------------------------------------------

    def classify_photo(
        self,
        image,
        labels,
        model,
        backend,
        device,
        variant,
        template_mode,
        template,
        progress=gr.Progress(track_tqdm=True),
    ):
        """Classifies an uploaded or example photo."""
        from studio.tasks.zero_shot import templates_for

        try:
            templates = templates_for(template_mode, template)
            if image is None:
                raise StudioError("There is no photo yet. Upload one or pick an example below.")
            task = self.task(model, backend, device, variant, ui_progress(progress))
            result = task(image, labels, templates=templates)
        except StudioError as exc:
            gr.Warning(str(exc))
            return gr.skip(), live_region(str(exc), "zs-announce", problem=True), gr.skip(), gr.skip()
        for notice in task.graphs.notices + result.notices:
            gr.Info(notice)
        top = result.labels[0]
        timing = f"Took {result.latency_ms:.0f} ms"
        if result.text_ms:
            timing += f" (plus {result.text_ms:.0f} ms to read {len(result.labels)} new labels)"
        return (
            _label_value(result.labels),
            live_region(f"Best match: {top['label']} ({top['score']:.0%})", "zs-announce"),
            timing,
            runtime_badge(task.runtime),
        )

    def classify_frame(
        self, frame, labels, model, backend, device, variant, template_mode, template, request: gr.Request
    ):
        """Classifies the newest camera frame; frames that went stale while the model was busy are skipped."""
        from studio.tasks.zero_shot import templates_for

        session = getattr(request, "session_hash", None) or "local"
        if frame is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            templates = templates_for(template_mode, template)
            task = self.task(model, backend, device, variant)
            result, stats = self.gate.submit(session, frame, lambda f: task(f, labels, templates=templates))
        except StudioError as exc:
            self.warn_once(session, str(exc))
            return gr.skip(), live_region(str(exc), "zs-announce", problem=True), gr.skip(), gr.skip()
        if result is None:  # dropped as stale: keep showing the last result
            return gr.skip(), gr.skip(), stats.summary, gr.skip()
        for notice in task.graphs.notices + result.notices:
            self.warn_once(session, notice)
        # The live region names only the top label, so screen readers speak when it changes, not every frame.
        return (
            _label_value(result.labels),
            live_region(f"Best match: {result.labels[0]['label']}", "zs-announce"),
            stats.summary,
            runtime_badge(task.runtime),
        )

    def stop_stream(self, request: gr.Request):
        session = getattr(request, "session_hash", None) or "local"
        self.gate.reset(session)
        self.warn_once.clear(session)

    def describe_model(self, model):
        """The picked model's state on this machine, in words."""
        from studio.loading import model_state
        from studio.sources import resolve

        try:
            state = model_state(resolve(model or None, TASK, self.models_dir), self.models_dir)
        except StudioError as exc:
            return f"⚠️ {exc}"
        text = f"**State on this computer:** {state.summary}."
        if not state.on_disk and not state.variants:
            text += (
                " It will be downloaded on first use (needs internet), or copy the model folder to "
                f"`{self.models_dir / (state.source.spec.hub_id if state.source.spec else '')}`."
            )
        return text

    def export(self, model, progress=gr.Progress(track_tqdm=True)):
        """Exports the picked model to ONNX (fp32 and int8), with progress."""
        from studio.export.exporter import export_model
        from studio.export.quantize import quantize_export
        from studio.progress import scaled
        from studio.sources import fetch, resolve

        report = ui_progress(progress)
        try:
            source = fetch(resolve(model or None, TASK, self.models_dir), self.models_dir, lambda m: report(0.0, m))
            directory = export_model(source, self.models_dir, scaled(report, 0.0, 0.7))
            quantize_export(directory, scaled(report, 0.7, 1.0))
        except StudioError as exc:
            gr.Warning(str(exc))
            return self.describe_model(model)
        self.tasks.drop(lambda key: key[0] == (model or None))
        gr.Info(f"Exported to {directory}, checked against PyTorch, with an int8 variant.")
        return self.describe_model(model)


def _label_value(labels: list[dict]) -> dict:
    return {r["label"]: r["score"] for r in labels}


def _model_choices(models_dir: Path, preselected: str | None) -> list[tuple[str, str]]:
    choices = [(f"{spec.title} · {spec.licence}", spec.hub_id) for spec in REGISTRY.for_task(TASK)]
    if preselected and all(value != preselected for _, value in choices):
        choices.append((f"Local folder: {preselected}", preselected))
    return choices


def build(ctx) -> None:
    """Builds the tab inside the current Blocks context."""
    tab = ZeroShotTab(ctx.models_dir)
    preselected = ctx.models.get(TASK)
    default_model = preselected or REGISTRY.default_for(TASK).hub_id

    gr.Markdown(
        "### Name anything the camera sees\n"
        "Type a few labels, then start the camera or give a photo. The scores say which label fits the picture best."
    )
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Tabs():
                with gr.Tab("Camera", id="zs-camera-tab"):
                    camera = gr.Image(
                        sources=["webcam"],
                        streaming=True,
                        type="numpy",
                        label="Camera",
                        elem_id="zs-camera",
                    )
                with gr.Tab("Photo", id="zs-photo-tab"):
                    photo = LenientImage(
                        sources=["upload", "clipboard"],
                        type="filepath",
                        label="Photo to classify",
                        elem_id="zs-photo",
                    )
                    classify_btn = gr.Button("Classify photo", variant="primary", elem_id="zs-classify")
                    examples = sorted((assets_dir() / "images").glob("*.jpg"))
                    gr.Examples(
                        examples=[[str(p)] for p in examples],
                        inputs=[photo],
                        # Text names: the thumbnails gradio draws have no alt text for screen readers.
                        example_labels=[EXAMPLE_NAMES.get(p.stem, p.stem) for p in examples],
                        label="Example photos",
                    )
        with gr.Column(scale=1):
            labels = gr.Textbox(
                value=DEFAULT_LABELS,
                label="Labels to choose between (separate them with commas)",
                lines=2,
                elem_id="zs-labels",
            )
            announce = gr.HTML(live_region("", "zs-announce"), label="Best match")
            scores = gr.Label(num_top_classes=5, label="Scores", elem_id="zs-scores")
            timing = gr.Markdown("", elem_id="zs-timing", label="Delay")
            badge = gr.Markdown(runtime_badge(None), elem_id="zs-runtime", elem_classes=["studio-badge"])

    with gr.Accordion("Model and runtime", open=False):
        model = gr.Dropdown(
            choices=_model_choices(ctx.models_dir, preselected),
            value=default_model,
            allow_custom_value=True,
            label="Model",
            info="Pick a model, or type the path of a model folder on this computer.",
            elem_id="zs-model",
        )
        state = gr.Markdown(tab.describe_model(default_model), elem_id="zs-model-state")
        with gr.Row():
            variant = gr.Radio(VARIANT_CHOICES, value="fp32", label="Precision", elem_id="zs-variant")
            backend = gr.Radio(BACKEND_CHOICES, value="auto", label="Runtime", elem_id="zs-backend")
            device = gr.Radio(DEVICE_CHOICES, value="auto", label="Device", elem_id="zs-device")
        export_btn = gr.Button("Export this model to ONNX (with int8)", elem_id="zs-export")
    with gr.Accordion("Prompt templates", open=False):
        template_mode = gr.Radio(TEMPLATE_CHOICES, value="single", label="Templates", elem_id="zs-template-mode")
        template = gr.Textbox(
            value="a photo of a {}.", label="Template ({} is replaced by each label)", elem_id="zs-template"
        )

    settings = [labels, model, backend, device, variant, template_mode, template]
    outputs = [scores, announce, timing, badge]
    classify_btn.click(tab.classify_photo, [photo, *settings], outputs, api_name="classify")
    photo.upload(tab.classify_photo, [photo, *settings], outputs, api_name=False)
    camera.stream(
        tab.classify_frame,
        [camera, *settings],
        outputs,
        api_name="classify_frame",
        stream_every=0.1,
        time_limit=None,
        concurrency_limit=None,
        show_progress="hidden",
    )
    camera.clear(tab.stop_stream, None, None, api_name=False)
    model.change(tab.describe_model, [model], [state], api_name="model_state")
    export_btn.click(tab.export, [model], [state], api_name="export_model")
