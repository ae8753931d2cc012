"""Pictures from a video: a few frames spread over its length, as RGB arrays, for the picture side of a clip.

OpenCV reads the video (its FFmpeg backend, inside opencv-python-headless); frames are taken at evenly spaced times
by seeking, so a long video costs a handful of decodes, not all of its frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.errors import StudioError

DEFAULT_FRAMES = 8


class BadVideoError(StudioError):
    """A video whose pictures cannot be read."""


def sample_frames(path, count: int = DEFAULT_FRAMES) -> list[np.ndarray]:
    """Up to `count` frames at evenly spaced times of a video, as HxWx3 uint8 RGB arrays.

    Args:
        path: The video file.
        count: How many frames (fewer when the video has fewer).

    Raises:
        BadVideoError: Missing, not a video, damaged, or without pictures.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise BadVideoError(f"The video file {path} does not exist.")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise BadVideoError(f"The file {path.name} is not a video Studio can read, or it is damaged.")
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        frames = []
        if total > 0:
            for index in np.linspace(0, total - 1, num=min(count, total)).round().astype(int):
                capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
                ok, frame = capture.read()
                if ok and frame is not None:
                    frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        if not frames:  # no frame count in the container (some WebM): read from the start instead
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            while len(frames) < count:
                ok, frame = capture.read()
                if not ok:
                    break
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise BadVideoError(f"The file {path.name} has no pictures Studio can read.")
    return frames
