"""Video files: decoding with frame timestamps from the container, and clip sampling over sliding windows.

Decoding uses OpenCV (its bundled FFmpeg reads MP4, AVI, WebM, MOV, MKV); where OpenCV cannot open a file, the ffmpeg
command decodes it instead. Every frame carries its presentation time as the container states it (OpenCV's
`CAP_PROP_POS_MSEC` after the read; on the ffmpeg path the decoder's own pts of each frame, reported by the showinfo
filter), so variable-frame-rate videos (phones, screen recordings) are windowed by real seconds, never by an assumed
frame rate. A damaged file that stops OpenCV early is read on by ffmpeg, whose decoder skips damaged frames.

Memory stays bounded however long the video is: frames are streamed, big frames (4K) are shrunk at decode time, and
a window keeps only the one frame nearest each of its sampling times (`ClipSampler`), so at most
`frames_per_clip x ceil(window / stride)` frames are held.
"""

from __future__ import annotations

import functools
import json
import math
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.errors import StudioError

# Frames whose shorter side is larger than this are shrunk when decoded (the models look at 224 pixels; a 4K frame is
# 25 MB and a window holds tens of them).
MAX_SHORT_SIDE = 480
MAX_FILE_BYTES = 20 * 1024**3
VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".ogv", ".wmv", ".y4m")


class BadVideoError(StudioError):
    """A video cannot be read or has too little in it to classify."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as far as the container says before decoding.

    Attributes:
        path: The file.
        width: Frame width in pixels.
        height: Frame height in pixels.
        frame_count: Frames the container announces (may be 0 or approximate for some containers).
        duration_s: Length in seconds the container announces (0 when unknown).
        reader: "opencv" or "ffmpeg": which decoder reads it.
    """

    path: Path
    width: int
    height: int
    frame_count: int
    duration_s: float
    reader: str


def open_video(path: Path | str, reader: str = "auto") -> VideoInfo:
    """Checks that a file is a readable video and says what it holds.

    Args:
        path: The video file.
        reader: "auto" (OpenCV, else ffmpeg), "opencv" or "ffmpeg".

    Raises:
        BadVideoError: Missing, empty, damaged, not a video, or a picture format this computer cannot decode.
    """
    path = Path(path)
    if not path.is_file():
        raise BadVideoError(f"The video file {path.name} was not found.")
    size = path.stat().st_size
    if size == 0:
        raise BadVideoError(f"The file {path.name} is empty (0 bytes), so there is no video to look at.")
    if size > MAX_FILE_BYTES:
        raise BadVideoError(f"The file {path.name} is larger than 20 GB; cut it into shorter parts first.")
    if reader in ("auto", "opencv"):
        info = _opencv_info(path)
        if info is not None:
            return info
        if reader == "opencv":
            raise BadVideoError(f"{path.name} cannot be read as a video.")
    return _ffmpeg_info(path)


@dataclass
class DecodeReport:
    """What decoding a video met, filled in while frames stream.

    Attributes:
        frames: Frames given so far.
        last_s: Presentation time of the newest frame.
        gap_s: Seconds between the last two frames.
        notices: Sentences for the user about parts that could not be read.
    """

    frames: int = 0
    last_s: float = 0.0
    gap_s: float = 0.0
    notices: list[str] = field(default_factory=list)

    def add(self, t: float) -> None:
        """Counts a frame shown at `t` seconds."""
        if self.frames:
            self.gap_s = t - self.last_s
        self.frames, self.last_s = self.frames + 1, t

    def cut_short(self, info: VideoInfo) -> bool:
        """Whether decoding ended well before the length the container announces (damaged or cut-off file)."""
        if not info.duration_s or not self.frames:
            return False
        return self.last_s + self.gap_s < info.duration_s - max(0.5, 0.05 * info.duration_s)


def iter_frames(
    info: VideoInfo, cancelled: Callable[[], bool] = lambda: False, report: DecodeReport | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """Yields (seconds, RGB uint8 frame) in presentation order, shrunk to `MAX_SHORT_SIDE` where bigger.

    OpenCV stops at the first frame it cannot decode; when that leaves the video well short of its announced length,
    the ffmpeg command (whose decoder skips damaged frames and goes on) reads the rest. A file that still ends early
    is read as far as it goes, and `report` says so.

    Args:
        info: From `open_video`.
        cancelled: Polled between frames; decoding stops when it returns True.
        report: Filled in with the frames read and sentences about damaged parts.
    """
    report = report if report is not None else DecodeReport()
    readers = [_opencv_frames, _ffmpeg_frames] if info.reader == "opencv" else [_ffmpeg_frames]
    for read in readers:
        resume_after = report.last_s if report.frames else None
        if resume_after is not None and shutil.which("ffmpeg") is None:
            break
        frames = read(info)
        try:
            for t, frame in frames:
                if cancelled():
                    return
                if resume_after is not None:
                    if t <= resume_after + 1e-6:
                        continue  # the part OpenCV read already
                    if t - resume_after > max(1.0, 3 * report.gap_s):
                        report.notices.append(
                            f"Part of {info.path.name} is damaged: the pictures between {clock(resume_after)} and "
                            f"{clock(t)} could not be read and were skipped."
                        )
                    resume_after = None
                report.add(t)
                yield t, frame
        finally:
            frames.close()
        if not report.cut_short(info):
            break
    if report.cut_short(info) and not cancelled():
        report.notices.append(
            f"Only the first {clock(report.last_s + report.gap_s)} of the {clock(info.duration_s)} that "
            f"{info.path.name} announces could be read; the rest seems damaged or cut off, so the results cover that "
            "part only."
        )


def clock(seconds: float) -> str:
    """Seconds as m:ss.s (h:mm:ss past an hour), the way the timeline shows times."""
    minutes, secs = divmod(max(float(seconds), 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"


def _shrink(frame: np.ndarray) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    short = min(h, w)
    if short <= MAX_SHORT_SIDE:
        return frame
    scale = MAX_SHORT_SIDE / short
    return cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def _cv2():
    """OpenCV, with its own and its FFmpeg's log lines silenced: problems reach the user as sentences instead.

    A developer who wants them sets OPENCV_LOG_LEVEL / OPENCV_FFMPEG_LOGLEVEL in the environment.
    """
    import os

    import cv2

    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # read when OpenCV first opens a video
    return cv2


def _opencv_info(path: Path) -> VideoInfo | None:
    cv2 = _cv2()
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None
        ok, frame = cap.read()
        if not ok or frame is None:
            return None
        count = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        fps = cap.get(cv2.CAP_PROP_FPS)
        duration = count / fps if fps and fps > 0 and count else 0.0
        return VideoInfo(path, frame.shape[1], frame.shape[0], count, duration, "opencv")
    finally:
        cap.release()


def _opencv_frames(info: VideoInfo) -> Iterator[tuple[float, np.ndarray]]:
    cv2 = _cv2()
    cap = cv2.VideoCapture(str(info.path))
    try:
        last = -1.0
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            # The presentation time of the frame just read, from the container's timestamps.
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if t <= last:  # a container without timestamps for some frames: keep time moving forward
                t = last + 1e-3
            last = t
            yield t, cv2.cvtColor(_shrink(frame), cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BadVideoError(
            f"This video needs {name} to be read and {name} is not installed (on Debian or Ubuntu: "
            "sudo apt-get install ffmpeg)."
        )
    return found


def _run(command: list[str], timeout: float = 120) -> subprocess.CompletedProcess | None:
    """Runs a probe command; None when it did not finish in time (a file that stalls the demuxer)."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def _ffprobe(path: Path, *args: str) -> dict:
    out = _run([_tool("ffprobe"), "-v", "error", "-of", "json", *args, str(path)])
    if out is None or out.returncode != 0:
        return {}
    try:
        return json.loads(out.stdout or "{}")
    except json.JSONDecodeError:
        return {}


def _ffmpeg_info(path: Path) -> VideoInfo:
    probe = _ffprobe(path, "-show_streams", "-show_format", "-select_streams", "v:0")
    streams = probe.get("streams") or []
    if not streams:
        if probe.get("format"):
            raise BadVideoError(f"{path.name} has no picture track (it may be a sound file); give a video with images.")
        raise BadVideoError(f"{path.name} cannot be read as a video: the file is damaged or is not a video.")
    stream = streams[0]
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    codec = stream.get("codec_name") or "unknown"
    if codec in ("unknown", "none"):  # the container names a codec FFmpeg has never heard of: show its tag
        codec = f"an unknown format, “{stream.get('codec_tag_string') or '?'}”"
    test = _run([_tool("ffmpeg"), "-v", "error", "-i", str(path), "-map", "0:v:0", "-frames:v", "1", "-f", "null", "-"])
    if test is None or test.returncode != 0 or not width or not height:
        raise BadVideoError(
            f"The pictures in {path.name} are stored in a format this computer cannot decode ({codec}), or the file "
            "is damaged; convert it to MP4 (H.264) and try again."
        )
    duration = float(probe.get("format", {}).get("duration") or stream.get("duration") or 0.0)
    count = int(stream.get("nb_frames") or 0)
    return VideoInfo(path, width, height, count, duration, "ffmpeg")


_PTS_TIME = re.compile(r"\bpts_time:\s*(-?[0-9.]+(?:e-?[0-9]+)?)")


@functools.cache
def _showinfo_filter() -> str:
    """FFmpeg's per-frame report filter, without the pixel checksums where this FFmpeg can leave them out."""
    out = _run([_tool("ffmpeg"), "-hide_banner", "-h", "filter=showinfo"], timeout=30)
    return "showinfo=checksum=0" if out is not None and "checksum" in out.stdout else "showinfo"


def _ffmpeg_frames(info: VideoInfo) -> Iterator[tuple[float, np.ndarray]]:
    # Presentation times come from the decoder itself: the showinfo filter reports each frame's pts on stderr as the
    # frame passes, in the order the frames reach stdout (frames a damaged file drops are dropped from both).
    scale = min(1.0, MAX_SHORT_SIDE / min(info.width, info.height))
    w, h = info.width, info.height
    if scale < 1:  # even sizes: what ffmpeg's rgb24 scaler expects
        w, h = max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)
    filters = ([f"scale={w}:{h}:flags=area"] if scale < 1 else []) + [_showinfo_filter()]
    command = [_tool("ffmpeg"), "-hide_banner", "-nostats", "-nostdin", "-v", "info", "-i", str(info.path)]
    command += ["-map", "0:v:0", "-fps_mode", "passthrough", "-vf", ",".join(filters)]
    command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    times: queue.Queue[float | None] = queue.Queue()

    def read_times() -> None:
        for line in process.stderr:
            if b"showinfo" in line:
                found = _PTS_TIME.search(line.decode("utf-8", "replace"))
                if found:
                    times.put(float(found.group(1)))
        times.put(None)

    reader = threading.Thread(target=read_times, name="ffmpeg-frame-times", daemon=True)
    reader.start()
    size = w * h * 3
    try:
        last, gap = None, 0.0
        while True:
            data = process.stdout.read(size)
            if len(data) < size:
                return
            try:  # showinfo reports a frame before it is written, so its time is (nearly) always there already
                t = times.get(timeout=10)
            except queue.Empty:
                t = None
            if t is None:  # no timestamp for this frame (NOPTS): keep the spacing of the frames before it
                t = (last + (gap or 1e-3)) if last is not None else 0.0
            elif last is not None and t <= last:
                t = last + 1e-3
            if last is not None:
                gap = t - last
            last = t
            yield float(t), np.frombuffer(data, np.uint8).reshape(h, w, 3)
    finally:
        process.kill()
        process.wait()
        reader.join(timeout=5)
        process.stdout.close()
        process.stderr.close()


# Sampling clips from windows ------------------------------------------------------------------------------------------


@dataclass
class Clip:
    """The frames a model sees for one window of the video.

    Attributes:
        start_s: Window start (seconds from the first frame).
        end_s: Window end.
        frames: RGB uint8 frames, one per sampling time, in order.
        times: The presentation time of each chosen frame.
    """

    start_s: float
    end_s: float
    frames: list[np.ndarray]
    times: list[float]


def sampling_times(start: float, end: float, n: int) -> np.ndarray:
    """`n` times spread evenly over [start, end]: the middle of each of n equal parts (uniform sampling)."""
    return start + (np.arange(n) + 0.5) * (end - start) / n


class _OpenWindow:
    def __init__(self, start: float, end: float, n: int) -> None:
        self.start, self.end = start, end
        self.targets = sampling_times(start, end, n)
        self.best: list[tuple[float, float, np.ndarray] | None] = [None] * n  # (distance, time, frame)

    def offer(self, t: float, frame: np.ndarray) -> None:
        for i, target in enumerate(self.targets):
            d = abs(t - target)
            if self.best[i] is None or d < self.best[i][0]:
                self.best[i] = (d, t, frame)

    def clip(self) -> Clip:
        chosen = [b for b in self.best if b is not None]
        return Clip(self.start, self.end, [b[2] for b in chosen], [b[1] for b in chosen])


class ClipSampler:
    """Turns a stream of timed frames into clips of `frames_per_clip` frames, one per window.

    Windows are `window_s` long and start every `stride_s` seconds from the first frame; a window is complete once a
    frame at or past its end has been seen. A video shorter than one window gives one clip over all of it. Each
    sampling time takes the nearest frame, so a clip's frames are evenly spaced in real time whatever the frame rate.
    """

    def __init__(self, frames_per_clip: int, window_s: float, stride_s: float) -> None:
        if window_s <= 0 or stride_s <= 0:
            raise BadVideoError("The window and the step between windows must be longer than 0 seconds.")
        self.n, self.window, self.stride = frames_per_clip, float(window_s), float(stride_s)
        self.open: list[_OpenWindow] = []
        self.next_start = 0.0
        self.first: float | None = None
        self.last_t = 0.0
        self.frames_seen = 0
        self.last_gap = 0.0
        self.emitted = 0
        # Until the first window completes, a thinned copy of the frames seen, for the clip of a video shorter than
        # one window: every frame up to 4 per sampling time, then every other one (memory stays bounded).
        self._early: list[tuple[float, np.ndarray]] = []
        self._early_step = 1

    def push(self, t: float, frame: np.ndarray) -> list[Clip]:
        """Adds one frame; returns the clips completed by it."""
        if self.first is None:
            self.first = t
        t -= self.first
        if self.frames_seen:
            self.last_gap = t - self.last_t
        self.last_t, self.frames_seen = t, self.frames_seen + 1
        while self.next_start <= t:
            self.open.append(_OpenWindow(self.next_start, self.next_start + self.window, self.n))
            self.next_start += self.stride
        done = [w for w in self.open if t >= w.end]
        self.open = [w for w in self.open if t < w.end]
        for w in self.open:
            w.offer(t, frame)
        if self.emitted == 0 and not done and (self.frames_seen - 1) % self._early_step == 0:
            self._early.append((t, frame))
            if len(self._early) > 4 * self.n:
                self._early, self._early_step = self._early[::2], self._early_step * 2
        for w in done:
            w.offer(t, frame)  # the frame at the end may be the nearest to the last sampling time
        self.emitted += len(done)
        return [w.clip() for w in done]

    def finish(self) -> list[Clip]:
        """Clips still owed at the end of the video.

        The last frame is shown until the video ends one frame later, so windows ending by then are complete; a
        video shorter than one window gives one clip over all of it.
        """
        if self.frames_seen == 0:
            return []
        video_end = self.last_t + self.last_gap + 1e-6
        complete = [w.clip() for w in self.open if w.end <= video_end]
        if self.emitted or complete:
            self.emitted += len(complete)
            self.open = []
            return complete
        whole = _OpenWindow(0.0, self.last_t, self.n)
        for t, frame in self._early:
            whole.offer(t, frame)
        return [whole.clip()]


def clips_of(
    info: VideoInfo,
    frames_per_clip: int,
    window_s: float,
    stride_s: float,
    cancelled: Callable[[], bool] = lambda: False,
    report: DecodeReport | None = None,
) -> Iterator[Clip]:
    """Streams a video's clips, one per window (see `ClipSampler`).

    Args:
        info: From `open_video`.
        frames_per_clip: Frames the model takes per clip.
        window_s: Seconds per window.
        stride_s: Seconds between window starts.
        cancelled: Polled between frames; no more clips once it returns True.
        report: Filled in by decoding (frames read, damaged parts).

    Raises:
        BadVideoError: The video has fewer than two frames (no movement to recognize).
    """
    sampler = ClipSampler(frames_per_clip, window_s, stride_s)
    for t, frame in iter_frames(info, cancelled, report):
        yield from sampler.push(t, frame)
    if sampler.frames_seen < 2 and not cancelled():
        raise BadVideoError(
            f"{info.path.name} holds {'only one picture' if sampler.frames_seen == 1 else 'no pictures'}, so there "
            "is no movement to recognize an action from; give a video at least a second long."
        )
    yield from sampler.finish()


def window_count(duration_s: float, window_s: float, stride_s: float) -> int:
    """How many windows a video of this length gives (for progress), at least 1."""
    if duration_s <= window_s:
        return 1
    return int(math.floor((duration_s - window_s) / stride_s)) + 1


def spread_frames(path: Path | str, count: int = 8) -> list[np.ndarray]:
    """About `count` RGB frames spread evenly over a whole video: the picture side of a clip (Sound & scene tab).

    One window over the whole video (`ClipSampler` with an endless window), so memory stays bounded however long it is.

    Raises:
        BadVideoError: Missing, empty, damaged, not a video, or without a picture.
    """
    info = open_video(path)
    sampler = ClipSampler(count, window_s=math.inf, stride_s=math.inf)
    for t, frame in iter_frames(info):
        sampler.push(t, frame)
    clips = sampler.finish()
    if not clips or not clips[0].frames:
        raise BadVideoError(f"{info.path.name} holds no pictures Studio can read.")
    return clips[0].frames


def frame_at(path: Path | str, seconds: float) -> np.ndarray:
    """The RGB frame shown at `seconds` (the first frame at or after it, else the last one), shrunk like
    `iter_frames`'s: a search result's picture of a video moment.

    OpenCV seeks close to the moment first; other videos are read from the start.

    Raises:
        BadVideoError: The video cannot be read.
    """
    info = open_video(path)
    if info.reader == "opencv":
        cv2 = _cv2()
        cap = cv2.VideoCapture(str(info.path))
        try:
            cap.set(cv2.CAP_PROP_POS_MSEC, max(0.0, seconds - 1.0) * 1000)
            last = None
            while True:
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                last = frame
                if cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 + 1e-6 >= seconds:
                    break
            if last is not None:
                return cv2.cvtColor(_shrink(last), cv2.COLOR_BGR2RGB)
        finally:
            cap.release()
    last = None
    for t, frame in iter_frames(info):
        last = frame
        if t + 1e-6 >= seconds:
            break
    if last is None:
        raise BadVideoError(f"{info.path.name} has no picture that could be decoded.")
    return last


def cut_excerpt(path: Path | str, start_s: float, seconds: float, out: Path, sound_only: bool = False) -> Path:
    """A short excerpt of a video (MP4, H.264 + AAC) or a sound (WAV) from `start_s`, re-encoded so that it starts
    exactly there: what the Search tab plays for "play from this moment".

    Raises:
        BadVideoError: ffmpeg is missing or cannot cut the file.
    """
    from studio.atomic import replaced_on_success

    out = Path(out)
    codecs = ["-vn", "-c:a", "pcm_s16le", "-f", "wav"] if sound_only else [
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
        "-c:a", "aac", "-f", "mp4", "-movflags", "+faststart",
    ]  # fmt: skip
    with replaced_on_success(out) as tmp:
        done = _run(
            [_tool("ffmpeg"), "-v", "error", "-y", "-ss", f"{max(0.0, start_s):.3f}", "-i", str(path), "-t",
             f"{seconds:.3f}", *codecs, str(tmp)],
            timeout=120,
        )  # fmt: skip
        if done is None or done.returncode != 0 or not tmp.stat().st_size:
            raise BadVideoError(f"The moment at {clock(start_s)} of {Path(path).name} could not be cut out to play.")
    return out
