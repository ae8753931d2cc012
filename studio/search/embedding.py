"""What goes into a search index, and its vectors: a folder's files by kind, photos and video frames through the
zero-shot model's (CLIP's) image encoder, sounds window by window through CLAP's audio encoder, typed text through
the matching text encoder. Every vector is unit length.

A video contributes one frame every `frame_every_s` seconds (the first frame at or after each multiple, by its
presentation time), and a sound one vector per model window (10 s for CLAP), silent windows left out; each keeps its
time so a result can point at the moment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.export.manifest import sha256_file
from studio.media.audio import SOUND_SUFFIXES
from studio.media.image import IMAGE_SUFFIXES
from studio.media.video import VIDEO_SUFFIXES
from studio.scores import normalize

BATCH = 32  # pictures per image-encoder call (the batch the benchmark measures)
DEFAULT_FRAME_EVERY_S = 2.0
HOLDS_PICTURES = "photos and videos"
HOLDS_SOUNDS = "sounds"


@dataclass
class FolderFile:
    """A file of the folder being indexed: its path relative to the folder, kind and content hash."""

    file: str
    path: Path
    kind: str
    sha256: str


@dataclass
class FolderScan:
    """A folder's files the index can hold, and the ones it cannot (file name -> why)."""

    files: list[FolderFile] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def kind_of(path: Path, holds: str) -> str | None:
    """ "photo", "video" or "sound" by the file's suffix, for an index that holds `holds`; None when it cannot."""
    suffix = path.suffix.lower()
    if holds == HOLDS_SOUNDS:
        return "sound" if suffix in SOUND_SUFFIXES else None
    if suffix in IMAGE_SUFFIXES:
        return "photo"
    return "video" if suffix in VIDEO_SUFFIXES else None


def scan_folder(folder: Path, holds: str, should_stop: Callable[[], bool] = lambda: False) -> FolderScan:
    """The folder's files (sub-folders included, hidden ones left out), each with its kind and sha256.

    Args:
        folder: A folder that exists.
        holds: HOLDS_PICTURES or HOLDS_SOUNDS.
        should_stop: Polled between files.
    """
    scan = FolderScan()
    what = "sounds" if holds == HOLDS_SOUNDS else "photos or videos"
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if should_stop():
            break
        kind = kind_of(path, holds)
        if kind is None:
            scan.skipped[rel.as_posix()] = f"not {what}"
            continue
        try:
            digest = sha256_file(path)
        except OSError:
            scan.skipped[rel.as_posix()] = "not readable"
            continue
        scan.files.append(FolderFile(rel.as_posix(), path, kind, digest))
    return scan


class ImageTextEmbedder:
    """Photos, video frames and texts as unit vectors, through a loaded `studio.tasks.zero_shot.ZeroShotTask`."""

    holds = HOLDS_PICTURES

    def __init__(self, task) -> None:
        self.task = task

    def pictures(self, pictures: list) -> np.ndarray:
        """(N, D) unit vectors of decoded pictures (PIL images or RGB arrays), `BATCH` at a time."""
        out = [
            self.task.forward(self.task.preprocessing.batch(pictures[i : i + BATCH]))
            for i in range(0, len(pictures), BATCH)
        ]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)

    def texts(self, texts: list[str]) -> np.ndarray:
        """(N, D) unit vectors of texts, as typed (no prompt template around them)."""
        return self.task.embed_texts(texts)

    def file_items(self, file: FolderFile, frame_every_s: float, report: list[str]) -> Iterator[tuple[dict, object]]:
        """(item, picture) pairs of one file: a photo once, a video's frames every `frame_every_s` seconds.

        Raises:
            BadImageError, BadVideoError: The file cannot be read (the caller skips it and says why).
        """
        from studio.media.image import load_image

        base = {"file": file.file, "sha256": file.sha256, "kind": file.kind}
        if file.kind == "photo":
            yield {**base, "time_s": None}, load_image(file.path)
            return
        for t, frame in video_frames(file.path, frame_every_s, report):
            yield {**base, "time_s": round(float(t), 3)}, load_image(frame)


class SoundTextEmbedder:
    """Sounds (window by window) and texts as unit vectors, through a loaded CLAP
    `studio.tasks.sound_events.SoundEventsTask`."""

    holds = HOLDS_SOUNDS

    def __init__(self, task) -> None:
        self.task = task

    def pictures(self, windows: list) -> np.ndarray:
        """(N, D) unit vectors of sound windows (sample arrays at the model's rate)."""
        out = [
            self.task.forward(self.task.preprocess(windows[i : i + BATCH]))[1] for i in range(0, len(windows), BATCH)
        ]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)

    def texts(self, texts: list[str]) -> np.ndarray:
        return self.task.embed_texts(texts)

    def file_items(self, file: FolderFile, frame_every_s: float, report: list[str]) -> Iterator[tuple[dict, object]]:
        """(item, window samples) pairs of one sound file, one per model window, silent windows left out.

        Raises:
            BadAudioError: The file cannot be listened to.
        """
        from studio.media.audio import is_silent, sound_windows

        base = {"file": file.file, "sha256": file.sha256, "kind": file.kind}
        for window in sound_windows(file.path, self.task.rate, self.task.window_samples):
            if not is_silent(window.waveform):
                yield {**base, "time_s": round(window.start_s, 3)}, window.samples


def video_frames(path: Path, every_s: float, report: list[str]) -> Iterator[tuple[float, np.ndarray]]:
    """A video's frames every `every_s` seconds: the first frame at or after 0, every_s, 2*every_s, ...

    Args:
        path: The video.
        every_s: Seconds between the frames kept.
        report: Sentences about damaged parts are appended here.

    Raises:
        BadVideoError: Not a readable video, or no frame could be decoded.
    """
    from studio.media.video import BadVideoError, DecodeReport, iter_frames, open_video

    info = open_video(path)
    decode = DecodeReport()
    next_t = 0.0
    kept = 0
    for t, frame in iter_frames(info, report=decode):
        if t + 1e-6 >= next_t:
            kept += 1
            yield t, frame
            next_t = (np.floor(t / every_s + 1e-9) + 1) * every_s
    report.extend(decode.notices)
    if not kept:
        raise BadVideoError(f"{path.name} has no picture that could be decoded, so it has no moments to find.")


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, float32."""
    return normalize(np.asarray(vectors, np.float32)).astype(np.float32)
