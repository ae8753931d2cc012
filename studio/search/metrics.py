"""Retrieval quality on image-caption pairs, as the dual-encoder papers report it (COCO / Flickr30k, Karpathy split):
Recall@K in both directions and the median rank, plus the recall-against-K curve.

- text → image: for each caption, the rank of its own image among all images.
- image → text: for each image, the rank of the best-ranked of its own captions among all captions.

A rank is 1 + the number of candidates scoring strictly higher, so ties never count against the right answer.
Recall@K is the fraction of queries whose rank is at most K.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.search.store import SearchError

KS = (1, 5, 10)
_HEADER_WORDS = {"image", "image path", "image_path", "path", "file", "filename", "file_name"}


@dataclass
class Pairs:
    """Image-caption pairs: the distinct images, and each caption with the index of its image."""

    images: list[Path]
    captions: list[str]
    caption_image: np.ndarray  # (T,) index into images


def read_pairs(path: Path) -> Pairs:
    """Reads a pairs file: CSV rows `image path, caption` (paths relative to the file's folder), several rows per image
    allowed, an optional header row.

    Raises:
        SearchError: Missing file, no pairs, a row without a caption, or an image that is not there.
    """
    path = Path(path)
    if not path.is_file():
        raise SearchError(f"The pairs file {path} was not found.")
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SearchError(f"The pairs file {path.name} cannot be read as CSV text (image path, caption).") from exc
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if rows and rows[0][0].strip().casefold() in _HEADER_WORDS:
        rows = rows[1:]
    images: dict[Path, int] = {}
    captions, owner = [], []
    for number, row in enumerate(rows, 1):
        if len(row) < 2 or not row[0].strip() or not ",".join(row[1:]).strip():
            raise SearchError(
                f"Row {number} of {path.name} does not hold an image path and a caption separated by a comma."
            )
        image = (path.parent / row[0].strip()).resolve()
        if not image.is_file():
            raise SearchError(f"The image {row[0].strip()} named in row {number} of {path.name} was not found.")
        owner.append(images.setdefault(image, len(images)))
        captions.append(",".join(row[1:]).strip())
    if len(images) < 2:
        raise SearchError(
            f"{path.name} names {len(images)} image; Recall@K needs at least two images to choose between."
        )
    return Pairs(list(images), captions, np.array(owner, np.int64))


def ranks(similarity: np.ndarray, correct: list[np.ndarray]) -> np.ndarray:
    """1-based rank of the best correct candidate for each query.

    Args:
        similarity: (Q, C) scores of each query against every candidate.
        correct: For each query, the indices of its correct candidates.
    """
    out = np.empty(len(correct), np.int64)
    for q, right in enumerate(correct):
        best = similarity[q, right].max()
        out[q] = 1 + int((similarity[q] > best).sum())
    return out


def retrieval_metrics(image_vectors: np.ndarray, text_vectors: np.ndarray, caption_image: np.ndarray) -> dict:
    """Recall@1/5/10 and median rank both ways, and recall for every K up to the number of candidates.

    Args:
        image_vectors: (I, D) unit rows.
        text_vectors: (T, D) unit rows.
        caption_image: (T,) the image of each caption.
    """
    sims = text_vectors.astype(np.float64) @ image_vectors.astype(np.float64).T  # (T, I)
    t2i = ranks(sims, [np.array([i]) for i in caption_image])
    i2t = ranks(sims.T, [np.flatnonzero(caption_image == i) for i in range(len(image_vectors))])

    def direction(r: np.ndarray, candidates: int) -> dict:
        return {
            **{f"R@{k}": float(np.mean(r <= k)) for k in KS},
            "median_rank": float(np.median(r)),
            "queries": int(len(r)),
            "candidates": candidates,
            "curve": [float(np.mean(r <= k)) for k in range(1, candidates + 1)],
        }

    return {
        "text_to_image": direction(t2i, len(image_vectors)),
        "image_to_text": direction(i2t, len(text_vectors)),
    }


def recall_figure(metrics: dict, max_k: int = 50):
    """A matplotlib Figure of recall against K, both directions (no pyplot: safe in a server's threads)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6), dpi=100)
    ax = fig.add_subplot()
    for key, title in (("text_to_image", "text → image"), ("image_to_text", "image → text")):
        curve = metrics[key]["curve"][:max_k]
        ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=title)
    ax.set_xlabel("K (results looked at)")
    ax.set_ylabel("Recall@K")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def metrics_sentence(metrics: dict) -> str:
    """The result in one sentence (a text version of the plot)."""
    t, i = metrics["text_to_image"], metrics["image_to_text"]
    return (
        f"Text to image: R@1 {t['R@1']:.0%}, R@5 {t['R@5']:.0%}, R@10 {t['R@10']:.0%}, median rank "
        f"{t['median_rank']:g} over {t['queries']} captions. Image to text: R@1 {i['R@1']:.0%}, R@5 {i['R@5']:.0%}, "
        f"R@10 {i['R@10']:.0%}, median rank {i['median_rank']:g} over {i['queries']} images."
    )
