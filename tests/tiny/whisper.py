"""A tiny random WhisperForConditionalGeneration set up like tiny.en, with the real tiny.en tokenizer (family
"whisper").

The weights are random: tests compare our transcripts with transformers' on the same weights, never with fixed text.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.tiny.vocab import make_whisper_tokenizer, tiny_en_files

# Random weights almost never write <|endoftext|>, so every transcript runs to the generation length; tiny.en's 448
# tokens would take seconds per call on two CPU cores, 24 keep a test in a fraction of one.
TINY_MAX_LENGTH = 24


def make_tiny_whisper(out: Path, seed: int = 0, max_length: int = TINY_MAX_LENGTH) -> Path:
    """Saves a tiny random WhisperForConditionalGeneration set up like tiny.en, with its tokenizer and features.

    Args:
        out: The model directory to write.
        seed: Weight seed.
        max_length: The generation config's max_length (prompt tokens included).
    """
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    tokenizer = make_whisper_tokenizer()
    ids = dict(
        zip(
            ("eos", "sot", "prev", "no_timestamps"),
            tokenizer.convert_tokens_to_ids(
                ["<|endoftext|>", "<|startoftranscript|>", "<|startofprev|>", "<|notimestamps|>"]
            ),
        )
    )
    assert ids == {"eos": 50256, "sot": 50257, "prev": 50360, "no_timestamps": 50362}, ids  # tiny.en's ids
    # tiny.en's suppressed tokens (symbols it must never write, and special tokens) travel in the CTranslate2 config.
    ct2 = json.loads((tiny_en_files() / "config.json").read_text())
    token_ids = dict(
        bos_token_id=ids["sot"], eos_token_id=ids["eos"], pad_token_id=ids["eos"], decoder_start_token_id=ids["sot"]
    )
    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=80,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=1500,  # 3000 feature frames, halved by the encoder's strided convolution
        max_target_positions=448,
        suppress_tokens=ct2["suppress_ids"],
        begin_suppress_tokens=ct2["suppress_ids_begin"],
        **token_ids,
    )
    model = WhisperForConditionalGeneration(config).eval()
    # At plain random init the decoder's cross-attention is near uniform over all 1500 encoder frames, most of them
    # the zero padding after a short question, so every recording reads the same. Louder convolutions and sharper
    # cross-attention make the transcript depend on the sound, which tests need to tell recordings apart.
    with torch.no_grad():
        model.model.encoder.conv1.weight.mul_(20)
        model.model.encoder.conv2.weight.mul_(20)
        for layer in model.model.decoder.layers:
            attention = layer.encoder_attn
            attention.q_proj.weight.mul_(30)
            attention.k_proj.weight.mul_(30)
            attention.v_proj.weight.mul_(10)
            attention.out_proj.weight.mul_(10)
    # As openai/whisper-tiny.en's generation_config.json: English-only, no timestamps, greedy.
    model.generation_config = GenerationConfig(
        **token_ids,
        no_timestamps_token_id=ids["no_timestamps"],
        prev_sot_token_id=ids["prev"],
        is_multilingual=False,
        return_timestamps=False,
        suppress_tokens=ct2["suppress_ids"],
        begin_suppress_tokens=ct2["suppress_ids_begin"],
        max_initial_timestamp_index=50,
        max_length=max_length,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer).save_pretrained(
        out
    )
    return out
