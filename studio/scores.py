"""Scores, once for every task: softmax, sigmoid, unit-length rows, and ranked labels as plain data.

Probabilities are computed in float64 (a softmax over 1,000 labels or 527 sigmoids sums and compares small numbers);
embeddings keep their dtype. Ties keep the labels' order (a stable sort), so equal scores list as the model lists
its labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along `axis`, in float64."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function, in float64 (multi-label models: AST, ViLT)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows (the last axis) scaled to unit length; all-zero rows stay zero."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - cosine similarity of two vectors (0: same direction, 2: opposite)."""
    return 1.0 - float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def top_indices(scores: np.ndarray, k: int | None = None) -> np.ndarray:
    """Indices of the `k` highest scores (all when None), highest first, ties in label order."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    return order if k is None else order[:k]


def ranked(scores: np.ndarray, labels: Sequence[str], k: int | None = None) -> list[dict]:
    """The `k` best labels as `[{"label", "score"}]`, highest first (all when `k` is None).

    Args:
        scores: One score per label.
        labels: The label names, in the scores' order.
        k: How many to keep.
    """
    return [{"label": labels[i], "score": float(scores[i])} for i in top_indices(scores, k)]
