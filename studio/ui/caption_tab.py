"""Caption tab: describe a photo or what the camera sees, in words that are shown, announced and spoken.

Speech: the browser's own voice when it has one (rate and voice chosen here), else a WAV made on the server with
espeak-ng. Live describe: the camera is looked at every few seconds and a description is spoken only when the scene
changed and the words are new.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import gradio as gr

from studio.errors import StudioError
from studio.live import LatestFrameGate
from studio.narration import Narrator
from studio.paths import assets_dir
from studio.task_cache import TaskCache
from studio.ui.components import LenientImage, WarnOnce, live_region, runtime_badge, ui_progress
from studio.ui.model_panel import build_model_panel
from studio.ui.zero_shot_tab import EXAMPLE_NAMES

log = logging.getLogger(__name__)

TASK = "caption"
SOURCE_CHOICES = [
    ("Automatic (this browser's voice if it has one, else the server's)", "auto"),
    ("This browser's voice", "browser"),
    ("The server's voice (espeak-ng)", "server"),
]
VERBOSITY_CHOICES = [("Short (a few words)", "short"), ("Detailed (a fuller sentence, slower)", "detailed")]
_SPEECH_KEEP_S = 600  # server speech files older than this are deleted


# Runs in the browser after each description: speaks it with the browser's voice when that is the choice.
SPEAK_JS = """
(text, speak, source, wpm, canSpeak) => {
  const synth = window.speechSynthesis;
  const useBrowser = speak && text && synth && (source === "browser" || (source === "auto" && canSpeak));
  if (!useBrowser) return;
  synth.cancel();
  const utterance = new SpeechSynthesisUtterance(text);
  utterance.rate = Math.min(10, Math.max(0.1, wpm / 175));
  const chosen = document.getElementById("cap-browser-voice");
  const voice = synth.getVoices().find(v => chosen && v.name === chosen.value);
  if (voice) utterance.voice = voice;
  synth.speak(utterance);
}
"""

# On page load: report whether this browser can speak (voices may arrive a moment after the page).
VOICES_JS = """
() => new Promise(resolve => {
  const synth = window.speechSynthesis;
  const done = () => {
    if (window.studioFillVoices) window.studioFillVoices();
    resolve(!!synth && synth.getVoices().length > 0);
  };
  if (!synth || synth.getVoices().length) return done();
  synth.addEventListener("voiceschanged", done, { once: true });
  setTimeout(done, 1500);  // some browsers never fire voiceschanged when they have no voices
})
"""

BROWSER_VOICE_HTML = """
<label for="cap-browser-voice" style="display:block;font-size:0.9rem;margin-bottom:4px">Browser voice</label>
<select id="cap-browser-voice" style="width:100%;padding:6px" onfocus="window.studioFillVoices()"
        onpointerenter="window.studioFillVoices()"><option>Choose a voice…</option></select>
"""


class CaptionTab:
    """The tab's state shared by all sessions: loaded models, live gate, narrators, speech files."""

    def __init__(self, models_dir: Path) -> None:
        from studio.tasks.caption import CaptionTask

        self.models_dir = models_dir
        self.tasks = TaskCache(
            lambda model, backend, device, progress=None: CaptionTask.load(
                model, models_dir, backend=backend, device=device, **({"progress": progress} if progress else {})
            )
        )
        self.gate = LatestFrameGate()
        self.narrators: dict[str, Narrator] = {}
        self.warn_once = WarnOnce()
        self.speech_dir = Path(tempfile.mkdtemp(prefix="studio-speech-"))
        self.said = 0

    def task(self, model, backend, device, progress=None):
        return self.tasks.get((model or None, backend, device), progress=progress)

    def narrator(self, session: str, interval: float, threshold: float) -> Narrator:
        narrator = self.narrators.setdefault(session, Narrator())
        narrator.interval_s, narrator.change_threshold = float(interval), float(threshold)
        return narrator

    # Speech ------------------------------------------------------------------------------------------------

    def server_speech(self, text: str, speak: bool, source: str, wpm: float, voice: str, can_speak: bool):
        """A WAV of the text from espeak-ng when the server voice is the one to use, else None."""
        if not speak or not text or source == "browser" or (source == "auto" and can_speak):
            return None
        from studio.media.speech import synthesize

        self._forget_old_speech()
        return str(synthesize(text, self.speech_dir, words_per_minute=int(wpm), voice=voice or "en-us"))

    def _forget_old_speech(self) -> None:
        cutoff = time.time() - _SPEECH_KEEP_S
        for old in self.speech_dir.glob("*.wav"):
            if old.stat().st_mtime < cutoff:
                old.unlink(missing_ok=True)

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
        progress=gr.Progress(track_tqdm=True),
    ):
        """Describes an uploaded or example photo."""
        try:
            if image is None:
                raise StudioError("There is no photo yet. Upload one or pick an example below.")
            settings = _settings(beams, max_new_tokens, repetition_penalty, no_repeat_ngram)
            task = self.task(model, backend, device, ui_progress(progress))
            result = task(image, prefix=prefix, settings=settings, describe_people=describe_people)
            audio = self.server_speech(result.text, speak, source, wpm, voice, can_speak)
        except StudioError as exc:
            gr.Warning(str(exc))
            return gr.skip(), live_region(str(exc), "cap-announce", problem=True), gr.skip(), gr.skip(), gr.skip()
        for notice in task.graphs.notices:
            gr.Info(notice)
        timing = f"Took {result.latency_ms:.0f} ms (image {result.encoder_ms:.0f} ms, words {result.decode_ms:.0f} ms)"
        return result.text, live_region(result.text, "cap-announce"), audio, timing, runtime_badge(task.runtime)

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
        from studio.tasks.caption import scene_embedding

        session = getattr(request, "session_hash", None) or "local"
        skip = (gr.skip(),) * 6
        if frame is None or not live:
            return skip
        narrator = self.narrator(session, interval, threshold)
        if not narrator.due():
            return skip
        try:
            settings = _settings(beams, max_new_tokens, repetition_penalty, no_repeat_ngram)
            task = self.task(model, backend, device)

            def look(image):
                encoded = task.encode(task.preprocess(image))
                if not narrator.changed(scene_embedding(encoded)):
                    return None
                return task.describe(encoded, prefix=prefix, settings=settings, describe_people=describe_people)

            result, stats = self.gate.submit(session, frame, look)
            if result is None or not narrator.announce(result.text, result.image_embedding):
                return gr.skip(), gr.skip(), gr.skip(), stats.summary, runtime_badge(task.runtime), gr.skip()
            audio = self.server_speech(result.text, speak, source, wpm, voice, can_speak)
        except StudioError as exc:
            self.warn_once(session, str(exc))
            problem = live_region(str(exc), "cap-announce", problem=True)
            return gr.skip(), problem, gr.skip(), gr.skip(), gr.skip(), gr.skip()
        self.said += 1
        return (
            result.text,
            live_region(result.text, "cap-announce"),
            audio,
            stats.summary,
            runtime_badge(task.runtime),
            f"{self.said}|{result.text}",
        )

    def describe_now(self, request: gr.Request):
        """The next camera frame is described and spoken, even if the scene did not change."""
        session = getattr(request, "session_hash", None) or "local"
        self.narrators.setdefault(session, Narrator()).describe_now()

    def stop_stream(self, request: gr.Request):
        session = getattr(request, "session_hash", None) or "local"
        self.gate.reset(session)
        self.narrators.pop(session, None)
        self.warn_once.clear(session)


def _settings(beams, max_new_tokens, repetition_penalty, no_repeat_ngram):
    from studio.generation import GenerationSettings

    beams = int(beams)
    return GenerationSettings(
        max_new_tokens=int(max_new_tokens),
        num_beams=beams,
        repetition_penalty=float(repetition_penalty),
        no_repeat_ngram_size=int(no_repeat_ngram),
        min_new_tokens=min(8, int(max_new_tokens)) if beams > 1 else 0,
    )


def _verbosity_values(verbosity: str):
    from studio.tasks.caption import VERBOSITY

    s = VERBOSITY[verbosity]
    return s.num_beams, s.max_new_tokens, s.repetition_penalty, s.no_repeat_ngram_size


def build(ctx) -> None:
    """Builds the tab inside the current Blocks context."""
    from studio.media import speech

    tab = CaptionTab(ctx.models_dir)
    gr.Markdown(
        "### Describe what the camera sees\n"
        "Give a photo or start the camera. The description is shown, announced to screen readers, and spoken.  \n"
        "**Keyboard:** Alt+Shift+D describes now · Alt+Shift+S stops speaking."
    )
    can_speak = gr.Checkbox(value=False, visible=False, label="This browser can speak")
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Tabs():
                with gr.Tab("Photo", id="cap-photo-tab"):
                    photo = LenientImage(
                        sources=["upload", "clipboard"], type="filepath", label="Photo to describe", elem_id="cap-photo"
                    )
                    describe_btn = gr.Button("Describe photo", variant="primary", elem_id="cap-describe-photo")
                    examples = sorted((assets_dir() / "images").glob("*.jpg"))
                    gr.Examples(
                        examples=[[str(p)] for p in examples],
                        inputs=[photo],
                        example_labels=[EXAMPLE_NAMES.get(p.stem, p.stem) for p in examples],
                        label="Example photos",
                    )
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
            # Each new live description, numbered so that a repeat asked for with "Describe now" is still spoken.
            said = gr.Textbox(visible=False, label="Last live description")
            announce = gr.HTML(live_region("", "cap-announce"), label="Announced description")
            audio = gr.Audio(
                label="Spoken description (server voice)",
                type="filepath",
                autoplay=True,
                interactive=False,
                elem_id="cap-audio",
            )
            timing = gr.Markdown("", elem_id="cap-timing")
            badge = gr.Markdown(runtime_badge(None), elem_id="cap-runtime", elem_classes=["studio-badge"])

    with gr.Accordion("Speech", open=False):
        with gr.Row():
            speak = gr.Checkbox(value=True, label="Speak descriptions aloud", elem_id="cap-speak")
            source = gr.Radio(SOURCE_CHOICES, value="auto", label="Voice", elem_id="cap-voice-source")
        wpm = gr.Slider(
            speech.MIN_WPM,
            speech.MAX_WPM,
            value=speech.DEFAULT_WPM,
            step=5,
            label="Speaking rate (words per minute)",
            elem_id="cap-rate",
        )
        with gr.Row():
            gr.HTML(BROWSER_VOICE_HTML, label="Browser voice")
            server_voices = _server_voice_choices()
            voice = gr.Dropdown(
                server_voices,
                value="en-us" if any(v == "en-us" for _, v in server_voices) else None,
                label="Server voice",
                elem_id="cap-server-voice",
                allow_custom_value=True,
            )
        gr.Markdown(
            "Screen reader users: the description is also announced by your screen reader; turn off "
            "“Speak descriptions aloud” to hear it once."
        )
    with gr.Accordion("What to say", open=False):
        verbosity = gr.Radio(VERBOSITY_CHOICES, value="short", label="Length", elem_id="cap-verbosity")
        prefix = gr.Textbox(
            label="Start the description with (optional)", placeholder="a photograph of", elem_id="cap-prefix"
        )
        describe_people = gr.Checkbox(
            value=False,
            label="Describe people's age and looks",
            elem_id="cap-people",
            info="Off by default: descriptions say “a woman”, not “a young woman”.",
        )
    with gr.Accordion("Advanced decoding", open=False):
        with gr.Row():
            beams = gr.Slider(1, 5, value=1, step=1, label="Beams (1 = greedy)", elem_id="cap-beams")
            max_new = gr.Slider(4, 60, value=12, step=1, label="Most words pieces", elem_id="cap-max-new")
            rep = gr.Slider(1.0, 2.0, value=1.0, step=0.05, label="Repetition penalty", elem_id="cap-rep")
            ngram = gr.Slider(0, 4, value=0, step=1, label="Never repeat phrases of this length", elem_id="cap-ngram")
    with gr.Accordion("Model and runtime", open=False):
        panel = build_model_panel(TASK, "cap", ctx.models_dir, ctx.models.get(TASK), tab.tasks)

    what = [prefix, describe_people, beams, max_new, rep, ngram, panel.model, panel.backend, panel.device]
    voice_settings = [speak, source, wpm, voice, can_speak]
    outputs = [caption, announce, audio, timing, badge]
    speak_inputs = [caption, speak, source, wpm, can_speak]

    describe_btn.click(tab.describe_photo, [photo, *what, *voice_settings], outputs, api_name="caption").then(
        None, speak_inputs, None, js=SPEAK_JS
    )
    said_js = SPEAK_JS.replace("(text, speak", "(said, speak").replace(
        "const synth", "const text = (said || '').split('|').slice(1).join('|');\n  const synth"
    )
    said.change(None, [said, speak, source, wpm, can_speak], None, js=said_js)
    camera.stream(
        tab.describe_frame,
        [camera, live, interval, threshold, *what, *voice_settings],
        [*outputs, said],
        api_name="caption_frame",
        stream_every=0.5,
        time_limit=None,
        concurrency_limit=None,
        show_progress="hidden",
    )
    now_btn.click(tab.describe_now, None, None, api_name="caption_now")
    camera.clear(tab.stop_stream, None, None, api_name=False)
    verbosity.change(_verbosity_values, [verbosity], [beams, max_new, rep, ngram], api_name=False)
    # On page load, ask the browser whether it has voices (and fill the browser-voice list).
    ctx.demo.load(None, None, [can_speak], js=VOICES_JS)


def _server_voice_choices() -> list[tuple[str, str]]:
    from studio.media import speech

    try:
        return [(v.label, v.name) for v in speech.voices("en")]
    except StudioError:
        return []
