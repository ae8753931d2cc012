"""Timing helpers shared by benchmarks."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


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
