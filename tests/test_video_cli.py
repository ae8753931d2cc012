"""`studio predict video` and `studio export video`, run as a user runs them: a separate process, JSON on stdout, one
sentence on stderr and exit status 2 for bad input.

What the commands print is compared with VideoTask run directly in this process on the same models and files (those
are compared with transformers in test_video_parity.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.video import bad_video_files
from tests.helpers import assert_plain_sentence, error_sentence, stdout_json, studio


def test_cli_predict_video_equals_task(cli_env, video_tasks, tiny_timesformer_dir, video_exports_dir, clips):
    out = stdout_json(
        studio(
            cli_env, "predict", "video", "--video", clips["long"], "--model", tiny_timesformer_dir,
            "--models-dir", video_exports_dir, "--window-seconds", "4", "--stride-seconds", "2", "--device", "cpu",
        )
    )  # fmt: skip
    expected = video_tasks[("timesformer", "onnx")].classify_video(clips["long"], 4.0, 2.0)
    assert out["backend"] == "onnx" and out["provider"] == "CPUExecutionProvider"
    assert [w["start_s"] for w in out["windows"]] == [0, 2, 4, 6, 8] and out["notices"] == []
    assert [t["label"] for t in out["overall"]] == [t["label"] for t in expected.overall]
    np.testing.assert_allclose([t["score"] for t in out["overall"]], [t["score"] for t in expected.overall], atol=1e-6)


def test_cli_predict_video_with_typed_actions(cli_env, xclip_tasks, tiny_xclip_dir, video_exports_dir, clips):
    args = ["predict", "video", "--video", clips["long"], "--model", tiny_xclip_dir, "--models-dir", video_exports_dir]
    out = stdout_json(studio(cli_env, *args, "--labels", "waving a hand, juggling balls", "--window-seconds", "6"))
    expected = xclip_tasks["onnx"].classify_video(clips["long"], 6.0, labels="waving a hand, juggling balls")
    assert [t["label"] for t in out["overall"]] == [t["label"] for t in expected.overall]
    np.testing.assert_allclose([t["score"] for t in out["overall"]], [t["score"] for t in expected.overall], atol=1e-6)
    assert len(out["windows"]) == 2
    proc = studio(cli_env, *args)
    assert_plain_sentence(error_sentence(proc), "type at least two")


@pytest.mark.parametrize("case", ["corrupt", "unknown-codec"])
def test_cli_bad_video_exits_2_with_a_sentence(case, cli_env, clips, tmp_path):
    path, words = bad_video_files(tmp_path, clips)[case]
    proc = studio(cli_env, "predict", "video", "--video", path)
    assert proc.returncode == 2
    sentence = error_sentence(proc)
    assert_plain_sentence(sentence, *words)
    assert proc.stderr.strip() == f"studio: {sentence}"  # OpenCV's and FFmpeg's own log lines stay quiet


def test_cli_export_video_writes_a_checked_export(cli_env, tiny_timesformer_dir, tmp_path):
    out_dir = tmp_path / "models"
    printed = stdout_json(studio(cli_env, "export", "video", "--model", tiny_timesformer_dir, "--out", out_dir))
    manifest = printed["manifest"]
    assert manifest["task"] == "video" and manifest["family"] == "video_classifier"
    assert manifest["graphs"]["classifier"]["max_abs_diff"] < 1e-4
    assert manifest["metadata"]["num_frames"] == 4 and manifest["metadata"]["model_type"] == "timesformer"
    assert Path(printed["export_dir"]).parent == out_dir / "video"
    assert (Path(printed["export_dir"]) / "classifier.onnx").is_file()
    assert (Path(printed["export_dir"]) / "preprocessor_config.json").is_file()
