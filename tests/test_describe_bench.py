"""`studio bench vlm` end to end on the full-size SmolVLM-256M architecture with random weights (slow: tens of minutes
on 2 CPU cores, mostly exporting the graphs): every measurement is there, ONNX and PyTorch decode the same number of
tokens, and the exported graphs matched PyTorch."""

from __future__ import annotations

import pytest

from tests.helpers import stdout_json, studio

pytestmark = pytest.mark.slow


def test_bench_vlm(cli_env):
    out = stdout_json(studio(cli_env, "bench", "vlm", "--runs", "1", "--no-int8", timeout=3600))
    assert out["model"] == "HuggingFaceTB/SmolVLM-256M-Instruct" and out["runtime"]["onnx"].startswith("ONNX Runtime")
    assert set(out["parity_max_abs_diff"]) == {"vision_encoder", "embed_tokens", "decoder"}
    onnx, torch = out["onnx_runtime"], out["pytorch"]
    assert out["photo"]["tiles_when_split"] == 13  # 640x480: 4 x 3 tiles + the global view
    assert onnx["image_tokens"]["global_view_1_tile"]["p50_ms"] > 0 and onnx["tokens_per_s"] > 0
    assert 0 < onnx["time_to_first_token_global_view"]["p50_ms"] < onnx["answer_32_tokens"]["p50_ms"]
    assert torch["answer_32_tokens"]["p50_ms"] > 0 and out["speedup_vs_torch"]["answer_32_tokens"] > 0
    assert set(out["targets"]) == {"onnx_at_least_1.5x_torch_generate", "first_sentence_under_1500_ms"}
    assert out["machine"]["cores"] >= 1 and isinstance(out["machine"]["cpu_flags"], list)
