"""Timing helpers shared by benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable

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
