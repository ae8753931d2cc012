"""`studio predict zero-shot` and `studio export zero-shot`, run as a user runs them: a separate process, JSON on
stdout, sentences on stderr.

Scores are compared with transformers' own zero-shot pipeline on the same weights. Bad input must end with exit
status 2 and one plain sentence, never a traceback. No model hub is reachable (the `cli_env` fixture:
HF_HUB_OFFLINE=1 and an empty HF_HOME), as on a machine without internet.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import (
    HAS_GPU,
    assert_plain_sentence,
    error_sentence,
    sha256,
    stdout_json,
    studio,
    write_test_files,
)

TEMPLATE = "a photo of a {}."
LABELS = ["cat", "dog", "cup of coffee"]
DEFAULT_HUB_MODEL = "openai/clip-vit-base-patch32"


# Fixtures and helpers ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_models_dir(tmp_path_factory, exported_models_dir) -> Path:
    """A copy of the shared export for commands that might write (the shared one stays read-only)."""
    return shutil.copytree(exported_models_dir, tmp_path_factory.mktemp("cli-models") / "exported")


@pytest.fixture(scope="module")
def files(tmp_path_factory, photos) -> dict[str, Path]:
    return write_test_files(tmp_path_factory.mktemp("cli-files"), photos, "empty", "corrupt", "text", "not_model")


def assert_labels_match(labels: list[dict], expected: list[tuple[str, float]]) -> None:
    scores = [r["score"] for r in labels]
    assert scores == sorted(scores, reverse=True)
    assert [r["label"] for r in labels] == [lbl for lbl, _ in expected]
    for r, (_, want) in zip(labels, expected, strict=True):
        assert r["score"] == pytest.approx(want, abs=1e-4)
    assert sum(scores) == pytest.approx(1.0, abs=1e-6)


# predict ----------------------------------------------------------------------------------------------------------


def predict(env, image, models_dir, model, *extra, labels=LABELS):
    return studio(
        env,
        "predict",
        "zero-shot",
        "--image",
        image,
        "--labels",
        ",".join(labels),
        "--model",
        model,
        "--models-dir",
        models_dir,
        *extra,
    )


@pytest.mark.parametrize(
    ("backend", "engine", "provider"), [("onnx", "ONNX Runtime", "CPUExecutionProvider"), ("torch", "PyTorch", "cpu")]
)
def test_predict_matches_pipeline(backend, engine, provider, cli_env, files, cli_models_dir, tiny_clip_dir, reference):
    out = stdout_json(
        predict(cli_env, files["chelsea"], cli_models_dir, tiny_clip_dir, "--backend", backend, "--device", "cpu")
    )
    assert {"task", "model", "backend", "provider", "latency_ms", "labels", "runtime"} <= set(out)
    assert out["task"] == "zero-shot"
    assert out["model"] == str(tiny_clip_dir)
    assert out["backend"] == backend
    assert out["provider"] == provider
    assert out["runtime"]["engine"] == engine and out["runtime"]["device"] == "CPU"
    assert out["runtime"]["fallback_reason"] is None
    assert isinstance(out["latency_ms"], (int, float)) and out["latency_ms"] > 0
    assert out["templates"] == [TEMPLATE]
    assert_labels_match(out["labels"], reference(files["chelsea"], LABELS))


@pytest.mark.skipif(HAS_GPU, reason="this machine has an NVIDIA GPU, so there is no CUDA fallback to report")
def test_predict_auto_device_reports_cuda_fallback(cli_env, files, cli_models_dir, tiny_clip_dir, reference):
    out = stdout_json(
        predict(cli_env, files["coffee"], cli_models_dir, tiny_clip_dir, "--backend", "onnx", "--device", "auto")
    )
    runtime = out["runtime"]
    assert runtime["requested"] == "auto"
    assert runtime["device"] == "CPU"
    assert out["provider"] == "CPUExecutionProvider"
    assert runtime["fallback_reason"], runtime
    assert "CUDA unavailable" in runtime["label"]
    assert runtime["fallback_reason"] in runtime["label"]
    assert_labels_match(out["labels"], reference(files["coffee"], LABELS))


def test_predict_onnx_exports_a_model_without_export_first(cli_env, files, models_dir, tiny_clip_dir, reference):
    assert not any(models_dir.iterdir())
    proc = predict(cli_env, files["astronaut"], models_dir, tiny_clip_dir, "--backend", "onnx", "--device", "cpu")
    out = stdout_json(proc)
    assert "Exported" in proc.stderr
    manifests = list(models_dir.glob("zero-shot/*/manifest.json"))
    assert len(manifests) == 1, manifests
    manifest = json.loads(manifests[0].read_text())
    assert manifest["source"]["path"] == str(tiny_clip_dir)
    assert (manifests[0].parent / "image_encoder.onnx").is_file()
    assert out["backend"] == "onnx" and out["provider"] == "CPUExecutionProvider"
    assert any("Exported" in n for n in out["notices"])
    assert_labels_match(out["labels"], reference(files["astronaut"], LABELS))


# export -----------------------------------------------------------------------------------------------------------


def test_export_writes_a_verified_manifest(cli_env, tiny_clip_dir, tmp_path, photos):
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from transformers import CLIPModel, CLIPProcessor

    copy = shutil.copytree(tiny_clip_dir, tmp_path / "my-clip")
    out_dir = tmp_path / "out"
    proc = studio(cli_env, "export", "zero-shot", "--model", copy, "--out", out_dir, "--quantize", "int8")
    printed = stdout_json(proc)
    directory = Path(printed["export_dir"])
    assert directory.parent.parent == out_dir.resolve()
    manifest = json.loads((directory / "manifest.json").read_text())
    assert printed["manifest"] == manifest

    source = manifest["source"]
    assert source["kind"] == "directory"
    assert source["path"] == str(copy)
    expected_source = hashlib.sha256()  # every file's relative name and content, in name order
    for f in sorted(p for p in copy.rglob("*") if p.is_file()):
        expected_source.update(str(f.relative_to(copy)).encode() + b"\0" + f.read_bytes())
    assert source["sha256"] == expected_source.hexdigest()

    assert isinstance(manifest["opset"], int) and manifest["opset"] >= 17
    assert set(manifest["graphs"]) == {"image_encoder", "text_encoder"}
    for name, entry in manifest["graphs"].items():
        assert entry["sha256"], name
        for file_name, digest in entry["sha256"].items():
            assert sha256(directory / file_name) == digest
        graph = onnx.load(str(directory / entry["file"]))
        assert {o.domain: o.version for o in graph.opset_import}.get("", None) == manifest["opset"]
        assert 0 <= entry["max_abs_diff"] <= entry["tolerance"]["atol"]

    int8 = manifest["variants"]["int8"]
    assert int8["graphs"], int8
    for entry in int8["graphs"].values():
        assert entry["cosine_to_fp32_min"] >= 0.99
        for file_name, digest in entry["sha256"].items():
            assert sha256(directory / file_name) == digest

    # What the manifest claims holds independently: the exported image encoder gives PyTorch's image embeddings.
    model = CLIPModel.from_pretrained(str(copy)).eval()
    pixels = CLIPProcessor.from_pretrained(str(copy)).image_processor(
        images=list(photos.values()), return_tensors="np"
    )["pixel_values"]
    with torch.no_grad():
        expected = model.get_image_features(pixel_values=torch.from_numpy(pixels)).pooler_output.numpy()
    session = ort.InferenceSession(str(directory / "image_encoder.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(["image_embeds"], {"pixel_values": pixels.astype(np.float32)})
    np.testing.assert_allclose(got, expected, atol=manifest["graphs"]["image_encoder"]["tolerance"]["atol"])


# Bad input --------------------------------------------------------------------------------------------------------

# case: (image key, labels, model ("tiny", "not_model", a hub id or None for the default), extra args, key words)
BAD_PREDICTIONS = {
    "no-labels": ("chelsea", "", "tiny", [], ["labels", "commas"]),
    "only-blank-labels": ("chelsea", " , , ", "tiny", [], ["labels", "commas"]),
    "one-label": ("chelsea", "cat", "tiny", [], ["at least one more label", "cat"]),
    "one-label-twice": ("chelsea", "cat,CAT", "tiny", [], ["at least one more label"]),
    "1001-labels": ("chelsea", ",".join(f"l{i}" for i in range(1001)), "tiny", [], ["1001", "1000"]),
    "template-without-braces": ("chelsea", "cat,dog", "tiny", ["--template", "a photo"], ["template", "{}"]),
    "empty-image": ("empty", "cat,dog", "tiny", [], ["empty.jpg", "empty"]),
    "corrupt-image": ("corrupt", "cat,dog", "tiny", [], ["corrupt.jpg", "damaged"]),
    "text-file-named-png": ("text", "cat,dog", "tiny", [], ["notes.png", "not an image"]),
    "missing-default-model": ("chelsea", "cat,dog", None, [], [DEFAULT_HUB_MODEL, "not on this computer", "internet"]),
    "missing-model-onnx": (
        "chelsea",
        "cat,dog",
        "openai/clip-vit-base-patch16",
        ["--backend", "onnx"],
        ["openai/clip-vit-base-patch16", "not on this computer", "internet"],
    ),
    "unknown-hub-id": ("chelsea", "cat,dog", "someone/not-a-known-model", [], ["not one of the models"]),
    "folder-not-a-model": ("chelsea", "cat,dog", "not_model", [], ["not a hugging face model folder", "config.json"]),
}


@pytest.mark.parametrize("case", list(BAD_PREDICTIONS))
def test_bad_input_exits_2_with_a_sentence(case, cli_env, files, cli_models_dir, tiny_clip_dir, models_dir):
    image, labels, model, extra, words = BAD_PREDICTIONS[case]
    args = ["predict", "zero-shot", "--image", files[image], "--labels", labels, "--device", "cpu"]
    if model == "tiny":
        args += ["--model", tiny_clip_dir, "--models-dir", cli_models_dir, "--backend", "onnx"]
    else:
        if model is not None:
            args += ["--model", files.get(model, model)]
        args += ["--models-dir", models_dir]
    assert_plain_sentence(error_sentence(studio(cli_env, *args, *extra)), *words)


def test_template_with_a_stray_brace_is_not_a_traceback(cli_env, files, cli_models_dir, tiny_clip_dir):
    proc = predict(
        cli_env,
        files["chelsea"],
        cli_models_dir,
        tiny_clip_dir,
        *("--backend", "onnx", "--device", "cpu", "--template", "a {} in {style}"),
        labels=["cat", "dog"],
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-1500:]
    if proc.returncode != 0:  # refusing the template in words is as good as taking its braces literally
        assert_plain_sentence(error_sentence(proc), "template")


def test_model_folder_without_processor_files_gets_a_sentence(cli_env, files, tiny_clip_dir, tmp_path, models_dir):
    weights_only = tmp_path / "weights-only-clip"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(tiny_clip_dir / name, weights_only / name)
    extra = ("--backend", "torch", "--device", "cpu")
    proc = predict(cli_env, files["chelsea"], models_dir, weights_only, *extra, labels=["cat", "dog"])
    assert_plain_sentence(error_sentence(proc), "weights-only-clip")
