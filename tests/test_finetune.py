"""Custom classifiers: the store (safe names, examples, versions, checksums, zips), training on a learnable synthetic
picture set, the held-out comparison, the encoder + head ONNX graph against an independent reference, and saving that
survives a process killed mid-save.

The reference for embeddings is transformers' own CLIPModel.get_image_features with its CLIPProcessor on the same tiny
random weights, never our own code.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.classifiers.heads import train_linear_probe
from studio.classifiers.store import ClassifierStore
from studio.classifiers.training import classify, head_of, save_run, train_classifier
from studio.errors import ClassifierError, CorruptClassifierError
from studio.heldout import stratified_split
from tests.fixtures.finetune import SHAPE_CLASSES, shape_picture
from tests.helpers import REPO, assert_plain_sentence

UNSAFE_CLASSES = ["../../etc/passwd", "a/b\\c", ".", "..", "über·café ☕ 猫", "x" * 200, "CON", "name.with.dots"]


def copy_models(trained_models_dir, tmp_path) -> Path:
    return Path(shutil.copytree(trained_models_dir, tmp_path / "exported"))


# Store -----------------------------------------------------------------------------------------------------------


def test_unsafe_names_stay_inside_the_store_and_round_trip(models_dir, tiny_clip_dir):
    store = ClassifierStore(models_dir)
    name = "../../" + "ü/." * 60 + "end"
    store.create(name, UNSAFE_CLASSES, str(tiny_clip_dir))
    assert store.names() == [" ".join(name.split())]
    folders = list(store.root.iterdir())
    assert len(folders) == 1 and folders[0].parent == store.root and folders[0].name.isascii()
    # every file the store wrote lies inside its folder, named by hashes and fixed names only
    for path in models_dir.rglob("*"):
        assert path == store.root or store.root in path.parents
        assert ".." not in path.relative_to(models_dir).parts
    report = store.add_examples(name, "../../etc/passwd", [shape_picture("red", 1)])
    assert report.added == 1
    assert list(store.examples(name)) == UNSAFE_CLASSES
    assert store.rename(name, "Kitchen/..\\mugs") == "Kitchen/..\\mugs"
    assert store.meta("kitchen/..\\MUGS")["classes"][5]["name"] == "x" * 200


@pytest.mark.parametrize(
    ("name", "classes", "words"),
    [
        ("ok", "only one", ["at least two classes", "only one"]),
        ("ok", "a, b, A", ["listed twice"]),
        ("ok", ["a", "y" * 201], ["201 characters", "200"]),
        ("z" * 201, "a, b", ["name", "201 characters"]),
        ("   ", "a, b", ["empty"]),
    ],
)
def test_bad_names_and_classes_get_a_sentence(models_dir, name, classes, words):
    with pytest.raises(ClassifierError) as info:
        ClassifierStore(models_dir).create(name, classes, None)
    assert_plain_sentence(str(info.value), *words)
    assert ClassifierStore(models_dir).names() == []


def test_examples_are_deduplicated_by_content_and_removable(models_dir, tmp_path):
    store = ClassifierStore(models_dir)
    store.create("pets", "cat, dog", None)
    pic = shape_picture("red", 7, (40, 30))
    pic.save(tmp_path / "a.png")
    pic.save(tmp_path / "same-pixels.bmp")
    report = store.add_examples("pets", "cat", [tmp_path / "a.png", tmp_path / "same-pixels.bmp", pic])
    assert report.added == 1
    assert_plain_sentence(report.notices[0], "2 pictures", "kept once")
    other = store.add_examples("pets", "dog", [pic, shape_picture("blue", 8)])
    assert other.added == 1
    assert_plain_sentence(other.notices[0], "already an example of “cat”")
    (tmp_path / "notes.jpg").write_text("not a picture")
    skipped = store.add_examples("pets", "dog", [tmp_path / "notes.jpg"])
    assert skipped.added == 0 and "Skipped a picture (notes.jpg)" in skipped.notices[0]
    cats = store.examples("pets")["cat"]
    assert len(cats) == 1 and Image.open(cats[0][1]).size == (40, 30)
    store.remove_example("pets", cats[0][0])
    assert store.examples("pets")["cat"] == [] and not cats[0][1].exists()
    with pytest.raises(ClassifierError, match="not one of this classifier's classes"):
        store.add_examples("pets", "horse", [pic])
    with pytest.raises(ClassifierError, match="no classifier named"):
        store.add_examples("nope", "cat", [pic])


def test_big_pictures_are_kept_small_and_2000_examples_are_accepted(models_dir):
    store = ClassifierStore(models_dir)
    store.create("many", "a, b", None)
    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 255, (1200, 1600, 3), dtype=np.uint8))
    store.add_examples("many", "a", [big])
    kept = Image.open(store.examples("many")["a"][0][1])
    assert min(kept.size) == 512 and kept.size[0] > kept.size[1]
    pictures = [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(2000)]
    report = store.add_examples("many", "b", pictures)
    assert report.added == 2000 and store.summary("many")["examples"] == 2001


# Training and the held-out comparison ----------------------------------------------------------------------------


def test_stratified_split_keeps_every_class_on_both_sides_and_never_overlaps():
    labels = np.repeat(np.arange(4), [2, 3, 8, 20])
    train, test = stratified_split(labels, 0.25)
    assert not set(train) & set(test) and len(train) + len(test) == len(labels)
    for c in range(4):
        assert (labels[test] == c).sum() >= 1 and (labels[train] == c).sum() >= 1
    _, none = stratified_split(np.array([0, 0, 1]), 0.25)
    assert len(none) == 0


def test_trained_head_beats_chance_on_held_out_examples(trained_models_dir, reference_embeds, shapes_dir):
    saved = ClassifierStore(trained_models_dir).load("Colours")
    head = saved.head
    assert head["classes"] == list(SHAPE_CLASSES) and head["method"] == "linear" and head["blend"] == 0.8
    assert head["held_out"] == 9 and head["trained_on"] == 27  # 3 of 12 per class held out
    chance = 1 / 3
    assert head["accuracy"]["linear"] >= 0.85 > chance + 0.4
    assert head["accuracy"]["prototype"] >= 0.75
    assert np.asarray(head["confusion"]).sum() == 9
    assert head["loss_curve"][-1] < 0.5 * head["loss_curve"][0]
    # the saved head on transformers' own embeddings of fresh pictures (never stored): still far above chance
    fresh = [shape_picture(c, 50_000 + i) for c in SHAPE_CLASSES for i in range(10)]
    labels = np.repeat(np.arange(3), 10)
    probs = head_of(saved).probabilities(reference_embeds(fresh), blend=1.0)
    assert (probs.argmax(1) == labels).mean() >= 0.8


def test_embeddings_match_transformers_and_are_cached(tmp_path, tiny_clip_dir, shapes_dir, clip_task, reference_embeds):
    from studio.classifiers.training import EmbeddingCache, embed_examples, model_key

    store = ClassifierStore(tmp_path)
    store.create("c", list(SHAPE_CLASSES), str(tiny_clip_dir))
    store.add_folder("c", shapes_dir)
    items = [it for v in store.examples("c").values() for it in v][:6]
    cache = EmbeddingCache(tmp_path, model_key(str(tiny_clip_dir), tmp_path))
    ours = embed_examples(clip_task, cache, items)
    expected = reference_embeds([Image.open(p).convert("RGB") for _, p in items])
    np.testing.assert_allclose(ours, expected, atol=2e-5)
    assert len(list(cache.directory.glob("*.npy"))) == 6

    class NoEncoder:  # a second pass must not run the encoder at all
        def forward(self, pixels):
            raise AssertionError("embedded again instead of using the cache")

    np.testing.assert_array_equal(embed_examples(NoEncoder(), cache, items), ours)


def test_training_sentences_for_empty_classes_and_too_few_examples(models_dir, clip_task, tiny_clip_dir):
    store = ClassifierStore(models_dir)
    store.create("few", "red, green, blue", str(tiny_clip_dir))
    store.add_examples("few", "red", [shape_picture("red", 1), shape_picture("red", 2)])
    with pytest.raises(ClassifierError) as info:
        train_classifier(clip_task, store, "few")
    assert_plain_sentence(str(info.value), "“green”", "“blue”", "no examples")
    store.add_examples("few", "green", [shape_picture("green", 1)])
    store.add_examples("few", "blue", [shape_picture("blue", 1), shape_picture("blue", 2, (30, 60))])
    run = train_classifier(clip_task, store, "few")
    assert run.evaluation().n_test == 0 and run.evaluation().accuracy["blended"] is None
    assert_plain_sentence(run.notices[-1], "Too few examples", "“green”", "only one")
    assert any("different sizes" in n for n in run.notices)
    with pytest.raises(ClassifierError, match="between 0"):
        train_classifier(clip_task, store, "few", blend=1.5)


def test_linear_probe_trains_200_examples_of_10_classes_well_under_5_seconds():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 512))
    labels = np.repeat(np.arange(10), 20)
    x = centres[labels] + 2.0 * rng.standard_normal((200, 512))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    started = time.process_time()
    weight, bias, losses = train_linear_probe(x.astype(np.float32), labels, 10)
    assert time.process_time() - started < 5.0
    assert ((x @ weight.T + bias).argmax(1) == labels).mean() == 1.0
    assert losses[-1] < losses[0]


# The encoder + head ONNX graph ------------------------------------------------------------------------------------


def test_onnx_graph_of_encoder_and_head_matches_the_reference(trained_models_dir, reference_embeds):
    import onnxruntime as ort
    from transformers import CLIPProcessor

    saved = ClassifierStore(trained_models_dir).load("Colours")
    assert saved.head["onnx"]["exported"] and saved.head["onnx"]["max_abs_diff"] <= 1e-4
    pictures = [shape_picture(c, 900 + i, (50 + 7 * i, 40)) for i, c in enumerate(SHAPE_CLASSES * 2)]
    pixels = CLIPProcessor.from_pretrained(saved.head["model"])(images=pictures, return_tensors="np")["pixel_values"]
    session = ort.InferenceSession(str(saved.onnx_path), providers=["CPUExecutionProvider"])
    probs, embeds = session.run(None, {"pixel_values": pixels.astype(np.float32)})
    expected_embeds = reference_embeds(pictures)
    np.testing.assert_allclose(embeds, expected_embeds, atol=1e-4)
    np.testing.assert_allclose(probs, head_of(saved).probabilities(expected_embeds), atol=1e-4)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_classify_with_a_saved_classifier_agrees_with_the_reference(trained_models_dir, clip_task, reference_embeds):
    saved = ClassifierStore(trained_models_dir).load("Colours")
    picture = shape_picture("blue", 4242)
    result = classify(clip_task, saved, picture)
    expected = head_of(saved).probabilities(reference_embeds([picture]))[0]
    assert [r["label"] for r in result.labels] == [SHAPE_CLASSES[i] for i in np.argsort(-expected, kind="stable")]
    np.testing.assert_allclose([r["score"] for r in result.labels], np.sort(expected)[::-1], atol=1e-4)


# Versions, damage, atomic saves ----------------------------------------------------------------------------------


def test_damaged_version_is_refused_and_the_previous_one_is_used(trained_models_dir, tmp_path, clip_task):
    models = copy_models(trained_models_dir, tmp_path)
    store = ClassifierStore(models)
    run = train_classifier(clip_task, store, "Colours", method="prototype", blend=1.0)
    v2 = save_run(run, store, onnx=False)
    assert v2.version == 2 and v2.head["method"] == "prototype" and v2.onnx_path is None
    arrays = v2.directory / "head.npz"
    arrays.write_bytes(arrays.read_bytes()[:-10] + b"0123456789")
    loaded = store.load("Colours")
    assert loaded.version == 1 and loaded.head["method"] == "linear"
    assert_plain_sentence(loaded.notices[0], "Version 2", "damaged", "head.npz", "earlier version")
    with pytest.raises(CorruptClassifierError) as info:
        store.load("Colours", version=2)
    assert_plain_sentence(str(info.value), "Version 2", "damaged", "will not use it")
    (store.folder("Colours") / "v1" / "head.json").write_text("{}")
    with pytest.raises(CorruptClassifierError) as info:
        store.load("Colours")
    assert_plain_sentence(str(info.value), "No intact version", "train it")


KILL_MID_SAVE = """
import sys, time
from pathlib import Path
import numpy as np
from studio.classifiers.store import ClassifierStore

store = ClassifierStore(Path(sys.argv[1]))
saved = store.load("Colours")

def write_onnx(path):
    path.write_bytes(b"half a graph")  # a long export, killed half way
    print("WRITING", flush=True)
    time.sleep(600)

store.save_version("Colours", dict(saved.head), saved.arrays, write_onnx)
"""


def test_a_process_killed_mid_save_leaves_the_previous_version_usable(trained_models_dir, tmp_path):
    models = copy_models(trained_models_dir, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_MID_SAVE, str(models)], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    try:
        assert proc.stdout.readline().strip() == "WRITING"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    store = ClassifierStore(models)
    folder = store.folder("Colours")
    assert store.versions("Colours") == [1]
    assert [p.name for p in folder.iterdir() if p.name.startswith(".v2.saving-")]  # the half-written one, aside
    saved = store.load("Colours")
    assert saved.version == 1 and saved.notices == []
    assert store.save_version("Colours", dict(saved.head), saved.arrays) == 2


# Zip export and import -------------------------------------------------------------------------------------------


def test_zip_round_trip(trained_models_dir, tmp_path):
    store = ClassifierStore(trained_models_dir)
    zip_path = store.export_zip("Colours", tmp_path / "out" / "colours.zip")
    other = ClassifierStore(tmp_path / "other")
    assert other.import_zip(zip_path) == "Colours"
    with pytest.raises(ClassifierError, match="already exists"):
        other.import_zip(zip_path)
    assert other.names() == ["Colours"]
    assert other.import_zip(zip_path, "Colours (copy)") == "Colours (copy)"
    a, b = store.load("Colours"), other.load("Colours (copy)")
    assert a.head["accuracy"] == b.head["accuracy"]
    np.testing.assert_array_equal(a.arrays["weight"], b.arrays["weight"])
    assert sum(len(v) for v in other.examples("Colours (copy)").values()) == 36


@pytest.mark.parametrize(
    "member", ["../evil.txt", "/tmp/evil.txt", "v1/../../evil.txt", "examples/../../evil.png", "classifiers/x.json"]
)
def test_zip_with_paths_outside_the_layout_is_refused(trained_models_dir, tmp_path, member):
    good = ClassifierStore(trained_models_dir).export_zip("Colours", tmp_path / "good.zip")
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr(member, "gotcha")
    target = ClassifierStore(tmp_path / "target")
    with pytest.raises(ClassifierError) as info:
        target.import_zip(bad)
    assert_plain_sentence(str(info.value), "not imported")
    assert not list(tmp_path.rglob("evil*")) and target.names() == []


def test_zip_that_is_no_classifier_is_refused(tmp_path):
    (tmp_path / "photo.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ClassifierError) as info:
        ClassifierStore(tmp_path).import_zip(tmp_path / "photo.zip")
    assert_plain_sentence(str(info.value), "photo.zip", "not a classifier")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("classifier.json", json.dumps({"format": 1, "name": "x"}))
    with pytest.raises(ClassifierError, match="not a classifier exported by Studio"):
        ClassifierStore(tmp_path).import_zip(tmp_path / "other.zip")


# Contrastive fine-tuning -------------------------------------------------------------------------------------------


def test_contrastive_fine_tuning_cancels_resumes_and_compares(trained_models_dir, tmp_path, tiny_clip_dir):
    from studio.classifiers.contrastive import CHECKPOINT, CHECKPOINT_DIR, ContrastiveSettings, fine_tune
    from studio.classifiers.training import TrainingCancelled

    models = copy_models(trained_models_dir, tmp_path)
    store = ClassifierStore(models)
    settings = ContrastiveSettings(epochs=2, batch_size=9, learning_rate=1e-4)  # 27 training examples: 3 steps/epoch
    steps = {"n": 0}

    def stop_in_epoch_2():
        steps["n"] += 1
        return steps["n"] > 4

    with pytest.raises(TrainingCancelled) as info:
        fine_tune(store, "Colours", models, settings, device="cpu", should_stop=stop_in_epoch_2)
    assert_plain_sentence(str(info.value), "cancelled during epoch 2", "after epoch 1 is kept")
    checkpoint = store.folder("Colours") / CHECKPOINT_DIR / CHECKPOINT
    assert checkpoint.is_file() and not [p for p in checkpoint.parent.iterdir() if p.name.endswith(".tmp")]
    report = fine_tune(store, "Colours", models, settings, device="cpu")
    assert report.resumed_from == 1 and report.epochs_done == 2 and len(report.losses) == 2
    assert report.held_out == 9 and not report.mixed_precision
    assert report.accuracy["linear_probe"] == store.load("Colours").head["accuracy"]["linear"]
    assert 0.0 <= report.accuracy["fine_tuned"] <= 1.0
    # the fine-tuned model is a model folder the zero-shot task loads like any other
    from studio.tasks.zero_shot import ZeroShotTask

    task = ZeroShotTask.load(report.model_dir, tmp_path / "m", backend="torch", device="cpu")
    result = task(shape_picture("red", 5), "red, green, blue")
    assert sorted(r["label"] for r in result.labels) == ["blue", "green", "red"]


KILL_MID_FINE_TUNING = """
import sys, time
from pathlib import Path
from studio.classifiers.contrastive import ContrastiveSettings, fine_tune
from studio.classifiers.store import ClassifierStore

def progress(fraction, message):
    if message.startswith("Epoch 2"):  # epoch 1's checkpoint is written; now die mid-epoch
        print("EPOCH2", flush=True)
        time.sleep(600)

models = Path(sys.argv[1])
fine_tune(ClassifierStore(models), "Colours", models, ContrastiveSettings(epochs=2, batch_size=9), "cpu",
          progress=progress)
"""


def test_a_process_killed_mid_fine_tuning_resumes_from_its_checkpoint(trained_models_dir, tmp_path):
    from studio.classifiers.contrastive import ContrastiveSettings, fine_tune

    models = copy_models(trained_models_dir, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_MID_FINE_TUNING, str(models)], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    try:
        assert proc.stdout.readline().strip() == "EPOCH2"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    store = ClassifierStore(models)
    assert store.load("Colours").version == 1  # the saved classifier is untouched
    report = fine_tune(store, "Colours", models, ContrastiveSettings(epochs=2, batch_size=9), "cpu")
    assert report.resumed_from == 1 and len(report.losses) == 2
    assert "Resumed from the checkpoint after epoch 1." in report.notices
