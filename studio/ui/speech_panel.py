"""Speech shared by the tabs that talk: the "Speech" panel, the browser-voice JS, and server speech files.

The browser's own voice is the first choice (rate and voice set here); where the browser has none, espeak-ng makes a
WAV on the server that the tab plays. `prefix` keeps each tab's element ids apart ("cap", "ask").
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from studio.errors import StudioError

SOURCE_CHOICES = [
    ("Automatic (this browser's voice if it has one, else the server's)", "auto"),
    ("This browser's voice", "browser"),
    ("The server's voice (espeak-ng)", "server"),
]
_KEEP_S = 600  # server speech files older than this are deleted

# Runs in the browser after a result: speaks it with the browser's voice when that is the choice. `{prefix}` is the
# tab's id prefix; the text may carry a "N|" counter so a repeated text still changes and is spoken again.
_SPEAK_JS = """
(said, speak, source, wpm, canSpeak) => {
  const text = String(said || "").replace(/^\\d+\\|/, "");
  const synth = window.speechSynthesis;
  const useBrowser = speak && text && synth && (source === "browser" || (source === "auto" && canSpeak));
  if (!useBrowser) return;
  synth.cancel();
  const utterance = new SpeechSynthesisUtterance(text);
  utterance.rate = Math.min(10, Math.max(0.1, wpm / 175));
  const chosen = document.getElementById("{prefix}-browser-voice");
  const voice = synth.getVoices().find(v => chosen && v.name === chosen.value);
  if (voice) utterance.voice = voice;
  synth.speak(utterance);
}
"""

# The same for a description spoken sentence by sentence while it is generated ("N|K|sentence"): the first sentence
# (K = 0) cuts off whatever was being said, later ones queue behind it.
_SPEAK_SENTENCE_JS = """
(said, speak, source, wpm, canSpeak) => {
  const match = /^\\d+\\|(\\d+)\\|([\\s\\S]*)$/.exec(String(said || ""));
  const synth = window.speechSynthesis;
  if (!match || !match[2]) return;
  const useBrowser = speak && synth && (source === "browser" || (source === "auto" && canSpeak));
  if (!useBrowser) return;
  if (match[1] === "0") synth.cancel();
  const utterance = new SpeechSynthesisUtterance(match[2]);
  utterance.rate = Math.min(10, Math.max(0.1, wpm / 175));
  const chosen = document.getElementById("{prefix}-browser-voice");
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

_VOICE_SELECT_HTML = """
<label for="{prefix}-browser-voice" style="display:block;font-size:0.9rem;margin-bottom:4px">Browser voice</label>
<select id="{prefix}-browser-voice" class="studio-voice-select" style="width:100%;padding:6px"
        onfocus="window.studioFillVoices()" onpointerenter="window.studioFillVoices()">
  <option>Choose a voice…</option>
</select>
"""


def speak_js(prefix: str) -> str:
    """The browser-speech snippet for one tab."""
    return _SPEAK_JS.replace("{prefix}", prefix)


@dataclass
class SpeechPanel:
    """The panel's components; `inputs` is what a tab's handler takes to decide on server speech."""

    speak: gr.Checkbox
    source: gr.Radio
    wpm: gr.Slider
    voice: gr.Dropdown
    can_speak: gr.Checkbox

    @property
    def inputs(self) -> list:
        return [self.speak, self.source, self.wpm, self.voice, self.can_speak]

    def speak_sentences_after(self, text_component, prefix: str) -> None:
        """Speaks each sentence put in `text_component` ("N|K|sentence") in the browser, queued behind the one
        before (K = 0 starts a new answer and cuts off the last one)."""
        text_component.change(
            None,
            [text_component, self.speak, self.source, self.wpm, self.can_speak],
            None,
            js=_SPEAK_SENTENCE_JS.replace("{prefix}", prefix),
        )

    def speak_after(self, text_component, prefix: str) -> None:
        """Speaks `text_component`'s new value in the browser whenever it changes."""
        text_component.change(
            None, [text_component, self.speak, self.source, self.wpm, self.can_speak], None, js=speak_js(prefix)
        )


def build_speech_panel(prefix: str, demo: gr.Blocks, what: str = "descriptions") -> SpeechPanel:
    """Builds the "Speech" controls (inside an open accordion) and asks the browser for its voices on page load."""
    from studio.media import speech

    can_speak = gr.Checkbox(value=False, visible=False, label="This browser can speak")
    with gr.Row():
        speak = gr.Checkbox(value=True, label=f"Speak {what} aloud", elem_id=f"{prefix}-speak")
        source = gr.Radio(SOURCE_CHOICES, value="auto", label="Voice", elem_id=f"{prefix}-voice-source")
    wpm = gr.Slider(
        speech.MIN_WPM,
        speech.MAX_WPM,
        value=speech.DEFAULT_WPM,
        step=5,
        label="Speaking rate (words per minute)",
        elem_id=f"{prefix}-rate",
    )
    with gr.Row():
        gr.HTML(_VOICE_SELECT_HTML.replace("{prefix}", prefix), label="Browser voice")
        choices = server_voice_choices()
        voice = gr.Dropdown(
            choices,
            value="en-us" if any(v == "en-us" for _, v in choices) else None,
            label="Server voice",
            elem_id=f"{prefix}-server-voice",
            allow_custom_value=True,
        )
    gr.Markdown(
        f"Screen reader users: {what} are also announced by your screen reader; turn off "
        f"“Speak {what} aloud” to hear them once."
    )
    demo.load(None, None, [can_speak], js=VOICES_JS)
    return SpeechPanel(speak, source, wpm, voice, can_speak)


def spoken_outputs(prefix: str, what: str) -> tuple[gr.Textbox, gr.Audio]:
    """The hidden "last said" text (numbered, so a repeat still changes and is spoken) and the server voice's audio.

    Args:
        prefix: The tab's element id prefix.
        what: What is spoken, singular ("description", "answer").
    """
    said = gr.Textbox(visible=False, label=f"Last {what}")
    audio = gr.Audio(
        label=f"Spoken {what} (server voice)",
        type="filepath",
        autoplay=True,
        interactive=False,
        elem_id=f"{prefix}-audio",
    )
    return said, audio


def people_checkbox(prefix: str, what: str) -> gr.Checkbox:
    """The choice to keep words about people's age and looks (off: listeners hear the scene, not judgements)."""
    return gr.Checkbox(
        value=False,
        label="Describe people's age and looks",
        elem_id=f"{prefix}-people",
        info=f"Off by default: {what} say “a woman”, not “a young woman”.",
    )


def server_voice_choices() -> list[tuple[str, str]]:
    """espeak-ng's English voices as (label, name), or none when the server cannot speak."""
    from studio.media import speech

    try:
        return [(v.label, v.name) for v in speech.voices("en")]
    except StudioError:
        return []


class ServerSpeech:
    """Makes WAV files of results with espeak-ng when the server's voice is the one to use."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="studio-speech-"))

    def __call__(self, text: str, speak: bool, source: str, wpm: float, voice: str, can_speak: bool) -> str | None:
        """A WAV path for `text`, or None when the browser speaks it (or nothing should be spoken).

        Raises:
            StudioError: espeak-ng is missing or the request is out of range (a sentence for the user).
        """
        if not speak or not text or source == "browser" or (source == "auto" and can_speak):
            return None
        from studio.media.speech import synthesize

        cutoff = time.time() - _KEEP_S
        for old in self.folder.glob("*.wav"):
            if old.stat().st_mtime < cutoff:
                old.unlink(missing_ok=True)
        return str(synthesize(text, self.folder, words_per_minute=int(wpm), voice=voice or "en-us"))
