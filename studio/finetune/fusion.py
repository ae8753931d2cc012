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
same classes) and each modality alone, so a user sees whether training helped before using a head.

A head is saved under `<models-dir>/fusion-heads/<folder>/` as `head.json` (kind, classes, the models whose
embeddings it was trained on, evaluation, the sha256 of the weights) and `weights.npz`, written in a temporary folder
and renamed into place; a head whose weights no longer match their sha256 is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.errors import StudioError

KINDS = ("early", "attention")
HEADS_DIR = "fusion-heads"
HEAD_JSON = "head.json"
WEIGHTS = "weights.npz"
FORMAT_VERSION = 1
ATTENTION_SIZE = 64  # the common size both modalities are projected to
MIN_CLIPS_PER_CLASS = 2  # one to learn from and one to check on
MAX_NAME_CHARS = 100


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
            alpha = _softmax(scores)
            fused = alpha[:, :1] * ha + alpha[:, 1:] * hp
            logits = fused @ w["classifier"].T + w["classifier_bias"]
            shares = np.repeat(alpha[:, None, :], len(self.classes), axis=1)
        return _softmax(logits), shares

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
        return _normalize(a) - w["audio_mean"], _normalize(p) - w["picture_mean"]


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
    a = _normalize(np.stack([e.audio_embed for e in examples]).astype(np.float64))
    p = _normalize(np.stack([e.picture_embed for e in examples]).astype(np.float64))
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


def stratified_split(labels: list[int], held_out: float = 0.3, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices to train on and to hold out: per class, `held_out` of its clips (at least one), chosen at random.

    Raises:
        FusionHeadError: A class has fewer than `MIN_CLIPS_PER_CLASS` clips.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == label]
        if len(members) < MIN_CLIPS_PER_CLASS:
            raise FusionHeadError(
                f"Each class needs at least {MIN_CLIPS_PER_CLASS} clips (one to learn from, one to check on); "
                f"class {label + 1} has {len(members)}."
            )
        rng.shuffle(members)
        n_test = min(len(members) - 1, max(1, round(held_out * len(members))))
        test += members[:n_test]
        train += members[n_test:]
    return sorted(train), sorted(test)


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
    audio_weight: float = 0.5,
    held_out: float = 0.3,
    seed: int = 0,
    progress=None,
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
    train, test = stratified_split(labels, held_out, seed)
    y = np.array([labels[i] for i in test])

    def accuracy(probs) -> float:
        return float((np.argmax(probs, axis=1) == y).mean())

    held = [examples[i] for i in test]
    audio_probs = np.stack([e.audio_probs for e in held])
    picture_probs = np.stack([e.picture_probs for e in held])
    results = {
        "late": accuracy(late_fusion(audio_probs, picture_probs, audio_weight)),
        "audio_only": accuracy(audio_probs),
        "picture_only": accuracy(picture_probs),
    }
    heads = {}
    for i, kind in enumerate(KINDS):
        if progress is not None:
            progress(i / len(KINDS), f"Training the {kind} fusion head on {len(train)} clips…")
        head = train_head(kind, [examples[j] for j in train], classes, audio_model, picture_model, seed=seed)
        probs, _ = head.predict(np.stack([e.audio_embed for e in held]), np.stack([e.picture_embed for e in held]))
        results[kind] = accuracy(probs)
        heads[kind] = head
    evaluation = {
        "train_clips": len(train),
        "held_out_clips": len(test),
        "accuracy": results,
        "audio_weight": audio_weight,
        "classes": list(classes),
    }
    for head in heads.values():
        head.evaluation = evaluation
    if progress is not None:
        progress(1.0, "Trained and compared on the held-out clips.")
    return heads, evaluation


# Saving and loading -------------------------------------------------------------------------------------------------


def heads_dir(models_dir: Path) -> Path:
    """Where fusion heads are saved: `<models-dir>/fusion-heads/`."""
    return Path(models_dir) / HEADS_DIR


def folder_name(name: str) -> str:
    """The folder a head of this name is saved in (letters, digits, '-', '_' and '.')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "head"


def clean_head_name(name: str | None) -> str:
    """A head's name with white space tidied.

    Raises:
        FusionHeadError: Empty or too long.
    """
    text = " ".join(str(name or "").split())
    if not text:
        raise FusionHeadError("Give the fusion head a name, for example: kitchen sounds.")
    if len(text) > MAX_NAME_CHARS:
        raise FusionHeadError(f"Keep the fusion head's name under {MAX_NAME_CHARS} characters.")
    return text


def save_head(head: FusionHead, models_dir: Path, name: str) -> Path:
    """Saves a head atomically (a temporary folder renamed into place) and returns its folder.

    A head of the same name is replaced only once the new one is completely written.
    """
    from studio.atomic import write_json_atomic
    from studio.export.exporter import _replace_dir
    from studio.export.manifest import sha256_file

    name = clean_head_name(name)
    root = heads_dir(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{head.kind}-{folder_name(name)}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}.saving-"))
    try:
        with open(tmp / WEIGHTS, "wb") as fh:
            np.savez(fh, **head.weights)
        meta = {
            "format": FORMAT_VERSION,
            "name": name,
            "kind": head.kind,
            "classes": list(head.classes),
            "audio_model": head.audio_model,
            "picture_model": head.picture_model,
            "audio_dim": head.audio_dim,
            "picture_dim": head.picture_dim,
            "evaluation": head.evaluation,
            "created": head.created,
            "weights_sha256": sha256_file(tmp / WEIGHTS),
        }
        write_json_atomic(tmp / HEAD_JSON, meta)
        _replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    head.name = name
    return final


def load_head(folder: Path) -> FusionHead:
    """Loads a saved head, checking its weights against the sha256 recorded when it was saved.

    Raises:
        FusionHeadError: The folder holds no head.
        CorruptFusionHeadError: The weights changed since.
    """
    from studio.export.manifest import sha256_file

    folder = Path(folder)
    try:
        meta = json.loads((folder / HEAD_JSON).read_text())
    except (OSError, ValueError) as exc:
        raise FusionHeadError(f"There is no fusion head in {folder}.") from exc
    if not (folder / WEIGHTS).is_file() or sha256_file(folder / WEIGHTS) != meta.get("weights_sha256"):
        raise CorruptFusionHeadError(
            f"The fusion head “{meta.get('name', folder.name)}” is damaged (its weights do not match the checksum "
            "saved with them), so it is not used. Train it again."
        )
    with np.load(folder / WEIGHTS) as arrays:
        weights = {k: arrays[k].astype(np.float64) for k in arrays.files}
    return FusionHead(
        kind=meta["kind"],
        classes=tuple(meta["classes"]),
        audio_model=meta["audio_model"],
        picture_model=meta["picture_model"],
        weights=weights,
        name=meta.get("name", folder.name),
        evaluation=meta.get("evaluation", {}),
        created=meta.get("created", ""),
    )


@dataclass(frozen=True)
class SavedHead:
    """A head on disk, as the tab's picker and `studio predict --head` list it."""

    folder: Path
    name: str
    kind: str
    classes: tuple[str, ...]
    audio_model: str
    picture_model: str
    created: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.kind} fusion, {len(self.classes)} classes)"


def list_heads(models_dir: Path, kind: str | None = None) -> list[SavedHead]:
    """The saved heads (of one kind, or all), newest first; unreadable folders are left out."""
    root = heads_dir(models_dir)
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            meta = json.loads((folder / HEAD_JSON).read_text())
            info = SavedHead(
                folder,
                str(meta["name"]),
                str(meta["kind"]),
                tuple(meta["classes"]),
                str(meta["audio_model"]),
                str(meta["picture_model"]),
                str(meta.get("created", "")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if kind is None or info.kind == kind:
            out.append(info)
    return sorted(out, key=lambda h: h.created, reverse=True)


def find_head(models_dir: Path, kind: str, name: str | None = None) -> FusionHead:
    """The saved head of a kind with this name (or the newest of that kind), loaded and checked.

    Raises:
        FusionHeadError: None of that kind (or name) is saved: the sentence says these modes need training.
    """
    heads = list_heads(models_dir, kind)
    if name:
        heads = [h for h in heads if h.name.casefold() == " ".join(name.split()).casefold() or h.folder.name == name]
    if not heads:
        known = ", ".join(h.name for h in list_heads(models_dir, kind))
        raise FusionHeadError(
            f"{kind.capitalize()} fusion needs a trained fusion head, and "
            + (f"none is called “{name}” (saved: {known})." if name and known else "none has been trained yet.")
            + " Use late fusion, or teach a head with your labelled clips first."
        )
    return load_head(heads[0].folder)


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


VIDEO_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v", ".ogv"}


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
