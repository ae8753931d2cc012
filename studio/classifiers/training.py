"""Training a custom classifier: embed its examples (cached), split, fit heads, compare on held-out examples, save.

The image encoder is the zero-shot model's (`ZeroShotTask`), on whichever backend it runs (ONNX Runtime or PyTorch).
Embeddings are cached per model and picture hash, so training again after adding a few examples embeds only those.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.classifiers.heads import METHODS, Evaluation, Head, evaluate, prototypes, train_linear_probe
from studio.classifiers.store import ClassifierStore, SavedVersion
from studio.errors import ClassifierError
from studio.heldout import stratified_split
from studio.progress import Progress, no_progress, scaled
from studio.scores import ranked

log = logging.getLogger(__name__)
_EMBED_BATCH = 32
HELD_OUT_FRACTION = 0.25


def model_key(model: str | None, models_dir: Path) -> str:
    """An identity of a zero-shot model's weights for the embedding cache: hub id + revision, or a folder's content."""
    import hashlib

    from studio.sources import directory_fingerprint, resolve

    source = resolve(model, "zero-shot", models_dir)
    if source.origin == "local-dir":
        ident = f"dir:{source.local_dir}:{directory_fingerprint(source.local_dir)}"
    else:
        ident = f"hub:{source.display_name}@{source.revision}"
    return f"{source.slug[:40]}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"


class EmbeddingCache:
    """Normalized image embeddings on disk, one .npy per picture hash, under `<models-dir>/embeddings/<model key>/`."""

    def __init__(self, models_dir: Path, key: str) -> None:
        self.directory = Path(models_dir) / "embeddings" / key

    def get(self, digest: str) -> np.ndarray | None:
        try:
            return np.load(self.directory / f"{digest}.npy")
        except (OSError, ValueError):
            return None

    def put(self, digest: str, embedding: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{digest}.{time.monotonic_ns()}.npy"
        np.save(tmp, embedding.astype(np.float32))
        tmp.replace(self.directory / f"{digest}.npy")


def embed_examples(
    task, cache: EmbeddingCache, items: list[tuple[str, Path]], progress: Progress = no_progress, should_stop=None
) -> np.ndarray:
    """Normalized embeddings (N, D) of stored examples, from the cache or the task's image encoder.

    Args:
        task: A loaded `ZeroShotTask`.
        cache: Where embeddings are kept.
        items: (hash, file) pairs.
        progress: Receives fractions and sentences.
        should_stop: Returns True to stop (raises `TrainingCancelled`).
    """
    from studio.media.image import load_image

    out: list[np.ndarray | None] = [cache.get(d) for d, _ in items]
    todo = [i for i, e in enumerate(out) if e is None]
    for start in range(0, len(todo), _EMBED_BATCH):
        if should_stop is not None and should_stop():
            raise TrainingCancelled("Training was cancelled; nothing was saved.")
        batch = todo[start : start + _EMBED_BATCH]
        progress(start / max(len(todo), 1), f"Reading the examples: {start} of {len(todo)} new pictures…")
        embeds = task.forward(task.preprocessing.batch([load_image(items[i][1]) for i in batch]))
        for i, e in zip(batch, embeds):
            cache.put(items[i][0], e)
            out[i] = e
    progress(1.0, "All examples read.")
    return np.stack(out).astype(np.float32)


class TrainingCancelled(ClassifierError):
    """The user stopped training; nothing was saved."""


@dataclass
class TrainingRun:
    """A trained classifier before it is saved: both heads, the held-out split and its evaluation.

    Attributes:
        name: The classifier's name.
        model: The zero-shot model it builds on.
        heads: {"linear": Head, "prototype": Head} trained on the training split only.
        method: The head chosen for saving.
        blend: The blend chosen for saving.
        loss_curve: The linear probe's loss per step.
        test_embeds: Held-out embeddings (never seen by training).
        test_labels: Their class indices.
        n_train: Training examples.
        notices: Sentences about the data (too few for a split, mixed sizes...).
        seconds: Wall time of embedding + training.
        runtime: What the image encoder ran on (`studio.backends.base.RuntimeInfo`).
    """

    name: str
    model: str | None
    heads: dict[str, Head]
    method: str
    blend: float
    loss_curve: list[float]
    test_embeds: np.ndarray
    test_labels: np.ndarray
    n_train: int
    notices: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    runtime: object = None

    @property
    def classes(self) -> list[str]:
        return list(self.heads[self.method].classes)

    def evaluation(self, method: str | None = None, blend: float | None = None) -> Evaluation:
        """Held-out accuracies for a head and blend (cheap: embeddings are kept)."""
        return evaluate(
            self.heads,
            method or self.method,
            self.blend if blend is None else blend,
            self.test_embeds,
            self.test_labels,
        )

    def head(self, method: str | None = None, blend: float | None = None) -> Head:
        from dataclasses import replace

        return replace(self.heads[method or self.method], blend=self.blend if blend is None else blend)

    def report(self) -> dict:
        """JSON-able summary: classes, split sizes, accuracies, confusion matrix, loss curve."""
        return {
            "name": self.name,
            "model": self.model,
            "classes": self.classes,
            "method": self.method,
            "blend": self.blend,
            "trained_on": self.n_train,
            **self.evaluation().as_dict(),
            "loss_curve": [round(x, 5) for x in self.loss_curve],
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "notices": self.notices,
        }


def check_blend(blend: float) -> float:
    try:
        value = float(blend)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ClassifierError("The blend must be between 0 (zero-shot only) and 1 (trained only).")
    return value


def check_trainable(store: ClassifierStore, name: str) -> dict[str, list[tuple[str, Path]]]:
    """A classifier's examples by class, once every class has at least one.

    Raises:
        ClassifierError: A class has no examples.
    """
    examples = store.examples(name)
    empty = [c for c, items in examples.items() if not items]
    if empty:
        names = ", ".join(f"“{c}”" for c in empty)
        if len(empty) > 1:
            raise ClassifierError(f"These classes have no examples yet: {names}. Add at least one picture to each.")
        raise ClassifierError(f"The class {names} has no examples yet. Add at least one picture to it.")
    return examples


def train_classifier(
    task,
    store: ClassifierStore,
    name: str,
    method: str = "linear",
    blend: float = 0.5,
    progress: Progress = no_progress,
    should_stop=None,
) -> TrainingRun:
    """Trains a classifier's heads on its examples, keeping a stratified held-out split out of training.

    Args:
        task: The loaded `ZeroShotTask` of the classifier's model.
        store: Where the classifier is.
        name: Its name.
        method: "linear" or "prototype": the head to save.
        blend: 0..1, the weight of the trained head against zero-shot.
        progress: Receives fractions and sentences.
        should_stop: Returns True to cancel.

    Raises:
        ClassifierError: A class without examples, or a cancel.
    """
    if method not in METHODS:
        raise ClassifierError(f"Choose a training method: {', '.join(METHODS)}.")
    blend = check_blend(blend)
    examples = check_trainable(store, name)
    classes = list(examples)
    items = [it for c in classes for it in examples[c]]
    labels = np.array([i for i, c in enumerate(classes) for _ in examples[c]], dtype=np.int64)
    notices = _size_notices(items, task)
    started = time.perf_counter()
    cache = EmbeddingCache(store.root.parent, model_key(store.meta(name).get("model"), store.root.parent))
    embeds = embed_examples(task, cache, items, scaled(progress, 0.0, 0.7), should_stop)
    embed_s = time.perf_counter() - started

    train_idx, test_idx = stratified_split(labels, HELD_OUT_FRACTION)
    if len(test_idx) == 0:
        few = [c for c, items in examples.items() if len(items) < 2]
        notices.append(
            "Too few examples to keep some aside for testing, so no held-out accuracy can be measured: add at least "
            f"two pictures to every class ({', '.join(f'“{c}”' for c in few[:5])} "
            f"{'has' if len(few) == 1 else 'have'} only one)."
        )
    label_set = task.encode_labels(classes)
    text = label_set.embeddings.astype(np.float32)
    x, y = embeds[train_idx], labels[train_idx]
    t0 = time.perf_counter()
    weight, bias, losses = train_linear_probe(
        x, y, len(classes), progress=scaled(progress, 0.7, 0.98), should_stop=should_stop
    )
    if should_stop is not None and should_stop():
        raise TrainingCancelled("Training was cancelled; nothing was saved.")
    proto_w, proto_b = prototypes(x, y, len(classes), task.logit_scale)
    train_s = time.perf_counter() - t0
    common = dict(classes=tuple(classes), text_embeds=text, logit_scale=task.logit_scale, blend=blend)
    heads = {
        "linear": Head(weight=weight, bias=bias, method="linear", **common),
        "prototype": Head(weight=proto_w, bias=proto_b, method="prototype", **common),
    }
    progress(1.0, "Trained.")
    model = store.meta(name).get("model")
    return TrainingRun(
        store.meta(name)["name"],
        model,
        heads,
        method,
        blend,
        losses,
        embeds[test_idx],
        labels[test_idx],
        len(train_idx),
        notices,
        {"embedding": embed_s, "training": train_s},
        task.runtime,
    )


def _size_notices(items: list[tuple[str, Path]], task) -> list[str]:
    from PIL import Image

    sizes = []
    for _, path in items:
        with Image.open(path) as im:
            sizes.append(im.size)
    crop = (task.preprocessing.crop_width, task.preprocessing.crop_height)
    notices = []
    if len(set(sizes)) > 1:
        small, large = min(sizes, key=lambda s: s[0] * s[1]), max(sizes, key=lambda s: s[0] * s[1])
        notices.append(
            f"The examples come in different sizes (from {small[0]}×{small[1]} to {large[0]}×{large[1]}); each is "
            f"resized and cropped to the middle {crop[0]}×{crop[1]} square the model sees."
        )
    tiny = sum(1 for w, h in sizes if crop[0] and min(w, h) < min(crop) / 2)
    if tiny:
        notices.append(
            f"{tiny} example{'s are' if tiny > 1 else ' is'} much smaller than the {crop[0]}×{crop[1]} pictures the "
            "model sees and will look blurry to it."
        )
    return notices


def save_run(
    run: TrainingRun,
    store: ClassifierStore,
    method: str | None = None,
    blend: float | None = None,
    onnx: bool = True,
    progress: Progress = no_progress,
) -> SavedVersion:
    """Saves a training run as the classifier's next version, with the image encoder + head as one ONNX graph.

    Args:
        run: The trained run.
        store: The store it goes into.
        method: The head to save (default: the run's).
        blend: The blend to save (default: the run's).
        onnx: Also export the image encoder + head graph (needs the model's PyTorch weights on this machine).
        progress: Told each step in words: saving, the export's steps, checking what was saved.

    Returns:
        The saved version, loaded back and verified.
    """
    method = method or run.method
    blend = check_blend(run.blend if blend is None else blend)
    head = run.head(method, blend)
    evaluation = run.evaluation(method, blend)
    record = {
        "name": run.name,
        "model": run.model,
        "classes": list(head.classes),
        "method": method,
        "blend": blend,
        "logit_scale": head.logit_scale,
        "trained_on": run.n_train,
        "held_out": evaluation.n_test,
        "accuracy": evaluation.accuracy,
        "confusion": evaluation.confusion.tolist(),
        "loss_curve": [round(x, 5) for x in run.loss_curve],
    }
    write_onnx = None
    notices = []
    progress(0.02, "Saving the classifier…")
    if onnx:
        from studio.classifiers.export import classifier_graph_writer

        write_onnx = classifier_graph_writer(run.model, store.root.parent, head, notices, scaled(progress, 0.05, 0.9))
    version = store.save_version(run.name, record, head.arrays(), write_onnx)
    progress(0.92, "Checking the saved classifier…")
    saved = store.load(run.name, version)
    progress(1.0, "Saved.")
    saved.notices.extend(notices)
    return saved


def head_of(saved: SavedVersion) -> Head:
    """The `Head` of a saved version."""
    h = saved.head
    return Head(
        classes=tuple(h["classes"]),
        weight=saved.arrays["weight"],
        bias=saved.arrays["bias"],
        text_embeds=saved.arrays["text_embeds"],
        logit_scale=float(h["logit_scale"]),
        blend=float(h["blend"]),
        method=h["method"],
    )


def classify(task, saved: SavedVersion, image, channel_order: str = "RGB"):
    """Classifies one image with a saved classifier, on the task's image encoder.

    Returns:
        A `ZeroShotResult` ([{"label", "score"}] best first, latency), like typed labels give.

    Raises:
        ClassifierError: The classifier was made with a model whose embeddings differ in size.
    """
    from studio.tasks.zero_shot import ZeroShotResult

    head = head_of(saved)
    started = time.perf_counter()
    embeds = task.forward(task.preprocess([image], channel_order))
    if embeds.shape[1] != head.weight.shape[1]:
        raise ClassifierError(
            f"“{saved.name}” was trained on another model ({saved.head.get('model') or 'the default model'}); "
            "choose that model to use it."
        )
    labels = ranked(head.probabilities(embeds)[0], head.classes)
    return ZeroShotResult(labels, (time.perf_counter() - started) * 1000, 0.0, list(saved.notices))


def evaluate_folder(task, saved: SavedVersion, folder: Path) -> dict:
    """Accuracies of zero-shot, the trained head and the blend on a labelled folder (one sub-folder per class).

    Raises:
        ClassifierError: No sub-folder is named after one of the classifier's classes.
    """
    from studio.media.image import IMAGE_SUFFIXES, load_image

    folder = Path(folder)
    if not folder.is_dir():
        raise ClassifierError(f"The folder {folder} does not exist.")
    head = head_of(saved)
    index = {c.casefold(): i for i, c in enumerate(head.classes)}
    files, labels, notices = [], [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if sub.name.casefold() not in index:
            notices.append(f"The sub-folder “{sub.name}” is not one of the classes, so it was left out.")
            continue
        for f in sorted(sub.rglob("*")):
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                files.append(f)
                labels.append(index[sub.name.casefold()])
    if not files:
        raise ClassifierError(
            f"The folder {folder} has no pictures in sub-folders named after the classes ({', '.join(head.classes)})."
        )
    embeds = np.concatenate(
        [
            task.forward(task.preprocessing.batch([load_image(f) for f in files[i : i + _EMBED_BATCH]]))
            for i in range(0, len(files), _EMBED_BATCH)
        ]
    )
    y = np.array(labels)
    result = evaluate({saved.head["method"]: head}, saved.head["method"], head.blend, embeds, y)
    return {**result.as_dict(), "notices": notices}
