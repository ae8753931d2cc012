"""A tiny random SmolVLM in the real Hugging Face format: GPT-2's byte-level BPE with SmolVLM's special tokens
(`vocab.write_gpt2_vocab`: SmolLM2's own vocabulary ships in no installed package), SmolVLM's chat template, and its
image processor settings scaled down (32-pixel tiles, photos resized to 128 pixels: up to 16 tiles and a global view,
4 image tokens each)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.tiny.stack import TINY_STACK
from tests.tiny.vocab import write_gpt2_vocab

TILE = 32
# SmolVLM's special tokens (SmolLM2's chat tokens, the image framing tokens, a row/column token per tile position).
SPECIAL_TOKENS = [
    "<|im_start|>",
    "<|im_end|>",
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    "<end_of_utterance>",
    *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)),
]


def smolvlm_tokenizer():
    """GPT-2's BPE tokenizer with SmolVLM's special tokens added after it."""
    from transformers import GPT2Tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        write_gpt2_vocab(Path(tmp))
        tokenizer = GPT2Tokenizer(
            str(Path(tmp) / "vocab.json"),
            str(Path(tmp) / "merges.txt"),
            unk_token="<|endoftext|>",
            bos_token="<|im_start|>",
            eos_token="<end_of_utterance>",
            pad_token="<|im_end|>",
            additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in ("<|im_start|>", "<|im_end|>")],
            model_max_length=8192,
        )
    tokenizer.add_special_tokens({"bos_token": "<|im_start|>", "pad_token": "<|im_end|>"})
    return tokenizer


def make_tiny_smolvlm(out: Path, seed: int = 0) -> Path:
    """Saves a tiny random SmolVLMForConditionalGeneration with its tokenizer, image processor and chat template."""
    import json

    import torch
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration
    from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil

    from studio.families.smolvlm import CHAT_TEMPLATE

    torch.manual_seed(seed)
    tokenizer = smolvlm_tokenizer()
    ids = dict(zip(SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS)))
    config = SmolVLMConfig(
        text_config=dict(
            model_type="llama",
            vocab_size=len(tokenizer),
            **TINY_STACK,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            rope_theta=100000.0,
            rms_norm_eps=1e-5,
            bos_token_id=ids["<|im_start|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|im_end|>"],
            tie_word_embeddings=True,
            initializer_range=0.2,  # peaked logits, so greedy choices are not near-ties of random noise
        ),
        vision_config=dict(**TINY_STACK, image_size=TILE, patch_size=8, initializer_range=0.1),
        scale_factor=2,
        image_token_id=ids["<image>"],
        tie_word_embeddings=True,
    )
    model = SmolVLMForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = [ids["<end_of_utterance>"], ids["<|im_end|>"]]
    model.generation_config.pad_token_id = ids["<|im_end|>"]
    model.generation_config.bos_token_id = ids["<|im_start|>"]
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    SmolVLMImageProcessorPil(
        size={"longest_edge": 4 * TILE}, max_image_size={"longest_edge": TILE}, do_image_splitting=True
    ).save_pretrained(str(out))
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    image_seq_len = (TILE // 8) ** 2 // 4
    (out / "processor_config.json").write_text(
        json.dumps({"processor_class": "SmolVLMProcessor", "image_seq_len": image_seq_len})
    )
    return out
