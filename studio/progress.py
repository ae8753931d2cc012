"""A progress callback that the UI (gr.Progress) and the CLI (tqdm) both adapt to."""

from __future__ import annotations

from collections.abc import Callable

# progress(fraction in [0, 1], what is happening now)
Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """A Progress that reports nowhere."""


def scaled(progress: Progress, start: float, end: float) -> Progress:
    """Maps a sub-step's 0..1 onto start..end of the caller's progress."""
    return lambda fraction, message: progress(start + (end - start) * fraction, message)
