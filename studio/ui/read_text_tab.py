"""Read text tab: the text in a photo or the camera view, found, boxed on the picture, shown, announced and spoken.

Live reading: the camera is read every second or so, and a row of text is said only when it was not said a moment
ago (`ReadTextService.read_if_new`); "Read again" (Alt+Shift+R) says everything in view. Speech comes from
`studio.ui.speech_panel`, the same settings as the Caption tab's.
"""

from __future__ import annotations

import logging
import threading
import time

import gradio as gr
import numpy as np

from studio.errors import StudioError
from studio.live import LatestFrameGate
from studio.services.base import Runtime
from studio.ui.a11y import notify
from studio.ui.components import (
    LenientImage,
    WarnOnce,
    live_region,
    problem,
    runtime_badge,
    service_of,
    session_of,
    ui_progress,
)
from studio.ui.model_panel import build_model_panel
from studio.ui.speech_panel import ServerSpeech, build_speech_panel, spoken_outputs
from studio.ui.trial_panel import TrialHook

log = logging.getLogger(__name__)

TASK = "read-text"
BOX_COLOUR = (255, 0, 170)  # magenta: seen on paper, screens and most photos


class ReadTextTab:
    """The tab's state shared by all sessions: the service, live gate, what each session was told, server speech."""

    trial = TrialHook()

    def __init__(self, ctx) -> None:
        from studio.services.read_text import ReadTextService

        self.service = service_of(ctx, ReadTextService)
        self.gate = LatestFrameGate()
        self.warn_once = WarnOnce("Read text")
        self.speech = ServerSpeech()
        self.said = 0
        self._lock = threading.Lock()
        self._sessions: dict[str, dict] = {}  # session -> {"said": rows said lately, "last": time, "again": bool}

    def spoken(self, text: str, voice_settings: tuple, warn) -> str | None:
        """Server speech for a reading; a speech problem is reported without hiding the text."""
        try:
            return self.speech(text, *voice_settings)
        except StudioError as exc:
            warn(str(exc))
            return None

    def _shown(self, result: dict, picture, said_text: str, audio, timing: str) -> tuple:
        self.said += 1
        return (
            boxed(picture, result["lines"]),
            result["model_text"],
            live_region(said_text, "rt-announce"),
            audio,
            lines_markdown(result),
            timing,
            runtime_badge(result["runtime"]),
            f"{self.said}|{said_text}",
        )

    # Events ------------------------------------------------------------------------------------------------

    def read_photo(
        self,
        image,
        min_confidence,
        restore_spaces,
        model,
        device,
        speak,
        source,
        wpm,
        voice,
        can_speak,
        progress=gr.Progress(),
    ):
        """Reads the text in an uploaded or example photo."""
        from studio.media.image import load_image

        speech = (speak, source, wpm, voice, can_speak)
        try:
            if image is None:
                raise StudioError("There is no photo yet. Upload one or pick an example below.")
            picture = np.asarray(load_image(image))
            result = self.service(
                picture,
                min_confidence=min_confidence,
                restore_spaces=restore_spaces,
                runtime=Runtime(model, "auto", device),
                progress=ui_progress(progress),
            )
        except StudioError as exc:
            return (gr.skip(),) * 2 + (problem(exc, "rt-announce"),) + (gr.skip(),) * 5
        for notice in result["notices"]:
            notify("Read text", notice)
        audio = self.spoken(result["text"], speech, gr.Warning)
        self.trial.output(result, result["text"], speech=speech, picture=picture)
        timing = (
            f"Took {result['latency_ms']:.0f} ms (finding {result['detect_ms']:.0f} ms, turning "
            f"{result['classify_ms']:.0f} ms, reading {result['recognize_ms']:.0f} ms)"
        )
        return self._shown(result, picture, result["text"], audio, timing)

    def read_frame(
        self,
        frame,
        live,
        interval,
        min_confidence,
        restore_spaces,
        model,
        device,
        speak,
        source,
        wpm,
        voice,
        can_speak,
        request: gr.Request,
    ):
        """Live reading: reads the camera every `interval` seconds, says only rows not said a moment ago."""
        speech = (speak, source, wpm, voice, can_speak)
        session = session_of(request)
        skip = (gr.skip(),) * 8
        if frame is None or not live:
            return skip
        with self._lock:
            state = self._sessions.setdefault(session, {"said": [], "last": -1e9, "again": False})
            now = time.monotonic()
            if not state["again"] and now - state["last"] < float(interval):
                return skip
            state["last"], again, state["again"] = now, state["again"], False
        try:

            def look(image):
                return self.service.read_if_new(
                    image,
                    said=state["said"],
                    again=again,
                    min_confidence=min_confidence,
                    restore_spaces=restore_spaces,
                    runtime=Runtime(model, "auto", device),
                )

            result, stats = self.gate.submit(session, frame, look)
        except StudioError as exc:
            warn = lambda message: self.warn_once(session, message)  # noqa: E731
            return (gr.skip(),) * 2 + (problem(exc, "rt-announce", warn),) + (gr.skip(),) * 5
        if result is None:  # dropped as stale
            state["again"] = state["again"] or again
            return (*(gr.skip(),) * 5, stats.summary, gr.skip(), gr.skip())
        state["said"] = result["said"]
        if not result["new"]:
            if result["lines"]:
                self.trial.output(result, result["text"], skipped=True, session=session, only_changes=True)
            return (boxed(frame, result["lines"]), result["model_text"], *(gr.skip(),) * 3, stats.summary) + (
                runtime_badge(result["runtime"]),
                gr.skip(),
            )
        text = result["announcement"]
        audio = self.spoken(text, speech, lambda m: self.warn_once(session, m))
        self.trial.output(result, text, speech=speech, settings={"interval_s": interval, "again": again}, picture=frame)
        return self._shown(result, frame, text, audio, stats.summary)

    def read_again(self, request: gr.Request):
        """The next camera look says everything in view, new or not."""
        with self._lock:
            self._sessions.setdefault(session_of(request), {"said": [], "last": -1e9, "again": False})["again"] = True

    def stop_stream(self, request: gr.Request):
        session = session_of(request)
        self.gate.reset(session)
        with self._lock:
            self._sessions.pop(session, None)
        self.warn_once.clear(session)


def boxed(picture, lines: list[dict]) -> np.ndarray:
    """The picture with each line's box drawn and numbered in reading order."""
    import cv2

    from studio.media.image import load_image

    canvas = np.ascontiguousarray(np.asarray(load_image(picture)).copy())
    thickness = max(2, round(min(canvas.shape[:2]) / 300))
    for number, line in enumerate(lines, 1):
        corners = np.round(np.asarray(line["box"])).astype(np.int32)
        cv2.polylines(canvas, [corners], True, BOX_COLOUR, thickness)
        x, y = corners[0]
        cv2.putText(canvas, str(number), (int(x), max(int(y) - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thickness,
                    BOX_COLOUR, thickness)  # fmt: skip
    return canvas


def lines_markdown(result: dict) -> str:
    """The lines found, numbered as on the picture, with how sure the model is of each (the boxes in words)."""
    if not result["lines"]:
        return "No text found."
    items = [f"{i}. {line['text']} ({line['confidence']:.0%} sure)" for i, line in enumerate(result["lines"], 1)]
    dropped = result.get("dropped_lines", 0)
    more = f"\n\n{dropped} more line{'s' if dropped != 1 else ''} read too unsurely to show." if dropped else ""
    return "\n".join(items) + more


def build(ctx) -> None:
    """Builds the tab inside the current Blocks context."""
    from studio.paths import assets_dir

    tab = ReadTextTab(ctx)
    tab.trial = TrialHook(ctx, "Read text")
    gr.Markdown(
        "## Read the text in a picture\n"
        "Give a photo or start the camera: labels, signs, screens, letters. The text is boxed on the picture, "
        "shown, announced to screen readers and spoken, in reading order.  \n"
        "**Keyboard:** Alt+Shift+R reads the photo (or reads the camera's text again) · Alt+Shift+S stops speaking."
    )
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Tabs():
                with gr.Tab("Photo", id="rt-photo-tab"):
                    photo = LenientImage(
                        sources=["upload", "clipboard"], type="filepath", label="Photo to read", elem_id="rt-photo"
                    )
                    read_btn = gr.Button("Read photo", variant="primary", elem_id="rt-read-photo")
                    examples = sorted((assets_dir() / "text").glob("*.*"))
                    gr.Examples(
                        examples=[[str(p)] for p in examples],
                        inputs=[photo],
                        example_labels=[p.stem.replace("-", " ").capitalize() for p in examples],
                        label="Example pictures",
                    )
                with gr.Tab("Camera", id="rt-camera-tab"):
                    live = gr.Checkbox(value=True, label="Live reading (say new text as it appears)", elem_id="rt-live")
                    # Not mirrored: gradio mirrors the webcam by default, and mirrored text cannot be read.
                    camera = gr.Image(
                        sources=["webcam"],
                        streaming=True,
                        type="numpy",
                        label="Camera",
                        elem_id="rt-camera",
                        webcam_options=gr.WebcamOptions(mirror=False),
                    )
                    again_btn = gr.Button("Read again", variant="primary", elem_id="rt-read-again")
                    interval = gr.Slider(
                        0.5, 10, value=1, step=0.5, label="Read every (seconds)", elem_id="rt-interval"
                    )
        with gr.Column(scale=1):
            boxed_picture = gr.Image(
                label="The picture with the text found, boxed and numbered in reading order",
                interactive=False,
                elem_id="rt-boxed",
            )
            text = gr.Textbox(label="Text, in reading order", lines=4, interactive=False, elem_id="rt-text")
            announce = gr.HTML(live_region("", "rt-announce"), label="Announced text")
            lines = gr.Markdown("", elem_id="rt-lines", label="Lines found")
            said, audio = spoken_outputs("rt", "text")
            timing = gr.Markdown("", elem_id="rt-timing")
            badge = gr.Markdown(runtime_badge(None), elem_id="rt-runtime", elem_classes=["studio-badge"])

    with gr.Accordion("Speech", open=False):
        speech = build_speech_panel("rt", ctx.demo, what="texts")
    with gr.Accordion("Reading", open=False):
        min_confidence = gr.Slider(
            0.0,
            1.0,
            value=0.5,
            step=0.05,
            label="Leave out lines read less surely than",
            info="The model's confidence in a line (the mean of its letters'); 0.5 is the model's own setting.",
            elem_id="rt-min-confidence",
        )
        restore_spaces = gr.Checkbox(
            value=True,
            label="Put back spaces the model leaves out between words",
            elem_id="rt-spaces",
        )
    with gr.Accordion("Model and runtime", open=False):
        panel = build_model_panel(
            TASK,
            "rt",
            ctx.models_dir,
            ctx.models.get(TASK),
            ctx.loaded,
            exportable=False,
            runtime_note="**Runtime:** ONNX Runtime (the model's graphs ship as ONNX; nothing to export).",
        )

    what = [min_confidence, restore_spaces, panel.model, panel.device]
    outputs = [boxed_picture, text, announce, audio, lines, timing, badge, said]
    read_btn.click(tab.read_photo, [photo, *what, *speech.inputs], outputs, api_name="read_text")
    camera.stream(
        tab.read_frame,
        [camera, live, interval, *what, *speech.inputs],
        outputs,
        api_name="read_text_frame",
        stream_every=0.5,
        time_limit=None,
        concurrency_limit=None,
        show_progress="hidden",
    )
    speech.speak_after(said, "rt")
    again_btn.click(tab.read_again, None, None, api_name="read_text_again")
    camera.clear(tab.stop_stream, None, None, api_name=False)
