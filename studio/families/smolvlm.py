"""SmolVLM (Idefics3 design): a SigLIP vision encoder + pixel-shuffle connector, a token embedding lookup, and a
Llama language model with its key/value cache as explicit inputs and outputs.

Three graphs, as transformers' `SmolVLMForConditionalGeneration` computes them:

- `vision_encoder`: image tiles (N, 3, S, S) -> image features (N, image_seq_len, D): the vision transformer, its
  post-layernorm and the connector (pixel shuffle + projection). Tiles are always full squares here (the processor
  splits a photo into S x S tiles plus a global view), so the patch positions are the identity, computed once at build
  time with the model's own embedding code.
- `embed_tokens`: input_ids (B, T) -> inputs_embeds (B, T, D); image features are then put in place of the `<image>`
  tokens, exactly as transformers' `masked_scatter` does.
- `decoder`: inputs_embeds (B, T, D) after a cache of P positions -> next-token logits (B, V) and the caches P + T
  long ((layers, B, kv_heads, P + T, head_dim)). Prefill passes the whole prompt with an empty cache; each later step
  passes one token's embedding. Attention is written out (eager, float32) over the model's own layers, weights shared.

The processor (image splitting and the prompt's image tokens) is reproduced in `SmolVLMPreprocessing` and
`image_prompt`: transformers' full `SmolVLMProcessor` needs torchvision and num2words for its video half, which the
app does not install; the tests compare both with transformers' image processor and prompt functions.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.families import GraphSpec, load_pretrained, random_pretrained
from studio.generation import GenerationSettings, generate

# Files a model folder needs beside config and weights: each inner tuple is alternatives.
REQUIRED_FILES = (("preprocessor_config.json",), ("tokenizer.json",))
# The processor and tokenizer files an export keeps beside its graphs (whichever the model folder has).
PROCESSOR_FILES = (
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.json",
    "chat_template.jinja",
    "generation_config.json",
)
PARITY_INPUTS = "assets/images/*.jpg split into tiles, and a chat prompt with the image tokens"

# SmolVLM's own chat template (the one its processor ships; transformers' DEFAULT_CHAT_TEMPLATE minus video).
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
IMAGE_TOKEN = "<image>"
FAKE_TOKEN = "<fake_token_around_image>"
GLOBAL_TOKEN = "<global-img>"
END_OF_UTTERANCE = "<end_of_utterance>"


# Preprocessing ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmolVLMPreprocessing:
    """SmolVLM's image processor: resize the longest side, split into square tiles plus a global view, normalize.

    Reproduces transformers' `SmolVLMImageProcessorPil` for one image (PIL Lanczos on uint8, as it resizes).

    Attributes:
        longest_edge: The photo's longest side is resized to this first (4 tiles for SmolVLM: 2048).
        tile: The vision encoder's square input (512): the photo is resized up to multiples of it and cut.
        split: Split into tiles (the processor's default); False gives the global view only (1 tile, fastest).
        mean, std: Normalization after rescaling to [0, 1].
    """

    longest_edge: int
    tile: int
    split: bool = True
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    rescale_factor: float = 1 / 255

    @classmethod
    def from_dir(cls, directory: Path, split: bool | None = None) -> SmolVLMPreprocessing:
        """The settings of a model folder's preprocessor_config.json."""
        cfg = json.loads((Path(directory) / "preprocessor_config.json").read_text())
        return cls(
            longest_edge=int(cfg.get("size", {}).get("longest_edge", 4 * 364)),
            tile=int(cfg.get("max_image_size", {}).get("longest_edge", 364)),
            split=bool(cfg.get("do_image_splitting", True)) if split is None else split,
            mean=tuple(cfg.get("image_mean", (0.5, 0.5, 0.5))),
            std=tuple(cfg.get("image_std", (0.5, 0.5, 0.5))),
            rescale_factor=float(cfg.get("rescale_factor", 1 / 255)),
        )

    def __call__(self, image) -> tuple[np.ndarray, int, int]:
        """One RGB PIL image -> (tiles (N, 3, tile, tile) float32, rows, cols); rows = cols = 0 when not split."""
        from PIL import Image

        width, height = _rescaled_to_max_len(image.width, image.height, self.longest_edge)
        image = image.resize((width, height), Image.LANCZOS)
        if self.split:
            width, height = _multiples_of(width, height, self.tile)
            image = image.resize((width, height), Image.LANCZOS)
        if self.split and (height > self.tile or width > self.tile):
            rows, cols = (height - self.tile) // self.tile + 1, (width - self.tile) // self.tile + 1
            crops = [
                image.crop((c * self.tile, r * self.tile, (c + 1) * self.tile, (r + 1) * self.tile))
                for r in range(rows)
                for c in range(cols)
            ]
            crops.append(image.resize((self.tile, self.tile), Image.LANCZOS))
        else:
            rows = cols = 0
            crops = [image.resize((self.tile, self.tile), Image.LANCZOS)]
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        arrays = [
            (np.asarray(crop, dtype=np.float32).transpose(2, 0, 1) * np.float32(self.rescale_factor) - mean) / std
            for crop in crops
        ]
        return np.stack(arrays).astype(np.float32), rows, cols


def _rescaled_to_max_len(width: int, height: int, max_len: int) -> tuple[int, int]:
    """The processor's first resize: the longest side to max_len, the other kept even (at most 4096 either way)."""
    aspect = width / height
    if width >= height:
        width = max_len
        height = int(width / aspect)
        height += height % 2
    else:
        height = max_len
        width = int(height * aspect)
        width += width % 2
    height, width = max(height, 1), max(width, 1)
    if width >= height and width > 4096:
        width, height = 4096, max(int(4096 / aspect), 1)
    elif height > width and height > 4096:
        height, width = 4096, max(int(4096 * aspect), 1)
    return width, height


def _multiples_of(width: int, height: int, tile: int) -> tuple[int, int]:
    """The processor's resize for the vision encoder: both sides up to multiples of the tile, aspect roughly kept."""
    aspect = width / height
    if width >= height:
        width = math.ceil(width / tile) * tile
        height = math.ceil(int(width / aspect) / tile) * tile
    else:
        height = math.ceil(height / tile) * tile
        width = math.ceil(int(height * aspect) / tile) * tile
    return width, height


def image_prompt(rows: int, cols: int, image_seq_len: int) -> str:
    """The text that stands for one image in the prompt: per tile its row/column token and `image_seq_len` image
    tokens, then the global view (as the processor expands `<image>`)."""
    tokens = IMAGE_TOKEN * image_seq_len
    global_view = f"{FAKE_TOKEN}{GLOBAL_TOKEN}{tokens}{FAKE_TOKEN}"
    if rows == 0 and cols == 0:
        return global_view
    text = ""
    for r in range(rows):
        for c in range(cols):
            text += f"{FAKE_TOKEN}<row_{r + 1}_col_{c + 1}>{tokens}"
        text += "\n"
    return f"{text}\n{global_view}"


def chat_text(files_dir: Path, messages: list[dict]) -> str:
    """The model's chat template applied to a conversation (`<image>` not yet expanded), ready for the answer."""
    import jinja2

    template = CHAT_TEMPLATE
    files_dir = Path(files_dir)
    if (files_dir / "chat_template.jinja").is_file():
        template = (files_dir / "chat_template.jinja").read_text()
    elif (files_dir / "chat_template.json").is_file():
        template = json.loads((files_dir / "chat_template.json").read_text())["chat_template"]
    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(template).render(messages=messages, add_generation_prompt=True)


# Graphs -------------------------------------------------------------------------------------------------------------


def _vision_encoder(model):
    import torch

    class SmolVLMVisionEncoder(torch.nn.Module):
        """pixel_values (N, 3, S, S) full tiles -> image features (N, image_seq_len, text hidden size)."""

        def __init__(self, smolvlm):
            super().__init__()
            inner = smolvlm.model
            self.vision = inner.vision_model
            self.connector = inner.connector
            embeddings = self.vision.embeddings
            side = embeddings.num_patches_per_side
            full = torch.ones((1, side, side), dtype=torch.bool)
            # The model's own bucketed positions for a full tile (computed with its code, once).
            probe = torch.zeros((1, 3, side * embeddings.patch_size, side * embeddings.patch_size))
            with torch.no_grad():
                patches = embeddings.patch_embedding(probe).flatten(2).transpose(1, 2)
                positions = embeddings(probe, full) - patches
            self.register_buffer("position_embeds", positions.detach().clone(), persistent=False)

        def forward(self, pixel_values):
            embeddings = self.vision.embeddings
            hidden = embeddings.patch_embedding(pixel_values).flatten(2).transpose(1, 2) + self.position_embeds
            for layer in self.vision.encoder.layers:
                hidden = layer(hidden, None)
                hidden = hidden[0] if isinstance(hidden, tuple) else hidden
            hidden = self.vision.post_layernorm(hidden)
            return self.connector(hidden)

    return SmolVLMVisionEncoder(model)


def _embed_tokens(model):
    import torch

    class SmolVLMEmbedTokens(torch.nn.Module):
        """input_ids (B, T) -> inputs_embeds (B, T, D): the language model's token embedding table."""

        def __init__(self, smolvlm):
            super().__init__()
            self.embed = smolvlm.model.text_model.embed_tokens

        def forward(self, input_ids):
            return self.embed(input_ids)

    return SmolVLMEmbedTokens(model)


def _decoder(model):
    import torch
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

    class SmolVLMDecoder(torch.nn.Module):
        """inputs_embeds (B, T, D) after a cache of P positions -> logits of the last position (B, V), caches P + T."""

        def __init__(self, smolvlm):
            super().__init__()
            text = smolvlm.model.text_model
            config = text.config
            self.layers = text.layers
            self.norm = text.norm
            self.rotary = text.rotary_emb
            self.head = smolvlm.lm_head
            self.heads = config.num_attention_heads
            self.kv_heads = config.num_key_value_heads
            self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads

        def forward(self, inputs_embeds, past_k, past_v):
            batch, length, _ = inputs_embeds.shape
            past = past_k.shape[3]
            positions = torch.arange(length, device=inputs_embeds.device) + past
            cos, sin = self.rotary(inputs_embeds, positions[None].expand(batch, length))
            # Query i (at position past + i) sees keys 0..past + i; the rest get the dtype's minimum, as transformers'
            # eager attention.
            key_positions = torch.arange(past + length, device=inputs_embeds.device)
            blocked = key_positions[None, :] > positions[:, None]
            mask = torch.where(blocked, torch.finfo(inputs_embeds.dtype).min, 0.0).to(inputs_embeds.dtype)
            hidden = inputs_embeds
            new_k, new_v = [], []
            for i, layer in enumerate(self.layers):
                attention = layer.self_attn
                normed = layer.input_layernorm(hidden)
                q = attention.q_proj(normed).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
                k = attention.k_proj(normed).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
                v = attention.v_proj(normed).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
                q, k = apply_rotary_pos_emb(q, k, cos, sin)
                k = torch.cat([past_k[i], k], dim=2)
                v = torch.cat([past_v[i], v], dim=2)
                new_k.append(k)
                new_v.append(v)
                groups = self.heads // self.kv_heads
                scores = torch.matmul(q, repeat_kv(k, groups).transpose(2, 3)) * attention.scaling + mask
                context = torch.matmul(torch.softmax(scores, dim=-1, dtype=torch.float32), repeat_kv(v, groups))
                context = context.transpose(1, 2).reshape(batch, length, self.heads * self.head_dim)
                hidden = hidden + attention.o_proj(context)
                hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
            logits = self.head(self.norm(hidden[:, -1:, :]))[:, 0, :]
            return logits, torch.stack(new_k), torch.stack(new_v)

    return SmolVLMDecoder(model)


GRAPHS = (
    GraphSpec(
        name="vision_encoder",
        input_names=("pixel_values",),
        output_names=("image_features",),
        dynamic_axes={"pixel_values": {0: "tiles"}, "image_features": {0: "tiles"}},
        build=_vision_encoder,
        tolerance={"atol": 2e-4, "rtol": 1e-3},
    ),
    GraphSpec(
        name="embed_tokens",
        input_names=("input_ids",),
        output_names=("inputs_embeds",),
        dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "inputs_embeds": {0: "batch", 1: "sequence"}},
        build=_embed_tokens,
    ),
    GraphSpec(
        name="decoder",
        input_names=("inputs_embeds", "past_k", "past_v"),
        output_names=("logits", "present_k", "present_v"),
        dynamic_axes={
            "inputs_embeds": {0: "batch", 1: "new"},
            "past_k": {1: "batch", 3: "past"},
            "past_v": {1: "batch", 3: "past"},
            "logits": {0: "batch"},
            "present_k": {1: "batch", 3: "total"},
            "present_v": {1: "batch", 3: "total"},
        },
        build=_decoder,
        quantizable=True,
        int8_weights_only=True,
    ),
)


def empty_cache(meta: dict, batch: int = 1) -> np.ndarray:
    """A key or value cache with no positions yet: (layers, batch, kv_heads, 0, head_dim) float32."""
    return np.zeros((meta["layers"], batch, meta["kv_heads"], 0, meta["head_dim"]), dtype=np.float32)


def splice_image_features(inputs_embeds: np.ndarray, input_ids: np.ndarray, features: np.ndarray, image_token_id: int):
    """Puts the image features, in order, where the `<image>` tokens are (transformers' `masked_scatter`).

    Raises:
        ValueError: The prompt's image tokens and the features differ in number.
    """
    where = np.nonzero(input_ids[0] == image_token_id)[0]
    flat = features.reshape(-1, features.shape[-1])
    if len(where) != len(flat):
        raise ValueError(f"{len(where)} image tokens in the prompt but {len(flat)} image features")
    out = inputs_embeds.copy()
    out[0, where] = flat
    return out


class SmolVLMDecoderSteps:
    """`generation.DecoderSteps` over the embedding and decoder graphs, with one picture's features in the prompt.

    Args:
        embed: The embed_tokens graph.
        decoder: The decoder graph.
        features: The picture's image features (tiles, image_seq_len, D), or None for a prompt without a picture.
        meta: The family metadata (cache shape, image token id).
        state: A cache to continue from (a conversation's earlier turns), or None to prefill from nothing.
    """

    def __init__(self, embed, decoder, features: np.ndarray | None, meta: dict, state=None) -> None:
        self.embed, self.decoder = embed, decoder
        self.features = features
        self.meta = meta
        self.start = state

    def _run(self, inputs_embeds, past_k, past_v):
        out = self.decoder.run({"inputs_embeds": inputs_embeds, "past_k": past_k, "past_v": past_v})
        return out["logits"], (out["present_k"], out["present_v"])

    def prefill(self, input_ids: np.ndarray):
        embeds = self.embed.run({"input_ids": input_ids})["inputs_embeds"]
        if self.features is not None and (input_ids == self.meta["image_token_id"]).any():
            embeds = splice_image_features(embeds, input_ids, self.features, self.meta["image_token_id"])
        if self.start is None:
            empty = empty_cache(self.meta, input_ids.shape[0])
            return self._run(embeds, empty, empty)
        return self._run(embeds, *self.start)

    def step(self, input_ids: np.ndarray, state):
        return self._run(self.embed.run({"input_ids": input_ids})["inputs_embeds"], *state)

    def reorder(self, state, beam_index: np.ndarray):
        past_k, past_v = state
        return np.take(past_k, beam_index, axis=1), np.take(past_v, beam_index, axis=1)


# What the rest of Studio asks of a family ---------------------------------------------------------------------------


def load_model(model_dir: Path):
    """Loads SmolVLMForConditionalGeneration from a model directory, in eval mode, float32 (eager attention)."""
    return load_pretrained("SmolVLMForConditionalGeneration", model_dir)


def random_model(architecture: dict, seed: int = 0):
    """A SmolVLM of a registry row's architecture with random weights (benchmarks)."""
    return random_pretrained("SmolVLMConfig", "SmolVLMForConditionalGeneration", architecture, seed)


def metadata(model) -> dict:
    """What the generation loop and the prompt need: cache shape, special token ids, image tokens per tile."""
    config = model.config
    text = config.text_config
    vision = config.vision_config
    generation = getattr(model, "generation_config", None)
    eos = getattr(generation, "eos_token_id", None) if generation is not None else None
    eos = eos if eos is not None else text.eos_token_id
    eos = [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]) if e is not None]
    return {
        "layers": int(text.num_hidden_layers),
        "kv_heads": int(text.num_key_value_heads),
        "head_dim": int(getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads),
        "image_token_id": int(config.image_token_id),
        "eos_token_ids": eos,
        "image_seq_len": int((vision.image_size // vision.patch_size) ** 2 // (config.scale_factor**2)),
        "tile": int(vision.image_size),
        "max_positions": int(text.max_position_embeddings),
    }


def save_files(model_dir, out_dir) -> None:
    """Copies the processor, tokenizer, chat template and generation files an export keeps beside its graphs."""
    for name in PROCESSOR_FILES:
        if (Path(model_dir) / name).is_file():
            shutil.copy2(Path(model_dir) / name, Path(out_dir) / name)


def prompt_ids(files_dir: Path, messages: list[dict], rows: int, cols: int, image_seq_len: int) -> list[int]:
    """A conversation's token ids, its `<image>` expanded for a picture split into rows x cols tiles."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(files_dir))
    text = chat_text(files_dir, messages).replace(IMAGE_TOKEN, image_prompt(rows, cols, image_seq_len), 1)
    return tokenizer(text)["input_ids"]


def parity_inputs(files_dir: Path, photos: list, model=None) -> dict[str, dict[str, np.ndarray]]:
    """Real inputs for checking each graph against PyTorch: a photo's tiles, a chat prompt, a cache it leads to.

    The decoder is checked mid-prompt: 4 positions after a cache of the prompt's first tokens, made by the PyTorch
    graph, so the causal mask with an offset, the rotary positions and the cache concatenation are all exercised.
    """
    import torch

    meta = (
        metadata(model)
        if model is not None
        else json.loads((Path(files_dir) / "manifest.json").read_text())["metadata"]
    )
    preprocessing = SmolVLMPreprocessing.from_dir(files_dir)
    tiles, rows, cols = preprocessing(photos[0])
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this picture."}]}]
    ids = np.asarray([prompt_ids(files_dir, messages, rows, cols, meta["image_seq_len"])], dtype=np.int64)
    inputs = {"vision_encoder": {"pixel_values": tiles[:2]}, "embed_tokens": {"input_ids": ids}}
    if model is None:  # quantization checks the decoder only from a cache made by the fp32 export
        from studio.backends.onnx import OnnxBackend

        decoder = OnnxBackend(Path(files_dir) / "decoder.onnx", device="cpu")
        embed = OnnxBackend(Path(files_dir) / "embed_tokens.onnx", device="cpu")
        embeds = embed.run({"input_ids": ids[:, -12:]})["inputs_embeds"]
        empty = empty_cache(meta)
        out = decoder.run({"inputs_embeds": embeds[:, :8], "past_k": empty, "past_v": empty})
        past_k, past_v = out["present_k"], out["present_v"]
    else:
        with torch.inference_mode():
            embeds = _embed_tokens(model)(torch.from_numpy(ids[:, -12:])).numpy()
            empty = torch.from_numpy(empty_cache(meta))
            _, past_k, past_v = _decoder(model)(torch.from_numpy(embeds[:, :8]), empty, empty)
            past_k, past_v = past_k.numpy(), past_v.numpy()
    inputs["decoder"] = {"inputs_embeds": embeds[:, 8:].copy(), "past_k": past_k, "past_v": past_v}
    return inputs


INT8_CHECK_TOKENS = 24


def check_int8(directory: Path, int8_files: dict[str, Path], photos: list) -> dict:
    """Accepts the int8 language model only if greedy decoding says exactly what fp32 says on the example photos.

    Args:
        directory: The export folder (fp32 graphs, processor files, manifest).
        int8_files: The int8 graphs by name.
        photos: The example photos (RGB PIL images) every export is checked on.

    Returns:
        What to record in the manifest's int8 entry.

    Raises:
        ExportError: Some photo's greedy tokens differ.
    """
    from studio.backends.onnx import OnnxBackend
    from studio.errors import ExportError

    meta = json.loads((Path(directory) / "manifest.json").read_text())["metadata"]
    fp32 = {
        name: OnnxBackend(Path(directory) / f"{name}.onnx", device="cpu")
        for name in ("vision_encoder", "embed_tokens", "decoder")
    }
    int8 = {**fp32, **{name: OnnxBackend(path, device="cpu") for name, path in int8_files.items()}}
    preprocessing = SmolVLMPreprocessing.from_dir(directory)
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this picture in detail."}]}
    ]
    settings = GenerationSettings(max_new_tokens=INT8_CHECK_TOKENS)
    for i, photo in enumerate(photos):
        tiles, rows, cols = preprocessing(photo)
        ids = prompt_ids(directory, messages, rows, cols, meta["image_seq_len"])
        said = []
        for graphs in (fp32, int8):
            features = graphs["vision_encoder"].run({"pixel_values": tiles})["image_features"]
            steps = SmolVLMDecoderSteps(graphs["embed_tokens"], graphs["decoder"], features, meta)
            said.append(generate(steps, ids, settings, meta["eos_token_ids"], 0).token_ids)
        if said[0] != said[1]:
            raise ExportError(
                f"The int8 language model words example photo {i + 1} differently from full precision, so it was not "
                "saved; the model keeps running in full precision."
            )
    return {"greedy_identical_on_photos": len(photos), "greedy_tokens_checked": INT8_CHECK_TOKENS}
