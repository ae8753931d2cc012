"""Video tab: what action is happening, in an uploaded video (window by window) or in front of the camera."""

from __future__ import annotations

import logging
import threading
import time

import gradio as gr

from studio.errors import StudioError
from studio.live import RollingClip, spread
from studio.media.video import VIDEO_SUFFIXES, clock
from studio.services.base import Runtime
from studio.ui.a11y import notify
from studio.ui.components import WarnOnce, live_region, problem, runtime_badge, service_of, session_of, ui_progress
from studio.ui.model_panel import build_model_panel

log = logging.getLogger(__name__)

TASK = "video"
MAX_CAMERA_STREAMS = 64


class VideoTab:
    """The tab's state shared by all sessions: loaded models, camera buffers, stop requests."""

    def __init__(self, ctx) -> None:
        from studio.services.video import VideoService

        self.service = service_of(ctx, VideoService)
        self.warn_once = WarnOnce("Video")
        self.buffers: dict[str, RollingClip] = {}
        self.stop_requests: set[str] = set()
        self._lock = threading.Lock()

    # Events -------------------------------------------------------------------------------------------------

    def labels_box(self, model):
        """Shows the typed-actions box only for models that use it."""
        return gr.update(visible=self.service.wants_labels(model))

    def classify_video(
        self,
        video,
        window_s,
        stride_s,
        model,
        backend,
        device,
        labels="",
        request: gr.Request = None,
        progress=gr.Progress(),
    ):
        """Classifies an uploaded video window by window; Stop keeps the windows done so far."""
        session = session_of(request)
        with self._lock:
            self.stop_requests.discard(session)
        try:
            if not video:
                raise StudioError("There is no video yet. Upload one (MP4, AVI, WebM or MOV) first.")
            result = self.service(
                video,
                window_seconds=window_s,
                stride_seconds=stride_s,
                labels=labels,
                runtime=Runtime(model, backend, device),
                progress=ui_progress(progress),
                cancelled=lambda: session in self.stop_requests,
            )
        except StudioError as exc:
            return gr.skip(), problem(exc, "vid-announce"), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        for notice in result["notices"]:
            notify("Video", notice, "warning")
        windows = result["windows"]
        top = result["overall"][0]
        said = f"Most likely action: {top['label']} ({top['score']:.0%})"
        if result["cancelled"]:
            said += f". Stopped after {len(windows)} windows."
        timing = (
            f"{len(windows)} window{'s' if len(windows) != 1 else ''} of {result['window_seconds']:g} s "
            f"every {result['stride_seconds']:g} s · {result['frames_per_clip']} frames each · model "
            f"{result['model_ms_per_clip']:.0f} ms per window · reading the video "
            f"{result['decode_ms_total'] / 1000:.1f} s in all"
        )
        return (
            {t["label"]: t["score"] for t in result["overall"]},
            live_region(said, "vid-announce"),
            # A plot only when there is a timeline (more than one window); otherwise no empty box is shown.
            gr.update(value=timeline_plot(result), visible=True)
            if len(windows) > 1
            else gr.update(value=None, visible=False),
            timeline_text(result),
            timing,
            runtime_badge(result["runtime"]),
        )

    def stop(self, request: gr.Request):
        """Asks the running video of this session to stop after the current window."""
        with self._lock:
            self.stop_requests.add(session_of(request))

    def classify_camera(self, frame, seconds, interval, model, backend, device, labels="", request: gr.Request = None):
        """Buffers camera frames; every `interval` seconds classifies the last `seconds` of them.

        The model runs on a worker thread (`RollingClip.start`) so frames keep filling the buffer meanwhile; its
        result is shown with the first frame that arrives after it finished.
        """
        session = session_of(request)
        if frame is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        now = time.monotonic()
        with self._lock:
            buffer = self.buffers.get(session)
            if buffer is None:
                if len(self.buffers) >= MAX_CAMERA_STREAMS:
                    self.buffers.pop(next(iter(self.buffers)))
                buffer = self.buffers[session] = RollingClip(float(seconds))
        buffer.seconds = float(seconds)
        buffer.add(now, frame)
        if buffer.due(now, float(interval)):
            runtime = Runtime(model, backend, device)

            def work(timed):
                frames = spread(timed, self.service.frames_per_clip(runtime))
                return self.service.classify_frames(frames, labels=labels, runtime=runtime)

            buffer.start(now, work)
        finished = buffer.take()
        if finished is None:
            if buffer.last_run is not None:  # keep showing the last result's timing between runs
                return gr.skip(), gr.skip(), gr.skip(), gr.skip()
            held = f"Collecting camera frames: {buffer.span:.1f} s so far ({len(buffer.buffer)} frames)"
            return gr.skip(), gr.skip(), held, gr.skip()
        if isinstance(finished.error, StudioError):
            warn = lambda message: self.warn_once(session, message)  # noqa: E731
            return gr.skip(), problem(finished.error, "vid-announce", warn), gr.skip(), gr.skip()
        if finished.error is not None:
            raise finished.error
        result = finished.value
        for notice in result["notices"]:
            self.warn_once(session, notice)
        top = result["top"]
        return (
            {t["label"]: t["score"] for t in top},
            live_region(f"Action: {top[0]['label']}", "vid-announce"),
            f"Looked at the last {finished.span_s:.1f} s of camera ({result['frames_per_clip']} of its "
            f"{finished.frames} frames) in {finished.took_ms:.0f} ms; looks every {float(interval):g} s",
            runtime_badge(result["runtime"]),
        )

    def stop_camera(self, request: gr.Request):
        session = session_of(request)
        with self._lock:
            self.buffers.pop(session, None)
        self.warn_once.clear(session)


# Beyond this many windows (a long video), windows in a row with the same top action are listed as one line.
MAX_LISTED_WINDOWS = 120


def timeline_text(result: dict) -> str:
    """The timeline as a list with timestamps (also the plot's text alternative), from the video service's result."""
    windows = result["windows"]
    overall = ", ".join(f"{t['label']} {t['score']:.0%}" for t in result["overall"][:3])
    lines = [f"**Over the whole video:** {overall}"]
    if len(windows) > 1:
        lines.append("")
        if len(windows) <= MAX_LISTED_WINDOWS:
            lines.append("**Window by window:**")
            for w in windows:
                top = w["top"][0]
                lines.append(f"- {clock(w['start_s'])}–{clock(w['end_s'])}: {top['label']} ({top['score']:.0%})")
        else:
            lines.append(
                f"**Window by window** ({len(windows)} windows; those in a row with the same top action "
                "are listed once):"
            )
            run: list = []
            for w in [*windows, None]:
                if run and (w is None or w["top"][0]["label"] != run[0]["top"][0]["label"]):
                    best = max(r["top"][0]["score"] for r in run)
                    count = f"{len(run)} windows, up to " if len(run) > 1 else ""
                    span = f"{clock(run[0]['start_s'])}–{clock(run[-1]['end_s'])}"
                    lines.append(f"- {span}: {run[0]['top'][0]['label']} ({count}{best:.0%})")
                    run = []
                if w is not None:
                    run.append(w)
    if result["cancelled"]:
        lines.append("")
        lines.append("Stopped before the end of the video.")
    for notice in result["notices"]:
        lines.append("")
        lines.append(notice)
    return "\n".join(lines)


def timeline_plot(result: dict):
    """The overall top actions' probability in each window, over time (the service's "timeline")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    windows = result["windows"]
    centers = [(w["start_s"] + w["end_s"]) / 2 for w in windows]
    fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    minutes = centers[-1] > 180  # long videos read better in minutes
    x = [c / 60 for c in centers] if minutes else centers
    marker = "o" if len(centers) <= 60 else None
    for label, scores in zip(result["timeline"]["labels"], result["timeline"]["scores"]):
        ax.plot(x, scores, marker=marker, label=label)
    ax.set_xlabel(f"Time in the video ({'minutes' if minutes else 's'})")
    ax.set_ylabel("Probability")
    ax.set_ylim(0, 1.05)  # headroom: a line at 100% is not drawn on the frame's edge
    ax.set_title("Top actions over time")
    ax.legend(loc="upper right", fontsize="small")
    plt.close(fig)
    return fig


def build(ctx) -> None:
    """Builds the tab inside the current Blocks context."""
    tab = VideoTab(ctx)
    preselected = ctx.models.get(TASK)

    gr.Markdown(
        "## What is happening in a video\n"
        "Upload a video, or start the camera and act something out. The model looks at a few seconds at a time and "
        "names the action (400 everyday actions from the Kinetics data set, or, with an X-CLIP model picked under "
        "Model and runtime, the actions you type)."
    )
    with gr.Row():
        with gr.Column(scale=1):
            labels = gr.Textbox(
                label="Actions to look for, separated by commas (X-CLIP compares the video with what you type)",
                placeholder="waving, clapping, drinking coffee, typing",
                elem_id="vid-labels",
                visible=tab.service.wants_labels(preselected),
            )
            with gr.Tabs():
                with gr.Tab("Video file", id="vid-file-tab"):
                    # A file input, not gr.Video: browsers cannot preview AVI, MKV or many MOV files, and the model
                    # reads the file as uploaded (no re-encoding that would change its timestamps).
                    video = gr.File(
                        file_types=list(VIDEO_SUFFIXES),
                        type="filepath",
                        label="Video to classify (MP4, AVI, WebM, MOV, MKV)",
                        elem_id="vid-video",
                    )
                    with gr.Row():
                        # No minimum/maximum here: gradio's own range check fails on the 0 its box shows when
                        # empty; the video task takes 0 or empty as the default and says in words what is out of
                        # range.
                        window = gr.Number(
                            value=None,
                            label="Seconds per window (0 or empty: the model's own clip length)",
                            elem_id="vid-window",
                        )
                        stride = gr.Number(
                            value=None,
                            label="Seconds between windows (0 or empty: same as the window)",
                            elem_id="vid-stride",
                        )
                    with gr.Row():
                        classify_btn = gr.Button("Classify video", variant="primary", elem_id="vid-classify")
                        stop_btn = gr.Button("Stop", variant="stop", elem_id="vid-stop")
                with gr.Tab("Camera", id="vid-camera-tab"):
                    camera = gr.Image(
                        sources=["webcam"], streaming=True, type="numpy", label="Camera", elem_id="vid-camera"
                    )
                    seconds = gr.Slider(
                        1, 8, value=3, step=0.5, label="Seconds of camera the model looks at", elem_id="vid-seconds"
                    )
                    interval = gr.Slider(
                        0.5, 10, value=2, step=0.5, label="Classify every (seconds)", elem_id="vid-interval"
                    )
        with gr.Column(scale=1):
            announce = gr.HTML(live_region("", "vid-announce"), label="Most likely action")
            scores = gr.Label(num_top_classes=5, label="Top 5 actions", elem_id="vid-scores")
            status = gr.Markdown("", elem_id="vid-timing", label="Timing")
            badge = gr.Markdown(runtime_badge(None), elem_id="vid-runtime", elem_classes=["studio-badge"])
    plot = gr.Plot(
        label="Top actions over time (the list below says the same in words)", elem_id="vid-plot", visible=False
    )
    timeline = gr.Markdown("", elem_id="vid-timeline", label="Timeline")

    with gr.Accordion("Model and runtime", open=False):
        panel = build_model_panel(TASK, "vid", ctx.models_dir, preselected, ctx.loaded, what="Video")

    runtime = [panel.model, panel.backend, panel.device]
    panel.model.change(tab.labels_box, panel.model, labels, api_name="video_labels_box", show_progress="hidden")
    classify_btn.click(
        tab.classify_video,
        [video, window, stride, *runtime, labels],
        [scores, announce, plot, timeline, status, badge],
        api_name="classify_video",
    )
    stop_btn.click(tab.stop, None, None, api_name="stop_video", concurrency_limit=None, queue=False)
    camera.stream(
        tab.classify_camera,
        [camera, seconds, interval, *runtime, labels],
        [scores, announce, status, badge],
        api_name="classify_camera",
        stream_every=0.1,
        time_limit=None,
        concurrency_limit=None,
        show_progress="hidden",
    )
    camera.clear(tab.stop_camera, None, None, api_name=False)
