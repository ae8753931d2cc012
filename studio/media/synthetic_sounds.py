"""Sounds made from formulas: what exports are checked against PyTorch on, and what benchmarks listen to.

They are deterministic (seeded noise), reach every part of the spectrum a sound model looks at, and need no file.
"""

from __future__ import annotations

import numpy as np


def synthetic_sounds(rate: int, seconds: float) -> list[np.ndarray]:
    """Four different sounds of `seconds` at `rate`, float32 in [-1, 1].

    A tone with harmonics and vibrato, a rising chirp, bursts of noise, and a train of clicks over a hum.
    """
    n = max(1, int(round(rate * seconds)))
    t = np.arange(n) / rate
    rng = np.random.default_rng(0)
    tone = sum(np.sin(2 * np.pi * 220 * k * t + 3 * np.sin(2 * np.pi * 5 * t)) / k for k in range(1, 6))
    chirp = np.sin(2 * np.pi * 100 * ((60.0 ** (t / max(seconds, 1e-3))) - 1) * max(seconds, 1e-3) / np.log(60.0))
    bursts = rng.standard_normal(n) * (np.sin(2 * np.pi * 2 * t) > 0.3)
    clicks = 0.2 * np.sin(2 * np.pi * 50 * t)
    clicks[:: max(1, rate // 8)] += 1.0
    sounds = [tone, chirp, bursts, clicks]
    return [(0.5 * s / max(np.abs(s).max(), 1e-9)).astype(np.float32) for s in sounds]
