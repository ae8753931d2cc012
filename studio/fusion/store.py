"""Saved fusion heads: `<models-dir>/fusion-heads/<kind>-<name>/` with `head.json` (kind, classes, the models whose
embeddings it was trained on, evaluation, the sha256 of the weights) and `weights.npz`, written in a temporary folder
and renamed into place; a head whose weights no longer match their sha256 is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.atomic import directory_replaced_on_success, write_json_atomic
from studio.export.manifest import sha256_file
from studio.fusion.heads import CorruptFusionHeadError, FusionHead, FusionHeadError

HEADS_DIR = "fusion-heads"
HEAD_JSON = "head.json"
WEIGHTS = "weights.npz"
FORMAT_VERSION = 1
MAX_NAME_CHARS = 100


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
    name = clean_head_name(name)
    final = heads_dir(models_dir) / f"{head.kind}-{folder_name(name)}"
    with directory_replaced_on_success(final, "saving") as tmp:
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
    head.name = name
    return final


def load_head(folder: Path) -> FusionHead:
    """Loads a saved head, checking its weights against the sha256 recorded when it was saved.

    Raises:
        FusionHeadError: The folder holds no head.
        CorruptFusionHeadError: The weights changed since.
    """
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
