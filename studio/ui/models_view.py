"""First run in the app: "Models for every tab" below the tabs (what each tab needs, its download size and its
state here, with Download buttons), and a note at the top of each tab whose model is not here yet, with its own
Download button, shown when the page loads, not after a click.

A tab's needs are the models of the model panels it builds (`studio.ui.model_panel.collect_panels`), so a new tab
gets its note without doing anything.
"""

from __future__ import annotations

import html
from pathlib import Path

import gradio as gr

from studio.errors import StudioError
from studio.progress import scaled
from studio.ui.components import live_region, problem, ui_progress

REGION = "models-announce"


def needs_note(statuses: list[dict]) -> str:
    """HTML for the top of a tab: which of its models are not on this computer, their size, how to get them."""
    missing = [s for s in statuses if not s["ready"]]
    if not missing:
        return ""
    items = "".join(
        f"<li>{html.escape(s['title'])} ({html.escape(s['size'])})</li>" for s in missing
    )  # fmt: skip
    return (
        '<div class="studio-needs"><p><strong>Before the first use</strong>, this tab needs '
        f"{'these models' if len(missing) > 1 else 'this model'}, not on this computer yet:</p><ul>{items}</ul>"
        "<p>They download on first use (internet needed once), or download them now (below, or all tabs' models "
        "under “Models for every tab” at the bottom of the page).</p></div>"
    )


def table_rows(rows: list[dict], tabs_of: dict[str, list[str]]) -> list[list[str]]:
    """The Models table: tab(s), model, download size, state here."""
    return [[", ".join(tabs_of.get(r["task"], [])) or r["task"], r["title"], r["size"], _state(r)] for r in rows]


def _state(row: dict) -> str:
    return f"ready ({row['state']})" if row["ready"] else row["state"]


def build(ctx, tabs_of: dict[str, list[str]]) -> tuple:
    """Builds the Models view (inside the current Blocks, above the tabs).

    Args:
        ctx: The app context (models_dir).
        tabs_of: {task: titles of the tabs that use it}, from the tabs' model panels.

    Returns:
        The download events (one, all), after which the tabs' notes are filled again (`wire_tab_note`).
    """
    from studio.downloads import download, download_all, tasks_status

    tasks = list(tabs_of)
    rows = tasks_status(ctx.models_dir, tasks)
    with gr.Accordion("Models for every tab", open=False, elem_id="models-view"):
        gr.Markdown(
            "What each tab needs and whether it is on this computer. Before a demo, download everything once; the "
            "app then runs without internet. (`studio download --all` does the same on the command line.)"
        )
        table = gr.Dataframe(
            headers=["Tab", "Model", "Download", "State here"],
            value=table_rows(rows, tabs_of),
            label="Models for every tab",
            interactive=False,
            elem_id="models-table",
        )
        with gr.Row():
            all_btn = gr.Button("Download all that are missing", elem_id="models-download-all")
            which = gr.Dropdown(
                [(", ".join(tabs_of[t]), t) for t in tasks],
                value=tasks[0] if tasks else None,
                label="Tab whose model to download",
                elem_id="models-which",
            )
            one_btn = gr.Button("Download this one", elem_id="models-download-one")
        announce = gr.HTML(live_region("", REGION), label="Downloads")

    def refreshed():
        return table_rows(tasks_status(ctx.models_dir, tasks), tabs_of)

    def one(task, progress=gr.Progress()):
        try:
            row = download(task, ctx.models_dir, progress=ui_progress(progress))
        except StudioError as exc:
            return problem(exc, REGION), refreshed()
        said = f"Downloaded {row['title']}." if row["downloaded"] else f"{row['title']} is here already."
        return live_region(said, REGION), refreshed()

    def every(progress=gr.Progress()):
        result = download_all(ctx.models_dir, tasks, progress=ui_progress(progress))
        if result["failed"]:
            first = result["failed"][0]
            names = ", ".join(f["model"] for f in result["failed"])
            error = StudioError(
                f"{len(result['failed'])} of {len(tasks)} models could not be downloaded: {names}. " + first["problem"],
                first["details"],
            )
            return problem(error, REGION), refreshed()
        return live_region(f"All {len(tasks)} models are on this computer.", REGION), refreshed()

    return (
        one_btn.click(one, [which], [announce, table], api_name="models_download"),
        all_btn.click(every, None, [announce, table], api_name="models_download_all"),
    )


def tab_note(prefix: str) -> tuple:
    """The note at the top of a tab (hidden until the page load finds a missing model): (box, note, button, region
    where the download's outcome is said)."""
    with gr.Column(visible=False, elem_id=f"{prefix}-needs") as box:
        note = gr.HTML("")
        button = gr.Button("Download this tab's models now", elem_id=f"{prefix}-download")
        said = gr.HTML(live_region("", f"{prefix}-download-announce"), label="Downloads")
    return box, note, button, said


def wire_tab_note(demo: gr.Blocks, prefix: str, parts: tuple, panels: list, models_dir: Path, events: tuple) -> None:
    """Fills a tab's note when a model is picked and after downloads (`fill_notes_on_load` fills them all when the
    page loads); its button downloads the models picked in the tab's panels, with progress.

    Args:
        demo: The app.
        prefix: The tab's id (element ids).
        parts: `tab_note`'s (box, note, button, said).
        panels: [(task, model picker)] of the tab's model panels.
        models_dir: Where models go.
        events: The Models view's download events, after which every note is filled again.
    """
    from studio.downloads import download, task_status

    box, note, button, said = parts
    if not panels:
        return
    tasks = [task for task, _ in panels]
    pickers = [picker for _, picker in panels]
    region = f"{prefix}-download-announce"

    def fill(*models):
        text = needs_note([task_status(t, models_dir, m) for t, m in zip(tasks, models)])
        return gr.update(visible=bool(text)), text

    def fetch_all(*models, progress=gr.Progress()):
        done = []
        report = ui_progress(progress)
        for i, (task, model) in enumerate(zip(tasks, models)):
            step = scaled(report, i / len(tasks), (i + 1) / len(tasks))
            try:
                row = download(task, models_dir, model, step)
            except StudioError as exc:
                return problem(exc, region)
            done.append(row["title"])
        return live_region(f"Ready: {', '.join(done)}.", region)

    for picker in pickers:
        picker.change(fill, pickers, [box, note], api_name=False, show_progress="hidden")
    button.click(fetch_all, pickers, [said], api_name=False).then(
        fill, pickers, [box, note], api_name=False, show_progress="hidden"
    )
    for event in events:
        event.then(fill, pickers, [box, note], api_name=False, show_progress="hidden")


def fill_notes_on_load(demo: gr.Blocks, tabs: list[tuple[str, tuple, list]], models_dir: Path) -> None:
    """One page-load event that fills every tab's note at once (one request, not one per tab).

    Args:
        demo: The app.
        tabs: [(tab id, `tab_note`'s parts, [(task, model picker)])].
        models_dir: Where models go.
    """
    from studio.downloads import task_status

    tabs = [(prefix, parts, panels) for prefix, parts, panels in tabs if panels]
    pickers = [picker for _, _, panels in tabs for _, picker in panels]
    outputs = [c for _, parts, _ in tabs for c in parts[:2]]

    def fill_all(*models):
        models = list(models)
        updates = []
        for _, _, panels in tabs:
            picked, models = models[: len(panels)], models[len(panels) :]
            text = needs_note([task_status(task, models_dir, m) for (task, _), m in zip(panels, picked)])
            updates += [gr.update(visible=bool(text)), text]
        return updates

    demo.load(fill_all, pickers, outputs, api_name=False, show_progress="hidden", queue=False)
