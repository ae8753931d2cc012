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
from studio.ui.a11y import notify
from studio.ui.components import (
    LenientImage,
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

TASK = "vqa"
STT_TASK = "speech-to-text"
DESCRIBE_TASK = "describe"
MODES = [
    ("Quick answer (one word or a few, fast)", "quick"),
    ("Conversation (follow-up questions about the same picture, vision-language model)", "conversation"),
]


class AskTab:
    """The tab's state shared by all sessions: loaded VQA and speech-to-text models, server speech."""

    trial = TrialHook()  # the trial log (build sets the app's)

    def __init__(self, ctx) -> None:
        from studio.services.ask import AskService

        self.service = service_of(ctx, AskService)
        self.speech = ServerSpeech()
        self.said = 0
        self.streams = DescribeStreams(getattr(ctx, "loaded", ctx), "ask-announce")

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
        progress=gr.Progress(),
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
            return gr.skip(), problem(exc, "ask-announce"), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        for notice in result["notices"]:
            notify("Ask", notice)
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

    def converse(
        self,
        image,
        question,
        history,
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
        """Answers the question with the conversation so far about this picture, each sentence spoken when written.

        Yields (chat shown, announcement, sentence to speak, timing, badge, server audio, history, question box).
        """
        speech = (speak, source, wpm, voice, can_speak)
        history = list(history or [])
        try:
            from studio.tasks.describe import clean_question

            question = clean_question(question)
        except StudioError as exc:
            yield gr.skip(), problem(str(exc), "ask-announce"), *(gr.skip(),) * 6
            return
        options = {"question": question, "history": history, "describe_people": describe_people}
        chat = _chat(history) + [{"role": "user", "content": question}]
        for text, announce, sentence, timing, badge, result in self.streams.run(
            session_of(request), image, progress, runtime=Runtime(model, backend, device), **options
        ):
            if result is None:
                shown = chat + [{"role": "assistant", "content": text}] if isinstance(text, str) else gr.skip()
                yield shown, announce, sentence, timing, badge, gr.skip(), gr.skip(), gr.skip()
                continue
            audio = self.speech(result["text"], *speech) if speak else None
            self.trial.output(result, result["text"], speech=speech, picture=image, confidence=result["confidence"])
            shown = chat + [{"role": "assistant", "content": result["text"]}]
            # The model's own words go back into the prompt; the chat shows what was said (hedged, looks left out).
            history = [*result["history"][:-1], {**result["history"][-1], "said": result["text"]}]
            yield shown, announce, sentence, timing, badge, audio, history, ""

    def submit_quick(
        self,
        mode,
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
        progress=gr.Progress(),
    ):
        """Enter in the question box, in the quick mode: `ask` (nothing in the conversation mode)."""
        if mode != "quick":
            return (gr.skip(),) * 6
        return self.ask(
            image, question, describe_people, model, backend, device, speak, source, wpm, voice, can_speak, progress
        )

    def submit_conversation(
        self,
        mode,
        image,
        question,
        history,
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
        """Enter in the question box, in the conversation mode: `converse` (nothing in the quick mode)."""
        if mode != "conversation":
            yield (gr.skip(),) * 8
            return
        yield from self.converse(
            image,
            question,
            history,
            describe_people,
            model,
            backend,
            device,
            speak,
            source,
            wpm,
            voice,
            can_speak,
            request,
            progress,
        )

    def stop_conversation(self, request: gr.Request):
        """Stops this session's answer being written (Stop button, Alt+Shift+S)."""
        self.streams.stop(session_of(request))

    def listen(self, recording, model, device, progress=gr.Progress()):
        """Turns a recorded question into text, for the user to check before asking."""
        try:
            if recording is None:
                raise StudioError("Nothing was recorded. Press the microphone button, ask your question, then stop.")
            runtime = Runtime(model, device=device)
            result = self.service.transcribe(recording, runtime=runtime, progress=ui_progress(progress))
        except StudioError as exc:
            return gr.skip(), problem(exc, "ask-heard")
        heard = f"Heard: “{result['text']}”. Check the question, then press Ask or Enter."
        return result["text"], live_region(heard, "ask-heard")


def _chat(history: list[dict]) -> list[dict]:
    """The conversation as the chat box shows it: each answer as it was said."""
    chat = []
    for turn in history:
        said = turn.get("said", turn["answer"])
        chat += [{"role": "user", "content": turn["question"]}, {"role": "assistant", "content": said}]
    return chat


def _new_photo():
    """Starts over: no picture, no conversation."""
    return None, [], [], "", live_region("Started over: give a new picture.", "ask-announce")


def _mode_buttons(mode: str):
    conversation = mode == "conversation"
    return (
        gr.update(visible=not conversation),
        gr.update(visible=conversation),
        gr.update(visible=conversation),
        gr.update(visible=conversation),
        gr.update(visible=not conversation),
    )


def build(ctx) -> None:
    """Builds the tab inside the current Blocks context."""
    tab = AskTab(ctx)
    tab.trial = TrialHook(ctx, "Ask")
    gr.Markdown(
        "## Ask about what the camera sees\n"
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
            mode = gr.Radio(MODES, value="quick", label="How to answer", elem_id="ask-mode")
            chat = gr.Chatbot(label="Conversation about this picture", visible=False, elem_id="ask-chat", height=260)
            history = gr.State([])
            question = gr.Textbox(
                label="Your question", placeholder="what color is the cup?", elem_id="ask-question", lines=1
            )
            with gr.Row():
                ask_btn = gr.Button("Ask", variant="primary", elem_id="ask-submit")
                converse_btn = gr.Button("Ask", variant="primary", elem_id="ask-converse", visible=False)
                stop_btn = gr.Button("Stop", variant="stop", elem_id="ask-stop", visible=False)
                new_btn = gr.Button("New photo", elem_id="ask-new-photo")
            # filepath: our own decoder reads the recording (and explains a file that is not sound in words).
            recording = gr.Audio(
                sources=["microphone"], type="filepath", label="Or say your question", elem_id="ask-mic"
            )
            heard = gr.HTML(live_region("", "ask-heard"), label="What was heard")
            announce = gr.HTML(live_region("", "ask-announce"), label="Answer")
            answers = gr.Label(num_top_classes=5, label="Answers and scores", elem_id="ask-answers")
            said, audio = spoken_outputs("ask", "answer")
            said_sentence = gr.Textbox(visible=False, label="Last sentence said")
            timing = gr.Markdown("", elem_id="ask-timing")
            badge = gr.Markdown(runtime_badge(None), elem_id="ask-runtime", elem_classes=["studio-badge"])

    with gr.Accordion("Speech", open=False):
        speech = build_speech_panel("ask", ctx.demo, what="answers")
    describe_people = people_checkbox("ask", "answers")
    with gr.Accordion("Question answering model", open=False):
        panel = build_model_panel(
            TASK, "ask", ctx.models_dir, ctx.models.get(TASK), ctx.loaded, what="Question answering"
        )
    with gr.Accordion("Conversation model", open=False):
        vlm = build_model_panel(
            DESCRIBE_TASK, "askvlm", ctx.models_dir, ctx.models.get(DESCRIBE_TASK), ctx.loaded, what="Conversation"
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
    talk_inputs = [image, question, history, describe_people, vlm.model, vlm.backend, vlm.device, *speech.inputs]
    talk_outputs = [chat, announce, said_sentence, timing, badge, audio, history, question]
    converse_btn.click(tab.converse, talk_inputs, talk_outputs, api_name="converse")
    # Enter asks in the chosen way; each listener leaves the other mode's questions alone.
    question.submit(tab.submit_quick, [mode, *inputs], outputs, api_name=False)
    question.submit(tab.submit_conversation, [mode, *talk_inputs], talk_outputs, api_name=False)
    stop_btn.click(tab.stop_conversation, None, None, api_name="ask_stop")
    new_btn.click(_new_photo, None, [image, history, chat, question, announce], api_name="ask_new_photo")
    image.change(lambda: ([], []), None, [history, chat], api_name=False)
    mode.change(_mode_buttons, [mode], [ask_btn, converse_btn, stop_btn, chat, answers], api_name=False)
    speech.speak_after(said, "ask")
    speech.speak_sentences_after(said_sentence, "ask")
    recording.stop_recording(tab.listen, [recording, stt.model, stt.device], [question, heard], api_name="transcribe")
    recording.upload(tab.listen, [recording, stt.model, stt.device], [question, heard], api_name=False)
