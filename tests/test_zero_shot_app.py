"""The Zero-shot tab of the launched app, driven through its HTTP API with gradio_client, as any API user (or the
browser) drives it.

Scores are compared with transformers' own zero-shot pipeline on the same weights; bad input must come back as a
plain sentence (in the live region and as a warning toast) while the app keeps serving.

/classify_frame (the camera stream) is not tested here: gradio_client cannot call a streaming event (it fails with
KeyError('process_streaming')); the browser tests cover it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from tests.helpers import (
    HAS_GPU,
    assert_missing_model_state,
    assert_plain_sentence,
    outputs_and_toasts,
    sha256,
    text_of,
    write_test_files,
)

TEMPLATE = "a photo of a {}."
LABELS = ["cat", "astronaut", "cup of coffee", "rocket", "dog"]
MISSING_HUB_MODEL = "openai/clip-vit-base-patch16"  # in the registry, not on this machine, not downloadable here
DEFAULT_HUB_MODEL = "openai/clip-vit-base-patch32"


# Fixtures ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(app_server):
    url, _ = app_server
    return Client(url, verbose=False)


@pytest.fixture(scope="module")
def app_models_dir(app_server) -> Path:
    return app_server[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory, photos) -> dict[str, Path]:
    """Photos as files, and files that are not usable photos."""
    d = tmp_path_factory.mktemp("ui-files")
    out = write_test_files(d, photos, "empty", "corrupt", "text", "not_model")
    out["bert"] = d / "some-bert"
    out["bert"].mkdir()
    (out["bert"] / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (out["bert"] / "model.safetensors").write_bytes(b"\0" * 16)
    return out


# Helpers ----------------------------------------------------------------------------------------------------------


def classify(
    client,
    image,
    labels,
    model,
    backend="onnx",
    device="cpu",
    variant="fp32",
    template_mode="single",
    template=TEMPLATE,
):
    """Calls /classify; returns its 4 outputs and the (message, level) toasts the handler raised."""
    job = client.submit(
        handle_file(str(image)),
        labels,
        str(model),
        backend,
        device,
        variant,
        template_mode,
        template,
        api_name="/classify",
    )
    return outputs_and_toasts(job)


def scores_of(label_output) -> list[tuple[str, float]]:
    assert isinstance(label_output, dict) and "confidences" in label_output, f"no scores came back: {label_output!r}"
    return [(c["label"], c["confidence"]) for c in label_output["confidences"]]


def assert_matches_reference(got: list[tuple[str, float]], expected: list[tuple[str, float]]) -> None:
    assert [lbl for lbl, _ in got] == [lbl for lbl, _ in expected]
    for (_, score), (_, want) in zip(got, expected, strict=True):
        assert score == pytest.approx(want, abs=1e-4)


def assert_still_serving(client, files, tiny_clip_dir, reference) -> None:
    outputs, _ = classify(client, files["chelsea"], ", ".join(LABELS), tiny_clip_dir)
    assert_matches_reference(scores_of(outputs[0]), reference(files["chelsea"], LABELS))
    assert text_of(outputs[1]).startswith("Best match:")


def flip_bytes(path: Path) -> None:
    """Damages a file in its middle, keeping its size (as bit rot or a bad copy does)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


# Classification ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("backend", "engine"), [("onnx", "ONNX Runtime"), ("torch", "PyTorch")])
def test_classify_matches_pipeline(backend, engine, client, files, tiny_clip_dir, reference):
    for name in ("astronaut", "chelsea", "coffee"):
        outputs, _ = classify(client, files[name], ", ".join(LABELS), tiny_clip_dir, backend=backend, device="cpu")
        scores, announce, timing, badge = outputs
        expected = reference(files[name], LABELS)
        assert_matches_reference(scores_of(scores), expected)
        assert scores["label"] == expected[0][0]
        assert text_of(announce).startswith(f"Best match: {expected[0][0]} (")
        assert re.match(r"Took \d+ ms", timing)
        assert badge == f"**Runs on:** {engine} · CPU"


@pytest.mark.skipif(HAS_GPU, reason="this machine has an NVIDIA GPU, so there is no CUDA fallback to report")
@pytest.mark.parametrize(
    ("backend", "engine"), [("auto", "ONNX Runtime"), ("onnx", "ONNX Runtime"), ("torch", "PyTorch")]
)
def test_auto_device_says_it_fell_back_to_cpu(backend, engine, client, files, tiny_clip_dir, reference):
    """Asked for the GPU on a machine without one, the badge says what really runs and why: no silent fallback."""
    outputs, _ = classify(client, files["coffee"], ", ".join(LABELS), tiny_clip_dir, backend=backend, device="auto")
    assert_matches_reference(scores_of(outputs[0]), reference(files["coffee"], LABELS))
    badge = outputs[3]
    assert badge.startswith(f"**Runs on:** {engine} · CPU")
    assert "CUDA unavailable" in badge
    reason = badge.split("CUDA unavailable:", 1)[1].strip(" )")
    assert reason, badge


def test_blank_and_duplicate_labels_are_dropped(client, files, tiny_clip_dir, reference):
    outputs, toasts = classify(client, files["chelsea"], "cat, , cat, dog", tiny_clip_dir)
    assert_matches_reference(scores_of(outputs[0]), reference(files["chelsea"], ["cat", "dog"]))
    infos = [message for message, level in toasts if level == "info"]
    assert any("cat" in m and "more than once" in m for m in infos), toasts


def test_500_labels(client, files, tiny_clip_dir, reference):
    labels = [f"object number {i}" for i in range(500)]
    outputs, _ = classify(client, files["astronaut"], ", ".join(labels), tiny_clip_dir)
    scores, announce, timing, _ = outputs
    got = scores_of(scores)
    expected = dict(reference(files["astronaut"], labels))
    assert got, "no scores came back"
    assert all(lbl in expected for lbl, _ in got)
    for lbl, score in got:
        assert score == pytest.approx(expected[lbl], abs=1e-4)
    # The scores shown are the best ones, best first.
    best = sorted(expected.values(), reverse=True)[: len(got)]
    assert [s for _, s in got] == pytest.approx(best, abs=1e-4)
    assert "500 new labels" in timing
    assert text_of(announce).startswith("Best match:")


# Bad input: a sentence, and the app keeps serving ------------------------------------------------------------------

BAD_INPUTS = {
    # case: (image key, labels, model key or value, backend, template, words the sentence must contain)
    "no-labels": ("chelsea", "", "tiny", "onnx", TEMPLATE, ["labels", "commas"]),
    "only-blank-labels": ("chelsea", " , ,\n ,", "tiny", "onnx", TEMPLATE, ["labels", "commas"]),
    "one-label": ("chelsea", "cat", "tiny", "onnx", TEMPLATE, ["at least one more label", "cat"]),
    "one-label-twice": ("chelsea", "cat, Cat", "tiny", "onnx", TEMPLATE, ["at least one more label"]),
    "1001-labels": ("chelsea", ", ".join(f"l{i}" for i in range(1001)), "tiny", "onnx", TEMPLATE, ["1001", "1000"]),
    "empty-file": ("empty", "cat, dog", "tiny", "onnx", TEMPLATE, ["empty.jpg", "empty"]),
    "corrupt-jpeg": ("corrupt", "cat, dog", "tiny", "onnx", TEMPLATE, ["corrupt.jpg", "damaged"]),
    "text-file-named-png": ("text", "cat, dog", "tiny", "onnx", TEMPLATE, ["notes.png", "not an image"]),
    "missing-hub-model": (
        "chelsea",
        "cat, dog",
        MISSING_HUB_MODEL,
        "auto",
        TEMPLATE,
        [MISSING_HUB_MODEL, "not on this computer", "internet"],
    ),
    "missing-hub-model-onnx": (
        "chelsea",
        "cat, dog",
        MISSING_HUB_MODEL,
        "onnx",
        TEMPLATE,
        [MISSING_HUB_MODEL, "not on this computer", "internet"],
    ),
    "unknown-hub-id": ("chelsea", "cat, dog", "someone/not-a-known-model", "auto", TEMPLATE, ["not one of the models"]),
    "no-such-folder": ("chelsea", "cat, dog", "./no/such/model/folder", "auto", TEMPLATE, ["no model folder"]),
    "folder-not-a-model": ("chelsea", "cat, dog", "not_model", "auto", TEMPLATE, ["not a hugging face model folder"]),
    "folder-other-architecture": ("chelsea", "cat, dog", "bert", "auto", TEMPLATE, ["bert", "cannot run"]),
    "template-without-braces": ("chelsea", "cat, dog", "tiny", "onnx", "a photo of a", ["template", "{}"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_a_sentence_and_the_app_keeps_serving(case, client, files, tiny_clip_dir, reference):
    image, labels, model, backend, template, words = BAD_INPUTS[case]
    model = {"tiny": tiny_clip_dir, "not_model": files["not_model"], "bert": files["bert"]}.get(model, model)
    outputs, toasts = classify(client, files[image], labels, model, backend=backend, template=template)
    scores, announce, _, badge = outputs
    sentence = text_of(announce)
    assert not sentence.startswith("Best match"), sentence
    assert "confidences" not in (scores if isinstance(scores, dict) else {}), "scores were shown for bad input"
    assert_plain_sentence(sentence, *words)
    assert not [t for t in toasts if t[0] == sentence], toasts  # said once: not also as a toast
    assert_still_serving(client, files, tiny_clip_dir, reference)


@pytest.mark.parametrize("template", ["a photo of a {} }", "a {} in {style}"])
def test_template_with_stray_braces_gets_a_sentence(template, client, files, tiny_clip_dir, reference):
    """Either the template is refused in words, or its braces are taken literally; never a crash."""
    outputs, _ = classify(client, files["chelsea"], "cat, dog", tiny_clip_dir, template=template)
    sentence = text_of(outputs[1])
    if sentence.startswith("Best match:"):
        assert sorted(lbl for lbl, _ in scores_of(outputs[0])) == ["cat", "dog"]
    else:
        assert_plain_sentence(sentence, "template")
    assert_still_serving(client, files, tiny_clip_dir, reference)


def test_model_folder_without_processor_files_gets_a_sentence(client, files, tiny_clip_dir, reference, tmp_path):
    weights_only = tmp_path / "weights-only-clip"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(tiny_clip_dir / name, weights_only / name)
    outputs, _ = classify(client, files["chelsea"], "cat, dog", weights_only, backend="torch")
    assert_plain_sentence(text_of(outputs[1]), "weights-only-clip")
    assert_still_serving(client, files, tiny_clip_dir, reference)


# Model state and export -------------------------------------------------------------------------------------------


def test_model_state_of_missing_default_model(client, app_models_dir):
    state = client.predict(DEFAULT_HUB_MODEL, api_name="/zs_model_state")
    assert_missing_model_state(state, app_models_dir, DEFAULT_HUB_MODEL)


def test_model_state_of_exported_local_folder(client, tiny_clip_dir):
    state = client.predict(str(tiny_clip_dir), api_name="/zs_model_state")
    assert "local folder" in state
    assert "exported to ONNX (fp32, int8)" in state
    assert "missing" not in state


def test_model_state_of_a_folder_that_is_not_a_model(client, files):
    state = client.predict(str(files["not_model"]), api_name="/zs_model_state")
    assert "not a Hugging Face model folder" in state
    assert "Traceback" not in state


def test_export_model_creates_a_verified_export(client, app_models_dir, tiny_clip_dir, files, reference, tmp_path):
    copy = shutil.copytree(tiny_clip_dir, tmp_path / "my-clip")  # another folder: another export
    before = client.predict(str(copy), api_name="/zs_model_state")
    assert "local folder" in before and "exported" not in before
    existing = set(app_models_dir.glob("zero-shot/*"))

    job = client.submit(str(copy), api_name="/zs_export_model")
    after = job.result(timeout=300)
    assert "exported to ONNX (fp32, int8)" in after

    new = set(app_models_dir.glob("zero-shot/*")) - existing
    assert len(new) == 1, sorted(map(str, new))
    directory = new.pop()
    assert directory.name.startswith("my-clip")
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["source"]["path"] == str(copy)
    for entry in [*manifest["graphs"].values(), *manifest["variants"]["int8"]["graphs"].values()]:
        for file_name, digest in entry["sha256"].items():
            assert sha256(directory / file_name) == digest
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(".")], "temporary folders left behind"

    # The new export is what now runs the copy, with the copy's (same) weights.
    outputs, _ = classify(client, files["astronaut"], ", ".join(LABELS), copy, backend="onnx")
    assert outputs[3] == "**Runs on:** ONNX Runtime · CPU"
    assert_matches_reference(scores_of(outputs[0]), reference(files["astronaut"], LABELS))


def test_export_of_missing_model_says_why(client, app_models_dir):
    state, toasts = outputs_and_toasts(client.submit(MISSING_HUB_MODEL, api_name="/zs_export_model"))
    assert "missing" in state
    warnings = [m for m, level in toasts if level == "warning"]
    assert len(warnings) == 1, toasts
    assert_plain_sentence(warnings[0], MISSING_HUB_MODEL, "not on this computer")
    assert not (app_models_dir / "zero-shot" / MISSING_HUB_MODEL.replace("/", "--")).exists()


# Damaged exports are not run ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("damaged", "variant"), [("image_encoder.onnx", "fp32"), ("image_encoder.int8.onnx", "int8")])
def test_damaged_export_falls_back_to_pytorch(
    damaged, variant, exported_models_dir, tiny_clip_dir, files, reference, tmp_path
):
    from studio.tasks.zero_shot import ZeroShotTask

    models_dir = shutil.copytree(exported_models_dir, tmp_path / "exported")
    graph = next(models_dir.glob(f"zero-shot/*/{damaged}"))
    flip_bytes(graph)
    damaged_digest = sha256(graph)

    task = ZeroShotTask.load(str(tiny_clip_dir), models_dir, backend="onnx", device="cpu", variant=variant)
    assert task.runtime.engine == "PyTorch"
    notices = " ".join(task.graphs.notices)
    assert "has changed since it was exported" in notices
    assert damaged in notices
    result = task(str(files["chelsea"]), LABELS, templates=(TEMPLATE,))
    assert_matches_reference([(r["label"], r["score"]) for r in result.labels], reference(files["chelsea"], LABELS))
    assert sha256(graph) == damaged_digest  # refused, not silently overwritten


def test_damaged_export_through_the_app(client, app_models_dir, tiny_clip_dir, files, reference, tmp_path):
    """An export damaged on disk is refused by the running app too: PyTorch runs, and the user is told."""
    from studio.export.exporter import export_dir
    from studio.sources import resolve

    copy = shutil.copytree(tiny_clip_dir, tmp_path / "damaged-clip")  # copytree keeps mtimes: its export is current
    source_export = export_dir(app_models_dir, resolve(str(tiny_clip_dir), "zero-shot", app_models_dir))
    target = export_dir(app_models_dir, resolve(str(copy), "zero-shot", app_models_dir))
    shutil.copytree(source_export, target)
    assert "exported to ONNX (fp32, int8)" in client.predict(str(copy), api_name="/zs_model_state")
    flip_bytes(target / "image_encoder.onnx")

    outputs, toasts = classify(client, files["coffee"], ", ".join(LABELS), copy, backend="onnx", device="cpu")
    assert outputs[3] == "**Runs on:** PyTorch · CPU"
    assert_matches_reference(scores_of(outputs[0]), reference(files["coffee"], LABELS))
    assert any("has changed since it was exported" in m for m, _ in toasts), toasts
