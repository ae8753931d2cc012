"""`studio finetune ...` and `studio predict zero-shot --classifier`, run as a user runs them: separate processes,
JSON on stdout, one sentence on stderr with exit status 2 for bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from studio.classifiers.store import ClassifierStore
from studio.classifiers.training import head_of
from tests.fixtures.finetune import SHAPE_CLASSES, shape_picture
from tests.helpers import assert_plain_sentence, error_sentence, stdout_json, studio


@pytest.fixture(scope="module")
def ft_models(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ft-cli") / "exported"
    d.mkdir()
    return d


def test_create_add_train_predict_manage(cli_env, ft_models, tiny_clip_dir, shapes_dir, tmp_path, reference_embeds):
    def run(*args):
        return stdout_json(studio(cli_env, "finetune", *args, "--models-dir", ft_models))

    name = "Colours/../ü"
    created = run("create", name, "--classes", "red, green", "--model", tiny_clip_dir)
    assert created == {"created": name, "model": str(tiny_clip_dir), "classes": ["red", "green"]}
    one = tmp_path / "red.png"
    shape_picture("red", 0).save(one)
    added = run("add", name, one, one, "--class", "red")
    assert added["added"] == 1 and "kept once" in added["notices"][0]
    folder = run("add", name, "--folder", shapes_dir)
    assert folder["added"] == 35  # red/0000.png is the picture added above
    assert "New classes from the folder's sub-folders: blue." in folder["notices"]
    assert [c["name"] for c in folder["classifier"]["classes"]] == ["red", "green", "blue"]

    proc = studio(cli_env, "finetune", "train", name, "--blend", "0.9", "--backend", "torch", "--models-dir", ft_models)
    trained = stdout_json(proc)
    assert "Training" in proc.stderr  # tqdm progress on stderr
    assert trained["held_out"] == 9 and trained["accuracy"]["linear"] >= 0.85
    assert trained["saved"]["version"] == 1 and trained["saved"]["onnx"]["exported"]
    assert len(trained["loss_curve"]) >= 3

    picture = tmp_path / "blue.png"
    shape_picture("blue", 777).save(picture)
    proc = studio(cli_env, "predict", "zero-shot", "--image", picture, "--classifier", name.upper(), "--backend",
                  "torch", "--models-dir", ft_models)  # fmt: skip
    predicted = stdout_json(proc)
    assert predicted["classifier"] == {"name": name, "version": 1, "method": "linear", "blend": 0.9}
    from PIL import Image

    expected = head_of(ClassifierStore(ft_models).load(name)).probabilities(
        reference_embeds([Image.open(picture).convert("RGB")])
    )[0]
    assert [r["label"] for r in predicted["labels"]] == [SHAPE_CLASSES[i] for i in np.argsort(-expected)]
    assert predicted["labels"][0]["score"] == pytest.approx(expected.max(), abs=1e-4)

    evaluated = run("eval", name, "--folder", shapes_dir, "--backend", "torch")
    assert evaluated["saved_held_out"]["held_out"] == 9 and evaluated["folder"]["held_out"] == 36

    listed = run("list")
    assert [c["name"] for c in listed["classifiers"]] == [name]
    assert listed["classifiers"][0]["latest"]["version"] == 1
    zip_path = run("export", name, "--out", tmp_path / "c.zip")["zip"]
    assert run("rename", name, "Old colours") == {"renamed": name, "to": "Old colours"}
    assert run("import", zip_path)["imported"] == name
    assert run("delete", "Old colours") == {"deleted": "Old colours"}
    assert [c["name"] for c in run("list")["classifiers"]] == [name]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["finetune", "create", "solo", "--classes", "only"], ["at least two classes"]),
        (["finetune", "train", "nobody"], ["no classifier named", "nobody"]),
        (["finetune", "add", "empty", "--class", "a"], ["no pictures"]),
        (["finetune", "train", "empty"], ["“a”", "“b”", "no examples"]),
        (["finetune", "import", "nothing.zip"], ["nothing.zip", "not a classifier"]),
        (["finetune", "eval", "empty"], ["not been trained"]),
        (["predict", "zero-shot", "--image", "IMAGE", "--classifier", "empty"], ["not been trained"]),
    ],
)
def test_bad_input_exits_2_with_a_sentence(args, words, cli_env, tmp_path):
    models = tmp_path / "m"
    ClassifierStore(models).create("empty", "a, b", None)
    (tmp_path / "nothing.zip").write_text("no zip")
    shape_picture("red", 1).save(tmp_path / "x.png")
    args = [str(tmp_path / "x.png") if a == "IMAGE" else a for a in args]
    args = [str(tmp_path / a) if a.endswith(".zip") else a for a in args]
    assert_plain_sentence(error_sentence(studio(cli_env, *args, "--models-dir", models)), *words)


def test_classifier_and_labels_are_exclusive(cli_env, tmp_path):
    proc = studio(cli_env, "predict", "zero-shot", "--image", "x.png", "--labels", "a,b", "--classifier", "c")
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr
    shutil.rmtree(tmp_path, ignore_errors=True)
