"""Sound & scene tab: what is happening, from the microphone, a sound file or a video's sound track, and from the
camera, a photo or the video's frames, with each modality's share of the fused answer shown.

The microphone streams in the browser: the last few seconds are kept in a rolling window and heard every second.
Files of any length are heard window by window, with a timeline of what was heard when. Early and attention fusion
need a fusion head trained on labelled clips ("Teach the fusion heads"); until one is trained the tab says so and
uses late fusion.
"""

from __future__ import annotations

import logging
import threading

import gradio as gr

from studio.errors import StudioError
from studio.services.base import Runtime, ran_on
from studio.ui.a11y import notify
from studio.ui.components import (
    LenientImage,
    WarnOnce,
    example_photos,
    live_region,
    problem,
    service_of,
    session_of,
    ui_progress,
)
from studio.ui.model_panel import build_model_panel
from studio.ui.trial_panel import TrialHook

log = logging.getLogger(__name__)

TASK = "av-events"
PICTURE_TASK = "zero-shot"
DEFAULT_LABELS = "dog barking, door knock, applause, speech, music"
FUSION_CHOICES = [
    ("Late fusion (weighted mean of the two)", "late"),
    ("Early fusion (trained head over both embeddings)", "early"),
    ("Attention fusion (trained head that weighs each modality)", "attention"),
]
LIVE_WINDOW_S = 5.0  # the microphone's rolling window
LIVE_EVERY_S = 1.0
TOP_LABELS = 5


class SoundTab:
    """The tab's state shared by all sessions: the service, live listeners per session."""

    trial = TrialHook()  # the trial log (build sets the app's)

    def __init__(self, ctx) -> None:
        from studio.services.sound_scene import SoundSceneService

        self.service = service_of(ctx, SoundSceneService)
        self.listeners: dict[str, tuple[tuple, object, threading.Lock]] = {}
        self.warn_once = WarnOnce("Sound & scene")

    # Events -------------------------------------------------------------------------------------------------

    def recognise(
        self,
        audio,
        video,
        image,
        labels,
        fusion,
        head_name,
        audio_weight,
        sound_model,
        sound_backend,
        sound_device,
        picture_model,
        picture_backend,
        picture_device,
        progress=gr.Progress(),
    ):
        """Recognizes what is happening in the sound file and/or video and/or picture given."""
        try:
            if audio is None and video is None and image is None:
                raise StudioError(
                    "There is nothing to recognise yet: upload a sound file or a video, or give a picture."
                )
            result = self.service(
                audio=audio,
                image=image,
                video=video,
                labels=labels,
                fusion=fusion,
                audio_weight=float(audio_weight),
                head=head_name,
                late_if_untrained=True,
                sound=Runtime(sound_model, sound_backend, sound_device),
                picture=Runtime(picture_model, picture_backend, picture_device),
                progress=ui_progress(progress),
            )
        except StudioError as exc:
            return (*(gr.skip(),) * 8, problem(exc, "snd-announce"))
        notices = result["notices"]
        for notice in notices:
            notify("Sound & scene", notice)
        ranking = result["fused"][:TOP_LABELS]
        top = ranking[0]
        said = f"Most likely: {top['label']} ({top['score']:.0%}, {_fusion_words(result['fusion'])})."
        heard = {"fusion": result["fusion"], "audio_weight": audio_weight, "labels": labels}
        self.trial.output(result, said, settings=heard, picture=image, confidence=top["score"])
        timeline_fig, timeline_alt, summary_md = timeline_outputs(result.get("sound"))
        return (
            {r["label"]: r["score"] for r in ranking},
            contributions_figure(ranking),
            contributions_text(result["fusion"], ranking),
            timeline_fig,
            timeline_alt,
            summary_md,
            f"Took {result['latency_ms']:.0f} ms" + _notice_text(notices),
            badge(result["runtime"]),
            live_region(said, "snd-announce"),
        )

    def listen_stream(self, chunk, labels, sound_model, sound_backend, sound_device, request: gr.Request):
        """One microphone chunk: kept in the session's rolling window, which is heard every second."""
        session = session_of(request)
        if chunk is None:
            return gr.skip(), gr.skip(), gr.skip()
        rate, samples = chunk
        try:
            runtime = Runtime(sound_model, sound_backend, sound_device)
            task = self.service.task(runtime)
            key = (runtime, labels if task.takes_typed_labels else None)
            entry = self.listeners.get(session)
            if entry is None or entry[0] != key:
                listener = self.service.listener(labels, window_s=LIVE_WINDOW_S, every_s=LIVE_EVERY_S, runtime=runtime)
                entry = self.listeners[session] = (key, listener, threading.Lock())
            _, listener, lock = entry
            with lock:
                steps = listener.feed(samples, int(rate))
        except StudioError as exc:
            warn = lambda message: self.warn_once(session, message)  # noqa: E731
            return gr.skip(), problem(exc, "snd-announce", warn), gr.skip()
        if not steps:
            return gr.skip(), gr.skip(), gr.skip()
        step = steps[-1]
        top = step.top(listener.labels, TOP_LABELS)
        heard = f"{listener.heard_s:.0f} s heard; the last {step.end_s - step.start_s:.0f} s:"
        if step.silent:
            return {}, live_region("Silence.", "snd-announce"), f"{heard} silence."
        # The live region names only the top label, so screen readers speak when it changes, not every second.
        hearing = {**ran_on(task), "latency_ms": None, "settings": {"window_s": LIVE_WINDOW_S, "labels": labels}}
        self.trial.output(
            hearing, f"Hearing: {top[0]['label']}", confidence=top[0]["score"], session=session, only_changes=True
        )
        return (
            {t["label"]: t["score"] for t in top},
            live_region(f"Hearing: {top[0]['label']}", "snd-announce"),
            f"{heard} " + ", ".join(f"{t['label']} {t['score']:.0%}" for t in top),
        )

    def stop_listening(self, request: gr.Request):
        session = session_of(request)
        self.listeners.pop(session, None)
        self.warn_once.clear(session)

    def fusion_note(self, fusion):
        """What the chosen fusion needs, and the trained heads to pick from."""
        if fusion == "late":
            return "Late fusion: the two sides' scores, weighted by the slider.", gr.update(
                choices=[], value=None, visible=False
            )
        heads = self.service.heads(fusion)
        if not heads:
            note = (
                f"**{fusion.capitalize()} fusion needs training:** no {fusion} fusion head has been trained yet, so "
                "late fusion is used. Teach one below with your labelled clips."
            )
            return note, gr.update(choices=[], value=None, visible=False)
        choices = [(h["label"], h["name"]) for h in heads]
        return f"{fusion.capitalize()} fusion with a trained head.", gr.update(
            choices=choices, value=choices[0][1], visible=True
        )

    def teach(
        self,
        folder,
        name,
        audio_weight,
        sound_model,
        sound_backend,
        sound_device,
        picture_model,
        picture_backend,
        picture_device,
        progress=gr.Progress(),
    ):
        """Trains both fusion heads on a folder of labelled clips and shows the held-out comparison."""
        try:
            if str(folder or "").strip():
                folder = str(self.service.models.sharing.check_folder(folder, "folder of labelled clips"))
            taught = self.service.teach(
                folder,
                name,
                audio_weight=float(audio_weight),
                sound=Runtime(sound_model, sound_backend, sound_device),
                picture=Runtime(picture_model, picture_backend, picture_device),
                progress=ui_progress(progress),
            )
        except StudioError as exc:
            return problem(exc, "snd-teach-status"), gr.skip()
        status = live_region(f"Saved {len(taught['saved'])} fusion heads as “{taught['name']}”.", "snd-teach-status")
        return status, comparison_markdown(taught["evaluation"])


def _fusion_words(mode: str) -> str:
    return {
        "late": "late fusion",
        "early": "early fusion",
        "attention": "attention fusion",
        "audio only": "from the sound alone",
        "picture only": "from the picture alone",
    }.get(mode, mode)


def _notice_text(notices: list[str]) -> str:
    return "".join(f"  \n{n}" for n in notices)


def badge(runtime: dict | None) -> str:
    """The runtime badge: what each model really runs on (a result's "runtime": {"sound", "picture"})."""
    runtime = runtime or {}
    parts = [f"{side}: {runtime[side]['label']}" for side in ("sound", "picture") if runtime.get(side)]
    return "**Runs on:** " + (" · ".join(parts) if parts else "not loaded yet (the models load on first use)")


def contributions_text(fusion: str, ranking: list[dict]) -> str:
    """The bar chart in words: each top label's fused score and each modality's part of it."""
    lines = [f"Fused scores ({_fusion_words(fusion)}), with the part from the sound and from the picture:"]
    for r in ranking:
        lines.append(f"- {r['label']}: {r['score']:.0%} (sound {r['audio']:.0%}, picture {r['picture']:.0%})")
    return "\n".join(lines)


def contributions_figure(ranking: list[dict]):
    """A stacked horizontal bar per top label: the sound's part and the picture's part of its fused score."""
    from matplotlib.figure import Figure

    rows = ranking[::-1]
    fig = Figure(figsize=(6, 0.5 + 0.45 * len(rows)), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    names = [r["label"] for r in rows]
    audio = [r["audio"] for r in rows]
    picture = [r["picture"] for r in rows]
    ax.barh(names, audio, color="#1d4ed8", label="from the sound")
    ax.barh(names, picture, left=audio, color="#f59e0b", hatch="//", edgecolor="#92400e", label="from the picture")
    ax.set_xlim(0, 1)
    ax.set_xlabel("fused score")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def timeline_outputs(sound: dict | None):
    """The timeline plot (top labels over time), its text version, and the summary list; empty without sound.

    Args:
        sound: The sound side of a result ({"summary", "events", "timeline", "window_s"}), or None.
    """
    if sound is None:
        return None, "No sound was given, so there is no timeline.", ""
    from matplotlib.figure import Figure

    timeline, events = sound["timeline"], sound["events"]
    names = timeline["labels"]
    fig = Figure(figsize=(7, 0.8 + 0.4 * len(names)), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    end = events[-1]["end_s"] if events else sound["window_s"]
    image = ax.imshow(
        timeline["scores"], aspect="auto", cmap="viridis", vmin=0, vmax=1, extent=(0, end, len(names) - 0.5, -0.5)
    )
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("time (seconds)")
    fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    lines = ["What was heard, window by window:"]
    for event in events:
        heard = "silence" if event["silent"] else ", ".join(f"{x['label']} {x['score']:.0%}" for x in event["labels"])
        lines.append(f"- {_clock(event['start_s'])}–{_clock(event['end_s'])}: {heard}")
    summary_lines = ["**Heard most over the whole recording:**"]
    for s in sound["summary"]:
        where = f", first at {_clock(s['first_s'])}" if s["first_s"] is not None else ""
        summary_lines.append(
            f"1. {s['label']}: {s['score']:.0%} on average, at most {s['peak']:.0%}; among the top labels in "
            f"{s['windows']} of {len(events)} windows{where}"
        )
    return fig, "\n".join(lines), "\n".join(summary_lines)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(float(seconds), 60)
    return f"{int(minutes)}:{secs:04.1f}"


def comparison_markdown(evaluation: dict) -> str:
    """The held-out comparison as a table."""
    acc = evaluation["accuracy"]
    names = {
        "early": "Early fusion head",
        "attention": "Attention fusion head",
        "late": f"Late fusion (sound weight {evaluation['audio_weight']:g})",
        "audio_only": "Sound alone",
        "picture_only": "Picture alone",
    }
    rows = "\n".join(f"| {names[k]} | {acc[k]:.0%} |" for k in names)
    return (
        f"Trained on {evaluation['train_clips']} clips, checked on {evaluation['held_out_clips']} held-out clips "
        f"({len(evaluation['classes'])} classes).\n\n| Method | Held-out accuracy |\n|---|---|\n{rows}"
    )


def build(ctx) -> None:
    """Builds the tab inside the current Blocks context."""
    tab = SoundTab(ctx)
    tab.trial = TrialHook(ctx, "Sound & scene")
    gr.Markdown(
        "## What is happening? Listen and look\n"
        "Give a sound (the microphone, a sound file, or a video's sound track), a picture (the camera, a photo, or "
        "the video's frames), or both. The sound and the picture are scored against the same labels and fused."
    )
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Tabs():
                with gr.Tab("Sound file", id="snd-file-tab"):
                    # filepath: our decoder reads the file (any length, streamed) and explains a bad one in words.
                    # A file box, not gr.Audio: its player puts 8 controls between the file and Recognise for
                    # keyboard users, and the whole file is heard by the model anyway.
                    audio = gr.File(
                        file_types=["audio"],
                        type="filepath",
                        label="Sound file (wav, flac, ogg, mp3)",
                        elem_id="snd-audio",
                    )
                with gr.Tab("Video", id="snd-video-tab"):
                    video = gr.Video(
                        sources=["upload"], label="Video (its sound and its pictures)", elem_id="snd-video"
                    )
                with gr.Tab("Microphone (live)", id="snd-mic-tab"):
                    mic = gr.Audio(
                        sources=["microphone"],
                        streaming=True,
                        type="numpy",
                        label="Microphone (the last 5 seconds are heard every second)",
                        elem_id="snd-mic",
                    )
                    live_text = gr.Markdown("", elem_id="snd-live")
            # Right after the sound: one Tab from the file to the action (the picture and settings are optional).
            recognise_btn = gr.Button("Recognise", variant="primary", elem_id="snd-recognise")
            image = LenientImage(
                sources=["upload", "webcam", "clipboard"], type="filepath", label="Picture", elem_id="snd-image"
            )
            example_photos(image)
        with gr.Column(scale=1):
            labels = gr.Textbox(
                value=DEFAULT_LABELS,
                label="Labels to listen and look for (separate them with commas)",
                info="CLAP listens for these; AST names sounds with its own 527 labels, and the picture is scored "
                "against the labels in play.",
                lines=2,
                elem_id="snd-labels",
            )
            fusion = gr.Radio(FUSION_CHOICES, value="late", label="Fusion", elem_id="snd-fusion")
            fusion_note = gr.Markdown(
                "Late fusion: the two sides' scores, weighted by the slider.", elem_id="snd-fusion-note"
            )
            head = gr.Dropdown(choices=[], value=None, label="Trained fusion head", elem_id="snd-head", visible=False)
            audio_weight = gr.Slider(
                0, 1, value=0.5, step=0.05, label="Weight of the sound (late fusion)", elem_id="snd-weight"
            )
            announce = gr.HTML(live_region("", "snd-announce"), label="Most likely")
            fused = gr.Label(num_top_classes=TOP_LABELS, label="Fused scores", elem_id="snd-fused")
            timing = gr.Markdown("", elem_id="snd-timing")
            runtime = gr.Markdown(badge(None), elem_id="snd-runtime", elem_classes=["studio-badge"])
    with gr.Row():
        with gr.Column(scale=1):
            shares_plot = gr.Plot(label="Each modality's share of the top labels", elem_id="snd-shares-plot")
            shares_text = gr.Markdown("", elem_id="snd-shares-text", label="The chart in words")
        with gr.Column(scale=1):
            timeline_plot = gr.Plot(
                label="Timeline: what was heard when (brighter: more sure)", elem_id="snd-timeline-plot"
            )
            summary = gr.Markdown("", elem_id="snd-summary")
    with gr.Accordion("Timeline in words", open=False):
        timeline_text = gr.Markdown("", elem_id="snd-timeline-text")

    with gr.Accordion("Sound model", open=False):
        sound_panel = build_model_panel(TASK, "snd", ctx.models_dir, ctx.models.get(TASK), ctx.loaded, what="Sound")
    with gr.Accordion("Image model", open=False):
        picture_panel = build_model_panel(
            PICTURE_TASK, "sndpic", ctx.models_dir, ctx.models.get(PICTURE_TASK), ctx.loaded, what="Image"
        )
    with gr.Accordion("Teach the fusion heads", open=False):
        gr.Markdown(
            "Early and attention fusion learn from your own labelled clips: a folder on this computer with one "
            "sub-folder per class, each holding videos with sound (e.g. `clips/door knock/*.mp4`). Part of the "
            "clips of each class is held out to compare the trained heads with late fusion."
        )
        teach_folder = gr.Textbox(
            label="Folder of labelled clips", info=ctx.sharing.folders_hint(), elem_id="snd-teach-folder"
        )
        teach_name = gr.Textbox(label="Name of the fusion heads", value="my clips", elem_id="snd-teach-name")
        teach_btn = gr.Button("Teach the fusion heads", elem_id="snd-teach")
        teach_status = gr.HTML(live_region("", "snd-teach-status"), label="Training")
        comparison = gr.Markdown("", elem_id="snd-teach-comparison")

    sound_settings = [sound_panel.model, sound_panel.backend, sound_panel.device]
    picture_settings = [picture_panel.model, picture_panel.backend, picture_panel.device]
    inputs = [audio, video, image, labels, fusion, head, audio_weight, *sound_settings, *picture_settings]
    outputs = [fused, shares_plot, shares_text, timeline_plot, timeline_text, summary, timing, runtime, announce]
    recognise_btn.click(tab.recognise, inputs, outputs, api_name="recognise")
    audio.upload(tab.recognise, inputs, outputs, api_name=False)
    video.upload(tab.recognise, inputs, outputs, api_name=False)
    fusion.change(tab.fusion_note, [fusion], [fusion_note, head], api_name="fusion_note")
    mic.stream(
        tab.listen_stream,
        [mic, labels, *sound_settings],
        [fused, announce, live_text],
        api_name="listen_stream",
        stream_every=0.5,
        time_limit=None,
        concurrency_limit=None,
        show_progress="hidden",
    )
    mic.stop_recording(tab.stop_listening, None, None, api_name=False)
    teach_btn.click(
        tab.teach,
        [teach_folder, teach_name, audio_weight, *sound_settings, *picture_settings],
        [teach_status, comparison],
        api_name="teach_fusion",
    )
