"""`studio bench serve` runs end to end (slow: builds and exports the full-size CLIP ViT-B/32, then serves it from the
app's process and from Ray Serve with 1 and 2 replicas, batching off and on, to 1, 8 and 32 gradio_client users)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_bench_serve_reports_every_configuration_and_the_ratios():
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "bench", "serve", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    results = report["results"]
    assert set(results) == {
        "in-process", "ray-1-replica", "ray-2-replicas", "ray-1-replica-batched", "ray-2-replicas-batched"
    }  # fmt: skip
    for name, result in results.items():
        for users in (1, 8, 32):
            row = result[f"{users}_clients"]
            assert row["errors"] < row["requests"], (name, users, row)  # a loaded machine may time a few out
            assert row["requests_per_s"] > 0 and row["p50_ms"] <= row["p95_ms"]
    base, batched = results["in-process"]["8_clients"], results["ray-1-replica-batched"]["8_clients"]
    assert report["summary"]["ray-1-replica-batched"]["8_clients_throughput_x"] == pytest.approx(
        batched["requests_per_s"] / base["requests_per_s"], rel=0.02
    )
    assert results["ray-1-replica"]["ray_memory_mb"]["ray_processes"] > 0
    assert "goal_8_clients" in report["summary"] and "ray_overhead_ms_per_request" in report["summary"]
