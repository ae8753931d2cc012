"""Builds the Studio app from a list of tabs and launches it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from studio.services.base import LoadedModels
from studio.sharing import LOCAL, Limits, SharingPolicy
from studio.ui import (
    a11y,
    ask_tab,
    caption_tab,
    finetune_tab,
    model_panel,
    models_view,
    read_text_tab,
    search_tab,
    sound_tab,
    theme,
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
        sharing: What visitors of a shared app may ask for (`studio.sharing`): every input naming a server path
            goes through `sharing.check_folder`; the services check models, labels and lengths against it.
        serving: Ray Serve (`studio.serving.cluster.RayServing`) when tasks are served there, None in-process.
    """

    models_dir: Path
    models: dict[str, str] = field(default_factory=dict)
    demo: gr.Blocks | None = None  # the app being built, for page-load events
    loaded: LoadedModels = None
    trial: object = None
    sharing: SharingPolicy = LOCAL
    serving: object = None
    _services: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.loaded is None:
            self.loaded = LoadedModels(self.models_dir, sharing=self.sharing)

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
    ("Search", search_tab.build),
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
#sr-announce, #sr-index-announce, #sr-match-announce,
#sr-eval-announce { font-size: 1.1rem; font-weight: 600; min-height: 1.6em; }
#sr-announce.studio-problem, #sr-index-announce.studio-problem, #sr-match-announce.studio-problem,
#sr-eval-announce.studio-problem { font-size: 1rem; font-weight: 500; color: #9a3412; }
/* gradio's "add more files" toolbar button nests a 16 px upload button inside a button (axe: nested-interactive,
   target-size); more files are added by clearing the list (its x button) and dropping them all again. */
#sr-uploads button[aria-label="Upload a file"], #sr-uploads button[aria-label="common.upload"] { display: none; }
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
    const button = visible("#cap-describe-photo, #cap-describe-detail, #cap-describe-camera");
    if (button) { event.preventDefault(); button.click(); }
  } else if (event.code === "KeyS") {
    event.preventDefault();
    window.studioStopVoices();  // studio/ui/a11y.py: the browser's voice and every server voice, shadow DOM too
    const stop = visible("#cap-stop, #ask-stop");  // a description or answer still being written stops too
    if (stop) stop.click();
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


def tab_id(title: str) -> str:
    """The top-level tab's id ("Sound & scene" -> "tab-sound-scene"): its button's data-tab-id, for tests."""
    import re

    return "tab-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def build_app(ctx: AppContext) -> gr.Blocks:
    """The Blocks app with every tab."""
    with gr.Blocks(title="Multimodal Studio") as demo:
        ctx.demo = demo
        # One heading hierarchy: h1 here, h2 per tab (its first line), h3 for a tab's sections.
        with gr.Row():
            gr.Markdown(
                "# Multimodal Studio\n"
                "Point your camera or a photo at modern multimodal models and see what they understand. "
                + (
                    "The models run on a Ray cluster."
                    if getattr(ctx.serving, "remote", False)
                    else "Everything runs on this computer."
                )
            )
            with gr.Column(scale=0, min_width=320):
                contrast = theme.high_contrast_switch()
        demo.load(None, None, [contrast], js=theme.HIGH_CONTRAST_ON_LOAD_JS)
        notes = []  # per tab: its first-run note and the models it needs
        with gr.Tabs(elem_id="studio-tabs"):
            for title, build in TABS:
                with gr.Tab(title, id=tab_id(title)):
                    note = models_view.tab_note(tab_id(title))
                    with model_panel.collect_panels() as panels:
                        build(ctx)
                    notes.append((title, note, panels))
        tabs_of: dict[str, list[str]] = {}  # task -> titles of the tabs that use it
        for title, _, panels in notes:
            for task, _ in panels:
                if title not in tabs_of.setdefault(task, []):
                    tabs_of[task].append(title)
        downloads = models_view.build(ctx, tabs_of)
        for title, note, panels in notes:
            models_view.wire_tab_note(demo, tab_id(title), note, panels, ctx.models_dir, downloads)
        models_view.fill_notes_on_load(demo, [(tab_id(t), n, p) for t, n, p in notes], ctx.models_dir)
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
    shared: bool = False,
    allow_paths: list[Path] | tuple = (),
    logins: list[tuple[str, str]] | None = None,
    limits: Limits | None = None,
    serving=None,
):
    """Builds and serves the app.

    Args:
        host: Address to bind (127.0.0.1 keeps it on this machine; any other address shares it).
        port: Port to serve on.
        models_dir: Root of exports and local copies (default `studio.paths.default_models_dir()`).
        open_browser: Open the app in the default browser.
        models: Preselected model per task.
        block: Serve until interrupted (False returns the running app, for tests).
        trial_log: Start with the trial log on, writing into this folder (`studio.trial`).
        participant: The trial participant's code.
        keep_pictures: Keep each logged output's picture beside the trial log.
        shared: Shared mode even on a loopback address (`studio.sharing`; on by itself on any other address).
        allow_paths: Folders visitors of a shared app may name (model folders, folders of examples, index folders).
        logins: (user, password) pairs visitors log in with (gradio's auth); None: no login.
        limits: Request limits of a shared app (default `studio.sharing.Limits()`).
        serving: A connected `studio.serving.cluster.RayServing` to serve the tasks on (None: in this process).

    Raises:
        TrialError: The trial log's folder cannot be made, or the participant code is not a code.
        RefusedError: An allowed folder does not exist.
    """
    from studio.atomic import remove_leftovers
    from studio.paths import default_models_dir
    from studio.trial import NO_PARTICIPANT, TrialLog
    from studio.ui.guard import guard_events, limit_queue

    models_dir = Path(models_dir) if models_dir else default_models_dir()
    models = dict(models or {})
    sharing = SharingPolicy.for_app(
        host, shared, allow_paths, models_dir, models.values(), limits or Limits(), auth=bool(logins)
    )
    ctx = AppContext(models_dir=models_dir, models=models, sharing=sharing, serving=serving)
    if trial_log is not None:
        ctx.trial = TrialLog(Path(trial_log), participant or NO_PARTICIPANT, keep_pictures)
    ctx.models_dir.mkdir(parents=True, exist_ok=True)
    for leftover in remove_leftovers(ctx.models_dir):
        log.warning("removed %s, left behind by an export or save that was stopped", leftover)
    demo = build_app(ctx)
    guard_events(demo, sharing)
    # In-process, 4 requests at once share the cores; served on Ray, the replicas do the work and Ray queues the rest,
    # so more requests may wait there at once (and be batched together).
    demo.queue(default_concurrency_limit=4 if serving is None else 64)
    if sharing.shared:
        limit_queue(demo, sharing)
        if not logins:
            print(
                f"studio: this app is shared on {host}:{port} without a login, so anyone on the network can use it "
                "(add --auth USER:PASSWORD to ask for one).",
                file=sys.stderr,
            )
    demo.launch(
        server_name=host,
        server_port=port,
        inbrowser=open_browser,
        prevent_thread_lock=not block,
        show_error=False,
        css=theme.CSS + _CSS,
        head=a11y.HEAD_JS + _HEAD,
        theme=theme.make_theme(),
        footer_links=["api", "settings"],
        allowed_paths=[str(Path(__file__).resolve().parents[2] / "assets")],
        auth=list(logins) if logins else None,
        auth_message="Log in with the name and password the presenter gave you." if logins else None,
        max_file_size=int(sharing.limits.upload_mb * 1e6) if sharing.shared else None,
    )
    return demo
