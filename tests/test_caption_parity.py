"""Captions: our ONNX and PyTorch decoding reproduce transformers' generate() token for token on real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BlipForConditionalGeneration, BlipProcessor

from studio.generation import GenerationSettings
from studio.media.image import ImagePreprocessing
from studio.tasks.caption import CaptionTask
from tests.helpers import assert_preprocessing_matches

DECODING = {
    "greedy": dict(max_new_tokens=12),
    "greedy-penalized": dict(max_new_tokens=15, repetition_penalty=1.3, no_repeat_ngram_size=2),
    "beam3": dict(max_new_tokens=12, num_beams=3),
    "beam4-long": dict(max_new_tokens=20, num_beams=4, length_penalty=0.6, repetition_penalty=1.2, min_new_tokens=5),
}


@pytest.fixture(scope="module")
def reference(tiny_blip_dir):
    model = BlipForConditionalGeneration.from_pretrained(str(tiny_blip_dir)).eval()
    processor = BlipProcessor.from_pretrained(str(tiny_blip_dir))

    def run(photo, prefix, kwargs):
        inputs = (
            processor(images=photo, text=prefix, return_tensors="pt")
            if prefix
            else processor(images=photo, return_tensors="pt")
        )
        prompt_len = 1 if not prefix else inputs["input_ids"].shape[1] - 1  # [DEC] + prefix (its [SEP] dropped)
        with torch.inference_mode():
            out = model.generate(**inputs, do_sample=False, **kwargs)
        return out[0, prompt_len:].tolist()

    return run


@pytest.fixture(scope="module", params=["onnx", "torch"])
def task(request, tiny_blip_dir, caption_models_dir):
    return CaptionTask.load(str(tiny_blip_dir), caption_models_dir, backend=request.param, device="cpu")


def test_preprocessing_matches_processor(tiny_blip_dir, photos):
    ours = ImagePreprocessing.from_dir(tiny_blip_dir)
    processor = BlipProcessor.from_pretrained(str(tiny_blip_dir)).image_processor
    assert_preprocessing_matches(ours, processor, photos.values())


def test_preprocessing_matches_processor_at_blip_resolution(photos):
    from transformers import BlipImageProcessor

    processor = BlipImageProcessor()  # Salesforce/blip-image-captioning-base's settings: 384x384 bicubic
    ours = ImagePreprocessing(None, 384, 384, None, None, 3, 1 / 255, processor.image_mean, processor.image_std)
    assert_preprocessing_matches(ours, processor, photos.values())


@pytest.mark.parametrize("decoding", list(DECODING), ids=list(DECODING))
@pytest.mark.parametrize("prefix", [None, "a picture of"], ids=["no-prefix", "prefix"])
def test_decoding_matches_generate(task, reference, photos, decoding, prefix):
    settings = GenerationSettings(**DECODING[decoding])
    for name, photo in photos.items():
        expected = reference(photo, prefix, DECODING[decoding])
        result = task(photo, prefix=prefix, settings=settings)
        assert result.token_ids == expected, f"{task.runtime.engine}, {name}"


def test_caption_text_is_the_decoded_tokens(task, tiny_blip_dir, photos):
    processor = BlipProcessor.from_pretrained(str(tiny_blip_dir))
    result = task(photos["coffee"], prefix="a picture of", settings=GenerationSettings(max_new_tokens=8))
    prompt = processor.tokenizer("a picture of")["input_ids"][1:-1]
    assert result.caption == processor.decode(prompt + result.token_ids, skip_special_tokens=True)
    assert result.caption.startswith("a picture of")
    assert 0.0 <= result.confidence <= 1.0
    assert result.text  # phrased for listeners (a tiny random model is never "sure")
    assert result.certainty in ("sure", "unsure", "guessing")


def test_confidence_is_the_geometric_mean_token_probability(tiny_blip_dir, photos, task):
    model = BlipForConditionalGeneration.from_pretrained(str(tiny_blip_dir)).eval()
    processor = BlipProcessor.from_pretrained(str(tiny_blip_dir))
    result = task(photos["astronaut"], settings=GenerationSettings(max_new_tokens=10))
    inputs = processor(images=photos["astronaut"], return_tensors="pt")
    ids = torch.tensor([[30522, *result.token_ids]])
    with torch.inference_mode():
        embeds = model.vision_model(pixel_values=inputs["pixel_values"]).last_hidden_state
        logits = model.text_decoder(input_ids=ids, encoder_hidden_states=embeds).logits[0, :-1]
    logprobs = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0].numpy()
    if result.token_ids[-1] == 102:  # the end token does not count
        logprobs = logprobs[:-1]
    assert result.confidence == pytest.approx(float(np.exp(logprobs.mean())), rel=1e-4)
