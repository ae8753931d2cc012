"""The trial log in the app: the one helper the tabs log their outputs with (`TrialHook`), and the "Trial" panel
(switch, participant code, keep pictures, rating keys 1/2/3, summary with a plot of ratings against confidence).

`ctx.trial` is the `studio.trial.TrialLog` while the log is on, None while it is off; tabs hold a `TrialHook` and call
it after each output they show or say, which does nothing while the log is off.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import gradio as gr

from studio.errors import StudioError
from studio.ui.components import live_region, problem

log = logging.getLogger(__name__)

RATING_HELP = "Rate the last output: press 1 if it was wrong, 2 if partly right, 3 if right."


class TrialHook:
    """How a tab logs what it showed or said, while the trial log is on (one place for every tab).

    Args:
        ctx: The app context (its `trial` is the log, or None while off); None for a tab built outside the app.
        tab: The tab's title, as the log names it.
    """

    def __init__(self, ctx=None, tab: str = "") -> None:
        self.ctx = ctx
        self.tab = tab
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()

    def output(
        self,
        result: dict,
        text: str,
        *,
        speech: tuple | None = None,
        settings: dict | None = None,
        picture=None,
        skipped: bool = False,
        session: str | None = None,
        only_changes: bool = False,
        confidence: float | None = None,
    ) -> str | None:
        """Logs an output; returns its id (None while the log is off, or for a repeat left out with `only_changes`).

        Args:
            result: The service's result.
            text: What was shown and said, as phrased.
            speech: The Speech panel's (speak, source, wpm, voice, can_speak), when the tab speaks: "spoken" if
                speaking is on, and the voice and rate go into the settings.
            settings: The tab's own settings (verbosity, thresholds, interval...).
            picture: The picture the output is about (kept only when "Keep the pictures" is on).
            skipped: It was produced but not said, as it repeated what was just said.
            session: The browser session, for `only_changes`.
            only_changes: Log only when `text` differs from this session's last logged text (live streams that
                show a result every second).
            confidence: The model's confidence where the result has none of its own.
        """
        trial = getattr(self.ctx, "trial", None)
        if trial is None:
            return None
        if only_changes:
            with self._lock:
                if self._last.get(session or "") == text:
                    return None
                self._last[session or ""] = text
        speech_settings = {}
        if speech is not None:
            speak, source, wpm = speech[:3]
            speech_settings = {"speak": bool(speak), "voice": source, "rate_wpm": wpm}
        delivery = "skipped-unchanged" if skipped else ("spoken" if speech and speech[0] else "shown")
        try:
            return trial.output(
                tab=self.tab,
                result=result,
                text=text,
                delivery=delivery,
                settings={**(settings or {}), **speech_settings},
                picture=picture,
                confidence=confidence,
            )
        except StudioError as exc:  # the log must never stop the tab from answering
            log.warning("%s", exc)
            gr.Warning(str(exc))
            return None


def _status(ctx) -> str:
    trial = ctx.trial
    if trial is None:
        return "The trial log is off."
    last = trial.last_output
    where = f"Logging to {trial.path} for participant {trial.participant}"
    where += " (pictures kept)." if trial.keep_pictures else " (no pictures kept)."
    if last is None:
        return f"{where} Nothing logged yet."
    return f"{where} Last output ({last['tab']}, {last['delivery']}): “{last['text']}”"


def summary_markdown(data: dict) -> str:
    """A trial log's summary as Markdown tables (the plot's text version too)."""
    if not data["outputs"]:
        return "Nothing logged yet."
    lines = [
        f"**{data['outputs']} outputs** from participants {', '.join(data['participants'])}. "
        f"Ratings: {data['ratings']['right']} right, {data['ratings']['partly']} partly, "
        f"{data['ratings']['wrong']} wrong, {data['ratings']['unrated']} not rated.",
        "",
        "| Tab | Outputs | Spoken | Shown | Skipped (unchanged) | Mean latency | Right / partly / wrong |",
        "|---|---|---|---|---|---|---|",
    ]
    for tab, row in data["by_tab"].items():
        latency = "–" if row["mean_latency_ms"] is None else f"{row['mean_latency_ms']:.0f} ms"
        r = row["ratings"]
        lines.append(
            f"| {tab} | {row['outputs']} | {row['spoken']} | {row['shown']} | {row['skipped-unchanged']} | "
            f"{latency} | {r['right']} / {r['partly']} / {r['wrong']} |"
        )
    lines += ["", "| Model's confidence | Rated | Mean rating (1 wrong … 3 right) |", "|---|---|---|"]
    for band in data["calibration"]:
        mean = "–" if band["mean_rating"] is None else f"{band['mean_rating']:.2f}"
        lines.append(f"| {band['confidence']} | {band['rated']} of {band['outputs']} | {mean} |")
    return "\n".join(lines)


def calibration_figure(data: dict):
    """Ratings against the model's confidence: each rated output (jittered a little so equal ones stay visible) and
    the mean rating per confidence band. Where hedging is calibrated, the mean rises with confidence."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    points = np.asarray(data["points"], dtype=float).reshape(-1, 2)
    if len(points):
        jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(points))
        ax.scatter(points[:, 0], points[:, 1] + jitter, s=18, alpha=0.6, color="#1d4ed8", label="rated outputs")
    bands = [b for b in data["calibration"] if b["mean_rating"] is not None]
    if bands:
        centers = [sum(map(float, b["confidence"].split("–"))) / 2 for b in bands]
        ax.plot(centers, [b["mean_rating"] for b in bands], "o-", color="#b45309", label="mean per band")
    ax.set_xlim(0, 1)
    ax.set_ylim(0.7, 3.3)
    ax.set_yticks([1, 2, 3], ["1 wrong", "2 partly", "3 right"])
    ax.set_xlabel("the model's confidence")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def default_trial_folder(ctx) -> Path:
    """Where the switch starts a log when `studio --trial-log` named none: beside the models folder."""
    return Path(ctx.models_dir).parent / "trial-log"


def build(ctx) -> None:
    """The rating row (shown while the log is on) and the "Trial" panel, below the tabs."""
    from studio.trial import NO_PARTICIPANT, RATINGS, TrialLog, summary

    on = ctx.trial is not None
    # A shared app's visitors may use the folders the presenter set up, besides the allowed ones.
    presenters_folders = [default_trial_folder(ctx)] + ([ctx.trial.folder] if on else [])
    with gr.Row(visible=on, elem_id="trial-rating-row") as rating_row:
        buttons = [
            gr.Button(f"{n} · {label}", elem_id=f"trial-rate-{n}", size="sm", min_width=80)
            for n, label in RATINGS.items()
        ]
        rated = gr.HTML(live_region("", "trial-announce"), label="Rating")
    with gr.Accordion("Trial (research log)", open=False):
        gr.Markdown(
            "For accessibility trials: every caption, answer, read text and sound description shown or spoken is "
            "logged with its time, tab, model, settings, confidence and latency, and the rating given right after "
            "it. **Keys:** 1 wrong · 2 partly · 3 right (when not typing in a box), or Alt+Shift+1/2/3 anywhere. "
            "No pictures or recordings are kept unless “Keep the pictures” is ticked (recordings never are); use a "
            "participant code, never a name."
        )
        switch = gr.Checkbox(value=on, label="Trial log on", elem_id="trial-switch")
        with gr.Row():
            folder = gr.Textbox(
                value=str(ctx.trial.folder if on else default_trial_folder(ctx)),
                label="Log folder",
                info=ctx.sharing.folders_hint(),
                elem_id="trial-folder",
            )
            participant = gr.Textbox(
                value=ctx.trial.participant if on else "",
                label="Participant code",
                placeholder="P07",
                elem_id="trial-participant",
            )
            keep = gr.Checkbox(
                value=bool(on and ctx.trial.keep_pictures), label="Keep the pictures", elem_id="trial-keep"
            )
        status = gr.Markdown(_status(ctx), elem_id="trial-status")
        summary_btn = gr.Button("Show the summary", elem_id="trial-summary-button")
        summary_md = gr.Markdown("", elem_id="trial-summary")
        plot = gr.Plot(label="Ratings against the model's confidence", elem_id="trial-plot")

    def switch_log(turn_on, where, code, keep_pictures):
        if not turn_on:
            ctx.trial = None
            return gr.update(visible=False), live_region("Trial log off.", "trial-announce"), _status(ctx)
        try:
            where = ctx.sharing.check_folder(where, "trial log folder", also=presenters_folders)
            ctx.trial = TrialLog(where, (code or "").strip() or NO_PARTICIPANT, keep_pictures)
        except StudioError as exc:
            ctx.trial = None
            return gr.update(visible=False), problem(exc, "trial-announce"), _status(ctx)
        said = f"Trial log on for participant {ctx.trial.participant}. {RATING_HELP}"
        return gr.update(visible=True), live_region(said, "trial-announce"), _status(ctx)

    def rate(n):
        if ctx.trial is None:
            return problem("The trial log is off; turn it on in the Trial panel first.", "trial-announce"), _status(ctx)
        try:
            record = ctx.trial.rate(n)
        except StudioError as exc:
            return problem(exc, "trial-announce"), _status(ctx)
        return live_region(f"Rated {n}, {record['label']}.", "trial-announce"), _status(ctx)

    def show_summary():
        if ctx.trial is None:
            return "The trial log is off.", None
        try:
            data = summary(ctx.trial.folder)
        except StudioError as exc:
            return str(exc), None
        return summary_markdown(data), calibration_figure(data) if data["points"] else None

    settings, outputs = [switch, folder, participant, keep], [rating_row, rated, status]
    switch.change(switch_log, settings, outputs, api_name="trial_switch")
    participant.submit(switch_log, settings, outputs, api_name=False)  # a new code (Enter) starts logging under it
    keep.change(switch_log, settings, outputs, api_name=False)
    for n, button in zip(RATINGS, buttons):
        button.click(lambda n=n: rate(n), None, [rated, status], api_name=f"trial_rate_{n}")
    summary_btn.click(show_summary, None, [summary_md, plot], api_name="trial_summary")
    gr.Timer(2.0).tick(lambda: _status(ctx), None, [status], api_name=False, show_progress="hidden")
