"""A tiny random unfused ClapModel in the real Hugging Face format, with a RoBERTa tokenizer made from GPT-2's BPE
(`tests.tiny.vocab.write_roberta_vocab`) and its processor (family "clap")."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.tiny.vocab import write_roberta_vocab

# The tiny CLAP hears 1 s at a time with 16 mel bins.
TINY_CLAP_SECONDS = 1


def make_tiny_clap(out: Path, vocab_dir: Path | None = None, seed: int = 0) -> Path:
    """Saves a tiny random unfused ClapModel with a RoBERTa tokenizer and its processor.

    Args:
        out: The model directory to write.
        vocab_dir: Folder with RoBERTa's vocab.json and merges.txt (`write_roberta_vocab`); None writes them to a
            temporary folder first.
        seed: Weight seed.
    """
    if vocab_dir is None:
        with tempfile.TemporaryDirectory() as temporary:
            return make_tiny_clap(out, write_roberta_vocab(Path(temporary)), seed)
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    tokenizer = RobertaTokenizer(str(vocab_dir / "vocab.json"), str(vocab_dir / "merges.txt"), model_max_length=77)
    torch.manual_seed(seed)
    config = ClapConfig(
        projection_dim=16,
        audio_config=dict(
            spec_size=64,
            num_mel_bins=16,
            patch_size=4,
            patch_stride=[4, 4],
            window_size=8,
            patch_embeds_hidden_size=16,
            hidden_size=32,
            depths=[1, 1],
            num_attention_heads=[2, 4],
            enable_fusion=False,
        ),
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=80,  # RoBERTa's positions start after the padding id: 77 tokens need 79
        ),
    )
    model = ClapModel(config).eval()
    with torch.no_grad():
        model.logit_scale_a.fill_(3.0)  # exp(3) = 20: scores that differ visibly between labels
    features = ClapFeatureExtractor(
        feature_size=16,
        max_length_s=TINY_CLAP_SECONDS,
        frequency_min=50,
        frequency_max=14000,
        truncation="rand_trunc",
        padding="repeatpad",
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    ClapProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(str(out))
    return out
