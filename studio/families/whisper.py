"""Whisper: one "transcriber" graph, log-mel features in, generated token ids out, through transformers' `generate()`.

Whisper's decoding is more than a loop over a decoder: its generation config forces the prompt tokens
(<|startoftranscript|>, then <|notimestamps|>), suppresses tokens the model must never write, and handles language and
timestamps. Until its encoder and decoder are exported as graphs with our own loop reproducing all of that, the graph
wraps `generate()` itself and the family runs with PyTorch only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.families import GraphSpec

# No ONNX export yet: `studio.loading` runs the graphs below with PyTorch and refuses backend="onnx" with a sentence.
EXPORTABLE = False

# Files a model folder needs beside config and weights: each inner tuple is alternatives. Older checkpoints (the
# OpenAI ones) keep the feature extractor settings in preprocessor_config.json, transformers 5 writes
# processor_config.json.
REQUIRED_FILES = (
    ("preprocessor_config.json", "processor_config.json"),
    ("tokenizer.json", "vocab.json"),
)

# The English-only checkpoints' special tokens (vocabulary of 51864), for random models built without a tokenizer.
# Multilingual checkpoints have one more token (<|en|> onwards shift by one); their own configs carry their ids.
ENGLISH_ONLY_TOKENS = {
    "<|endoftext|>": 50256,
    "<|startoftranscript|>": 50257,
    "<|startofprev|>": 50360,
    "<|notimestamps|>": 50362,
}


def english_generation_kwargs(generation_config) -> dict:
    """What `generate()` needs beside the features for an English transcript without timestamps.

    English-only checkpoints (tiny.en...) refuse a language or task argument: their generation config already starts
    every transcript the English way. Multilingual ones would otherwise detect the language first and might
    transcribe in another one, so English and transcription are asked for explicitly.
    """
    kwargs: dict = {"return_timestamps": False}
    if getattr(generation_config, "is_multilingual", False) or getattr(generation_config, "lang_to_id", None):
        kwargs.update(language="en", task="transcribe")
    return kwargs


def _transcriber(model):
    import torch

    class WhisperTranscriber(torch.nn.Module):
        """input_features (N, 80, 3000) log-mel -> token_ids (N, T), padded with <|endoftext|>.

        Decoding follows the model's generation config (greedy for OpenAI's checkpoints, at most its max_length
        tokens), so a transcript is what transformers gives for the same model and features.
        """

        def __init__(self, whisper):
            super().__init__()
            self.whisper = whisper
            self.generate_kwargs = english_generation_kwargs(whisper.generation_config)

        def forward(self, input_features):
            return self.whisper.generate(input_features=input_features, **self.generate_kwargs)

    return WhisperTranscriber(model)


GRAPHS = (
    GraphSpec(
        name="transcriber",
        input_names=("input_features",),
        output_names=("token_ids",),
        dynamic_axes={"input_features": {0: "batch"}, "token_ids": {0: "batch", 1: "tokens"}},
        build=_transcriber,
    ),
)


def load_model(model_dir: Path):
    """Loads the Hugging Face WhisperForConditionalGeneration (with its generation config) in eval mode, float32."""
    from transformers import WhisperForConditionalGeneration

    from studio.families import quiet_transformers

    quiet_transformers()
    return WhisperForConditionalGeneration.from_pretrained(str(model_dir), dtype="float32").eval()


def random_model(architecture: dict, seed: int = 0):
    """A WhisperForConditionalGeneration of the given architecture with random weights, set up to transcribe English.

    Args:
        architecture: WhisperConfig fields (a registry row's `architecture`); the English-only vocabulary of 51864
            tokens is assumed for the special token ids.
        seed: Weight seed.
    """
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    eos, sot = ENGLISH_ONLY_TOKENS["<|endoftext|>"], ENGLISH_ONLY_TOKENS["<|startoftranscript|>"]
    ids = {"bos_token_id": sot, "eos_token_id": eos, "pad_token_id": eos, "decoder_start_token_id": sot}
    config = WhisperConfig(**{**{k: v for k, v in dict(architecture).items() if k != "model_type"}, **ids})
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        **ids,
        no_timestamps_token_id=ENGLISH_ONLY_TOKENS["<|notimestamps|>"],
        prev_sot_token_id=ENGLISH_ONLY_TOKENS["<|startofprev|>"],
        is_multilingual=False,
        return_timestamps=False,
        suppress_tokens=config.suppress_tokens,
        begin_suppress_tokens=config.begin_suppress_tokens,
        max_length=config.max_target_positions,
    )
    return model


def metadata(model) -> dict:
    """Values the task may show beside the transcript: whether the checkpoint is multilingual (pinned to English)."""
    config = model.generation_config
    return {"multilingual": bool(getattr(config, "is_multilingual", False) or getattr(config, "lang_to_id", None))}


def save_files(model_dir: Path, out_dir: Path) -> None:
    """Copies what feature extraction and decoding need (feature extractor and tokenizer files) into a folder."""
    from transformers import WhisperProcessor

    WhisperProcessor.from_pretrained(str(model_dir)).save_pretrained(str(out_dir))


def parity_inputs(files_dir: Path, photos: list, model=None) -> dict[str, dict[str, np.ndarray]]:
    """Not available: Whisper has no exported graph to check against PyTorch (`EXPORTABLE = False`).

    Kept so every family module has the same functions; the exporter never calls it for this family.

    Raises:
        NotImplementedError: Always.
    """
    raise NotImplementedError("Whisper runs with PyTorch only; it has no ONNX graphs to compare with PyTorch.")
