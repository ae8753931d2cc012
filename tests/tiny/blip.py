"""Tiny random BLIP models in the real Hugging Face format, with the real BLIP tokenizer: the captioner (family "blip")
and the question answerer (family "blip_vqa"), which share their config, so their text and vision towers are alike."""

from __future__ import annotations

from pathlib import Path

from tests.tiny.stack import TINY_STACK
from tests.tiny.vocab import bert_tokenizer


def blip_tokenizer():
    """BLIP's tokenizer: bert-base-uncased WordPiece plus [DEC] (30522, the decoder start) and [ENC] (30523)."""
    tokenizer = bert_tokenizer()
    tokenizer.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    return tokenizer


def _make_tiny_blip(model_class, out: Path, seed: int, image_size: int) -> Path:
    """Saves a tiny random BLIP model of `model_class` (caption or VQA head) with the real BLIP tokenizer and processor
    settings; both heads share this config, so their text and vision towers are alike."""
    import torch
    from transformers import BlipConfig, BlipImageProcessor, BlipProcessor

    torch.manual_seed(seed)
    tokenizer = blip_tokenizer()
    assert tokenizer.convert_tokens_to_ids(["[DEC]", "[ENC]"]) == [30522, 30523]
    config = BlipConfig(
        text_config=dict(
            vocab_size=30524,
            **TINY_STACK,
            encoder_hidden_size=32,
            max_position_embeddings=64,
            bos_token_id=30522,
            sep_token_id=102,
            pad_token_id=0,
            eos_token_id=2,
            initializer_range=0.1,
        ),
        vision_config=dict(
            **TINY_STACK,
            image_size=image_size,
            patch_size=8,
            initializer_range=0.1,  # BLIP's vision default (1e-10) makes every photo look the same
        ),
        projection_dim=16,
    )
    model = model_class(config).eval()
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": image_size, "width": image_size}), tokenizer=tokenizer
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    processor.save_pretrained(str(out))
    return out


def make_tiny_blip_caption(out: Path, seed: int = 0, image_size: int = 32) -> Path:
    """Saves a tiny random BlipForConditionalGeneration with the real BLIP tokenizer and processor settings."""
    from transformers import BlipForConditionalGeneration

    return _make_tiny_blip(BlipForConditionalGeneration, out, seed, image_size)


def make_tiny_blip_vqa(out: Path, seed: int = 0, image_size: int = 32) -> Path:
    """Saves a tiny random BlipForQuestionAnswering with the real BLIP tokenizer and processor settings."""
    from transformers import BlipForQuestionAnswering

    return _make_tiny_blip(BlipForQuestionAnswering, out, seed, image_size)
