"""Text: lists a user types, and the model's own tokenizer with the padding and truncation our graphs expect."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def typed_items(items: str | list | tuple | None) -> list[str]:
    """The items of a list a user typed ("mug, keys" on one or more lines) or gave as a list: white space tidied,
    blank ones dropped, in order (duplicates kept; the caller decides what they mean)."""
    if items is None:
        return []
    parts = [p for line in items.splitlines() for p in line.split(",")] if isinstance(items, str) else items
    return [text for text in (" ".join(str(p).split()) for p in parts) if text]


class TextTokenizer:
    """Wraps the tokenizer saved beside a model (Hugging Face format) to produce graph inputs.

    Args:
        directory: A folder with tokenizer files (tokenizer.json / vocab.json + merges.txt ...).
        max_length: The model's text length limit (CLIP: 77 positions); longer texts are truncated.
    """

    def __init__(self, directory: Path, max_length: int) -> None:
        from transformers import AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(str(directory))
        self.max_length = max_length

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Tokenizes a batch, padded to its longest text.

        Returns:
            {"input_ids": int64 (N, L), "attention_mask": int64 (N, L)}.
        """
        enc = self._tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        return {
            "input_ids": enc["input_ids"].astype(np.int64),
            "attention_mask": enc["attention_mask"].astype(np.int64),
        }
