"""Fine-tune tab: make a classifier of your own classes, give it examples, train, see if it helped, save, manage."""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path

import gradio as gr

from studio.errors import StudioError
from studio.media.text import typed_items
from studio.services.base import Runtime
from studio.ui.a11y import notify
from studio.ui.components import live_region, problem, runtime_badge, service_of, session_of, ui_progress
from studio.ui.model_panel import build_model_panel

log = logging.getLogger(__name__)

TASK = "zero-shot"
REGION = "ft-announce"
ACCURACY_ROWS = (
    ("zero_shot", "Zero-shot only (class names, no examples)"),
    ("linear", "Linear probe"),
    ("prototype", "Prototypes (class means)"),
    ("blended", "Blended (what is saved)"),
)
METHOD_CHOICES = [("Linear probe (logistic regression)", "linear"), ("Prototypes (class means)", "prototype")]


def _percent(value) -> str:
    return "—" if value is None else f"{value:.0%}"


def accuracy_rows(evaluation) -> list[list[str]]:
    """The held-out table's rows: what, accuracy."""
    return [[label, _percent(evaluation.accuracy.get(key))] for key, label in ACCURACY_ROWS]


def loss_figure(losses: list[float]):
    """The linear probe's loss per training step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.plot(range(1, len(losses) + 1), losses, marker="o", markersize=3)
    ax.set_xlabel("Training step")
    ax.set_ylabel("Loss (lower is better)")
    ax.set_title("Linear probe training")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def loss_text(losses: list[float]) -> str:
    """The loss curve in words, for screen readers."""
    if not losses:
        return "No training steps were run."
    return f"Loss curve: the loss went from {losses[0]:.3f} to {losses[-1]:.3f} in {len(losses)} training steps."


def confusion_figure(classes: list[str], confusion):
    """The held-out confusion matrix (rows: true class, columns: predicted), with counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(classes)
    size = min(2 + 0.5 * n, 9)
    fig, ax = plt.subplots(figsize=(size + 1, size), dpi=100)
    ax.imshow(confusion, cmap="Blues")
    short = [c if len(c) <= 18 else c[:17] + "…" for c in classes]
    if n <= 30:
        ax.set_xticks(range(n), short, rotation=45, ha="right")
        ax.set_yticks(range(n), short)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(confusion[i][j]), ha="center", va="center", fontsize=9)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title("Held-out examples (blended classifier)")
    fig.tight_layout()
    plt.close(fig)
    return fig


def confusion_text(classes: list[str], confusion) -> str:
    """The confusion matrix in words: per class, how many held-out examples were right and where the rest went."""
    lines = []
    for i, name in enumerate(classes):
        row = confusion[i]
        total = int(sum(row))
        if total == 0:
            continue
        wrong = [f"{int(row[j])} as “{classes[j]}”" for j in range(len(classes)) if j != i and row[j]]
        text = f"“{name}”: {int(row[i])} of {total} right"
        lines.append(text + (f", {', '.join(wrong)}" if wrong else "") + ".")
    return "Confusion matrix: " + " ".join(lines) if lines else "No held-out examples to show."


class FinetuneTab:
    """The tab's state shared by sessions: the classifier store and loaded zero-shot models."""

    def __init__(self, ctx) -> None:
        from studio.services.classifiers import ClassifierService

        self.service = service_of(ctx, ClassifierService)
        self.store = self.service.store
        self.sharing = getattr(ctx, "loaded", ctx).sharing
        self._cancel: dict[str, threading.Event] = {}

    # Helpers ----------------------------------------------------------------------------------------------------

    def _choices(self, keep: str | None = None):
        names = self.store.names()
        value = keep if keep in names else (names[0] if names else None)
        return gr.update(choices=names, value=value)

    def _class_choices(self, name: str | None, keep: str | None = None):
        try:
            classes = [c["name"] for c in self.store.meta(name)["classes"]] if name else []
        except StudioError:
            classes = []
        return gr.update(choices=classes, value=keep if keep in classes else (classes[0] if classes else None))

    def _gallery(self, name: str | None, class_name: str | None):
        if not name or not class_name:
            return []
        try:
            items = self.store.examples(name).get(class_name, [])
        except StudioError:
            return []
        return [(str(path), f"{class_name} {i + 1} · {digest[:8]}") for i, (digest, path) in enumerate(items)]

    def _overview(self, name: str | None) -> str:
        if not name:
            return "No classifier chosen yet. Create one above."
        try:
            row = self.store.summary(name)
        except StudioError as exc:
            return str(exc)
        parts = [f"{c['name']}: {c['examples']}" for c in row["classes"]]
        text = f"**{row['name']}** · examples per class: " + ", ".join(parts)
        if row["versions"]:
            text += f" · saved versions: {', '.join(map(str, row['versions']))}"
        return text

    def saved_rows(self) -> list[list]:
        rows = []
        for row in self.store.list():
            latest = row.get("latest") or {}
            acc = latest.get("accuracy") or {}
            rows.append(
                [
                    row["name"],
                    ", ".join(c["name"] for c in row["classes"]),
                    row["examples"],
                    latest.get("version", "not saved"),
                    _percent(acc.get("zero_shot")) if latest else "—",
                    _percent(acc.get("blended")) if latest else "—",
                ]
            )
        return rows

    # Events -----------------------------------------------------------------------------------------------------

    def create(self, name, classes, model):
        """Creates a classifier and selects it."""
        try:
            self.sharing.check_model(model, TASK)
            self.sharing.check_labels(typed_items(classes), "classes")
            meta = self.store.create(name, classes, model or None)
        except StudioError as exc:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), problem(exc, REGION), gr.skip()
        n = meta["name"]
        first = meta["classes"][0]["name"]
        return (
            self._choices(n),
            self._class_choices(n, first),
            [],
            self._overview(n),
            live_region(f"Created “{n}” with {len(meta['classes'])} classes. Now add examples to each class.", REGION),
            self.saved_rows(),
        )

    def select(self, name):
        """Shows a classifier's classes and the first class's examples."""
        classes = self._class_choices(name)
        first = classes.get("value")
        return classes, self._gallery(name, first), self._overview(name)

    def show_class(self, name, class_name):
        return self._gallery(name, class_name)

    def _added(self, name, class_name, report):
        text = f"Added {report.added} example{'s' if report.added != 1 else ''}."
        for notice in report.notices:
            notify("Fine-tune", notice, "warning")
        if report.notices:
            text += " " + " ".join(report.notices)
        return (
            self._class_choices(name, class_name),
            self._gallery(name, class_name),
            self._overview(name),
            live_region(text, REGION),
        )

    def add_snapshot(self, name, class_name, snapshot):
        """Adds the camera snapshot as an example of the chosen class."""
        try:
            if snapshot is None:
                raise StudioError("There is no snapshot yet: start the camera and take one.")
            report = self.store.add_examples(name, class_name, [snapshot])
        except StudioError as exc:
            return gr.skip(), gr.skip(), gr.skip(), problem(exc, REGION)
        return self._added(name, class_name, report)

    def add_uploads(self, name, class_name, files):
        """Adds uploaded pictures as examples of the chosen class."""
        try:
            paths = [f if isinstance(f, str) else getattr(f, "name", f) for f in (files or [])]
            report = self.store.add_examples(name, class_name, paths)
        except StudioError as exc:
            return gr.skip(), gr.skip(), gr.skip(), problem(exc, REGION)
        return self._added(name, class_name, report)

    def add_folder(self, name, class_name, folder):
        """Adds a folder on this computer laid out one sub-folder per class."""
        try:
            if not (folder or "").strip():
                raise StudioError("Type the path of a folder on this computer that has one sub-folder per class.")
            where = self.sharing.check_folder(folder, "folder of examples")
            report = self.store.add_folder(name, where, allowed=self.sharing.allows)
        except StudioError as exc:
            return gr.skip(), gr.skip(), gr.skip(), problem(exc, REGION)
        return self._added(name, class_name, report)

    def remove_selected(self, name, class_name, selected):
        """Removes the example picked in the gallery."""
        try:
            items = self.store.examples(name).get(class_name, []) if name else []
            if selected is None or not 0 <= int(selected) < len(items):
                raise StudioError("Pick an example in the gallery first, then remove it.")
            self.store.remove_example(name, items[int(selected)][0])
        except StudioError as exc:
            return gr.skip(), gr.skip(), problem(exc, REGION), gr.skip()
        return (
            self._gallery(name, class_name),
            self._overview(name),
            live_region(f"Removed example {int(selected) + 1} of “{class_name}”.", REGION),
            None,
        )

    def train(self, name, method, blend, backend, device, progress=gr.Progress()):
        """Trains on the examples; shows held-out accuracies, the loss curve and the confusion matrix."""
        try:
            if not name:
                raise StudioError("Create or choose a classifier first.")
            runtime = Runtime(backend=backend, device=device)
            run = self.service.train_run(name, method, blend, runtime=runtime, progress=ui_progress(progress))
        except StudioError as exc:
            skip = (gr.skip(),) * 7
            return (*skip, problem(exc, REGION), gr.skip())
        for notice in run.notices:
            notify("Fine-tune", notice)
        evaluation = run.evaluation()
        if evaluation.n_test:
            acc = evaluation.accuracy
            words = (
                f"Trained on {run.n_train} examples. On {evaluation.n_test} held-out examples: zero-shot "
                f"{_percent(acc['zero_shot'])}, trained {_percent(acc['trained'])}, blended {_percent(acc['blended'])}."
            )
        else:
            words = f"Trained on {run.n_train} examples. " + " ".join(run.notices[-1:])
        return (
            run,
            accuracy_rows(evaluation),
            loss_figure(run.loss_curve),
            loss_text(run.loss_curve),
            confusion_figure(run.classes, evaluation.confusion),
            confusion_text(run.classes, evaluation.confusion),
            gr.update(interactive=True),
            live_region(words, REGION),
            runtime_badge(run.runtime.as_dict()),
        )

    def reblend(self, run, method, blend):
        """Re-measures the held-out accuracies for another method or blend (no retraining)."""
        if run is None:
            return gr.skip(), gr.skip(), gr.skip()
        evaluation = run.evaluation(method, blend)
        return (
            accuracy_rows(evaluation),
            confusion_figure(run.classes, evaluation.confusion),
            confusion_text(run.classes, evaluation.confusion),
        )

    def save(self, run, method, blend, progress=gr.Progress()):
        """Saves the trained head (with its ONNX graph) as the classifier's next version."""
        try:
            if run is None:
                raise StudioError("Train the classifier first; then save it.")
            saved = self.service.save(run, method, blend, progress=ui_progress(progress))
        except StudioError as exc:
            return problem(exc, REGION), gr.skip(), gr.skip()
        for notice in saved.notices:
            notify("Fine-tune", notice, "warning")
        onnx = saved.head.get("onnx") or {}
        extra = " with its ONNX graph (checked against PyTorch)" if onnx.get("exported") else ""
        text = (
            f"Saved “{saved.name}” as version {saved.version}{extra}. Choose it in the Zero-shot tab under "
            "“Saved classifier”."
        )
        return live_region(text, REGION), self.saved_rows(), self._overview(saved.name)

    def fine_tune(self, name, epochs, learning_rate, restart, device, request: gr.Request, progress=gr.Progress()):
        """Advanced: contrastive fine-tuning of the whole model, cancellable, resuming from its last checkpoint."""
        session = session_of(request)
        cancel = self._cancel.setdefault(session, threading.Event())
        cancel.clear()
        try:
            if not name:
                raise StudioError("Create or choose a classifier first.")
            report = self.service.fine_tune(
                name,
                epochs=int(epochs or 0),
                learning_rate=float(learning_rate or 0),
                device=device,
                resume=not restart,
                progress=ui_progress(progress),
                should_stop=cancel.is_set,
            )
        except StudioError as exc:
            return problem(exc, REGION), gr.skip()
        acc = report["accuracy"]
        rows = [
            ["Zero-shot before fine-tuning", _percent(acc["zero_shot_before"])],
            ["Fine-tuned model (zero-shot with its class names)", _percent(acc["fine_tuned"])],
            ["Linear probe (last saved version)", _percent(acc["linear_probe"])],
        ]
        better = acc["fine_tuned"] is not None and acc["linear_probe"] is not None
        verdict = ""
        if better:
            verdict = (
                " It beat the linear probe."
                if acc["fine_tuned"] > acc["linear_probe"]
                else " It did not beat the linear probe; keep using the probe."
            )
        text = (
            f"Fine-tuned for {report['epochs_done']} epochs in {report['seconds']:.0f} s "
            f"({'resumed after epoch ' + str(report['resumed_from']) if report['resumed_from'] else 'from the start'})."
            + verdict
            + f" The model is saved in {report['model_dir']}: type that folder into the Zero-shot tab's model picker."
        )
        return live_region(text, REGION), rows

    def cancel_fine_tune(self, request: gr.Request):
        """Asks a running fine-tuning of this session to stop after its current step."""
        event = self._cancel.get(session_of(request))
        if event is not None:
            event.set()
        return live_region("Stopping after the current step; the last finished epoch is kept.", REGION)

    def rename(self, name, new_name):
        try:
            new = self.store.rename(name, new_name)
        except StudioError as exc:
            return problem(exc, REGION), gr.skip(), gr.skip()
        return live_region(f"Renamed “{name}” to “{new}”.", REGION), self.saved_rows(), self._choices(new)

    def export_zip(self, name):
        try:
            out = Path(tempfile.mkdtemp(prefix="studio-classifier-"))
            path = self.store.export_zip(name, out)
        except StudioError as exc:
            return problem(exc, REGION), None
        return live_region(f"“{name}” is ready to download as {path.name}.", REGION), str(path)

    def import_zip(self, file):
        try:
            if file is None:
                raise StudioError("Choose a classifier zip file to import first.")
            name = self.store.import_zip(Path(file if isinstance(file, str) else file.name))
        except StudioError as exc:
            return problem(exc, REGION), gr.skip(), gr.skip()
        return live_region(f"Imported “{name}”.", REGION), self.saved_rows(), self._choices(name)

    def delete(self, name, confirm):
        try:
            if not confirm:
                raise StudioError("Tick “Yes, delete it” first: deleting removes the examples and every version.")
            self.store.delete(name)
        except StudioError as exc:
            return problem(exc, REGION), gr.skip(), gr.skip(), gr.skip()
        return live_region(f"Deleted “{name}”.", REGION), self.saved_rows(), self._choices(), False


def build(ctx) -> None:
    """Builds the tab inside the current Blocks context."""
    tab = FinetuneTab(ctx)
    names = tab.store.names()
    gr.Markdown(
        "## Teach the model your own classes\n"
        "Make a classifier, give it a few example pictures of each class, train it, and see on examples it never "
        "trained on whether it beats the zero-shot model. Saved classifiers can be used in the Zero-shot tab."
    )
    with gr.Row():
        with gr.Column(scale=1):
            gr.Markdown("### 1. Classifier")
            classifier = gr.Dropdown(
                choices=names, value=names[0] if names else None, label="Classifier", elem_id="ft-classifier"
            )
            with gr.Accordion("New classifier", open=not names):
                new_name = gr.Textbox(label="Name of the new classifier", elem_id="ft-new-name")
                new_classes = gr.Textbox(
                    label="Its classes (separate them with commas)",
                    placeholder="my mug, someone else's mug",
                    elem_id="ft-new-classes",
                )
                create_btn = gr.Button("Create classifier", elem_id="ft-create")
            overview = gr.Markdown(tab._overview(classifier.value), elem_id="ft-overview")
        with gr.Column(scale=1):
            gr.Markdown("### 2. Examples")
            class_name = gr.Dropdown(choices=[], label="Class to add examples to", elem_id="ft-class")
            with gr.Tabs():
                with gr.Tab("Camera snapshot", id="ft-camera-tab"):
                    snapshot = gr.Image(sources=["webcam"], type="numpy", label="Camera snapshot", elem_id="ft-camera")
                    snap_btn = gr.Button("Add snapshot to the class", elem_id="ft-add-snapshot")
                with gr.Tab("Upload", id="ft-upload-tab"):
                    uploads = gr.File(
                        file_count="multiple", file_types=["image"], label="Pictures to add", elem_id="ft-uploads"
                    )
                    upload_btn = gr.Button("Add uploaded pictures to the class", elem_id="ft-add-uploads")
                with gr.Tab("Folder", id="ft-folder-tab"):
                    folder = gr.Textbox(
                        label="Folder on this computer with one sub-folder per class",
                        placeholder="/home/me/pictures/mugs",
                        info=ctx.sharing.folders_hint(),
                        elem_id="ft-folder",
                    )
                    folder_btn = gr.Button("Add the folder", elem_id="ft-add-folder")
    gallery = gr.Gallery(label="Examples of the chosen class", columns=8, height=220, elem_id="ft-gallery")
    selected = gr.State(None)
    remove_btn = gr.Button("Remove the selected example", elem_id="ft-remove")
    announce = gr.HTML(live_region("", REGION), label="Status")

    gr.Markdown("### 3. Train and compare")
    # First in its section: two Tab stops after adding examples; the method and blend below have defaults.
    train_btn = gr.Button("Train", variant="primary", elem_id="ft-train")
    with gr.Row():
        method = gr.Radio(METHOD_CHOICES, value="linear", label="Training method", elem_id="ft-method")
        blend = gr.Slider(
            0,
            1,
            value=0.5,
            step=0.05,
            label="Blend (0 = zero-shot only, 1 = trained only)",
            elem_id="ft-blend",
        )
    with gr.Accordion("Model and runtime", open=False):
        panel = build_model_panel(TASK, "ft", ctx.models_dir, ctx.models.get(TASK), ctx.loaded)
    run_state = gr.State(None)
    with gr.Row():
        with gr.Column():
            table = gr.Dataframe(
                headers=["Classifier", "Held-out accuracy"],
                value=[],
                label="Accuracy on held-out examples (never used for training)",
                interactive=False,
                elem_id="ft-accuracy",
            )
            loss_plot = gr.Plot(label="Loss curve", elem_id="ft-loss-plot")
            loss_alt = gr.Markdown("", elem_id="ft-loss-text")
        with gr.Column():
            confusion_plot = gr.Plot(label="Confusion matrix", elem_id="ft-confusion-plot")
            confusion_alt = gr.Markdown("", elem_id="ft-confusion-text")
    badge = gr.Markdown(runtime_badge(None), elem_id="ft-runtime", elem_classes=["studio-badge"])
    save_btn = gr.Button("Save this classifier", interactive=False, elem_id="ft-save")

    with gr.Accordion("Advanced: fine-tune the whole model", open=False):
        gr.Markdown(
            "Trains every weight of the image-text model on your examples (contrastive, like CLIP was trained). Slow "
            "on a CPU; it can be cancelled and resumes from the last finished epoch. The table compares it with the "
            "linear probe on the same held-out examples."
        )
        with gr.Row():
            epochs = gr.Number(value=3, minimum=1, maximum=100, precision=0, label="Epochs", elem_id="ft-epochs")
            learning_rate = gr.Number(value=1e-5, minimum=0, label="Learning rate", elem_id="ft-lr")
            restart = gr.Checkbox(value=False, label="Start over (ignore the last checkpoint)", elem_id="ft-restart")
        with gr.Row():
            tune_btn = gr.Button("Fine-tune the model", elem_id="ft-contrastive")
            cancel_btn = gr.Button("Cancel fine-tuning", elem_id="ft-cancel")
        tune_table = gr.Dataframe(
            headers=["Classifier", "Held-out accuracy"],
            value=[],
            label="Fine-tuning compared on held-out examples",
            interactive=False,
            elem_id="ft-contrastive-accuracy",
        )

    gr.Markdown("### 4. Saved classifiers")
    saved = gr.Dataframe(
        headers=["Name", "Classes", "Examples", "Version", "Zero-shot accuracy", "Saved accuracy"],
        value=tab.saved_rows(),
        label="Saved classifiers",
        interactive=False,
        elem_id="ft-saved",
    )
    with gr.Row():
        rename_to = gr.Textbox(label="New name for the chosen classifier", elem_id="ft-rename-to")
        rename_btn = gr.Button("Rename", elem_id="ft-rename")
    with gr.Row():
        export_btn = gr.Button("Export the chosen classifier as a zip", elem_id="ft-export")
        zip_out = gr.File(label="Classifier zip to download", interactive=False, elem_id="ft-zip-out")
    with gr.Row():
        zip_in = gr.File(file_types=[".zip"], label="Classifier zip to import", elem_id="ft-zip-in")
        import_btn = gr.Button("Import", elem_id="ft-import")
    with gr.Row():
        confirm = gr.Checkbox(label="Yes, delete it", value=False, elem_id="ft-delete-confirm")
        delete_btn = gr.Button("Delete the chosen classifier", variant="stop", elem_id="ft-delete")

    create_btn.click(
        tab.create,
        [new_name, new_classes, panel.model],
        [classifier, class_name, gallery, overview, announce, saved],
        api_name="finetune_create",
    )
    classifier.change(tab.select, [classifier], [class_name, gallery, overview], api_name="finetune_select")
    class_name.change(tab.show_class, [classifier, class_name], [gallery], api_name="finetune_examples")
    added = [class_name, gallery, overview, announce]
    # The saved-classifiers table counts examples too, so it follows every addition.
    for button, handler, source, api in (
        (snap_btn, tab.add_snapshot, snapshot, "finetune_add_snapshot"),
        (upload_btn, tab.add_uploads, uploads, "finetune_add_uploads"),
        (folder_btn, tab.add_folder, folder, "finetune_add_folder"),
    ):
        button.click(handler, [classifier, class_name, source], added, api_name=api).then(
            tab.saved_rows, None, [saved], api_name=False, show_progress="hidden"
        )
    gallery.select(_selected_index, None, [selected], api_name="finetune_pick_example")
    remove_btn.click(
        tab.remove_selected,
        [classifier, class_name, selected],
        [gallery, overview, announce, selected],
        api_name="finetune_remove",
    )
    train_btn.click(
        tab.train,
        [classifier, method, blend, panel.backend, panel.device],
        [run_state, table, loss_plot, loss_alt, confusion_plot, confusion_alt, save_btn, announce, badge],
        api_name="finetune_train",
    )
    for control, api in ((method, "finetune_method"), (blend, "finetune_blend")):
        control.change(tab.reblend, [run_state, method, blend], [table, confusion_plot, confusion_alt], api_name=api)
    tune_btn.click(
        tab.fine_tune,
        [classifier, epochs, learning_rate, restart, panel.device],
        [announce, tune_table],
        api_name="finetune_contrastive",
    )
    cancel_btn.click(tab.cancel_fine_tune, None, [announce], api_name="finetune_cancel", queue=False)
    save_btn.click(tab.save, [run_state, method, blend], [announce, saved, overview], api_name="finetune_save")
    rename_btn.click(tab.rename, [classifier, rename_to], [announce, saved, classifier], api_name="finetune_rename")
    export_btn.click(tab.export_zip, [classifier], [announce, zip_out], api_name="finetune_export")
    import_btn.click(tab.import_zip, [zip_in], [announce, saved, classifier], api_name="finetune_import")
    delete_btn.click(
        tab.delete, [classifier, confirm], [announce, saved, classifier, confirm], api_name="finetune_delete"
    )
    if ctx.demo is not None:
        # A page opened later sees classifiers made since the app started. The value is set only while none is
        # chosen (the first one made): this can answer after the user already created (and so chose) one.
        # Its classes and examples too: the class picker is otherwise empty until another classifier is chosen.
        def refresh(chosen):
            names = tab.store.names()
            value = chosen if chosen in names else (names[0] if names else None)
            return gr.update(choices=names, value=value), tab.saved_rows(), *tab.select(value)

        ctx.demo.load(
            refresh, [classifier], [classifier, saved, class_name, gallery, overview], api_name="finetune_refresh"
        )


def _selected_index(evt: gr.SelectData):
    return evt.index
