"""BLIP visual question answering: the answer is written token by token, like a caption, but the decoder reads the
question (itself encoded with cross-attention to the image) instead of the image.

Graphs: the vision encoder; the question encoder, which also returns the decoder's cross-attention keys/values over
the encoded question (computed once per question); and the same text decoder graph as captioning, with its
self-attention cache as explicit inputs and outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.families import GraphSpec, batched_graph, graph_module, load_pretrained, save_processor_files
from studio.families.blip import decoder_core, empty_cache, text_decoder, text_decoder_spec
from studio.families.blip import metadata as _caption_metadata
from studio.families.blip import random_model as _blip_random_model

REQUIRED_FILES = (
    ("preprocessor_config.json", "processor_config.json"),
    ("tokenizer.json", "vocab.txt"),
)
QUESTION_MAX_LENGTH = 64  # BLIP was fine-tuned on VQAv2 questions, which are short; longer ones are truncated


def _vision_states(self, pixel_values):
    """pixel_values (N, 3, H, W) -> image_embeds (N, patches + 1, D)."""
    return self.vision_model(pixel_values=pixel_values).last_hidden_state


def _image_encoder(model):
    return graph_module(model, {"vision_model": "vision_model"}, _vision_states)


def _question_encoder(model):
    import torch

    core = decoder_core(torch)

    class BlipQuestionEncoder(core):
        """question ids + mask + image_embeds -> question_embeds and the decoder's cross-attention cache over them."""

        def __init__(self, blip):
            super().__init__(blip.text_decoder)
            self.text_encoder = blip.text_encoder

        def forward(self, input_ids, attention_mask, image_embeds):
            image_mask = torch.ones(image_embeds.shape[:2], dtype=torch.long, device=image_embeds.device)
            question = self.text_encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                encoder_hidden_states=image_embeds,
                encoder_attention_mask=image_mask,
            ).last_hidden_state
            cross_k, cross_v = self.cross_cache(question)
            return question, cross_k, cross_v

    return BlipQuestionEncoder(model)


_CROSS_AXES = {1: "batch", 3: "question"}

GRAPHS = (
    batched_graph("image_encoder", ("pixel_values",), ("image_embeds",), _image_encoder),
    GraphSpec(
        name="question_encoder",
        input_names=("input_ids", "attention_mask", "image_embeds"),
        output_names=("question_embeds", "cross_k", "cross_v"),
        dynamic_axes={
            "input_ids": {0: "batch", 1: "question"},
            "attention_mask": {0: "batch", 1: "question"},
            "image_embeds": {0: "batch"},
            "question_embeds": {0: "batch", 1: "question"},
            "cross_k": _CROSS_AXES,
            "cross_v": _CROSS_AXES,
        },
        build=_question_encoder,
    ),
    text_decoder_spec("question"),
)


def load_model(model_dir: Path):
    """Loads BlipForQuestionAnswering from a model directory, in eval mode, float32."""
    return load_pretrained("BlipForQuestionAnswering", model_dir)


def random_model(architecture: dict, seed: int = 0):
    """A BlipForQuestionAnswering of the given architecture with random weights (benchmarks)."""
    return _blip_random_model(architecture, seed, class_name="BlipForQuestionAnswering")


def metadata(model) -> dict:
    """Token ids and cache shapes the generation loop needs (the answer starts with BLIP's decoder start token)."""
    return _caption_metadata(model)


save_files = save_processor_files


def tokenize_question(tokenizer, question: str) -> dict[str, np.ndarray]:
    """[CLS] question [SEP] ids and mask, as BlipProcessor makes them, truncated to `QUESTION_MAX_LENGTH`."""
    enc = tokenizer(question, truncation=True, max_length=QUESTION_MAX_LENGTH, return_tensors="np")
    return {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)}


def parity_inputs(files_dir: Path, photos: list, model=None) -> dict[str, dict[str, np.ndarray]]:
    """Real inputs for each graph: photos, a real question, and the caches they lead to in the PyTorch model.

    Args:
        files_dir: Folder with the processor and tokenizer files.
        photos: RGB PIL images.
        model: The loaded PyTorch model, used to compute the encoders' outputs the later graphs are checked on.
    """
    import torch
    from transformers import AutoTokenizer

    from studio.media.image import ImagePreprocessing

    meta = metadata(model)
    pixels = ImagePreprocessing.from_dir(files_dir).batch(photos[:2])
    question = tokenize_question(AutoTokenizer.from_pretrained(str(files_dir)), "what is on the table?")
    question = {k: np.repeat(v, 2, axis=0) for k, v in question.items()}
    ids = torch.tensor([[meta["bos_token_id"], 1037, 5442]] * 2)
    with torch.inference_mode():
        image_embeds = _image_encoder(model)(torch.from_numpy(pixels))
        _, cross_k, cross_v = _question_encoder(model)(
            torch.from_numpy(question["input_ids"]), torch.from_numpy(question["attention_mask"]), image_embeds
        )
        empty = torch.from_numpy(empty_cache(meta, 2))
        _, self_k, self_v = text_decoder(model)(ids[:, :2], empty, empty, cross_k, cross_v)
    return {
        "image_encoder": {"pixel_values": pixels},
        "question_encoder": {**question, "image_embeds": image_embeds.numpy()},
        "text_decoder": {
            "input_ids": ids[:, 2:].numpy(),
            "past_self_k": self_k.numpy(),
            "past_self_v": self_v.numpy(),
            "cross_k": cross_k.numpy(),
            "cross_v": cross_v.numpy(),
        },
    }
