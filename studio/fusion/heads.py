"""Fusion heads: small classifiers over a clip's audio embedding and picture embedding, trained on a user's clips.

Two kinds, both over L2-normalized embeddings of frozen models (the audio model of the Sound & scene tab, AST or
CLAP, and the zero-shot image model, CLIP):

- **early** fusion: one linear layer over the concatenated embeddings. Its logits split exactly into an audio part and
  a picture part (`W_a a + W_p p + b`), which is what the tab shows as each modality's share.
- **attention** fusion: each embedding is projected to a common size (`h_m = tanh(U_m x_m + c_m)`), a learned
  score per modality (`v · h_m`) gives attention weights `alpha = softmax(v · h_a, v · h_p)` for this clip, and
  `alpha_a h_a + alpha_p h_p` is classified linearly. The attention weights are each modality's share.

Training runs in PyTorch (full batch, Adam, weight decay; a few seconds for a few hundred clips); prediction is plain
numpy with the saved weights. `train_and_compare` holds out a stratified part of the clips and reports the held-out
accuracy of both heads beside late fusion (the weighted mean of each model's own zero-shot probabilities over the
same classes) and each modality alone, so a user sees whether training helped before using a head. Heads are saved
by `studio.fusion.store`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.errors import StudioError
from studio.heldout import accuracy, short_classes, stratified_split
from studio.media.video import VIDEO_SUFFIXES
from studio.scores import normalize, softmax

KINDS = ("early", "attention")
ATTENTION_SIZE = 64  # the common size both modalities are projected to
MIN_CLIPS_PER_CLASS = 2  # one to learn from and one to check on


class FusionHeadError(StudioError):
    """A fusion head cannot be trained, saved, loaded or used; the message says why."""


class CorruptFusionHeadError(FusionHeadError):
    """A saved head's weights no longer match the sha256 recorded when it was saved."""


@dataclass
class ClipExample:
    """One labelled clip, as the heads and late fusion see it.

    Attributes:
        audio_embed: The clip's audio embedding (mean over its windows with sound).
        picture_embed: The clip's picture embedding (mean over its frames).
        audio_probs: The audio model's own probabilities over the classes (late fusion's audio side).
        picture_probs: The image model's zero-shot probabilities over the classes (late fusion's picture side).
        label: Index of its class.
    """

    audio_embed: np.ndarray
    picture_embed: np.ndarray
    audio_probs: np.ndarray
    picture_probs: np.ndarray
    label: int


@dataclass
class FusionHead:
    """A trained head.

    Attributes:
        kind: "early" or "attention".
        classes: Class names, in output order.
        audio_model: The audio model whose embeddings it takes (hub id or folder).
        picture_model: The image model whose embeddings it takes.
        weights: Arrays by name (see the module docstring).
        name: What the user called it.
        evaluation: The held-out comparison it was saved with.
        created: When it was trained (UTC, ISO 8601).
    """

    kind: str
    classes: tuple[str, ...]
    audio_model: str
    picture_model: str
    weights: dict[str, np.ndarray]
    name: str = ""
    evaluation: dict = field(default_factory=dict)
    created: str = ""

    @property
    def audio_dim(self) -> int:
        return int(self.weights["audio_mean"].shape[0])

    @property
    def picture_dim(self) -> int:
        return int(self.weights["picture_mean"].shape[0])

    def predict(self, audio_embeds: np.ndarray, picture_embeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities and each modality's share, for a batch of clips.

        Args:
            audio_embeds: (N, audio_dim).
            picture_embeds: (N, picture_dim).

        Returns:
            probabilities (N, classes), and shares (N, classes, 2): the [audio, picture] fractions of each class's
            evidence (early: the two logit parts' magnitudes; attention: the clip's attention weights).

        Raises:
            FusionHeadError: The embeddings are not of the sizes the head was trained on.
        """
        a, p = self._inputs(audio_embeds, picture_embeds)
        w = self.weights
        if self.kind == "early":
            za, zp = a @ w["audio_weight"].T, p @ w["picture_weight"].T
            logits = za + zp + w["bias"]
            magnitude = np.stack([np.abs(za), np.abs(zp)], axis=-1)
            shares = magnitude / np.maximum(magnitude.sum(-1, keepdims=True), 1e-12)
        else:
            ha = np.tanh(a @ w["audio_proj"].T + w["audio_proj_bias"])
            hp = np.tanh(p @ w["picture_proj"].T + w["picture_proj_bias"])
            scores = np.stack([ha @ w["attention"], hp @ w["attention"]], axis=-1)
            alpha = softmax(scores)
            fused = alpha[:, :1] * ha + alpha[:, 1:] * hp
            logits = fused @ w["classifier"].T + w["classifier_bias"]
            shares = np.repeat(alpha[:, None, :], len(self.classes), axis=1)
        return softmax(logits), shares

    def _inputs(self, audio_embeds, picture_embeds) -> tuple[np.ndarray, np.ndarray]:
        a = np.atleast_2d(np.asarray(audio_embeds, np.float64))
        p = np.atleast_2d(np.asarray(picture_embeds, np.float64))
        if a.shape[1] != self.audio_dim or p.shape[1] != self.picture_dim:
            raise FusionHeadError(
                f"The fusion head “{self.name}” was trained on other models' embeddings (sizes {self.audio_dim} and "
                f"{self.picture_dim}, here {a.shape[1]} and {p.shape[1]}). Choose the models it was trained with: "
                f"{self.audio_model} and {self.picture_model}."
            )
        w = self.weights
        return normalize(a) - w["audio_mean"], normalize(p) - w["picture_mean"]


# Training -----------------------------------------------------------------------------------------------------------


def train_head(
    kind: str,
    examples: list[ClipExample],
    classes: tuple[str, ...],
    audio_model: str,
    picture_model: str,
    seed: int = 0,
    epochs: int = 300,
    weight_decay: float = 1e-3,
) -> FusionHead:
    """Trains one head on labelled clips' embeddings.

    Args:
        kind: "early" or "attention".
        examples: The clips to learn from.
        classes: Class names; `ClipExample.label` indexes them.
        audio_model: Name of the audio model the embeddings come from (recorded, checked when used).
        picture_model: Name of the image model.
        seed: Initialization seed (training is deterministic for a seed).
        epochs: Full-batch Adam steps.
        weight_decay: L2 penalty (the clips are few; it keeps the head from memorizing them).

    Raises:
        FusionHeadError: Unknown kind, or no clips.
    """
    import torch

    if kind not in KINDS:
        raise FusionHeadError(f"There is no “{kind}” fusion; choose one of: {', '.join(KINDS)}.")
    if not examples:
        raise FusionHeadError("There are no labelled clips to learn from.")
    a = normalize(np.stack([e.audio_embed for e in examples]).astype(np.float64))
    p = normalize(np.stack([e.picture_embed for e in examples]).astype(np.float64))
    audio_mean, picture_mean = a.mean(0), p.mean(0)
    y = torch.tensor([e.label for e in examples])
    xa = torch.tensor(a - audio_mean, dtype=torch.float32)
    xp = torch.tensor(p - picture_mean, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    module = _torch_head(kind, xa.shape[1], xp.shape[1], len(classes), generator)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.01, weight_decay=weight_decay)
    module.train()
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(xa, xp), y)
        loss.backward()
        optimizer.step()
    module.eval()
    weights = {k: v.detach().numpy().astype(np.float64) for k, v in module.named_parameters()}
    weights.update(audio_mean=audio_mean, picture_mean=picture_mean)
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return FusionHead(kind, tuple(classes), audio_model, picture_model, weights, created=created)


def _torch_head(kind: str, audio_dim: int, picture_dim: int, n_classes: int, generator):
    """The PyTorch module a head is trained as; its parameter names are the saved weights' names."""
    import torch

    def param(*shape, scale):
        return torch.nn.Parameter(torch.randn(*shape, generator=generator) * scale)

    class EarlyFusion(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.audio_weight = param(n_classes, audio_dim, scale=0.01)
            self.picture_weight = param(n_classes, picture_dim, scale=0.01)
            self.bias = torch.nn.Parameter(torch.zeros(n_classes))

        def forward(self, a, p):
            return a @ self.audio_weight.T + p @ self.picture_weight.T + self.bias

    class AttentionFusion(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.audio_proj = param(ATTENTION_SIZE, audio_dim, scale=audio_dim**-0.5)
            self.audio_proj_bias = torch.nn.Parameter(torch.zeros(ATTENTION_SIZE))
            self.picture_proj = param(ATTENTION_SIZE, picture_dim, scale=picture_dim**-0.5)
            self.picture_proj_bias = torch.nn.Parameter(torch.zeros(ATTENTION_SIZE))
            self.attention = param(ATTENTION_SIZE, scale=ATTENTION_SIZE**-0.5)
            self.classifier = param(n_classes, ATTENTION_SIZE, scale=ATTENTION_SIZE**-0.5)
            self.classifier_bias = torch.nn.Parameter(torch.zeros(n_classes))

        def forward(self, a, p):
            ha = torch.tanh(a @ self.audio_proj.T + self.audio_proj_bias)
            hp = torch.tanh(p @ self.picture_proj.T + self.picture_proj_bias)
            alpha = torch.softmax(torch.stack([ha @ self.attention, hp @ self.attention], -1), -1)
            fused = alpha[:, :1] * ha + alpha[:, 1:] * hp
            return fused @ self.classifier.T + self.classifier_bias

    return (EarlyFusion if kind == "early" else AttentionFusion)()


def late_fusion(audio_probs: np.ndarray, picture_probs: np.ndarray, audio_weight: float) -> np.ndarray:
    """Per-label probabilities combined: `w * audio + (1 - w) * picture` (the rows stay distributions)."""
    w = float(audio_weight)
    if not 0.0 <= w <= 1.0:
        raise FusionHeadError(f"The audio weight must be between 0 and 1, not {audio_weight}.")
    return w * np.asarray(audio_probs, np.float64) + (1.0 - w) * np.asarray(picture_probs, np.float64)


def train_and_compare(
    examples: list[ClipExample],
    classes: tuple[str, ...],
    audio_model: str,
    picture_model: str,
    progress=None,
    audio_weight: float = 0.5,
    held_out: float = 0.3,
    seed: int = 0,
) -> tuple[dict[str, FusionHead], dict]:
    """Trains both heads on a stratified part of the clips and compares them on the rest.

    Returns:
        The heads by kind (trained on the training part), and the comparison: {"train_clips", "held_out_clips",
        "accuracy": {"early", "attention", "late", "audio_only", "picture_only"}, "audio_weight", "classes"}.

    Raises:
        FusionHeadError: Fewer than two classes, or a class with too few clips.
    """
    if len(classes) < 2:
        raise FusionHeadError("Fusion heads need at least two classes to tell apart.")
    labels = [e.label for e in examples]
    for short in short_classes(labels, MIN_CLIPS_PER_CLASS):
        raise FusionHeadError(
            f"Each class needs at least {MIN_CLIPS_PER_CLASS} clips (one to learn from, one to check on); "
            f"class {short + 1} has {labels.count(short)}."
        )
    train, test = stratified_split(labels, held_out, seed)
    y = np.array([labels[i] for i in test])
    held = [examples[i] for i in test]
    audio_probs = np.stack([e.audio_probs for e in held])
    picture_probs = np.stack([e.picture_probs for e in held])
    results = {
        "late": accuracy(late_fusion(audio_probs, picture_probs, audio_weight), y),
        "audio_only": accuracy(audio_probs, y),
        "picture_only": accuracy(picture_probs, y),
    }
    heads = {}
    for i, kind in enumerate(KINDS):
        if progress is not None:
            progress(i / len(KINDS), f"Training the {kind} fusion head on {len(train)} clips…")
        head = train_head(kind, [examples[j] for j in train], classes, audio_model, picture_model, seed=seed)
        probs, _ = head.predict(np.stack([e.audio_embed for e in held]), np.stack([e.picture_embed for e in held]))
        results[kind] = accuracy(probs, y)
        heads[kind] = head
    evaluation = {
        "train_clips": int(len(train)),
        "held_out_clips": int(len(test)),
        "accuracy": results,
        "audio_weight": audio_weight,
        "classes": list(classes),
    }
    for head in heads.values():
        head.evaluation = evaluation
    if progress is not None:
        progress(1.0, "Trained and compared on the held-out clips.")
    return heads, evaluation


def collect_clips(folder) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """Labelled clips from a folder with one sub-folder per class (the sub-folder's name is the class).

    Returns:
        The classes (sorted by name) and (video path, class index) pairs.

    Raises:
        FusionHeadError: Not a folder, fewer than two classes, or a class with fewer than `MIN_CLIPS_PER_CLASS` clips.
    """
    root = Path(str(folder or "")).expanduser()
    if not str(folder or "").strip() or not root.is_dir():
        raise FusionHeadError(
            f"There is no folder at “{folder or ''}”. Give a folder with one sub-folder of videos per class."
        )
    classes, clips = [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        videos = sorted(p for p in sub.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            continue
        if len(videos) < MIN_CLIPS_PER_CLASS:
            raise FusionHeadError(
                f"The class “{sub.name}” has {len(videos)} clip; each class needs at least {MIN_CLIPS_PER_CLASS} "
                "(one to learn from, one to check on)."
            )
        clips += [(v, len(classes)) for v in videos]
        classes.append(sub.name)
    if len(classes) < 2:
        raise FusionHeadError(
            f"The folder {root} needs at least two sub-folders of videos, one per class "
            "(for example “door knock” and “applause”)."
        )
    return tuple(classes), clips
