"""Zero-shot photos: our ONNX path, our PyTorch path and transformers' own pipeline agree on the same weights and real
photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from transformers import CLIPProcessor, pipeline

from studio.media.image import ImagePreprocessing, load_image
from studio.tasks.zero_shot import ENSEMBLE_TEMPLATES, ZeroShotTask
from tests.helpers import assert_preprocessing_matches

LABELS = ["cat", "astronaut", "cup of coffee", "rocket", "dog"]
TEMPLATE = "a photo of a {}."


@pytest.fixture(scope="module")
def reference(tiny_clip_dir):
    return pipeline("zero-shot-image-classification", model=str(tiny_clip_dir), device="cpu")


@pytest.fixture(scope="module")
def onnx_task(tiny_clip_dir, exported_models_dir):
    return ZeroShotTask.load(str(tiny_clip_dir), exported_models_dir, backend="onnx", device="cpu")


@pytest.fixture(scope="module")
def torch_task(tiny_clip_dir, exported_models_dir):
    return ZeroShotTask.load(str(tiny_clip_dir), exported_models_dir, backend="torch", device="cpu")


def test_preprocessing_matches_processor(tiny_clip_dir, photos):
    ours = ImagePreprocessing.from_dir(tiny_clip_dir)
    processor = CLIPProcessor.from_pretrained(str(tiny_clip_dir)).image_processor
    assert_preprocessing_matches(ours, processor, photos.values())


def test_preprocessing_matches_processor_at_clip_resolution(photos):
    """The real checkpoints' 224 resize/crop, on a non-square photo and a portrait one."""
    from transformers import CLIPImageProcessor

    processor = CLIPImageProcessor()  # the defaults are openai/clip-vit-base-patch32's settings
    ours = ImagePreprocessing(224, None, None, 224, 224, 3, 1 / 255, processor.image_mean, processor.image_std)
    photo = photos["coffee"]
    assert_preprocessing_matches(ours, processor, (photo, photo.transpose(0)))  # landscape and portrait


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_onnx_torch_and_pipeline_agree(name, photos, reference, onnx_task, torch_task):
    expected = reference(photos[name], candidate_labels=LABELS, hypothesis_template=TEMPLATE)
    expected_scores = {e["label"]: e["score"] for e in expected}
    for task in (onnx_task, torch_task):
        result = task(photos[name], LABELS, templates=(TEMPLATE,))
        assert [r["label"] for r in result.labels] == [e["label"] for e in expected]
        for r in result.labels:
            assert r["score"] == pytest.approx(expected_scores[r["label"]], abs=1e-4)
    assert onnx_task.runtime.engine == "ONNX Runtime"
    assert torch_task.runtime.engine == "PyTorch"


def test_bgr_frames_are_converted(photo_arrays, onnx_task):
    rgb = photo_arrays["chelsea"]
    from_rgb = onnx_task(rgb, LABELS).labels
    from_bgr = onnx_task(np.ascontiguousarray(rgb[:, :, ::-1]), LABELS, channel_order="BGR").labels
    assert from_rgb == from_bgr
    wrong = onnx_task(np.ascontiguousarray(rgb[:, :, ::-1]), LABELS).labels  # BGR passed as RGB differs
    assert [r["score"] for r in wrong] != pytest.approx([r["score"] for r in from_rgb], abs=1e-6)


def test_grayscale_rgba_palette_match_pipeline(photos, reference, onnx_task):
    cat = photos["chelsea"]
    rgba = cat.convert("RGBA")
    rgba.putalpha(128)
    # The image processors composite transparency onto white (the pipeline's loader would drop alpha first).
    on_white = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    for variant, as_seen in (
        (cat.convert("L"), cat.convert("L")),
        (rgba, on_white),
        (cat.convert("P"), cat.convert("P")),
    ):
        expected = reference(as_seen, candidate_labels=LABELS, hypothesis_template=TEMPLATE)
        result = onnx_task(variant, LABELS)
        assert [r["label"] for r in result.labels] == [e["label"] for e in expected]
        assert [r["score"] for r in result.labels] == pytest.approx([e["score"] for e in expected], abs=1e-4)


def test_template_ensemble_averages_normalized_text_embeddings(tiny_clip_dir, photos, onnx_task):
    import torch
    from transformers import CLIPModel

    model = CLIPModel.from_pretrained(str(tiny_clip_dir)).eval()
    processor = CLIPProcessor.from_pretrained(str(tiny_clip_dir))
    with torch.no_grad():
        text = processor.tokenizer(
            [t.format(lbl) for lbl in LABELS for t in ENSEMBLE_TEMPLATES], padding=True, return_tensors="pt"
        )
        t = model.get_text_features(**text).pooler_output
        t = torch.nn.functional.normalize(t, dim=-1).reshape(len(LABELS), len(ENSEMBLE_TEMPLATES), -1).mean(1)
        t = torch.nn.functional.normalize(t, dim=-1)
        pixels = processor.image_processor(images=[photos["astronaut"]], return_tensors="pt")["pixel_values"]
        i = torch.nn.functional.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
        expected = (model.logit_scale.exp() * i @ t.T).softmax(-1)[0].numpy()
    result = onnx_task(photos["astronaut"], LABELS, templates=ENSEMBLE_TEMPLATES)
    got = {r["label"]: r["score"] for r in result.labels}
    assert [got[lbl] for lbl in LABELS] == pytest.approx(expected.tolist(), abs=1e-4)


def test_text_embeddings_are_cached_per_label_set(onnx_task, photos):
    first = onnx_task(photos["coffee"], ["tea", "coffee", "milk"])
    second = onnx_task(photos["astronaut"], ["tea", "coffee", "milk"])
    assert first.text_ms > 0
    assert second.text_ms == 0.0
    assert onnx_task(photos["coffee"], ["tea", "coffee", "water"]).text_ms > 0


def test_int8_variant_ranks_like_fp32(tiny_clip_dir, exported_models_dir, photos, onnx_task):
    int8 = ZeroShotTask.load(str(tiny_clip_dir), exported_models_dir, backend="onnx", device="cpu", variant="int8")
    assert int8.runtime.variant == "int8"
    for photo in photos.values():
        a = onnx_task(photo, LABELS).labels
        b = int8(photo, LABELS).labels
        assert [r["score"] for r in b] == pytest.approx([r["score"] for r in a], abs=0.05)


def test_exif_orientation_is_applied_like_the_pipeline(tmp_path, photos, reference, onnx_task):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display", as phones write it
    photos["coffee"].save(path, exif=exif)
    expected = reference(str(path), candidate_labels=LABELS, hypothesis_template=TEMPLATE)
    result = onnx_task(str(path), LABELS)
    assert [r["score"] for r in result.labels] == pytest.approx([e["score"] for e in expected], abs=1e-4)
    assert load_image(str(path)).size == (400, 600)
