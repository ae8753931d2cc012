"""The Ask tab's ViLT: our preprocessing, graph, ONNX export and answers agree with transformers on the same weights.

The reference is transformers itself: `ViltProcessor` (with the PIL image processor, the one installed here) feeding
`ViltForQuestionAnswering` (the `vilt_logits` fixture), and the visual-question-answering pipeline's scoring
(sigmoid + top-k), restated in tests/helpers.py because transformers 5 no longer ships that pipeline.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from studio.families import get_family, vilt
from studio.media.image import ViltImagePreprocessing
from tests.helpers import pipeline_top_answers
from tests.tiny.vilt import ANSWERS

QUESTIONS = ("What color is the cat?", "How many cups are on the table?", "is this a photo of a person in space")
TOLERANCE = 1e-4
SPEC = vilt.GRAPHS[0]


@pytest.fixture(scope="module")
def vqa_models_dir(exports, tiny_vilt_dir):
    """A models directory holding the tiny ViLT's ONNX export (shared with other modules: read-only)."""
    return exports("vqa", tiny_vilt_dir)


@pytest.fixture(scope="module")
def export_dir(vqa_models_dir, tiny_vilt_dir):
    from studio.export.exporter import export_dir as export_dir_of
    from studio.sources import resolve

    return export_dir_of(vqa_models_dir, resolve(str(tiny_vilt_dir), "vqa", vqa_models_dir))


@pytest.fixture(scope="module")
def vqa_photos(photos):
    """Square, landscape and portrait photos (a rotated chelsea), so height and width differ both ways."""
    return {**photos, "chelsea-portrait": photos["chelsea"].transpose(Image.Transpose.ROTATE_90)}


@pytest.fixture(scope="module")
def inputs(tiny_vilt_dir):
    return vilt.ViltInputs(tiny_vilt_dir)


def _run(module, feed):
    with torch.inference_mode():
        return module(*(torch.from_numpy(feed[name]) for name in SPEC.input_names)).numpy()


def _save_processor(processor, directory):
    processor.save_pretrained(str(directory))
    return directory


@pytest.mark.parametrize("settings", ["tiny", "default", "legacy-config"])
def test_preprocessing_matches_vilt_image_processor(settings, tiny_vilt_dir, vqa_photos, tmp_path):
    from transformers import ViltImageProcessorPil

    if settings == "tiny":
        directory = tiny_vilt_dir
    elif settings == "default":  # dandelin/vilt-b32-finetuned-vqa's settings: shorter side 384, multiples of 32
        directory = _save_processor(ViltImageProcessorPil(), tmp_path)
        assert ViltImagePreprocessing.from_dir(directory) == ViltImagePreprocessing()
    else:  # as ViltFeatureExtractor saved it, which older hub folders still carry
        legacy = {
            "feature_extractor_type": "ViltFeatureExtractor",
            "do_normalize": True,
            "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5],
            "image_std": [0.5, 0.5, 0.5],
            "resample": 3,
            "size": 384,
            "size_divisor": 32,
        }
        (tmp_path / "preprocessor_config.json").write_text(json.dumps(legacy))
        directory = tmp_path
    ours = ViltImagePreprocessing.from_dir(directory)
    processor = ViltImageProcessorPil.from_pretrained(str(directory))
    # Sizes where rounding to the nearest pixel before rounding down to a multiple of 32 decides the outcome (the
    # long side scales to 575.6 and 95.7 pixels: 576 and 96, not 544 and 64), and a panorama whose long side is
    # capped at 1333/800 of the short one.
    edge_cases = {f"coffee-{w}x{h}": vqa_photos["coffee"].resize((w, h)) for w, h in ((1499, 1000), (1495, 1000))}
    edge_cases["panorama"] = vqa_photos["astronaut"].resize((1200, 500))
    sizes = set()
    for name, photo in {**vqa_photos, **edge_cases}.items():
        expected = processor(images=[photo], return_tensors="np")
        assert (expected["pixel_mask"] == 1).all(), "one image is never padded, so ViLT needs no pixel mask"
        pixels = ours(photo)
        assert pixels.shape == expected["pixel_values"].shape[1:], name
        np.testing.assert_allclose(pixels, expected["pixel_values"][0], atol=1e-5, err_msg=name)
        sizes.add(pixels.shape)
    assert len(sizes) >= 4  # square, landscape, portrait and panorama all kept their aspect ratio


def test_batches_of_differently_sized_images_are_refused(inputs, vqa_photos):
    with pytest.raises(ValueError, match="one prepared size"):
        inputs([vqa_photos["chelsea"], vqa_photos["chelsea-portrait"]], ["what is it?", "what is it?"])


def test_graph_module_matches_transformers(tiny_vilt_dir, vilt_logits, inputs, vqa_photos):
    module = SPEC.build(vilt.load_model(tiny_vilt_dir)).eval()
    for name, photo in vqa_photos.items():
        for question in QUESTIONS:
            np.testing.assert_allclose(
                _run(module, inputs(photo, question)), vilt_logits(photo, question), atol=TOLERANCE, err_msg=name
            )
        # Several questions about one photo run as one batch; the shorter ones are padded and masked.
        batch = _run(module, inputs(photo, list(QUESTIONS)))
        expected = np.concatenate([vilt_logits(photo, question) for question in QUESTIONS])
        np.testing.assert_allclose(batch, expected, atol=TOLERANCE, err_msg=f"{name}, batch")


def test_long_questions_are_cut_at_the_position_limit(tiny_vilt_dir, vilt_logits, inputs, vqa_photos):
    question = "is there " + " and ".join(["a cat", "a dog", "a cup"] * 10) + " in this picture?"
    feed = inputs(vqa_photos["coffee"], question)
    assert feed["input_ids"].shape == (1, 40)
    assert feed["input_ids"][0, -1] == inputs.tokenizer.sep_token_id
    module = SPEC.build(vilt.load_model(tiny_vilt_dir)).eval()
    expected = vilt_logits(vqa_photos["coffee"], question, truncation=True, max_length=40)
    np.testing.assert_allclose(_run(module, feed), expected, atol=TOLERANCE)


def test_export_matches_transformers_at_other_image_sizes(export_dir, vilt_logits, vqa_photos):
    from studio.backends.onnx import OnnxBackend
    from studio.export.exporter import parity_photos

    manifest = json.loads((export_dir / "manifest.json").read_text())
    entry = manifest["graphs"]["vqa_classifier"]
    assert 0 <= entry["max_abs_diff"] <= entry["tolerance"]["atol"]
    assert entry["dynamic_axes"]["pixel_values"] == {"0": "batch", "2": "height", "3": "width"}
    assert manifest["metadata"]["id2label"] == list(ANSWERS)
    assert manifest["metadata"]["max_text_length"] == 40

    example_size = vilt.parity_inputs(export_dir, parity_photos())["vqa_classifier"]["pixel_values"].shape[2:]
    graph = OnnxBackend(export_dir / entry["file"], device="cpu")
    prepare = vilt.ViltInputs(export_dir, manifest["metadata"]["max_text_length"])
    other_sizes = set()
    for name, photo in vqa_photos.items():
        feed = prepare(photo, list(QUESTIONS))
        if feed["pixel_values"].shape[2:] != example_size:
            other_sizes.add(feed["pixel_values"].shape[2:])
        expected = np.concatenate([vilt_logits(photo, question) for question in QUESTIONS])
        np.testing.assert_allclose(graph.run(feed)["logits"], expected, atol=TOLERANCE, err_msg=name)
    assert len(other_sizes) >= 2  # square and portrait, both unlike the landscape export example


def test_top_answers_match_the_pipeline(export_dir, vilt_logits, vqa_photos):
    from studio.backends.onnx import OnnxBackend

    manifest = json.loads((export_dir / "manifest.json").read_text())
    graph = OnnxBackend(export_dir / "vqa_classifier.onnx", device="cpu")
    prepare = vilt.ViltInputs(export_dir)
    rankings = set()
    for name, photo in vqa_photos.items():
        for question in QUESTIONS:
            logits = graph.run(prepare(photo, question))["logits"]
            ours = vilt.top_answers(logits[0], manifest["metadata"]["id2label"])
            expected = pipeline_top_answers(vilt_logits.model, vilt_logits(photo, question))
            assert [a["answer"] for a in ours] == [e["answer"] for e in expected], (name, question)
            assert [a["score"] for a in ours] == pytest.approx([e["score"] for e in expected], abs=1e-5)
            rankings.add(tuple(a["answer"] for a in ours))
    # The answers depend on the photo and the question, so agreeing on them means something.
    assert len(rankings) > 3


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_load_graphs_runs_either_backend(backend, tiny_vilt_dir, vqa_models_dir, vilt_logits, vqa_photos):
    from transformers import AutoTokenizer

    from studio.loading import load_graphs
    from studio.sources import resolve

    source = resolve(str(tiny_vilt_dir), "vqa", vqa_models_dir)
    assert source.family == "vilt"
    graphs = load_graphs(source, vqa_models_dir, backend=backend, device="cpu")
    assert graphs.runtime.engine == {"torch": "PyTorch", "onnx": "ONNX Runtime"}[backend]
    assert graphs.metadata["id2label"] == list(ANSWERS)
    # As a task does it: the files beside the graphs (export or model folder) and the model's own tokenizer.
    tokenizer = AutoTokenizer.from_pretrained(str(graphs.files_dir))
    photo, question = vqa_photos["chelsea-portrait"], QUESTIONS[0]
    feed = vilt.prepare_inputs(graphs.files_dir, tokenizer, photo, question, graphs.metadata["max_text_length"])
    logits = graphs.graphs["vqa_classifier"].run(feed)["logits"]
    np.testing.assert_allclose(logits, vilt_logits(photo, question), atol=TOLERANCE)


def test_random_full_size_model_from_the_registry(vqa_photos):
    from studio.registry import REGISTRY

    spec = REGISTRY.default_for("vqa")
    family = get_family(spec.family)
    assert family is vilt
    model = family.random_model(spec.architecture)
    meta = family.metadata(model)
    assert len(meta["id2label"]) == spec.architecture["num_labels"] == 3129
    assert meta["max_text_length"] == 40
    # The real resolution: 384 x 576 pixels make 12 x 18 patches from a trained grid of 12 x 12.
    pixels = ViltImagePreprocessing()(vqa_photos["coffee"])[None]
    assert pixels.shape == (1, 3, 384, 576)
    ids = torch.tensor([[101, 2054, 2003, 2006, 1996, 2795, 1029, 102]])
    with torch.inference_mode():
        expected = model(input_ids=ids, pixel_values=torch.from_numpy(pixels)).logits
        ours = SPEC.build(model)(ids, torch.ones_like(ids), torch.zeros_like(ids), torch.from_numpy(pixels))
    torch.testing.assert_close(ours, expected, atol=TOLERANCE, rtol=1e-3)
