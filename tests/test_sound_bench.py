"""`studio bench av-events` end to end on the full-size AST and CLAP audio encoder (slow: minutes on a CPU)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_bench_av_events_reports_realtime_factor_for_both_engines():
    from studio.bench.av_events import run_bench

    report = run_bench(runs=1, int8=False)
    families = {m["family"] for m in report["models"].values()}
    assert families == {"ast", "clap"}
    for result in report["models"].values():
        assert set(result["realtime_factor"]) == {"torch", "onnx_fp32"}
        assert all(v > 0 for v in result["realtime_factor"].values())
        assert result["speedup_vs_torch"]["onnx_fp32"] > 0
    target = next(iter(report["targets"].values()))
    assert target["met"] == (target["value"] >= 10)
