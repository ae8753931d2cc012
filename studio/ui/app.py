"""Builds the Studio app from a list of tabs and launches it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from studio.services.base import LoadedModels
from studio.ui import (
    ask_tab,
    caption_tab,
    finetune_tab,
    read_text_tab,
    sound_tab,
    trial_panel,
    video_tab,
    zero_shot_tab,
)

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    """What every tab may need.

    Attributes:
        models_dir: Root of exports and local model copies.
        models: Preselected model per task (hub id or folder), from `studio --model TASK=...`.
        loaded: The models loaded in this process, shared by every tab's services.
        trial: The trial log (`studio.trial.TrialLog`) while it is on, None while off (`studio.ui.trial_panel`).
        serving: Ray Serve (`studio.serving.cluster.RayServing`) when tasks are served there, None in-process.
    """

    models_dir: Path
    models: dict[str, str] = field(default_factory=dict)
    demo: gr.Blocks | None = None  # the app being built, for page-load events
    loaded: LoadedModels = None
    trial: object = None
    serving: object = None
    _services: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.loaded is None:
            self.loaded = LoadedModels(self.models_dir)

    def service(self, service_class):
        """The one instance of a service the tabs call: in this process, or on its Ray Serve deployment (the same
        calls either way)."""
        if service_class not in self._services:
            service = service_class(self.loaded)
            if self.serving is not None:
                from studio.serving.cluster import service_task
                from studio.serving.proxy import ServedService

                if self.serving.settings(service_task(service_class)).served:
                    service = ServedService(service, self.serving)
            self._services[service_class] = service
        return self._services[service_class]


# (tab title, builder): adding a tab is one module and one line here.
TABS: list[tuple[str, Callable[[AppContext], None]]] = [
    ("Zero-shot", zero_shot_tab.build),
    ("Caption", caption_tab.build),
    ("Ask", ask_tab.build),
    ("Sound & scene", sound_tab.build),
    ("Video", video_tab.build),
    ("Fine-tune", finetune_tab.build),
    ("Read text", read_text_tab.build),
]

_CSS = """
.studio-badge { font-size: 0.95rem; }
#zs-announce { font-size: 1.25rem; font-weight: 600; min-height: 1.6em; }
#zs-announce.studio-problem { font-size: 1rem; font-weight: 500; color: #9a3412; }
#cap-announce { font-size: 1.2rem; font-weight: 600; min-height: 1.6em; }
#cap-announce.studio-problem { font-size: 1rem; font-weight: 500; color: #9a3412; }
#ask-announce { font-size: 1.2rem; font-weight: 600; min-height: 1.6em; }
#vid-announce { font-size: 1.2rem; font-weight: 600; min-height: 1.6em; }
#vid-announce.studio-problem { font-size: 1rem; font-weight: 500; color: #9a3412; }
#ft-announce { font-size: 1.1rem; font-weight: 600; min-height: 1.6em; }
#ft-announce.studio-problem { font-size: 1rem; font-weight: 500; color: #9a3412; }
#ask-announce.studio-problem, #ask-heard.studio-problem { font-size: 1rem; font-weight: 500; color: #9a3412; }
#snd-announce { font-size: 1.2rem; font-weight: 600; min-height: 1.6em; }
#rt-announce { font-size: 1.2rem; font-weight: 600; min-height: 1.6em; }
#rt-announce.studio-problem, #trial-announce.studio-problem { font-size: 1rem; font-weight: 500; color: #9a3412; }
#snd-announce.studio-problem, #snd-teach-status.studio-problem { font-size: 1rem; font-weight: 500; color: #9a3412; }
"""

_HEAD = """
<meta name="description" content="Multimodal Studio: point a camera or a file at multimodal models.">
<script>
// Fills the tabs' browser-voice lists from speechSynthesis (each lives in a panel rendered on demand).
window.studioFillVoices = () => {
  const synth = window.speechSynthesis;
  const voices = synth ? synth.getVoices() : [];
  for (const select of document.querySelectorAll(".studio-voice-select")) {
    if (select.dataset.filled === "yes") continue;
    select.innerHTML = "";
    for (const v of voices) {
      const option = document.createElement("option");
      option.value = v.name;
      option.textContent = `${v.name} (${v.lang})`;
      option.selected = v.default;
      select.appendChild(option);
    }
    if (!voices.length) {
      const option = document.createElement("option");
      option.textContent = "This browser has no voices: the server's voice is used";
      select.appendChild(option);
    }
    select.dataset.filled = voices.length ? "yes" : "no";
  }
};
// Keyboard: Alt+Shift+D describes now (the visible describe button), Alt+Shift+S stops speaking,
// Alt+Shift+Q focuses the question box, Alt+Shift+L the labels box.
// Alt+Shift+R reads the photo or reads the camera's text again. Trial ratings: 1/2/3 when not typing in a box, or
// Alt+Shift+1/2/3 anywhere, while the trial log's rating buttons are shown.
// Key codes, not characters, so it works on every layout and on macOS.
document.addEventListener("keydown", (event) => {
  const visible = (selector) => [...document.querySelectorAll(selector)].find((el) => el.offsetParent !== null);
  const digit = /^(Digit|Numpad)([123])$/.exec(event.code);
  if (digit && !event.ctrlKey && !event.metaKey) {
    const target = event.target;
    const typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    const rateKey = (event.altKey && event.shiftKey) || (!event.altKey && !typing);
    const button = rateKey && visible(`#trial-rate-${digit[2]}`);
    if (button) { event.preventDefault(); button.click(); }
    return;
  }
  if (!(event.altKey && event.shiftKey)) return;
  if (event.code === "KeyD") {
    const button = visible("#cap-describe-photo, #cap-describe-camera");
    if (button) { event.preventDefault(); button.click(); }
  } else if (event.code === "KeyS") {
    event.preventDefault();
    if (window.speechSynthesis) window.speechSynthesis.cancel();
    document.querySelectorAll("audio").forEach((audio) => audio.pause());
  } else if (event.code === "KeyQ") {
    const box = visible("#ask-question textarea, #ask-question input");
    if (box) { event.preventDefault(); box.focus(); }
  } else if (event.code === "KeyR") {
    const button = visible("#rt-read-photo, #rt-read-again");
    if (button) { event.preventDefault(); button.click(); }
  } else if (event.code === "KeyL") {
    const box = visible("#zs-labels textarea");
    if (box) { event.preventDefault(); box.focus(); }
  }
});
</script>
"""


def build_app(ctx: AppContext) -> gr.Blocks:
    """The Blocks app with every tab."""
    with gr.Blocks(title="Multimodal Studio") as demo:
        ctx.demo = demo
        gr.Markdown(
            "# Multimodal Studio\n"
            "Point your camera or a photo at modern multimodal models and see what they understand. "
            + (
                "The models run on a Ray cluster."
                if getattr(ctx.serving, "remote", False)
                else "Everything runs on this computer."
            )
        )
        with gr.Tabs():
            for title, build in TABS:
                with gr.Tab(title):
                    build(ctx)
        trial_panel.build(ctx)
    return demo


def launch(
    host: str = "127.0.0.1",
    port: int = 7860,
    models_dir: Path | None = None,
    open_browser: bool = True,
    models: dict[str, str] | None = None,
    block: bool = True,
    trial_log: Path | None = None,
    participant: str | None = None,
    keep_pictures: bool = False,
    serving=None,
):
    """Builds and serves the app.

    Args:
        host: Address to bind (127.0.0.1 keeps it on this machine).
        port: Port to serve on.
        models_dir: Root of exports and local copies (default `studio.paths.default_models_dir()`).
        open_browser: Open the app in the default browser.
        models: Preselected model per task.
        block: Serve until interrupted (False returns the running app, for tests).
        trial_log: Start with the trial log on, writing into this folder (`studio.trial`).
        participant: The trial participant's code.
        keep_pictures: Keep each logged output's picture beside the trial log.
        serving: A connected `studio.serving.cluster.RayServing` to serve the tasks on (None: in this process).

    Raises:
        TrialError: The trial log's folder cannot be made, or the participant code is not a code.
    """
    from studio.paths import default_models_dir
    from studio.trial import NO_PARTICIPANT, TrialLog

    ctx = AppContext(
        models_dir=Path(models_dir) if models_dir else default_models_dir(), models=dict(models or {}), serving=serving
    )
    if trial_log is not None:
        ctx.trial = TrialLog(Path(trial_log), participant or NO_PARTICIPANT, keep_pictures)
    ctx.models_dir.mkdir(parents=True, exist_ok=True)
    demo = build_app(ctx)
    # In-process, 4 requests at once share the cores; served on Ray, the replicas do the work and Ray queues the rest,
    # so more requests may wait there at once (and be batched together).
    demo.queue(default_concurrency_limit=4 if serving is None else 64)
    demo.launch(
        server_name=host,
        server_port=port,
        inbrowser=open_browser,
        prevent_thread_lock=not block,
        show_error=False,
        css=_CSS,
        head=_HEAD,
        footer_links=["api", "settings"],
        allowed_paths=[str(Path(__file__).resolve().parents[2] / "assets")],
    )
    return demo
