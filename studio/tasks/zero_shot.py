"""Zero-shot image classification with a CLIP-style image-text model.

Labels are put into prompt templates and encoded once per label set (cached); each frame then costs one image-encoder
run and a matrix product. Scores are the softmax over labels of the scaled cosine similarities, as in CLIP and in
transformers' zero-shot-image-classification pipeline.
"""

from __future__ import annotations

import string
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.backends.base import GraphSet
from studio.errors import BadLabelsError, BadTemplateError
from studio.media.image import ImagePreprocessing, load_image
from studio.media.text import typed_items
from studio.scores import normalize, ranked, softmax
from studio.tasks.base import GraphTask

TASK = "zero-shot"
DEFAULT_TEMPLATE = "a photo of a {}."
# CLIP's prompt-engineering notebook: the 7 templates it selected for ImageNet, plus the default one.
ENSEMBLE_TEMPLATES = (
    DEFAULT_TEMPLATE,
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)
MAX_LABELS = 1000  # 1000 labels x 8 templates still encode in about a minute on 2 CPU cores
MAX_LABEL_CHARS = 200
_CACHE_SIZE = 16


def parse_labels(labels: str | list[str] | None) -> tuple[list[str], list[str]]:
    """Splits what a user typed into labels.

    Args:
        labels: "mug, keys, phone" (commas or new lines), or a list.

    Returns:
        The labels (blank ones dropped, duplicates kept once) and notices about what was dropped.

    Raises:
        BadLabelsError: No labels, only one, or too many.
    """
    notices, seen, out = [], set(), []
    for label in typed_items(labels):
        if label.casefold() in seen:
            notices.append(f"“{label}” was listed more than once; it is counted once.")
            continue
        if len(label) > MAX_LABEL_CHARS:
            raise BadLabelsError(f"A label is {len(label)} characters long; keep each label under {MAX_LABEL_CHARS}.")
        seen.add(label.casefold())
        out.append(label)
    if not out:
        raise BadLabelsError("Type some labels to choose between, separated by commas, for example: mug, keys, phone.")
    if len(out) == 1:
        raise BadLabelsError(
            f"Add at least one more label: the scores say which label fits the picture best, so “{out[0]}” on its "
            "own would always get 100%. For example: " + f"{out[0]}, something else."
        )
    if len(out) > MAX_LABELS:
        raise BadLabelsError(f"That is {len(out)} labels; Studio compares at most {MAX_LABELS} at a time.")
    return out, notices


def templates_for(mode: str = "single", custom: str | None = None) -> tuple[str, ...]:
    """The prompt templates for a template choice.

    Args:
        mode: "single" (one template), "ensemble" (CLIP's averaged set) or "custom".
        custom: The template for "custom" (or to replace the single default), with "{}" where the label goes.

    Raises:
        BadTemplateError: A custom template without "{}".
    """
    if mode == "ensemble":
        return ENSEMBLE_TEMPLATES
    template = (custom or "").strip() or DEFAULT_TEMPLATE
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
        well_formed = fields == [""] and template.format("x") is not None
    except (ValueError, KeyError, IndexError):
        well_formed = False
    if not well_formed:
        raise BadTemplateError(
            f"The template “{template}” needs exactly one {{}} where the label goes and no other curly braces, "
            "for example: a photo of a {}."
        )
    return (template,)


@dataclass(frozen=True)
class LabelSet:
    """Encoded labels: one normalized text embedding per label (templates averaged)."""

    labels: tuple[str, ...]
    templates: tuple[str, ...]
    embeddings: np.ndarray
    encode_ms: float


@dataclass
class ZeroShotResult:
    """One classification.

    Attributes:
        labels: [{"label", "score"}] sorted by score, highest first.
        latency_ms: Time for this image: preprocessing, image encoder, scoring (text encoding excluded).
        text_ms: Time spent encoding the label set in this call (0 when it came from the cache).
        notices: Sentences about the input (dropped duplicates...).
    """

    labels: list[dict]
    latency_ms: float
    text_ms: float = 0.0
    notices: list[str] = field(default_factory=list)


class ZeroShotTask(GraphTask):
    """Classifies images against labels typed by the user.

    Args:
        graphs: The CLIP graphs ("image_encoder", "text_encoder") on some backend, with the logit scale in metadata.
    """

    TASK = TASK

    def __init__(self, graphs: GraphSet) -> None:
        super().__init__(graphs)
        files = Path(graphs.files_dir)
        self.preprocessing = ImagePreprocessing.from_dir(files)
        self.tokenizer = self.text_tokenizer()
        self.logit_scale = float(graphs.metadata["logit_scale"])
        self._cache: OrderedDict[tuple, LabelSet] = OrderedDict()

    def encode_labels(self, labels: list[str], templates: tuple[str, ...] = (DEFAULT_TEMPLATE,)) -> LabelSet:
        """Encodes a label set once; later calls with the same labels and templates hit the cache.

        Returns:
            The label set with (len(labels), D) normalized embeddings.
        """
        key = (tuple(labels), tuple(templates))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        started = time.perf_counter()
        prompts = [t.format(label) for label in labels for t in templates]
        embeds = self.embed_texts(prompts).reshape(len(labels), len(templates), -1)
        # Template ensembling as in CLIP: average the normalized embeddings, then normalize again.
        embeds = normalize(embeds.mean(axis=1))
        label_set = LabelSet(tuple(labels), tuple(templates), embeds, (time.perf_counter() - started) * 1000)
        self._cache[key] = label_set
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return label_set

    def preprocess(self, images: list, channel_order: str = "RGB") -> np.ndarray:
        """Decodes and prepares images: (N, 3, H, W) float32."""
        return self.preprocessing.batch([load_image(im, channel_order) for im in images])

    def forward(self, pixel_values: np.ndarray) -> np.ndarray:
        """Runs the image encoder: (N, D) normalized image embeddings."""
        return normalize(self.graphs.graphs["image_encoder"].run({"pixel_values": pixel_values})["image_embeds"])

    def probabilities(self, image_embeds: np.ndarray, label_set: LabelSet) -> np.ndarray:
        """Softmax over labels of the scaled cosine similarities: (N, len(labels))."""
        return softmax(self.logit_scale * image_embeds.astype(np.float64) @ label_set.embeddings.astype(np.float64).T)

    def postprocess(self, probs: np.ndarray, label_set: LabelSet) -> list[dict]:
        """One image's probabilities as [{"label", "score"}], highest first."""
        return ranked(probs, label_set.labels)

    def __call__(
        self,
        image,
        labels: str | list[str],
        templates: tuple[str, ...] = (DEFAULT_TEMPLATE,),
        channel_order: str = "RGB",
    ) -> ZeroShotResult:
        """Classifies one image.

        Args:
            image: Path, bytes, PIL image or array (see `media.image.load_image`).
            labels: "a, b, c" or a list.
            templates: Prompt templates (see `templates_for`).
            channel_order: "RGB", or "BGR" for OpenCV frames.
        """
        names, notices = parse_labels(labels)
        cached = (tuple(names), tuple(templates)) in self._cache
        label_set = self.encode_labels(names, templates)
        text_ms = 0.0 if cached else label_set.encode_ms
        started = time.perf_counter()
        embeds = self.forward(self.preprocess([image], channel_order))
        probs = self.probabilities(embeds, label_set)[0]
        latency = (time.perf_counter() - started) * 1000
        return ZeroShotResult(self.postprocess(probs, label_set), latency, text_ms, notices)
