"""`studio bench finetune` runs end to end on the full-size CLIP image encoder (slow: builds and exports ViT-B/32)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_finetune_reports_throughput_and_probe_time():
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "bench", "finetune", "--runs", "3", "--batch", "4"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert set(report["embedding_images_per_s_batch4"]) == {"torch", "onnx_fp32"}
    assert report["parity_max_abs_diff"]["classifier"] <= 1e-4
    assert report["linear_probe_200x10"]["train_accuracy"] == 1.0
    assert report["targets"]["linear_probe_200x10_under_5s"]["met"]
