"""`studio bench zero-shot` runs end to end on the full-size architecture (slow: builds and exports ViT-B/32)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_reports_both_engines_and_the_ratio():
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "bench", "zero-shot", "--runs", "5", "--batch", "2"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    batch1 = report["image_encoder"]["batch1"]
    assert set(batch1) == {"torch", "onnx_fp32", "onnx_int8"}
    ratio = report["image_encoder"]["speedup_vs_torch_batch1_p50"]["onnx_fp32"]
    assert ratio == pytest.approx(batch1["torch"]["p50_ms"] / batch1["onnx_fp32"]["p50_ms"], rel=0.01)
    assert report["parity_max_abs_diff"]["image_encoder"] < 1e-4
    assert report["int8_cosine_to_fp32_min"] > 0.99
    assert report["label_set_encoding"]["one_template_ms"]["onnx_fp32"] > 0
