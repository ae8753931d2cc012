"""`studio bench search` runs end to end (slow: builds an IVF index and exports the full-size CLIP image encoder)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_search_reports_index_query_times_recall_and_throughput():
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "bench", "search", "--vectors", "60000", "--runs", "120", "--batch", "4"],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    approx = report["approximate"]
    assert approx["kind"] == "ivf" and 1 <= approx["nprobe"] <= approx["nlist"]
    assert approx["recall_at_10_fresh_queries"] >= 0.9  # measured on queries that did not choose nprobe
    assert approx["query_top10"]["runs"] == 120 and approx["memory_mb"] > 0
    assert report["exact_50k"]["index"].startswith("exact search over all 50,000 vectors")
    assert set(report["embedding_images_per_s_batch4"]) == {"torch", "onnx_fp32"}
    assert report["parity_max_abs_diff"]["image_encoder"] <= 1e-3
    assert set(report["targets"]) == {"ivf_p50_under_5ms", "ivf_recall_at_10_at_least_0.95", "exact_50k_p50_under_10ms"}
    assert report["machine"]["cpu_flags"] is not None
