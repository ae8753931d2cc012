"""`studio bench video` end to end on the full-size VideoMAE-base architecture (slow: minutes on a CPU)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_bench_video_reports_both_engines_and_decoding():
    from studio.bench.video import run_bench

    report = run_bench(runs=1)
    assert report["frames_per_clip"] == 16
    assert set(report["clips_per_s"]) == {"torch", "onnx_fp32"} and report["onnx_speedup_vs_torch_p50"] > 0
    assert report["parity_max_abs_diff"] < 1e-3
    assert report["decode_and_prepare_per_clip"]["decode_ms"] > 0
