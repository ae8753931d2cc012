"""Search tab: index a folder (or uploads) of photos, videos and sounds, then find them by typed words or by an example
photo; pick the sentence that fits a photo; measure Recall@K on image-caption pairs.

Results come as a gallery (each picture captioned with its file name, moment and score), a numbered text version for
screen readers, and a list of the video and sound moments with a button that plays the chosen one from its moment.
Building is `SearchService.build` (progress, Stop keeps the files finished so far); everything here only renders.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path

import gradio as gr

from studio.errors import StudioError
from studio.services.base import Runtime
from studio.ui.components import live_region, problem, runtime_badge, session_of, ui_progress
from studio.ui.model_panel import build_model_panel

log = logging.getLogger(__name__)

TASK = "zero-shot"  # the index's image and text encoders are the Zero-shot tab's models (or CLAP's, for sounds)
THUMBNAIL = 320
EXCERPT_S = 20.0


def result_caption(row: dict) -> str:
    """A result's gallery caption: file, moment, score."""
    at = f" at {row['time']}" if row.get("time") else ""
    return f"{row['rank']}. {row['file']}{at} · score {row['score']:.3f}"


def results_text(result: dict) -> str:
    """The results as a numbered list: the text version of the gallery."""
    rows = result["results"]
    if not rows:
        return "No results."
    kinds = {"photo": "photo", "video": "video moment", "sound": "sound"}
    lines = []
    for row in rows:
        at = f" at {row['time']}" if row.get("time") else ""
        said = f" — “{row['caption']}”" if row.get("caption") else ""
        lines.append(f"{row['rank']}. {row['file']}{at} ({kinds[row['kind']]}), score {row['score']:.3f}{said}")
    return "\n".join(lines)


def moment_choices(result: dict) -> list[tuple[str, int]]:
    """The video and sound results, for the "Play from this moment" picker: (words, rank)."""
    return [(result_caption(r), r["rank"]) for r in result["results"] if r["kind"] in ("video", "sound")]


def thumbnails(rows: list[dict]) -> list[tuple]:
    """(picture, caption) per photo or video-moment result; a file that cannot be read any more is left out."""
    from PIL import Image

    from studio.services.search import result_picture

    out = []
    for row in rows:
        if row["kind"] == "sound":
            continue
        try:
            picture = result_picture(row)
        except StudioError as exc:
            log.info("no picture for %s: %s", row["file"], exc)
            continue
        picture = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
        picture.thumbnail((THUMBNAIL, THUMBNAIL))
        out.append((picture, result_caption(row)))
    return out


class SearchTab:
    """The tab's state shared by all sessions: the service, stop requests, each session's last results."""

    def __init__(self, loaded) -> None:
        from studio.services.search import SearchService

        self.service = SearchService(loaded)
        self.stop_requests: set[str] = set()
        self.last: dict[str, dict] = {}  # session -> last search result
        self._lock = threading.Lock()

    def index_choices(self, current: str | None = None):
        names = self.service.names()
        return gr.update(choices=names, value=current if current in names else None)

    # Events -------------------------------------------------------------------------------------------------

    def build_index(
        self,
        name,
        folder,
        uploads,
        frame_every,
        rebuild,
        model,
        backend,
        device,
        request: gr.Request = None,
        progress=gr.Progress(),
    ):
        """Builds or updates an index; Stop keeps the files finished so far."""
        session = session_of(request)
        with self._lock:
            self.stop_requests.discard(session)
        try:
            result = self.service.build(
                name,
                folder if str(folder or "").strip() else None,
                files=uploads or None,
                runtime=Runtime(model, backend, device),
                frame_every_s=frame_every,
                rebuild=bool(rebuild),
                progress=ui_progress(progress),
                should_stop=lambda: session in self.stop_requests,
            )
        except StudioError as exc:
            return problem(str(exc), "sr-index-announce"), gr.skip(), gr.skip(), gr.skip()
        for notice in result["notices"]:
            gr.Info(notice)
        return (
            live_region(result["message"], "sr-index-announce"),
            index_info_text(result["index"]),
            self.index_choices(result["name"]),
            runtime_badge(result["runtime"]),
        )

    def stop(self, request: gr.Request):
        """Asks this session's indexing to stop after the current batch."""
        with self._lock:
            self.stop_requests.add(session_of(request))

    def show_index(self, name):
        """What the chosen index holds."""
        if not name:
            return "", gr.skip()
        try:
            info = self.service.info(name)
        except StudioError as exc:
            gr.Warning(str(exc))
            return f"⚠️ {exc}", gr.skip()
        return index_info_text(info), info["name"]

    def remove_index(self, name):
        """Deletes the chosen index (never the photos)."""
        try:
            self.service.remove(name or "")
        except StudioError as exc:
            return problem(str(exc), "sr-index-announce"), gr.skip(), gr.skip()
        return live_region(f"Removed the index “{name}”.", "sr-index-announce"), "", self.index_choices()

    def search(self, name, text, image, top_k, describe, device, request: gr.Request = None, progress=gr.Progress()):
        """Searches the chosen index with words or a photo."""
        session = session_of(request)
        try:
            if not name:
                raise StudioError("Choose an index to search, or build one above first.")
            result = self.service.search(
                name,
                text=text if image is None else None,
                image=image,
                top_k=int(top_k),
                describe=bool(describe),
                runtime=Runtime(None, "auto", device),
                progress=ui_progress(progress),
            )
        except StudioError as exc:
            return (problem(str(exc), "sr-announce"),) + (gr.skip(),) * 5
        for notice in result["notices"]:
            gr.Info(notice)
        with self._lock:
            self.last[session] = result
        rows = result["results"]
        query = f"“{result['query']['text']}”" if "text" in result["query"] else "the photo"
        said = f"{len(rows)} results for {query}." if rows else f"Nothing found for {query}."
        if rows:
            best = rows[0]
            at = f" at {best['time']}" if best.get("time") else ""
            said += f" Best: {best['file']}{at}, score {best['score']:.3f}."
        choices = moment_choices(result)
        return (
            live_region(said, "sr-announce"),
            thumbnails(rows),
            results_text(result),
            gr.update(choices=choices, value=choices[0][1] if choices else None, visible=bool(choices)),
            gr.update(visible=bool(choices)),
            runtime_badge(result["runtime"]),
        )

    def search_text(self, name, text, top_k, describe, device, request: gr.Request = None, progress=gr.Progress()):
        return self.search(name, text, None, top_k, describe, device, request, progress)

    def search_photo(self, name, image, top_k, describe, device, request: gr.Request = None, progress=gr.Progress()):
        if image is None:
            return (problem("There is no photo yet. Upload one or take a snapshot.", "sr-announce"),) + (gr.skip(),) * 5
        return self.search(name, None, image, top_k, describe, device, request, progress)

    def play(self, rank, request: gr.Request = None):
        """Cuts the chosen video or sound result from its moment and plays it."""
        from studio.media.video import cut_excerpt

        result = self.last.get(session_of(request))
        rows = [r for r in (result or {}).get("results", []) if r["rank"] == rank]
        if not rows:
            return problem("Search first, then choose a video or sound moment to play.", "sr-announce"), None, None
        row = rows[0]
        sound = row["kind"] == "sound"
        out = Path(tempfile.mkdtemp(prefix="studio-moment-")) / ("moment.wav" if sound else "moment.mp4")
        try:
            cut_excerpt(row["path"], row["time_s"] or 0.0, EXCERPT_S, out, sound_only=sound)
        except StudioError as exc:
            return problem(str(exc), "sr-announce"), None, None
        said = live_region(f"Playing {row['file']} from {row['time'] or '0:00.0'}.", "sr-announce")
        if sound:
            return said, gr.update(value=None, visible=False), gr.update(value=str(out), visible=True)
        return said, gr.update(value=str(out), visible=True), gr.update(value=None, visible=False)

    def match(self, image, sentences, sentence_file, model, backend, device, progress=gr.Progress()):
        """Image → text: ranks the typed (or loaded) sentences for the photo."""
        try:
            if sentence_file:
                sentences = Path(sentence_file).read_text(encoding="utf-8", errors="replace")
            result = self.service.match_sentences(
                image, sentences, runtime=Runtime(model, backend, device), progress=ui_progress(progress)
            )
        except StudioError as exc:
            return problem(str(exc), "sr-match-announce"), gr.skip(), gr.skip()
        best = result["sentences"][0]
        lines = [
            f"{i}. {s['sentence']} — {s['probability']:.0%} (cosine {s['score']:.3f})"
            for i, s in enumerate(result["sentences"], 1)
        ]
        return (
            live_region(f"Best fit: {best['sentence']} ({best['probability']:.0%}).", "sr-match-announce"),
            {s["sentence"]: s["probability"] for s in result["sentences"]},
            "\n".join(lines),
        )

    def evaluate(self, pairs, model, backend, device, progress=gr.Progress()):
        """Recall@K on a pairs file of this computer."""
        from studio.search.metrics import recall_figure

        try:
            if not str(pairs or "").strip():
                raise StudioError("Type the path of a pairs file (CSV rows: image path, caption) on this computer.")
            result = self.service.evaluate(
                pairs.strip(), runtime=Runtime(model, backend, device), progress=ui_progress(progress)
            )
        except StudioError as exc:
            return problem(str(exc), "sr-eval-announce"), gr.skip(), gr.skip()
        return (
            live_region(result["summary"], "sr-eval-announce"),
            gr.update(value=recall_figure(result), visible=True),
            eval_table(result),
        )


def index_info_text(info: dict) -> str:
    """An index's info in words."""
    from studio.services.search import holdings

    every = f", a video frame every {info['frame_every_s']:g} s" if info["counts"]["videos"] else ""
    return (
        f"**{info['name']}**: {holdings(info['counts'])}{every}, from `{info['folder']}`. Model: `{info['model']}`"
        + (f" (revision `{info['revision'][:12]}`)" if info.get("revision") else "")
        + f". Search: {info['search']}. Updated {info['updated']}."
    )


def eval_table(result: dict) -> str:
    """Recall@K as a Markdown table (the text version of the plot)."""
    rows = ["| Direction | R@1 | R@5 | R@10 | Median rank | Queries |", "|---|---|---|---|---|---|"]
    for key, title in (("text_to_image", "Text → image"), ("image_to_text", "Image → text")):
        m = result[key]
        rows.append(
            f"| {title} | {m['R@1']:.1%} | {m['R@5']:.1%} | {m['R@10']:.1%} | {m['median_rank']:g} | {m['queries']} |"
        )
    return "\n".join(rows)


def build(ctx) -> None:
    """Builds the tab inside the current Blocks context."""
    tab = SearchTab(ctx.loaded)
    preselected = ctx.models.get(TASK)
    names = tab.service.names()

    gr.Markdown(
        "### Find photos, video moments and sounds\n"
        "Index a folder once, then find what you look for by typing words or by giving an example photo. Videos are "
        "looked at every few seconds, so a result can be a moment in a video; with a CLAP model (under Model and "
        "runtime) the index holds sounds instead, found by words."
    )
    with gr.Row():
        with gr.Column(scale=1):
            gr.Markdown("#### 1. Index a folder")
            name = gr.Textbox(value=names[0] if names else "My photos", label="Index name", elem_id="sr-name")
            folder = gr.Textbox(
                label="Folder to index (its path on this computer; empty: the index's own folder)",
                placeholder="/home/me/Pictures",
                elem_id="sr-folder",
            )
            uploads = gr.File(
                file_count="multiple",
                type="filepath",
                label="Or upload photos, videos or sounds (kept with the index)",
                elem_id="sr-uploads",
            )
            # the main action right after the input (keyboard path), its settings after it
            with gr.Row():
                build_btn = gr.Button("Build or update the index", variant="primary", elem_id="sr-build")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="sr-stop")
            with gr.Row():
                frame_every = gr.Slider(
                    0.5, 30, value=2, step=0.5, label="Keep a video frame every (seconds)", elem_id="sr-frame-every"
                )
                rebuild = gr.Checkbox(
                    value=False, label="Embed every file again (after choosing another model)", elem_id="sr-rebuild"
                )
            index_announce = gr.HTML(live_region("", "sr-index-announce"), label="Indexing")
        with gr.Column(scale=1):
            gr.Markdown("#### 2. Search it")
            with gr.Row():
                chosen = gr.Dropdown(
                    choices=names, value=names[0] if names else None, label="Index to search", elem_id="sr-index"
                )
                remove_btn = gr.Button("Remove this index", elem_id="sr-remove", scale=0)
            info = gr.Markdown("", elem_id="sr-info", label="What the index holds")
            with gr.Tabs():
                with gr.Tab("By words", id="sr-words-tab"):
                    query = gr.Textbox(
                        label="What to look for", placeholder="a dog on a beach", elem_id="sr-query", lines=1
                    )
                    text_btn = gr.Button("Search", variant="primary", elem_id="sr-search")
                with gr.Tab("By photo", id="sr-photo-tab"):
                    example = gr.Image(
                        sources=["upload", "webcam"], type="numpy", label="A photo to find ones like it",
                        elem_id="sr-example",
                    )  # fmt: skip
                    photo_btn = gr.Button("Search with this photo", variant="primary", elem_id="sr-search-photo")
            with gr.Row():
                top_k = gr.Slider(1, 50, value=10, step=1, label="How many results", elem_id="sr-top-k")
                describe = gr.Checkbox(
                    value=False,
                    label="Describe each result in words (the Caption tab's model; slower)",
                    elem_id="sr-describe",
                )
    announce = gr.HTML(live_region("", "sr-announce"), label="Search result")
    gallery = gr.Gallery(
        label="Results (the list below says the same in words)",
        columns=5,
        height=420,
        object_fit="contain",
        elem_id="sr-gallery",
    )
    listing = gr.Markdown("", elem_id="sr-results", label="Results in words")
    with gr.Row():
        moment = gr.Dropdown(choices=[], label="Video or sound moment", visible=False, elem_id="sr-moment")
        play_btn = gr.Button("Play from this moment", elem_id="sr-play", scale=0, visible=False)
    player = gr.Video(label="The moment", visible=False, autoplay=True, elem_id="sr-player")
    sound_player = gr.Audio(label="The moment", visible=False, autoplay=True, elem_id="sr-sound-player")
    badge = gr.Markdown(runtime_badge(None), elem_id="sr-runtime", elem_classes=["studio-badge"])

    with gr.Accordion("Which sentence fits a photo? (image → text)", open=False):
        with gr.Row():
            match_image = gr.Image(sources=["upload", "webcam"], type="numpy", label="Photo", elem_id="sr-match-image")
            with gr.Column():
                sentences = gr.Textbox(
                    lines=5,
                    label="Sentences to choose from, one per line",
                    placeholder="a cat asleep on a sofa\na cup of coffee on a table",
                    elem_id="sr-sentences",
                )
                sentence_file = gr.File(
                    file_types=[".txt"], type="filepath", label="Or load them from a text file", elem_id="sr-sent-file"
                )
                match_btn = gr.Button("Find the best sentence", variant="primary", elem_id="sr-match")
        match_announce = gr.HTML(live_region("", "sr-match-announce"), label="Best sentence")
        match_scores = gr.Label(num_top_classes=10, label="Sentences, best first", elem_id="sr-match-scores")
        match_text = gr.Markdown("", elem_id="sr-match-text", label="Sentences in words")

    with gr.Accordion("How good is the model on your pictures? (Recall@K)", open=False):
        gr.Markdown(
            "A pairs file is a CSV of `image path, caption` rows (paths relative to the file; several captions per "
            "image allowed, as in COCO or Flickr30k). Recall@K is how often the right answer is among the first K."
        )
        pairs = gr.Textbox(label="Pairs file (its path on this computer)", elem_id="sr-pairs")
        eval_btn = gr.Button("Measure", elem_id="sr-eval")
        eval_announce = gr.HTML(live_region("", "sr-eval-announce"), label="Recall")
        eval_plot = gr.Plot(label="Recall against K (the table says the same)", visible=False, elem_id="sr-eval-plot")
        eval_text = gr.Markdown("", elem_id="sr-eval-table", label="Recall table")

    with gr.Accordion("Model and runtime", open=False):
        panel = build_model_panel(
            TASK, "sr", ctx.models_dir, preselected, ctx.loaded, what="Search", also=(("av-events", "clap"),)
        )
    runtime = [panel.model, panel.backend, panel.device]

    build_btn.click(
        tab.build_index,
        [name, folder, uploads, frame_every, rebuild, *runtime],
        [index_announce, info, chosen, badge],
        api_name="build_index",
    )
    stop_btn.click(tab.stop, None, None, api_name="stop_indexing", concurrency_limit=None, queue=False)
    chosen.change(tab.show_index, [chosen], [info, name], api_name="index_info", show_progress="hidden")
    remove_btn.click(tab.remove_index, [chosen], [index_announce, info, chosen], api_name="remove_index")
    outputs = [announce, gallery, listing, moment, play_btn, badge]
    text_btn.click(tab.search_text, [chosen, query, top_k, describe, panel.device], outputs, api_name="search_text")
    query.submit(tab.search_text, [chosen, query, top_k, describe, panel.device], outputs, api_name=False)
    photo_btn.click(
        tab.search_photo, [chosen, example, top_k, describe, panel.device], outputs, api_name="search_photo"
    )
    play_btn.click(tab.play, [moment], [announce, player, sound_player], api_name="play_moment")
    match_btn.click(
        tab.match,
        [match_image, sentences, sentence_file, *runtime],
        [match_announce, match_scores, match_text],
        api_name="match_sentences",
    )
    eval_btn.click(tab.evaluate, [pairs, *runtime], [eval_announce, eval_plot, eval_text], api_name="evaluate_pairs")
    if ctx.demo is not None:
        ctx.demo.load(tab.index_choices, [chosen], [chosen], api_name=False)
