"""Fake-camera video files for Chromium's `--use-file-for-fake-video-capture`, made from real photos."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def letterbox(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scales an RGB photo to fit width x height without distortion and pads the rest with black."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA)
    out = np.zeros((height, width, 3), dtype=np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out


def write_y4m(
    path: Path,
    photos: Sequence[np.ndarray],
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    seconds_per_photo: float = 1.0,
) -> Path:
    """Writes a YUV4MPEG2 (4:2:0) video that shows each RGB photo for `seconds_per_photo`, in order.

    Chromium plays such a file as its fake camera and loops it when it ends.
    """
    import cv2

    if width % 2 or height % 2:
        raise ValueError("4:2:0 needs an even width and height")
    frames_per_photo = max(1, round(fps * seconds_per_photo))
    path = Path(path)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for rgb in photos:
            frame = letterbox(np.asarray(rgb, dtype=np.uint8)[..., :3], width, height)
            # I420: the Y plane, then the U and V planes at half resolution, which is y4m's 4:2:0 frame layout.
            i420 = cv2.cvtColor(np.ascontiguousarray(frame[..., ::-1]), cv2.COLOR_BGR2YUV_I420)
            assert i420.shape == (height * 3 // 2, width)
            data = i420.tobytes()
            for _ in range(frames_per_photo):
                f.write(b"FRAME\n")
                f.write(data)
    return path
