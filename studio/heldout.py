"""Held-out checks, once for every trainer (custom classifiers, fusion heads): the stratified split and accuracy."""

from __future__ import annotations

import numpy as np


def stratified_split(labels, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per class, about `fraction` of its examples (at least one, never all) held out, chosen at random.

    Args:
        labels: Class index of each example (0..C-1).
        fraction: The share of each class to hold out.
        seed: The random choice is fixed by it, so a held-out set is the same every time it is measured.

    Returns:
        (train indices, held-out indices), each sorted; held-out is empty when some class has fewer than two examples
        (one to learn from and one to check on), and then every example is for training.
    """
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels) if labels.size else np.zeros(0, np.int64)
    if counts.size == 0 or counts.min() < 2:
        return np.arange(len(labels)), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in range(counts.size):
        members = rng.permutation(np.flatnonzero(labels == c))
        k = min(len(members) - 1, max(1, round(len(members) * fraction)))
        test.extend(members[:k])
        train.extend(members[k:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


def short_classes(labels, minimum: int = 2) -> list[int]:
    """The classes (of 0..max label) with fewer than `minimum` examples."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64)) if len(labels) else np.zeros(0, np.int64)
    return [int(c) for c in np.flatnonzero(counts < minimum)]


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The share of rows whose most probable class is the label."""
    return float((np.argmax(probabilities, axis=1) == np.asarray(labels)).mean())
