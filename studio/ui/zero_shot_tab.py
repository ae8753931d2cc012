"""Zero-shot tab: type labels, point the camera (or give a photo), see live scores and what runs them."""

from __future__ import annotations

import logging

import gradio as gr

from studio.errors import StudioError
from studio.live import LatestFrameGate
from studio.progress import Progress, no_progress
from studio.services.base import Runtime
from studio.ui.a11y import notify
from studio.ui.components import (
    LenientImage,
    WarnOnce,
    example_photos,
    live_region,
    problem,
    runtime_badge,
    service_of,
    session_of,
    ui_progress,
)
from studio.ui.model_panel import build_model_panel

log = logging.getLogger(__name__)

TASK = "zero-shot"
DEFAULT_LABELS = "mug, keys, phone, person, cat"
NO_CLASSIFIER = ("None: use the labels typed above", "")
# The live camera: a frame every 50 ms at 320x240. The model sees 224x224 anyway, and a quarter of the pixels is a
# quarter of the work to capture, encode, send and decode each frame; with 0.1 s and full 640x480 frames the rate
# was capped near 9 results/s while the model needs ~15 ms (int8). Measured side by side in one run (issue 13's
# note): 0.1 s at 640x480 9.1 results/s, 0.05 s at 640x480 12.2, 0.05 s at 320x240 16.4, median delay 15 ms in each.
# Frames that arrive while the model is busy are dropped (studio.live.LatestFrameGate), so the delay cannot grow.
STREAM_EVERY_S = 0.05
CAMERA_CONSTRAINTS = {"video": {"width": {"ideal": 320}, "height": {"ideal": 240}}}
TEMPLATE_CHOICES = [
    ("One template", "single"),
    ("Average of 8 templates (steadier, slower to change labels)", "ensemble"),
]


class ZeroShotTab:
    """The tab's state shared by all sessions: the service, the live-frame gate, shown warnings."""

    def __init__(self, ctx) -> None:
        from studio.services.zero_shot import ZeroShotService

        self.service = service_of(ctx, ZeroShotService)
        self.gate = LatestFrameGate()
        self.warn_once = WarnOnce("Zero-shot")

    def classifier_choices(self):
        """The saved classifiers to choose from, refreshed when the picker gets focus.

        Only the choices: the value stays as the user sets it, since this answer can arrive after the user picked one
        (a classifier deleted meanwhile is refused with a sentence when used).
        """
        return gr.update(choices=[NO_CLASSIFIER, *self.service.classifier_names()])

    def _run(self, image, settings: tuple, progress: Progress = no_progress) -> dict:
        """The service's call for the tab's settings (in the order of `build`'s settings list)."""
        labels, model, backend, device, variant, template_mode, template, classifier = settings
        return self.service(
            image,
            labels,
            classifier=classifier or None,
            template_mode=template_mode,
            template=template,
            # A saved classifier runs on the model it was trained with.
            runtime=Runtime(None if classifier else model, backend, device, variant),
            progress=progress,
        )

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
        classifier=None,
        progress=gr.Progress(),
    ):
        """Classifies an uploaded or example photo, against the typed labels or a saved classifier."""
        try:
            if image is None:
                raise StudioError("There is no photo yet. Upload one or pick an example below.")
            settings = (labels, model, backend, device, variant, template_mode, template, classifier)
            result = self._run(image, settings, ui_progress(progress))
        except StudioError as exc:
            return gr.skip(), problem(exc, "zs-announce"), gr.skip(), gr.skip()
        for notice in result["notices"]:
            notify("Zero-shot", notice)
        top = result["labels"][0]
        timing = f"Took {result['latency_ms']:.0f} ms"
        if result.get("text_encoding_ms"):
            timing += f" (plus {result['text_encoding_ms']:.0f} ms to read {len(result['labels'])} new labels)"
        return (
            _label_value(result["labels"]),
            live_region(f"Best match: {top['label']} ({top['score']:.0%})", "zs-announce"),
            timing,
            runtime_badge(result["runtime"]),
        )

    def classify_frame(
        self,
        frame,
        labels,
        model,
        backend,
        device,
        variant,
        template_mode,
        template,
        classifier=None,
        request: gr.Request = None,
    ):
        """Classifies the newest camera frame; frames that went stale while the model was busy are skipped."""
        session = session_of(request)
        if frame is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            settings = (labels, model, backend, device, variant, template_mode, template, classifier)
            result, stats = self.gate.submit(session, frame, lambda image: self._run(image, settings))
        except StudioError as exc:
            warn = lambda message: self.warn_once(session, message)  # noqa: E731
            return gr.skip(), problem(exc, "zs-announce", warn), gr.skip(), gr.skip()
        if result is None:  # dropped as stale: keep showing the last result
            return gr.skip(), gr.skip(), stats.summary, gr.skip()
        for notice in result["notices"]:
            self.warn_once(session, notice)
        # The live region names only the top label, so screen readers speak when it changes, not every frame.
        return (
            _label_value(result["labels"]),
            live_region(f"Best match: {result['labels'][0]['label']}", "zs-announce"),
            stats.summary,
            runtime_badge(result["runtime"]),
        )

    def stop_stream(self, request: gr.Request):
        session = session_of(request)
        self.gate.reset(session)
        self.warn_once.clear(session)


def _label_value(labels: list[dict]) -> dict:
    return {r["label"]: r["score"] for r in labels}


def build(ctx) -> None:
    """Builds the tab inside the current Blocks context."""
    tab = ZeroShotTab(ctx)
    preselected = ctx.models.get(TASK)

    gr.Markdown(
        "## Name anything the camera sees\n"
        "Type a few labels, then start the camera or give a photo. The scores say which label fits the picture best."
    )
    with gr.Row():
        with gr.Column(scale=1):
            # Opens on the photo, whose Classify button is there at once; the camera is one arrow key away.
            with gr.Tabs(selected="zs-photo-tab"):
                with gr.Tab("Camera", id="zs-camera-tab"):
                    camera = gr.Image(
                        sources=["webcam"],
                        streaming=True,
                        type="numpy",
                        label="Camera",
                        elem_id="zs-camera",
                        webcam_options=gr.WebcamOptions(constraints=CAMERA_CONSTRAINTS),
                    )
                with gr.Tab("Photo", id="zs-photo-tab"):
                    photo = LenientImage(
                        sources=["upload", "clipboard"],
                        type="filepath",
                        label="Photo to classify",
                        elem_id="zs-photo",
                    )
                    classify_btn = gr.Button("Classify photo", variant="primary", elem_id="zs-classify")
                    example_photos(photo)
        with gr.Column(scale=1):
            labels = gr.Textbox(
                value=DEFAULT_LABELS,
                label="Labels to choose between (separate them with commas)",
                lines=2,
                elem_id="zs-labels",
            )
            saved_classifier = gr.Dropdown(
                choices=tab.classifier_choices()["choices"],
                value="",
                label="Saved classifier (made in the Fine-tune tab) instead of the labels",
                elem_id="zs-classifier",
            )
            announce = gr.HTML(live_region("", "zs-announce"), label="Best match")
            scores = gr.Label(num_top_classes=5, label="Scores", elem_id="zs-scores")
            timing = gr.Markdown("", elem_id="zs-timing", label="Delay")
            badge = gr.Markdown(runtime_badge(None), elem_id="zs-runtime", elem_classes=["studio-badge"])

    with gr.Accordion("Model and runtime", open=False):
        panel = build_model_panel(TASK, "zs", ctx.models_dir, preselected, ctx.loaded, quantize=True)
    with gr.Accordion("Prompt templates", open=False):
        template_mode = gr.Radio(TEMPLATE_CHOICES, value="single", label="Templates", elem_id="zs-template-mode")
        template = gr.Textbox(
            value="a photo of a {}.", label="Template ({} is replaced by each label)", elem_id="zs-template"
        )

    settings = [
        labels,
        panel.model,
        panel.backend,
        panel.device,
        panel.variant,
        template_mode,
        template,
        saved_classifier,
    ]
    saved_classifier.focus(tab.classifier_choices, None, [saved_classifier], api_name="zs_saved_classifiers")
    outputs = [scores, announce, timing, badge]
    classify_btn.click(tab.classify_photo, [photo, *settings], outputs, api_name="classify")
    photo.upload(tab.classify_photo, [photo, *settings], outputs, api_name=False)
    camera.stream(
        tab.classify_frame,
        [camera, *settings],
        outputs,
        api_name="classify_frame",
        stream_every=STREAM_EVERY_S,
        time_limit=None,
        concurrency_limit=None,
        show_progress="hidden",
    )
    camera.clear(tab.stop_stream, None, None, api_name=False)
