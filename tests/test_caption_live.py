"""Live describe: caption on a timer, speak only when the scene changed, never repeat what was just said."""

from __future__ import annotations

import numpy as np

from studio.narration import Narrator


def _vec(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)


def test_interval_gates_checks():
    narrator = Narrator(interval_s=3.0)
    assert narrator.due(now=100.0)
    assert not narrator.due(now=101.0)
    assert not narrator.due(now=102.9)
    assert narrator.due(now=103.1)


def test_only_changed_scenes_are_described_and_repeats_are_not_spoken():
    narrator = Narrator(change_threshold=0.1)
    first = _vec(0.0)
    assert narrator.changed(first)  # nothing said yet
    assert narrator.announce("a cat on a sofa", first)
    assert not narrator.changed(_vec(0.05))  # cosine distance ~0.001: same scene
    moved = _vec(1.0)  # cosine distance ~0.46
    assert narrator.changed(moved)
    assert not narrator.announce("a cat on a sofa", moved)  # new view, same words: stay quiet
    assert not narrator.changed(_vec(1.02))  # and the new view is now the reference
    assert narrator.announce("a dog on a sofa", _vec(2.0))


def test_describe_now_forces_one_description_even_if_unchanged():
    narrator = Narrator(interval_s=10.0, change_threshold=0.5)
    narrator.due(now=0.0)
    narrator.announce("a cup of coffee", _vec(0.0))
    narrator.describe_now()
    assert narrator.due(now=1.0)
    assert narrator.changed(_vec(0.0))
    assert narrator.announce("a cup of coffee", _vec(0.0))  # asked for: said again
    assert not narrator.changed(_vec(0.0))
    assert not narrator.due(now=2.0)
