"""Progress in words: exporting a model and saving a classifier report what they do as sentences a non-programmer
reads ("Exporting the image encoder to ONNX (1 of 2)…", "Saving the classifier…"), with fractions that only grow and
end at 1, and never a folder path or a library's own progress bar text."""

from __future__ import annotations

import re

from studio.progress import Progress

# What a progress line must not show: a folder path, tqdm/library internals ("105/105 steps", "Interpreter").
_INTERNALS = re.compile(r"(/[\w.-]+){2,}|\d+/\d+ steps|Interpreter|it/s|%\|")


def recorder() -> tuple[Progress, list[tuple[float, str]]]:
    seen: list[tuple[float, str]] = []
    return (lambda fraction, message: seen.append((fraction, message))), seen


def assert_words(seen: list[tuple[float, str]], *expected: str) -> None:
    assert seen, "no progress was reported"
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions), seen  # never goes back
    assert fractions[-1] == 1.0, seen
    for _, message in seen:
        assert message and not _INTERNALS.search(message), message
    said = " ".join(m for _, m in seen)
    for words in expected:
        assert words in said, (words, said)


def test_exporting_a_model_says_each_graph_in_words(tiny_clip_dir, tmp_path):
    from studio.export.exporter import export_model
    from studio.sources import resolve

    progress, seen = recorder()
    export_model(resolve(str(tiny_clip_dir), "zero-shot", tmp_path), tmp_path, progress)
    assert_words(seen, "Loading the model", "to ONNX (1 of 2)", "to ONNX (2 of 2)", "against PyTorch")


def test_saving_a_classifier_says_each_step_in_words(tiny_clip_dir, shapes_dir, clip_task, tmp_path):
    from studio.classifiers.store import ClassifierStore
    from studio.classifiers.training import save_run, train_classifier

    store = ClassifierStore(tmp_path)
    store.create("Colours", ["red", "green", "blue"], str(tiny_clip_dir))
    store.add_folder("Colours", shapes_dir)
    run = train_classifier(clip_task, store, "Colours")
    progress, seen = recorder()
    save_run(run, store, progress=progress)
    assert_words(
        seen,
        "Saving the classifier",
        "Exporting the image encoder and head to ONNX (step 2 of 3)",
        "Checking the ONNX graph against PyTorch (step 3 of 3)",
        "Checking the saved classifier",
    )
    assert len({round(f, 2) for f, _ in seen}) >= 5, seen  # real steps, not one jump from 10 % to done
