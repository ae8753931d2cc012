"""Ask tab: a question about a photo or the camera view, typed or spoken, answered in words that are shown,
announced and spoken.

A spoken question is turned into text by the speech-to-text model and put in the question box for the user to check
before asking, so a misheard word never silently becomes a wrong answer.
"""

from __future__ import annotations

import logging

import gradio as gr

from studio.errors import StudioError
from studio.services.base import Runtime
from studio.ui.components import (
    LenientImage,
    example_photos,
    live_region,
    problem,
    runtime_badge,
    service_of,
    ui_progress,
)
from studio.ui.model_panel import build_model_panel
from studio.ui.speech_panel import ServerSpeech, build_speech_panel, people_checkbox, spoken_outputs
from studio.ui.trial_panel import TrialHook

log = logging.getLogger(__name__)

TASK = "vqa"
STT_TASK = "speech-to-text"


class AskTab:
    """The tab's state shared by all sessions: loaded VQA and speech-to-text models, server speech."""

    trial = TrialHook()  # the trial log (build sets the app's)

    def __init__(self, ctx) -> None:
        from studio.services.ask import AskService

        self.service = service_of(ctx, AskService)
        self.speech = ServerSpeech()
        self.said = 0

    def ask(
        self,
        image,
        question,
        describe_people,
        model,
        backend,
        device,
        speak,
        source,
        wpm,
        voice,
        can_speak,
        progress=gr.Progress(track_tqdm=True),
    ):
        """Answers the question about the picture."""
        try:
            if image is None:
                raise StudioError(
                    "There is no picture yet. Upload a photo, take one with the camera, or pick an example."
                )
            result = self.service(
                image,
                question,
                describe_people=describe_people,
                runtime=Runtime(model, backend, device),
                progress=ui_progress(progress),
            )
            audio = self.speech(result["answer"], speak, source, wpm, voice, can_speak)
        except StudioError as exc:
            return gr.skip(), problem(str(exc), "ask-announce"), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        for notice in result["notices"]:
            gr.Info(notice)
        top = result["answers"][0]["score"] if result["answers"] else None
        speech = (speak, source, wpm, voice, can_speak)
        self.trial.output(result, result["answer"], speech=speech, picture=image, confidence=top)
        self.said += 1
        scores = {a["answer"]: a["score"] for a in result["answers"]}
        return (
            scores,
            live_region(result["answer"], "ask-announce"),
            audio,
            f"Took {result['latency_ms']:.0f} ms",
            runtime_badge(result["runtime"]),
            f"{self.said}|{result['answer']}",
        )

    def listen(self, recording, model, device, progress=gr.Progress(track_tqdm=True)):
        """Turns a recorded question into text, for the user to check before asking."""
        try:
            if recording is None:
                raise StudioError("Nothing was recorded. Press the microphone button, ask your question, then stop.")
            runtime = Runtime(model, device=device)
            result = self.service.transcribe(recording, runtime=runtime, progress=ui_progress(progress))
        except StudioError as exc:
            return gr.skip(), problem(str(exc), "ask-heard")
        heard = f"Heard: “{result['text']}”. Check the question, then press Ask or Enter."
        return result["text"], live_region(heard, "ask-heard")


def build(ctx) -> None:
    """Builds the tab inside the current Blocks context."""
    tab = AskTab(ctx)
    tab.trial = TrialHook(ctx, "Ask")
    gr.Markdown(
        "### Ask about what the camera sees\n"
        "Give a photo (or take one with the camera), then type or say a question.  \n"
        "**Keyboard:** Alt+Shift+Q goes to the question box · Enter asks · Alt+Shift+S stops speaking."
    )
    with gr.Row():
        with gr.Column(scale=1):
            image = LenientImage(
                sources=["upload", "webcam", "clipboard"],
                type="filepath",
                label="Picture to ask about",
                elem_id="ask-image",
            )
            example_photos(image)
        with gr.Column(scale=1):
            question = gr.Textbox(
                label="Your question", placeholder="what color is the cup?", elem_id="ask-question", lines=1
            )
            with gr.Row():
                ask_btn = gr.Button("Ask", variant="primary", elem_id="ask-submit")
            # filepath: our own decoder reads the recording (and explains a file that is not sound in words).
            recording = gr.Audio(
                sources=["microphone"], type="filepath", label="Or say your question", elem_id="ask-mic"
            )
            heard = gr.HTML(live_region("", "ask-heard"), label="What was heard")
            announce = gr.HTML(live_region("", "ask-announce"), label="Answer")
            answers = gr.Label(num_top_classes=5, label="Answers and scores", elem_id="ask-answers")
            said, audio = spoken_outputs("ask", "answer")
            timing = gr.Markdown("", elem_id="ask-timing")
            badge = gr.Markdown(runtime_badge(None), elem_id="ask-runtime", elem_classes=["studio-badge"])

    with gr.Accordion("Speech", open=False):
        speech = build_speech_panel("ask", ctx.demo, what="answers")
    describe_people = people_checkbox("ask", "answers")
    with gr.Accordion("Question answering model", open=False):
        panel = build_model_panel(
            TASK, "ask", ctx.models_dir, ctx.models.get(TASK), ctx.loaded, what="Question answering"
        )
    with gr.Accordion("Speech-to-text model", open=False):
        stt = build_model_panel(
            STT_TASK,
            "stt",
            ctx.models_dir,
            ctx.models.get(STT_TASK),
            ctx.loaded,
            exportable=False,
            what="Speech-to-text",
        )

    inputs = [image, question, describe_people, panel.model, panel.backend, panel.device, *speech.inputs]
    outputs = [answers, announce, audio, timing, badge, said]
    ask_btn.click(tab.ask, inputs, outputs, api_name="ask")
    question.submit(tab.ask, inputs, outputs, api_name=False)
    speech.speak_after(said, "ask")
    recording.stop_recording(tab.listen, [recording, stt.model, stt.device], [question, heard], api_name="transcribe")
    recording.upload(tab.listen, [recording, stt.model, stt.device], [question, heard], api_name=False)
