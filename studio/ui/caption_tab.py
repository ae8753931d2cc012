"""Caption tab: describe a photo or what the camera sees, in words that are shown, announced and spoken.

Live describe: the camera is looked at every few seconds and a description is spoken only when the scene changed and
the words are new (`studio.narration`). Speech comes from `studio.ui.speech_panel`.
"""

from __future__ import annotations

import logging

import gradio as gr

from studio.errors import StudioError
from studio.live import LatestFrameGate
from studio.narration import Narrator
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
from studio.ui.describe_stream import DescribeStreams
from studio.ui.model_panel import build_model_panel
from studio.ui.speech_panel import ServerSpeech, build_speech_panel, people_checkbox, spoken_outputs
from studio.ui.trial_panel import TrialHook

log = logging.getLogger(__name__)

TASK = "caption"
DESCRIBE_TASK = "describe"
VERBOSITY_CHOICES = [
    ("Short (a few words)", "short"),
    ("Fuller sentence (slower)", "detailed"),
    ("Detailed: a few sentences, spoken while written (vision-language model)", "vlm"),
]


class CaptionTab:
    """The tab's state shared by all sessions: the service, live gate, narrators, server speech."""

    trial = TrialHook()  # the trial log (build sets the app's)

    def __init__(self, ctx) -> None:
        from studio.services.caption import CaptionService

        self.service = service_of(ctx, CaptionService)
        self.gate = LatestFrameGate()
        self.narrators: dict[str, Narrator] = {}
        self.warn_once = WarnOnce("Caption")
        self.speech = ServerSpeech()
        self.said = 0
        self.streams = DescribeStreams(getattr(ctx, "loaded", ctx), "cap-announce")

    def narrator(self, session: str, interval: float, threshold: float) -> Narrator:
        narrator = self.narrators.setdefault(session, Narrator())
        narrator.interval_s, narrator.change_threshold = float(interval), float(threshold)
        return narrator

    def spoken(self, text: str, voice_settings: tuple, warn) -> str | None:
        """Server speech for a description; a speech problem is reported without hiding the description."""
        try:
            return self.speech(text, *voice_settings)
        except StudioError as exc:
            warn(str(exc))
            return None

    # Events ------------------------------------------------------------------------------------------------

    def describe_photo(
        self,
        image,
        prefix,
        describe_people,
        beams,
        max_new_tokens,
        repetition_penalty,
        no_repeat_ngram,
        model,
        backend,
        device,
        speak,
        source,
        wpm,
        voice,
        can_speak,
        progress=gr.Progress(),
    ):
        """Describes an uploaded or example photo."""
        what = _settings(prefix, describe_people, beams, max_new_tokens, repetition_penalty, no_repeat_ngram)
        speech = (speak, source, wpm, voice, can_speak)
        try:
            if image is None:
                raise StudioError("There is no photo yet. Upload one or pick an example below.")
            runtime = Runtime(model, backend, device)
            result = self.service(image, **what, runtime=runtime, progress=ui_progress(progress))
        except StudioError as exc:
            return gr.skip(), problem(exc, "cap-announce"), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        for notice in result["notices"]:
            notify("Caption", notice)
        text = result["caption"]
        audio = self.spoken(text, speech, gr.Warning)
        self.trial.output(result, text, speech=speech, settings=what, picture=image)
        self.said += 1
        timing = (
            f"Took {result['latency_ms']:.0f} ms (image {result['encoder_ms']:.0f} ms, "
            f"words {result['decode_ms']:.0f} ms)"
        )
        return (
            text,
            live_region(text, "cap-announce"),
            audio,
            timing,
            runtime_badge(result["runtime"]),
            f"{self.said}|{text}",
        )

    def describe_detailed(
        self,
        image,
        describe_people,
        model,
        backend,
        device,
        speak,
        source,
        wpm,
        voice,
        can_speak,
        request: gr.Request,
        progress=gr.Progress(),
    ):
        """Describes the photo in a few sentences with the vision-language model, each spoken as soon as written."""
        speech = (speak, source, wpm, voice, can_speak)
        runtime = Runtime(model, backend, device)
        options = {"detail": True, "describe_people": describe_people, "runtime": runtime}
        for text, announce, sentence, timing, badge, result in self.streams.run(
            session_of(request), image, progress, **options
        ):
            audio = gr.skip()
            if result is not None:
                audio = self.spoken(result["text"], speech, gr.Warning) or gr.skip()
                self.trial.output(result, result["text"], speech=speech, settings={"verbosity": "vlm"}, picture=image)
            yield text, announce, sentence, timing, badge, audio

    def stop_detailed(self, request: gr.Request):
        """Stops this session's detailed description (Stop button, Alt+Shift+S)."""
        self.streams.stop(session_of(request))

    def describe_frame(
        self,
        frame,
        live,
        interval,
        threshold,
        prefix,
        describe_people,
        beams,
        max_new_tokens,
        repetition_penalty,
        no_repeat_ngram,
        model,
        backend,
        device,
        speak,
        source,
        wpm,
        voice,
        can_speak,
        request: gr.Request,
    ):
        """Live describe: looks every few seconds, speaks only when the scene changed and the words are new."""
        import numpy as np

        what = _settings(prefix, describe_people, beams, max_new_tokens, repetition_penalty, no_repeat_ngram)
        speech = (speak, source, wpm, voice, can_speak)
        session = session_of(request)
        skip = (gr.skip(),) * 6
        if frame is None or not live:
            return skip
        narrator = self.narrator(session, interval, threshold)
        if not narrator.due():
            return skip
        try:

            def look(image):
                return self.service.describe_if_changed(
                    image,
                    since=narrator.reference(),
                    change_threshold=narrator.change_threshold,
                    runtime=Runtime(model, backend, device),
                    **what,
                )

            result, stats = self.gate.submit(session, frame, look)
        except StudioError as exc:
            warn = lambda message: self.warn_once(session, message)  # noqa: E731
            return gr.skip(), problem(exc, "cap-announce", warn), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        if result is None:  # dropped as stale
            return gr.skip(), gr.skip(), gr.skip(), stats.summary, gr.skip(), gr.skip()
        badge = runtime_badge(result["runtime"])
        if not result["changed"] or not narrator.announce(result["caption"], np.asarray(result["scene_embedding"])):
            if result["changed"]:  # described, but the same words as just said
                self.trial.output(result, result["caption"], speech=speech, skipped=True, settings=what, picture=frame)
            return gr.skip(), gr.skip(), gr.skip(), stats.summary, badge, gr.skip()
        text = result["caption"]
        audio = self.spoken(text, speech, lambda m: self.warn_once(session, m))
        live_settings = {**what, "interval_s": interval, "change_threshold": threshold}
        self.trial.output(result, text, speech=speech, settings=live_settings, picture=frame)
        self.said += 1
        return text, live_region(text, "cap-announce"), audio, stats.summary, badge, f"{self.said}|{text}"

    def describe_now(self, request: gr.Request):
        """The next camera frame is described and spoken, even if the scene did not change."""
        session = session_of(request)
        self.narrators.setdefault(session, Narrator()).describe_now()

    def stop_stream(self, request: gr.Request):
        session = session_of(request)
        self.gate.reset(session)
        self.narrators.pop(session, None)
        self.warn_once.clear(session)


def _settings(prefix, describe_people, beams, max_new_tokens, repetition_penalty, no_repeat_ngram) -> dict:
    """The caption service's keyword arguments for the tab's "What to say" and decoding controls."""
    return {
        "prefix": prefix,
        "describe_people": describe_people,
        "beams": beams,
        "max_new_tokens": max_new_tokens,
        "repetition_penalty": repetition_penalty,
        "no_repeat_ngram_size": no_repeat_ngram,
    }


def _verbosity_values(verbosity: str):
    from studio.tasks.caption import VERBOSITY

    if verbosity not in VERBOSITY:  # the vision-language model: BLIP's decoding controls do not apply
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    s = VERBOSITY[verbosity]
    return s.num_beams, s.max_new_tokens, s.repetition_penalty, s.no_repeat_ngram_size


def _describe_buttons(verbosity: str):
    """The photo's describe button for the chosen length: BLIP's, or the vision-language model's with Stop."""
    detailed = verbosity == "vlm"
    return gr.update(visible=not detailed), gr.update(visible=detailed), gr.update(visible=detailed)


def build(ctx) -> None:
    """Builds the tab inside the current Blocks context."""
    tab = CaptionTab(ctx)
    tab.trial = TrialHook(ctx, "Caption")
    gr.Markdown(
        "## Describe what the camera sees\n"
        "Give a photo or start the camera. The description is shown, announced to screen readers, and spoken.  \n"
        "**Keyboard:** Alt+Shift+D describes now · Alt+Shift+S stops speaking (and a detailed description)."
    )
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Tabs():
                with gr.Tab("Photo", id="cap-photo-tab"):
                    photo = LenientImage(
                        sources=["upload", "clipboard"], type="filepath", label="Photo to describe", elem_id="cap-photo"
                    )
                    describe_btn = gr.Button("Describe photo", variant="primary", elem_id="cap-describe-photo")
                    with gr.Row():
                        detail_btn = gr.Button(
                            "Describe photo in detail", variant="primary", elem_id="cap-describe-detail", visible=False
                        )
                        stop_btn = gr.Button("Stop", variant="stop", elem_id="cap-stop", visible=False)
                    example_photos(photo)
                with gr.Tab("Camera", id="cap-camera-tab"):
                    live = gr.Checkbox(
                        value=True, label="Live describe (speak when the scene changes)", elem_id="cap-live"
                    )
                    camera = gr.Image(
                        sources=["webcam"], streaming=True, type="numpy", label="Camera", elem_id="cap-camera"
                    )
                    now_btn = gr.Button("Describe now", variant="primary", elem_id="cap-describe-camera")
                    with gr.Row():
                        interval = gr.Slider(
                            1, 15, value=3, step=0.5, label="Look every (seconds)", elem_id="cap-interval"
                        )
                        threshold = gr.Slider(
                            0.0,
                            0.6,
                            value=0.15,
                            step=0.01,
                            label="How much the scene must change to speak",
                            info="0 speaks at every look; higher waits for bigger changes.",
                            elem_id="cap-threshold",
                        )
        with gr.Column(scale=1):
            caption = gr.Textbox(label="Description", lines=3, interactive=False, elem_id="cap-text")
            announce = gr.HTML(live_region("", "cap-announce"), label="Announced description")
            said, audio = spoken_outputs("cap", "description")
            said_sentence = gr.Textbox(visible=False, label="Last sentence said")
            timing = gr.Markdown("", elem_id="cap-timing")
            badge = gr.Markdown(runtime_badge(None), elem_id="cap-runtime", elem_classes=["studio-badge"])

    with gr.Accordion("Speech", open=False):
        speech = build_speech_panel("cap", ctx.demo, what="descriptions")
    with gr.Accordion("What to say", open=False):
        verbosity = gr.Radio(VERBOSITY_CHOICES, value="short", label="Length", elem_id="cap-verbosity")
        prefix = gr.Textbox(
            label="Start the description with (optional)", placeholder="a photograph of", elem_id="cap-prefix"
        )
        describe_people = people_checkbox("cap", "descriptions")
    with gr.Accordion("Advanced decoding", open=False):
        with gr.Row():
            beams = gr.Slider(1, 5, value=1, step=1, label="Beams (1 = greedy)", elem_id="cap-beams")
            max_new = gr.Slider(4, 60, value=12, step=1, label="Most word pieces", elem_id="cap-max-new")
            rep = gr.Slider(1.0, 2.0, value=1.0, step=0.05, label="Repetition penalty", elem_id="cap-rep")
            ngram = gr.Slider(0, 4, value=0, step=1, label="Never repeat phrases of this length", elem_id="cap-ngram")
    with gr.Accordion("Model and runtime", open=False):
        panel = build_model_panel(TASK, "cap", ctx.models_dir, ctx.models.get(TASK), ctx.loaded)
    with gr.Accordion("Detailed description model", open=False):
        vlm = build_model_panel(
            DESCRIBE_TASK,
            "capvlm",
            ctx.models_dir,
            ctx.models.get(DESCRIBE_TASK),
            ctx.loaded,
            what="Detailed description",
        )

    what = [prefix, describe_people, beams, max_new, rep, ngram, panel.model, panel.backend, panel.device]
    outputs = [caption, announce, audio, timing, badge, said]
    describe_btn.click(tab.describe_photo, [photo, *what, *speech.inputs], outputs, api_name="caption")
    camera.stream(
        tab.describe_frame,
        [camera, live, interval, threshold, *what, *speech.inputs],
        outputs,
        api_name="caption_frame",
        stream_every=0.5,
        time_limit=None,
        concurrency_limit=None,
        show_progress="hidden",
    )
    speech.speak_after(said, "cap")
    now_btn.click(tab.describe_now, None, None, api_name="caption_now")
    camera.clear(tab.stop_stream, None, None, api_name=False)
    verbosity.change(_verbosity_values, [verbosity], [beams, max_new, rep, ngram], api_name=False)
    verbosity.change(_describe_buttons, [verbosity], [describe_btn, detail_btn, stop_btn], api_name=False)
    detail_btn.click(
        tab.describe_detailed,
        [photo, describe_people, vlm.model, vlm.backend, vlm.device, *speech.inputs],
        [caption, announce, said_sentence, timing, badge, audio],
        api_name="caption_detailed",
    )
    stop_btn.click(tab.stop_detailed, None, None, api_name="caption_stop")
    speech.speak_sentences_after(said_sentence, "cap")
