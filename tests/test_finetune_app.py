"""The Fine-tune tab through the launched app's HTTP API (gradio_client), and a saved classifier used by the Zero-shot
tab. Accuracies and scores are checked against the store and an independent reference, not against fixed numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from studio.classifiers.store import ClassifierStore
from studio.classifiers.training import head_of
from tests.fixtures.finetune import SHAPE_CLASSES, shape_picture
from tests.helpers import assert_plain_sentence, launched_app, outputs_and_toasts, text_of


@pytest.fixture(scope="module")
def ft_app(tmp_path_factory, trained_models_dir, tiny_clip_dir):
    """The real app with the tiny CLIP preselected, on a copy of the models directory holding “Colours”."""
    yield from launched_app(tmp_path_factory, "ft-app", trained_models_dir, {"zero-shot": tiny_clip_dir})


@pytest.fixture(scope="module")
def client(ft_app):
    return Client(ft_app[0], verbose=False)


def test_create_add_train_compare_and_save(client, ft_app, tiny_clip_dir, shapes_dir, tmp_path):
    models_dir = ft_app[1]
    out, _ = outputs_and_toasts(
        client.submit("Shapes ☕/..", "red, green", str(tiny_clip_dir), api_name="/finetune_create")
    )
    chooser, classes, gallery, overview, announce, saved = out
    assert chooser["value"] == "Shapes ☕/.." and classes["value"] == "red"
    assert ["red", "red"] in classes["choices"] and ["green", "green"] in classes["choices"]
    assert "Created “Shapes ☕/..” with 2 classes" in text_of(announce)

    red = [tmp_path / f"r{i}.png" for i in range(3)]
    for i, p in enumerate(red):
        shape_picture("red", 100 + i).save(p)
    out, _ = outputs_and_toasts(
        client.submit("Shapes ☕/..", "red", [handle_file(str(p)) for p in red], api_name="/finetune_add_uploads")
    )
    assert "Added 3 examples." in text_of(out[3]) and len(out[1]) == 3

    # training with an empty class says so, and the app keeps serving
    out, toasts = outputs_and_toasts(
        client.submit("Shapes ☕/..", "linear", 0.5, "torch", "cpu", api_name="/finetune_train")
    )
    assert_plain_sentence(text_of(out[-2]), "“green”", "no examples")
    assert not any("no examples" in t[0] for t in toasts)  # said once, in the live region, not also as a toast

    out, _ = outputs_and_toasts(client.submit("Shapes ☕/..", "red", str(shapes_dir), api_name="/finetune_add_folder"))
    assert "blue" in text_of(out[3]) and "Added 36 examples" in text_of(out[3])
    counts = {c["name"]: c["examples"] for c in ClassifierStore(models_dir).summary("Shapes ☕/..")["classes"]}
    assert counts == {"red": 15, "green": 12, "blue": 12}

    out, _ = outputs_and_toasts(
        client.submit("Shapes ☕/..", "linear", 0.9, "torch", "cpu", api_name="/finetune_train")
    )
    # 15 red, 12 green, 12 blue examples: 4, 3, 3 held out. (The save button is no API output.)
    table, loss_plot, loss_text, confusion_plot, confusion_text, announce, badge = out
    rows = {r[0]: r[1] for r in table["data"]}
    assert rows["Linear probe"] in ("90%", "100%")  # 10 held out; chance is 33%
    assert "held-out examples" in text_of(announce) and "PyTorch · CPU" in badge
    assert loss_plot is not None and confusion_plot is not None
    assert loss_text.startswith("Loss curve: the loss went from")
    assert "Confusion matrix: “red”:" in confusion_text and "of 4 right" in confusion_text

    out, _ = outputs_and_toasts(client.submit("linear", 0.0, api_name="/finetune_blend"))
    assert {r[0]: r[1] for r in out[0]["data"]}["Blended (what is saved)"] == rows[
        "Zero-shot only (class names, no examples)"
    ]

    out, _ = outputs_and_toasts(client.submit("prototype", 1.0, api_name="/finetune_save"))
    assert "Saved “Shapes ☕/..” as version 1 with its ONNX graph" in text_of(out[0])
    saved = ClassifierStore(models_dir).load("Shapes ☕/..")
    assert saved.head["method"] == "prototype" and saved.head["blend"] == 1.0 and saved.onnx_path is not None
    assert "Shapes ☕/.." in [r[0] for r in out[1]["data"]]


def test_zero_shot_tab_uses_a_saved_classifier(client, ft_app, tiny_clip_dir, reference_embeds, tmp_path):
    picture = tmp_path / "green.png"
    shape_picture("green", 31337).save(picture)
    out, _ = outputs_and_toasts(
        client.submit(
            handle_file(str(picture)), "ignored, labels", str(tiny_clip_dir), "torch", "cpu", "fp32", "single",
            "a photo of a {}.", "Colours", api_name="/classify",
        )
    )  # fmt: skip
    scores = {c["label"]: c["confidence"] for c in out[0]["confidences"]}
    expected = head_of(ClassifierStore(ft_app[1]).load("Colours")).probabilities(
        reference_embeds([Image.open(picture).convert("RGB")])
    )[0]
    assert list(scores) == [SHAPE_CLASSES[i] for i in np.argsort(-expected)]
    assert scores[SHAPE_CLASSES[int(expected.argmax())]] == pytest.approx(expected.max(), abs=1e-4)
    choices = client.predict(api_name="/zs_saved_classifiers")
    assert ["Colours", "Colours"] in choices["choices"]  # refreshed from the store
    # Only the choices: an answer arriving after the user picked a classifier must not undo the pick.
    assert "value" not in choices


def test_bad_input_is_a_sentence_and_the_app_keeps_serving(client, tiny_clip_dir):
    out, toasts = outputs_and_toasts(client.submit("Solo", "only one", str(tiny_clip_dir), api_name="/finetune_create"))
    assert_plain_sentence(text_of(out[4]), "at least two classes")
    assert not [t for t in toasts if "at least two classes" in t[0]], toasts  # said once: the live region only
    out, _ = outputs_and_toasts(client.submit("Colours", "red", [], api_name="/finetune_add_uploads"))
    assert_plain_sentence(text_of(out[3]), "no pictures")
    out, _ = outputs_and_toasts(client.submit("Colours", False, api_name="/finetune_delete"))
    assert_plain_sentence(text_of(out[0]), "Tick", "delete")


def test_rename_export_import_delete(client, ft_app, tmp_path):
    out, _ = outputs_and_toasts(client.submit("Colours", api_name="/finetune_export"))
    zip_path = Path(out[1])
    assert zip_path.suffix == ".zip" and "ready to download" in text_of(out[0])
    out, _ = outputs_and_toasts(client.submit("Colours", "Colours (old)", api_name="/finetune_rename"))
    assert "Renamed “Colours” to “Colours (old)”." == text_of(out[0])
    out, _ = outputs_and_toasts(client.submit(handle_file(str(zip_path)), api_name="/finetune_import"))
    assert text_of(out[0]) == "Imported “Colours”."
    out, _ = outputs_and_toasts(client.submit("Colours (old)", True, api_name="/finetune_delete"))
    assert text_of(out[0]) == "Deleted “Colours (old)”."
    assert "Colours (old)" not in ClassifierStore(ft_app[1]).names()
    assert ClassifierStore(ft_app[1]).load("Colours").version == 1


def test_contrastive_fine_tuning_from_the_tab(client, ft_app):
    out, _ = outputs_and_toasts(client.submit("Colours", 1, 1e-4, True, "cpu", api_name="/finetune_contrastive"))
    text = text_of(out[0])
    assert "Fine-tuned for 1 epochs" in text and "linear probe" in text
    rows = {r[0]: r[1] for r in out[1]["data"]}
    saved = ClassifierStore(ft_app[1]).load("Colours")
    assert rows["Linear probe (last saved version)"] == f"{saved.head['accuracy']['linear']:.0%}"
    out, _ = outputs_and_toasts(client.submit(api_name="/finetune_cancel"))
    assert "Stopping" in text_of(out)
