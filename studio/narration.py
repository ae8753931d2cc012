"""Live describe mode: caption every few seconds, but speak only when the scene has changed, and never repeat the
caption just spoken. Nothing here knows about gradio or models: the UI passes embeddings, captions and the clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from studio.scores import cosine_distance


@dataclass
class Narrator:
    """Decides, for one viewer, when a new description is due and whether it is worth saying.

    Attributes:
        interval_s: Least time between two captions (the camera is checked this often).
        change_threshold: Cosine distance between the image summary vectors of the last announced scene and the
            current one above which the scene counts as changed (0 = always, 2 = never).
    """

    interval_s: float = 3.0
    change_threshold: float = 0.15
    _last_check: float = field(default=-1e9, repr=False)
    _announced_embedding: np.ndarray | None = field(default=None, repr=False)
    _last_spoken: str | None = field(default=None, repr=False)
    _forced: bool = field(default=False, repr=False)

    def due(self, now: float | None = None) -> bool:
        """Whether it is time to look at the camera again (always, right after `describe_now`)."""
        now = time.monotonic() if now is None else now
        if self._forced or now - self._last_check >= self.interval_s:
            self._last_check = now
            return True
        return False

    def distance(self, embedding: np.ndarray) -> float:
        """Cosine distance from the last announced scene (2.0 before anything was announced)."""
        if self._announced_embedding is None:
            return 2.0
        return cosine_distance(self._announced_embedding, embedding)

    def reference(self) -> np.ndarray | None:
        """The scene to compare a new look with: the last announced one (None when nothing was announced yet or a
        description was asked for, so anything counts as changed)."""
        return None if self._forced else self._announced_embedding

    def changed(self, embedding: np.ndarray) -> bool:
        """Whether the scene differs enough from the last announced one to describe it (or a description was asked)."""
        return self._forced or self.distance(embedding) > self.change_threshold

    def announce(self, caption: str, embedding: np.ndarray) -> bool:
        """Records a new caption; returns whether to say it (not when it repeats the caption just spoken).

        The scene is remembered either way, so a scene that looks new but reads the same is not re-described.
        """
        forced, self._forced = self._forced, False
        self._announced_embedding = embedding
        if caption == self._last_spoken and not forced:
            return False
        self._last_spoken = caption
        return True

    def describe_now(self) -> None:
        """The user asked: describe the next frame and say it, even if nothing changed."""
        self._forced = True
