"""`studio bench read-text`: milliseconds per 640x480 camera frame for PP-OCR with its REAL weights (they ship in the
rapidocr-onnxruntime package, so nothing is random here), through our pipeline on ONNX Runtime, stage by stage, and
the package's own runner on the same frame and graph files in the same run (the ratio is what compares across
machines).

The frame: three printed rows on a label laid over a photo (scikit-image's coffee), blurred, noisy and JPEG-compressed
like a camera frame. PP-OCR's detector sees it at 992x736 (shorter side 736, PP-OCRv4's setting).
"""

from __future__ import annotations

import numpy as np

from studio.bench.timing import machine, ratio, time_calls
from studio.progress import Progress, no_progress

TASK = "read-text"
ROWS = ("Platform 4: trains to Leeds", "Next train 10:45, on time", "Gate closes 2 minutes before")


def bench_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """An RGB camera-like frame of `width` x `height` with three rows of printed text on a label over a photo."""
    import io

    import cv2
    import skimage.data
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    frame = Image.fromarray(cv2.resize(skimage.data.coffee(), (width, height)))
    draw = ImageDraw.Draw(frame)
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 24)
    except OSError:  # no DejaVu here: PIL's own scalable font
        font = ImageFont.load_default(24)
    draw.rectangle((60, 150, 580, 330), fill=(245, 245, 240))
    for i, row in enumerate(ROWS):
        draw.text((80, 170 + i * 50), row, font=font, fill=(20, 20, 20))
    frame = frame.filter(ImageFilter.GaussianBlur(0.7))
    noisy = np.asarray(frame, np.float32) + np.random.default_rng(0).normal(0, 5, (height, width, 3))
    encoded = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(encoded, format="JPEG", quality=80)
    return np.asarray(Image.open(encoded).convert("RGB"))


def run_bench(model: str | None = None, runs: int = 20, device: str = "cpu", progress: Progress = no_progress) -> dict:
    """Runs the benchmark and returns a JSON-able report.

    Args:
        model: The registry row (default: PP-OCRv4 from rapidocr-onnxruntime).
        runs: Timed frames per measurement.
        device: "cpu", "cuda" or "auto" for our pipeline (the package's runner is timed on the CPU, its default).
        progress: Receives fractions and sentences.
    """
    import tempfile
    from pathlib import Path

    from studio.services.base import model_name, model_revision
    from studio.tasks.read_text import ReadTextTask, character_error_rate

    progress(0.02, "Loading PP-OCR's graphs from the package…")
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as work:
        task = ReadTextTask.load(model, Path(work), device=device)
    frame = bench_frame()
    bgr = np.ascontiguousarray(frame[:, :, ::-1])
    truth = "\n".join(ROWS)
    result = task.read(bgr)
    report: dict = {
        "task": TASK,
        "model": model_name(task),
        "revision": model_revision(task),
        "weights": "real (PP-OCRv4 shipped as ONNX in the package; pinned by sha256)",
        "machine": machine(device),
        "frame": "640x480 camera-like frame: three printed rows on a label over a photo (blur, noise, JPEG)",
        "runtime": task.runtime.label,
        "read": result.text,
        "character_error_rate": round(character_error_rate(truth, result.text), 4),
    }
    progress(0.1, "Timing our pipeline on ONNX Runtime…")
    stages: dict[str, list[float]] = {"detect_ms": [], "classify_ms": [], "recognize_ms": []}

    def ours():
        read = task.read(bgr)
        for key in stages:
            stages[key].append(getattr(read, key))

    report["ours_per_frame"] = time_calls(ours, runs, warmup=2)
    report["ours_stages_p50_ms"] = {k: round(float(np.median(v[2:])), 2) for k, v in stages.items()}
    report["frames_per_s"] = round(1000 / report["ours_per_frame"]["p50_ms"], 2)
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        report["package_runner"] = "rapidocr-onnxruntime is not installed: no comparison"
    else:
        progress(0.55, "Timing the package's own runner on the same frame…")
        engine = RapidOCR()
        report["package_runner_per_frame"] = time_calls(lambda: engine(bgr), runs, warmup=2)
        report["ours_speed_vs_package_p50"] = ratio(
            report["package_runner_per_frame"]["p50_ms"], report["ours_per_frame"]["p50_ms"]
        )
    progress(1.0, "Done")
    return report
