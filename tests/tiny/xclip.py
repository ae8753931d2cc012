"""A tiny random X-CLIP in the real Hugging Face format, with the real CLIP tokenizer and a VideoMAE image processor
(family "xclip")."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.tiny.stack import TINY_STACK
from tests.tiny.video_classifier import VIDEOMAE_NORM
from tests.tiny.vocab import write_clip_vocab


def make_tiny_xclip(out: Path, vocab_dir: Path | None = None, seed: int = 2, image_size: int = 32) -> Path:
    """Saves a tiny random X-CLIP (4 frames) with the real CLIP tokenizer and a VideoMAE image processor, as the
    microsoft/xclip checkpoints have.

    Args:
        out: The model directory to write.
        vocab_dir: Folder with vocab.json and merges.txt (`tests.tiny.vocab.write_clip_vocab`); None writes them to a
            temporary folder first.
        seed: Weight seed.
        image_size: Frame resolution.
    """
    if vocab_dir is None:
        with tempfile.TemporaryDirectory() as temporary:
            return make_tiny_xclip(out, write_clip_vocab(Path(temporary)), seed, image_size)
    import torch
    import transformers
    from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil

    torch.manual_seed(seed)
    config = transformers.XCLIPConfig(
        text_config=dict(
            vocab_size=49408, **TINY_STACK, max_position_embeddings=77, bos_token_id=0, eos_token_id=2, pad_token_id=1
        ),
        vision_config=dict(
            **TINY_STACK,
            image_size=image_size,
            patch_size=8,
            num_frames=4,
            mit_hidden_size=16,
            mit_intermediate_size=32,
            mit_num_hidden_layers=1,
            mit_num_attention_heads=2,
        ),
        projection_dim=16,
        prompt_layers=1,
        prompt_attention_dropout=0.0,
        prompt_projection_dropout=0.0,
    )
    model = transformers.XCLIPModel(config).eval()
    with torch.no_grad():  # random projections give near-equal scores; a wider logit range tells labels apart
        model.logit_scale.fill_(4.0)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer = transformers.CLIPTokenizer(
        str(vocab_dir / "vocab.json"), str(vocab_dir / "merges.txt"), model_max_length=77
    )
    tokenizer.save_pretrained(out)
    VideoMAEImageProcessorPil(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        resample=2,
        **VIDEOMAE_NORM,
    ).save_pretrained(out)
    return out
