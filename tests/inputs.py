"""Real inputs made at test time with the tools a user's files come from: speech said by espeak-ng, sounds made with
sox, audio and video converted and decoded by ffmpeg, video clips written by OpenCV from drawn frames (so their frame
counts and rates are known), and YUV4MPEG2 files of real photos for Chromium's fake camera.

Debian's espeak-ng, sox and ffmpeg are installed by `scripts/bootstrap --dev`; a missing one fails the test that
needs it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Sound: espeak-ng, sox, ffmpeg ------------------------------------------------------------------------------------


def speak_wav(path: Path, text: str = "what colour is the cup") -> Path:
    """Writes `text` said by espeak-ng as a mono 16-bit WAV at 22050 Hz (espeak-ng's own rate)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (scripts/bootstrap installs it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([espeak, "-w", str(path), "--", text], check=True, capture_output=True, timeout=30)
    return path


def sox(*args) -> None:
    """Runs Debian's sox (scripts/bootstrap --dev installs it); raises with its message when it fails."""
    path = shutil.which("sox")
    if path is None:
        raise RuntimeError("sox is not installed (scripts/bootstrap --dev installs it)")
    done = subprocess.run([path, *map(str, args)], capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode("utf-8", "replace"))


def ffmpeg(args: list[str]) -> None:
    """Runs ffmpeg quietly, overwriting its output; raises with ffmpeg's message when it fails."""
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode("utf-8", "replace"))


def ffmpeg_decode(path: Path, rate: int):
    """ffmpeg's own decoding, mono mix-down and resampling to `rate`: the float32 samples, as a reference."""
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-ac", "1", "-ar", str(rate)]
        + ["-f", "f32le", "pipe:1"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return np.frombuffer(done.stdout, np.float32)


# Video clips: drawn frames written by OpenCV ----------------------------------------------------------------------


def drawn_frames(count: int, width: int = 96, height: int = 72, seed: int = 0) -> list[np.ndarray]:
    """RGB frames of a moving coloured square on a gradient (each frame different)."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, width, dtype=np.float32)[None, :, None] * np.ones((height, 1, 3), np.float32)
    base = (base * rng.uniform(0.3, 1.0, size=3)).astype(np.uint8)
    frames = []
    for i in range(count):
        frame = base.copy()
        x = int((i * 7) % max(1, width - 20))
        y = int((i * 5) % max(1, height - 20))
        frame[y : y + 20, x : x + 20] = ((i * 40) % 256, 200, 255 - (i * 30) % 256)
        frames.append(frame)
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 10.0, fourcc: str = "mp4v") -> Path:
    """Writes RGB frames as a video with OpenCV."""
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {path.suffix} with {fourcc}"
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    return path


# Fake-camera files for Chromium's `--use-file-for-fake-video-capture`, made from real photos ----------------------


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


# Pictures of text with known words: Debian's DejaVu fonts drawn with PIL ----------------------------------------

FONTS = Path("/usr/share/fonts/truetype/dejavu")


def font_path(name: str) -> Path:
    """A DejaVu font file (Debian's fonts-dejavu-core, which scripts/bootstrap --dev installs), e.g. "DejaVuSans"."""
    path = FONTS / f"{name}.ttf"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing (scripts/bootstrap --dev installs fonts-dejavu-core)")
    return path


def text_picture(
    rows: Sequence[str],
    font: str = "DejaVuSans",
    size: int = 28,
    angle: float = 0.0,
    columns: Sequence[Sequence[str]] = (),
    background=None,
    ink=(20, 20, 20),
    paper=(250, 250, 245),
    margin: int | None = None,
    camera: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """An RGB picture of text: `rows` one under the other (and, with `columns`, more columns of rows beside them),
    in a DejaVu font of `size` pixels, turned by `angle` degrees (counter-clockwise), on paper.

    Args:
        background: An RGB photo to lay the paper on, as a label on a thing (None: the paper is the picture).
        camera: Look like a camera frame: a slight blur, noise and JPEG compression.
    """
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    typeface = ImageFont.truetype(str(font_path(font)), size)
    margin = size if margin is None else margin
    line_height = int(size * 1.5)
    blocks = [list(rows), *[list(c) for c in columns]]
    widths = [max(int(typeface.getlength(r)) for r in block) for block in blocks]
    gutter = size * 3
    width = sum(widths) + gutter * (len(blocks) - 1) + 2 * margin
    height = max(len(b) for b in blocks) * line_height + 2 * margin
    paper_image = Image.new("RGB", (width, height), paper)
    draw = ImageDraw.Draw(paper_image)
    x = margin
    for block, block_width in zip(blocks, widths):
        for i, row in enumerate(block):
            draw.text((x, margin + i * line_height), row, font=typeface, fill=ink)
        x += block_width + gutter
    picture = paper_image.rotate(angle, expand=True, resample=Image.BICUBIC, fillcolor=(128, 128, 128))
    if background is not None:
        base = Image.fromarray(np.asarray(background, dtype=np.uint8)).convert("RGB")
        scale = max(1.0, 1.4 * picture.width / base.width, 1.4 * picture.height / base.height)
        base = base.resize((int(base.width * scale), int(base.height * scale)))
        mask = Image.new("L", paper_image.size, 255).rotate(angle, expand=True)
        base.paste(picture, ((base.width - picture.width) // 2, (base.height - picture.height) // 2), mask)
        picture = base
    if camera:
        import io

        rng = np.random.default_rng(seed)
        picture = picture.filter(ImageFilter.GaussianBlur(0.8))
        noisy = np.asarray(picture, dtype=np.float32) + rng.normal(0, 6, (picture.height, picture.width, 3))
        picture = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        encoded = io.BytesIO()
        picture.save(encoded, format="JPEG", quality=70)
        picture = Image.open(io.BytesIO(encoded.getvalue())).convert("RGB")
    return np.asarray(picture)
