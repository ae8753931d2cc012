"""What every benchmark shares: timing, the machine it ran on, the full-size model, exporting its graphs."""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.progress import Progress, no_progress

RANDOM_WEIGHTS = "random (full-size architecture built from its config; cost does not depend on weight values)"
# The CPU features that decide how fast fp32 and int8 matrix products run: reported with every benchmark, since the
# machines benchmarks run on differ (AVX2 only, or AVX-512 with VNNI and BF16, or AMX).
_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def time_calls(fn: Callable[[], object], runs: int, warmup: int = 3) -> dict:
    """Calls `fn` `warmup` times untimed, then `runs` times timed.

    Returns:
        {"p50_ms", "p95_ms", "mean_ms", "runs"}.
    """
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    arr = np.asarray(samples)
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "mean_ms": round(float(arr.mean()), 2),
        "runs": runs,
    }


def machine(device: str, threads: int | None = None) -> dict:
    """The machine a benchmark ran on: CPU model, its relevant instruction-set flags, cores used, device asked for."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:  # not Linux: the model name from platform is what there is
        pass
    return {
        "cpu": name,
        "cpu_flags": [f for f in _CPU_FLAGS if f in flags],
        "cores": threads or os.cpu_count() or 1,
        "device": device,
    }


def report_header(task: str, model: str, device: str, threads: int) -> dict:
    """The first fields of every benchmark report: what was measured, with what weights, on what machine."""
    return {"task": task, "model": model, "weights": RANDOM_WEIGHTS, "machine": machine(device, threads)}


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A temporary folder for a benchmark's graphs, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as work:
        yield Path(work)


def export_checked(
    graphs: dict, examples: dict[str, tuple], work: Path, progress: Progress = no_progress
) -> tuple[dict[str, Path], dict[str, float]]:
    """Exports graphs to ONNX in `work` and checks each against its PyTorch module, as real exports are.

    Args:
        graphs: GraphSpecs by name (a family's graphs).
        examples: (PyTorch module, example inputs) by the name of each graph to export.
        work: A scratch folder.
        progress: Receives fractions and sentences.

    Returns:
        The graphs' paths and their largest differences from PyTorch, by graph name.
    """
    from studio.export.exporter import check_parity, export_graph

    paths, parity = {}, {}
    for i, (name, (module, example)) in enumerate(examples.items()):
        progress(i / len(examples), f"Exporting the {name.replace('_', ' ')} to ONNX…")
        paths[name] = Path(work) / f"{name}.onnx"
        export_graph(module, graphs[name], example, paths[name])
        parity[name] = check_parity(module, graphs[name], example, paths[name])
    return paths, parity


def ratio(slow: float, fast: float) -> float:
    """How many times faster `fast` is than `slow` (both durations)."""
    return round(slow / fast, 2) if fast > 0 else float("inf")


@dataclass
class BenchModel:
    """A registry row's full-size architecture with random weights, and what a benchmark needs around it."""

    spec: object
    family: object
    model: object
    graphs: dict
    architecture: dict
    threads: int


def build_bench_model(task: str, model: str | None) -> BenchModel:
    """Builds a task's registry model (default or named) at full size with random weights, using every core.

    Raises:
        StudioError: `model` is not one of the task's registry rows.
    """
    import torch

    from studio.errors import StudioError
    from studio.families import get_family, quiet_transformers
    from studio.registry import REGISTRY

    quiet_transformers()
    spec = REGISTRY.find(task, model) if model else REGISTRY.default_for(task)
    if spec is None:
        raise StudioError(f"{model} is not a {task} model in the registry; `studio models` lists them.")
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    family = get_family(spec.family)
    architecture = dict(spec.architecture)
    return BenchModel(
        spec, family, family.random_model(architecture), {g.name: g for g in family.GRAPHS}, architecture, threads
    )


def image_embedding_throughput(
    bench: BenchModel, batch: int, runs: int, device: str, work: Path, progress: Progress = no_progress
) -> dict:
    """Exports a two-tower model's image encoder (checked against PyTorch) and times PyTorch and ONNX Runtime on a
    batch of random pictures.

    Returns:
        {"encoder" (the PyTorch module), "pixels" (the batch), "parity", "runtime" (labels by engine),
        "images_per_s" ({"torch", "onnx_fp32"}), "speedup_onnx_vs_torch"}
    """
    from studio.backends.onnx import OnnxBackend
    from studio.backends.pytorch import TorchBackend

    spec = bench.graphs["image_encoder"]
    size = bench.architecture["vision_config"]["image_size"]
    encoder = spec.build(bench.model).eval()
    pixels = np.random.default_rng(0).standard_normal((batch, 3, size, size), dtype=np.float32)
    _, parity = export_checked(bench.graphs, {spec.name: (encoder, {"pixel_values": pixels[:2]})}, work, progress)
    engines = {
        "torch": TorchBackend(encoder, ("pixel_values",), ("image_embeds",), device=device),
        "onnx_fp32": OnnxBackend(work / "image_encoder.onnx", device=device),
    }
    throughput = {}
    for i, (name, engine) in enumerate(engines.items()):
        progress(0.5 + 0.5 * i / len(engines), f"Timing image embedding: {name}…")
        t = time_calls(lambda e=engine: e.run({"pixel_values": pixels}), max(3, runs), warmup=1)
        throughput[name] = round(batch * 1000 / t["p50_ms"], 2)
    return {
        "encoder": encoder,
        "pixels": pixels,
        "parity": parity,
        "runtime": {name: e.runtime.label for name, e in engines.items()},
        "images_per_s": throughput,
        "speedup_onnx_vs_torch": round(throughput["onnx_fp32"] / throughput["torch"], 2),
    }
