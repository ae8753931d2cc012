"""`studio bench video`: the full-size VideoMAE-base architecture with random weights, ONNX Runtime vs PyTorch.

Reported: clips per second (batch 1, one clip = the model's 16 frames) for PyTorch eager and ONNX Runtime with the
ratio, and, measured separately, the cost of decoding a clip's window from a video file and preparing its frames
(a 640x360 MP4 at 30 frames/s written for the run).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from studio.bench.timing import build_bench_model, export_checked, ratio, report_header, scratch_folder, time_calls
from studio.progress import Progress, no_progress, scaled

TASK = "video"


def _bench_video(path: Path, seconds: float, fps: int = 30, width: int = 640, height: int = 360) -> Path:
    """Writes a video of moving shapes to decode during the benchmark."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for i in range(int(seconds * fps)):
        frame = np.full((height, width, 3), (i * 3) % 255, np.uint8)
        cv2.circle(frame, ((i * 11) % width, (i * 7) % height), 40, (0, 200, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def run_bench(model: str | None = None, runs: int = 10, device: str = "cpu", progress: Progress = no_progress) -> dict:
    """Runs the benchmark and returns a JSON-able report.

    Args:
        model: Registry hub id whose architecture to build (default: VideoMAE base).
        runs: Timed runs per measurement.
        device: "cpu", "cuda" or "auto" for both engines.
        progress: Receives fractions and sentences.
    """
    from studio.backends.onnx import OnnxBackend
    from studio.backends.pytorch import TorchBackend
    from studio.errors import StudioError
    from studio.families.video_classifier import clip_pixels, metadata
    from studio.media.image import ImagePreprocessing
    from studio.media.video import clips_of, open_video

    progress(0.02, "Building the full-size model with random weights…")
    bench = build_bench_model(TASK, model)
    if "classifier" not in bench.graphs:
        raise StudioError(f"studio bench video times action classifiers (VideoMAE, TimeSformer), not {model}.")
    arch = bench.architecture
    spec = bench.graphs["classifier"]
    module = spec.build(bench.model).eval()
    frames, size = arch["num_frames"], arch["image_size"]
    rng = np.random.default_rng(0)
    example = {"pixel_values": rng.standard_normal((1, frames, 3, size, size), dtype=np.float32)}
    report: dict = {**report_header(TASK, bench.spec.hub_id, device, bench.threads), "frames_per_clip": frames}
    with scratch_folder() as work:
        # Traced with two clips, as real exports are (see video_classifier.parity_inputs), then timed with one.
        pair = {"pixel_values": np.concatenate([example["pixel_values"], -example["pixel_values"]])}
        _, parity = export_checked(bench.graphs, {spec.name: (module, pair)}, work, scaled(progress, 0.1, 0.3))
        report["parity_max_abs_diff"] = parity[spec.name]
        engines = {
            "torch": TorchBackend(module, spec.input_names, spec.output_names, device=device),
            "onnx_fp32": OnnxBackend(work / "classifier.onnx", device=device),
        }
        report["runtime"] = {name: e.runtime.label for name, e in engines.items()}
        model_times = {}
        for i, (name, engine) in enumerate(engines.items()):
            progress(0.3 + 0.4 * i / len(engines), f"Timing one clip through the model: {name}…")
            model_times[name] = time_calls(lambda e=engine: e.run(example), runs, warmup=2)
        report["model_per_clip"] = model_times
        report["clips_per_s"] = {name: round(1000 / t["p50_ms"], 3) for name, t in model_times.items()}
        report["onnx_speedup_vs_torch_p50"] = ratio(model_times["torch"]["p50_ms"], model_times["onnx_fp32"]["p50_ms"])

        progress(0.75, "Timing decoding and frame preparation…")
        window = metadata(bench.model)["clip_seconds"]
        video = _bench_video(work / "bench.mp4", seconds=window * 4)
        prep = ImagePreprocessing(224, None, None, 224, 224, 2, 1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        decode_s, prepare_s, clips = 0.0, 0.0, 0
        started = time.perf_counter()
        for clip in clips_of(open_video(video), frames, window, window):
            t0 = time.perf_counter()
            clip_pixels(prep, clip.frames)
            prepare_s += time.perf_counter() - t0
            clips += 1
        decode_s = time.perf_counter() - started - prepare_s
        report["decode_and_prepare_per_clip"] = {
            "video": f"640x360 MP4 (mp4v), 30 frames/s, {window * 4:.1f} s, {clips} windows of {window} s",
            "decode_ms": round(1000 * decode_s / clips, 1),
            "prepare_ms": round(1000 * prepare_s / clips, 1),
        }
    progress(1.0, "Done")
    return report
