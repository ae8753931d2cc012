"""BLIP captioning: a vision encoder graph and a text decoder split into a prefill graph and a one-token step graph.

The decoder is written out here over the Hugging Face module's own layers (same weights, same arithmetic) with the
key/value cache as plain tensors: self-attention keys/values stacked over layers (L, B, heads, T, head_dim) grow by
one position per step; cross-attention keys/values over the image patches are computed once at prefill and passed
back in. That makes both graphs exportable with fixed input/output names, and our generation loop
(`studio.generation`) drives them on ONNX Runtime or PyTorch alike.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from studio.families import GraphSpec, load_pretrained, save_processor_files

# Files a model folder needs beside config and weights: each inner tuple is alternatives.
REQUIRED_FILES = (
    ("preprocessor_config.json", "processor_config.json"),
    ("tokenizer.json", "vocab.txt"),
)
TEXT_MAX_LENGTH = 64  # prefixes are a few words; the decoder has 512 positions


def _image_encoder(model):
    import torch

    core = decoder_core(torch)

    class BlipImageEncoder(core):
        """pixel_values (N, 3, H, W) -> image_embeds (N, P, D) and the decoder's cross-attention keys/values.

        The cross-attention projections belong to the decoder, but they depend on the image only, so computing them
        here, once per image, keeps them out of every decoding step.
        """

        def __init__(self, blip):
            super().__init__(blip.text_decoder)
            self.vision_model = blip.vision_model

        def forward(self, pixel_values):
            embeds = self.vision_model(pixel_values=pixel_values).last_hidden_state
            cross_k, cross_v = self.cross_cache(embeds)
            return embeds, cross_k, cross_v

    return BlipImageEncoder(model)


def decoder_core(torch):
    """The class of BLIP's text decoder layers with an explicit cache (shared by captioning and VQA graphs)."""

    class BlipDecoderCore(torch.nn.Module):
        """The BLIP text decoder's layers, with the cache as explicit tensors."""

        def __init__(self, text_decoder):
            super().__init__()
            config = text_decoder.config
            self.embeddings = text_decoder.bert.embeddings
            self.layers = text_decoder.bert.encoder.layer
            self.head = text_decoder.cls
            self.heads = config.num_attention_heads
            self.head_dim = config.hidden_size // config.num_attention_heads

        def split(self, x):
            b, t, _ = x.shape
            return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        def attend(self, q, k, v, mask):
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            if mask is not None:
                scores = scores + mask
            context = torch.matmul(torch.softmax(scores, dim=-1), v)
            b, _, t, _ = context.shape
            return context.transpose(1, 2).reshape(b, t, self.heads * self.head_dim)

        def cross_cache(self, encoder_hidden_states):
            keys = [self.split(layer.crossattention.self.key(encoder_hidden_states)) for layer in self.layers]
            values = [self.split(layer.crossattention.self.value(encoder_hidden_states)) for layer in self.layers]
            return torch.stack(keys), torch.stack(values)

    return BlipDecoderCore


def text_decoder(model):
    """The text decoder graph's module: one step over new tokens with the self-attention cache passed in and out."""
    import torch

    core = decoder_core(torch)

    class BlipTextDecoder(core):
        """ids (B, T) after a cache of P positions -> next-token logits (B, V) and the caches P + T long.

        Prefill passes the whole prompt with an empty cache (P = 0); each later step passes one token.
        """

        def forward(self, input_ids, past_self_k, past_self_v, cross_k, cross_v):
            past, length = past_self_k.shape[3], input_ids.shape[1]
            positions = torch.arange(length, device=input_ids.device) + past
            hidden = self.embeddings.word_embeddings(input_ids) + self.embeddings.position_embeddings(positions)[None]
            hidden = self.embeddings.LayerNorm(hidden)
            # Query i (at position past + i) may see keys 0..past + i; the rest get the dtype's minimum, as in
            # transformers' eager attention.
            key_positions = torch.arange(past + length, device=input_ids.device)
            blocked = key_positions[None, :] > positions[:, None]
            mask = torch.where(blocked, torch.finfo(hidden.dtype).min, 0.0).to(hidden.dtype)
            new_k, new_v = [], []
            for i, layer in enumerate(self.layers):
                attention = layer.attention.self
                q = self.split(attention.query(hidden))
                k = torch.cat([past_self_k[i], self.split(attention.key(hidden))], dim=2)
                v = torch.cat([past_self_v[i], self.split(attention.value(hidden))], dim=2)
                new_k.append(k)
                new_v.append(v)
                attended = layer.attention.output(self.attend(q, k, v, mask), hidden)
                cross_q = self.split(layer.crossattention.self.query(attended))
                crossed = layer.crossattention.output(self.attend(cross_q, cross_k[i], cross_v[i], None), attended)
                hidden = layer.output(layer.intermediate(crossed), crossed)
            logits = self.head(hidden[:, -1:, :])[:, 0, :]
            return logits, torch.stack(new_k), torch.stack(new_v)

    return BlipTextDecoder(model.text_decoder)


_CROSS_AXES = {1: "batch", 3: "patches"}


def text_decoder_spec(cross_axis: str) -> GraphSpec:
    """The text decoder graph, whose cross-attention cache is over `cross_axis` (image patches or question tokens)."""
    cross = {1: "batch", 3: cross_axis}
    return GraphSpec(
        name="text_decoder",
        input_names=("input_ids", "past_self_k", "past_self_v", "cross_k", "cross_v"),
        output_names=("logits", "self_k", "self_v"),
        dynamic_axes={
            "input_ids": {0: "batch", 1: "new"},
            "past_self_k": {1: "batch", 3: "past"},
            "past_self_v": {1: "batch", 3: "past"},
            "cross_k": cross,
            "cross_v": cross,
            "logits": {0: "batch"},
            "self_k": {1: "batch", 3: "total"},
            "self_v": {1: "batch", 3: "total"},
        },
        build=text_decoder,
    )


GRAPHS = (
    GraphSpec(
        name="image_encoder",
        input_names=("pixel_values",),
        output_names=("image_embeds", "cross_k", "cross_v"),
        dynamic_axes={
            "pixel_values": {0: "batch"},
            "image_embeds": {0: "batch"},
            "cross_k": _CROSS_AXES,
            "cross_v": _CROSS_AXES,
        },
        build=_image_encoder,
    ),
    text_decoder_spec("patches"),
)


def empty_cache(meta: dict, batch: int) -> np.ndarray:
    """A self-attention cache with no positions yet: (layers, batch, heads, 0, head_dim) float32."""
    return np.zeros((meta["layers"], batch, meta["heads"], 0, meta["head_dim"]), dtype=np.float32)


class BlipDecoderSteps:
    """`generation.DecoderSteps` over the text decoder graph, for one image's cross-attention cache."""

    def __init__(self, decoder, cross_k: np.ndarray, cross_v: np.ndarray, meta: dict) -> None:
        self.decoder = decoder
        self.cross_k, self.cross_v = cross_k, cross_v
        self.meta = meta

    def _cross(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        if self.cross_k.shape[1] != batch:  # beams share the image: repeat its cache once per beam
            self.cross_k = np.repeat(self.cross_k[:, :1], batch, axis=1)
            self.cross_v = np.repeat(self.cross_v[:, :1], batch, axis=1)
        return self.cross_k, self.cross_v

    def _run(self, input_ids, self_k, self_v):
        cross_k, cross_v = self._cross(input_ids.shape[0])
        feed = {"input_ids": input_ids, "past_self_k": self_k, "past_self_v": self_v}
        out = self.decoder.run({**feed, "cross_k": cross_k, "cross_v": cross_v})
        return out["logits"], (out["self_k"], out["self_v"])

    def prefill(self, input_ids: np.ndarray):
        empty = empty_cache(self.meta, input_ids.shape[0])
        return self._run(input_ids, empty, empty)

    def step(self, input_ids: np.ndarray, state):
        return self._run(input_ids, *state)

    def reorder(self, state, beam_index: np.ndarray):
        self_k, self_v = state
        return np.take(self_k, beam_index, axis=1), np.take(self_v, beam_index, axis=1)


def load_model(model_dir: Path):
    """Loads BlipForConditionalGeneration from a model directory, in eval mode, float32."""
    return load_pretrained("BlipForConditionalGeneration", model_dir)


def random_model(architecture: dict, seed: int = 0, class_name: str = "BlipForConditionalGeneration"):
    """A BLIP model of the given architecture with random weights (benchmarks: cost does not depend on values)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.BlipConfig(**{k: v for k, v in dict(architecture).items() if k != "model_type"})
    # BLIP's vision config initializes at 1e-10 (real weights are loaded over it); use a normal scale so the
    # benchmark's activations are ordinary floats, like a trained model's.
    config.vision_config.initializer_range = 0.02
    return getattr(transformers, class_name)(config).eval()


def metadata(model) -> dict:
    """Token ids the generation loop needs, from the text config (as BLIP's own generate() uses them)."""
    text = model.config.text_config
    return {
        "bos_token_id": int(text.bos_token_id),
        "eos_token_id": int(text.sep_token_id),  # BLIP ends captions with [SEP]
        "pad_token_id": int(text.pad_token_id),
        "max_positions": int(text.max_position_embeddings),
        "layers": int(text.num_hidden_layers),
        "heads": int(text.num_attention_heads),
        "head_dim": int(text.hidden_size // text.num_attention_heads),
    }


save_files = save_processor_files


def parity_inputs(files_dir: Path, photos: list, model=None) -> dict[str, dict[str, np.ndarray]]:
    """Real inputs for checking each graph against PyTorch: photos, a prompt, and a cache they lead to.

    The decoder is checked mid-caption: a prompt of 4 tokens after a 3-position cache made by the PyTorch model
    from the same photos, so the causal mask with an offset and the cache concatenation are both exercised.

    Args:
        files_dir: Folder with the processor and tokenizer files.
        photos: RGB PIL images.
        model: The loaded PyTorch model, used to compute the caches the decoder is checked on.
    """
    import torch

    from studio.media.image import ImagePreprocessing

    meta = metadata(model)
    pixels = ImagePreprocessing.from_dir(files_dir).batch(photos[:2])
    prompt = prompt_ids(files_dir, "a picture of a", meta["bos_token_id"])
    ids = torch.tensor([prompt, prompt], dtype=torch.int64)
    with torch.inference_mode():
        _, cross_k, cross_v = _image_encoder(model)(torch.from_numpy(pixels))
        empty = torch.from_numpy(empty_cache(meta, 2))
        _, self_k, self_v = text_decoder(model)(ids[:, :3], empty, empty, cross_k, cross_v)
    return {
        "image_encoder": {"pixel_values": pixels},
        "text_decoder": {
            "input_ids": ids[:, 3:].numpy(),
            "past_self_k": self_k.numpy(),
            "past_self_v": self_v.numpy(),
            "cross_k": cross_k.numpy(),
            "cross_v": cross_v.numpy(),
        },
    }


def prompt_ids(files_dir: Path, prefix: str | None, bos_token_id: int) -> list[int]:
    """The decoder prompt: BLIP's [DEC] start token, then the prefix words (as BLIP's generate() builds it).

    The processor tokenizes "[CLS] prefix [SEP]"; BLIP replaces [CLS] with its start token and drops the final [SEP].
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(files_dir))
    if not prefix or not prefix.strip():
        return [bos_token_id]
    ids = tokenizer(prefix.strip(), truncation=True, max_length=TEXT_MAX_LENGTH)["input_ids"]
    return [bos_token_id, *ids[1:-1]]
