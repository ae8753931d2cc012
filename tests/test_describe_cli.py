"""`studio predict describe` prints what `DescribeService` returns (text, sentences, tokens, time to first token,
runtime), answers a conversation of repeated --question in turn, and says a bad picture in one sentence."""

from __future__ import annotations

from tests.helpers import error_sentence, stdout_json, studio


def test_describe_and_a_conversation(cli_env, describe_models_dir, tiny_smolvlm_dir, tmp_path, photos):
    photo = tmp_path / "coffee.jpg"
    photos["coffee"].save(photo)
    common = ["--models-dir", describe_models_dir]
    runtime = ["--model", tiny_smolvlm_dir, "--backend", "onnx", "--device", "cpu", "--max-new-tokens", "6"]
    out = stdout_json(studio(cli_env, *common, "predict", "describe", "--image", photo, "--detail", *runtime))
    assert out["task"] == "describe" and out["backend"] == "onnx" and out["text"]
    assert 0 < out["tokens"] <= 6 and out["time_to_first_token_ms"] > 0 and out["tiles"] > 1
    asked = ["--question", "What is this?", "--question", "Is it hot?"]
    talk = stdout_json(studio(cli_env, *common, "predict", "describe", "--image", photo, *asked, *runtime))
    assert [t["question"] for t in talk["turns"]] == ["What is this?", "Is it hot?"]
    assert talk["turn"] == 2 and talk["history"][0]["question"] == "What is this?"


def test_bad_picture_is_one_sentence(cli_env, describe_models_dir, tiny_smolvlm_dir, tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    proc = studio(
        cli_env,
        "--models-dir",
        describe_models_dir,
        "predict",
        "describe",
        "--image",
        empty,
        "--model",
        tiny_smolvlm_dir,
    )
    assert proc.returncode == 2 and "empty" in error_sentence(proc)
