"""A tiny random CLIPModel in the real Hugging Face format, with the real CLIP tokenizer (family "clip")."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.tiny.stack import TINY_STACK
from tests.tiny.vocab import write_clip_vocab


def make_tiny_clip(out: Path, vocab_dir: Path | None = None, seed: int = 0, image_size: int = 32) -> Path:
    """Saves a tiny random CLIPModel with the OpenAI checkpoints' config conventions and a real CLIP tokenizer.

    Args:
        out: The model directory to write.
        vocab_dir: Folder with vocab.json and merges.txt (`tests.tiny.vocab.write_clip_vocab`); None writes them to a
            temporary folder first.
        seed: Weight seed.
        image_size: Input resolution (the processor resizes the short side to it and center-crops).
    """
    if vocab_dir is None:
        with tempfile.TemporaryDirectory() as temporary:
            return make_tiny_clip(out, write_clip_vocab(Path(temporary)), seed, image_size)
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
