"""`studio bench read-text` (slow): ms per 640x480 frame with PP-OCR's real weights, ours against the package's own
runner in the same run, and the frame read right."""

from __future__ import annotations

import pytest

from tests.helpers import stdout_json, studio

pytestmark = pytest.mark.slow


def test_bench_read_text(cli_env):
    out = stdout_json(studio(cli_env, "bench", "read-text", "--runs", "5", timeout=600))
    assert out["model"] == "rapidocr-onnxruntime/PP-OCRv4" and out["runtime"].startswith("ONNX Runtime")
    assert out["character_error_rate"] == 0.0
    assert out["ours_per_frame"]["p50_ms"] > 0 and out["frames_per_s"] > 0
    assert set(out["ours_stages_p50_ms"]) == {"detect_ms", "classify_ms", "recognize_ms"}
    # Same graphs, same work: within a factor of two of the package's runner on this machine.
    assert 0.5 < out["ours_speed_vs_package_p50"] < 2.0
    assert out["machine"]["cores"] >= 1 and isinstance(out["machine"]["cpu_flags"], list)
